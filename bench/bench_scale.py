"""Read and search latency of the SQLite store at registry size against the same at 2,000
studies, in the same run: the acceptance "at 550,000 studies, read p95 and search p95 within 2x
of their 2,000-study figures".

    python bench/bench_scale.py                      # 2,000 and 550,000 studies
    python bench/bench_scale.py --sizes 2000 100000  # any sizes; the first is the baseline

Each store is built as ``bench_postgres.load`` builds it: 2,000 generated studies through the
bulk loader, the rest SQL copies of them under new ids (``bench/clone_store.py``: setup, not a
load rate; converting and loading 550,000 records takes over an hour on 2 cores), then 300
studies written one transaction each. Latency is measured in-process (the WSGI app, one request
at a time: the store's and the server's cost without HTTP or client threads), reads of random
studies and the 9-search mix of ``bench_server.SEARCHES``, totals remembered after the first
request of each search (the "cold" first request is reported apart). Each size's ratio is its
p95 over the baseline size's p95. Each latency is given as wall time and as the request's CPU
time (the serving thread's): on a shared machine a request that loses its core waits a
scheduler tick or more, so the CPU rows show what the store costs whatever else runs, and the
wall rows what a client saw in this run. The reads are then measured again, on other random
studies, after the store file was read through once: right after a registry-size build the
page cache holds what was written last (index builds), so the first reads go to disk; a
server that has run a while holds what fits in memory.
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

from bench_postgres import in_process, load  # noqa: E402
from bench_server import SEARCHES, request_paths  # noqa: E402


def measure(n: int, tmp: str, requests: int) -> dict:
    db = os.path.join(tmp, f"scale-{n}.sqlite")
    t0 = time.perf_counter()
    loads = load(db, n)
    built = time.perf_counter() - t0
    read_paths, _ = request_paths(n, requests)
    figures = in_process(db, read_paths)
    # then as a server that has run a while sees it: the file read through once (the OS
    # keeps what fits in memory), reads of other random studies
    t0 = time.perf_counter()
    _read_through(db)
    warmed = time.perf_counter() - t0
    again = in_process(db, read_paths[len(read_paths) // 2:])
    size = os.path.getsize(db) / 2**20
    os.remove(db)
    return {"n": n, "built_s": built, "size_mib": size, "loads": loads, **figures,
            "read_warm": again["read"], "warm_s": warmed}


def _read_through(db: str) -> None:
    with open(db, "rb") as f:
        while f.read(16 << 20):
            pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 550_000])
    ap.add_argument("--requests", type=int, default=1000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="fhirtrial-bench-scale-")
    try:
        runs = [measure(n, tmp, args.requests) for n in args.sizes]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = runs[0]
    print(f"SQLite store, in-process, one request at a time; {os.cpu_count()} CPUs; "
          f"baseline: {base['n']:,} studies in the same run")
    for r in runs:
        print(f"{r['n']:>8,} studies: store {r['size_mib']:.0f} MiB, built in {r['built_s']:.0f} s "
              f"(copies {r['loads']['clone_s']:.0f} s); bulk load {r['loads']['bulk']:.0f} "
              f"studies/s, a transaction per study at this size {r['loads']['single']:.0f}/s; "
              f"file read through in {r['warm_s']:.0f} s")
    print(f"{'metric':<44} " + " ".join(f"{r['n']:>10,}" for r in runs) + "   ratio (last/first)")
    for kind in ("read", "search", "read_warm"):
        for q in ("p50", "p95", "p99", "cpu_p50", "cpu_p95", "cpu_p99"):
            vals = [r[kind][q] for r in runs]
            label = f"{kind.replace('_warm', ' (file read once)')} {q.removeprefix('cpu_')} " \
                + ("CPU (ms)" if q.startswith("cpu") else "(ms)")
            print(f"{label:<44} " + " ".join(f"{v:>10.2f}" for v in vals)
                  + f"   {vals[-1] / vals[0]:.2f}x")
    for s in SEARCHES:
        vals = [r[s]["p95"] for r in runs]
        cpu = [r[s]["cpu_p95"] for r in runs]
        cold = [r["cold"][s] for r in runs]
        print(f"{'p95 ' + s.removeprefix('/fhir/')[:40]:<44} " + " ".join(
            f"{v:>10.2f}" for v in vals) + f"   {vals[-1] / vals[0]:.2f}x   CPU "
            + " / ".join(f"{c:.2f}" for c in cpu) + f" ms ({cpu[-1] / cpu[0]:.2f}x); "
            "first request " + " / ".join(f"{c:.0f}" for c in cold) + " ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
