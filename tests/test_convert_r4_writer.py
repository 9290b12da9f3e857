"""The R5 → R4 writer on the official HL7 R5 examples and on R5 resources built here."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class as r4b

from conftest import ROOT, SHARED
from fhirtrial.convert.ids import full_url
from fhirtrial.convert.r4 import XVER_PREFIX, decode, r4_status, status_table, to_r4
from fhirtrial.convert.r4.status import FALLBACK, r4_column
from fhirtrial.errors import MappingError
from fhirtrial.tables import load_table_file

R5_EXAMPLES = SHARED / "fhir-examples" / "r5"
R4_STATUS_CODES = {
    "active", "administratively-completed", "approved", "closed-to-accrual",
    "closed-to-accrual-and-intervention", "completed", "disapproved", "in-review",
    "temporarily-closed-to-accrual", "temporarily-closed-to-accrual-and-intervention",
    "withdrawn"}


def _example(name: str) -> dict[str, Any]:
    if not R5_EXAMPLES.is_dir():
        pytest.skip("../shared/fhir-examples is not beside the repo")
    return json.loads((R5_EXAMPLES / name).read_text("utf-8"))


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": full_url(r["resourceType"], r["id"]), "resource": r,
         "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in resources]}


def _assert_r4b_valid(bundle: dict[str, Any]) -> None:
    r4b("Bundle").model_validate(bundle)
    for e in bundle["entry"]:
        res = e["resource"]
        r4b(res["resourceType"]).model_validate(res)


def _study(**extra: Any) -> dict[str, Any]:
    base = {"resourceType": "ResearchStudy", "id": "NCT00000001", "status": "active",
            "identifier": [{"use": "official", "system": "http://clinicaltrials.gov",
                            "value": "NCT00000001"}],
            "title": "A study"}
    return {**base, **extra}


def test_official_r5_ctgov_example_becomes_r4b_valid_and_keeps_every_r5_only_element() -> None:
    rs = _example("ResearchStudy-example-ctgov-study-record.json")
    out, _ = to_r4(_bundle(rs), overall_status="RECRUITING")
    _assert_r4b_valid(out)
    r4 = out["entry"][0]["resource"]
    exts = r4["extension"]
    # elements R4 lacks come back, value for value, from their cross-version extensions
    for key in ("url", "name", "label", "classifier", "associatedParty", "progressStatus",
                "outcomeMeasure"):
        if key == "outcomeMeasure":
            carried = [decode("ResearchStudy", key, o["extension"])[0]
                       for o in r4["objective"] if "extension" in o]
        else:
            carried = decode("ResearchStudy", key, exts)
        assert carried == rs[key], key
    assert r4["status"] == "active"
    assert decode("ResearchStudy", "status", exts) == "active"  # R5 publication status
    assert decode("ResearchStudy", "recruitment", exts) == {"targetNumber": 62}
    assert r4["enrollment"] == [rs["recruitment"]["eligibility"]]
    assert [a["name"] for a in r4["arm"]] == ["AP303", "Placebo"]
    assert r4["description"] == rs["description"]


def test_eligibility_evidence_variable_becomes_enrollment_group_with_exclusions() -> None:
    ev = _example("EvidenceVariable-example-eligibility-criteria-adults-with-obesity.json")
    ev["characteristic"].append({"description": "Pregnant", "exclude": True})
    rs = _study(recruitment={"targetNumber": 40, "eligibility": {
        "reference": full_url("EvidenceVariable", ev["id"]), "type": "EvidenceVariable"}})
    out, _ = to_r4(_bundle(rs, ev), overall_status="COMPLETED")
    _assert_r4b_valid(out)
    study, group = (e["resource"] for e in out["entry"])
    assert group["resourceType"] == "Group"
    assert (group["type"], group["actual"]) == ("person", False)
    assert [c["exclude"] for c in group["characteristic"]] == [
        bool(c.get("exclude")) for c in ev["characteristic"]]
    # a criterion with a typed value keeps it natively; a text criterion says "applies"
    assert group["characteristic"][0]["valueQuantity"]["value"] == 18
    assert group["characteristic"][-1]["code"] == {"text": "Pregnant"}
    assert group["characteristic"][-1]["valueBoolean"] is True
    # the reference now points at the Group's own fullUrl, and the entry creates a Group
    assert study["enrollment"][0] == {"reference": out["entry"][1]["fullUrl"], "type": "Group"}
    assert out["entry"][1]["fullUrl"] == full_url("Group", ev["id"])
    assert out["entry"][1]["request"] == {"method": "POST", "url": "Group"}
    for c_r4, c_r5 in zip(group["characteristic"], ev["characteristic"], strict=True):
        assert decode("EvidenceVariable", "characteristic", c_r4["extension"]) == [c_r5]
    assert decode("EvidenceVariable", "relatedArtifact", group["extension"]) == ev[
        "relatedArtifact"]


def test_other_evidence_variables_become_basic_and_references_follow() -> None:
    outcome = {"resourceType": "EvidenceVariable", "id": "NCT00000001-outcome-1",
               "status": "active", "title": "Overall survival", "description": "at 2 years"}
    ref = {"reference": full_url("EvidenceVariable", outcome["id"]), "type": "EvidenceVariable"}
    rs = _study(outcomeMeasure=[{"name": "Overall survival", "reference": ref, "type": [
        {"coding": [{"system": "http://hl7.org/fhir/research-study-objective-type",
                     "code": "primary"}]}]}])
    out, _ = to_r4(_bundle(rs, outcome), overall_status="RECRUITING")
    _assert_r4b_valid(out)
    study, basic = (e["resource"] for e in out["entry"])
    assert basic["resourceType"] == "Basic"
    assert basic["code"]["coding"][0]["code"] == "EvidenceVariable"
    assert decode("EvidenceVariable", "description", basic["extension"]) == "at 2 years"
    objective = study["objective"][0]
    assert objective["name"] == "Overall survival"
    assert objective["type"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/research-study-objective-type",
        "code": "primary"}
    (measure,) = decode("ResearchStudy", "outcomeMeasure", objective["extension"])
    assert measure["reference"] == {"reference": full_url("Basic", outcome["id"]),
                                    "type": "Basic"}
    assert "EvidenceVariable" not in json.dumps([e["resource"]["resourceType"]
                                                 for e in out["entry"]])


def test_r5_code_systems_move_to_terminology_hl7_org() -> None:
    rs = _study(
        phase={"coding": [{"system": "http://hl7.org/fhir/research-study-phase",
                           "code": "phase-1-phase-2"}]},
        comparisonGroup=[{"name": "A", "linkId": "a", "type": {"coding": [
            {"system": "http://hl7.org/fhir/research-study-arm-type", "code": "experimental"}]}}])
    out, _ = to_r4(_bundle(rs), overall_status="RECRUITING")
    r4 = out["entry"][0]["resource"]
    assert r4["phase"]["coding"][0]["system"] == (
        "http://terminology.hl7.org/CodeSystem/research-study-phase")
    assert r4["arm"][0]["type"]["coding"][0]["system"] == (
        "http://terminology.hl7.org/CodeSystem/research-study-arm-type")
    assert decode("ResearchStudy", "comparisonGroup.linkId", r4["arm"][0]["extension"]) == "a"


def test_sponsor_and_investigator_come_from_associated_parties() -> None:
    org = {"resourceType": "Organization", "id": "org-1", "name": "Acme Pharma"}
    doc = {"resourceType": "Practitioner", "id": "pr-1", "name": [{"text": "Dr Who"}]}
    rs = _study(associatedParty=[
        {"role": {"coding": [{"system": "http://hl7.org/fhir/research-study-party-role",
                              "code": "collaborator"}]},
         "party": {"reference": full_url("Organization", "org-0"), "type": "Organization"}},
        {"role": {"coding": [{"code": "lead-sponsor"}]},
         "party": {"reference": full_url("Organization", "org-1"), "type": "Organization"}},
        {"role": {"coding": [{"code": "primary-investigator"}]},
         "party": {"reference": full_url("Practitioner", "pr-1")}}])
    out, _ = to_r4(_bundle(rs, org, doc), overall_status="RECRUITING")
    _assert_r4b_valid(out)
    r4 = out["entry"][0]["resource"]
    assert r4["sponsor"]["reference"] == full_url("Organization", "org-1")
    assert r4["principalInvestigator"]["reference"] == full_url("Practitioner", "pr-1")


def test_site_references_to_non_locations_travel_as_extensions() -> None:
    loc = {"resourceType": "Location", "id": "loc-1", "name": "Site"}
    rs = _study(site=[{"reference": full_url("Location", "loc-1")},
                      {"reference": full_url("Organization", "org-9"), "type": "Organization"}])
    out, _ = to_r4(_bundle(rs, loc), overall_status="RECRUITING")
    r4 = out["entry"][0]["resource"]
    assert r4["site"] == [{"reference": full_url("Location", "loc-1")}]
    assert decode("ResearchStudy", "site", r4["extension"]) == [rs["site"][1]]


@pytest.mark.parametrize(("overall", "last_known", "expected", "warns"), [
    ("RECRUITING", None, "active", False),
    ("COMPLETED", None, "completed", False),
    ("TERMINATED", None, "administratively-completed", False),
    ("SUSPENDED", None, "temporarily-closed-to-accrual", False),
    ("NO_LONGER_AVAILABLE", None, "closed-to-accrual", False),
    ("UNKNOWN", "ACTIVE_NOT_RECRUITING", "closed-to-accrual", True),
    ("UNKNOWN", None, "in-review", True),
    ("WITHHELD", None, "in-review", True),
    (None, None, "in-review", True),
], ids=["recruiting", "completed", "terminated", "suspended", "no-longer-available",
        "unknown-uses-last-known", "unknown-without-last-known", "withheld", "absent"])
def test_r4_status_from_the_table(overall: str | None, last_known: str | None, expected: str,
                                  warns: bool) -> None:
    code, findings = r4_status(overall, last_known)
    assert code == expected
    assert bool(findings) is warns
    assert all(f.severity == "warning" for f in findings)


def test_status_with_no_r4_code_falls_back_to_in_review_and_says_so() -> None:
    # in-review claims nothing about recruitment: no search for open studies finds a guess
    assert FALLBACK == "in-review"
    code, [finding] = r4_status("WITHHELD")
    assert code == "in-review"
    assert "WITHHELD" in finding.message
    assert finding.location == "ResearchStudy.status"


def test_unknown_status_is_a_warning_that_names_the_last_known_status() -> None:
    out, findings = to_r4(_bundle(_study()), overall_status="UNKNOWN",
                          last_known_status="RECRUITING")
    assert out["entry"][0]["resource"]["status"] == "active"
    assert [(f.severity, f.location) for f in findings] == [("warning", "ResearchStudy.status")]
    assert "UNKNOWN" in findings[0].message
    assert "RECRUITING" in findings[0].message


def test_status_table_covers_every_registry_status_with_an_r4_code_or_a_rule() -> None:
    enums_file = SHARED / "spec" / "enums-2.0.5.json"
    if not enums_file.is_file():
        pytest.skip("../shared/spec is not beside the repo")
    enums = json.loads(enums_file.read_text("utf-8"))
    table = status_table()
    assert set(enums["Status"]) == set(table)
    assert {t.code for t in table.values() if t.code} <= R4_STATUS_CODES
    # only the two statuses the rule in convert/r4/status.py handles lack a code
    assert {v for v, t in table.items() if t.code is None} == {"UNKNOWN", "WITHHELD"}
    for value in enums["Status"]:
        assert r4_status(value, "RECRUITING")[0] in R4_STATUS_CODES


def test_status_table_with_a_code_outside_r4_is_rejected_at_load(tmp_path: Path) -> None:
    doc = json.loads((ROOT / "mappings" / "overall-status.json").read_text("utf-8"))
    # an R5 code: valid in the R5 code system, not in R4's required value set
    doc["map"]["RECRUITING"]["r4_status"]["code"] = "recruiting"
    path = tmp_path / "overall-status.json"
    path.write_text(json.dumps(doc), "utf-8")
    with pytest.raises(MappingError, match="'recruiting' is not an R4"):
        r4_column(load_table_file(path))


def test_false_boolean_characteristic_is_written_as_true_and_excluded() -> None:
    ev = {"resourceType": "EvidenceVariable", "id": "ev-hv", "status": "active",
          "characteristic": [
              {"description": "Accepts healthy volunteers: No", "definitionByTypeAndValue": {
                  "type": {"text": "Accepts healthy volunteers"}, "valueBoolean": False}},
              {"description": "Not smoking", "exclude": True, "definitionByTypeAndValue": {
                  "type": {"text": "Smoker"}, "valueBoolean": False}}]}
    rs = _study(recruitment={"eligibility": {"reference": full_url("EvidenceVariable", "ev-hv")}})
    out, _ = to_r4(_bundle(rs, ev), overall_status="RECRUITING")
    group = out["entry"][1]["resource"]
    # Group semantics: (code, false, included) ≡ (code, true, excluded), and back
    assert [(c["valueBoolean"], c["exclude"]) for c in group["characteristic"]] == [
        (True, True), (True, False)]
    assert [decode("EvidenceVariable", "characteristic", c["extension"])[0]
            for c in group["characteristic"]] == ev["characteristic"]


def test_transaction_entries_are_creates_of_the_r4_type() -> None:
    ev = _example("EvidenceVariable-example-eligibility-criteria-adults-with-obesity.json")
    rs = _study(recruitment={"eligibility": {"reference": full_url("EvidenceVariable", ev["id"])}})
    out, _ = to_r4(_bundle(rs, ev), overall_status="RECRUITING")
    assert [e["request"] for e in out["entry"]] == [
        {"method": "POST", "url": "ResearchStudy"}, {"method": "POST", "url": "Group"}]


def test_provenance_without_recorded_takes_the_latest_record_date() -> None:
    from fhirtrial.model import DateInfo, SourceInfo, Study

    study = Study("NCT00000001", SourceInfo("ctgov-v2-json"), first_posted=DateInfo("2019-03-02"),
                  status_verified="2021-07", overall_status="COMPLETED")
    prov = {"resourceType": "Provenance", "id": "p", "target": [
        {"reference": full_url("ResearchStudy", "NCT00000001")}],
        "agent": [{"who": {"reference": full_url("Device", "d")}}]}
    dev = {"resourceType": "Device", "id": "d"}
    out, findings = to_r4(_bundle(_study(), dev, prov), study=study)
    assert out["entry"][2]["resource"]["recorded"] == "2021-07-01T00:00:00Z"
    assert any("status verified" in f.message for f in findings)
    _assert_r4b_valid(out)


def test_provenance_is_left_out_when_the_record_states_no_date() -> None:
    from fhirtrial.model import SourceInfo, Study

    study = Study("NCT00000001", SourceInfo("ctgov-v2-json"), overall_status="COMPLETED")
    prov = {"resourceType": "Provenance", "id": "p", "target": [
        {"reference": full_url("ResearchStudy", "NCT00000001")}],
        "agent": [{"who": {"reference": full_url("Device", "d")}}]}
    dev = {"resourceType": "Device", "id": "d"}
    out, findings = to_r4(_bundle(_study(), dev, prov), study=study)
    # the Device only the Provenance named goes with it; no invented time is written
    assert [e["resource"]["resourceType"] for e in out["entry"]] == ["ResearchStudy"]
    assert [f.location for f in findings] == ["Provenance.recorded"]
    assert "no registry date" in findings[0].message


def test_canonical_urls_that_are_transaction_placeholders_become_identifier_uris() -> None:
    # servers replace urn:uuid placeholders in every string of a transaction, canonicals too
    ad_url = full_url("ActivityDefinition", "ad-1")
    ad = {"resourceType": "ActivityDefinition", "id": "ad-1", "url": ad_url, "status": "active"}
    pd = {"resourceType": "PlanDefinition", "id": "pd-1", "status": "active",
          "action": [{"title": "dose", "definitionCanonical": ad_url}]}
    out, _ = to_r4(_bundle(_study(), pd, ad), overall_status="RECRUITING")
    pd4, ad4 = (e["resource"] for e in out["entry"][1:])
    assert ad4["url"] == "urn:fhirtrial:ActivityDefinition/ad-1"
    assert pd4["action"][0]["definitionCanonical"] == ad4["url"]
    assert out["entry"][2]["fullUrl"] == ad_url  # the entry keeps its placeholder name


def test_same_input_gives_same_bytes() -> None:
    rs = _example("ResearchStudy-example-ctgov-study-record.json")
    ev = _example("EvidenceVariable-example-eligibility-criteria-diabetes-surgery.json")
    rs = {**rs, "recruitment": {"eligibility": {
        "reference": full_url("EvidenceVariable", ev["id"])}}}
    a = json.dumps(to_r4(_bundle(rs, ev), overall_status="RECRUITING")[0], sort_keys=False)
    b = json.dumps(to_r4(_bundle(copy.deepcopy(rs), copy.deepcopy(ev)),
                         overall_status="RECRUITING")[0], sort_keys=False)
    assert a == b
    assert XVER_PREFIX in a


def test_related_artifact_with_an_r5_only_type_travels_as_extension() -> None:
    # R5 widened RelatedArtifact.type (required binding); "transforms" is no R4 code
    kept = {"type": "citation", "citation": "A paper"}
    r5_only = {"type": "transforms", "document": {"url": "https://example.org/x"}}
    out, _ = to_r4(_bundle(_study(relatedArtifact=[kept, r5_only])), overall_status="COMPLETED")
    r4 = out["entry"][0]["resource"]
    assert "relatedArtifact" not in r4
    assert decode("ResearchStudy", "relatedArtifact", r4["extension"]) == [kept, r5_only]
