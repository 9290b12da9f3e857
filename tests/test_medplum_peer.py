"""The Medplum engine peer really is a strict FHIR R4 server: CRUD, search, transactions with
conditional PUT and reference rewriting, rollback, validation with OperationOutcome."""

from __future__ import annotations

import copy
import json

import pytest
import requests

from conftest import SHARED, needs_shared
from peers import search

R4_EXAMPLES = SHARED / "fhir-examples" / "r4"
JSON_HEADERS = {"Content-Type": "application/fhir+json"}

pytestmark = pytest.mark.node


def _example(name: str) -> dict:
    return json.loads((R4_EXAMPLES / name).read_text(encoding="utf-8"))


def _post(base: str, path: str, body: dict) -> requests.Response:
    return requests.post(f"{base}/{path}", json=body, headers=JSON_HEADERS, timeout=10)


@needs_shared
@pytest.mark.parametrize("name", ["ResearchStudy-example.json", "EvidenceVariable-example.json",
                                  "Group-101.json"], ids=lambda n: n.split(".")[0])
def test_official_r4_example_is_created_and_read_back(medplum: str, name: str) -> None:
    example = _example(name)
    example.pop("id")
    r = _post(medplum, example["resourceType"], example)
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["ETag"] == f'W/"{created["meta"]["versionId"]}"'
    read = requests.get(f"{medplum}/{example['resourceType']}/{created['id']}", timeout=10)
    assert read.status_code == 200
    body = read.json()
    body.pop("id")
    body.pop("meta")
    assert body == example


def test_search_by_identifier_finds_exactly_that_study(medplum: str) -> None:
    for nct in ("NCT90000001", "NCT90000002"):
        study = {"resourceType": "ResearchStudy", "status": "active",
                 "identifier": [{"system": "http://clinicaltrials.gov", "value": nct}]}
        assert _post(medplum, "ResearchStudy", study).status_code == 201
    found = search(medplum, "ResearchStudy", identifier="http://clinicaltrials.gov|NCT90000002")
    assert [s["identifier"][0]["value"] for s in found] == ["NCT90000002"]
    # the system is part of the match: same value, other system finds nothing
    assert search(medplum, "ResearchStudy", identifier="urn:other|NCT90000002") == []


def _study_transaction(nct: str, status: str, sponsor_name: str) -> dict:
    org_url = "urn:uuid:6a1b1d0e-0000-4000-8000-000000000001"
    org_key = f"urn:fhirtrial:Organization/{nct}-sponsor"
    return {
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:6a1b1d0e-0000-4000-8000-000000000002",
             "resource": {"resourceType": "ResearchStudy", "status": status,
                          "identifier": [{"system": "http://clinicaltrials.gov", "value": nct}],
                          "sponsor": {"reference": org_url}},
             "request": {"method": "PUT",
                         "url": f"ResearchStudy?identifier=http://clinicaltrials.gov|{nct}"}},
            {"fullUrl": org_url,
             "resource": {"resourceType": "Organization", "name": sponsor_name,
                          "identifier": [{"system": "urn:ietf:rfc:3986", "value": org_key}]},
             "request": {"method": "PUT",
                         "url": f"Organization?identifier=urn:ietf:rfc:3986|{org_key}"}},
        ],
    }


def test_transaction_conditional_put_creates_then_updates_in_place(fresh_medplum: str) -> None:
    base = fresh_medplum
    first = _post(base, "", _study_transaction("NCT90000010", "active", "Acme"))
    assert first.status_code == 200, first.text
    assert first.json()["type"] == "transaction-response"
    assert [e["response"]["status"] for e in first.json()["entry"]] == ["201", "201"]
    [study] = search(base, "ResearchStudy", identifier="http://clinicaltrials.gov|NCT90000010")
    [org] = search(base, "Organization")
    # the urn:uuid reference was rewritten to the id the server gave the Organization
    assert study["sponsor"] == {"reference": f"Organization/{org['id']}"}

    second = _post(base, "", _study_transaction("NCT90000010", "completed", "Acme Inc"))
    assert [e["response"]["status"] for e in second.json()["entry"]] == ["200", "200"]
    [study2] = search(base, "ResearchStudy")
    [org2] = search(base, "Organization")
    assert (study2["id"], org2["id"]) == (study["id"], org["id"])
    assert (study2["status"], org2["name"]) == ("completed", "Acme Inc")
    history = requests.get(f"{base}/ResearchStudy/{study['id']}/_history", timeout=10).json()
    assert len(history["entry"]) == 2


def test_invalid_resource_is_rejected_with_400_and_operation_outcome(medplum: str) -> None:
    r = _post(medplum, "ResearchStudy", {"resourceType": "ResearchStudy", "status": "bogus",
                                         "identifier": [{"value": "NCT90000020"}]})
    assert r.status_code == 400
    assert r.json() == {"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": "code-invalid",
        "details": {"text": 'Value "bogus" is not in the required value set of '
                            "ResearchStudy.status"},
        "expression": ["ResearchStudy.status"]}]}
    assert search(medplum, "ResearchStudy", identifier="NCT90000020") == []


def test_unknown_element_and_missing_required_element_are_rejected(medplum: str) -> None:
    r = _post(medplum, "ResearchStudy", {"resourceType": "ResearchStudy", "status": "active",
                                         "nctNumber": "NCT1"})
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["ResearchStudy.nctNumber"]
    r = _post(medplum, "ResearchStudy", {"resourceType": "ResearchStudy"})
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["ResearchStudy.status"]


def test_failed_transaction_rolls_back_its_earlier_entries(fresh_medplum: str) -> None:
    base = fresh_medplum
    bad = _study_transaction("NCT90000030", "not-a-status", "Rollback Org")
    # the Organization entry is processed before the failing ResearchStudy (same bucket, order)
    bad["entry"].reverse()
    r = _post(base, "", bad)
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"
    assert search(base, "Organization") == []
    assert search(base, "ResearchStudy") == []


def test_batch_reports_each_entry_and_keeps_the_good_ones(fresh_medplum: str) -> None:
    base = fresh_medplum
    bundle = _study_transaction("NCT90000040", "bogus", "Batch Org")
    bundle["type"] = "batch"
    # a batch must not depend on other entries: point the sponsor at nothing in the bundle
    del bundle["entry"][0]["resource"]["sponsor"]
    r = _post(base, "", bundle)
    assert r.status_code == 200
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses == ["400", "201"]
    assert [o["name"] for o in search(base, "Organization")] == ["Batch Org"]


def test_metadata_is_an_r4_capability_statement_with_transactions(medplum: str) -> None:
    cs = requests.get(f"{medplum}/metadata", timeout=10).json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    codes = {i["code"] for i in cs["rest"][0]["interaction"]}
    assert {"transaction", "batch"} <= codes
    types = {r["type"] for r in cs["rest"][0]["resource"]}
    assert {"ResearchStudy", "Organization", "Location", "PlanDefinition", "Group"} <= types


def test_unchanged_update_still_makes_a_new_version(fresh_medplum: str) -> None:
    """A Medplum MemoryRepository quirk push must work around: no no-op detection."""
    base = fresh_medplum
    created = _post(base, "Organization", {"resourceType": "Organization", "name": "Same"}).json()
    body = copy.deepcopy(created)
    body.pop("meta")
    r = requests.put(f"{base}/Organization/{created['id']}", json=body, headers=JSON_HEADERS,
                     timeout=10)
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] != created["meta"]["versionId"]
