"""R5 conversion over every shared ClinicalTrials.gov record: valid Bundles, resolvable
references, identical bytes on a second run, narrative everywhere, warnings for absent modules,
and codes from the R5 code systems."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fhir.resources import get_fhir_model_class
from fhir.resources.bundle import Bundle

from conftest import FIXTURES, SHARED_V2, SHARED_V2_PARTIAL, shared_files
from fhirtrial.convert import Conversion, convert_study, dumps
from fhirtrial.errors import FhirtrialError
from fhirtrial.model import SourceInfo, Study
from fhirtrial.sources import read_inputs
from test_mappings import R5_CODES

V2 = shared_files(SHARED_V2, "*.json")
PARTIAL = shared_files(SHARED_V2_PARTIAL, "*.json")
ALL = V2 + PARTIAL
SEED = FIXTURES / "seed" / "NCT06534528.json"
EXPECTED_MODULES = (
    "identificationModule", "statusModule", "sponsorCollaboratorsModule", "descriptionModule",
    "conditionsModule", "designModule", "armsInterventionsModule", "eligibilityModule",
    "contactsLocationsModule", "outcomesModule")
#: (path suffix, key) → the codes of the required value set bound there (R5 5.0.0)
REQUIRED_CODES = {
    ("relatedArtifact", "type"): R5_CODES["http://hl7.org/fhir/related-artifact-type"],
    ("text", "status"): {"generated", "extensions", "additional", "empty"},
    ("entity", "role"): {"revision", "quotation", "source", "instantiates", "removal"},
    ("definitionByCombination", "code"): {"all-of", "any-of", "at-least", "at-most",
                                          "statistical", "net-effect", "dataset"},
    ("telecom", "system"): {"phone", "fax", "email", "pager", "url", "sms", "other"},
    ("telecom", "use"): {"home", "work", "temp", "old", "mobile"},
    ("identifier", "use"): {"usual", "official", "temp", "secondary", "old"},
}
PUBLICATION_STATUS_TYPES = ("ResearchStudy", "PlanDefinition", "EvidenceVariable",
                            "ActivityDefinition")


def _study(path: Path) -> Study:
    [rec] = list(read_inputs([str(path)]))
    assert rec.study is not None, rec.error
    return rec.study


@cache
def converted(path: Path) -> Conversion:
    return convert_study(_study(path))


def walk(node: Any, path: str = ""):
    """Yield (path, dict) for every object in a JSON tree (path without list indexes)."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v, path)


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_bundle_validates_with_fhir_resources_entry_by_entry(path: Path) -> None:
    bundle = converted(path).bundle
    Bundle.model_validate(bundle)
    for entry in bundle["entry"]:
        res = entry["resource"]
        get_fhir_model_class(res["resourceType"]).model_validate(res)


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_reference_resolves_inside_the_bundle(path: Path) -> None:
    bundle = converted(path).bundle
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(full_urls) == len(set(full_urls)), "duplicate fullUrl"
    ids = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]]
    assert len(ids) == len(set(ids)), "duplicate resource id"
    canonicals = {e["resource"]["url"] for e in bundle["entry"] if "url" in e["resource"]}
    by_url = {e["fullUrl"]: e["resource"]["resourceType"] for e in bundle["entry"]}
    n = 0
    for _, obj in walk(bundle):
        if "reference" in obj and isinstance(obj["reference"], str):
            n += 1
            assert obj["reference"] in by_url, f"dangling reference {obj['reference']}"
            if "type" in obj:
                assert by_url[obj["reference"]] == obj["type"]
        if "definitionCanonical" in obj:
            assert obj["definitionCanonical"] in canonicals
    assert n > 0
    # the Provenance names every other resource as its target
    prov = bundle["entry"][-1]["resource"]
    assert prov["resourceType"] == "Provenance"
    assert {t["reference"] for t in prov["target"]} == set(full_urls) - {bundle["entry"][-1][
        "fullUrl"]}


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_two_runs_give_identical_bytes(path: Path) -> None:
    first = dumps(convert_study(_study(path)).bundle)
    second = dumps(convert_study(_study(path)).bundle)
    assert first == second
    assert json.loads(first)["entry"][0]["resource"]["resourceType"] == "ResearchStudy"


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_resource_has_generated_escaped_narrative(path: Path) -> None:
    for entry in converted(path).bundle["entry"]:
        text = entry["resource"]["text"]
        assert text["status"] == "generated"
        assert text["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
        assert text["div"].endswith("</div>")


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_codes_are_from_the_r5_code_systems(path: Path) -> None:
    checked = 0
    for where, obj in walk(converted(path).bundle):
        system, code = obj.get("system"), obj.get("code")
        if system in R5_CODES and isinstance(code, str):
            assert code in R5_CODES[system], f"{where}: {system}|{code}"
            checked += 1
        for (suffix, key), allowed in REQUIRED_CODES.items():
            if where.endswith(suffix) and isinstance(obj.get(key), str):
                assert obj[key] in allowed, f"{where}.{key} = {obj[key]!r}"
                checked += 1
        rtype = obj.get("resourceType")
        if rtype in PUBLICATION_STATUS_TYPES:
            assert obj["status"] in R5_CODES["http://hl7.org/fhir/publication-status"]
        if rtype == "Location":
            assert obj["mode"] in {"instance", "kind"}
        if rtype == "ActivityDefinition" and "kind" in obj:
            assert obj["kind"] in R5_CODES["http://hl7.org/fhir/fhir-types"]
    assert checked > 0


@pytest.mark.parametrize("path", PARTIAL, ids=lambda p: p.name)
def test_partial_record_warns_naming_each_absent_module(path: Path) -> None:
    raw = json.loads(path.read_text("utf-8"))
    raw = raw[0] if isinstance(raw, list) else raw
    absent = [m for m in EXPECTED_MODULES if m not in raw["protocolSection"]]
    messages = [f.message for f in converted(path).findings if f.severity == "warning"]
    for module in absent:
        assert any(module in m for m in messages), f"no warning names {module}"


SEED = FIXTURES / "seed" / "NCT06534528.json"


def test_transaction_bundle_puts_every_entry_conditionally() -> None:
    path = SEED
    bundle = convert_study(_study(path), bundle_type="transaction").bundle
    assert bundle["type"] == "transaction"
    nct = bundle["entry"][0]["resource"]["id"]
    assert bundle["entry"][0]["request"] == {
        "method": "PUT", "url": f"ResearchStudy?identifier=http://clinicaltrials.gov|{nct}"}
    for entry in bundle["entry"][1:]:
        res = entry["resource"]
        assert entry["fullUrl"].startswith("urn:uuid:")
        assert entry["request"]["method"] == "PUT"
        if res["resourceType"] == "Provenance":
            assert entry["request"]["url"] == f"Provenance/{res['id']}"
        else:
            ident = res["identifier"][0]
            assert entry["request"]["url"] == (
                f"{res['resourceType']}?identifier={ident['system']}|{ident['value']}")
    Bundle.model_validate(bundle)


def test_collection_bundle_has_no_requests() -> None:
    bundle = converted(SEED).bundle
    assert bundle["type"] == "collection"
    assert all("request" not in e for e in bundle["entry"])


def test_unknown_fhir_version_is_refused_clearly() -> None:
    with pytest.raises(FhirtrialError, match="FHIR version 'R3' is not supported"):
        convert_study(_study(SEED), fhir_version="R3")


def test_unsupported_bundle_type_is_refused() -> None:
    with pytest.raises(FhirtrialError, match="unsupported bundle type 'batch'"):
        convert_study(_study(SEED), bundle_type="batch")


def test_minimal_study_converts_to_a_valid_bundle() -> None:
    study = Study(nct_id="NCT00000001", source=SourceInfo("ctgov-v2-json"))
    conv = convert_study(study)
    Bundle.model_validate(conv.bundle)
    rs = conv.bundle["entry"][0]["resource"]
    assert rs["status"] == "unknown"
    assert "recorded" not in conv.bundle["entry"][-1]["resource"]  # no date: no clock either
    assert any(f.code == "incomplete" and "overall status" in f.message for f in conv.findings)


def test_unknown_status_becomes_warning_not_guess() -> None:
    study = Study(nct_id="NCT00000002", source=SourceInfo("ctgov-v2-json"),
                  overall_status="UNKNOWN", last_known_status="RECRUITING")
    conv = convert_study(study)
    state = conv.bundle["entry"][0]["resource"]["progressStatus"][0]["state"]
    assert not [c for c in state.get("coding", [])
                if c["system"] == "http://hl7.org/fhir/research-study-status"]
    assert state["text"] == "Unknown status; last known status: Recruiting"
    assert any(f.severity == "warning" and "UNKNOWN" in f.message for f in conv.findings)


def test_unknown_enum_value_is_kept_as_text_and_reported() -> None:
    study = Study(nct_id="NCT00000003", source=SourceInfo("ctgov-v2-json"),
                  overall_status="RECRUITING")
    study.design.allocation = "QUASI_RANDOM"
    conv = convert_study(study)
    design = conv.bundle["entry"][0]["resource"]["studyDesign"]
    assert design == [{"text": "Allocation: QUASI_RANDOM"}]
    assert any(f.code == "code-invalid" and "QUASI_RANDOM" in f.message for f in conv.findings)


def test_phase_set_becomes_one_combined_code_not_the_first_phase() -> None:
    study = Study(nct_id="NCT00000004", source=SourceInfo("ctgov-v2-json"),
                  phases=["PHASE2", "PHASE1"])
    phase = convert_study(study).bundle["entry"][0]["resource"]["phase"]
    assert phase["coding"] == [{"system": "http://hl7.org/fhir/research-study-phase",
                                "code": "phase-1-phase-2", "display": "Phase 1/Phase 2"}]


def test_seed_trial_arm_gets_four_dose_level_activities() -> None:
    bundle = converted(SEED).bundle
    ads = [e["resource"] for e in bundle["entry"]
           if e["resource"]["resourceType"] == "ActivityDefinition"]
    doses = [ad["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] for ad in ads]
    assert doses == [6_000_000, 30_000_000, 60_000_000, 90_000_000]
    for ad in ads:
        assert ad["dosage"][0]["doseAndRate"][0]["doseQuantity"]["code"] == "{cells}"
        assert ad["dosage"][0]["timing"]["repeat"] == {"count": 1}
        assert ad["dosage"][0]["route"]["text"] == "Bronchoscopic instillation"
    plan = next(e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "PlanDefinition")
    assert [a["definitionCanonical"] for a in plan["action"][0]["action"]] == [
        ad["url"] for ad in ads]
