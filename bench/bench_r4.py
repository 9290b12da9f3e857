"""R4 output cost: the R4 writer over R5, and every shared record's R4 transaction on Medplum.

Measured in one run over all shared records (ctgov-v2, ctgov-v2-partial, ctgov-xml):
(a) convert to R5 (the baseline) vs convert to R4 (R5 build + R4 writer), studies/second and
    their ratio;
(b) when the Medplum peer is installed (``bash tests/node/medplum/setup.sh``): POST of every R4
    transaction Bundle to the engine (strict validation on), total seconds and per Bundle, against
    a baseline of the same number of ``GET /metadata`` round trips.

    python bench/bench_r4.py [--repeat N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fhirtrial.convert import convert_study  # noqa: E402
from fhirtrial.model import Study  # noqa: E402
from fhirtrial.sources import read_inputs  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"
MEDPLUM = ROOT / "tests" / "node" / "medplum"


def _studies() -> list[Study]:
    files = [str(p) for d, pat in (("ctgov-v2", "*.json"), ("ctgov-v2-partial", "*.json"),
                                   ("ctgov-xml", "*.xml"))
             for p in sorted((FIXTURES / d).glob(pat))]
    return [r.study for r in read_inputs(files) if r.study is not None]


def _convert(studies: list[Study], version: str, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for s in studies:
            convert_study(s, fhir_version=version, bundle_type="transaction")
    return time.perf_counter() - start


def _medplum(studies: list[Study]) -> None:
    if shutil.which("node") is None or not (MEDPLUM / "node_modules").is_dir():
        print("medplum: not installed (bash tests/node/medplum/setup.sh); skipped")
        return
    proc = subprocess.Popen(["node", "server.mjs", "0", "--allow-reset"], cwd=MEDPLUM,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        base = f"http://127.0.0.1:{proc.stdout.readline().split()[1]}"
        bundles = [convert_study(s, fhir_version="R4", bundle_type="transaction").bundle
                   for s in studies]
        http = requests.Session()
        start = time.perf_counter()
        for _ in bundles:
            http.get(f"{base}/metadata", timeout=30).raise_for_status()
        baseline = time.perf_counter() - start
        entries = sum(len(b["entry"]) for b in bundles)
        start = time.perf_counter()
        for b in bundles:
            r = http.post(base, json=b, timeout=120)
            r.raise_for_status()
        posted = time.perf_counter() - start
        print(f"medplum: {len(bundles)} R4 transactions ({entries} resources) in {posted:.2f} s "
              f"({posted / len(bundles) * 1000:.1f} ms/Bundle); baseline {len(bundles)} "
              f"GET /metadata in {baseline:.2f} s; ratio {posted / baseline:.1f}x")
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    studies = _studies()
    if not studies:
        print("no shared records beside the repo (../shared/fixtures)")
        return 1
    n = len(studies) * args.repeat
    r5 = _convert(studies, "R5", args.repeat)
    r4 = _convert(studies, "R4", args.repeat)
    print(f"convert: {len(studies)} studies x {args.repeat}: R5 {n / r5:.1f} studies/s "
          f"(baseline), R4 {n / r4:.1f} studies/s; R4/R5 time ratio {r4 / r5:.2f}")
    _medplum(studies)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
