"""Real third-party peers the tests talk to over HTTP.

``medplum`` (session scope) starts Medplum's FHIR engine (``tests/node/medplum/server.mjs``:
``@medplum/fhir-router`` 4.5.2 + MemoryRepository, strict R4 validation) on a free port and
yields its base URL. It skips only when ``node`` is absent; a missing ``node_modules`` is a
setup error and fails, since a skipped peer test would hide a broken checkout.

``tests/conftest.py`` registers this module as a plugin, so any test can ask for them.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

MEDPLUM_DIR = Path(__file__).resolve().parent / "node" / "medplum"
SETUP_HINT = f"run {MEDPLUM_DIR / 'setup.sh'} (npm ci of the pinned Medplum 4.5.2 packages)"
_START_TIMEOUT = 60.0


class NodePeer:
    """A node process serving HTTP on 127.0.0.1, started from a script that prints READY <port>."""

    def __init__(self, script: Path, *args: str) -> None:
        self.script = script
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.stderr: list[str] = []

    def start(self) -> str:
        node = shutil.which("node")
        assert node, "node is not on PATH"
        self.proc = subprocess.Popen(
            [node, str(self.script), "0", *self.args], cwd=self.script.parent,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        # stderr is drained on a thread so a chatty peer can never block on a full pipe
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        port = self._wait_ready()
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    def _drain_stderr(self) -> None:
        assert self.proc is not None
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def _wait_ready(self) -> int:
        assert self.proc is not None
        result: list[str] = []

        def read() -> None:
            assert self.proc is not None
            assert self.proc.stdout is not None
            result.append(self.proc.stdout.readline())

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(_START_TIMEOUT)
        line = result[0] if result else ""
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"{self.script.name} did not become ready: {line!r} "
                               f"{''.join(self.stderr)[-2000:]}")
        return int(line.split()[1])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe:
                    pipe.close()


def start_medplum() -> NodePeer:
    """Start a Medplum engine with an empty store; the caller stops it."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the Medplum FHIR engine peer cannot run")
    if not (MEDPLUM_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
        pytest.fail(f"Medplum peer not installed: {SETUP_HINT}", pytrace=False)
    peer = NodePeer(MEDPLUM_DIR / "server.mjs", "--allow-reset")
    peer.start()
    return peer


@pytest.fixture(scope="session")
def _medplum_peer() -> Iterator[NodePeer]:
    peer = start_medplum()
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def medplum(_medplum_peer: NodePeer) -> str:
    """Base URL of the session's Medplum FHIR R4 engine (shared: tests use distinct ids)."""
    return _medplum_peer.base_url


@pytest.fixture
def fresh_medplum(_medplum_peer: NodePeer) -> str:
    """The session's engine emptied for this test, for tests that count what is stored."""
    r = requests.post(f"{_medplum_peer.base_url}/$reset", timeout=10)
    r.raise_for_status()
    return _medplum_peer.base_url


def search(base_url: str, resource_type: str, **params: str) -> list[dict]:
    """All resources of a search (the engine answers a single page)."""
    r = requests.get(f"{base_url}/{resource_type}", params=params, timeout=10)
    r.raise_for_status()
    return [e["resource"] for e in r.json().get("entry", [])]

