"""Every CLI input kind holds the 64 MiB cap (files, stdin, FIFOs, devices, zip members,
NDJSON lines), and bad input or output ends as one CLI line and an exit code, never a
traceback: the reproductions of issue 13, run as a user runs them (a real process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from fhirtrial.cli import main
from fhirtrial.files import MAX_INPUT_BYTES

SEED = FIXTURES / "seed" / "NCT06534528.json"
CAP_LINE = f"larger than {MAX_INPUT_BYTES} bytes (64 MiB), the input limit"
pytestmark = pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")


def _run(args: list[str], stdin: object = subprocess.DEVNULL, timeout: float = 180
         ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FHIRTRIAL_FHIR_PACKAGES": os.devnull + ".none"}
    proc = subprocess.run([sys.executable, "-m", "fhirtrial", *args], stdin=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.mark.parametrize("command", [["convert", "-j", "1"], ["validate"]])
def test_dev_zero_is_refused_at_the_cap(command: list[str]) -> None:
    proc = _run([*command, "/dev/zero"])
    assert proc.returncode == 1
    assert CAP_LINE in proc.stderr + proc.stdout


@pytest.mark.parametrize("command", [["convert", "-j", "1"], ["validate"]])
def test_endless_stdin_is_refused_at_the_cap(command: list[str]) -> None:
    with open("/dev/zero", "rb") as zero:
        proc = _run([*command, "-"], stdin=zero)
    assert proc.returncode == 1
    assert f"<stdin>: -: fatal: [too-costly] {CAP_LINE}" in proc.stdout \
        if command == ["validate"] else f"error: <stdin>: {CAP_LINE}" in proc.stderr


def test_endless_fifo_is_refused_at_the_cap(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)

    def feed() -> None:
        try:
            with open(fifo, "wb") as w:
                while True:
                    w.write(b"\0" * (1 << 20))
        except (BrokenPipeError, OSError):
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    proc = _run(["convert", "-j", "1", str(fifo)])
    writer.join(10)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == f"error: {fifo}: {CAP_LINE}"


def test_endless_ndjson_line_stops_the_stream_after_the_good_lines() -> None:
    good = {"resourceType": "Patient", "active": True}
    script = (f"import sys; sys.stdout.buffer.write({json.dumps(good) + chr(10)!r}.encode() * 2)"
              "\nz = b'{' + bytes(1 << 20)\n"
              "try:\n    while True: sys.stdout.buffer.write(z)\nexcept OSError: pass")
    feeder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert feeder.stdout is not None
    try:
        proc = _run(["validate", "-"], stdin=feeder.stdout)
    finally:
        feeder.kill()
        feeder.wait()
        feeder.stdout.close()
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        f"<stdin>:3: -: fatal: [too-costly] line {CAP_LINE}; the rest of <stdin> is not read"]
    assert proc.stderr.splitlines()[-1].startswith("3 inputs validated: 1 fatal")


def test_zip_member_over_the_cap_is_refused_without_reading_it(tmp_path: Path) -> None:
    archive = tmp_path / "records.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.json", b" " * (MAX_INPUT_BYTES + 1))
        z.write(SEED, "NCT06534528.json")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["convert", str(archive), "-o", str(out), "-q", "-j", "1"])
    assert res.exit_code == 1
    assert f"error: {archive}:big.json: larger than {MAX_INPUT_BYTES} bytes" in res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["NCT06534528.json"]


# -- messages ----------------------------------------------------------------------------------
def test_json_error_names_its_position_once_and_says_truncated(tmp_path: Path) -> None:
    f = tmp_path / "cut.json"
    f.write_bytes(SEED.read_bytes()[:3000])
    conv = CliRunner().invoke(main, ["convert", str(f), "-j", "1"])
    assert conv.exit_code == 1
    assert " at at" not in conv.stderr
    assert conv.stderr.splitlines()[0] == (
        f"error: {f}: malformed JSON: Unterminated string starting at line 66:30 "
        "(the input ends inside a value: truncated?)")
    val = CliRunner().invoke(main, ["validate", str(f)])
    assert val.stdout.splitlines() == [
        f"{f}: -: fatal: [structure] Not well-formed JSON: Unterminated string starting at "
        "line 66:30 (the input ends inside a value: truncated?)"]


def test_json_error_in_the_middle_is_not_called_truncated(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text('{"resourceType": "Patient",\n  "active": tru,\n  "id": "x"}')
    val = CliRunner().invoke(main, ["validate", str(f)])
    assert val.stdout.splitlines() == [
        f"{f}: -: fatal: [structure] Not well-formed JSON: Expecting value at line 2:13"]


def test_output_with_a_file_suffix_is_not_made_a_directory(tmp_path: Path) -> None:
    target = tmp_path / "single.txt"
    res = CliRunner().invoke(main, ["convert", str(SEED), "-o", str(target), "-j", "1"])
    assert res.exit_code == 2
    assert f"-o {target}: not a directory, .json or .ndjson name" in res.stderr
    assert not target.exists()
    # a trailing slash asks for a directory of that name
    res = CliRunner().invoke(main, ["convert", str(SEED), "-o", f"{target}/", "-j", "1",
                                    "-q"])
    assert res.exit_code == 0, res.output
    assert (target / "NCT06534528.json").is_file()


def test_output_under_a_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out, why in ((str(blocker), "exists and is not a directory"),
                     (f"{blocker}/sub/", f"{blocker} is a file, not a directory"),
                     (f"{blocker}/x.ndjson", f"{blocker} is a file, not a directory"),
                     (f"{blocker}/a/b.json", f"{blocker} is a file, not a directory")):
        res = CliRunner().invoke(main, ["convert", str(SEED), "-o", out, "-j", "1", "-q"])
        assert res.exit_code == 2, (out, res.output)
        assert isinstance(res.exception, SystemExit)
        assert f"-o {out}: {why}" in res.stderr
    (tmp_path / "dir.json").mkdir()
    res = CliRunner().invoke(main, ["convert", str(SEED), "-o", str(tmp_path / "dir.json"),
                                    "-j", "1", "-q"])
    assert res.exit_code == 2
    assert "is a directory, not a .json file" in res.stderr


def test_validate_says_which_directory_files_it_did_not_validate(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"resourceType": "Patient"}))
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "study.xml").write_text("<x/>")
    res = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines()[0] == (
        f"note: {tmp_path}: 2 files not validated (not .json or .ndjson): notes.txt, "
        "sub/study.xml")


def test_match_with_an_endless_patient_bundle_is_one_line() -> None:
    proc = _run(["match", str(SEED), "/dev/zero"])
    assert proc.returncode == 2
    outcome = json.loads(proc.stderr)
    assert [i["diagnostics"] for i in outcome["issue"]] == [f"/dev/zero: {CAP_LINE}"]


def test_push_from_a_device_is_a_failed_unit_not_an_endless_read() -> None:
    from fhirtrial.push import load_units
    from fhirtrial.push.strategies import UnitResult

    units = list(load_units(["/dev/zero"], "R5"))
    assert len(units) == 1
    assert isinstance(units[0], UnitResult)
    assert units[0].error == f"/dev/zero: {CAP_LINE}"


# --- nothing to read, a store that is no store, more workers than cores --------------------

@pytest.mark.parametrize(("command", "line"), [
    (["convert", "-j", "1"], "error: no trial records found in "),
    (["validate"], "error: no FHIR JSON found in "),
])
def test_a_folder_with_nothing_to_read_is_an_error_not_a_success(tmp_path: Path,
                                                                  command: list[str],
                                                                  line: str) -> None:
    # "0 inputs validated: no issues" and exit 0 told a user with a wrong path all was well
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _run([*command, str(empty)])
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"{line}{empty}"
    assert proc.stdout == ""


@pytest.mark.parametrize("command", [["find-trials", "PATIENT"], ["sync"]])
def test_a_store_that_is_not_sqlite_is_one_line_for_every_command(tmp_path: Path,
                                                                  command: list[str]) -> None:
    db = tmp_path / "notes.db"
    db.write_text("not a database\n")
    patient = tmp_path / "patient.json"
    patient.write_text('{"resourceType": "Bundle", "type": "collection", "entry": []}')
    args = [str(patient) if a == "PATIENT" else a for a in command]
    proc = _run([*args, "--db", str(db)])
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert f"{db} is not a SQLite database" in line


def test_more_jobs_than_cores_runs_twice_the_cores_and_says_so() -> None:
    # each worker forks a process: 99,999 of them would exhaust the machine
    proc = _run(["convert", str(SEED), "-q", "--jobs", "99999"], timeout=120)
    assert proc.returncode == 0
    cores = os.cpu_count() or 1
    assert f"note: --jobs 99999 is more than this machine's {cores} cores can use; running " \
           f"{2 * cores}" in proc.stderr
    assert json.loads(proc.stdout)["resourceType"] == "Bundle"


@pytest.mark.parametrize("args", [
    ["push", str(SEED), "--server", "http://127.0.0.1:1/fhir", "--timeout", "-1"],
    ["push", str(SEED), "--server", "http://127.0.0.1:1/fhir", "--timeout", "nan"],
    ["push", str(SEED), "--server", "http://127.0.0.1:1/fhir", "--deadline", "nan"],
    ["serve", "--port", "1", "--header-timeout", "nan"],
])
def test_a_number_of_seconds_that_is_none_is_a_usage_error(args: list[str]) -> None:
    # -1 was a traceback from the HTTP client; nan passed click's range check and reached
    # the client or the server's sockets as a timeout
    proc = _run(args, timeout=60)
    assert proc.returncode == 2
    assert "Invalid value for '--" in proc.stderr
