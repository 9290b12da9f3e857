"""PostgreSQL store beside the SQLite store, in the same run: each store is built the same
way (genuine loads timed, the rest SQL copies), then the same reads and searches against
``fhirtrial.server`` in-process and under gunicorn.

    python bench/bench_postgres.py --studies 2000 --base 500      # a throwaway local cluster
    python bench/bench_postgres.py --studies 100000 --pg postgresql://u@host/db   # a server

Without ``--pg`` (or ``FHIRTRIAL_BENCH_PG``) a throwaway cluster is started from the local
PostgreSQL binaries (tests/pg.py), with PostgreSQL's durable defaults (fsync on,
synchronous_commit on: every acknowledged study is on disk). SQLite runs as the store does
(WAL, synchronous=NORMAL). Each store gets ``--base`` generated studies through its bulk loader
(``store.bulk()``, as ``fhirtrial load --no-validate``: timed, index build included), the rest
of ``--studies`` as SQL copies of them under new ids (bench/clone_store.py: setup, not a load
rate), then 300 more studies each in its own transaction (timed: a write at that size).
Latency over gunicorn is measured with as many clients as workers, so that it is the
server's and not a queue's; throughput with ``--clients``. ``run(quick)`` gives rows for
``bench/run.py``: 2,000 studies quick (500 loaded), 100,000 full (2,000 loaded); each
PostgreSQL row's baseline is the SQLite figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

from bench_server import (  # noqa: E402
    SEARCHES,
    Untimed,
    _wsgi_get,
    free_port,
    generate,
    hammer,
    request_paths,
    start_gunicorn,
)
from benchlib import Unavailable, row, stop_and_peak  # noqa: E402

SERVER = "fhirtrial.server:create_app()"


#: studies written through each store's bulk loader (timed); a larger store gets the rest as
#: SQL copies of them (bench/clone_store.py, not timed as a load)
BASE = 2000
#: studies then written one transaction each into the full store (timed: a load at scale)
EXTRA = 300


def _process(store, bundle) -> None:  # type: ignore[no-untyped-def]
    from fhirtrial.server.bundles import process
    from fhirtrial.server.searchparams import REGISTRY

    process(store, "R5", bundle, base="", validate=False,
            supported=lambda t: t in REGISTRY["R5"], default_count=20, representation=False)


def load(db: str, n: int, base: int = BASE, extra: int = EXTRA) -> dict:
    """Build the store of ``n`` studies and time its genuine loads:

    - ``bulk``: ``min(n, base)`` studies into the empty store through ``store.bulk()`` (what
      ``fhirtrial load`` does: batches, a savepoint per study, indexes built at the end,
      then ANALYZE), studies per second including the index build;
    - the rest SQL copies of them (``clone`` seconds, setup, not a load rate);
    - ``single``: ``extra`` more studies, each its own transaction (a transaction Bundle
      POSTed to the server), into the store of ``n``: the write rate at that size."""
    from clone_store import clone

    from fhirtrial.server.stores import open_store

    base = min(n, base)
    store = open_store(db)
    bundles = Untimed(generate(base))
    t0 = time.perf_counter()
    with store.bulk() as writer:
        for b in bundles:
            _process(writer, b)
    store.analyze()
    bulk = time.perf_counter() - t0 - bundles.secs
    store.close()
    t0 = time.perf_counter()
    clone(db, base, n)
    cloned = time.perf_counter() - t0
    store = open_store(db)
    bundles = Untimed(generate(extra, seed=8, start=n))
    t0 = time.perf_counter()
    for b in bundles:
        _process(store, b)
    single = time.perf_counter() - t0 - bundles.secs
    store.analyze()
    store.close()
    return {"bulk": base / bulk, "bulk_n": base, "clone_s": cloned,
            "single": extra / single, "single_n": extra}


def hammer_store(db: str, read_paths: list[str], search_paths: list[str], workers: int,
                 clients: int) -> tuple[dict, float | None]:
    """Over gunicorn: latency with as many clients as workers (a request never waits for a
    worker: no queueing in the figures), then throughput with ``clients`` clients."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "FHIRTRIAL_DB": db,
           "FHIRTRIAL_DB_POOL_MAX": "2"}
    port = free_port()
    proc = start_gunicorn(SERVER, port, workers, env, str(ROOT))
    out: dict = {}
    try:
        hammer(port, read_paths[:200], workers)  # warm up: connections, caches
        hammer(port, search_paths[:len(SEARCHES) * 2], workers)
        out["read"] = hammer(port, read_paths, workers)
        out["search"] = hammer(port, search_paths, workers)
        for s in SEARCHES:
            out[s] = hammer(port, [s] * 60, workers)
        out["read_tp"] = hammer(port, read_paths, clients)
        out["search_tp"] = hammer(port, search_paths, clients)
    finally:
        peak = stop_and_peak(proc)
    return out, peak


def in_process(db: str, read_paths: list[str], rounds: int = 30) -> dict:
    """Latency of each request through the server's WSGI app, one at a time, no sockets:
    what the store and the server cost, apart from HTTP and client threads. ``cold``: the
    first request of each search after the app opened the store (its total not yet
    remembered); then each search ``rounds`` times (totals remembered: the store is
    unchanged, as between most requests of a read-mostly server)."""
    import statistics

    os.environ["FHIRTRIAL_DB"] = db
    from fhirtrial.server import create_app

    app = create_app({"DB": db})
    out: dict = {"cold": {}}
    _wsgi_get(app, read_paths[0])  # connections
    for p in SEARCHES:
        t = time.perf_counter()
        _wsgi_get(app, p)
        out["cold"][p] = (time.perf_counter() - t) * 1000

    def measure(paths: list[str]) -> dict:
        # wall time, and this thread's CPU time: on a shared 2-core machine a request that
        # loses its core waits a scheduler tick (4 ms) or more, which the CPU time leaves out
        lat, cpu = [], []
        for p in paths:
            t, c = time.perf_counter(), time.thread_time()
            _wsgi_get(app, p)
            cpu.append((time.thread_time() - c) * 1000)
            lat.append((time.perf_counter() - t) * 1000)
        q = statistics.quantiles(lat, n=100)
        qc = statistics.quantiles(cpu, n=100)
        return {"p50": q[49], "p95": q[94], "p99": q[98], "n": len(lat),
                "cpu_p50": qc[49], "cpu_p95": qc[94], "cpu_p99": qc[98]}

    out["read"] = measure(read_paths[:rounds * 10])
    out["search"] = measure(SEARCHES * rounds)
    for p in SEARCHES:
        out[p] = measure([p] * rounds)
    app.extensions["fhirtrial.store"].close()
    return out


def compare(n: int, requests: int, clients: int, workers: int, pg_url: str | None,
            base: int = BASE) -> dict:
    """Load, read and search on SQLite and on PostgreSQL; the figures per store."""
    cluster = None
    tmp = tempfile.mkdtemp(prefix="fhirtrial-bench-pg-")
    try:
        if pg_url is None:
            sys.path.insert(0, str(ROOT / "tests"))
            try:
                from pg import start_cluster
            except ImportError as e:
                raise Unavailable(f"tests/pg.py cannot be imported: {e}") from None
            try:
                cluster = start_cluster(durable=True)
            except RuntimeError as e:
                raise Unavailable(str(e)) from None
            cluster.admin("CREATE DATABASE bench")
            pg_url = cluster.url("bench")
        stores = {"sqlite": os.path.join(tmp, "bench.sqlite"), "postgresql": pg_url}
        read_paths, search_paths = request_paths(n, requests)
        figures: dict = {}
        for name, db in stores.items():
            loads = load(db, n, base)
            res, peak = hammer_store(db, read_paths, search_paths, workers, clients)
            figures[name] = {"load": loads, "peak": peak, **res,
                             "inproc": in_process(db, read_paths)}
        return figures
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def run(quick: bool) -> list[dict]:
    n, base, requests, clients, workers = ((2000, 500, 800, 8, 2) if quick
                                           else (100_000, BASE, 4000, 8, 2))
    f = compare(n, requests, clients, workers, os.environ.get("FHIRTRIAL_BENCH_PG"), base)
    sq, pg = f["sqlite"], f["postgresql"]
    lp, ls = pg["load"], sq["load"]
    rows = [row("postgres", "load, bulk (fhirtrial load)", lp["bulk"], "studies/s",
                baseline=ls["bulk"],
                notes=f"{lp['bulk_n']} generated studies x 4 resources into the empty store "
                      "through store.bulk() (500 per transaction, a savepoint each, indexes "
                      "built at the end, ANALYZE), validation off; PostgreSQL fsync on; "
                      "baseline: the same into SQLite (WAL, synchronous=NORMAL)"),
            row("postgres", f"load, a transaction per study, store of {n}", lp["single"],
                "studies/s", baseline=ls["single"],
                notes=f"{lp['single_n']} more studies, each a transaction Bundle of its own, "
                      f"into the store of {n}; baseline: SQLite"),
            row("postgres", "store setup: SQL copies", lp["clone_s"], "s", baseline=ls["clone_s"],
                better="lower", detail=True,
                notes=f"{n - lp['bulk_n']} studies copied from the {lp['bulk_n']} loaded "
                      "(bench/clone_store.py; not a load rate)")]
    setup = f"gunicorn -w {workers}, {n} studies"
    for kind in ("read", "search"):
        what = "GET ResearchStudy/<id>" if kind == "read" else f"{len(SEARCHES)} searches mixed"
        err = pg[kind]["errors"] + sq[kind]["errors"] + pg[kind + "_tp"]["errors"] \
            + sq[kind + "_tp"]["errors"]
        rows.append(row("postgres", f"{kind} throughput, {clients} clients",
                        pg[kind + "_tp"]["rps"], "req/s", baseline=sq[kind + "_tp"]["rps"],
                        notes=f"{what}; {setup}, {clients} keep-alive clients; baseline: "
                              "SQLite store" + (f"; {err} ERRORS" if err else "")))
        for q in ("p50", "p95", "p99"):
            rows.append(row("postgres", f"{kind} latency {q}, {workers} clients", pg[kind][q],
                            "ms", baseline=sq[kind][q], better="lower",
                            notes=f"{what}; {setup}, {workers} clients = workers (no "
                                  f"queueing); baseline: SQLite store {kind} {q}"))
    for kind in ("read", "search"):
        a, b = pg["inproc"][kind], sq["inproc"][kind]
        for q in ("p50", "p95", "p99"):
            rows.append(row("postgres", f"{kind} latency {q}, in-process", a[q], "ms",
                            baseline=b[q], better="lower",
                            notes=f"one request at a time through the WSGI app, {a['n']} "
                                  f"requests ({'the search mix' if kind == 'search' else 'reads'}"
                                  "); baseline: SQLite store"))
    for s in SEARCHES:
        a, b = pg["inproc"][s], sq["inproc"][s]
        name = s.removeprefix("/fhir/")
        rows.append(row("postgres", f"search p95 in-process {name}", a["p95"], "ms",
                        baseline=b["p95"], better="lower", detail=True,
                        notes=f"p50 {a['p50']:.1f} ms (SQLite {b['p50']:.1f}); first request "
                              f"(total not yet remembered) {pg['inproc']['cold'][s]:.0f} ms "
                              f"(SQLite {sq['inproc']['cold'][s]:.0f})"))
        rows.append(row("postgres", f"search p95 gunicorn {name}", pg[s]["p95"],
                        "ms", baseline=sq[s]["p95"], better="lower", detail=True,
                        notes=f"{workers} clients = workers; p50 {pg[s]['p50']:.1f} ms "
                              f"(SQLite {sq[s]['p50']:.1f} ms)"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=2000)
    ap.add_argument("--base", type=int, default=BASE,
                    help="studies loaded genuinely; the rest are SQL copies of them")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pg", default=os.environ.get("FHIRTRIAL_BENCH_PG"),
                    help="an empty PostgreSQL database to use instead of a throwaway cluster")
    args = ap.parse_args()
    f = compare(args.studies, args.requests, args.clients, args.workers, args.pg, args.base)
    print(f"{args.studies} studies; gunicorn -w {args.workers}; {os.cpu_count()} CPUs shared "
          "by clients, servers and PostgreSQL")
    print(f"{'':62} {'SQLite':>24} {'PostgreSQL':>24}")
    for key, label in (("bulk", "load, bulk (studies/s)"),
                       ("single", "load, a transaction per study (studies/s)"),
                       ("clone_s", "setup: SQL copies (s)")):
        print(f"{label:62} {f['sqlite']['load'][key]:24.1f} "
              f"{f['postgresql']['load'][key]:24.1f}")
    for kind in ("read", "search", *SEARCHES):
        cells = []
        for name in ("sqlite", "postgresql"):
            r = f[name]["inproc"][kind]
            cells.append(f"p50 {r['p50']:5.1f} p95 {r['p95']:5.1f} ms")
        print(f"{'in-process ' + kind.removeprefix('/fhir/')[:51]:62} {cells[0]:>24} "
              f"{cells[1]:>24}")
    for kind in ("read", "search", *SEARCHES):
        cells = []
        for name in ("sqlite", "postgresql"):
            r = f[name][kind]
            cells.append(f"p50 {r['p50']:5.1f} p95 {r['p95']:5.1f} ms")
        print(f"{'gunicorn ' + kind.removeprefix('/fhir/')[:53]:62} {cells[0]:>24} "
              f"{cells[1]:>24}")
    for kind in ("read_tp", "search_tp"):
        cells = [f"{f[name][kind]['rps']:6.0f}/s p95 {f[name][kind]['p95']:6.1f} ms"
                 for name in ("sqlite", "postgresql")]
        print(f"{kind + f' ({args.clients} clients)':62} {cells[0]:>24} {cells[1]:>24}")


if __name__ == "__main__":
    main()
