"""Whole-registry conversion: `fhirtrial convert <registry zip> -o x.ndjson --jobs 2` at 10,000
and 100,000 records, records/s, the 550,000-study registry extrapolated, peak RSS of each run.

    python bench/registry_zip.py 100000 /work/data/registry-100k.zip   # once (~700 MB)
    python bench/bench_registry.py [--sizes 10000 100000] [--zip100k PATH] [--jobs 2]

The synthetic registry (bench/registry_zip.py: the shared records under new NCT ids, the shape
of ClinicalTrials.gov's bulk download) is made once per size in a temporary folder, or taken
from ``--zip<N>`` / ``$FHIRTRIAL_BENCH_REGISTRY_<N>`` when it exists already (it takes minutes
to write). Each run is a fresh process (`python -m fhirtrial convert`), timed by wall clock;
its peak RSS is the largest resident set of that process and of its workers (``wait4``).
Memory is flat when the 100,000-record peak is about the 10,000-record one. The extrapolation
is linear from the largest run's rate: conversion streams, so the rate does not fall with size.
``run(quick)`` gives the figures as rows for ``bench/run.py``: full mode runs 10,000 and 100,000
(the 100,000-record run alone takes tens of minutes on 2 cores); the quick suite leaves the area
out, and ``--quick --only registry`` runs 1,000 and 10,000.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

REGISTRY = 550_000


def registry_zip(n: int, folder: Path, given: str | None = None) -> Path:
    """A synthetic registry zip of ``n`` records: the given one, or written into ``folder``."""
    given = given or os.environ.get(f"FHIRTRIAL_BENCH_REGISTRY_{n}")
    if given and Path(given).is_file():
        return Path(given)
    from registry_zip import write_registry_zip

    path = folder / f"registry-{n}.zip"
    write_registry_zip(path, n)
    return path


def convert(zip_path: Path, out: Path, jobs: int) -> dict[str, float]:
    """One `fhirtrial convert` in a fresh process: seconds, records written, peak RSS (KiB)."""
    cmd = [sys.executable, "-m", "fhirtrial", "convert", str(zip_path), "-o", str(out),
           "--jobs", str(jobs), "-q"]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        # wait4 on the child: its rusage covers the workers it waited for (the largest process)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    code = proc.returncode
    if code not in (0, 1):  # 1: some records failed, the rest are written
        raise RuntimeError(f"convert failed ({code}): {stderr[-2000:]}")
    with out.open("rb") as f:
        records = sum(1 for _ in f)
    out.unlink()
    return {"seconds": seconds, "records": records, "peak_rss_kib": usage.ru_maxrss,
            "exit": code, "cpu": usage.ru_utime + usage.ru_stime}


def measure(sizes: list[int], jobs: int, given: dict[int, str]) -> list[tuple[int, dict]]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for n in sizes:
            zp = registry_zip(n, t, given.get(n))
            results.append((n, convert(zp, t / f"out-{n}.ndjson", jobs)))
    return results


def run(quick: bool) -> list[dict]:
    """Rows: records/s and peak RSS at 10,000 and 100,000 records, the registry extrapolated."""
    from benchlib import row

    # quick (only with --only registry: the quick suite leaves this area out) 1k and 10k
    results = measure([1_000, 10_000] if quick else [10_000, 100_000], 2, {})
    return rows(results, 2, row)


def rows(results: list[tuple[int, dict]], jobs: int, row) -> list[dict]:  # type: ignore[no-untyped-def]
    out = []
    cpus = os.cpu_count()
    for n, r in results:
        out.append(row("registry", f"convert {n:,} records --jobs {jobs}",
                       r["records"] / r["seconds"], "records/s",
                       notes=f"synthetic registry zip (bench/registry_zip.py), -o x.ndjson; "
                             f"{r['records']} written, {r['seconds']:.0f} s wall, "
                             f"{r['cpu']:.0f} s CPU; {cpus} CPUs"))
    n_big, big = results[-1]
    out.append(row("registry", f"whole registry ({REGISTRY:,} studies), extrapolated",
                   REGISTRY / (big["records"] / big["seconds"]) / 60, "min", better="lower",
                   notes=f"linear from the {n_big:,}-record rate; acceptance: at most 10 min"))
    n_small, small = results[0]
    for n, r in results:
        out.append(row("memory", f"registry: convert {n:,} records", r["peak_rss_kib"] / 1024,
                       "MiB", better="lower",
                       baseline=small["peak_rss_kib"] / 1024 if n != n_small else None,
                       notes="largest process (wait4)" + (
                           f"; baseline the {n_small:,}-record run (ratio ~1: flat)"
                           if n != n_small else "")))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--zip", action="append", default=[], metavar="N=PATH",
                    help="an existing registry zip of N records (repeatable)")
    args = ap.parse_args()
    given = {int(k): v for k, v in (z.split("=", 1) for z in args.zip)}
    print(f"cores: {os.cpu_count()}; --jobs {args.jobs}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for n in sorted(args.sizes):
            zp = registry_zip(n, t, given.get(n))
            r = convert(zp, t / f"out-{n}.ndjson", args.jobs)
            results.append((n, r))
            print(f"{n:>7} records: {r['seconds']:8.1f} s wall, {r['cpu']:8.1f} s CPU, "
                  f"{r['records'] / r['seconds']:7.1f} records/s, peak RSS "
                  f"{r['peak_rss_kib'] / 1024:6.1f} MiB ({r['records']} written, exit "
                  f"{r['exit']})", flush=True)
    n, big = results[-1]
    rate = big["records"] / big["seconds"]
    print(f"whole registry ({REGISTRY:,} studies) extrapolated from the {n:,}-record run: "
          f"{REGISTRY / rate / 60:.1f} min (acceptance: at most 10 min)")
    if len(results) > 1:
        print(f"peak RSS {results[-1][0]:,} vs {results[0][0]:,} records: "
              f"{results[-1][1]['peak_rss_kib'] / results[0][1]['peak_rss_kib']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
