"""Studies per second pushed to the local Medplum engine and to fhirtrial's own server, per
strategy.

    python bench/bench_push.py [--studies 60] [--sites 4]

Each target × strategy gets a fresh server, warmed by one study outside the timed set; it
times the first push (everything created) and a re-push (everything compared and found
unchanged, nothing written), best of ``--repeat`` runs (2 shared cores make single runs noisy). Both
targets get the same R4 study Bundles (Medplum is R4-only; fhirtrial serves them at /fhir/R4).
fhirtrial's server runs as ``fhirtrial serve`` (gunicorn, 2 workers, a fresh SQLite file) in its
own process, as in production. Ratios are against Medplum's transaction strategy measured in
the same run. Needs node and tests/node/medplum/setup.sh. ``run(quick)`` gives the figures as
rows for ``bench/run.py`` (20 studies once quick; 60 studies, best of 3, full).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "bench")]

from benchlib import Unavailable, row, stop_and_peak, vm_hwm_mib  # noqa: E402

from fhirtrial.push import push  # noqa: E402
from fhirtrial.push.auth import BearerAuth  # noqa: E402
from peers import MEDPLUM_DIR, NodePeer  # noqa: E402
from push_helpers import study_bundle  # noqa: E402

TOKEN = "bench-writer"
STRATEGIES = ("transaction", "batch", "single")
#: target → the largest peak RSS (MiB) one of its servers reached
PEAKS: dict[str, float] = {}


def _peak(target: str, mib: float | None) -> None:
    if mib is not None:
        PEAKS[target] = max(PEAKS.get(target, 0.0), mib)


@contextmanager
def medplum() -> Iterator[str]:
    if shutil.which("node") is None:
        raise Unavailable("node is not installed")
    if not (MEDPLUM_DIR / "node_modules").is_dir():
        raise Unavailable("run `make peers` (scripts/setup-test-peers.sh) first")
    peer = NodePeer(MEDPLUM_DIR / "server.mjs")
    base = peer.start()
    try:
        yield base
    finally:
        if peer.proc:
            _peak("Medplum 4.5.2", vm_hwm_mib(peer.proc.pid))
        peer.stop()


@contextmanager
def own_server() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "FHIRTRIAL_TOKENS": TOKEN,
               "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.Popen(
            [sys.executable, "-c", "from fhirtrial.cli import main; main()", "serve", "--db",
             str(Path(tmp) / "bench.sqlite"), "--port", str(port), "--workers", "2"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}/fhir/R4"
        try:
            for _ in range(200):
                try:
                    if requests.get(f"{base}/metadata", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    time.sleep(0.05)
            else:
                raise RuntimeError("fhirtrial serve did not start")
            yield base
        finally:
            _peak("fhirtrial serve", stop_and_peak(proc))


TARGETS: dict[str, Callable[[], Iterator[str]]] = {"Medplum 4.5.2": medplum,
                                                   "fhirtrial serve": own_server}


def push_target(target: str, strategy: str, folder: Path, warmup: Path, n: int, repeat: int
                ) -> tuple[float, float, int]:
    """Best of ``repeat`` runs, each on a fresh server warmed by one study outside the set."""
    os.environ["BENCH_PUSH_TOKEN"] = TOKEN
    auth = BearerAuth("BENCH_PUSH_TOKEN")
    creates, reruns = [], []
    for _ in range(repeat):
        with TARGETS[target]() as base:
            push([str(warmup)], base, fhir_version="R4", strategy=strategy, auth=auth)
            t0 = time.perf_counter()
            first = push([str(folder)], base, fhir_version="R4", strategy=strategy, auth=auth)
            t1 = time.perf_counter()
            second = push([str(folder)], base, fhir_version="R4", strategy=strategy, auth=auth)
            t2 = time.perf_counter()
        assert all(r.status == "created" for r in first.results), first.text()
        assert all(r.status == "unchanged" for r in second.results), second.text()
        creates.append(t1 - t0)
        reruns.append(t2 - t1)
    return n / min(creates), n / min(reruns), sum(first.results[0].resources.values())


def measure(studies: int, sites: int, repeat: int) -> dict[tuple[str, str], tuple]:
    """Every target x strategy on the same generated R4 study Bundles."""
    with tempfile.TemporaryDirectory() as tmp:
        folder, warmup = Path(tmp) / "studies", Path(tmp) / "warmup.json"
        folder.mkdir()
        warmup.write_text(json.dumps(study_bundle("NCT59999999", sites=sites)))
        for i in range(studies):
            nct = f"NCT5{i:07d}"
            (folder / f"{nct}.json").write_text(json.dumps(study_bundle(
                nct, sites=sites, sponsor=f"Sponsor {i % 7}")))
        return {(t, s): push_target(t, s, folder, warmup, studies, repeat)
                for t in TARGETS for s in STRATEGIES}


def run(quick: bool) -> list[dict]:
    """Push rows: studies/s per target and strategy, vs Medplum's transaction strategy."""
    studies, sites, repeat = (20, 4, 1) if quick else (60, 4, 3)
    results = measure(studies, sites, repeat)
    base_create, base_rerun, size = results[("Medplum 4.5.2", "transaction")]
    where = f"{studies} R4 studies of {size} resources, best of {repeat}"
    rows = []
    for (t, s), (create, rerun, _) in results.items():
        rows.append(row("push", f"{t}, {s}: first push", create, "studies/s",
                        baseline=base_create,
                        notes=f"{where}; baseline Medplum transaction"))
        rows.append(row("push", f"{t}, {s}: re-push, unchanged", rerun, "studies/s",
                        baseline=base_rerun, notes="compare only, nothing written"))
    for t, mib in PEAKS.items():
        rows.append(row("memory", f"push: {t} server", mib, "MiB", better="lower",
                        notes="largest peak RSS of its servers (node / gunicorn processes)"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=60)
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = ap.parse_args()
    try:
        results = measure(args.studies, args.sites, args.repeat)
    except Unavailable as e:
        sys.exit(str(e))
    base_create, base_rerun, size = results[("Medplum 4.5.2", "transaction")]
    print(f"{args.studies} studies of {size} resources (R4), each server on 127.0.0.1, best of "
          f"{args.repeat}; ratios vs Medplum transaction")
    print(f"{'target':<16} {'strategy':<12} {'create st/s':>12} {'ratio':>6} "
          f"{'re-push st/s':>13} {'ratio':>6}")
    for (t, s), (create, rerun, _) in results.items():
        print(f"{t:<16} {s:<12} {create:>12.1f} {create / base_create:>6.2f} {rerun:>13.1f} "
              f"{rerun / base_rerun:>6.2f}")


if __name__ == "__main__":
    main()
