"""PostgreSQL store beside the SQLite store, in the same run: the same generated studies
loaded into each, then the same reads and searches against ``fhirtrial.server`` under
gunicorn on each.

    python bench/bench_postgres.py --studies 2000           # a throwaway local cluster
    python bench/bench_postgres.py --studies 100000 --pg postgresql://u@host/db   # a server

Without ``--pg`` (or ``FHIRTRIAL_BENCH_PG``) a throwaway cluster is started from the local
PostgreSQL binaries (tests/pg.py), with PostgreSQL's durable defaults (fsync on,
synchronous_commit on: every acknowledged study is on disk). SQLite runs as the store does
(WAL, synchronous=NORMAL). Loading goes through the store's transaction Bundle processor, one
transaction per study (study, two sites, a sponsor), validation off, as ``fhirtrial load
--no-validate`` does. ``run(quick)`` gives rows for ``bench/run.py``: 2,000 studies quick,
100,000 full; each PostgreSQL row's baseline is the SQLite figure.
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
    _wsgi_get,
    free_port,
    generate,
    hammer,
    request_paths,
    start_gunicorn,
)
from benchlib import Unavailable, row, stop_and_peak  # noqa: E402

SERVER = "fhirtrial.server:create_app()"


def load(db: str, n: int) -> float:
    """Seconds to load ``n`` generated studies into the store ``db`` names."""
    from fhirtrial.server.bundles import process
    from fhirtrial.server.searchparams import REGISTRY
    from fhirtrial.server.stores import open_store

    store = open_store(db)
    t0 = time.perf_counter()
    for b in generate(n):
        process(store, "R5", b, base="", validate=False,
                supported=lambda t: t in REGISTRY["R5"], default_count=20,
                representation=False)
    store.analyze()
    secs = time.perf_counter() - t0
    store.close()
    return secs


def hammer_store(db: str, read_paths: list[str], search_paths: list[str], workers: int,
                 clients: int) -> tuple[dict, float | None]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "FHIRTRIAL_DB": db,
           "FHIRTRIAL_DB_POOL_MAX": "2"}
    port = free_port()
    proc = start_gunicorn(SERVER, port, workers, env, str(ROOT))
    out: dict = {}
    try:
        hammer(port, read_paths[:200], clients)  # warm up: connections, caches
        hammer(port, search_paths[:len(SEARCHES) * 2], clients)
        out["read"] = hammer(port, read_paths, clients)
        out["search"] = hammer(port, search_paths, clients)
        for s in SEARCHES:
            out[s] = hammer(port, [s] * 60, clients)
    finally:
        peak = stop_and_peak(proc)
    return out, peak


def in_process(db: str, read_paths: list[str], rounds: int = 30) -> dict:
    """Latency of each request through the server's WSGI app, one at a time, no sockets:
    what the store and the server cost, apart from HTTP and client threads."""
    import statistics

    os.environ["FHIRTRIAL_DB"] = db
    from fhirtrial.server import create_app

    app = create_app({"DB": db})
    out: dict = {}
    for kind, paths in (("read", read_paths[:rounds * 4]), ("search", SEARCHES * rounds)):
        for p in paths[:len(SEARCHES)]:
            _wsgi_get(app, p)  # warm: connections, prepared statements
        lat = []
        for p in paths:
            t = time.perf_counter()
            _wsgi_get(app, p)
            lat.append((time.perf_counter() - t) * 1000)
        q = statistics.quantiles(lat, n=100)
        out[kind] = {"p50": q[49], "p95": q[94], "n": len(lat)}
    app.extensions["fhirtrial.store"].close()
    return out


def compare(n: int, requests: int, clients: int, workers: int, pg_url: str | None) -> dict:
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
            secs = load(db, n)
            res, peak = hammer_store(db, read_paths, search_paths, workers, clients)
            figures[name] = {"load": n / secs, "peak": peak, **res,
                             "inproc": in_process(db, read_paths)}
        return figures
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def run(quick: bool) -> list[dict]:
    n, requests, clients, workers = (2000, 800, 8, 2) if quick else (100_000, 4000, 8, 2)
    f = compare(n, requests, clients, workers, os.environ.get("FHIRTRIAL_BENCH_PG"))
    sq, pg = f["sqlite"], f["postgresql"]
    setup = f"gunicorn -w {workers}, {clients} keep-alive clients, {n} studies"
    rows = [row("postgres", "load, validation off", pg["load"], "studies/s",
                baseline=sq["load"], notes=f"{n} studies x 4 resources, a transaction per "
                "study, fsync on; baseline: the same into SQLite (WAL, synchronous=NORMAL)")]
    for kind in ("read", "search"):
        what = "GET ResearchStudy/<id>" if kind == "read" else f"{len(SEARCHES)} searches mixed"
        err = pg[kind]["errors"] + sq[kind]["errors"]
        rows.append(row("postgres", f"{kind} throughput", pg[kind]["rps"], "req/s",
                        baseline=sq[kind]["rps"],
                        notes=f"{what}; {setup}; baseline: SQLite store"
                              + (f"; {err} ERRORS" if err else "")))
        for q in ("p50", "p95", "p99"):
            rows.append(row("postgres", f"{kind} latency {q}", pg[kind][q], "ms",
                            baseline=sq[kind][q], better="lower",
                            notes=f"baseline: SQLite store {kind} {q}"))
    for kind in ("read", "search"):
        a, b = pg["inproc"][kind], sq["inproc"][kind]
        rows.append(row("postgres", f"{kind} latency p95, in-process", a["p95"], "ms",
                        baseline=b["p95"], better="lower",
                        notes=f"one request at a time through the WSGI app, {a['n']} requests "
                              f"({'the search mix' if kind == 'search' else 'reads'}); p50 "
                              f"{a['p50']:.1f} ms; baseline: SQLite store"))
    for s in SEARCHES:
        rows.append(row("postgres", f"search p95 {s.removeprefix('/fhir/')}", pg[s]["p95"],
                        "ms", baseline=sq[s]["p95"], better="lower", detail=True,
                        notes=f"p50 {pg[s]['p50']:.1f} ms (SQLite {sq[s]['p50']:.1f} ms)"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pg", default=os.environ.get("FHIRTRIAL_BENCH_PG"),
                    help="an empty PostgreSQL database to use instead of a throwaway cluster")
    args = ap.parse_args()
    f = compare(args.studies, args.requests, args.clients, args.workers, args.pg)
    print(f"{args.studies} studies; gunicorn -w {args.workers}; {args.clients} clients; "
          f"{os.cpu_count()} CPUs shared by clients, servers and PostgreSQL")
    print(f"{'':62} {'SQLite':>22} {'PostgreSQL':>22}")
    print(f"{'load (studies/s)':62} {f['sqlite']['load']:22.0f} {f['postgresql']['load']:22.0f}")
    for kind in ("read", "search"):
        cells = [f"p50 {f[n]['inproc'][kind]['p50']:5.1f} p95 {f[n]['inproc'][kind]['p95']:5.1f} ms"
                 for n in ("sqlite", "postgresql")]
        print(f"{kind + ' in-process, one at a time':62} {cells[0]:>22} {cells[1]:>22}")
    for kind in ("read", "search", *SEARCHES):
        cells = []
        for name in ("sqlite", "postgresql"):
            r = f[name][kind]
            cells.append(f"{r['rps']:6.0f}/s p95 {r['p95']:6.1f} ms")
        print(f"{kind.removeprefix('/fhir/')[:62]:62} {cells[0]:>22} {cells[1]:>22}")


if __name__ == "__main__":
    main()
