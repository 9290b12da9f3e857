"""Conversion throughput: the 66 shared ClinicalTrials.gov records → R5 Bundles, repeatedly.

Prints studies/second for (a) a baseline measured in the same run — plain ``json.loads`` of each
record and ``json.dumps`` of it back, the floor any converter pays — (b) read + convert + dumps
(what ``fhirtrial convert`` does per study) and their ratio.

    python bench/bench_convert.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fhirtrial.convert import convert_study, dumps  # noqa: E402
from fhirtrial.sources import parse_bytes  # noqa: E402

SHARED_V2 = ROOT.parent / "shared" / "fixtures" / "ctgov-v2"


def _baseline(blobs: list[bytes], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for b in blobs:
            json.dumps(json.loads(b), ensure_ascii=False, indent=2).encode("utf-8")
    return time.perf_counter() - start


def _convert(blobs: list[tuple[str, bytes]], repeat: int) -> tuple[float, int, int]:
    n_resources = n_bytes = 0
    start = time.perf_counter()
    for _ in range(repeat):
        for name, b in blobs:
            for rec in parse_bytes(b, name):
                if rec.study is None:
                    continue
                conv = convert_study(rec.study)
                out = dumps(conv.bundle)
                n_resources += len(conv.bundle["entry"])
                n_bytes += len(out)
    return time.perf_counter() - start, n_resources, n_bytes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="passes over the records (default 5)")
    args = ap.parse_args()
    files = sorted(SHARED_V2.glob("*.json"))
    if not files:
        print(f"no records under {SHARED_V2}", file=sys.stderr)
        return 2
    blobs = [(f.name, f.read_bytes()) for f in files]
    _convert(blobs[:3], 1)  # warm-up: tables loaded, regexes compiled
    studies = len(blobs) * args.repeat
    base = _baseline([b for _, b in blobs], args.repeat)
    conv, n_res, n_bytes = _convert(blobs, args.repeat)
    print(f"records: {len(blobs)} x {args.repeat} passes = {studies} studies")
    print(f"baseline json load+dump : {studies / base:10.1f} studies/s ({base:.3f} s)")
    print(f"read+convert R5+dumps   : {studies / conv:10.1f} studies/s ({conv:.3f} s), "
          f"{n_res // args.repeat} resources and {n_bytes // args.repeat / 1e6:.1f} MB per pass")
    print(f"ratio convert/baseline  : {conv / base:10.1f}x the time of a plain load+dump")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
