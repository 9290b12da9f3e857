"""Every intervention MeSH term CT.gov derived reaches the Bundle: on the intervention whose
name carries it, else as a study-level ResearchStudy.focus (R5 CodeableReference.concept, R4
CodeableConcept). Terms matching no intervention name by substring used to be dropped."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import FIXTURES, SHARED_V2, shared_files
from fhirtrial.convert import convert_study
from fhirtrial.sources import parse_bytes

MESH = "http://id.nlm.nih.gov/mesh"
SEED = json.loads((FIXTURES / "seed" / "NCT06534528.json").read_text(encoding="utf-8"))


def _focus_codings(bundle: dict[str, Any]) -> list[list[str]]:
    study = next(e["resource"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "ResearchStudy")
    out = []
    for f in study.get("focus", []):
        concept = f.get("concept", f)  # R5 CodeableReference, R4 CodeableConcept
        out.append([c["code"] for c in concept.get("coding", []) if c.get("system") == MESH])
    return out


def _convert(doc: dict[str, Any], version: str) -> dict[str, Any]:
    [rec] = list(parse_bytes(json.dumps(doc).encode(), "record.json"))
    assert rec.study is not None
    return convert_study(rec.study, fhir_version=version).bundle


@pytest.mark.parametrize("version", ["R5", "R4"])
def test_terms_not_in_a_name_become_study_level_focus_once(version: str) -> None:
    doc = copy.deepcopy(SEED)
    doc["derivedSection"] = {"interventionBrowseModule": {"meshes": [
        {"id": "D000066729", "term": "Mesenchymal Stem Cell"},   # in the intervention's name
        {"id": "D000011658", "term": "Pulmonary Fibrosis"},       # in no name: study-level
        {"id": "D000011658", "term": "Pulmonary Fibrosis"},       # a repeat: said once
    ]}}
    assert _focus_codings(_convert(doc, version)) == [["D000066729"], ["D000011658"]]


def test_r4_bundle_reads_back_study_level_terms_apart_from_interventions() -> None:
    from fhirtrial.sources.fhir_r4 import read_r4_bundle

    doc = copy.deepcopy(SEED)
    doc["derivedSection"] = {"interventionBrowseModule": {"meshes": [
        {"id": "D000066729", "term": "Mesenchymal Stem Cell"},
        {"id": "D000011658", "term": "Pulmonary Fibrosis"}]}}
    back = read_r4_bundle(_convert(doc, "R4"))
    assert [(iv.name, [c.code for c in iv.mesh]) for iv in back.interventions] == [
        ("Human umbilical cord mesenchymal stem cell injection", ["D000066729"])]
    assert [c.code for c in back.intervention_mesh] == ["D000066729", "D000011658"]


def test_study_level_term_keeps_its_display_without_text() -> None:
    doc = copy.deepcopy(SEED)
    doc["derivedSection"] = {"interventionBrowseModule": {"meshes": [
        {"id": "D000011658", "term": "Pulmonary Fibrosis"}]}}
    bundle = _convert(doc, "R5")
    study = bundle["entry"][0]["resource"]
    # no text: an intervention's focus always has one, so a reader tells them apart
    assert study["focus"][-1] == {"concept": {
        "coding": [{"system": MESH, "code": "D000011658", "display": "Pulmonary Fibrosis"}]}}


RECORDS = [p for p in shared_files(SHARED_V2, "*.json")
           if json.loads(p.read_text(encoding="utf-8")).get("derivedSection", {})
           .get("interventionBrowseModule", {}).get("meshes")]


@pytest.mark.skipif(not RECORDS, reason="../shared (the project's read-only material) is not "
                                        "beside it")
@pytest.mark.parametrize("version", ["R5", "R4"])
def test_every_intervention_mesh_term_of_every_shared_record_is_in_the_bundle(
        version: str) -> None:
    lost = {}
    for path in RECORDS:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        want = [m["id"] for m in doc["derivedSection"]["interventionBrowseModule"]["meshes"]]
        got = {c for codes in _focus_codings(_convert(doc, version)) for c in codes}
        if missing := [m for m in want if m not in got]:
            lost[path.name] = missing
    assert lost == {}
    assert len(RECORDS) >= 20  # the shared set holds 24 such records
