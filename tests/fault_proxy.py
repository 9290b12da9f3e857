"""A local HTTP proxy in front of a real FHIR server that injects faults on cue.

Faults are queued rules: each matches requests (method, and whether the body is a transaction
/ batch / a write) and applies ``times`` times:

- ``status``: answer 429/503/… itself (with ``Retry-After`` when given), upstream untouched;
- ``reset``: read the request, then reset the TCP connection (RST) without forwarding;
- ``commit_then_stall``: forward, let the upstream commit, then hold the answer past the
  client's timeout and drop the connection;
- ``delay``: forward after sleeping (to slow a run down enough to kill it mid-way);
- ``no_or``: forward, but every batch GET whose search lists several values (``a,b``) asks
  for one value that matches nothing, as a server that takes the list as one value would.

Every request is logged (method, path, bundle type, entry request urls) for assertions.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests


@dataclass
class Fault:
    kind: str  # status | reset | commit_then_stall | delay | no_or
    times: int = 1
    method: str | None = None
    bundle_type: str | None = None  # transaction | batch (POST to the base)
    writes_only: bool = False  # only requests that change something (not batch lookups)
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0


@dataclass
class Logged:
    method: str
    path: str
    bundle_type: str | None
    urls: list[str]
    answer: str = ""


@dataclass
class FaultProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    log: list[Logged] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_a: Any) -> None:
                pass

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                entry = proxy._record(self.command, self.path, body)
                fault = proxy._take(entry)
                if fault is not None and fault.kind == "status":
                    entry.answer = f"injected {fault.status}"
                    payload = json.dumps({"resourceType": "OperationOutcome", "issue": [{
                        "severity": "error", "code": "transient",
                        "diagnostics": f"injected {fault.status}"}]}).encode()
                    self.send_response(fault.status)
                    if fault.retry_after is not None:
                        self.send_header("Retry-After", fault.retry_after)
                    self.send_header("Content-Type", "application/fhir+json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if fault is not None and fault.kind == "reset":
                    entry.answer = "injected reset"
                    # SO_LINGER 0: close() sends RST, the client sees "connection reset"
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if fault is not None and fault.kind == "delay":
                    time.sleep(fault.seconds)
                if fault is not None and fault.kind == "no_or" and entry.bundle_type == "batch":
                    doc = json.loads(body)
                    for e in doc.get("entry") or []:
                        url = (e.get("request") or {}).get("url", "")
                        if "," in url:
                            e["request"]["url"] = url.split("?")[0] + "?identifier=no-such-value"
                    body = json.dumps(doc).encode()
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "accept", "authorization",
                                            "if-match", "if-none-exist")}
                r = requests.request(self.command, proxy.upstream + self.path, data=body or None,
                                     headers=headers, timeout=60)
                entry.answer = str(r.status_code)
                if fault is not None and fault.kind == "commit_then_stall":
                    entry.answer = f"{r.status_code} committed, answer withheld"
                    time.sleep(fault.seconds)
                    self.connection.close()
                    self.close_connection = True
                    return
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() in ("content-type", "etag", "location", "retry-after"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _record(self, method: str, path: str, body: bytes) -> Logged:
        btype, urls = None, []
        if body:
            try:
                doc = json.loads(body)
                if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
                    btype = doc.get("type")
                    urls = [(e.get("request") or {}).get("method", "") + " "
                            + (e.get("request") or {}).get("url", "")
                            for e in doc.get("entry") or []]
            except ValueError:
                pass
        entry = Logged(method, path, btype, urls)
        with self.lock:
            self.log.append(entry)
        return entry

    def _take(self, entry: Logged) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times <= 0:
                    continue
                if fault.method and fault.method != entry.method:
                    continue
                if fault.bundle_type and fault.bundle_type != entry.bundle_type:
                    continue
                if fault.writes_only and not _is_write(entry):
                    continue
                fault.times -= 1
                return fault
        return None

    def writes(self) -> list[Logged]:
        """Logged requests that change something on the server."""
        return [e for e in self.log if _is_write(e)]


def _is_write(e: Logged) -> bool:
    if e.method in ("PUT", "DELETE", "PATCH"):
        return True
    if e.method == "POST" and e.bundle_type in ("transaction", "batch"):
        return any(not u.startswith("GET ") for u in e.urls)
    return e.method == "POST" and not e.path.endswith("_search")
