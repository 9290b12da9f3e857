"""The gunicorn worker ``fhirtrial serve`` runs: gunicorn's threaded worker (``gthread``) where
idle and slow clients cannot hold its threads.

A sync worker answers one connection at a time, so two idle TCP connections delayed every
request by the 120 s worker timeout and three clients sending their headers slowly stopped the
service. Here:

- the worker's poller reads each request's line and headers (and a body up to
  ``PRE_READ_BODY_MAX``) without blocking, and only a complete request is handed to a thread:
  an idle or slowloris connection costs a socket, never a thread;
- a connection that has not sent its request head within ``HEADER_TIMEOUT`` is closed;
- a larger body must arrive within ``BODY_TIMEOUT`` of the headers, and each write of the
  response be taken by the client within ``SEND_TIMEOUT`` (:class:`DeadlineSocket`).

A client past a deadline reads as a closed connection: gunicorn closes it quietly (no
traceback in the log). Behind a buffering proxy (nginx, see the README) none of this
triggers: the proxy sends whole requests, fast. TLS connections (gunicorn ``certfile``) are
read by threads as in plain ``gthread``: terminate TLS at the proxy.
"""

from __future__ import annotations

import contextlib
import errno
import io
import re
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 60.0
SEND_TIMEOUT = 30.0
#: a request head larger than this is handed to gunicorn's parser, which refuses it
PRE_READ_HEADER_MAX = 64 * 1024
#: bodies up to this size are read by the poller with the head; larger ones by the thread
PRE_READ_BODY_MAX = 256 * 1024


class DeadlineSocket:
    """A client socket whose reads end at a deadline (then read as end-of-stream) and whose
    writes each have ``SEND_TIMEOUT``. Everything else is the socket's own."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.deadline: float | None = None
        self._blocking = sock.getblocking()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def fileno(self) -> int:
        return self._sock.fileno()

    def setblocking(self, flag: bool) -> None:
        # gthread flips sockets between the poller (non-blocking) and a thread (blocking);
        # "blocking" here means "blocking until the deadline"
        self._blocking = flag
        self._sock.setblocking(flag)

    def _arm(self, budget: float | None) -> bool:
        if not self._blocking or budget is None:
            return True  # no deadline: gunicorn's own timeout (its body drain sets one) holds
        if budget <= 0:
            return False
        self._sock.settimeout(budget)
        return True

    def _read_budget(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def recv(self, n: int, *flags: int) -> bytes:
        if not self._arm(self._read_budget()):
            return self._expired()
        try:
            return self._sock.recv(n, *flags)
        except TimeoutError:
            return self._expired()

    def recv_into(self, buf: Any, *args: int) -> int:
        if not self._arm(self._read_budget()):
            self._expired()
            return 0
        try:
            return self._sock.recv_into(buf, *args)
        except TimeoutError:
            self._expired()
            return 0

    def _expired(self) -> bytes:
        # the client is too slow: end its connection; gunicorn sees end-of-stream
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        return b""

    def send(self, data: Any, *flags: int) -> int:
        self._arm(SEND_TIMEOUT)
        try:
            return self._sock.send(data, *flags)
        except TimeoutError:
            raise BrokenPipeError(errno.EPIPE, "client too slow to take the response") from None

    def sendall(self, data: Any, *flags: int) -> None:
        self._arm(SEND_TIMEOUT)  # the whole sendall, not each chunk (Python >= 3.5)
        try:
            self._sock.sendall(data, *flags)
        except TimeoutError:
            raise BrokenPipeError(errno.EPIPE, "client too slow to take the response") from None


class DeadlineThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's ``gthread`` worker, where a thread only ever gets a request whose headers
    (and small body) have arrived: the worker's poller reads them first, without blocking, and
    closes a connection that has not sent them within ``HEADER_TIMEOUT``. Idle and slowloris
    connections then cost a socket each, never a thread. Larger bodies are read by the thread
    under ``BODY_TIMEOUT`` (:class:`DeadlineSocket`)."""

    def init_process(self) -> None:
        self._prereading: dict[Any, float] = {}  # conn -> deadline
        super().init_process()

    def enqueue_req(self, conn: Any) -> None:
        if self.cfg.is_ssl:  # TLS is read by the thread (terminate TLS at a proxy instead)
            return super().enqueue_req(conn)
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock)
        conn.pre_buf = bytearray()
        if self._complete(conn):
            return self._dispatch(conn)
        conn.sock.setblocking(False)
        self._prereading[conn] = time.monotonic() + HEADER_TIMEOUT
        with self._poller_lock():
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._pre_read, conn))
        return None

    def _poller_lock(self) -> Any:
        # gunicorn < 24 touches the poller from pool threads too, under its own lock
        lock = getattr(self, "_lock", None)
        return lock if lock is not None else contextlib.nullcontext()

    def _buffered(self, conn: Any) -> bytes:
        parser = getattr(conn, "parser", None)
        held = parser.unreader.buf.getvalue() if parser is not None else b""
        return bytes(held) + bytes(conn.pre_buf)

    def _complete(self, conn: Any) -> bool:
        """Has the next request's head (and a small declared body) been read?"""
        data = self._buffered(conn).lstrip(b"\r\n")
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return len(data) > PRE_READ_HEADER_MAX  # too large to wait for: the parser says why
        head = data[:end].lower()
        if b"\nexpect:" in head or b"\ntransfer-encoding:" in head:
            return True  # 100-continue or chunked: the thread reads the body
        m = _CONTENT_LENGTH.search(head)
        length = int(m.group(1)) if m and len(m.group(1)) < 12 else 0
        return length > PRE_READ_BODY_MAX or len(data) - end - 4 >= length

    def _pre_read(self, conn: Any, _fileobj: Any) -> None:
        try:
            data = conn.sock._sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away before sending a request
            self._drop(conn)
            return
        conn.pre_buf += data
        if self._complete(conn):
            with self._poller_lock():
                self.poller.unregister(conn.sock)
            self._prereading.pop(conn, None)
            self._dispatch(conn)

    def _dispatch(self, conn: Any) -> None:
        if conn.pre_buf:
            if getattr(conn, "parser", None) is None:
                conn.parser = _new_parser(self.cfg, conn.sock, conn.client)
            held = conn.parser.unreader.buf.getvalue()
            conn.parser.unreader.buf = io.BytesIO()
            conn.parser.unreader.unread(bytes(held) + bytes(conn.pre_buf))
            conn.pre_buf = bytearray()
        conn.data_ready = True  # gunicorn >= 24: no second wait for data in the thread
        super().enqueue_req(conn)

    def _drop(self, conn: Any) -> None:
        self._prereading.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError), self._poller_lock():
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    def murder_keepalived(self, *args: Any, **kwargs: Any) -> Any:
        # the worker's loop calls this about once a second: expire slow request heads too
        now = time.monotonic()
        for conn, deadline in list(self._prereading.items()):
            if deadline <= now:
                self._drop(conn)
        return super().murder_keepalived(*args, **kwargs)

    def handle(self, conn: Any) -> Any:
        if isinstance(conn.sock, DeadlineSocket):
            conn.sock.deadline = time.monotonic() + HEADER_TIMEOUT
        return super().handle(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        if isinstance(conn.sock, DeadlineSocket):  # headers read: now the body's turn
            conn.sock.deadline = time.monotonic() + BODY_TIMEOUT
        try:
            return super().handle_request(req, conn)
        finally:
            if isinstance(conn.sock, DeadlineSocket):
                conn.sock.deadline = None


_CONTENT_LENGTH = re.compile(rb"\ncontent-length:[ \t]*([0-9]+)")


def _new_parser(cfg: Any, sock: Any, client: Any) -> Any:
    from gunicorn import http as ghttp

    if hasattr(ghttp, "get_parser"):  # gunicorn >= 24
        return ghttp.get_parser(cfg, sock, client)
    return ghttp.RequestParser(cfg, sock, client)
