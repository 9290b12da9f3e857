"""Bulk conversion benchmark: a zip of the shared records plus generated variants, converted
with --jobs 1 (the baseline) and --jobs 2, reporting wall time, speed-up and peak RSS.

    python bench/bench_bulk.py                 # 10,000 variants, full conversion
    python bench/bench_bulk.py --variants 2000 # quicker
    python bench/bench_bulk.py --read-only     # reading stage only (no FHIR building)

Variants are made from the real v2 records of ../shared/fixtures/ctgov-v2: each gets a new NCT
id and title and loses a rotating share of its list entries (sites, outcomes, references), so
records vary in size like real ones. Each configuration runs in a fresh process; peak RSS is
the largest resident set of that process and of any of its worker processes. Memory is bounded
when it stays flat as the number of records grows: the run at a quarter of the variants is
reported beside the full run for that comparison. Without ../shared the variants are made
from the project's seed record. ``run(quick)`` gives the figures as rows for ``bench/run.py``
(300 variants quick, 10,000 full).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import SHARED, row, v2_records  # noqa: E402


def _variant(study: dict, i: int) -> dict:
    s = json.loads(json.dumps(study))
    ps = s["protocolSection"]
    ps["identificationModule"]["nctId"] = f"NCT9{i:07d}"
    ps["identificationModule"]["briefTitle"] = (
        f"{ps['identificationModule'].get('briefTitle', 'Study')} (variant {i})")
    for module, key in (("contactsLocationsModule", "locations"),
                        ("outcomesModule", "secondaryOutcomes"),
                        ("referencesModule", "references")):
        items = ps.get(module, {}).get(key)
        if isinstance(items, list) and items:
            keep = max(1, len(items) - (i % (len(items) + 1)))
            ps[module][key] = items[:keep]
    return s


def build_zip(path: Path, variants: int) -> tuple[int, int]:
    """Write the benchmark zip; returns (records, uncompressed bytes)."""
    studies = [json.loads(b) for _, b in v2_records()[0]]
    total = 0
    count = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        # the real records as they are, in every format, where ../shared is there
        for folder in ("ctgov-v2", "ctgov-v2-partial", "ctgov-xml"):
            where = SHARED / "fixtures" / folder
            for p in sorted(where.iterdir()) if where.is_dir() else []:
                data = p.read_bytes()
                zf.writestr(f"{folder}/{p.name}", data)
                total += len(data)
                count += 1
        seed_text = SHARED / "seed" / "000_0e34bf711cacdb3f.txt"
        if seed_text.is_file():
            seed = seed_text.read_bytes()
            zf.writestr("seed/NCT06534528.txt", seed)
            total, count = total + len(seed), count + 1
        for i in range(variants):
            data = json.dumps(_variant(studies[i % len(studies)], i)).encode()
            zf.writestr(f"variants/NCT9{i:07d}.json", data)
            total += len(data)
            count += 1
    return count, total


def child(args: list[str]) -> None:
    """Run one configuration in this process and print timing and peak RSS as JSON."""
    mode, zip_path, out, jobs = args[0], args[1], args[2], int(args[3])
    sys.path.insert(0, str(ROOT / "src"))
    start = time.perf_counter()
    records = 0
    if mode == "convert":
        from click.testing import CliRunner

        from fhirtrial.cli import main

        result = CliRunner().invoke(main, ["convert", zip_path, "-o", out, "--jobs", str(jobs),
                                           "-q"], catch_exceptions=False)
        with open(out, "rb") as f:
            records = sum(1 for _ in f)
        status = result.exit_code
    else:
        from fhirtrial.sources.bulk import iter_units, ordered_map

        for n in ordered_map(_read_count, iter_units([zip_path]), jobs):
            records += n
        status = 0
    elapsed = time.perf_counter() - start
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": elapsed, "records": records, "exit": status,
                      "peak_rss_kib": max(rss_self, rss_children)}))


def _read_count(unit) -> int:  # type: ignore[no-untyped-def]
    from fhirtrial.sources import parse_unit

    return sum(1 for r in parse_unit(unit) if r.study is not None)


def measure(mode: str, zip_path: Path, out: Path, jobs: int) -> dict:
    """One configuration in a fresh process: seconds, records, exit code and peak RSS."""
    proc = subprocess.run([sys.executable, __file__, "--child", mode, str(zip_path), str(out),
                           str(jobs)], capture_output=True, text=True, check=False,
                          env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[dict]:
    """Bulk rows: records/s with --jobs 2 vs --jobs 1, and peak RSS as the input grows 4x."""
    variants = 300 if quick else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        small_zip, big_zip = t / "quarter.zip", t / "full.zip"
        n_small, _ = build_zip(small_zip, variants // 4)
        n_big, raw = build_zip(big_zip, variants)
        base = measure("convert", big_zip, t / "j1.ndjson", 1)
        two = measure("convert", big_zip, t / "j2.ndjson", 2)
        small = measure("convert", small_zip, t / "q.ndjson", 2)
    where = f"{n_big} records in a zip ({raw / 1e6:.0f} MB raw), `fhirtrial convert -o x.ndjson`"
    return [
        row("bulk", "convert --jobs 2", two["records"] / two["seconds"], "records/s",
            baseline=base["records"] / base["seconds"],
            notes=f"{where}; baseline --jobs 1; {os.cpu_count()} CPUs"),
        row("bulk", "whole registry (550,000 studies), extrapolated", 550_000 / (
            two["records"] / two["seconds"]) / 60, "min", better="lower",
            notes=f"from the --jobs 2 rate over {n_big} records on {os.cpu_count()} CPUs; "
                  "acceptance: at most 10 min"),
        row("memory", "bulk: convert --jobs 1", base["peak_rss_kib"] / 1024, "MiB",
            better="lower", notes=f"largest process, {n_big} records"),
        row("memory", "bulk: convert --jobs 2", two["peak_rss_kib"] / 1024, "MiB",
            better="lower", baseline=small["peak_rss_kib"] / 1024,
            notes=f"largest process, {n_big} records; baseline the same with {n_small} "
                  "records (ratio ~1: memory bounded)"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", type=int, default=10_000)
    ap.add_argument("--read-only", action="store_true",
                    help="measure the reading stage only (detect, parse, Study model)")
    ns = ap.parse_args()
    mode = "read" if ns.read_only else "convert"
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        small_zip, big_zip = t / "quarter.zip", t / "full.zip"
        n_small, _ = build_zip(small_zip, ns.variants // 4)
        n_big, raw = build_zip(big_zip, ns.variants)
        print(f"mode: {mode}; cores: {os.cpu_count()}")
        print(f"input: {n_big} records in a zip ({big_zip.stat().st_size / 1e6:.1f} MB, "
              f"{raw / 1e6:.1f} MB uncompressed)")
        base = measure(mode, big_zip, t / "j1.ndjson", 1)
        two = measure(mode, big_zip, t / "j2.ndjson", 2)
        small = measure(mode, small_zip, t / "q.ndjson", 2)
        for label, r in (("--jobs 1 (baseline)", base), ("--jobs 2", two)):
            print(f"{label:20} {r['seconds']:8.1f} s  {r['records'] / r['seconds']:8.0f} rec/s  "
                  f"peak RSS {r['peak_rss_kib'] / 1024:6.0f} MiB  "
                  f"({r['records']} records, exit {r['exit']})")
        print(f"speed-up --jobs 2 vs --jobs 1: {base['seconds'] / two['seconds']:.2f}x")
        print(f"peak RSS, --jobs 2: {n_small} records {small['peak_rss_kib'] / 1024:.0f} MiB vs "
              f"{n_big} records {two['peak_rss_kib'] / 1024:.0f} MiB "
              f"(ratio {two['peak_rss_kib'] / small['peak_rss_kib']:.2f} for "
              f"{n_big / n_small:.1f}x the records)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
