"""Class scales (NYHA functional class, ASA physical status): a bound on one is written both
ways a record states a class (the class number, and the codes of the classes it allows), read
as class names, converted to R4, and matched against whichever way a patient's record holds
the class."""

from __future__ import annotations

import copy
import dataclasses
from datetime import date
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class as r4b

from conftest import FIXTURES
from fhirtrial.convert import convert_study
from fhirtrial.convert.ids import full_url
from fhirtrial.convert.r4 import decode, to_r4
from fhirtrial.eligibility import criteria_for
from fhirtrial.eligibility.fhir import characteristic, fact_text
from fhirtrial.eligibility.match import evaluate
from fhirtrial.eligibility.tables import tables
from fhirtrial.sources import read_inputs

SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
NYHA_TYPE = {"system": LOINC, "code": "88020-3", "display": "NYHA functional class"}
ASA_TYPE = {"system": "https://fhirtrial.example/CodeSystem/eligibility-concept",
            "code": "asa", "display": "ASA physical status class"}
# SNOMED CT class concepts, checked against published value sets (mappings/README.md)
NYHA = {1: "420300004", 2: "421704003", 3: "420913000", 4: "422293003"}
ASA = {1: "413495001", 2: "413496000", 3: "413497009", 4: "413498004", 5: "413499007",
       6: "413500003"}


def _criterion(text: str, exclude: bool = False) -> Any:
    heading = "Exclusion" if exclude else "Inclusion"
    [c] = criteria_for(f"{heading} Criteria:\n* {text}")
    return c


def _char(text: str, exclude: bool = False) -> dict[str, Any]:
    return characteristic(_criterion(text, exclude))


def _class_codes(definition: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in definition["valueCodeableConcept"]["coding"]]


# --- the lexicon -----------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "expected"), [("nyha", NYHA), ("asa", ASA)])
def test_lexicon_holds_the_verified_snomed_class_codes(key: str, expected: dict[int, str]) -> None:
    assert [(n, c["system"], c["code"]) for n, c in tables().lab(key).classes] == [
        (n, SCT, code) for n, code in expected.items()]


def test_only_nyha_and_asa_are_class_scales() -> None:
    # numeric scores (ECOG, Karnofsky, GCS, Hoehn & Yahr…) and scales whose class codes were
    # not verified (GMFCS, Child-Pugh) stay quantities
    assert sorted(lab.key for lab in tables().labs if lab.classes) == ["asa", "nyha"]


# --- R5 ------------------------------------------------------------------------------------

def _members(ch: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The number member and the coded members of a class bound's any-of."""
    comb = ch["definitionByCombination"]
    assert comb["code"] == "any-of"
    number, *coded = comb["characteristic"]
    return number, coded


def test_one_class_is_any_of_its_number_and_its_code_typed_by_the_scale() -> None:
    ch = _char("NYHA class I")
    number, coded = _members(ch)
    n = number["definitionByTypeAndValue"]
    assert n["type"]["coding"] == [NYHA_TYPE]
    assert (n["valueQuantity"]["value"], n["valueQuantity"]["code"]) == (1, "{score}")
    assert "comparator" not in n["valueQuantity"]
    [c] = coded
    d = c["definitionByTypeAndValue"]
    assert d["type"]["coding"] == [NYHA_TYPE]
    assert _class_codes(d) == [(SCT, "420300004")]
    assert d["valueCodeableConcept"]["text"] == "NYHA functional class I"
    assert [number["description"], c["description"]] == ["NYHA functional class I"] * 2


def test_class_range_is_any_of_the_number_range_and_one_coded_member_per_class() -> None:
    ch = _char("ASA I-II")
    assert "definitionByTypeAndValue" not in ch
    number, coded = _members(ch)
    r = number["definitionByTypeAndValue"]["valueRange"]
    assert (r["low"]["value"], r["high"]["value"]) == (1, 2)
    assert number["description"] == "ASA physical status class I or II"
    assert [m["description"] for m in coded] == ["ASA physical status class I",
                                                 "ASA physical status class II"]
    assert [m["linkId"] for m in (number, *coded)] == ["fact-1.1", "fact-1.2", "fact-1.3"]
    for m in (number, *coded):
        assert m["definitionByTypeAndValue"]["type"]["coding"] == [ASA_TYPE]
    assert [_class_codes(m["definitionByTypeAndValue"]) for m in coded] == [
        [(SCT, ASA[1])], [(SCT, ASA[2])]]


@pytest.mark.parametrize(("text", "scale", "classes"), [
    ("NYHA class III or IV", NYHA, [3, 4]),
    ("NYHA class ≥ III", NYHA, [3, 4]),
    ("NYHA class II or higher", NYHA, [2, 3, 4]),
    ("NYHA class < III", NYHA, [1, 2]),
    ("ASA physical status > 3", ASA, [4, 5, 6]),
    ("ASA score 1 or 2", ASA, [1, 2]),
], ids=lambda v: v if isinstance(v, str) else None)
def test_exclusion_bound_lists_the_classes_it_allows_and_keeps_the_exclude_flag(
        text: str, scale: dict[int, str], classes: list[int]) -> None:
    ch = _char(text, exclude=True)
    assert ch["exclude"] is True
    _, coded = _members(ch)
    assert [_class_codes(m["definitionByTypeAndValue"]) for m in coded] == [
        [(SCT, scale[n])] for n in classes]


def test_bound_that_allows_no_class_stays_text_only() -> None:
    ch = _char("NYHA class > IV")
    assert set(ch) == {"description", "exclude"}


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("ECOG 0-1", "valueRange", ({"value": 0}, {"value": 1})),
    ("Karnofsky performance status ≥ 70", "valueQuantity", 70),
    ("Glasgow coma scale of 15", "valueQuantity", 15),
])
def test_numeric_scores_stay_quantities(text: str, kind: str, value: Any) -> None:
    d = _char(text)["definitionByTypeAndValue"]
    assert "valueCodeableConcept" not in d
    if kind == "valueRange":
        assert (d[kind]["low"]["value"], d[kind]["high"]["value"]) == (value[0]["value"],
                                                                       value[1]["value"])
    else:
        assert d[kind]["value"] == value
        assert d[kind]["code"] == "{score}"


@pytest.mark.parametrize(("text", "reading"), [
    ("ASA I-II", "ASA physical status class I or II"),
    ("NYHA class ≥ III", "NYHA functional class III or IV"),
    ("NYHA class II or higher", "NYHA functional class II, III or IV"),
    ("NYHA class I", "NYHA functional class I"),
])
def test_fact_reads_as_the_classes_not_as_numbers(text: str, reading: str) -> None:
    [fact] = [f for f in _criterion(text).facts if f.kind == "lab"]
    assert fact_text(fact) == reading


def test_narrative_names_the_classes() -> None:
    [rec] = list(read_inputs([str(FIXTURES / "seed" / "NCT06534528.json")]))
    assert rec.study is not None
    study = copy.deepcopy(rec.study)
    study.eligibility = dataclasses.replace(
        study.eligibility, criteria="Inclusion Criteria:\n\n* ASA I-II\n\nExclusion Criteria:\n\n"
                                    "* NYHA class III or IV heart failure")
    bundle = convert_study(study).bundle
    [ev] = [e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == "EvidenceVariable"
            and any(c.get("description") == "ASA I-II"
                    for c in e["resource"].get("characteristic", []))]
    div = ev["text"]["div"]
    # each criterion beside the facts computed from it
    assert "<td>ASA I-II</td><td>ASA physical status class I or II</td>" in div
    assert ("<td>NYHA class III or IV heart failure</td><td>NYHA functional class III or IV"
            "</td>") in div
    assert "{score}" not in div


# --- R4 ------------------------------------------------------------------------------------

def _r4_group(*characteristics: dict[str, Any]) -> dict[str, Any]:
    ev = {"resourceType": "EvidenceVariable", "id": "NCT00000001-eligibility",
          "status": "active", "characteristic": list(characteristics)}
    rs = {"resourceType": "ResearchStudy", "id": "NCT00000001", "status": "active",
          "recruitment": {"eligibility": {"reference": full_url("EvidenceVariable", ev["id"]),
                                          "type": "EvidenceVariable"}}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": full_url(r["resourceType"], r["id"]), "resource": r,
         "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in (rs, ev)]}
    out, _ = to_r4(bundle, overall_status="RECRUITING")
    r4b("Bundle").model_validate(out)
    group = out["entry"][1]["resource"]
    r4b("Group").model_validate(group)
    return group


def test_r4_one_class_keeps_the_r5_any_of_whole_and_the_exclude_flag() -> None:
    ch = _char("NYHA class I", exclude=True)
    [g] = _r4_group(ch)["characteristic"]
    # R4 has no any-of: the criterion applies, and the R5 characteristic rides along
    assert g["code"] == {"text": "NYHA class I"}
    assert g["valueBoolean"] is True
    assert g["exclude"] is True
    assert decode("EvidenceVariable", "characteristic", g["extension"]) == [ch]


def test_r4_several_classes_keep_the_r5_any_of_whole() -> None:
    ch = _char("ASA I-II")
    [g] = _r4_group(ch)["characteristic"]
    # R4 has no any-of: the criterion applies, and the R5 characteristic rides along
    assert g["code"] == {"text": "ASA I-II"}
    assert g["valueBoolean"] is True
    assert decode("EvidenceVariable", "characteristic", g["extension"]) == [ch]


# --- matching ------------------------------------------------------------------------------

def _patient(*resources: dict[str, Any]) -> dict[str, Any]:
    entries = [{"resource": {"resourceType": "Patient", "id": "p", "birthDate": "1960-01-01",
                             "gender": "female"}}]
    for i, r in enumerate(resources):
        entries.append({"resource": {"id": f"r{i}", **r}})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _obs(code: dict[str, Any] | None, when: str = "2024-01-01", **value: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "effectiveDateTime": when,
            "code": code or {"text": "functional class"}, **value}


def _nyha_obs(n: int, when: str = "2024-01-01") -> dict[str, Any]:
    return _obs({"coding": [{"system": LOINC, "code": "88020-3"}]}, when,
                valueCodeableConcept={"coding": [{"system": SCT, "code": NYHA[n]}]})


def _condition(code: str, status: str = "active") -> dict[str, Any]:
    return {"resourceType": "Condition", "recordedDate": "2023-06-01",
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": status}]},
            "code": {"coding": [{"system": SCT, "code": code}]}}


def _evaluate(text: str, bundle: dict[str, Any], exclude: bool = False) -> dict[str, Any]:
    heading = "Exclusion" if exclude else "Inclusion"
    return evaluate(f"{heading} Criteria:\n* {text}", bundle, as_of=date(2024, 1, 2))


def _verdict(out: dict[str, Any]) -> str:
    return out["parameter"][0]["valueCode"]


def _fact_row(out: dict[str, Any]) -> dict[str, Any]:
    [crit] = [p for p in out["parameter"] if p["name"] == "criterion"
              and not any(x["name"] == "text" and x["valueString"].startswith(("Minimum", "Sex"))
                          for x in p["part"])]
    [fact] = [x for x in crit["part"] if x["name"] == "fact"]
    return {y["name"]: next(v for k, v in y.items() if k.startswith("value"))
            for y in fact["part"]}


@pytest.mark.parametrize(("record", "verdict"), [
    (_nyha_obs(2), "eligible"),
    (_nyha_obs(3), "not-eligible"),
    (_obs({"coding": [{"system": LOINC, "code": "88020-3"}]}, valueInteger=1), "eligible"),
    (_obs({"coding": [{"system": LOINC, "code": "88020-3"}]},
          valueQuantity={"value": 4, "system": "http://unitsofmeasure.org", "code": "{score}"}),
     "not-eligible"),
    # the class concept as the Observation's own code (a finding), or a coded value of an
    # Observation whose code is local
    (_obs({"coding": [{"system": SCT, "code": NYHA[2]}]}), "eligible"),
    (_obs(None, valueCodeableConcept={"coding": [{"system": SCT, "code": NYHA[4]}]}),
     "not-eligible"),
    (_condition(NYHA[1]), "eligible"),
    (_condition(NYHA[3]), "not-eligible"),
], ids=["coded-II", "coded-III", "integer-1", "quantity-4", "finding-II", "local-code-IV",
        "condition-I", "condition-III"])
def test_inclusion_class_is_compared_with_the_allowed_classes(record: dict[str, Any],
                                                              verdict: str) -> None:
    out = _evaluate("NYHA class I or II", _patient(record))
    assert _verdict(out) == verdict
    if verdict == "not-eligible":
        decided = [p["valueString"] for p in out["parameter"] if p["name"] == "decidedBy"]
        assert decided == ["NYHA class I or II"]


def test_reason_names_the_class_and_the_evidence_is_the_record() -> None:
    row = _fact_row(_evaluate("NYHA class I or II", _patient(_nyha_obs(3))))
    assert row["description"] == "NYHA functional class I or II"
    assert (row["result"], row["reason"]) == ("not-met", "NYHA functional class III")
    assert row["evidence"] == {"reference": "Observation/r0"}


def test_exclusion_by_class_excludes_only_the_classes_it_names() -> None:
    assert _verdict(_evaluate("NYHA class III or IV heart failure",
                              _patient(_nyha_obs(4)), exclude=True)) == "not-eligible"
    assert _verdict(_evaluate("NYHA class III or IV heart failure",
                              _patient(_nyha_obs(2)), exclude=True)) == "eligible"


def test_latest_record_decides() -> None:
    bundle = _patient(_nyha_obs(3, "2023-01-01"), _nyha_obs(2, "2023-12-01"))
    assert _verdict(_evaluate("NYHA class I or II", bundle)) == "eligible"


def test_asa_class_from_a_condition_or_a_coded_observation() -> None:
    assert _verdict(_evaluate("ASA I-II", _patient(_condition(ASA[3])))) == "not-eligible"
    assert _verdict(_evaluate("ASA I-II", _patient(_obs(
        None, valueCodeableConcept={"coding": [{"system": SCT, "code": ASA[2]}]})))) == "eligible"


@pytest.mark.parametrize("record", [
    None,
    _condition(NYHA[3], status="resolved"),  # no longer the patient's class
    _obs({"coding": [{"system": LOINC, "code": "88020-3"}]}, valueInteger=7),  # not a class
    _obs({"coding": [{"system": LOINC, "code": "89247-1"}]}, valueInteger=1),  # ECOG, not NYHA
], ids=["no-data", "resolved-condition", "not-a-class", "another-scale"])
def test_no_usable_record_of_the_class_is_unknown(record: dict[str, Any] | None) -> None:
    out = _evaluate("NYHA class I or II", _patient(*([record] if record else [])))
    assert _verdict(out) == "needs-review"
    row = _fact_row(out)
    assert (row["result"], row["reason"]) == ("unknown", "no NYHA functional class recorded")
