"""Load and fault tests of the real server: gunicorn (``fhirtrial serve``) on 127.0.0.1.

Concurrent writers and readers run for a fixed time and at most a fixed count each; every
acknowledged write (id, version, content hash) is recorded and must be readable afterwards,
and no request may get a 5xx. Then the server is SIGKILLed mid-load and restarted on the
same SQLite file: every acknowledged write is still there with its version and content, and
the store is consistent (integrity check, index tables agree with the current resources).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from conftest import ROOT, WRITE_TOKEN
from fuzzkit import COUNTS, FULL

WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/fhir+json"}
DURATION = 60.0 if FULL else 5.0
MAX_OPS = 20_000 if FULL else 250  # per thread
WRITERS, READERS = 4, 4
SYSTEM = "urn:fhirtrial:load-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(db: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``fhirtrial serve`` (gunicorn, 2 workers) on a free loopback port; stopped at the end."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "FHIRTRIAL_TOKENS": WRITE_TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from fhirtrial.cli import main; main()", "serve", "--db",
         str(db), "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)  # its own process group: the kill reaches every worker
    base = f"http://127.0.0.1:{port}/fhir"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/metadata", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "server did not start in 30 s"
            time.sleep(0.1)
        yield base, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if proc.stderr:
            proc.stderr.close()


def digest(resource: dict[str, Any]) -> str:
    """Hash of a resource's content, without what the server assigns (id, meta)."""
    content = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


@dataclass
class Ledger:
    """Every acknowledged write: id -> {versionId: content hash}; and every bad answer."""

    acked: dict[str, dict[int, str]] = field(default_factory=dict)
    identifiers: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def status(self, r: requests.Response, what: str) -> None:
        with self.lock:
            self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
            if r.status_code >= 500:
                self.errors.append(f"{what}: {r.status_code} {r.text[:300]}")

    def ack(self, rid: str, vid: int, h: str, ident: str) -> None:
        with self.lock:
            self.acked.setdefault(rid, {})[vid] = h
            self.identifiers[rid] = ident

    def ids(self) -> list[str]:
        with self.lock:
            return list(self.acked)


def study(ident: str, n: int) -> dict[str, Any]:
    return {"resourceType": "ResearchStudy", "status": "active",
            "identifier": [{"system": SYSTEM, "value": ident}],
            "title": f"Load study {ident} revision {n} — ' OR 1=1 -- 100% _x_"}


def writer(base: str, ledger: Ledger, wno: int, stop: threading.Event, max_ops: int) -> None:
    s = requests.Session()
    mine: list[tuple[str, str]] = []
    for n in range(max_ops):
        if stop.is_set():
            return
        try:
            if n % 3 == 0 or not mine:
                ident = f"w{wno}-{n}"
                body = study(ident, 0)
                r = s.post(f"{base}/ResearchStudy", json=body, headers=WRITE, timeout=30)
                what = "create"
            else:
                rid, ident = mine[n % len(mine)]
                body = {**study(ident, n), "id": rid}
                r = s.put(f"{base}/ResearchStudy/{rid}", json=body, headers=WRITE, timeout=30)
                what = "update"
        except requests.RequestException:
            return  # the server went away (the kill test): no acknowledgement, stop writing
        ledger.status(r, what)
        if r.status_code in (200, 201):
            served = r.json()
            vid = int(served["meta"]["versionId"])
            assert r.headers["ETag"] == f'W/"{vid}"'
            assert digest(served) == digest(body), "the server answered other content"
            ledger.ack(served["id"], vid, digest(body), ident)
            if what == "create":
                mine.append((served["id"], ident))


def reader(base: str, ledger: Ledger, rno: int, stop: threading.Event, max_ops: int) -> None:
    s = requests.Session()
    for n in range(max_ops):
        if stop.is_set():
            return
        ids = ledger.ids()
        try:
            if ids and n % 3 == 0:
                r = s.get(f"{base}/ResearchStudy/{ids[(n * 7 + rno) % len(ids)]}", timeout=30)
                ledger.status(r, "read")
                if r.status_code != 200:
                    ledger.errors.append(f"read of an acknowledged resource: {r.status_code}")
            elif n % 3 == 1:
                r = s.get(f"{base}/ResearchStudy", params={"title": "load study",
                                                            "_count": "50"}, timeout=30)
                ledger.status(r, "search title")
            else:
                r = s.get(f"{base}/ResearchStudy",
                          params={"identifier": f"{SYSTEM}|w{rno % WRITERS}-0"}, timeout=30)
                ledger.status(r, "search identifier")
        except requests.RequestException:
            return


def run_load(base: str, ledger: Ledger, *, duration: float, max_ops: int,
             readers: int = READERS, kill_after: float | None = None,
             kill: Any = None) -> None:
    stop = threading.Event()
    threads = [threading.Thread(target=writer, args=(base, ledger, i, stop, max_ops))
               for i in range(WRITERS)]
    threads += [threading.Thread(target=reader, args=(base, ledger, i, stop, max_ops))
                for i in range(readers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    if kill_after is not None:
        # counted from the first acknowledged write of each writer (the workers warmed up: on
        # a busy machine the first write alone can take seconds), so the kill lands mid-load
        warm = time.monotonic() + 60
        while len(ledger.ids()) < WRITERS and time.monotonic() < warm:
            time.sleep(0.05)
        time.sleep(kill_after)
        kill()
        t0 = time.monotonic() - kill_after
    deadline = t0 + duration
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    stop.set()
    for t in threads:
        t.join(60)


def assert_every_ack_readable(base: str, ledger: Ledger, *, in_flight_ok: bool) -> None:
    """Each acknowledged version reads back (vread) with its content; the current version is
    the last acknowledged one (or, after a kill, possibly one unacknowledged write later)."""
    s = requests.Session()
    for rid, versions in ledger.acked.items():
        last = max(versions)
        r = s.get(f"{base}/ResearchStudy/{rid}", timeout=30)
        assert r.status_code == 200, (rid, r.status_code)
        current = int(r.json()["meta"]["versionId"])
        assert current == last or (in_flight_ok and current == last + 1), (rid, current, last)
        if current == last:
            assert digest(r.json()) == versions[last]
        for vid, h in versions.items():
            v = s.get(f"{base}/ResearchStudy/{rid}/_history/{vid}", timeout=30)
            assert v.status_code == 200, (rid, vid, v.status_code)
            assert digest(v.json()) == h, f"{rid} version {vid} has other content than acked"


def assert_store_consistent(base: str, db: Path) -> None:
    """SQLite integrity, each body stored once (versions keep the superseded ones), and
    every current resource is found by the index tables (``_id`` and ``identifier``
    searches)."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = conn.execute("SELECT rid, id, vid, body FROM current WHERE type='ResearchStudy' "
                            "AND body IS NOT NULL").fetchall()
        for _, rid_text, vid, _ in rows:
            vbody = conn.execute("SELECT body FROM versions WHERE type='ResearchStudy' AND id=? "
                                 "AND vid=?", (rid_text, vid)).fetchone()
            assert vbody is not None, f"{rid_text}: current version missing from versions"
            # each body is stored once: the current one in current only
            assert vbody[0] is None, f"{rid_text}: the current body is stored twice"
            older = conn.execute("SELECT vid FROM versions WHERE type='ResearchStudy' AND id=? "
                                 "AND vid<? AND method<>'DELETE' AND body IS NULL",
                                 (rid_text, vid)).fetchall()
            assert older == [], f"{rid_text}: superseded versions without a body: {older}"
        for table in ("idx_token", "idx_string", "idx_date", "idx_ref", "idx_number",
                      "idx_geo"):
            orphans = conn.execute(f"SELECT count(*) FROM {table} WHERE rid NOT IN "
                                   "(SELECT rid FROM current)").fetchone()[0]
            assert orphans == 0, f"{table} has {orphans} rows of no current resource"
    finally:
        conn.close()
    s = requests.Session()
    for _, rid_text, _, body in rows:
        ident = json.loads(body)["identifier"][0]["value"]
        for params in ({"_id": rid_text}, {"identifier": f"{SYSTEM}|{ident}"}):
            r = s.get(f"{base}/ResearchStudy", params=params, timeout=30)
            assert r.status_code == 200
            found = [e["resource"]["id"] for e in r.json().get("entry", [])]
            assert found == [rid_text], (params, found)


def _count(suite: str, ledger: Ledger) -> None:
    c = COUNTS.setdefault(suite, Counter())
    c["tried"] += sum(ledger.statuses.values())
    c["failures"] += sum(n for st, n in ledger.statuses.items() if st >= 500)
    for st, n in ledger.statuses.items():
        c[f"outcome:{st}"] += n


def test_concurrent_writers_and_readers_get_no_5xx_and_lose_no_acked_write(tmp_path):
    db = tmp_path / "load.sqlite"
    ledger = Ledger()
    with served(db) as (base, _):
        run_load(base, ledger, duration=DURATION, max_ops=MAX_OPS)
        _count("load-concurrent", ledger)
        assert ledger.errors == []
        assert sum(ledger.statuses.values()) > 0
        assert len(ledger.acked) >= WRITERS, "the writers got nothing acknowledged"
        assert_every_ack_readable(base, ledger, in_flight_ok=False)
        assert_store_consistent(base, db)


@pytest.mark.parametrize("kill_after", [1.5, 3.0], ids=["early", "later"])
def test_sigkill_mid_load_loses_no_acked_write_and_store_stays_consistent(tmp_path,
                                                                        kill_after):
    db = tmp_path / "kill.sqlite"
    ledger = Ledger()
    with served(db) as (base, proc):
        def kill() -> None:
            os.killpg(proc.pid, signal.SIGKILL)

        run_load(base, ledger, duration=kill_after + 30, max_ops=MAX_OPS * 100, readers=1,
                 kill_after=kill_after, kill=kill)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
    _count("load-sigkill", ledger)
    assert ledger.errors == []
    assert len(ledger.acked) >= WRITERS, "the kill came before any acknowledged write"
    with served(db) as (base, _):
        assert_every_ack_readable(base, ledger, in_flight_ok=True)
        assert_store_consistent(base, db)
