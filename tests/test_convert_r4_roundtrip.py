"""Reading an R4 Bundle back (fhirtrial.sources.fhir_r4) on the official R5 ClinicalTrials.gov
example written as R4: the facts come back from R4 elements and cross-version extensions."""

from __future__ import annotations

import json

import pytest

from conftest import SHARED
from fhirtrial.convert.ids import full_url
from fhirtrial.convert.r4 import ctgov_status, to_r4
from fhirtrial.errors import SourceError
from fhirtrial.sources.fhir_r4 import read_r4_bundle

EXAMPLE = SHARED / "fhir-examples" / "r5" / "ResearchStudy-example-ctgov-study-record.json"


@pytest.fixture
def r5_study() -> dict:
    if not EXAMPLE.is_file():
        pytest.skip("../shared/fhir-examples is not beside the repo")
    return json.loads(EXAMPLE.read_text("utf-8"))


def test_official_example_facts_survive_r4(r5_study: dict) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": full_url("ResearchStudy", r5_study["id"]), "resource": r5_study}]}
    r4, _ = to_r4(bundle, overall_status="TERMINATED")
    back = read_r4_bundle(r4)
    official = next(i["value"] for i in r5_study["identifier"] if i.get("use") == "official")
    assert back.nct_id == official
    assert back.brief_title == r5_study["title"]
    assert back.official_title == r5_study["label"][0]["value"]
    assert back.phases == ["PHASE1"]
    assert back.conditions == [c["text"] for c in r5_study["condition"]]
    assert [a.label for a in back.arms] == [g["name"] for g in r5_study["comparisonGroup"]]
    assert [(o.kind, o.measure) for o in back.outcomes] == [
        (m["type"][0]["coding"][0]["code"], m["name"]) for m in r5_study["outcomeMeasure"]]
    assert (back.enrollment, back.enrollment_actual) == (
        r5_study["recruitment"]["targetNumber"], False)
    # the example keeps no registry coding; administratively-completed comes from TERMINATED alone
    assert back.overall_status == "TERMINATED"
    loc = r5_study["contained"][-1]
    assert [(s.facility, s.city) for s in back.sites] == [(loc["name"], loc["address"]["city"])]


@pytest.mark.parametrize(("code", "expected"), [
    ("completed", None),  # COMPLETED (inexact) and APPROVED_FOR_MARKETING both give it
    ("closed-to-accrual", None),  # ACTIVE_NOT_RECRUITING and NO_LONGER_AVAILABLE
    ("active", None),  # RECRUITING, ENROLLING_BY_INVITATION, AVAILABLE…
    ("withdrawn", None),  # only WITHDRAWN gives it, but inexactly
    ("administratively-completed", "TERMINATED"),
], ids=["completed", "closed-to-accrual", "active", "withdrawn", "administratively-completed"])
def test_status_inverse_only_where_one_registry_status_gives_the_code(
        code: str, expected: str | None) -> None:
    assert ctgov_status(code) == expected


def test_bundle_without_research_study_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="no ResearchStudy"):
        read_r4_bundle({"resourceType": "Bundle", "type": "collection", "entry": []})
