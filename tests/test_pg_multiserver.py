"""Two ``fhirtrial serve`` processes (gunicorn, two workers each) on one PostgreSQL database:
what a load balancer in front of several servers does to them. Conditional creates racing over
both servers make one resource, concurrent ``If-Match`` updates give exactly one success, and
a server killed with SIGKILL in the middle of writes loses none it acknowledged — checked in
the database's own rows, not through the servers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
import requests

from conftest import WRITE_TOKEN

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/fhir+json"}
SYS = "https://example.org/trial-ids"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, url: str, tmp_path, name: str) -> None:
        self.port = _port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        env = {**os.environ, "FHIRTRIAL_TOKENS": WRITE_TOKEN, "FHIRTRIAL_DB": url}
        self.log = (tmp_path / f"{name}.log").open("wb")
        # its own session: SIGKILL to the process group is a whole server (master + workers)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fhirtrial", "serve", "--port", str(self.port),
             "--workers", "2"], env=env, cwd=tmp_path, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited with {self.proc.returncode}"
            try:
                if requests.get(f"{self.base}/metadata", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError("server did not answer within 90 s")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def two_servers(pg_url, tmp_path):
    servers = [Server(pg_url, tmp_path, n) for n in ("a", "b")]
    try:
        for s in servers:
            s.wait_ready()
        yield servers, pg_url
    finally:
        for s in servers:
            s.stop()


def _rows(url: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as c:
        return c.execute(sql, args).fetchall()


HANDLERS = 4  # at least two request handlers of each server in flight at once (2 workers each,
#              each with threads: more may be)


def _race(url: str, n: int, fn) -> list[Any]:
    """``fn(0..n-1)`` from n threads, with the race made certain: a transaction holds
    ``current`` locked until every request handler of both servers is waiting on the database
    inside its write, then lets them all go at once. (Without that, the servers' request
    parsing spaces their transactions out and a missing lock would rarely show.)"""
    with psycopg.connect(url) as holder, psycopg.connect(url, autocommit=True) as watch:
        holder.execute("LOCK TABLE current IN ACCESS EXCLUSIVE MODE")
        with ThreadPoolExecutor(n) as pool:
            futures = [pool.submit(fn, i) for i in range(n)]
            deadline = time.monotonic() + 60
            waiting = 0
            while waiting < HANDLERS and time.monotonic() < deadline:
                time.sleep(0.05)
                waiting = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()").fetchone()[0]
            holder.commit()
            answers = [f.result() for f in futures]
    assert waiting >= HANDLERS, f"only {waiting} handlers reached the database together"
    return answers


def test_32_racing_conditional_creates_over_two_servers_make_one_resource(two_servers):
    servers, url = two_servers
    study = {"resourceType": "ResearchStudy", "status": "active", "title": "Raced",
             "identifier": [{"system": SYS, "value": "NCT-RACE-1"}]}
    def create(i: int) -> requests.Response:
        return requests.post(f"{servers[i % 2].base}/ResearchStudy", data=json.dumps(study),
                             headers={**AUTH, "If-None-Exist": f"identifier={SYS}|NCT-RACE-1"},
                             timeout=60)

    answers = _race(url, 32, create)
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 31 + [201], [r.text[:300] for r in answers if r.status_code > 201]
    ids = {r.json()["id"] for r in answers}
    assert len(ids) == 1
    rows = _rows(url, "SELECT id, vid FROM current WHERE type = 'ResearchStudy'")
    assert rows == [(ids.pop(), 1)]
    assert _rows(url, "SELECT count(*) FROM versions")[0][0] == 1
    assert _rows(url, "SELECT count(*) FROM idx_token WHERE sp = 'ResearchStudy.identifier' "
                      "AND code = 'NCT-RACE-1'")[0][0] == 1


def test_16_racing_conditional_updates_over_two_servers_make_one_resource(two_servers):
    servers, url = two_servers
    def put(i: int) -> requests.Response:
        study = {"resourceType": "ResearchStudy", "status": "active", "title": f"Put {i}",
                 "identifier": [{"system": SYS, "value": "NCT-RACE-2"}]}
        return requests.put(f"{servers[i % 2].base}/ResearchStudy?identifier={SYS}|NCT-RACE-2",
                            data=json.dumps(study), headers=AUTH, timeout=60)

    answers = _race(url, 16, put)
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 15 + [201], [r.text[:300] for r in answers]
    rows = _rows(url, "SELECT id, vid FROM current WHERE type = 'ResearchStudy'")
    assert len(rows) == 1
    assert rows[0][1] == 16  # one create, then 15 updates of that same resource
    assert sorted(v for (v,) in _rows(url, "SELECT vid FROM versions")) == list(range(1, 17))


def test_16_concurrent_if_match_updates_give_exactly_one_success(two_servers):
    servers, url = two_servers
    study = {"resourceType": "ResearchStudy", "id": "im-1", "status": "active", "title": "v1"}
    r = requests.put(f"{servers[0].base}/ResearchStudy/im-1", data=json.dumps(study),
                     headers=AUTH, timeout=30)
    assert r.status_code == 201
    def update(i: int) -> requests.Response:
        return requests.put(f"{servers[i % 2].base}/ResearchStudy/im-1",
                            data=json.dumps({**study, "title": f"writer {i}"}),
                            headers={**AUTH, "If-Match": 'W/"1"'}, timeout=60)

    answers = _race(url, 16, update)
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [412] * 15, [r.text[:300] for r in answers if r.status_code > 412]
    winner = next(r for r in answers if r.status_code == 200).json()["title"]
    rows = _rows(url, "SELECT vid, convert_from(body, 'UTF8') FROM current WHERE id = 'im-1'")
    assert rows[0][0] == 2
    assert json.loads(rows[0][1])["title"] == winner
    assert _rows(url, "SELECT count(*) FROM versions WHERE id = 'im-1'")[0][0] == 2


def test_sigkill_of_one_server_during_writes_loses_no_acknowledged_write(two_servers):
    servers, url = two_servers
    acknowledged: list[tuple[str, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w: int) -> None:
        server = servers[w % 2]
        for n in range(10_000):
            if stop.is_set():
                return
            rid = f"w{w}-{n}"
            body = {"resourceType": "ResearchStudy", "id": rid, "status": "active",
                    "title": f"writer {w} write {n}",
                    "identifier": [{"system": SYS, "value": rid}]}
            try:
                r = requests.put(f"{server.base}/ResearchStudy/{rid}", data=json.dumps(body),
                                 headers=AUTH, timeout=30)
            except requests.RequestException:
                if server is servers[0]:
                    return  # the killed server: its writer stops
                raise
            assert r.status_code == 201, r.text[:300]
            with lock:
                acknowledged.append((rid, w))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    # 40 writes acknowledged, some by each server (on a busy machine one may start slower)
    while (len(acknowledged) < 40 or len({w % 2 for _, w in acknowledged}) < 2) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    servers[0].kill()  # SIGKILL, master and workers, in the middle of its writers' requests
    killed_at = len(acknowledged)
    b_at_kill = sum(1 for _, w in acknowledged if w % 2 == 1)
    time.sleep(1.5)  # the other server keeps writing
    stop.set()
    for t in threads:
        t.join(60)
    assert killed_at >= 40
    assert any(w % 2 == 0 for _, w in acknowledged)
    assert sum(1 for _, w in acknowledged if w % 2 == 1) > b_at_kill  # b went on after a died
    stored = {r[0]: r[1] for r in _rows(
        url, "SELECT id, convert_from(body, 'UTF8') FROM current WHERE type = 'ResearchStudy'")}
    missing = [rid for rid, _ in acknowledged if rid not in stored]
    assert not missing
    for rid, _ in acknowledged:
        assert json.loads(stored[rid])["identifier"][0]["value"] == rid
    # nothing half-written: every stored resource has its version row and its index rows
    # (a write cut off by the kill is all there or not at all)
    assert _rows(url, "SELECT count(*) FROM current c WHERE NOT EXISTS (SELECT 1 FROM "
                      "versions v WHERE v.id = c.id AND v.vid = c.vid)")[0][0] == 0
    assert _rows(url, "SELECT count(*) FROM current c WHERE NOT EXISTS (SELECT 1 FROM "
                      "idx_token t WHERE t.rid = c.rid AND t.sp = 'ResearchStudy.identifier' "
                      "AND t.code = c.id)")[0][0] == 0
    # and the survivor serves every acknowledged write
    r = requests.get(f"{servers[1].base}/ResearchStudy?_summary=count", timeout=30)
    assert r.json()["total"] == len(stored) >= len(acknowledged)
