"""Push against a real third-party FHIR engine (Medplum 4.5.2, strict validation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from fhirtrial.cli import main
from fhirtrial.push import push
from fhirtrial.push.units import iter_references
from push_helpers import resources_of, server_counts, server_versions, study_bundle

pytestmark = pytest.mark.node
NCTS = ("NCT10000001", "NCT10000002", "NCT10000003")


def _write(tmp_path: Path, bundles: dict[str, dict]) -> Path:
    folder = tmp_path / "bundles"
    folder.mkdir(exist_ok=True)
    for name, bundle in bundles.items():
        (folder / f"{name}.json").write_text(json.dumps(bundle), encoding="utf-8")
    return folder


def _bundles(sites: int = 2) -> dict[str, dict]:
    return {nct: study_bundle(nct, sites=sites) for nct in NCTS}


def _expected_counts(bundles: dict[str, dict]) -> dict[str, int]:
    """Distinct resources per type across the bundles (the sponsor is shared by fullUrl)."""
    seen: dict[str, set[str]] = {}
    for b in bundles.values():
        for e in b["entry"]:
            seen.setdefault(e["resource"]["resourceType"], set()).add(e["fullUrl"])
    return {t: len(urls) for t, urls in seen.items()}


@pytest.mark.parametrize("strategy", ["transaction", "batch", "single"])
def test_push_creates_each_study_once_then_rerun_changes_nothing(
        fresh_medplum: str, tmp_path: Path, strategy: str) -> None:
    bundles = _bundles()
    folder = _write(tmp_path, bundles)
    first = push([str(folder)], fresh_medplum, strategy=strategy, fhir_version="R4")
    assert [(r.name, r.status) for r in first.results] == [(n, "created") for n in NCTS]
    counts = server_counts(fresh_medplum)
    assert counts == _expected_counts(bundles)
    versions = {t: server_versions(fresh_medplum, t) for t in counts}

    second = push([str(folder)], fresh_medplum, strategy=strategy, fhir_version="R4")
    assert [(r.name, r.status) for r in second.results] == [(n, "unchanged") for n in NCTS]
    assert [r.resources["unchanged"] for r in second.results] == [
        resources_of(bundles[n]) for n in NCTS]
    assert server_counts(fresh_medplum) == counts
    # not one new version: the push compared before writing
    assert {t: server_versions(fresh_medplum, t) for t in counts} == versions


def test_pushed_references_resolve_on_the_server(fresh_medplum: str, tmp_path: Path) -> None:
    bundles = _bundles(sites=3)
    push([str(_write(tmp_path, bundles))], fresh_medplum, fhir_version="R4")
    for nct in NCTS:
        r = requests.get(f"{fresh_medplum}/ResearchStudy",
                         params={"identifier": f"http://clinicaltrials.gov|{nct}"}, timeout=10)
        [study] = [e["resource"] for e in r.json()["entry"]]
        refs = [ref["reference"] for ref in iter_references(study)]
        # sponsor, enrollment, protocol and three sites, all rewritten to server ids
        assert len(refs) == 6
        for ref in refs:
            assert not ref.startswith("urn:"), ref
            assert requests.get(f"{fresh_medplum}/{ref}", timeout=10).status_code == 200


def test_changed_study_updates_only_the_changed_resource(fresh_medplum: str,
                                                         tmp_path: Path) -> None:
    bundles = _bundles()
    folder = _write(tmp_path, bundles)
    push([str(folder)], fresh_medplum, fhir_version="R4")
    before = server_versions(fresh_medplum, "Location")
    changed = study_bundle(NCTS[1], title="A new title")
    (folder / f"{NCTS[1]}.json").write_text(json.dumps(changed), encoding="utf-8")
    report = push([str(folder)], fresh_medplum, fhir_version="R4")
    assert [r.status for r in report.results] == ["unchanged", "updated", "unchanged"]
    assert report.results[1].resources == {"created": 0, "updated": 1,
                                           "unchanged": resources_of(changed) - 1}
    assert server_versions(fresh_medplum, "Location") == before
    titles = [e["resource"]["title"] for e in requests.get(
        f"{fresh_medplum}/ResearchStudy", timeout=10).json()["entry"]]
    assert sorted(titles) == sorted([f"Study {NCTS[0]}", "A new title", f"Study {NCTS[2]}"])


def test_study_larger_than_the_servers_transaction_limit_is_split(fresh_medplum: str,
                                                                  tmp_path: Path) -> None:
    # Medplum refuses conditional-update transactions of more than 8 entries
    big = study_bundle("NCT10000010", sites=10)
    assert resources_of(big) == 14
    report = push([str(_write(tmp_path, {"big": big}))], fresh_medplum, fhir_version="R4")
    assert report.results[0].status == "created", report.text()
    assert server_counts(fresh_medplum)["Location"] == 10
    assert any("at most 7 per transaction" in n for n in report.notes), report.notes
    again = push([str(tmp_path / "bundles")], fresh_medplum, fhir_version="R4")
    assert again.results[0].status == "unchanged"


def test_invalid_study_fails_with_the_servers_outcome_and_others_go_through(
        fresh_medplum: str, tmp_path: Path) -> None:
    bundles = _bundles()
    bundles[NCTS[0]] = study_bundle(NCTS[0], status="bogus")
    result = CliRunner().invoke(main, ["push", str(_write(tmp_path, bundles)), "--server",
                                       fresh_medplum, "--no-journal", "--strategy", "single"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any(line.split()[:2] == [NCTS[0], "failed"] for line in lines), result.output
    assert 'Value "bogus" is not in the required value set' in result.output
    assert "ResearchStudy.status" in result.output
    assert [line.split()[:2] for line in lines if line.strip().startswith(NCTS[1:])] == [
        [NCTS[1], "created"], [NCTS[2], "created"]]
    assert server_counts(fresh_medplum)["ResearchStudy"] == 2


def test_dry_run_reports_what_would_happen_and_writes_nothing(fresh_medplum: str,
                                                              tmp_path: Path) -> None:
    report = push([str(_write(tmp_path, _bundles()))], fresh_medplum, dry_run=True)
    assert [r.status for r in report.results] == ["would-create"] * 3
    assert server_counts(fresh_medplum) == dict.fromkeys(server_counts(fresh_medplum), 0)


def test_auto_reads_metadata_for_version_and_strategy(medplum: str, tmp_path: Path) -> None:
    report = push([str(_write(tmp_path, {"x": study_bundle("NCT10000020")}))], medplum)
    assert (report.fhir_version, report.strategy) == ("R4", "transaction")


def test_registry_records_converted_to_r4_land_on_medplum(fresh_medplum: str) -> None:
    """Acceptance on the shared records; needs convert_study(..., fhir_version="R4")."""
    convert = pytest.importorskip("fhirtrial.convert")
    if not hasattr(convert, "convert_study"):
        pytest.skip("fhirtrial.convert.convert_study has not landed on this branch yet")
    from conftest import SHARED_V2, shared_files
    files = [str(p) for p in shared_files(SHARED_V2, "*.json")[:6]]
    if not files:
        pytest.skip("../shared is absent")
    from fhirtrial.errors import FhirtrialError
    from fhirtrial.sources import read_inputs
    [probe] = list(read_inputs(files[:1]))
    try:
        convert.convert_study(probe.study, fhir_version="R4", bundle_type="transaction")
    except FhirtrialError as e:
        pytest.skip(f"the converter does not write R4 yet: {e.message}")
    first = push(files, fresh_medplum, fhir_version="R4")
    assert [r.status for r in first.results] == ["created"] * len(files), first.text()
    counts = server_counts(fresh_medplum)
    assert counts["ResearchStudy"] == len(files)
    for r in first.results:
        found = requests.get(f"{fresh_medplum}/ResearchStudy", timeout=10, params={
            "identifier": f"http://clinicaltrials.gov|{r.name}"}).json()
        [study] = [e["resource"] for e in found["entry"]]
        for ref in iter_references(study):
            assert requests.get(f"{fresh_medplum}/{ref['reference']}",
                                timeout=10).status_code == 200, ref
    second = push(files, fresh_medplum, fhir_version="R4")
    assert [r.status for r in second.results] == ["unchanged"] * len(files), second.text()
    assert server_counts(fresh_medplum) == counts
