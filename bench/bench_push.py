"""Studies per second pushed to the local Medplum engine, per strategy.

    python bench/bench_push.py [--studies 60] [--sites 4]

Each strategy gets a fresh engine; for each it times the first push (everything created) and
a re-push (everything compared and found unchanged, nothing written). Ratios are against the
transaction strategy measured in the same run. Needs node and tests/node/medplum/setup.sh.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from fhirtrial.push import push  # noqa: E402
from peers import MEDPLUM_DIR, NodePeer  # noqa: E402
from push_helpers import study_bundle  # noqa: E402


def run(strategy: str, folder: Path, n: int) -> tuple[float, float, int]:
    if not (MEDPLUM_DIR / "node_modules").is_dir():
        sys.exit(f"run {MEDPLUM_DIR / 'setup.sh'} first")
    peer = NodePeer(MEDPLUM_DIR / "server.mjs")
    base = peer.start()
    try:
        t0 = time.perf_counter()
        first = push([str(folder)], base, fhir_version="R4", strategy=strategy)
        t1 = time.perf_counter()
        second = push([str(folder)], base, fhir_version="R4", strategy=strategy)
        t2 = time.perf_counter()
    finally:
        peer.stop()
    assert all(r.status == "created" for r in first.results), first.text()
    assert all(r.status == "unchanged" for r in second.results), second.text()
    return n / (t1 - t0), n / (t2 - t1), sum(first.results[0].resources.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=60)
    ap.add_argument("--sites", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(args.studies):
            nct = f"NCT5{i:07d}"
            (folder / f"{nct}.json").write_text(json.dumps(study_bundle(
                nct, sites=args.sites, sponsor=f"Sponsor {i % 7}")))
        results = {s: run(s, folder, args.studies) for s in ("transaction", "batch", "single")}
    base_create, base_rerun, size = results["transaction"]
    print(f"{args.studies} studies of {size} resources, Medplum 4.5.2 MemoryRepository on "
          "127.0.0.1")
    print(f"{'strategy':<12} {'create st/s':>12} {'ratio':>6} {'re-push st/s':>13} {'ratio':>6}")
    for s, (create, rerun, _) in results.items():
        print(f"{s:<12} {create:>12.1f} {create / base_create:>6.2f} {rerun:>13.1f} "
              f"{rerun / base_rerun:>6.2f}")


if __name__ == "__main__":
    main()
