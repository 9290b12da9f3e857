"""Studies per second pushed to the local Medplum engine and to fhirtrial's own server, per
strategy.

    python bench/bench_push.py [--studies 60] [--sites 4]

Each target × strategy gets a fresh server, warmed by one study outside the timed set; it
times the first push (everything created) and a re-push (everything compared and found
unchanged, nothing written), best of ``--repeat`` runs (2 shared cores make single runs noisy). Both
targets get the same R4 study Bundles (Medplum is R4-only; fhirtrial serves them at /fhir/R4).
fhirtrial's server runs as ``fhirtrial serve`` (gunicorn, 2 workers, a fresh SQLite file) in its
own process, as in production. Ratios are against Medplum's transaction strategy measured in
the same run. Needs node and tests/node/medplum/setup.sh.
"""

from __future__ import annotations

import argparse
import json
import os
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
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from fhirtrial.push import push  # noqa: E402
from fhirtrial.push.auth import BearerAuth  # noqa: E402
from peers import MEDPLUM_DIR, NodePeer  # noqa: E402
from push_helpers import study_bundle  # noqa: E402

TOKEN = "bench-writer"


@contextmanager
def medplum() -> Iterator[str]:
    if not (MEDPLUM_DIR / "node_modules").is_dir():
        sys.exit(f"run {MEDPLUM_DIR / 'setup.sh'} first")
    peer = NodePeer(MEDPLUM_DIR / "server.mjs")
    base = peer.start()
    try:
        yield base
    finally:
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
            proc.terminate()
            proc.wait(10)


TARGETS: dict[str, Callable[[], Iterator[str]]] = {"Medplum 4.5.2": medplum,
                                                   "fhirtrial serve": own_server}


def run(target: str, strategy: str, folder: Path, warmup: Path, n: int, repeat: int
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=60)
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, warmup = Path(tmp) / "studies", Path(tmp) / "warmup.json"
        folder.mkdir()
        warmup.write_text(json.dumps(study_bundle("NCT59999999", sites=args.sites)))
        for i in range(args.studies):
            nct = f"NCT5{i:07d}"
            (folder / f"{nct}.json").write_text(json.dumps(study_bundle(
                nct, sites=args.sites, sponsor=f"Sponsor {i % 7}")))
        results = {(t, s): run(t, s, folder, warmup, args.studies, args.repeat)
                   for t in TARGETS for s in ("transaction", "batch", "single")}
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
