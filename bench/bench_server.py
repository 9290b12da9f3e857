"""Server benchmark: load N generated studies, then read and search under concurrent clients
against gunicorn, with a bare WSGI app serving the same stored bytes as the baseline.

    python bench/bench_server.py --studies 10000 --clients 8 --requests 4000
    python bench/bench_server.py --studies 3000 --in-process   # per-request cost, no sockets

``--in-process`` calls both WSGI apps directly, one request at a time, and reports the best of
several rounds: on a machine shared with other work, this is the figure that stays stable
from run to run (HTTP throughput there mostly measures the neighbours).

Studies are generated from the official R5 ClinicalTrials.gov ResearchStudy example
(NCT05503693, ../shared/fhir-examples) — or from the converter's output for the shared records
when ``fhirtrial.convert.convert_study`` is available — varying id, identifier, title, phase,
status, condition, period, sites and sponsor, so indexes see realistic cardinalities.
Without ../shared (a fresh clone elsewhere) the ResearchStudy the converter builds from the
project's seed record is the template instead.

The load rate is compared with a bare SQLite baseline: the same resources serialised with
``json.dumps`` and inserted into one keyed table, one commit per study (WAL, synchronous=NORMAL
as the store uses) — the floor of any durable per-study write. ``run(quick)`` gives the figures
as rows for ``bench/run.py``: 2,000 studies quick, 100,000 full.
"""

from __future__ import annotations

import argparse
import copy
import http.client
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

from benchlib import SEED, peak_rss_mib, row, stop_and_peak  # noqa: E402

EXAMPLE = ROOT.parent / "shared" / "fhir-examples" / "r5" / \
    "ResearchStudy-example-ctgov-study-record.json"
PHASES = ["phase-1", "phase-2", "phase-3", "phase-4", "phase-1-phase-2", "not-applicable"]
STATES = ["recruiting", "completed", "active-but-not-recruiting", "not-yet-recruiting",
          "withdrawn", "terminated"]
CONDITIONS = ["Diabetes", "Obesity", "Stroke", "Asthma", "Breast Cancer", "Hypertension",
              "COVID-19", "Depression", "HIV", "Alzheimer Disease"]


def _template() -> dict:
    if EXAMPLE.is_file():
        return json.loads(EXAMPLE.read_text())
    from fhirtrial.convert import convert_study
    from fhirtrial.sources import parse_bytes

    study = next(r.study for r in parse_bytes(SEED.read_bytes(), SEED.name) if r.study)
    resource = next(e["resource"] for e in convert_study(study).bundle["entry"]
                    if e["resource"]["resourceType"] == "ResearchStudy")
    # its references name other entries of the seed's Bundle, absent from the generated ones
    return {k: v for k, v in resource.items() if "urn:uuid:" not in json.dumps(v)}


def generate(n: int, seed: int = 7, start: int = 0):
    """Yield transaction Bundles, one per study (study + 2 sites + sponsor); ``start``
    numbers them from NCT1xxxxxxx + start (more studies for a store that has the first)."""
    rnd = random.Random(seed)
    template = _template()
    template.pop("contained", None)
    template.pop("text", None)
    for i in range(start, start + n):
        s = copy.deepcopy(template)
        nct = f"NCT{10000000 + i}"
        s["id"] = nct
        s["identifier"] = [{"use": "official", "system": "http://clinicaltrials.gov",
                            "value": nct}]
        s["title"] = f"{rnd.choice(CONDITIONS)} study {i}: {template['title']}"
        s["phase"] = {"coding": [{"system": "http://hl7.org/fhir/research-study-phase",
                                  "code": rnd.choice(PHASES)}]}
        s["progressStatus"] = [{"state": {"coding": [{
            "system": "http://hl7.org/fhir/research-study-status",
            "code": rnd.choice(STATES)}]}}]
        cond = rnd.choice(CONDITIONS)
        s["condition"] = [{"text": cond, "coding": [{"system": "http://id.nlm.nih.gov/mesh",
                                                     "code": f"D{CONDITIONS.index(cond):06d}",
                                                     "display": cond}]}]
        y = rnd.randint(2005, 2025)
        s["period"] = {"start": f"{y}-{rnd.randint(1, 12):02d}", "end": f"{y + 3}-12-31"}
        s["recruitment"] = {"targetNumber": rnd.randint(10, 2000)}
        locs = []
        for k in range(2):
            lid = f"{nct}-site-{k}"
            locs.append({"resourceType": "Location", "id": lid, "name": f"Site {k} of {nct}",
                         "position": {"latitude": rnd.uniform(25, 49),
                                      "longitude": rnd.uniform(-124, -67)}})
        org = {"resourceType": "Organization", "id": f"org-{i % 500}",
               "name": f"Sponsor {i % 500}"}
        s["site"] = [{"reference": f"Location/{loc['id']}"} for loc in locs]
        s["associatedParty"] = [{"role": {"coding": [{
            "system": "http://hl7.org/fhir/research-study-party-role",
            "code": "lead-sponsor"}]}, "party": {"reference": f"Organization/{org['id']}"}}]
        entries = [{"resource": r, "request": {"method": "PUT",
                                               "url": f"{r['resourceType']}/{r['id']}"}}
                   for r in (*locs, org, s)]
        yield {"resourceType": "Bundle", "type": "transaction", "entry": entries}


class Untimed:
    """The Bundles of :func:`generate`, and the seconds spent making them (``secs``): the
    synthetic input — a deep copy of a 17 KB template per study, costlier than the baseline's
    whole write — is neither side's work, so each side's timer leaves it out."""

    def __init__(self, bundles: Iterator[dict]) -> None:
        self.bundles = bundles
        self.secs = 0.0

    def __iter__(self) -> Iterator[dict]:
        while True:
            t = time.perf_counter()
            b = next(self.bundles, None)
            self.secs += time.perf_counter() - t
            if b is None:
                return
            yield b


def load(db: str, n: int, validate: bool) -> tuple[float, int]:
    """Seconds to load ``n`` studies as ``fhirtrial load`` does (the input's making left out),
    and the number of resources written."""
    from fhirtrial.server.bundles import process
    from fhirtrial.server.searchparams import REGISTRY
    from fhirtrial.server.store import SQLiteStore

    store = SQLiteStore(db)
    bundles = Untimed(generate(n))
    t0 = time.perf_counter()
    resources = 0
    # as `fhirtrial load` does: many studies per transaction, indexes built once at the end
    with store.bulk() as bulk:
        for b in bundles:
            process(bulk, "R5", b, base="", validate=validate,
                    supported=lambda t: t in REGISTRY["R5"], default_count=20,
                    representation=False)
            resources += len(b["entry"])
    store.analyze()
    return time.perf_counter() - t0 - bundles.secs, resources


def load_baseline(db: str, n: int) -> float:
    """Seconds to write the same resources as JSON into one keyed table, a commit per study
    (the input's making left out)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE r (type TEXT, id TEXT, body BLOB, PRIMARY KEY (type, id))")
    bundles = Untimed(generate(n))
    t0 = time.perf_counter()
    for b in bundles:
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO r VALUES (?, ?, ?)",
                         [(e["resource"]["resourceType"], e["resource"]["id"],
                           json.dumps(e["resource"]).encode()) for e in b["entry"]])
        conn.execute("COMMIT")
    secs = time.perf_counter() - t0 - bundles.secs
    conn.close()
    return secs


BARE_APP = '''
import sqlite3, threading
_local = threading.local()
DB = {db!r}
def app(environ, start_response):
    conn = getattr(_local, "c", None)
    if conn is None:
        conn = _local.c = sqlite3.connect(DB, check_same_thread=False)
    parts = environ["PATH_INFO"].strip("/").split("/")
    if len(parts) == 2:  # a type search: one page of stored bodies in a Bundle, no count
        rows = conn.execute("SELECT body FROM current WHERE fv='R5' AND type=? AND body IS NOT "
                            "NULL ORDER BY id LIMIT 20", (parts[-1],)).fetchall()
        body = (b'{{"resourceType":"Bundle","type":"searchset","entry":['
                + b",".join(b'{{"resource":' + r[0] + b"}}" for r in rows) + b"]}}")
        start_response("200 OK", [("Content-Type", "application/fhir+json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    row = conn.execute("SELECT body FROM current WHERE fv='R5' AND type=? AND id=?",
                       (parts[-2], parts[-1])).fetchone()
    if row is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    start_response("200 OK", [("Content-Type", "application/fhir+json"),
                              ("Content-Length", str(len(row[0])))])
    return [row[0]]
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(target: str, port: int, workers: int, env: dict, cwd: str):
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", target], env=env, cwd=cwd)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"gunicorn {target} did not start")


def hammer(port: int, paths: list[str], clients: int) -> dict:
    """Each client thread keeps one keep-alive connection and takes paths round-robin."""
    lat: list[float] = []
    lock = threading.Lock()
    errors = [0]

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        for path in paths[k::clients]:
            t = time.perf_counter()
            conn.request("GET", path, headers={"Accept": "application/fhir+json"})
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - t)
            if resp.status != 200:
                errors[0] += 1
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        with lock:
            lat.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100)
    return {"rps": len(lat) / wall, "p50": q[49] * 1000, "p95": q[94] * 1000,
            "p99": q[98] * 1000, "errors": errors[0], "n": len(lat)}


def _wsgi_get(app, path: str) -> bytes:
    import io

    p, _, qs = path.partition("?")
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": p, "QUERY_STRING": qs,
           "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1",
           "HTTP_HOST": "127.0.0.1:8080", "HTTP_ACCEPT": "application/fhir+json",
           "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr,
           "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False}
    status: list[str] = []
    body = app(env, lambda s, h, e=None: status.append(s))
    data = b"".join(body)
    if hasattr(body, "close"):
        body.close()
    if not status[0].startswith("200"):
        raise RuntimeError(f"{path}: {status[0]}")
    return data


def in_process(db: str, paths: list[str], rounds: int = 7, n: int = 40) -> None:
    """Per-request cost of each path through each app: best of ``rounds`` batches of ``n``."""
    os.environ["FHIRTRIAL_DB"] = db
    from fhirtrial.server import create_app

    bare: dict = {}
    exec(BARE_APP.format(db=db), bare)  # the baseline app defined above
    apps = {"bare WSGI (stored bytes)": bare["app"], "fhirtrial server": create_app()}
    print(f"\nin-process, one request at a time, best of {rounds} x {n} (ms per request)")
    print(f"{'path':72} {'bare':>8} {'server':>8} {'KB':>6}")
    for path in paths:
        best = {}
        for label, app in apps.items():
            if label.startswith("bare") and not (path.startswith("/fhir/ResearchStudy/")
                                                 or path == "/fhir/ResearchStudy?_count=20"):
                continue
            size = len(_wsgi_get(app, path))
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                for _ in range(n):
                    _wsgi_get(app, path)
                times.append((time.perf_counter() - t) / n * 1000)
            best[label] = min(times)
        b = best.get("bare WSGI (stored bytes)")
        print(f"{path[:72]:72} {(f'{b:8.3f}' if b else '       -')} "
              f"{best['fhirtrial server']:8.3f} {size / 1000:6.0f}")


BROAD = "/fhir/ResearchStudy?_count=20"  # every study matches: total over all
SEARCHES = [
    BROAD,
    "/fhir/ResearchStudy?_count=20&_include=ResearchStudy:site&_include=ResearchStudy:sponsor",
    "/fhir/ResearchStudy?progress-status-state=recruiting&phase=phase-2&_count=20",
    "/fhir/ResearchStudy?condition:text=diab&_count=20",
    "/fhir/ResearchStudy?title=stroke&_count=20",
    "/fhir/ResearchStudy?date=ge2020-01-01&recruitment-target=gt500&_count=20",
    "/fhir/ResearchStudy?identifier=http://clinicaltrials.gov|NCT10000042",
    "/fhir/Location?near=42.36|-71.06|100|km&_revinclude=ResearchStudy:site&_count=20",
    "/fhir/ResearchStudy?sponsor=Organization/org-7&_include=ResearchStudy:site&_count=20",
]
BARE = "bare WSGI (stored bytes)"
SERVER = "fhirtrial server"


def request_paths(nstudies: int, requests: int) -> tuple[list[str], list[str]]:
    """Random reads over the stored studies and the search mix, the same in every run."""
    rnd = random.Random(1)
    ids = [f"NCT{10000000 + rnd.randrange(nstudies)}" for _ in range(requests)]
    return ([f"/fhir/ResearchStudy/{i}" for i in ids],
            [SEARCHES[i % len(SEARCHES)] for i in range(requests // 4)])


def serve_and_hammer(db: str, read_paths: list[str], search_paths: list[str], workers: int,
                     clients: int) -> tuple[dict, dict[str, float | None]]:
    """Throughput and latency per (server, kind), and each gunicorn's peak RSS in MiB."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "FHIRTRIAL_DB": db}
    bare_dir = tempfile.mkdtemp(prefix="fhirtrial-bare-")
    Path(bare_dir, "bare_wsgi.py").write_text(BARE_APP.format(db=db))
    results: dict = {}
    peaks: dict[str, float | None] = {}
    for label, target, cwd in ((BARE, "bare_wsgi:app", bare_dir),
                               (SERVER, "fhirtrial.server:create_app()", str(ROOT))):
        port = free_port()
        proc = start_gunicorn(target, port, workers, env, cwd)
        try:
            hammer(port, read_paths[:200], clients)  # warm up
            results[(label, "read")] = hammer(port, read_paths, clients)
            results[(label, BROAD)] = hammer(port, [BROAD] * 200, clients)
            if label == SERVER:
                hammer(port, search_paths[:len(SEARCHES)], clients)
                results[(label, "search")] = hammer(port, search_paths, clients)
                for s in SEARCHES[1:]:
                    results[(label, s)] = hammer(port, [s] * 80, clients)
        finally:
            peaks[label] = stop_and_peak(proc)
    shutil.rmtree(bare_dir, ignore_errors=True)
    return results, peaks


def run(quick: bool) -> list[dict]:
    """Server rows: load rate, read/search throughput and latency vs the bare WSGI app."""
    n, requests, clients, workers = (2000, 1000, 8, 2) if quick else (100_000, 4000, 8, 2)
    tmp = tempfile.mkdtemp(prefix="fhirtrial-bench-")
    try:
        db = os.path.join(tmp, "bench.sqlite")
        base_secs = load_baseline(os.path.join(tmp, "baseline.sqlite"), n)
        secs, nres = load(db, n, validate=False)
        load_peak = peak_rss_mib()
        size = Path(db).stat().st_size
        read_paths, search_paths = request_paths(n, requests)
        res, peaks = serve_and_hammer(db, read_paths, search_paths, workers, clients)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    bare = res[(BARE, "read")]
    setup = f"gunicorn -w {workers}, {clients} keep-alive clients, {n} studies stored"
    rows = [row("server", "load, validation off", n / secs, "studies/s",
                baseline=n / base_secs,
                notes=f"{nres} resources, {size / 1e6:.0f} MB store; baseline json.dumps + "
                      "INSERT into one keyed table, a commit per study")]
    for kind in ("read", "search"):
        r = res[(SERVER, kind)]
        what = "GET ResearchStudy/<id>" if kind == "read" else f"{len(SEARCHES)} searches mixed"
        err = f"; {r['errors']} ERRORS" if r["errors"] else ""
        rows.append(row("server", f"{kind} throughput", r["rps"], "req/s", baseline=bare["rps"],
                        notes=f"{what}, {r['n']} requests; {setup}; baseline bare WSGI app "
                              f"reading the stored bytes{err}"))
        for q in ("p50", "p95", "p99"):
            rows.append(row("server", f"{kind} latency {q}", r[q], "ms", baseline=bare[q],
                            better="lower", notes=f"baseline: bare WSGI read {q}"))
    r, b = res[(SERVER, BROAD)], res[(BARE, BROAD)]
    rows.append(row("server", "broad search throughput", r["rps"], "req/s", baseline=b["rps"],
                    notes="ResearchStudy?_count=20 (every study matches); baseline bare WSGI "
                          "page of 20 stored bodies, no total"))
    rows.append(row("server", "broad search latency p95", r["p95"], "ms", baseline=b["p95"],
                    better="lower", notes="baseline: bare WSGI page p95"))
    for s in SEARCHES[1:]:
        r = res[(SERVER, s)]
        rows.append(row("server", f"search {s.removeprefix('/fhir/')}", r["rps"], "req/s",
                        baseline=bare["rps"], detail=True,
                        notes=f"p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms"))
    rows.append(row("memory", "server: loading process", load_peak, "MiB", better="lower",
                    notes=f"peak RSS of the process that loaded {n} studies"))
    if peaks[SERVER] is not None:  # None where /proc is absent
        rows.append(row("memory", "server: gunicorn, largest process", peaks[SERVER], "MiB",
                        better="lower", baseline=peaks[BARE],
                        notes="baseline: the bare WSGI app under the same gunicorn"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--validate", action="store_true", help="validate every resource on load")
    ap.add_argument("--db", default=None, help="reuse/keep this SQLite file")
    ap.add_argument("--in-process", action="store_true",
                    help="time each request through the WSGI apps directly (no gunicorn)")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="fhirtrial-bench-")
    try:
        db = args.db or os.path.join(tmp, "bench.sqlite")
        fresh = not Path(db).exists()
        if fresh:
            secs, nres = load(db, args.studies, args.validate)
            print(f"load: {args.studies} studies ({nres} resources) in {secs:.1f}s = "
                  f"{args.studies / secs:.0f} studies/s, {nres / secs:.0f} resources/s "
                  f"(validation {'on' if args.validate else 'off'})")
            minutes = 550000 / (args.studies / secs) / 60
            print(f"  extrapolated to 550,000 studies: {minutes:.0f} min")
        conn = sqlite3.connect(db)
        nstudies = conn.execute("SELECT count(*) FROM current WHERE type='ResearchStudy'"
                                ).fetchone()[0]
        size = Path(db).stat().st_size
        print(f"store: {nstudies} studies, {size / 1e6:.0f} MB")
        conn.close()

        read_paths, search_paths = request_paths(nstudies, args.requests)
        if args.in_process:
            in_process(db, [read_paths[0], *SEARCHES, f"{BROAD}&_offset=2000"])
            return
        results, _ = serve_and_hammer(db, read_paths, search_paths, args.workers, args.clients)

        print(f"\ngunicorn, {args.workers} sync workers; {args.clients} concurrent keep-alive "
              f"clients; {os.cpu_count()} CPUs shared by clients and server")
        print(f"{'':28} {'kind':60} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
        for (label, kind), r in results.items():
            print(f"{label:28} {kind[:60]:60} {r['rps']:8.0f} {r['p50']:8.1f} {r['p95']:8.1f} "
                  f"{r['p99']:8.1f}" + (f"  ERRORS {r['errors']}" if r["errors"] else ""))
        base = results[(BARE, "read")]["rps"]
        srv = results[(SERVER, "read")]["rps"]
        print(f"\nread throughput ratio server / bare WSGI baseline: {srv / base:.2f}")
        base = results[(BARE, BROAD)]["rps"]
        srv = results[(SERVER, BROAD)]["rps"]
        print(f"broad search (20 per page) ratio server / bare WSGI page of stored bodies: "
              f"{srv / base:.2f}")
    finally:
        # (the store is thrown away unless --db names where to keep it)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
