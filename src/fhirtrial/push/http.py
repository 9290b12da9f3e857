"""The HTTP layer of push: one ``requests.Session``, timeouts, retries, typed errors.

Every response goes through :func:`raise_for_status`, the one place an HTTP status becomes a
typed exception carrying the server's OperationOutcome. Retries use exponential backoff with
full jitter and honour ``Retry-After``. A write that may have reached the server (timeout or
reset after the body was sent, 502/504 from a gateway) is never blindly re-sent: it raises
:class:`TransportError` with ``may_have_committed`` so the caller can re-read before retrying.

The client protects itself from the server: a response body is read up to ``max_response``
bytes (decompressed), and each attempt has an overall ``deadline`` — the read timeout alone
restarts with every byte, so a server trickling a byte every few seconds would hold it forever.
A watchdog cuts the connection when the deadline passes, even in the middle of the headers.
An answer that should be JSON and is not (an HTML page, garbage) is a RemoteError, one line.
"""

from __future__ import annotations

import contextlib
import email.utils
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import urllib3.connection
import urllib3.connectionpool
from requests.adapters import HTTPAdapter

from ..errors import ConflictError, NotFoundError, RemoteError

FHIR_JSON = "application/fhir+json"
#: the largest response body read (decompressed); a FHIR answer to push is far smaller
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: the longest one request attempt may take, from connect to the last body byte
DEADLINE_SECONDS = 300.0


class RemoteRejectedError(RemoteError):
    """The server refused the request as invalid (400, 405, 406, 415, 422)."""

    issue_code = "invalid"


class RemoteAuthError(RemoteError):
    """Authentication failed or the credentials lack permission (401, 403)."""

    issue_code = "security"


class RemoteNotFoundError(RemoteError, NotFoundError):
    """The server has no such resource or endpoint (404, 410)."""

    issue_code = "not-found"


class RemoteConflictError(RemoteError, ConflictError):
    """Version conflict or failed precondition (409, 412)."""

    issue_code = "conflict"


class RemoteTooLargeError(RemoteError):
    """The request is larger than the server accepts (413)."""

    issue_code = "too-costly"


class RemoteNotSupportedError(RemoteError):
    """The server does not implement the interaction (501)."""

    issue_code = "not-supported"


class RateLimitedError(RemoteError):
    """429: the server asks to slow down (``retry_after`` seconds, when it says)."""

    issue_code = "throttled"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerUnavailableError(RemoteError):
    """5xx: the server or a gateway in front of it failed."""

    issue_code = "transient"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class TransportError(RemoteError):
    """No HTTP answer: connection refused or reset, timeout. ``may_have_committed`` is True when
    the request may have reached the server before the failure."""

    issue_code = "transient"

    def __init__(self, message: str, *, may_have_committed: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.may_have_committed = may_have_committed


def outcome_text(outcome: dict[str, Any] | None) -> str:
    """The issues of an OperationOutcome as one line for people."""
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return ""
    parts = []
    for issue in outcome.get("issue", []):
        if not isinstance(issue, dict):
            continue
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or ""
        where = ", ".join(str(w) for w in issue.get("expression") or issue.get("location") or [])
        severity, code = issue.get("severity", "error"), issue.get("code", "")
        # the server's words first; severity and issue type after them, as labels (printing
        # "error login: ..." read as garbled English)
        label = code if severity in ("error", "fatal") else f"{severity}, {code}"
        parts.append((text or "no details given") + (f" (at {where})" if where else "")
                     + (f" [{label}]" if label else ""))
    return "; ".join(parts)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now (delta-seconds or an HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def raise_for_status(response: requests.Response) -> None:
    """Map an HTTP status to fhirtrial's typed exceptions (the only place this happens)."""
    status = response.status_code
    if status < 400:
        return
    outcome: dict[str, Any] | None = None
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
            outcome = body
    except ValueError:
        pass
    detail = outcome_text(outcome) or response.text[:300].strip() or response.reason or ""
    where = f"{response.request.method} {response.url}" if response.request else response.url
    message = f"{where} → HTTP {status}" + (f": {detail}" if detail else "")
    kw: dict[str, Any] = {"status": status, "outcome": outcome}
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429:
        raise RateLimitedError(message, retry_after=retry_after, **kw)
    if status in (401, 403):
        raise RemoteAuthError(message, **kw)
    if status in (404, 410):
        raise RemoteNotFoundError(message, **kw)
    if status in (409, 412):
        raise RemoteConflictError(message, **kw)
    if status == 413:
        raise RemoteTooLargeError(message, **kw)
    if status == 501:
        raise RemoteNotSupportedError(message, **kw)
    if status >= 500:
        raise ServerUnavailableError(message, retry_after=retry_after, **kw)
    raise RemoteRejectedError(message, **kw)


@dataclass(slots=True)
class RetryPolicy:
    """How often and how long to wait: full-jitter exponential backoff, ``Retry-After`` first."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            # the server said when; a little jitter keeps many clients from returning at once
            return min(retry_after, self.max_retry_after) + rng.uniform(0, 0.1)
        return rng.uniform(0, min(self.cap, self.base * 2 ** attempt))


class Auth:
    """Adds credentials to requests; subclasses in :mod:`fhirtrial.push.auth`."""

    def headers(self) -> dict[str, str]:
        return {}

    def refresh(self) -> bool:
        """Called after a 401; True when new credentials are worth one more try."""
        return False


class ResponseTooLargeError(RemoteError):
    """The server's answer is larger than the client reads."""

    issue_code = "too-costly"


class _Watched:
    """Mixed into urllib3 connections: each records itself as the one its thread is using,
    so a deadline watchdog (another thread) can shut its socket down."""

    registry: dict[int, Any]

    def request(self, *args: Any, **kw: Any) -> Any:
        self.registry[threading.get_ident()] = self
        return super().request(*args, **kw)  # type: ignore[misc]


class _WatchedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections register in ``registry`` (thread id → connection)."""

    def __init__(self, registry: dict[int, Any]) -> None:
        self.registry = registry
        super().__init__()

    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        super().init_poolmanager(*args, **kw)
        extra = {"registry": self.registry}
        http_conn = type("WatchedHTTPConnection",
                         (_Watched, urllib3.connection.HTTPConnection), extra)
        https_conn = type("WatchedHTTPSConnection",
                          (_Watched, urllib3.connection.HTTPSConnection), extra)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("WatchedHTTPConnectionPool",
                         (urllib3.connectionpool.HTTPConnectionPool,),
                         {"ConnectionCls": http_conn}),
            "https": type("WatchedHTTPSConnectionPool",
                          (urllib3.connectionpool.HTTPSConnectionPool,),
                          {"ConnectionCls": https_conn}),
        }


class _DeadlineExceeded(Exception):
    pass


class FhirClient:
    """A FHIR REST endpoint: JSON in and out, retries, typed errors."""

    def __init__(self, base_url: str, *, auth: Auth | None = None,
                 timeout: tuple[float, float] = (5.0, 60.0), retry: RetryPolicy | None = None,
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, seed: int | None = None,
                 deadline: float | None = None,
                 max_response: int = MAX_RESPONSE_BYTES) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth or Auth()
        self.timeout = timeout
        #: per attempt, connect to last byte: at least the read timeout, DEADLINE_SECONDS by
        #: default
        self.deadline = deadline if deadline is not None else max(DEADLINE_SECONDS,
                                                                    sum(timeout))
        self.max_response = max_response
        self.retry = retry or RetryPolicy()
        self._in_use: dict[int, Any] = {}
        if session is None:
            session = requests.Session()
            adapter = _WatchedAdapter(self._in_use)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session
        self.sleep = sleep
        self.rng = random.Random(seed)
        #: what happened on the wire that a report should mention (retries, waits)
        self.events: list[str] = []

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path}"

    def request(self, method: str, path: str, *, json: Any = None,
                params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                idempotent: bool | None = None) -> requests.Response:
        """Send one request, retrying what is safe to retry; return the (2xx/3xx) response.

        ``idempotent`` defaults to True for GET/HEAD: only then are timeouts, resets and
        502/504 retried here; for writes they raise so the caller can check what committed.
        """
        if idempotent is None:
            idempotent = method in ("GET", "HEAD")
        hdrs = {"Accept": FHIR_JSON}
        if json is not None:
            hdrs["Content-Type"] = FHIR_JSON
        hdrs.update(headers or {})
        refreshed = False
        attempt = 0
        while True:
            try:
                response = self._attempt(method, path, json, params,
                                         {**hdrs, **self.auth.headers()})
                raise_for_status(response)
                return response
            except RemoteAuthError as e:
                if e.status == 401 and not refreshed and self.auth.refresh():
                    refreshed = True
                    self.events.append("401: credentials refreshed, request repeated")
                    continue
                raise
            except (RateLimitedError, ServerUnavailableError) as e:
                if e.status not in (429, 502, 503, 504):
                    raise
                # 429 and 503 mean "not processed"; 502/504 may come after the upstream acted
                safe = idempotent or e.status in (429, 503)
                if not safe:
                    raise TransportError(e.message, status=e.status, outcome=e.outcome,
                                         may_have_committed=True) from e
                if attempt + 1 >= self.retry.attempts:
                    raise
                wait = self.retry.delay(attempt, e.retry_after, self.rng)
                self.events.append(f"HTTP {e.status}: waited {wait:.1f}s"
                                   + (f" (Retry-After {e.retry_after:g})"
                                      if e.retry_after is not None else ""))
            except requests.RequestException as e:
                # a refused or timed-out connect never reached the server; anything else might
                not_sent = isinstance(e, requests.ConnectTimeout) or (
                    isinstance(e, requests.ConnectionError)
                    and "refused" in str(e).lower())
                err = TransportError(f"{method} {self.url(path)}: {_describe(e)}",
                                     may_have_committed=not not_sent)
                if not (idempotent or not_sent) or attempt + 1 >= self.retry.attempts:
                    raise err from e
                wait = self.retry.delay(attempt, None, self.rng)
                self.events.append(f"{_describe(e)}: waited {wait:.1f}s")
            attempt += 1
            self.sleep(wait)

    def _attempt(self, method: str, path: str, json: Any, params: dict[str, str] | None,
                 headers: dict[str, str]) -> requests.Response:
        """One request under the deadline watchdog, its body read whole and capped."""
        me = threading.get_ident()
        fired = threading.Event()

        def cut() -> None:
            fired.set()
            conn = self._in_use.get(me)
            sock = getattr(conn, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(self.deadline, cut)
        watchdog.daemon = True
        watchdog.start()
        try:
            response = self.session.request(method, self.url(path), json=json, params=params,
                                            headers=headers, timeout=self.timeout, stream=True)
            try:
                response._content = self._read_body(response, fired)
            finally:
                response.close()
            return response
        except requests.RequestException as e:
            if fired.is_set():
                raise requests.Timeout(f"no complete answer within {self.deadline:g} s") from e
            raise
        finally:
            watchdog.cancel()
            self._in_use.pop(me, None)

    def _read_body(self, response: requests.Response, fired: threading.Event) -> bytes:
        where = f"{response.request.method} {response.url}"
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_response:
            raise ResponseTooLargeError(
                f"{where}: the answer is {int(declared)} bytes, more than the "
                f"{self.max_response} this client reads", status=response.status_code)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(65536):
            if fired.is_set():
                raise requests.Timeout(f"no complete answer within {self.deadline:g} s")
            size += len(chunk)
            if size > self.max_response:
                raise ResponseTooLargeError(
                    f"{where}: the answer is larger than the {self.max_response} bytes this "
                    "client reads", status=response.status_code)
            chunks.append(chunk)
        if fired.is_set():
            raise requests.Timeout(f"no complete answer within {self.deadline:g} s")
        return b"".join(chunks)

    def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        response = self.request("GET", path, params=params)
        try:
            return response.json()
        except ValueError:
            raise RemoteRejectedError(
                f"GET {response.url}: the answer is not JSON "
                f"({_what_it_is(response)}); is this a FHIR server's base URL?",
                status=response.status_code) from None

    def capabilities(self) -> dict[str, Any]:
        """The server's CapabilityStatement (``GET /metadata``)."""
        cs = self.get_json("metadata")
        if not isinstance(cs, dict) or cs.get("resourceType") != "CapabilityStatement":
            got = cs.get("resourceType") if isinstance(cs, dict) else type(cs).__name__
            raise RemoteRejectedError(f"{self.base_url}/metadata is not a CapabilityStatement "
                                      f"(got {str(got)[:60]!r}); is this a FHIR server's "
                                      "base URL?")
        return cs


def _what_it_is(response: requests.Response) -> str:
    ctype = response.headers.get("Content-Type", "").split(";")[0].strip() or "no Content-Type"
    head = response.content[:60].decode("utf-8", "replace")
    head = " ".join(head.split())
    return f"{ctype}, starting {head!r}" if head else f"{ctype}, empty"


def _describe(e: requests.RequestException) -> str:
    if isinstance(e, requests.ConnectTimeout):
        return "connect timeout"
    if isinstance(e, requests.ReadTimeout):
        return "read timeout (the server may have processed the request)"
    if isinstance(e, requests.Timeout):
        return f"{e} (the server may have processed the request)"
    if isinstance(e, requests.ConnectionError):
        text = str(e)
        if "reset" in text.lower() or "aborted" in text.lower():
            return "connection reset"
        if "refused" in text.lower():
            return "connection refused"
        return "connection error"
    return type(e).__name__
