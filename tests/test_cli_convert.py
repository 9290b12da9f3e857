"""``fhirtrial convert``: outputs, batches with failures, exit codes, and help coverage."""

from __future__ import annotations

import json
import re
import shutil

import click
import pytest
from click.testing import CliRunner

from conftest import FIXTURES, ROOT
from fhirtrial.cli import main

SEED = FIXTURES / "seed" / "NCT06534528.json"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_one_study_without_output_prints_its_bundle(runner: CliRunner) -> None:
    res = runner.invoke(main, ["convert", str(SEED)])
    assert res.exit_code == 0, res.output
    bundle = json.loads(res.stdout)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "collection"
    studies = [e["resource"] for e in bundle["entry"]
               if e["resource"]["resourceType"] == "ResearchStudy"]
    assert [s["identifier"][0]["value"] for s in studies] == ["NCT06534528"]
    # the seed lacks a description module: that is said on stderr, not hidden
    assert "descriptionModule is absent" in res.stderr


def test_same_input_gives_identical_bytes(runner: CliRunner) -> None:
    a = runner.invoke(main, ["convert", str(SEED)]).stdout_bytes
    b = runner.invoke(main, ["convert", str(SEED)]).stdout_bytes
    assert a == b


def test_output_directory_gets_one_file_per_study(runner: CliRunner, tmp_path) -> None:
    res = runner.invoke(main, ["convert", str(SEED), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["NCT06534528.json"]


def test_batch_with_bad_records_converts_the_rest_and_exits_1(runner: CliRunner,
                                                              tmp_path) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(SEED, batch / "a-seed.json")
    (batch / "b-empty.json").write_bytes(b"")
    (batch / "c-truncated.json").write_text('{"protocolSection": {', encoding="utf-8")
    (batch / "d-patient.json").write_text('{"resourceType": "Patient"}', encoding="utf-8")
    out = tmp_path / "all.ndjson"
    res = runner.invoke(main, ["convert", str(batch), "-o", str(out), "-q"])
    assert res.exit_code == 1
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["resourceType"] == "Bundle"
    for name, reason in [("b-empty.json", "empty input"), ("c-truncated.json", "malformed JSON"),
                         ("d-patient.json", "not a ClinicalTrials.gov v2 study")]:
        assert re.search(rf"error: \S*{re.escape(name)}: .*{reason}", res.stderr), res.stderr
    assert "converted 1, with warnings 1, failed 3" in res.stderr
    assert "Traceback" not in res.output


def test_a_first_line_nested_past_jsons_depth_is_one_error_line(runner: CliRunner,
                                                                 tmp_path) -> None:
    """A file whose first line is an object nested deeper than json can parse, followed by
    another object line (as NDJSON is), is refused with one line and exit 1: sniffing it as
    NDJSON raised RecursionError, a traceback (found by the convert fuzz test)."""
    deep = b'{"protocolSection": ' + b"[" * 5000 + b"]" * 5000 + b'}\n{"a": 1}\n'
    src = tmp_path / "deep.json"
    src.write_bytes(deep)
    r = runner.invoke(main, ["convert", str(src), "-o", str(tmp_path / "out"), "-j", "1",
                             "-q"])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code == 1
    assert "nested too deeply" in r.output
    assert "Traceback" not in r.output


def test_outcome_file_collects_warnings_as_an_operation_outcome(runner: CliRunner,
                                                                 tmp_path) -> None:
    oo = tmp_path / "oo.json"
    res = runner.invoke(main, ["convert", str(SEED), "-q", "--outcome", str(oo),
                               "-o", str(tmp_path / "b.json")])
    assert res.exit_code == 0
    outcome = json.loads(oo.read_text(encoding="utf-8"))
    assert outcome["resourceType"] == "OperationOutcome"
    diags = [i["diagnostics"] for i in outcome["issue"]]
    assert any(d.startswith("NCT06534528: protocolSection.conditionsModule is absent")
               for d in diags)
    assert res.stderr == ""


def test_single_file_output_refuses_many_studies_and_writes_nothing(runner: CliRunner,
                                                                    tmp_path) -> None:
    batch = tmp_path / "two"
    batch.mkdir()
    shutil.copy(SEED, batch / "a.json")
    shutil.copy(SEED, batch / "b.json")
    target = tmp_path / "one.json"
    res = runner.invoke(main, ["convert", str(batch), "-o", str(target), "-q"])
    assert res.exit_code == 2
    assert "more than one study" in res.output
    assert not target.exists()


def test_unknown_option_is_a_usage_error(runner: CliRunner) -> None:
    res = runner.invoke(main, ["convert", str(SEED), "--fhir-version", "R3"])
    assert res.exit_code == 2


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    # through the group's own API: the top-level group imports its commands when asked
    # (group.commands is empty until then)
    ctx = click.Context(group)
    out = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, f"{prefix}{name} is listed but cannot be loaded"
        full = f"{prefix}{name}"
        out.append((full, cmd))
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, f"{full} "))
    return out


def test_every_command_is_enumerated() -> None:
    names = [n for n, _ in _commands(main)]
    for expected in ("convert", "validate", "serve", "load", "push", "match", "find-trials",
                     "db upgrade", "db copy", "sync"):
        assert expected in names


@pytest.mark.parametrize(("name", "cmd"), _commands(main), ids=[n for n, _ in _commands(main)])
def test_every_command_has_help_and_a_readme_section(name: str, cmd: click.Command) -> None:
    assert (cmd.help or "").strip(), f"{name} has no help text"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"`fhirtrial {name}" in readme, f"README.md does not document `fhirtrial {name}`"


def test_validate_flag_checks_each_bundle_before_writing_it(runner: CliRunner, tmp_path) -> None:
    res = runner.invoke(main, ["convert", str(SEED), "--validate", "-q", "-o",
                               str(tmp_path / "ok.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "ok.json").read_text("utf-8"))["resourceType"] == "Bundle"
