"""Bad environments get one clear line, not a traceback (issue 13): ``serve`` and ``load`` on
a file that is not SQLite, a truncated or damaged store, a data directory under a regular
file; a read-only store file or disk is served read-only with writes refused (403); and
``load`` treats every record as its own unit."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT, WRITE_TOKEN
from fhirtrial.cli import main
from fhirtrial.server import create_app
from fhirtrial.server.store import SQLiteStore, StoreError
from fhirtrial.server.storeopen import open_sqlite_store

SEED = ROOT / "fixtures" / "seed" / "NCT06534528.json"
AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/fhir+json"}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command line in-process (click's runner, fast), shaped like a finished process."""
    r = CliRunner().invoke(main, list(args), env=env)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise AssertionError(f"{args}: traceback instead of a message") from r.exception
    return subprocess.CompletedProcess(args, r.exit_code, r.stdout, r.stderr)


def _process(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line: what a user sees on stderr, and the exit code."""
    return subprocess.run([sys.executable, "-m", "fhirtrial", *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                          timeout=120, check=False)


def _one_line_error(r: subprocess.CompletedProcess[str], needle: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("Error: ")
    assert needle in lines[0], lines[0]


def _store_with_data(path: Path, n: int = 300) -> None:
    store = SQLiteStore(path)
    with store.transaction() as tx:
        for i in range(n):
            tx.update("R5", {"resourceType": "Location", "id": f"l{i}",
                             "name": f"site {i} " * 20})
    store.close()
    conn = sqlite3.connect(path)  # fold the WAL in: the file alone is the whole store
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _damage_a_middle_page(path: Path) -> None:
    data = bytearray(path.read_bytes())
    size = int.from_bytes(data[16:18], "big")
    at = (len(data) // size // 2) * size
    for i in range(at + 100, at + size - 8):  # keep the page header, garble its cells
        data[i] = (data[i] * 7 + 13) & 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def not_sqlite(tmp_path) -> Path:
    p = tmp_path / "notes.sqlite"
    p.write_text("these are my notes, not a database\n" * 50)
    return p


@pytest.fixture
def truncated(tmp_path) -> Path:
    p = tmp_path / "cut.sqlite"
    _store_with_data(p)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])
    return p


@pytest.fixture
def damaged(tmp_path) -> Path:
    p = tmp_path / "damaged.sqlite"
    _store_with_data(p)
    _damage_a_middle_page(p)
    # the damage is past what opening reads: only the integrity check finds it
    assert SQLiteStore(p).read("R5", "Location", "l1").id == "l1"
    return p


# ---------------------------------------------------------------- serve
def test_serve_on_a_file_that_is_not_sqlite_says_so_in_one_line(not_sqlite):
    r = _process("serve", "--db", str(not_sqlite), "--port", "1")
    _one_line_error(r, f"{not_sqlite} is not a SQLite database (it starts with "
                       "b'these are my not')")
    assert "notes" in not_sqlite.read_text()  # untouched


def test_serve_on_a_truncated_store_says_so_in_one_line(truncated):
    r = _cli("serve", "--db", str(truncated), "--port", "1")
    _one_line_error(r, f"{truncated} is truncated: its header counts")


def test_serve_on_a_store_failing_its_integrity_check_says_so_at_start_up(damaged):
    r = _cli("serve", "--db", str(damaged), "--port", "1")
    _one_line_error(r, f"the store {damaged} is damaged (")
    assert "SQLite's integrity check fails; restore it from a backup" in r.stderr


def test_serve_with_the_data_dir_under_a_regular_file_says_so(tmp_path):
    (tmp_path / "afile").write_text("x")
    r = _cli("serve", "--port", "1", env={"FHIRTRIAL_DATA_DIR": str(tmp_path / "afile" / "d")})
    _one_line_error(r, f"{tmp_path / 'afile'} is a file, not a directory")


def test_serve_with_a_directory_as_the_store_says_so(tmp_path):
    r = _cli("serve", "--db", str(tmp_path), "--port", "1")
    _one_line_error(r, "is a directory; give a file path")


@pytest.mark.parametrize(("var", "value", "needle"), [
    ("FHIRTRIAL_DB_POOL_MIN", "abc", "FHIRTRIAL_DB_POOL_MIN='abc': expected a whole number"),
    ("FHIRTRIAL_DB_POOL_MAX", "-1", "expected 0 <= min <= max, max >= 1"),
    ("FHIRTRIAL_DB_POOL_TIMEOUT", "nan", "DB_POOL_TIMEOUT nan: expected a number of seconds"),
    ("FHIRTRIAL_READ_AUTH", "maybe", "FHIRTRIAL_READ_AUTH='maybe': expected true or false"),
    ("FHIRTRIAL_MAX_BODY_BYTES", "-5", "MAX_BODY_BYTES -5: expected at least 1"),
    ("FHIRTRIAL_BASE_URL", "notaurl", "BASE_URL 'notaurl': expected an http:// or https://"),
])
def test_a_setting_nothing_could_work_with_is_refused_at_start_in_one_line(tmp_path, var, value,
                                                                          needle):
    # before, "maybe" was false (reads open to all), a body limit of -5 refused every
    # request, and the server started anyway
    r = _cli("serve", "--db", str(tmp_path / "s.sqlite"), "--port", "1", env={var: value})
    _one_line_error(r, needle)


@pytest.mark.parametrize("command", [["load", "NCT00000000"], ["db", "upgrade"],
                                     ["find-trials", "PATIENT"]])
def test_a_bad_setting_is_one_line_for_every_command_that_reads_the_settings(tmp_path, command):
    patient = tmp_path / "p.json"
    patient.write_text('{"resourceType": "Bundle", "type": "collection", "entry": []}')
    args = [str(patient) if a == "PATIENT" else a for a in command]
    r = _cli(*args, "--db", str(tmp_path / "s.sqlite"), env={"FHIRTRIAL_READ_AUTH": "maybe"})
    assert r.returncode == 2
    assert r.stderr.strip() == "error: FHIRTRIAL_READ_AUTH='maybe': expected true or false"


def test_a_port_out_of_range_is_a_usage_error_not_a_traceback():
    r = _process("serve", "--port", "99999")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "'--port': 99999 is not in the range 1<=x<=65535" in r.stderr


# ---------------------------------------------------------------- load
@pytest.mark.parametrize("kind", ["not_sqlite", "truncated", "damaged"])
def test_load_into_a_broken_store_says_so_in_one_line_and_writes_nothing(kind, request):
    path: Path = request.getfixturevalue(kind)
    before = path.read_bytes()
    r = _cli("load", str(SEED), "--db", str(path))
    _one_line_error(r, str(path))
    assert path.read_bytes() == before


def test_load_with_the_data_dir_under_a_regular_file_says_so(tmp_path):
    (tmp_path / "afile").write_text("x")
    r = _cli("load", str(SEED), env={"FHIRTRIAL_DATA_DIR": str(tmp_path / "afile" / "d")})
    _one_line_error(r, "is a file, not a directory")


def _far_future_record(tmp_path: Path) -> Path:
    doc = json.loads(SEED.read_text())
    doc["protocolSection"]["statusModule"]["completionDateStruct"]["date"] = "9999-12-31"
    doc["protocolSection"]["identificationModule"]["nctId"] = "NCT09999999"
    p = tmp_path / "NCT09999999.json"
    p.write_text(json.dumps(doc))
    return p


def test_load_stores_a_record_with_a_far_future_date(tmp_path):
    db = tmp_path / "s.sqlite"
    r = _cli("load", str(_far_future_record(tmp_path)), str(SEED), "--db", str(db),
             "--fhir-version", "R5")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().endswith(f"stored 2 bundle(s) in {db}; 0 failed")
    ids = {row[0] for row in sqlite3.connect(db).execute(
        "SELECT id FROM current WHERE type='ResearchStudy'")}
    assert ids == {"NCT09999999", "NCT06534528"}


def test_load_reports_and_counts_a_record_that_fails_unexpectedly(tmp_path, monkeypatch):
    from fhirtrial.server import bundles

    real = bundles.process

    def flaky(store, fv, bundle, **kw):
        if any(e["resource"].get("id") == "NCT09999999" for e in bundle["entry"]):
            raise RuntimeError("a fault in the store layer")
        return real(store, fv, bundle, **kw)

    monkeypatch.setattr(bundles, "process", flaky)
    db = tmp_path / "s.sqlite"
    r = CliRunner().invoke(main, ["load", str(_far_future_record(tmp_path)), str(SEED),
                                  "--db", str(db), "--fhir-version", "R5"])
    assert r.exit_code == 1, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert "NCT09999999.json (R5): not stored: RuntimeError: a fault in the store layer" \
        in r.output
    assert f"stored 1 bundle(s) in {db}; 1 failed" in r.output
    ids = {row[0] for row in sqlite3.connect(db).execute(
        "SELECT id FROM current WHERE type='ResearchStudy'")}
    assert ids == {"NCT06534528"}


# ---------------------------------------------------------------- read-only stores
def _read_only_store(tmp_path: Path) -> Path:
    db = tmp_path / "ro" / "s.sqlite"
    db.parent.mkdir()
    _store_with_data(db, n=3)
    return db


def _check_read_only_app(db: Path) -> None:
    app = create_app({"DB": str(db), "TOKENS": WRITE_TOKEN, "CHECK_STORE": True})
    assert app.extensions["fhirtrial.store"].readonly
    client = app.test_client()
    assert client.get("/fhir/Location/l1").status_code == 200
    assert json.loads(client.get("/fhir/Location?_summary=count").data)["total"] == 3
    r = client.put("/fhir/Location/new", headers=AUTH,
                   data=json.dumps({"resourceType": "Location", "id": "new", "name": "n"}))
    assert r.status_code == 403
    assert json.loads(r.data) == {"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": "forbidden", "diagnostics":
        f"this server's store ({db}) is read-only (a read-only file, directory or disk): it "
        "serves reads and refuses every write; nothing was stored"}]}
    assert client.get("/fhir/Location/new").status_code == 404


def _immutable(path: Path, on: bool) -> bool:
    """chattr +i: read-only even for root (the suite may run as root, where chmod is not)."""
    if shutil.which("chattr") is None:
        return False
    r = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True,
                       check=False)
    return r.returncode == 0


def test_read_only_store_file_serves_reads_and_refuses_writes(tmp_path, monkeypatch):
    db = _read_only_store(tmp_path)
    db.chmod(0o444)
    locked = False
    if os.geteuid() == 0:  # root writes a 0444 file anyway
        locked = _immutable(db, True)
        if not locked:
            pytest.skip("running as root without chattr: no way to make a file read-only")
    try:
        _check_read_only_app(db)
        r = _cli("load", str(SEED), "--db", str(db))
        _one_line_error(r, "is read-only (file, directory or disk): nothing can be loaded")
        # serve says so at start-up, then serves (gunicorn itself replaced: it would block)
        started: list[str] = []
        monkeypatch.setattr("fhirtrial.cli.serve.run_gunicorn",
                            lambda factory, **kw: started.append(str(factory().name)))
        r = _cli("serve", "--db", str(db), "--port", "1")
        assert r.returncode == 0, r.stderr
        assert "fhirtrial: the store is read-only (file, directory or disk): serving reads; " \
            "every write is refused (403)" in r.stderr
        assert started == ["fhirtrial.server.app"]
    finally:
        if locked:
            _immutable(db, False)
        db.chmod(0o644)


_RO_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_server_environment import _check_read_only_app
from pathlib import Path
_check_read_only_app(Path({db!r}))
print("checked")
"""


def test_store_on_a_read_only_disk_serves_reads_and_refuses_writes(tmp_path):
    """A read-only bind mount of the store's directory (a user and mount namespace: no
    privilege needed beyond what unprivileged namespaces allow)."""
    db = _read_only_store(tmp_path)
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False) \
        if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("unshare -rm (user and mount namespaces) is not available here")
    d = str(db.parent)
    script = _RO_SCRIPT.format(tests=str(ROOT / "tests"), db=str(db))
    r = subprocess.run(
        ["unshare", "-rm", "sh", "-c",
         f'mount --bind -o ro "{d}" "{d}" && exec "{sys.executable}" -c "$0"', script],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "checked"
    assert sorted(p.name for p in db.parent.iterdir()) == ["s.sqlite"]  # nothing written


@pytest.mark.parametrize(("number", "message"), [
    ("NaN", "NaN, which is not a JSON number"),
    ("9" * 5000, "an integer of 5000 digits (at most 1000)")])
def test_load_refuses_a_number_no_fhir_element_can_hold_even_unvalidated(tmp_path, number,
                                                                         message):
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType":"Location","id":"n","name":"x","position":{"latitude":'
                   + number + ',"longitude":1}}')
    db = tmp_path / "s.sqlite"
    r = _cli("load", str(bad), "--db", str(db), "--no-validate")
    assert r.returncode == 1
    assert f"{bad} (R5): not a FHIR resource or Bundle: {message}" in r.stderr
    assert sqlite3.connect(db).execute("SELECT count(*) FROM current").fetchone() == (0,)


def test_disk_full_during_a_write_is_a_503_saying_so_and_stores_nothing(tmp_path):
    db = tmp_path / "s.sqlite"
    app = create_app({"DB": str(db), "TOKENS": WRITE_TOKEN})
    client = app.test_client()
    assert client.put("/fhir/Location/a", headers=AUTH, data=json.dumps(
        {"resourceType": "Location", "id": "a", "name": "a"})).status_code == 201
    conn = app.extensions["fhirtrial.store"]._conn()  # the test client's thread's connection
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")  # the disk is full: no page more
    r = client.put("/fhir/Location/b", headers=AUTH, data=json.dumps(
        {"resourceType": "Location", "id": "b", "name": "b" * 200_000}))
    assert r.status_code == 503, r.get_data(as_text=True)
    assert json.loads(r.data)["issue"][0]["diagnostics"] == (
        f"the store {db} failed a write (database or disk is full); nothing was stored")
    assert client.get("/fhir/Location/b").status_code == 404
    assert client.get("/fhir/Location/a").status_code == 200


# ---------------------------------------------------------------- a kill during a checkpoint
def _wal_page_one(wal: bytes) -> bytes:
    """The last copy of page 1 in a WAL file (its 32-byte header, then frames of a 24-byte
    header and one page each)."""
    page = int.from_bytes(wal[8:12], "big")
    last, at = None, 32
    while at + 24 + page <= len(wal):
        if int.from_bytes(wal[at:at + 4], "big") == 1:
            last = wal[at + 24:at + 24 + page]
        at += 24 + page
    assert last is not None
    return last


def test_a_store_killed_during_a_checkpoint_opens_from_its_wal(tmp_path) -> None:
    # SIGKILL while SQLite copies the WAL into the file: page 1 (with the new page count) is
    # written first, the pages after it not yet. The WAL still holds them all, so SQLite
    # opens the store whole; fhirtrial refused it as "truncated" (seen once in CI under the
    # SIGKILL load test).
    p = tmp_path / "live.sqlite"
    _store_with_data(p, n=50)
    conn = sqlite3.connect(p)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE filler (x BLOB)")
    conn.executemany("INSERT INTO filler VALUES (?)", [(b"x" * 3000,) for _ in range(200)])
    conn.commit()
    crashed = tmp_path / "crashed.sqlite"
    crashed.write_bytes(p.read_bytes())  # the copies while the writer still holds the WAL
    wal = Path(f"{p}-wal").read_bytes()
    Path(f"{crashed}-wal").write_bytes(wal)
    conn.close()
    data = bytearray(crashed.read_bytes())
    first = _wal_page_one(wal)
    data[:len(first)] = first  # the checkpoint got as far as page 1
    crashed.write_bytes(bytes(data))
    head = bytes(data[:100])
    pages, size = int.from_bytes(head[28:32], "big"), int.from_bytes(head[16:18], "big")
    # the state CI met: a current page count the file is shorter than
    assert head[92:96] == head[24:28]
    assert pages * size > len(data)

    store = open_sqlite_store(crashed, check=True)
    assert store.read("R5", "Location", "l49").id == "l49"
    store.close()


def test_a_truncated_store_without_a_wal_is_still_refused(truncated) -> None:
    with pytest.raises(StoreError, match="is truncated"):
        open_sqlite_store(truncated)
