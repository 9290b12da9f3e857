"""Studies per second pushed to the local Medplum engine, per strategy.

    python bench/bench_push.py [--studies 60] [--sites 4]

Each strategy gets a fresh engine; for each it times the first push (everything created) and
a re-push (everything compared and found unchanged, nothing written). Ratios are against the
transaction strategy measured in the same run. Needs node and tests/node/medplum/setup.sh.
``run(quick)`` gives the figures as rows for ``bench/run.py`` (20 studies quick, 60 full).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "bench")]

from benchlib import Unavailable, row, vm_hwm_mib  # noqa: E402

from fhirtrial.push import push  # noqa: E402
from peers import MEDPLUM_DIR, NodePeer  # noqa: E402
from push_helpers import study_bundle  # noqa: E402

STRATEGIES = ("transaction", "batch", "single")


def push_strategy(strategy: str, folder: Path, n: int,
                  warmup: Path) -> tuple[float, float, int, float | None]:
    """Create and re-push studies/s, resources per study, and the engine's peak RSS (MiB)."""
    if shutil.which("node") is None:
        raise Unavailable("node is not installed")
    if not (MEDPLUM_DIR / "node_modules").is_dir():
        raise Unavailable("run `make peers` (scripts/setup-test-peers.sh) first")
    peer = NodePeer(MEDPLUM_DIR / "server.mjs")
    base = peer.start()
    try:
        # other studies first, so node's JIT warm-up is not charged to the timed pushes
        push([str(warmup)], base, fhir_version="R4", strategy=strategy)
        t0 = time.perf_counter()
        first = push([str(folder)], base, fhir_version="R4", strategy=strategy)
        t1 = time.perf_counter()
        second = push([str(folder)], base, fhir_version="R4", strategy=strategy)
        t2 = time.perf_counter()
        engine_peak = vm_hwm_mib(peer.proc.pid) if peer.proc else None
    finally:
        peer.stop()
    assert all(r.status == "created" for r in first.results), first.text()
    assert all(r.status == "unchanged" for r in second.results), second.text()
    return n / (t1 - t0), n / (t2 - t1), sum(first.results[0].resources.values()), engine_peak


def measure(studies: int, sites: int) -> dict[str, tuple[float, float, int, float | None]]:
    """Every strategy against a fresh engine, on the same generated study Bundles."""
    with tempfile.TemporaryDirectory() as tmp:
        folder, warmup = Path(tmp, "timed"), Path(tmp, "warmup")
        for prefix, where, count in (("NCT5", folder, studies), ("NCT6", warmup, 5)):
            where.mkdir()
            for i in range(count):
                nct = f"{prefix}{i:07d}"
                (where / f"{nct}.json").write_text(json.dumps(study_bundle(
                    nct, sites=sites, sponsor=f"Sponsor {i % 7}")))
        return {s: push_strategy(s, folder, studies, warmup) for s in STRATEGIES}


def run(quick: bool) -> list[dict]:
    """Push rows: create and re-push studies/s per strategy, vs the transaction strategy."""
    studies, sites = (20, 4) if quick else (60, 4)
    results = measure(studies, sites)
    base_create, base_rerun, size, _ = results["transaction"]
    where = f"{studies} studies of {size} resources, Medplum 4.5.2 MemoryRepository"
    rows = []
    for s, (create, rerun, _, _) in results.items():
        rows.append(row("push", f"{s}: first push", create, "studies/s", baseline=base_create,
                        notes=f"{where}; baseline the transaction strategy"))
        rows.append(row("push", f"{s}: re-push, unchanged", rerun, "studies/s",
                        baseline=base_rerun, notes="compare only, nothing written"))
    peak = max((r[3] for r in results.values() if r[3] is not None), default=None)
    if peak is not None:
        rows.append(row("memory", "push: Medplum engine (node)", peak, "MiB", better="lower",
                        notes="largest peak RSS of the three engines"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=60)
    ap.add_argument("--sites", type=int, default=4)
    args = ap.parse_args()
    try:
        results = measure(args.studies, args.sites)
    except Unavailable as e:
        sys.exit(str(e))
    base_create, base_rerun, size, _ = results["transaction"]
    print(f"{args.studies} studies of {size} resources, Medplum 4.5.2 MemoryRepository on "
          "127.0.0.1")
    print(f"{'strategy':<12} {'create st/s':>12} {'ratio':>6} {'re-push st/s':>13} {'ratio':>6}")
    for s, (create, rerun, _, _) in results.items():
        print(f"{s:<12} {create:>12.1f} {create / base_create:>6.2f} {rerun:>13.1f} "
              f"{rerun / base_rerun:>6.2f}")


if __name__ == "__main__":
    main()
