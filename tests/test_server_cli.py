"""``fhirtrial load`` and ``fhirtrial serve`` through click's CliRunner."""

from __future__ import annotations

import json
import sqlite3

from click.testing import CliRunner

from conftest import FHIR_EXAMPLES, needs_shared
from fhirtrial.cli import main


@needs_shared
def test_load_stores_fhir_json_as_given_with_its_ids(tmp_path):
    db = tmp_path / "s.sqlite"
    files = sorted((FHIR_EXAMPLES / "r5").glob("*.json"))
    r = CliRunner().invoke(main, ["load", *map(str, files), "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert f"stored {len(files)} bundle(s)" in r.output
    conn = sqlite3.connect(db)
    got = sorted(conn.execute("SELECT type, id FROM current WHERE fv='R5'").fetchall())
    want = sorted((json.loads(f.read_text())["resourceType"], json.loads(f.read_text())["id"])
                  for f in files)
    assert got == want


def test_load_reports_bad_input_and_exits_1_without_storing_it(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"resourceType": "ResearchStudy", "id": "x", "status": 5}))
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"resourceType": "Location", "id": "l1", "name": "L"}))
    db = tmp_path / "s.sqlite"
    r = CliRunner().invoke(main, ["load", str(bad), str(good), "--db", str(db)])
    assert r.exit_code == 1
    assert "bad.json" in r.output
    assert "failed validation" in r.output
    assert "stored 1 bundle(s)" in r.output
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT type, id FROM current").fetchall() == [("Location", "l1")]


def test_serve_and_load_have_help():
    for cmd in ("serve", "load"):
        r = CliRunner().invoke(main, [cmd, "--help"])
        assert r.exit_code == 0
        assert "--db" in r.output
    assert "--workers" in CliRunner().invoke(main, ["serve", "--help"]).output


def test_load_keeps_the_converters_ids_for_plain_creates():
    from fhirtrial.cli.serve import keep_ids

    entries = [
        {"resource": {"resourceType": "ResearchStudy", "id": "NCT1"},
         "request": {"method": "POST", "url": "ResearchStudy"}},
        {"resource": {"resourceType": "Device"}, "request": {"method": "POST", "url": "Device"}},
        {"resource": {"resourceType": "Organization", "id": "o"},
         "request": {"method": "POST", "url": "Organization", "ifNoneExist": "identifier=x|1"}},
        {"resource": {"resourceType": "Location", "id": "l"},
         "request": {"method": "PUT", "url": "Location?identifier=x|2"}},
    ]
    out = keep_ids({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert [e["request"] for e in out["entry"]] == [
        {"method": "PUT", "url": "ResearchStudy/NCT1"},  # the id the converter chose, kept
        {"method": "POST", "url": "Device"},  # no id: the server assigns one
        {"method": "POST", "url": "Organization", "ifNoneExist": "identifier=x|1"},
        {"method": "PUT", "url": "Location?identifier=x|2"},
    ]
