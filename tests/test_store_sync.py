"""``fhirtrial sync --db``: a loaded store kept current by the registry's lastUpdatePostDate.

The registry is a real HTTP server on 127.0.0.1 that answers ``GET /studies`` with
``filter.advanced=AREA[LastUpdatePostDate]RANGE[<day>,MAX]`` from its own set of studies,
paged through ``nextPageToken``, as the API v2 does.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import registry_zip

RANGE = re.compile(r"^AREA\[LastUpdatePostDate\]RANGE\[(\d{4}-\d{2}-\d{2}),MAX\]$")


class Registry:
    """Studies by NCT id; answers date-range queries two studies a page."""

    def __init__(self, studies: dict[str, dict[str, Any]]) -> None:
        self.studies = studies
        self.queries: list[dict[str, str]] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = dict(parse_qsl(url.query))
                registry.queries.append(query)
                m = RANGE.match(query.get("filter.advanced", ""))
                if url.path != "/studies" or m is None:
                    self.send_error(400)
                    return
                hits = sorted((s for s in registry.studies.values()
                               if registry_zip_date(s) >= m.group(1)),
                              key=lambda s: s["protocolSection"]["identificationModule"]["nctId"])
                start = int(query.get("pageToken", "0"))
                size = min(int(query.get("pageSize", "10")), 2)
                page: dict[str, Any] = {"studies": hits[start:start + size]}
                if start + size < len(hits):
                    page["nextPageToken"] = str(start + size)
                body = json.dumps(page).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


def registry_zip_date(study: dict[str, Any]) -> str:
    return study["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhirtrial", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=600, check=False)


def _studies(db: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        return {r[0]: json.loads(r[1]) for r in conn.execute(
            "SELECT id, CAST(body AS TEXT) FROM current WHERE fv='R5' AND "
            "type='ResearchStudy' AND body IS NOT NULL")}


@pytest.fixture
def loaded(tmp_path: Path) -> tuple[Path, list[bytes]]:
    sources = registry_zip.source_records()[:6]
    zpath = tmp_path / "registry.zip"
    registry_zip.write_registry_zip(zpath, 12, sources)
    db = tmp_path / "store.sqlite"
    r = _run("load", str(zpath), "--db", str(db), "--fhir-version", "R5", "--no-validate",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    return db, sources


def test_sync_stores_what_the_registry_changed_since_the_newest_date(tmp_path, loaded):
    db, sources = loaded
    before = _studies(db)
    assert len(before) == 12
    newest = max(s["date"] for s in before.values())
    assert newest == registry_zip.last_update(11)  # record 11 is the latest posted
    # the registry now: 12 studies as loaded, two of them updated today, and two new ones
    current = {registry_zip.nct(i): registry_zip.synthetic_study(sources[i % len(sources)], i)
               for i in range(14)}
    for i in (3, 12, 13):
        current[registry_zip.nct(i)]["protocolSection"]["statusModule"][
            "lastUpdatePostDateStruct"]["date"] = "2026-11-02"
    current[registry_zip.nct(3)]["protocolSection"]["identificationModule"][
        "briefTitle"] = "Renamed on the registry"
    reg = Registry(current)
    try:
        r = _run("sync", "--db", str(db), "--base-url", reg.url, "--data-dir",
                 str(tmp_path / "data"), cwd=tmp_path)
    finally:
        reg.server.shutdown()
        reg.server.server_close()  # the listening socket too (an unclosed one is a warning)
    assert r.returncode == 0, r.stderr[-2000:]
    # asked from the store's newest day; studies 3, 11, 12, 13 are on or after it
    assert reg.queries[0]["filter.advanced"] == \
        f"AREA[LastUpdatePostDate]RANGE[{newest},MAX]"
    assert len(reg.queries) == 2  # two pages of two
    assert r.stdout.split() == [registry_zip.nct(i) for i in (3, 11, 12, 13)]
    assert f"stored 4 studies updated since {newest} (R5); failed 0" in r.stderr
    after = _studies(db)
    assert len(after) == 14
    assert after[registry_zip.nct(3)]["title"] == "Renamed on the registry"
    assert after[registry_zip.nct(3)]["date"] == "2026-11-02"
    assert after[registry_zip.nct(4)] == before[registry_zip.nct(4)]  # untouched
    assert after[registry_zip.nct(3)]["meta"]["versionId"] == "2"  # updated, not duplicated


def test_sync_needs_a_loaded_store(tmp_path: Path):
    missing = _run("sync", "--db", str(tmp_path / "none.sqlite"), cwd=tmp_path)
    assert missing.returncode == 2
    assert "no such store" in missing.stderr
    from fhirtrial.server.store import SQLiteStore

    SQLiteStore(tmp_path / "empty.sqlite").close()
    empty = _run("sync", "--db", str(tmp_path / "empty.sqlite"), "--base-url",
                 "http://127.0.0.1:9", cwd=tmp_path)
    assert empty.returncode == 1
    assert "holds no converted ResearchStudy" in empty.stderr
    bad = _run("sync", "--db", str(tmp_path / "empty.sqlite"), "--since", "last week",
               "--base-url", "http://127.0.0.1:9", cwd=tmp_path)
    assert bad.returncode == 2
    assert "expected a day, YYYY-MM-DD" in bad.stderr
    assert "Traceback" not in bad.stderr
