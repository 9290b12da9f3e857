"""Measure how ``fhirtrial serve`` answers while idle and slow clients hold connections.

Starts a real server on 127.0.0.1 (a fresh store in a temporary directory), opens IDLE
silent connections, SLOW clients sending one header line a second and SLOW_BODY clients
sending one body byte a second, then times normal requests for SECONDS and prints the
latencies. Every loop is bounded.

    PYTHONPATH=src python scripts/probe_slow_clients.py --idle 100 --slow 100 --slow-body 20 \
        --workers 1 --threads 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--idle", type=int, default=100)
    ap.add_argument("--slow", type=int, default=100)
    ap.add_argument("--slow-body", type=int, default=20)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2,
                    help="0: do not pass --threads (a fhirtrial before it had the option)")
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp())
    proc = subprocess.Popen(
        [sys.executable, "-m", "fhirtrial", "serve", "--db", str(tmp / "s.sqlite"), "--port",
         str(port), "--workers", str(args.workers),
         *(["--threads", str(args.threads)] if args.threads else [])],
        env={**os.environ, "FHIRTRIAL_TOKENS": "probe"}, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/fhir"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base}/metadata", timeout=10)
                break
            except requests.RequestException:
                time.sleep(0.2)
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(args.idle)]
        slow = []
        for _ in range(args.slow):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        bodies = []
        for _ in range(args.slow_body):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"PUT /fhir/Location/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer probe"
                      b"\r\nContent-Type: application/fhir+json\r\nContent-Length: 5000\r\n\r\n{")
            bodies.append(s)
        stop = threading.Event()

        def trickle() -> None:
            i = 0
            while not stop.wait(1.0):
                for s in slow:
                    with contextlib.suppress(OSError):
                        s.sendall(b"X-Slow-%d: y\r\n" % i)
                for s in bodies:
                    with contextlib.suppress(OSError):
                        s.sendall(b" ")
                i += 1

        threading.Thread(target=trickle, daemon=True).start()
        times, failures = [], 0
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            t0 = time.monotonic()
            try:
                ok = requests.get(f"{base}/Location", params={"_count": 1},
                                  timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            times.append(time.monotonic() - t0)
            failures += not ok
            time.sleep(0.5)
        stop.set()
        times.sort()
        print(f"{args.idle} idle, {args.slow} slow-header, {args.slow_body} slow-body clients; "
              f"{args.workers} worker(s) x {args.threads} thread(s): {len(times)} requests in "
              f"{args.seconds:.0f} s, {failures} failed; latency median "
              f"{times[len(times) // 2] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms")
        for s in socks + slow + bodies:
            s.close()
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
