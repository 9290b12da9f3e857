"""A real HTTP server on 127.0.0.1 replaying recorded ClinicalTrials.gov API v2 exchanges.

Stands in for the public registry, which tests cannot reach. Scenarios live in
``fixtures/registry/*.json`` (format in that folder's README); bodies are built from
``../shared/fixtures/ctgov-v2`` when the server loads a scenario.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from conftest import FIXTURES, SHARED_V2

SCENARIOS = FIXTURES / "registry"


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        doc = doc.setdefault(key, {})
    doc[last] = value


def _only(doc: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dotted in paths:
        src: Any = doc
        for key in dotted.split("."):
            src = src.get(key) if isinstance(src, dict) else None
        if src is not None:
            _set(out, dotted, src)
    return out


def materialize(body: Any, shared: Path = SHARED_V2) -> Any:
    """Expand ``{"$study": …, "$set": …, "$only": …}`` templates into registry JSON."""
    if isinstance(body, list):
        return [materialize(b, shared) for b in body]
    if not isinstance(body, dict):
        return body
    if "$study" in body:
        study = json.loads((shared / f"{body['$study']}.json").read_text(encoding="utf-8"))
        for dotted, value in body.get("$set", {}).items():
            _set(study, dotted, value)
        return _only(study, body["$only"]) if "$only" in body else study
    return {k: materialize(v, shared) for k, v in body.items()}


class ReplayServer:
    """Serves one scenario at a time; counts hits per exchange; records unmatched requests."""

    def __init__(self) -> None:
        self.exchanges: list[dict[str, Any]] = []
        self.hits: dict[int, int] = {}
        self.unmatched: list[str] = []
        self.log: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._answer(self)

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/api/v2"

    def load(self, scenario: str) -> None:
        """Replay ``fixtures/registry/<scenario>.json`` from now on (hit counts reset)."""
        raw = json.loads((SCENARIOS / f"{scenario}.json").read_text(encoding="utf-8"))
        for ex in raw:
            for resp in ex["responses"]:
                resp["bytes"] = json.dumps(materialize(resp["body"])).encode()
        self.exchanges, self.hits, self.unmatched, self.log = raw, {}, [], []

    def requests_to(self, path: str) -> int:
        return sum(n for i, n in self.hits.items() if self.exchanges[i]["path"] == path)

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        self.log.append(h.path)
        for i, ex in enumerate(self.exchanges):
            if ex["path"] == url.path and ex["query"] == query:
                n = self.hits.get(i, 0)
                self.hits[i] = n + 1
                resp = ex["responses"][min(n, len(ex["responses"]) - 1)]
                data: bytes = resp["bytes"]
                h.send_response(resp["status"])
                h.send_header("Content-Type", "application/json")
                h.send_header("Content-Length", str(len(data)))
                for k, v in resp.get("headers", {}).items():
                    h.send_header(k, v)
                h.end_headers()
                if "truncate" in resp:
                    h.wfile.write(data[: resp["truncate"]])
                    h.wfile.flush()
                    h.close_connection = True
                else:
                    h.wfile.write(data)
                return
        self.unmatched.append(h.path)
        body = json.dumps({"message": f"no recorded exchange for {h.path}"}).encode()
        h.send_response(501)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


__all__ = ["ReplayServer", "materialize"]
