"""The production path: ``python -m fhirtrial serve`` as a real process (gunicorn, two
workers; and ``--dev``), real HTTP on a free port, stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import requests

from conftest import ROOT

TOKEN = "process-writer-token"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tmp_path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "FHIRTRIAL_TOKENS": TOKEN}
    env.pop("FHIRTRIAL_READ_AUTH", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fhirtrial", "serve", "--db", str(tmp_path / "s.sqlite"),
         "--port", str(port), *extra],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/fhir"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {proc.stderr.read()!r}")
        try:
            if requests.get(f"{base}/metadata", timeout=2).status_code == 200:
                return proc, base
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the server did not answer /fhir/metadata within 30 s")


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the server ignored SIGTERM for 30 s") from None
    return proc.returncode, err.decode("utf-8", "replace")


def _read_search_write(base: str) -> None:
    loc = {"resourceType": "Location", "id": "boston", "name": "Boston site",
           "address": {"city": "Boston"}}
    r = requests.put(f"{base}/Location/boston", data=json.dumps(loc), headers=FHIR_JSON,
                     timeout=10)
    assert r.status_code == 401  # no token: the write is refused
    r = requests.put(f"{base}/Location/boston", data=json.dumps(loc), timeout=10,
                     headers={**FHIR_JSON, "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 201, r.text
    assert r.headers["ETag"] == 'W/"1"'
    # several requests so that both workers answer: each must see the one SQLite store
    for _ in range(6):
        got = requests.get(f"{base}/Location/boston", timeout=10)
        assert got.status_code == 200
        assert got.json()["name"] == "Boston site"
        b = requests.get(f"{base}/Location", params={"address-city": "bost"}, timeout=10).json()
        assert [e["resource"]["id"] for e in b["entry"]] == ["boston"]
        assert b["total"] == 1


def test_serve_runs_gunicorn_with_two_workers_and_stops_cleanly_on_sigterm(tmp_path):
    proc, base = _start(tmp_path, "--workers", "2")
    try:
        assert requests.get(f"{base}/metadata", timeout=10).json()["fhirVersion"] == "5.0.0"
        _read_search_write(base)
        workers = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)],
                                 capture_output=True, text=True, check=False).stdout.split()
        assert len(workers) == 2, workers  # gunicorn forked the two workers asked for
    finally:
        code, err = _stop(proc)
    assert code == 0, err
    assert "Traceback" not in err
    assert "Shutting down: Master" in err  # gunicorn's own graceful shutdown, not a kill


def test_serve_dev_with_r4_default_answers_and_exits_0_on_sigterm(tmp_path):
    proc, base = _start(tmp_path, "--dev", "--fhir-version", "R4")
    try:
        assert requests.get(f"{base}/metadata", timeout=10).json()["fhirVersion"] == "4.0.1"
        _read_search_write(base)
    finally:
        code, err = _stop(proc)
    assert code == 0, err
    assert "Traceback" not in err


def test_python_dash_m_fhirtrial_is_the_cli():
    r = subprocess.run([sys.executable, "-m", "fhirtrial", "--version"], capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                       check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("fhirtrial, version ")
