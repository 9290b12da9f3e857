"""A push killed with SIGKILL resumes from its journal without re-sending confirmed studies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fault_proxy import Fault, FaultProxy
from fhirtrial.push import push
from push_helpers import server_counts, study_bundle

pytestmark = pytest.mark.node
ROOT = Path(__file__).resolve().parents[1]
NCTS = [f"NCT3000{n:04d}" for n in range(8)]


def _journalled(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["study"] for line in path.read_text().splitlines()
            if line.endswith("}")]


def test_killed_push_resumes_from_its_journal(fresh_medplum: str, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for nct in NCTS:
        (folder / f"{nct}.json").write_text(json.dumps(study_bundle(nct, sites=1)))
    journal = tmp_path / "push.jsonl"
    proxy = FaultProxy(fresh_medplum)
    base = proxy.start()
    # slow every write down so the kill lands mid-run
    proxy.faults.append(Fault("delay", seconds=0.3, times=1000, writes_only=True))
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        proc = subprocess.Popen(
            [sys.executable, "-c", "from fhirtrial.cli import main; main()", "push",
             str(folder), "--server", base, "--fhir-version", "R4", "--journal", str(journal)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(_journalled(journal)) < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, "push finished before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        confirmed = _journalled(journal)
        assert 3 <= len(confirmed) < len(NCTS)
        assert confirmed == NCTS[:len(confirmed)]

        proxy.faults.clear()
        proxy.log.clear()
        report = push([str(folder)], base, fhir_version="R4", journal=journal)
    finally:
        proxy.stop()
    by_name = {r.name: r.status for r in report.results}
    assert {n for n, s in by_name.items() if s == "skipped"} == set(confirmed)
    # the study in flight at the kill may have committed: it is found unchanged, not doubled
    assert set(by_name.values()) <= {"skipped", "created", "unchanged"}
    # confirmed studies were neither looked up nor written again
    sent = " ".join(u for e in proxy.log for u in e.urls)
    assert not any(nct in sent for nct in confirmed)
    assert server_counts(fresh_medplum)["ResearchStudy"] == len(NCTS)
    assert server_counts(fresh_medplum)["Location"] == len(NCTS)
    assert sorted(_journalled(journal)) == sorted(NCTS)


def test_journal_ignores_a_torn_last_line_and_other_servers(tmp_path: Path) -> None:
    from fhirtrial.push.journal import Journal
    path = tmp_path / "j.jsonl"
    path.write_text(
        '{"server":"http://a","fhirVersion":"R4","study":"NCT1","digest":"d1","status":"created"}\n'
        '{"server":"http://b","fhirVersion":"R4","study":"NCT2","digest":"d2","status":"created"}\n'
        '{"server":"http://a","fhirVersion":"R4","study":"NCT3","dig')
    j = Journal(path, server="http://a/", fhir_version="R4")
    assert j.confirmed("NCT1", "d1")
    assert not j.confirmed("NCT1", "changed-content")
    assert not j.confirmed("NCT2", "d2")
    assert not j.confirmed("NCT3", "d3")
    j.record("NCT4", "d4", "created")
    j.close()
    again = Journal(path, server="http://a", fhir_version="R4")
    assert again.confirmed("NCT4", "d4")
