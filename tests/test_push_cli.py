"""The ``push`` command: usage, exit codes, messages, journal and report files."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from fhirtrial.cli import main
from push_helpers import study_bundle


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_push_has_help_naming_every_auth_kind() -> None:
    result = CliRunner().invoke(main, ["push", "-h"])
    assert result.exit_code == 0
    for word in ("--server", "--fhir-version", "--dry-run", "--journal", "bearer", "smart"):
        assert word in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["x.json"], "Missing option '--server'"),
    (["x.json", "--server", "ftp://host"], "must be an http(s) URL"),
    (["x.json", "--server", "http://h", "--fhir-version", "R3"], "'R3' is not one of"),
    (["x.json", "--server", "http://h", "--auth", "basic"], "--auth basic needs --user"),
], ids=["no-server", "bad-scheme", "bad-version", "basic-without-user"])
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["push", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_unreachable_server_is_one_line_and_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "NCT1.json"
    path.write_text(json.dumps(study_bundle("NCT60000001")))
    url = f"http://127.0.0.1:{_free_port()}"
    result = CliRunner().invoke(main, ["push", str(path), "--server", url, "--retries", "0",
                                       "--no-journal"])
    assert result.exit_code == 1
    assert result.output == f"error: GET {url}/metadata: connection refused\n"


@pytest.mark.node
def test_report_file_and_journal_are_written(fresh_medplum: str, tmp_path: Path) -> None:
    (tmp_path / "NCT60000002.json").write_text(json.dumps(study_bundle("NCT60000002")))
    (tmp_path / "broken.json").write_text('{"resourceType": "Patient"}')
    report, journal = tmp_path / "out" / "report.json", tmp_path / "push.jsonl"
    (tmp_path / "out").mkdir()
    result = CliRunner().invoke(main, ["push", str(tmp_path / "NCT60000002.json"),
                                       str(tmp_path / "broken.json"), "--server", fresh_medplum,
                                       "--journal", str(journal), "--report", str(report)])
    assert result.exit_code == 1, result.output
    doc = json.loads(report.read_text())
    assert doc["totals"] == {"created": 1, "failed": 1}
    assert doc["studies"][1]["error"].endswith("a Patient resource; push takes Bundles or "
                                               "registry records")
    [line] = journal.read_text().splitlines()
    assert json.loads(line)["study"] == "NCT60000002"
