"""The push client protects itself from the server it talks to: a real HTTP server on 127.0.0.1
that trickles its answer (headers or body, a byte at a time), sends an endless or oversized
body, or answers /metadata with an HTML page or garbage. Each ends within the deadline as one
typed error / one CLI line, never a hang or a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fhirtrial.errors import RemoteError
from fhirtrial.push.http import (
    FhirClient,
    RemoteRejectedError,
    ResponseTooLargeError,
    RetryPolicy,
    TransportError,
)

Behaviour = Callable[[socket.socket], None]
JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n"


class LyingServer:
    """A TCP server on 127.0.0.1 answering every request with ``behaviour``."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/fhir"

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(5)
                conn.recv(65536)
                self.behaviour(conn)
            except OSError:
                pass  # the client hung up: what these tests want it to do

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def trickle(data: bytes, every: float = 0.5) -> Behaviour:
    def run(conn: socket.socket) -> None:
        for i in range(len(data)):
            conn.sendall(data[i:i + 1])
            time.sleep(every)
    return run


def fixed(data: bytes) -> Behaviour:
    return lambda conn: conn.sendall(data)


def endless_body(conn: socket.socket) -> None:
    conn.sendall(JSON_HEAD + b"\r\n")
    while True:
        conn.sendall(b" " * 65536)


@pytest.fixture
def serve() -> Iterator[Callable[[Behaviour], str]]:
    servers: list[LyingServer] = []

    def start(behaviour: Behaviour) -> str:
        servers.append(LyingServer(behaviour))
        return servers[-1].url

    yield start
    for s in servers:
        s.close()


def _client(url: str, **kw: object) -> FhirClient:
    return FhirClient(url, timeout=(2.0, 2.0), retry=RetryPolicy(attempts=1), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("answer", [
    JSON_HEAD + b"Content-Length: 2\r\n\r\n{}",
    JSON_HEAD + b"Content-Length: 500\r\n\r\n" + b" " * 500,
], ids=["headers-trickled", "body-trickled"])
def test_trickling_server_is_cut_off_at_the_deadline(serve: Callable[[Behaviour], str],
                                                     answer: bytes) -> None:
    # a byte every 0.5 s never trips the 2 s read timeout: only the deadline ends it
    url = serve(trickle(answer))
    client = _client(url, deadline=3.0)
    started = time.monotonic()
    with pytest.raises(TransportError) as err:
        client.capabilities()
    took = time.monotonic() - started
    assert 2.9 <= took < 6, took
    assert err.value.message == (f"GET {url}/metadata: no complete answer within 3 s "
                                 "(the server may have processed the request)")


def test_deadline_covers_each_retry_and_the_run_ends(serve: Callable[[Behaviour], str]) -> None:
    url = serve(trickle(JSON_HEAD + b"Content-Length: 2\r\n\r\n{}"))
    client = FhirClient(url, timeout=(2.0, 2.0), deadline=1.5, sleep=lambda _s: None,
                        retry=RetryPolicy(attempts=3))
    started = time.monotonic()
    with pytest.raises(TransportError):
        client.capabilities()
    assert time.monotonic() - started < 3 * 1.5 + 3
    assert len(client.events) == 2  # two retries, each waited, then the error


@pytest.mark.parametrize("behaviour", [
    fixed(JSON_HEAD + b"Content-Length: 99999999999\r\n\r\n{"),
    endless_body,
], ids=["declared-too-large", "endless-chunk"])
def test_oversized_answer_is_refused_at_the_cap(serve: Callable[[Behaviour], str],
                                                behaviour: Behaviour) -> None:
    url = serve(behaviour)
    with pytest.raises(ResponseTooLargeError) as err:
        _client(url, max_response=1 << 20, deadline=30.0).capabilities()
    assert err.value.message.startswith(f"GET {url}/metadata: the answer is ")
    assert "than the 1048576 bytes this client reads" in err.value.message \
        or "more than the 1048576 this client reads" in err.value.message


def _body(ctype: bytes, body: bytes) -> Behaviour:
    return fixed(b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)


@pytest.mark.parametrize(("behaviour", "message"), [
    (_body(b"text/html", b"<html><body><h1>Sign in</h1></body></html>"),
     "the answer is not JSON (text/html, starting '<html><body><h1>Sign in</h1></body></html>')"
     "; is this a FHIR server's base URL?"),
    (_body(b"application/json", b"\x00\xff garbage"),
     # control characters are escaped: the message stays one printable line
     "the answer is not JSON (application/json, starting '\\x00\ufffd garbage'); is this a "
     "FHIR server's base URL?"),
    (_body(b"application/json", b""),
     "the answer is not JSON (application/json, empty); is this a FHIR server's base URL?"),
], ids=["html", "garbage", "empty"])
def test_metadata_that_is_not_json_is_one_clear_error(serve: Callable[[Behaviour], str],
                                                      behaviour: Behaviour,
                                                      message: str) -> None:
    url = serve(behaviour)
    with pytest.raises(RemoteRejectedError) as err:
        _client(url).capabilities()
    assert err.value.message == f"GET {url}/metadata: {message}"


def test_metadata_json_that_is_not_a_capability_statement(serve: Callable[[Behaviour], str]
                                                          ) -> None:
    url = serve(_body(b"application/json", b'{"resourceType": "Patient"}'))
    with pytest.raises(RemoteError, match=r"/metadata is not a CapabilityStatement "
                                          r"\(got 'Patient'\)"):
        _client(url).capabilities()


@pytest.mark.parametrize("behaviour", [
    _body(b"text/html", b"<!doctype html><title>Proxy login</title>"),
    _body(b"application/json", b"[1, 2"),
], ids=["html", "truncated-json"])
def test_push_cli_with_a_lying_server_is_one_line_and_exit_one(
        serve: Callable[[Behaviour], str], behaviour: Behaviour, tmp_path: Path) -> None:
    url = serve(behaviour)
    bundle = tmp_path / "b.json"
    bundle.write_text('{"resourceType": "Bundle", "type": "transaction", "entry": []}')
    proc = subprocess.run([sys.executable, "-m", "fhirtrial", "push", str(bundle), "--server",
                           url, "--no-journal", "--retries", "0", "--deadline", "5"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ}, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: GET {url}/metadata: the answer is not JSON")


def test_push_cli_with_a_trickling_server_ends_at_the_deadline(
        serve: Callable[[Behaviour], str], tmp_path: Path) -> None:
    url = serve(trickle(JSON_HEAD + b"Content-Length: 2\r\n\r\n{}", every=0.5))
    bundle = tmp_path / "b.json"
    bundle.write_text('{"resourceType": "Bundle", "type": "transaction", "entry": []}')
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "fhirtrial", "push", str(bundle), "--server",
                           url, "--no-journal", "--retries", "0", "--deadline", "2",
                           "--timeout", "5"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert time.monotonic() - started < 30
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: GET {url}/metadata: no complete answer within 2 s (the server may have "
        "processed the request)"]


def test_refusal_reads_as_the_servers_words_then_the_issue_type(
        live_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against fhirtrial's own server (a real HTTP server) with a token it does not know: the
    message once read "HTTP 401: error login: the bearer token is not valid"."""
    from fhirtrial.push.auth import BearerAuth
    from fhirtrial.push.http import RemoteAuthError

    monkeypatch.setenv("FHIRTRIAL_TEST_TOKEN", "not-a-token")
    client = FhirClient(live_server, auth=BearerAuth("FHIRTRIAL_TEST_TOKEN"),
                        retry=RetryPolicy(attempts=1))
    with pytest.raises(RemoteAuthError) as err:
        client.request("PUT", "Group/g1", json={"resourceType": "Group", "id": "g1",
                                                 "type": "person",
                                                 "membership": "definitional"})
    assert err.value.message == (f"PUT {live_server}/Group/g1 → HTTP 401: the bearer token is "
                                 "not valid [login]")


def test_outcome_text_labels_severity_only_when_not_an_error() -> None:
    from fhirtrial.push.http import outcome_text

    assert outcome_text({"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "required", "diagnostics": "status is missing",
         "expression": ["Group.status"]},
        {"severity": "warning", "code": "code-invalid"},
        "not an issue",
    ]}) == ("status is missing (at Group.status) [required]; no details given "
            "[warning, code-invalid]")
