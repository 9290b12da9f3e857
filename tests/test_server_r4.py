"""``fhirtrial load`` stores R5 and R4; ``/fhir/R4`` serves the R4 resources of the loaded
studies. Every expectation comes from the raw registry JSON (nctId, overallStatus, phases,
locations) and the R4 spec's codes, never from the converter's output or the server's index."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import SHARED_V2, needs_shared, shared_files
from fhirtrial.cli import main

pytestmark = needs_shared

CTGOV = "http://clinicaltrials.gov"
# R4 ResearchStudy.status (required binding, research-study-status) for the registry statuses
# whose R4 code is unambiguous ("active: study is opened for accrual")
R4_STATUS = {"RECRUITING": "active", "ENROLLING_BY_INVITATION": "active", "AVAILABLE": "active",
             "COMPLETED": "completed", "WITHDRAWN": "withdrawn",
             "SUSPENDED": "temporarily-closed-to-accrual",
             "ACTIVE_NOT_RECRUITING": "closed-to-accrual"}
# R4 phase codes (terminology.hl7.org/CodeSystem/research-study-phase) for a set of phases
R4_PHASE = {("EARLY_PHASE1",): "early-phase-1", ("PHASE1",): "phase-1",
            ("PHASE1", "PHASE2"): "phase-1-phase-2", ("PHASE2",): "phase-2",
            ("PHASE2", "PHASE3"): "phase-2-phase-3", ("PHASE3",): "phase-3",
            ("PHASE4",): "phase-4", ("NA",): "n-a"}
R4_PHASE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-study-phase"


def _r4_status_source(p: dict) -> str | None:
    """The registry status R4's required status is read from: overallStatus, or for UNKNOWN
    (verification overdue) the last status the sponsor reported (mappings/README.md, R4)."""
    sm = p["statusModule"]
    return sm.get("lastKnownStatus") if sm["overallStatus"] == "UNKNOWN" else sm["overallStatus"]


def _raw() -> dict[str, dict]:
    out = {}
    for f in shared_files(SHARED_V2, "*.json"):
        doc = json.loads(f.read_text(encoding="utf-8-sig"))
        for d in doc if isinstance(doc, list) else [doc]:
            out[d["protocolSection"]["identificationModule"]["nctId"]] = d["protocolSection"]
    return out


RAW = _raw()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from fhirtrial.server import create_app

    db = tmp_path_factory.mktemp("r4") / "store.sqlite"
    r = CliRunner().invoke(main, ["load", str(SHARED_V2), "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert f"stored {2 * len(RAW)} bundle(s)" in r.output  # each record as R5 and as R4
    return create_app({"DB": str(db)}).test_client()


def ids(client, query: str) -> list[str]:
    """Every match of an R4 search, following next links."""
    url = f"/fhir/R4/ResearchStudy?{query}&_count=25"
    out: list[str] = []
    while url:
        b = client.get(url).get_json()
        assert b["resourceType"] == "Bundle", b
        out += [e["resource"]["id"] for e in b.get("entry", []) if e["search"]["mode"] == "match"]
        nxt = [link["url"] for link in b["link"] if link["relation"] == "next"]
        url = nxt[0].replace("http://localhost", "") if nxt else None
    return out


def test_every_record_is_found_by_identifier_and_read_under_its_nct_id(client):
    for nct in RAW:
        assert ids(client, f"identifier={CTGOV}|{nct}") == [nct]
        r = client.get(f"/fhir/R4/ResearchStudy/{nct}")
        assert r.status_code == 200
        study = r.get_json()
        assert {"system": CTGOV, "value": nct}.items() <= study["identifier"][0].items()
        assert "progressStatus" not in study  # an R5 element: never served as R4
    assert client.get("/fhir/R4/ResearchStudy").get_json()["total"] == len(RAW)


@pytest.mark.parametrize("status", sorted(set(R4_STATUS.values())))
def test_search_by_r4_status_returns_the_records_with_that_registry_status(client, status):
    want = sorted(n for n, p in RAW.items() if R4_STATUS.get(_r4_status_source(p)) == status)
    assert want, "a case must select something"
    assert sorted(ids(client, f"status={status}")) == want


def test_search_by_phase_returns_the_records_with_that_set_of_phases(client):
    tested = 0
    for phases, code in R4_PHASE.items():
        want = sorted(n for n, p in RAW.items()
                      if tuple(sorted(p.get("designModule", {}).get("phases", []))) == phases)
        if not want:
            continue
        assert sorted(ids(client, f"phase={R4_PHASE_SYSTEM}|{code}")) == want, code
        tested += 1
    assert tested >= 4


def test_include_brings_the_sites_and_the_eligibility_group(client):
    nct = max((n for n, p in RAW.items() if p.get("contactsLocationsModule", {}).get(
        "locations")), key=lambda n: len(RAW[n]["contactsLocationsModule"]["locations"]))
    n_sites = len(RAW[nct]["contactsLocationsModule"]["locations"])
    b = client.get(f"/fhir/R4/ResearchStudy?identifier={CTGOV}|{nct}&_count=1"
                   "&_include=ResearchStudy:site&_include=ResearchStudy:enrollment").get_json()
    included = [e["resource"] for e in b["entry"] if e["search"]["mode"] == "include"]
    assert sum(r["resourceType"] == "Location" for r in included) == n_sites
    groups = [r for r in included if r["resourceType"] == "Group"]
    assert len(groups) == 1
    assert groups[0]["actual"] is False  # R4's way of saying "a definition, not members"


def test_r4_capability_statement_declares_every_type_load_stored(client):
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    cs = client.get("/fhir/R4/metadata").get_json()
    CapabilityStatement.model_validate(cs)
    assert cs["fhirVersion"] == "4.0.1"
    store = client.application.extensions["fhirtrial.store"]
    stored = set(store.counts("R4"))
    declared = {r["type"] for r in cs["rest"][0]["resource"]}
    assert stored <= declared, stored - declared
    rs = next(r for r in cs["rest"][0]["resource"] if r["type"] == "ResearchStudy")
    names = {p["name"] for p in rs["searchParam"]}
    assert {"identifier", "status", "phase", "site", "enrollment"} <= names
    assert "progress-status-state" not in names  # an R5 parameter
    # instance-level $match reads R5 eligibility only; the type-level one (trial matching)
    # ranks R4 studies too
    assert [o["definition"].rsplit("/", 1)[-1] for o in rs["operation"]] == ["trial-match"]


def test_reload_replaces_r4_resources_instead_of_copying_them(tmp_path):
    from fhirtrial.server.store import SQLiteStore

    db = tmp_path / "s.sqlite"
    one = str(shared_files(SHARED_V2, "*.json")[0])
    counts = []
    for _ in range(2):
        assert CliRunner().invoke(main, ["load", one, "--db", str(db)]).exit_code == 0
        counts.append(SQLiteStore(db).counts("R4"))
    assert counts[0] == counts[1]
    assert counts[0]["ResearchStudy"] == 1
    assert counts[0]["Device"] == 1  # the converter's Device, shared, stored once
