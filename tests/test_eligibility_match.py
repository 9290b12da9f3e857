"""Pre-screening a patient Bundle against a study: per-criterion answers, verdict, CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fhir.resources.parameters import Parameters

from conftest import FIXTURES
from fhirtrial.cli import main
from fhirtrial.eligibility import facts_for
from fhirtrial.eligibility.match import evaluate
from fhirtrial.errors import SourceError
from fhirtrial.sources import read_inputs

SEED = FIXTURES / "seed" / "NCT06534528.json"
ELIGIBLE = FIXTURES / "eligibility" / "patients" / "seed-eligible.json"
SPIROMETRY = {"19872-1", "19911-7", "19926-5"}  # FVC % pred, DLCO, FEV1/FVC


@pytest.fixture(scope="module")
def study():
    [rec] = list(read_inputs([str(SEED)]))
    assert rec.study is not None
    return rec.study


def _bundle() -> dict[str, Any]:
    return json.loads(ELIGIBLE.read_text(encoding="utf-8"))


def _resource(bundle: dict[str, Any], rid: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"].get("id") == rid)


def _verdict(out: dict[str, Any]) -> str:
    return out["parameter"][0]["valueCode"]


def _criteria(out: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for p in out["parameter"]:
        if p["name"] == "criterion":
            row = {x["name"]: x for x in p["part"] if x["name"] != "fact"}
            facts = [{y["name"]: y for y in x["part"]} for x in p["part"] if x["name"] == "fact"]
            rows.append({"text": row["text"]["valueString"], "result": row["result"]["valueCode"],
                         "facts": facts})
    return rows


def _fact(out: dict[str, Any], description: str) -> dict[str, Any]:
    for row in _criteria(out):
        for f in row["facts"]:
            if f["description"]["valueString"] == description:
                return f
    raise AssertionError(f"no fact {description!r}")


def test_patient_meeting_every_computable_criterion_is_eligible(study) -> None:
    out = evaluate(study, _bundle())
    assert _verdict(out) == "eligible"
    Parameters.model_validate(out)


def test_fvc_85_percent_predicted_is_not_eligible_naming_that_criterion(study) -> None:
    b = _bundle()
    _resource(b, "fvc")["valueQuantity"]["value"] = 85
    out = evaluate(study, b)
    assert _verdict(out) == "not-eligible"
    decided = [p["valueString"] for p in out["parameter"] if p["name"] == "decidedBy"]
    assert len(decided) == 1
    assert "Forced vital capacity (FVC) is 40% to 70%" in decided[0]
    fvc = _fact(out, "FVC 40 to 70 % of predicted")
    assert fvc["result"]["valueCode"] == "not-met"
    assert fvc["evidence"]["valueReference"] == {"reference": "Observation/fvc"}


def test_patient_without_spirometry_needs_review(study) -> None:
    b = _bundle()
    b["entry"] = [e for e in b["entry"] if not {c["code"] for c in e["resource"].get(
        "code", {}).get("coding", [])} & SPIROMETRY]
    out = evaluate(study, b)
    assert _verdict(out) == "needs-review"
    f = _fact(out, "DLCO 30 to 80 % of predicted within the previous 3 months")
    assert f["result"]["valueCode"] == "unknown"


def test_alt_is_compared_with_the_observations_own_upper_limit(study) -> None:
    b = _bundle()
    alt = _resource(b, "alt")
    alt["valueQuantity"]["value"] = 101  # ULN 40 U/L: 2.53 × ULN > 2.5
    out = evaluate(study, b)
    assert _verdict(out) == "not-eligible"
    f = _fact(out, "Alanine aminotransferase ≤ 2.5 × ULN")
    assert f["result"]["valueCode"] == "not-met"
    assert "2.52 × ULN" in f["reason"]["valueString"] or "2.53 × ULN" in f["reason"][
        "valueString"]


def test_uln_in_another_unit_than_the_value_is_converted(study) -> None:
    b = _bundle()
    tbil = _resource(b, "tbil")  # 20.5 µmol/L against a ULN of 1.0 mg/dL (= 17.1 µmol/L)
    tbil["referenceRange"][0]["high"] = {"value": 1.0, "unit": "mg/dL",
                                         "system": "http://unitsofmeasure.org", "code": "mg/dL"}
    out = evaluate(study, b)
    f = _fact(out, "Total bilirubin ≤ 2 × ULN")
    assert f["result"]["valueCode"] == "met"
    assert "1.20 × ULN" in f["reason"]["valueString"]


def test_missing_reference_range_makes_a_uln_bound_unknown(study) -> None:
    b = _bundle()
    del _resource(b, "ast")["referenceRange"]
    out = evaluate(study, b)
    assert _verdict(out) == "needs-review"
    assert _fact(out, "Aspartate aminotransferase ≤ 2.5 × ULN")["result"]["valueCode"] == (
        "unknown")


def test_dlco_older_than_three_months_is_not_used(study) -> None:
    b = _bundle()
    _resource(b, "dlco")["effectiveDateTime"] = "2025-10-01"  # 5 months before the latest date
    out = evaluate(study, b)
    f = _fact(out, "DLCO 30 to 80 % of predicted within the previous 3 months")
    assert f["result"]["valueCode"] == "unknown"
    assert "within the previous 3 months" in f["reason"]["valueString"]


def test_minor_is_not_eligible_by_the_registry_minimum_age(study) -> None:
    b = _bundle()
    _resource(b, "p1")["birthDate"] = "2010-01-01"
    out = evaluate(study, b)
    assert _verdict(out) == "not-eligible"
    assert _fact(out, "Age ≥ 18 years")["result"]["valueCode"] == "not-met"


def test_woman_without_pregnancy_or_lactation_data_needs_review(study) -> None:
    b = _bundle()
    _resource(b, "p1")["gender"] = "female"
    out = evaluate(study, b)
    assert _verdict(out) == "needs-review"
    assert _fact(out, "Pregnancy: yes")["result"]["valueCode"] == "unknown"


def test_recorded_malignancy_within_five_years_excludes(study) -> None:
    b = _bundle()
    b["entry"].append({"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000099", "resource": {
        "resourceType": "Condition", "id": "ca", "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "363346000"}]},
        "onsetDateTime": "2023-06-01"}})
    out = evaluate(study, b)
    assert _verdict(out) == "not-eligible"
    f = _fact(out, "Malignant neoplastic disease (within the previous 5 years)")
    assert f["evidence"]["valueReference"] == {"reference": "Condition/ca"}


def test_unit_the_table_does_not_convert_gives_unknown_not_a_guess() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "x"}},
        {"resource": {"resourceType": "Observation", "id": "plt", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "777-3"}]},
                      "effectiveDateTime": "2026-01-01",
                      "valueQuantity": {"value": 150, "unit": "lakh"}}}]}
    out = evaluate("Inclusion Criteria:\n* Platelets ≥ 100 × 10^9/L", bundle)
    assert _criteria(out)[0]["result"] == "unknown"


def test_platelets_per_mm3_compare_with_a_bound_in_10_9_per_litre() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Observation", "id": "plt", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "777-3"}]},
                      "effectiveDateTime": "2026-01-01",
                      "valueQuantity": {"value": 90000, "unit": "/mm3"}}}]}
    out = evaluate("Inclusion Criteria:\n* Platelets ≥ 100 × 10^9/L", bundle)
    assert _verdict(out) == "not-eligible"  # 90,000/mm³ = 90 × 10⁹/L


def _one_result(loinc: str, value: float, ucum: str) -> dict[str, Any]:
    """A Bundle holding one laboratory result, in UCUM units."""
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Observation", "id": "r", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                      "effectiveDateTime": "2026-01-01",
                      "valueQuantity": {"value": value, "unit": ucum, "system":
                                        "http://unitsofmeasure.org", "code": ucum}}}]}


@pytest.mark.parametrize(("line", "result", "verdict"), [
    # the lexicon's equivalent code (hs-cTnI, 89579-7) and its unit: 0.04 ng/mL = 40 ng/L
    ("Troponin I < 0.04 ng/mL", ("89579-7", 30, "ng/L"), "eligible"),
    ("Troponin I < 0.04 ng/mL", ("89579-7", 52, "ng/L"), "not-eligible"),
    # D-dimer in fibrin-equivalent units (48065-7): 500 ng/mL is 0.5 ug/mL
    ("D-dimer < 500 ng/mL", ("48065-7", 0.3, "ug/mL"), "eligible"),
    ("D-dimer < 500 ng/mL", ("48065-7", 0.7, "ug/mL"), "not-eligible"),
    # AMH (38476-8) in pmol/L against a bound in ng/mL (1 ng/mL = 7.14 pmol/L)
    ("AMH ≥ 1.0 ng/mL", ("38476-8", 10, "pmol/L"), "eligible"),
    ("AMH ≥ 1.0 ng/mL", ("38476-8", 5, "pmol/L"), "not-eligible"),
    # an ECOG result alone meets "ECOG 0-1 (Karnofsky ≥ 70%)": the bracket restates it
    ("ECOG performance status 0-1 (Karnofsky ≥ 70%)", ("89247-1", 1, "{score}"), "eligible"),
    # (an ECOG of 2 leaves it open: the Karnofsky score, not recorded, may meet it)
    ("ECOG performance status 0-1 (Karnofsky ≥ 70%)", ("89247-1", 2, "{score}"),
     "needs-review"),
    # blasts in blood (709-6) answer a bound on blood blasts, never one on marrow blasts
    ("Peripheral blood blasts < 5%", ("709-6", 3, "%"), "eligible"),
    ("Peripheral blood blasts < 5%", ("709-6", 8, "%"), "not-eligible"),
    ("Bone marrow blasts < 5%", ("709-6", 3, "%"), "needs-review"),
    # counts under the "[#/volume] in Blood" codes many laboratories report (26515-7 platelets,
    # 26499-4 neutrophils), and haemoglobin by calculation (20509-6)
    ("Platelets ≥ 100 × 10^9/L", ("26515-7", 150, "10*3/uL"), "eligible"),
    ("Platelets ≥ 100 × 10^9/L", ("26515-7", 80, "10*3/uL"), "not-eligible"),
    ("ANC ≥ 1500/µL", ("26499-4", 1.2, "10*3/uL"), "not-eligible"),
    ("Hemoglobin ≥ 9 g/dL", ("20509-6", 10.2, "g/dL"), "eligible"),
])
def test_a_result_under_the_concepts_loinc_code_is_compared_in_its_unit(line, result,
                                                                         verdict) -> None:
    out = evaluate(f"Inclusion Criteria:\n* {line}", _one_result(*result))
    assert _verdict(out) == verdict


def _results(*results: tuple[str, float, str]) -> dict[str, Any]:
    """A Bundle of laboratory results (LOINC code, value, UCUM unit)."""
    entries = [_one_result(*r)["entry"][0] for r in results]
    for i, e in enumerate(entries):
        e["resource"]["id"] = f"r{i}"
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


CYTOPENIAS = ("Inclusion Criteria:\n* At least 2 of the following:\n  * Hemoglobin < 10 g/dL\n"
              "  * Platelets < 100 x 10^9/L\n  * ANC < 1.5 x 10^9/L")
HB, PLT, ANC = "718-7", "777-3", "751-8"


@pytest.mark.parametrize(("results", "verdict"), [
    # two of the three met: enough, whatever the third says or whether it is recorded
    (((HB, 9, "g/dL"), (PLT, 80, "10*3/uL"), (ANC, 3.0, "10*3/uL")), "eligible"),
    (((HB, 9, "g/dL"), (PLT, 80, "10*3/uL")), "eligible"),
    # one met, one not, one not recorded: the third decides, so a reviewer does
    (((HB, 9, "g/dL"), (PLT, 150, "10*3/uL")), "needs-review"),
    # one met and two not: two cannot be reached
    (((HB, 9, "g/dL"), (PLT, 150, "10*3/uL"), (ANC, 3.0, "10*3/uL")), "not-eligible"),
    # none met and one unknown: at most one
    (((HB, 12, "g/dL"), (PLT, 150, "10*3/uL")), "not-eligible"),
])
def test_at_least_two_of_the_following_counts_the_items_met(results, verdict) -> None:
    out = evaluate(CYTOPENIAS, _results(*results))
    assert _verdict(out) == verdict


def test_an_item_in_words_counts_as_unknown_under_a_count_or_alternatives() -> None:
    # the item in words may be the second one met: not a reason to turn the patient away
    text = ("Inclusion Criteria:\n* At least 2 of the following:\n  * Hemoglobin < 10 g/dL\n"
            "  * Platelets < 100 x 10^9/L\n  * Splenomegaly on examination")
    out = evaluate(text, _results((HB, 9, "g/dL"), (PLT, 150, "10*3/uL")))
    assert _verdict(out) == "needs-review"
    # the same for "one of the following" with the computable one not met
    text = ("Inclusion Criteria:\n* One of the following:\n  * Hemoglobin < 10 g/dL\n"
            "  * Transfusion dependence")
    out = evaluate(text, _results((HB, 12, "g/dL")))
    assert _verdict(out) == "needs-review"
    out = evaluate(text, _results((HB, 9, "g/dL")))
    assert _verdict(out) == "eligible"


@pytest.mark.parametrize(("gender", "born", "verdict"), [
    ("female", "1970-01-01", "not-eligible"),  # a woman of 56: the one the line excludes
    ("male", "1970-01-01", "eligible"),        # a man of the same age is not
    ("female", "1995-01-01", "eligible"),      # nor is a younger woman
])
def test_an_exclusion_of_one_sexs_age_excludes_that_sex_at_that_age(gender, born,
                                                                     verdict) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p", "gender": gender,
                      "birthDate": born}}]}
    out = evaluate("Exclusion Criteria:\n* Women aged ≥ 50 years", bundle, as_of="2026-06-01")
    assert _verdict(out) == verdict


@pytest.mark.parametrize(("gender", "hb", "verdict"), [
    ("female", 9, "not-eligible"),  # the woman the line excludes
    ("male", 9, "eligible"),        # read as a plain bound, he was excluded too
    ("female", 12, "eligible"),
])
def test_an_exclusion_of_one_sexs_value_excludes_that_sex_at_that_value(gender, hb,
                                                                       verdict) -> None:
    bundle = _results((HB, hb, "g/dL"))
    bundle["entry"].append({"resource": {"resourceType": "Patient", "id": "p",
                                         "gender": gender, "birthDate": "1980-01-01"}})
    out = evaluate("Exclusion Criteria:\n* Women with hemoglobin < 10 g/dL", bundle)
    assert _verdict(out) == verdict


def _result(oid: str, when: str, loinc: str, value: float, unit: str, code: str
            ) -> dict[str, Any]:
    return {"resource": {"resourceType": "Observation", "id": oid, "status": "final",
                         "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                         "effectiveDateTime": when,
                         "valueQuantity": {"value": value, "unit": unit, "system":
                                           "http://unitsofmeasure.org", "code": code}}}


def _qtc(oid: str, when: str, ms: float) -> dict[str, Any]:
    return _result(oid, when, "8636-3", ms, "ms", "ms")


QTC_HISTORY = "Exclusion Criteria:\n* History of QTc > 480 ms"


def test_history_of_a_value_is_met_by_an_earlier_result_not_only_the_latest() -> None:
    # the latest QTc (450 ms) is normal; the one a year before (495 ms) is the history the
    # line excludes: reading the latest alone would let this patient in
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        _qtc("old", "2025-01-10", 495), _qtc("new", "2026-01-10", 450)]}
    out = evaluate(QTC_HISTORY, bundle)
    assert _verdict(out) == "not-eligible"
    f = _fact(out, "QTc interval > 480 ms at any time")
    assert f["result"]["valueCode"] == "met"
    assert f["evidence"]["valueReference"] == {"reference": "Observation/old"}


def test_history_of_a_value_not_met_when_no_result_ever_met_it() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        _qtc("a", "2025-01-10", 470), _qtc("b", "2026-01-10", 450)]}
    out = evaluate(QTC_HISTORY, bundle)
    assert _fact(out, "QTc interval > 480 ms at any time")["result"]["valueCode"] == "not-met"
    assert _verdict(out) == "eligible"
    # a result after the evaluation date is not history yet
    later = {"resourceType": "Bundle", "type": "collection", "entry": [
        _qtc("a", "2025-01-10", 470), _qtc("b", "2026-03-01", 495)]}
    out = evaluate(QTC_HISTORY, later, as_of="2026-01-31")
    assert _fact(out, "QTc interval > 480 ms at any time")["result"]["valueCode"] == "not-met"


def _rna(oid: str, when: str, copies: float) -> dict[str, Any]:
    return _result(oid, when, "20447-9", copies, "copies/mL", "{copies}/mL")


SUPPRESSED = "Inclusion Criteria:\n* HIV-1 RNA < 50 copies/mL for ≥ 6 months"
HELD = "HIV 1 RNA < 50 copies/mL for ≥ 6 months"


@pytest.mark.parametrize(("results", "result", "evidence"), [
    # one suppressed result does not show six months of suppression
    ([("now", "2026-01-10", 20)], "unknown", ["now"]),
    # suppressed seven months ago and since: held
    ([("then", "2025-06-01", 30), ("now", "2026-01-10", 20)], "met", ["then", "now"]),
    # a blip inside the six months: not held, naming that result
    ([("then", "2025-06-01", 30), ("blip", "2025-10-01", 400), ("now", "2026-01-10", 20)],
     "not-met", ["blip"]),
    # not suppressed when the period began: when it became so is not known
    ([("then", "2025-06-01", 900), ("now", "2026-01-10", 20)], "unknown", ["then", "now"]),
    # the latest result fails the bound itself
    ([("then", "2025-06-01", 30), ("now", "2026-01-10", 80)], "not-met", ["now"]),
])
def test_a_bound_held_for_a_time_needs_results_over_that_time(results, result,
                                                               evidence) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [_rna(*r) for r in results]}
    out = evaluate(SUPPRESSED, bundle, as_of="2026-01-15")
    f = _fact(out, HELD)
    assert f["result"]["valueCode"] == result
    row = next(p for p in out["parameter"] if p["name"] == "criterion")
    fact = next(x for x in row["part"] if x["name"] == "fact")
    got = [x["valueReference"]["reference"] for x in fact["part"] if x["name"] == "evidence"]
    assert got == [f"Observation/{e}" for e in evidence]
    assert _verdict(out) == {"met": "eligible", "not-met": "not-eligible",
                             "unknown": "needs-review"}[result]


def test_a_negated_bound_is_met_when_the_bound_is_not() -> None:
    text = "Inclusion Criteria:\n* No evidence of QTc > 480 ms"
    normal = {"resourceType": "Bundle", "type": "collection", "entry": [
        _qtc("a", "2026-01-10", 450)]}
    out = evaluate(text, normal)
    assert _verdict(out) == "eligible"
    assert _fact(out, "not QTc interval > 480 ms")["result"]["valueCode"] == "met"
    long_qt = {"resourceType": "Bundle", "type": "collection", "entry": [
        _qtc("a", "2026-01-10", 495)]}
    out = evaluate(text, long_qt)
    assert _verdict(out) == "not-eligible"
    assert _fact(out, "not QTc interval > 480 ms")["result"]["valueCode"] == "not-met"
    # no result: unknown either way
    none = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p"}}]}
    assert _verdict(evaluate(text, none)) == "needs-review"


WAIVED = ("Inclusion Criteria:\n* INR ≤ 1.5 unless receiving anticoagulants\n"
          "Exclusion Criteria:\n* Serum albumin < 2.5 g/dL unless due to nephrotic syndrome")


@pytest.mark.parametrize(("inr", "albumin", "verdict", "facts"), [
    # the bounds decide when they say so: INR met, albumin not below 2.5
    (1.1, 3.5, "eligible", ("met", "not-met")),
    # INR over the bound: in only if anticoagulated, which the words say (for review)
    (2.4, 3.5, "needs-review", ("unknown", "not-met")),
    # albumin under 2.5: out unless it is due to nephrotic syndrome (for review)
    (1.1, 2.0, "needs-review", ("met", "unknown")),
])
def test_an_exception_in_words_leaves_to_review_only_what_the_bound_does_not_decide(
        inr: float, albumin: float, verdict: str, facts: tuple[str, str]) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        _result("inr", "2026-01-10", "6301-6", inr, "INR", "{INR}"),
        _result("alb", "2026-01-10", "1751-7", albumin, "g/dL", "g/dL")]}
    out = evaluate(WAIVED, bundle, as_of="2026-01-15")
    assert _verdict(out) == verdict
    got = (_fact(out, "International normalised ratio ≤ 1.5, or receiving anticoagulants"),
           _fact(out, "Serum albumin < 2.5 g/dL, unless due to nephrotic syndrome"))
    assert tuple(f["result"]["valueCode"] for f in got) == facts


@pytest.mark.parametrize(("hb", "verdict", "result"), [
    (10.5, "eligible", "not-met"),  # not anaemic: cleared (before, the line was text)
    (7.2, "needs-review", "unknown"),  # anaemic: excluded only if transfusions are needed
])
def test_an_excluded_bound_that_holds_only_with_words_clears_those_it_does_not_reach(
        hb: float, verdict: str, result: str) -> None:
    text = "Exclusion Criteria:\n* Hemoglobin < 8 g/dL requiring transfusion"
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        _result("hb", "2026-01-10", "718-7", hb, "g/dL", "g/dL")]}
    out = evaluate(text, bundle, as_of="2026-01-15")
    assert _verdict(out) == verdict
    f = _fact(out, "Haemoglobin < 8 g/dL, requiring transfusion")
    assert f["result"]["valueCode"] == result


@pytest.mark.parametrize(("lvef", "verdict"), [
    (40, "not-eligible"),  # the bound is necessary: not met, the line is not
    (60, "needs-review"),  # … not sufficient: the wall motion is for a person (before: met)
])
def test_an_included_bound_with_words_after_it_is_necessary_not_sufficient(
        lvef: float, verdict: str) -> None:
    text = "Inclusion Criteria:\n* LVEF ≥ 50% with normal wall motion"
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        _result("e", "2026-01-10", "10230-1", lvef, "%", "%")]}
    assert _verdict(evaluate(text, bundle, as_of="2026-01-15")) == verdict


def test_a_value_outside_a_range_excludes_only_outside_it() -> None:
    def hct(value: float) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
            "resourceType": "Observation", "id": "h", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "4544-3"}]},
            "effectiveDateTime": "2026-01-10",
            "valueQuantity": {"value": value, "unit": "%", "system":
                              "http://unitsofmeasure.org", "code": "%"}}}]}

    text = "Exclusion Criteria:\n* Hematocrit outside the normal range (35-50%)"
    assert _verdict(evaluate(text, hct(42))) == "eligible"
    assert _verdict(evaluate(text, hct(30))) == "not-eligible"
    assert _verdict(evaluate(text, hct(55))) == "not-eligible"
    assert _verdict(evaluate(text, hct(50))) == "eligible"  # the range's own limit is in it


def test_history_of_a_class_is_met_by_an_earlier_record() -> None:
    def nyha(oid: str, when: str, n: int) -> dict[str, Any]:
        return {"resource": {"resourceType": "Observation", "id": oid, "status": "final",
                             "code": {"coding": [{"system": "http://loinc.org",
                                                  "code": "88020-3"}]},
                             "effectiveDateTime": when, "valueInteger": n}}

    text = "Exclusion Criteria:\n* History of NYHA class III or IV heart failure"
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        nyha("then", "2024-05-01", 3), nyha("now", "2026-01-10", 2)]}
    out = evaluate(text, bundle)
    assert _verdict(out) == "not-eligible"
    [row] = _criteria(out)
    assert row["result"] == "met"
    healthy = {"resourceType": "Bundle", "type": "collection", "entry": [
        nyha("then", "2024-05-01", 1), nyha("now", "2026-01-10", 2)]}
    assert _criteria(evaluate(text, healthy))[0]["result"] == "not-met"


def test_converted_evidence_variable_gives_the_same_answers(study) -> None:
    from fhirtrial.convert import convert_study

    bundle = convert_study(study).bundle
    [ev] = [e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == "EvidenceVariable"
            and e["resource"]["title"].startswith("Eligibility")]
    b = _bundle()
    _resource(b, "fvc")["valueQuantity"]["value"] = 85
    assert _verdict(evaluate(ev, _bundle())) == "eligible"
    assert _verdict(evaluate(ev, b)) == "not-eligible"


def test_same_input_gives_the_same_bytes(study) -> None:
    a = json.dumps(evaluate(study, _bundle()), sort_keys=True)
    assert a == json.dumps(evaluate(study, copy.deepcopy(_bundle())), sort_keys=True)


# --- CLI ---------------------------------------------------------------------------------

def _write(tmp_path: Path, bundle: dict[str, Any]) -> str:
    p = tmp_path / "patient.json"
    p.write_text(json.dumps(bundle), encoding="utf-8")
    return str(p)


@pytest.mark.parametrize(("change", "code", "verdict"), [
    (None, 0, "eligible"), ("fvc85", 1, "not-eligible"), ("nospiro", 3, "needs-review")],
    ids=["eligible", "not-eligible", "needs-review"])
def test_match_command_exit_code_is_the_verdict(tmp_path: Path, change, code, verdict) -> None:
    b = _bundle()
    if change == "fvc85":
        _resource(b, "fvc")["valueQuantity"]["value"] = 85
    elif change == "nospiro":
        b["entry"] = [e for e in b["entry"] if e["resource"].get("id") not in
                      ("fvc", "dlco", "fev1fvc")]
    r = CliRunner().invoke(main, ["match", str(SEED), _write(tmp_path, b)])
    assert r.exit_code == code
    assert json.loads(r.stdout)["parameter"][0]["valueCode"] == verdict
    assert f"NCT06534528: {verdict}" in r.stderr


def test_match_command_as_of_date_is_used(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["match", str(SEED), str(ELIGIBLE), "--as-of", "2026-04-15"])
    as_of = [p for p in json.loads(r.stdout)["parameter"] if p["name"] == "asOf"]
    assert as_of == [{"name": "asOf", "valueDate": "2026-04-15"}]


def test_match_command_rejects_a_non_bundle_with_an_operation_outcome(tmp_path: Path) -> None:
    p = tmp_path / "obs.json"
    p.write_text('{"resourceType": "Observation"}', encoding="utf-8")
    r = CliRunner().invoke(main, ["match", str(SEED), str(p)])
    assert r.exit_code == 2
    assert r.stdout == ""
    oo = json.loads(r.stderr)
    assert oo == {"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": "invalid",
        "diagnostics": f"{p}: patient data must be a FHIR Bundle (or Patient) JSON object"}]}


def test_match_command_rejects_malformed_json_and_a_bad_date(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text("{", encoding="utf-8")
    r = CliRunner().invoke(main, ["match", str(SEED), str(p)])
    assert r.exit_code == 2
    assert "not JSON" in json.loads(r.stderr)["issue"][0]["diagnostics"]
    r = CliRunner().invoke(main, ["match", str(SEED), str(ELIGIBLE), "--as-of", "yesterday"])
    assert r.exit_code == 2
    assert "'yesterday' is not a date" in json.loads(r.stderr)["issue"][0]["diagnostics"]


def test_match_command_has_help() -> None:
    r = CliRunner().invoke(main, ["match", "--help"])
    assert r.exit_code == 0
    assert "Exit 0 eligible, 1 not eligible, 3 needs review" in " ".join(r.stdout.split())


def _alt(extra: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "Observation", "id": "alt", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1742-6"}]},
        "effectiveDateTime": "2026-01-01", **extra}}]}


@pytest.mark.parametrize("extra", [
    # a reference limit that is no finite number (JSON can carry these; FHIR cannot)
    {"valueQuantity": {"value": 50, "unit": "U/L"},
     "referenceRange": [{"high": {"value": float("nan")}}]},
    # a value that is no finite number is no value: not compared (NaN failed every bound)
    {"valueQuantity": {"value": float("nan"), "unit": "U/L"},
     "referenceRange": [{"high": {"value": 40, "unit": "U/L"}}]},
    # an integer beyond a float's range (valid JSON): no float, no comparison, no traceback
    {"valueQuantity": {"value": 10 ** 400, "unit": "U/L"},
     "referenceRange": [{"high": {"value": 40, "unit": "U/L"}}]},
])
def test_a_result_whose_numbers_are_no_numbers_leaves_the_bound_unknown(extra) -> None:
    out = evaluate("Inclusion Criteria:\n* ALT ≤ 2.5 × ULN", _alt(extra))
    assert _criteria(out)[0]["result"] == "unknown"


@pytest.mark.parametrize(("resource", "where"), [
    # a number that is a string or a boolean, a coding that is no list of objects, a status
    # that is no CodeableConcept: before, a traceback (a 500 from $match and the prescreening
    # page, which did not check the shape the trial-matching request did)
    ({"resourceType": "Observation", "valueQuantity": {"value": 50, "unit": "U/L"},
      "referenceRange": [{"high": {"value": "x"}}]}, "referenceRange[0].high.value"),
    ({"resourceType": "Observation", "valueQuantity": {"value": True, "unit": "U/L"}},
     "valueQuantity.value"),
    ({"resourceType": "Condition", "code": {"coding": 5}}, "code.coding"),
    ({"resourceType": "Condition", "code": {"coding": [{"code": "B18.2"}]},
      "verificationStatus": "confirmed"}, "verificationStatus"),
    ({"resourceType": "Condition", "code": {"coding": [{"code": "B18.2"}]},
      "onsetPeriod": [1]}, "onsetPeriod"),
])
def test_a_patient_resource_of_the_wrong_shape_is_a_clear_error(
        resource: dict[str, Any], where: str) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": {"id": "r1", **resource}}]}
    with pytest.raises(SourceError) as err:
        evaluate("Exclusion Criteria:\n* Known hepatitis C infection\n* ALT > 3 × ULN", bundle)
    assert err.value.location.startswith(f"patient-bundle.entry[0].resource.{where.split('.')[0]}")


def _condition(cid: str, snomed: str) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-0000000001{len(cid):02d}",
            "resource": {"resourceType": "Condition", "id": cid,
                         "subject": {"reference": "Patient/p1"},
                         "code": {"coding": [{"system": "http://snomed.info/sct",
                                              "code": snomed}]},
                         "onsetDateTime": "2025-06-01"}}


def _evaluated(text: str, conditions: list[tuple[str, str]]) -> dict[str, Any]:
    """``evaluate`` of criteria text for a patient with these (id, SNOMED code) conditions."""
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [_condition(c, s) for c, s in conditions]}
    return evaluate(text, bundle, as_of="2026-01-15")


@pytest.mark.parametrize(("conditions", "verdict", "result"), [
    # no HIV recorded: the coded part clears the patient and the AIDS clause is named for a
    # person to confirm, as a criterion in words is (it does not change the verdict)
    ([], "eligible", "not-met"),
    ([("hiv", "86406008")], "not-eligible", "met"),
])
def test_an_exclusions_condition_in_words_is_named_for_a_person_to_confirm(
        conditions: list[tuple[str, str]], verdict: str, result: str) -> None:
    out = _evaluated("Exclusion Criteria:\n* Known HIV(+) or has been diagnosed with AIDS",
                     conditions)
    assert _verdict(out) == verdict
    f = _fact(out, "Human immunodeficiency virus infection, or AIDS")
    assert f["result"]["valueCode"] == result
    confirm = "or AIDS: text only, for a person to confirm"
    assert (confirm in f["reason"]["valueString"]) == (result == "not-met")
    # … and as a part a machine (or the prescreening page) reads
    assert ("toConfirm" in f) == (result == "not-met")
    if "toConfirm" in f:
        assert f["toConfirm"]["valueString"] == "AIDS"


@pytest.mark.parametrize(("conditions", "verdict"), [
    ([("t2d", "44054006")], "eligible"),
    ([], "needs-review"),  # prediabetes, a way in no code states, may be the patient's
])
def test_an_inclusions_condition_in_words_is_another_way_in(
        conditions: list[tuple[str, str]], verdict: str) -> None:
    out = _evaluated("Inclusion Criteria:\n* Diagnosis of type 2 diabetes or prediabetes",
                     conditions)
    assert _verdict(out) == verdict


@pytest.mark.parametrize(("born", "verdict", "result"), [
    # the age met: met, and the words are named for a person to confirm (a criterion in
    # words beside it, which does not change the verdict)
    ("1970-03-01", "eligible", "met"),
    ("2010-03-01", "not-eligible", "not-met"),
])
def test_an_inclusion_ages_words_are_named_for_a_person_to_confirm(
        born: str, verdict: str, result: str) -> None:
    text = "Inclusion Criteria:\n* Patients aged ≥ 18 years with histologically confirmed NSCLC"
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000301", "resource": {
            "resourceType": "Patient", "id": "p1", "birthDate": born}}]}
    out = evaluate(text, bundle, as_of="2026-01-15")
    assert _verdict(out) == verdict
    f = _fact(out, "Age ≥ 18 years, with histologically confirmed NSCLC")
    assert f["result"]["valueCode"] == result
    confirm = "with histologically confirmed NSCLC: text only, for a person to confirm"
    assert (confirm in f["reason"]["valueString"]) == (result == "met")
    assert f.get("toConfirm", {}).get("valueString") == (
        "with histologically confirmed NSCLC" if result == "met" else None)
    Parameters.model_validate(out)


@pytest.mark.parametrize(("conditions", "verdict", "result"), [
    ([], "eligible", "not-met"),  # no asthma: cleared
    ([("asthma", "195967001")], "needs-review", "unknown"),  # asthma: was it hospitalised?
])
def test_an_excluded_condition_with_a_qualifier_excludes_only_with_it(
        conditions: list[tuple[str, str]], verdict: str, result: str) -> None:
    out = _evaluated("Exclusion Criteria:\n* History of asthma, requiring hospitalization",
                     conditions)
    assert _verdict(out) == verdict
    f = _fact(out, "Asthma, requiring hospitalization")
    assert f["result"]["valueCode"] == result


@pytest.mark.parametrize(("value", "ranged", "verdict"), [
    (4.2, True, "eligible"),
    (5.8, True, "not-eligible"),  # above the result's own upper limit
    (3.1, True, "not-eligible"),  # below its lower limit (before, the line was text)
    (4.2, False, "needs-review"),  # a result without a reference range decides nothing
])
def test_within_normal_limits_is_between_the_results_own_limits(
        value: float, ranged: bool, verdict: str) -> None:
    k = _result("k", "2026-01-10", "2823-3", value, "mmol/L", "mmol/L")
    if ranged:
        k["resource"]["referenceRange"] = [{
            "low": {"value": 3.5, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                    "code": "mmol/L"},
            "high": {"value": 5.1, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                     "code": "mmol/L"}}]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [k]}
    out = evaluate("Inclusion Criteria:\n* Potassium within normal limits", bundle,
                   as_of="2026-01-15")
    assert _verdict(out) == verdict
    Parameters.model_validate(out)


@pytest.mark.parametrize(("born", "conditions", "verdict"), [
    ("1940-01-01", [("copd", "13645005")], "not-eligible"),  # over 75 with COPD: out
    ("1940-01-01", [], "eligible"),  # over 75 without COPD: in (before, for review)
    ("1970-01-01", [("copd", "13645005")], "eligible"),  # COPD at 56: in
])
def test_an_excluded_age_with_a_condition_needs_both(
        born: str, conditions: list[tuple[str, str]], verdict: str) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000302", "resource": {
            "resourceType": "Patient", "id": "p1", "birthDate": born}},
        *(_condition(c, s) for c, s in conditions)]}
    out = evaluate("Exclusion Criteria:\n* Patients older than 75 years with COPD", bundle,
                   as_of="2026-01-15")
    assert _verdict(out) == verdict


ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"


def _recorded(cid: str, coding: dict[str, str], text: str | None = None) -> dict[str, Any]:
    """A Condition as an EHR's problem list may carry it: any code system, maybe a text."""
    entry = _condition(cid, "0")
    entry["resource"]["code"] = {"coding": [coding], **({"text": text} if text else {})}
    return entry


def _screened(text: str, *entries: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    out = evaluate(text, {"resourceType": "Bundle", "type": "collection",
                          "entry": list(entries)}, as_of="2026-01-15")
    [row] = _criteria(out)
    [fact] = row["facts"]
    return _verdict(out), fact


@pytest.mark.parametrize(("text", "coding"), [
    # ICD-10-CM, as most problem lists code: before, only the lexicon's SNOMED code counted,
    # and each of these patients was cleared of the exclusion
    ("Known hepatitis C infection", {"system": ICD10CM, "code": "B18.2"}),
    ("Known hepatitis B infection", {"system": ICD10CM, "code": "Z22.51"}),
    ("History of malignancy within 5 years", {"system": ICD10CM, "code": "C50.911"}),
    ("Type 2 diabetes", {"system": ICD10CM, "code": "E11.9"}),
    ("Epilepsy", {"system": "http://hl7.org/fhir/sid/icd-10", "code": "G40.9"}),  # WHO ICD-10
    ("COPD", {"system": ICD10CM, "code": "j44.1"}),  # as written, in lower case
    # a kind of the condition, by its own SNOMED code or its ICD-10-CM one
    ("Interstitial lung disease", {"system": SNOMED, "code": "700250006"}),
    ("Interstitial lung disease", {"system": ICD10CM, "code": "J84.112"}),
    ("Atrial fibrillation", {"system": ICD10CM, "code": "I48.91"}),
    ("Atrial fibrillation", {"system": SNOMED, "code": "49436004"}),
    ("Liver cirrhosis", {"system": ICD10CM, "code": "K70.31"}),
    ("Bipolar disorder", {"system": ICD10CM, "code": "F31.81"}),
    ("Schizophrenia", {"system": ICD10CM, "code": "F20.0"}),
    ("Multiple sclerosis", {"system": ICD10CM, "code": "G35"}),
    ("Rheumatoid arthritis", {"system": ICD10CM, "code": "M05.79"}),
    ("Systemic lupus erythematosus", {"system": ICD10CM, "code": "M32.14"}),
    # a kind's codes are the condition's: type 2 diabetes is diabetes mellitus, an infarction
    # an acute coronary syndrome
    ("Diabetes mellitus", {"system": ICD10CM, "code": "E11.9"}),
    ("Diabetes mellitus", {"system": SNOMED, "code": "46635009"}),
    ("Acute coronary syndrome", {"system": ICD10CM, "code": "I21.4"}),
    ("Acute coronary syndrome", {"system": SNOMED, "code": "4557003"}),
    ("Transient ischemic attack", {"system": ICD10CM, "code": "G45.9"}),
    ("Coronary artery disease", {"system": ICD10CM, "code": "I25.10"}),
    ("Inflammatory bowel disease", {"system": ICD10CM, "code": "K50.90"}),
    ("Inflammatory bowel disease", {"system": SNOMED, "code": "64766004"}),  # its kind, UC
    ("Chronic kidney disease", {"system": ICD10CM, "code": "N18.32"}),
    ("Major depressive disorder", {"system": ICD10CM, "code": "F33.1"}),
    ("Deep vein thrombosis", {"system": ICD10CM, "code": "I82.409"}),
    ("Venous thromboembolism", {"system": ICD10CM, "code": "I26.99"}),
    ("Venous thromboembolism", {"system": SNOMED, "code": "128053003"}),
])
def test_an_excluded_condition_is_met_by_any_code_the_lexicon_gives_it(
        text: str, coding: dict[str, str]) -> None:
    verdict, fact = _screened(f"Exclusion Criteria:\n* {text}", _recorded("c1", coding))
    assert (verdict, fact["result"]["valueCode"]) == ("not-eligible", "met")


@pytest.mark.parametrize(("text", "coding"), [
    # codes beside the condition's: carcinoma in situ is no malignancy, alcoholic cirrhosis no
    # liver failure, a kind's code is not its parent's (IPF is an ILD, not every ILD an IPF)
    ("History of malignancy within 5 years", {"system": ICD10CM, "code": "D05.10"}),
    ("Liver failure", {"system": ICD10CM, "code": "K70.30"}),
    ("Idiopathic pulmonary fibrosis", {"system": ICD10CM, "code": "J84.10"}),
    ("Idiopathic pulmonary fibrosis", {"system": SNOMED, "code": "233703007"}),
    # atrial flutter shares I48 with fibrillation; hepatic fibrosis shares K74 with cirrhosis;
    # schizoaffective disorder is not schizophrenia
    ("Atrial fibrillation", {"system": ICD10CM, "code": "I48.3"}),
    ("Atrial fibrillation", {"system": ICD10CM, "code": "I48.92"}),
    ("Liver cirrhosis", {"system": ICD10CM, "code": "K74.0"}),
    ("Schizophrenia", {"system": ICD10CM, "code": "F25.0"}),
    # transient global amnesia shares G45 with the attacks; prediabetes is no diabetes
    ("Transient ischemic attack", {"system": ICD10CM, "code": "G45.4"}),
    ("Diabetes mellitus", {"system": ICD10CM, "code": "R73.03"}),
    # depression unspecified and premenstrual dysphoric disorder are no major depression; a
    # thrombosis of an unspecified vein is no deep one
    ("Major depressive disorder", {"system": ICD10CM, "code": "F32.A"}),
    ("Major depressive disorder", {"system": ICD10CM, "code": "F32.81"}),
    ("Deep vein thrombosis", {"system": ICD10CM, "code": "I82.90"}),
    # an ICD prefix is read in its own system only
    ("Type 2 diabetes", {"system": "http://loinc.org", "code": "E11"}),
])
def test_a_code_outside_the_conditions_codes_does_not_record_it(
        text: str, coding: dict[str, str]) -> None:
    verdict, fact = _screened(f"Exclusion Criteria:\n* {text}", _recorded("c1", coding))
    assert (verdict, fact["result"]["valueCode"]) == ("eligible", "not-met")


@pytest.mark.parametrize(("coding", "text", "result"), [
    # a narrower SNOMED concept the lexicon does not list, named in its display or text: the
    # record says hepatitis C in words, so a person confirms (before: not met, cleared)
    ({"system": SNOMED, "code": "128302006", "display": "Chronic hepatitis C (disorder)"},
     None, "unknown"),
    ({"system": "urn:oid:1.2.3.4", "code": "HEP-C"}, "Hepatitis C, genotype 1b", "unknown"),
    # words that make the name no record of the patient's own condition
    ({"system": SNOMED, "code": "1", "display": "Family history of hepatitis C"}, None,
     "not-met"),
    ({"system": SNOMED, "code": "1", "display": "Hepatitis C screening"}, None, "not-met"),
    ({"system": SNOMED, "code": "1", "display": "Suspected hepatitis C"}, None, "not-met"),
    ({"system": SNOMED, "code": "1", "display": "Hepatitis C antibody negative"}, None,
     "not-met"),
    # a name inside another word is no name ("hepatitis CMV" is not hepatitis C)
    ({"system": SNOMED, "code": "1", "display": "Hepatitis CMV"}, None, "not-met"),
])
def test_a_condition_recorded_in_words_under_another_code_is_for_a_person_to_confirm(
        coding: dict[str, str], text: str | None, result: str) -> None:
    verdict, fact = _screened("Exclusion Criteria:\n* Known hepatitis C infection",
                              _recorded("c1", coding, text))
    assert fact["result"]["valueCode"] == result
    assert verdict == {"unknown": "needs-review", "not-met": "eligible"}[result]
    if result == "unknown":
        said = text or coding["display"]
        assert fact["reason"]["valueString"].startswith(f"{said!r} recorded: its words name "
                                                        "Viral hepatitis type C")
        assert fact["evidence"]["valueReference"] == {"reference": "Condition/c1"}


def test_an_inclusion_condition_recorded_in_icd_is_met() -> None:
    verdict, fact = _screened("Inclusion Criteria:\n* Diagnosis of type 2 diabetes",
                              _recorded("c1", {"system": ICD10CM, "code": "E11.65"}))
    assert (verdict, fact["result"]["valueCode"]) == ("eligible", "met")


@pytest.mark.parametrize(("onset", "verdict"), [
    ("2015-03-01", "eligible"),  # an infarction ten years before: not within the 6 months
    ("2025-11-20", "not-eligible"),
])
def test_a_window_said_once_for_a_condition_list_dates_each_name(onset: str, verdict: str) -> None:
    mi = _recorded("mi", {"system": ICD10CM, "code": "I21.4"})
    mi["resource"]["onsetDateTime"] = onset
    mi["resource"]["clinicalStatus"] = {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
        "code": "resolved"}]}
    out = evaluate("Exclusion Criteria:\n* Myocardial infarction, stroke or transient ischemic "
                   "attack within 6 months prior to screening",
                   {"resourceType": "Bundle", "type": "collection", "entry": [mi]},
                   as_of="2026-01-15")
    assert _verdict(out) == verdict


@pytest.mark.parametrize(("status", "verdict", "result"), [
    ("confirmed", "not-eligible", "met"),
    (None, "not-eligible", "met"),
    # short of a diagnosis: before, met (a differential diagnosis of hepatitis C turned the
    # patient away, and in an inclusion let them in); now a person confirms
    ("provisional", "needs-review", "unknown"),
    ("differential", "needs-review", "unknown"),
    ("unconfirmed", "needs-review", "unknown"),
    ("refuted", "eligible", "not-met"),  # no diagnosis at all, as before
])
def test_a_tentative_diagnosis_is_for_a_person_to_confirm(
        status: str | None, verdict: str, result: str) -> None:
    hcv = _recorded("c1", {"system": ICD10CM, "code": "B18.2"})
    if status:
        hcv["resource"]["verificationStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": status}]}
    got, fact = _screened("Exclusion Criteria:\n* Known hepatitis C infection", hcv)
    assert (got, fact["result"]["valueCode"]) == (verdict, result)
    if result == "unknown":
        assert fact["reason"]["valueString"] == (f"Viral hepatitis type C recorded "
                                                 f"as {status}: for a person to confirm")


@pytest.mark.parametrize(("egfr", "verdict", "result"), [
    (60, "eligible", "not-met"),  # the bound not met: the words are named to confirm
    (20, "not-eligible", "met"),
])
@pytest.mark.parametrize(("line", "words"), [
    ("eGFR < 30 mL/min/1.73 m² or requiring dialysis", "requiring dialysis"),
    # a serial list after the bound: before, its words were dropped (the patient on dialysis
    # with an eGFR of 60 was cleared, nothing said the line was read only in part)
    ("eGFR < 30 mL/min/1.73 m², dialysis, or kidney transplant", "dialysis, or kidney transplant"),
])
def test_an_exclusion_bounds_words_beside_it_are_named_to_confirm(
        line: str, words: str, egfr: float, verdict: str, result: str) -> None:
    lab = _result("egfr", "2026-01-10", "33914-3", egfr, "mL/min/{1.73_m2}", "mL/min/{1.73_m2}")
    out = evaluate(f"Exclusion Criteria:\n* {line}",
                   {"resourceType": "Bundle", "type": "collection", "entry": [lab]},
                   as_of="2026-01-15")
    assert _verdict(out) == verdict
    [row] = _criteria(out)
    [fact] = row["facts"]
    assert fact["result"]["valueCode"] == result
    assert fact.get("toConfirm", {}).get("valueString") == (
        words if result == "not-met" else None)


def test_the_words_before_an_inclusion_age_are_named_to_confirm() -> None:
    # a man of 56: the age is met, "Postmenopausal women" is not something the age says
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01", "gender": "male"}}]}
    out = evaluate("Inclusion Criteria:\n* Postmenopausal women aged 50-75 years", bundle,
                   as_of="2026-01-15")
    [row] = _criteria(out)
    [fact] = row["facts"]
    assert fact["toConfirm"]["valueString"] == "Postmenopausal women"


ACTIVE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                      "code": "active"}]}
REMISSION = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                         "code": "remission"}]}


@pytest.mark.parametrize(("text", "onset", "extra", "verdict"), [
    # present within the window: a cancer of 2015 in remission since late 2024 was there in
    # the past five years (before, only its onset was compared and the patient was cleared)
    ("Exclusion Criteria:\n* History of malignancy within 5 years", "2015-03-01",
     {"clinicalStatus": REMISSION, "abatementDateTime": "2024-11-01"}, "not-eligible"),
    ("Exclusion Criteria:\n* History of malignancy within 5 years", "2015-03-01",
     {"clinicalStatus": REMISSION, "abatementPeriod": {"start": "2019-01-01"}}, "eligible"),
    # "at least N ago" is the onset's alone: before, an active condition met it whatever its
    # onset, and a diagnosis of last month let the patient in
    ("Inclusion Criteria:\n* Type 2 diabetes diagnosed at least 6 months before screening",
     "2025-12-01", {"clinicalStatus": ACTIVE}, "not-eligible"),
    ("Inclusion Criteria:\n* Type 2 diabetes diagnosed at least 6 months before screening",
     "2024-12-01", {"clinicalStatus": ACTIVE}, "eligible"),
    # how long it has lasted, said after the name: the same (before, the line was text)
    ("Inclusion Criteria:\n* Diabetes mellitus type 2 for at least 6 months", "2025-12-01",
     {"clinicalStatus": ACTIVE}, "not-eligible"),
    ("Inclusion Criteria:\n* Type 2 diabetes of at least 1 year's duration", "2024-12-01",
     {"clinicalStatus": ACTIVE}, "eligible"),
    # "less than N before" is within N: before, read as "at least N before" — a malignancy
    # of last year cleared the patient and one ten years gone excluded them
    ("Exclusion Criteria:\n* History of malignancy less than 5 years prior to screening",
     "2024-06-01", {"clinicalStatus": ACTIVE}, "not-eligible"),
    ("Exclusion Criteria:\n* History of malignancy less than 5 years prior to screening",
     "2015-03-01", {"clinicalStatus": REMISSION, "abatementDateTime": "2016-01-01"}, "eligible"),
    # "at least N ago", "more than N before" (before, text)
    ("Inclusion Criteria:\n* Type 2 diabetes diagnosed at least 1 year ago", "2025-12-01",
     {"clinicalStatus": ACTIVE}, "not-eligible"),
    ("Inclusion Criteria:\n* Type 2 diabetes diagnosed more than 6 months prior to screening",
     "2024-12-01", {"clinicalStatus": ACTIVE}, "eligible"),
])
def test_a_conditions_window_is_read_against_when_it_was_present(
        text: str, onset: str, extra: dict[str, Any], verdict: str) -> None:
    code = "C50.911" if "malignancy" in text else "E11.9"
    cond = _recorded("c1", {"system": ICD10CM, "code": code})
    cond["resource"].update(onsetDateTime=onset, **extra)
    out = evaluate(text, {"resourceType": "Bundle", "type": "collection", "entry": [cond]},
                   as_of="2026-01-15")
    assert _verdict(out) == verdict


@pytest.mark.parametrize(("born", "verdict"), [
    ("2008", "needs-review"),  # 17 or 18 on 2026-01-15: before, 18 (born on January 1st)
    ("2008-01", "needs-review"),  # 18 if born by January 15th, else 17
    ("2007-12", "eligible"),  # 18 whichever day of December 2007
    ("2008-02", "not-eligible"),  # 17 whichever day of February 2008
    ("2007", "eligible"),  # 18 or 19
    ("2008-01-10", "eligible"),
])
def test_a_birth_date_without_its_day_decides_an_age_only_when_every_day_agrees(
        born: str, verdict: str) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "birthDate": born}}]}
    out = evaluate("Inclusion Criteria:\n* Age ≥ 18 years", bundle, as_of="2026-01-15")
    assert _verdict(out) == verdict


@pytest.mark.parametrize(("onset", "verdict"), [
    ("2021", "needs-review"),  # within 5 years of 2026-01-15 only if after January 15th
    ("2021-06", "not-eligible"),  # within them whichever day of June
    ("2020", "eligible"),  # before them whichever day
])
def test_an_onset_without_its_day_decides_a_window_only_when_every_day_agrees(
        onset: str, verdict: str) -> None:
    # (an infarction: an event, whose onset is when it happened)
    cond = _recorded("c1", {"system": ICD10CM, "code": "I21.9"})
    cond["resource"]["onsetDateTime"] = onset
    out = evaluate("Exclusion Criteria:\n* History of myocardial infarction within 5 years",
                   {"resourceType": "Bundle", "type": "collection", "entry": [cond]},
                   as_of="2026-01-15")
    assert _verdict(out) == verdict
    if verdict == "needs-review":
        [row] = _criteria(out)
        assert row["facts"][0]["reason"]["valueString"] == (
            "Myocardial infarction recorded on a date that does not say "
            "whether it is within the previous 5 years")


@pytest.mark.parametrize(("status", "abated", "verdict"), [
    # a cancer of 2015 with no date it ended may have been present in the past five years:
    # before, not met and the patient cleared
    (None, None, "needs-review"),
    ("remission", None, "needs-review"),
    ("resolved", None, "needs-review"),
    ("remission", "2019-06-01", "eligible"),  # ended before the window: not present in it
    ("remission", "2023-06-01", "not-eligible"),  # ended inside it
    ("active", None, "not-eligible"),
])
def test_a_condition_begun_before_a_window_with_no_end_is_for_a_person(
        status: str | None, abated: str | None, verdict: str) -> None:
    cond = _recorded("c1", {"system": ICD10CM, "code": "C50.911"})
    cond["resource"]["onsetDateTime"] = "2015-03-01"
    if status:
        cond["resource"]["clinicalStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": status}]}
    if abated:
        cond["resource"]["abatementDateTime"] = abated
    got, fact = _screened("Exclusion Criteria:\n* History of malignancy within 5 years", cond)
    assert got == verdict
    if verdict == "needs-review":
        assert fact["reason"]["valueString"] == (
            "Malignant neoplastic disease recorded, begun before the window, with no date it "
            "ended: whether it was present within the previous 5 years is for a person to "
            "confirm")


@pytest.mark.parametrize(("with_hf", "verdict"), [
    (False, "eligible"),  # an LVEF of 35 % without heart failure (before: excluded)
    (True, "not-eligible"),
])
def test_an_excluded_condition_with_a_bound_needs_both(with_hf: bool, verdict: str) -> None:
    entries = [_result("ef", "2026-01-10", "10230-1", 35, "%", "%")]
    if with_hf:
        entries.append(_recorded("hf", {"system": ICD10CM, "code": "I50.22"}))
    out = evaluate("Exclusion Criteria:\n* Heart failure with LVEF < 40%",
                   {"resourceType": "Bundle", "type": "collection", "entry": entries},
                   as_of="2026-01-15")
    assert _verdict(out) == verdict


@pytest.mark.parametrize(("line", "code", "verdict"), [
    ("Pregnant women", "Z34.82", "not-eligible"),  # supervision of a normal pregnancy (before:
    #                                                unknown)
    ("Pregnant women", "O09.523", "not-eligible"),  # supervision of a high-risk pregnancy
    ("Pregnant women", "Z33.1", "not-eligible"),  # pregnant state, incidental
    ("Pregnant women", "Z39.2", "needs-review"),  # routine postpartum follow-up: no pregnancy
    #                                               now, no status
    # care and examination of a lactating mother (before: unknown); a postpartum follow-up
    # does not say whether she nurses
    ("Breastfeeding women", "Z39.1", "not-eligible"),
    ("Breastfeeding women", "Z39.2", "needs-review"),
])
def test_a_pregnancy_or_lactation_on_the_problem_list_in_icd_10_cm_is_one(
        line: str, code: str, verdict: str) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "gender": "female",
                      "birthDate": "1990-01-01"}},
        _recorded("state", {"system": ICD10CM, "code": code})]}
    out = evaluate(f"Exclusion Criteria:\n* {line}", bundle, as_of="2026-01-15")
    assert _verdict(out) == verdict


@pytest.mark.parametrize(("status", "abated", "verdict"), [
    ("active", None, "not-eligible"),
    ("relapse", None, "not-eligible"),
    (None, None, "not-eligible"),  # on the problem list, no status, no end: taken as current
    ("resolved", "2018-03-01", "eligible"),  # treated years ago (before: excluded)
    ("remission", None, "eligible"),
    ("inactive", None, "eligible"),
    (None, "2020-01-01", "eligible"),  # abated, no status
    (None, "2026-06-01", "not-eligible"),  # an abatement after the assessment: present at it
    ("unknown", None, "not-eligible"),  # a status that says nothing: as none (not cleared)
    ("unknown", "2019-01-01", "eligible"),
    (None, {"abatementString": "resolved in childhood"}, "eligible"),  # over, no date
    (None, {"abatementAge": {"value": 12, "unit": "a"}}, "eligible"),
])
def test_an_active_condition_is_one_present_at_the_assessment(
        status: str | None, abated: str | dict[str, Any] | None, verdict: str) -> None:
    entry = _recorded("tb", {"system": SNOMED, "code": "56717001"})
    res = entry["resource"]
    res["onsetDateTime"] = "2015-01-01"
    if status:
        res["clinicalStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": status}]}
    else:
        res.pop("clinicalStatus", None)
    if isinstance(abated, dict):
        res.update(abated)
    elif abated:
        res["abatementDateTime"] = abated
    got, fact = _screened("Exclusion Criteria:\n* Active tuberculosis", entry)
    assert got == verdict
    assert fact["reason"]["valueString"] == (
        "Tuberculosis recorded, current" if verdict == "not-eligible"
        else "Tuberculosis recorded, not current")
    # "history of" asks for any time: the same patients are all excluded
    got, _ = _screened("Exclusion Criteria:\n* History of tuberculosis", entry)
    assert got == "not-eligible"


def test_an_adult_without_either_value_does_not_meet_age_and_an_or_of_bounds() -> None:
    # "Age ≥ 18 years; hemoglobin ≥ 10 g/dL or hematocrit ≥ 30 %": before, the age alone met
    # the line (read as any one of the three), and this patient was eligible
    entries = [_result("h", "2026-01-10", "718-7", 8, "g/dL", "g/dL"),
               _result("c", "2026-01-10", "4544-3", 25, "%", "%"),
               {"resource": {"resourceType": "Patient", "id": "p1", "gender": "male",
                             "birthDate": "1990-01-01"}}]
    out = evaluate("Inclusion Criteria:\n* Age ≥ 18 years; hemoglobin ≥ 10 g/dL or "
                   "hematocrit ≥ 30%",
                   {"resourceType": "Bundle", "type": "collection",
                    "entry": entries}, as_of="2026-01-15")
    assert _verdict(out) == "not-eligible"


@pytest.mark.parametrize(("criterion", "display", "result"), [
    # kinds the record names in words the criteria never use: before, each was "no Condition
    # coded …" (not met), and a patient with leukemia was cleared of a malignancy exclusion
    ("History of malignancy", "Acute myeloid leukemia (disorder)", "unknown"),
    ("History of malignancy", "Carcinoma of breast (disorder)", "unknown"),
    ("History of malignancy", "Diffuse large B-cell lymphoma (disorder)", "unknown"),
    ("Known HIV infection", "Human immunodeficiency virus disease", "unknown"),
    ("COPD", "Pulmonary emphysema (disorder)", "unknown"),
    ("Dementia", "Alzheimer's disease (disorder)", "unknown"),
    # still not a record of the patient's own condition
    ("History of malignancy", "Family history of leukemia", "not-met"),
    # a record of another condition: not met, as before
    ("History of malignancy", "Essential hypertension (disorder)", "not-met"),
])
def test_a_kind_named_in_a_records_words_is_for_a_person_to_confirm(
        criterion: str, display: str, result: str) -> None:
    verdict, fact = _screened(f"Exclusion Criteria:\n* {criterion}", _recorded(
        "c1", {"system": SNOMED, "code": "1", "display": display}))
    assert fact["result"]["valueCode"] == result
    assert verdict == {"unknown": "needs-review", "not-met": "eligible"}[result]


def test_record_words_are_not_read_in_criteria() -> None:
    # "carcinoma in situ" is no malignancy: the words a record may use are not criterion names
    assert not [f for f in facts_for("History of carcinoma", True) if f.kind == "condition"]


@pytest.mark.parametrize(("recorded", "verdict"), [
    # entered last month, onset not given: it may have begun years ago (before: met, the
    # recorded date taken for the onset — a 2015 infarction on a new clinic's list excluded)
    ("2025-12-01", "needs-review"),
    ("2015-03-01", "eligible"),  # recorded in 2015: begun by then, so not within 6 months
])
def test_a_recorded_date_bounds_the_onset_it_does_not_give(recorded: str, verdict: str) -> None:
    entry = _recorded("mi", {"system": SNOMED, "code": "22298006"})
    entry["resource"].pop("onsetDateTime", None)
    entry["resource"]["recordedDate"] = recorded
    got, fact = _screened("Exclusion Criteria:\n* Myocardial infarction within the past 6 months",
                          entry)
    assert got == verdict
    assert fact["result"]["valueCode"] == {"needs-review": "unknown",
                                           "eligible": "not-met"}[verdict]


def test_a_results_effective_instant_is_its_date_not_when_it_was_issued() -> None:
    # sampled 40 days before the assessment, reported 20 days before: outside "within 28 days"
    # (before, the issue date was read first and the stale result counted)
    obs = _result("hb", "2025-12-06", "718-7", 12, "g/dL", "g/dL")
    res = obs["resource"]
    res.pop("effectiveDateTime")
    res["effectiveInstant"] = "2025-12-06T08:00:00Z"
    res["issued"] = "2025-12-26T08:00:00Z"
    out = evaluate("Inclusion Criteria:\n* Hemoglobin ≥ 9 g/dL within 28 days prior to "
                   "enrollment", {"resourceType": "Bundle", "type": "collection",
                                  "entry": [obs]}, as_of="2026-01-15")
    assert _verdict(out) != "eligible"


@pytest.mark.parametrize(("line", "reported", "result"), [
    # "eGFR > 60" is what many laboratories report above 60: it meets "≥ 60" and fails "< 30"
    # but says nothing of "≥ 90" (before: the value was read as 60 exactly, and the patient
    # failed the bound)
    ("Inclusion Criteria:\n* eGFR ≥ 90 mL/min/1.73 m2", (">", 60), "unknown"),
    ("Inclusion Criteria:\n* eGFR ≥ 60 mL/min/1.73 m2", (">", 60), "met"),
    ("Inclusion Criteria:\n* eGFR > 60 mL/min/1.73 m2", (">", 60), "met"),
    ("Exclusion Criteria:\n* eGFR < 30 mL/min/1.73 m2", (">", 60), "not-met"),
    ("Exclusion Criteria:\n* eGFR < 30 mL/min/1.73 m2", ("<", 30), "met"),
    ("Inclusion Criteria:\n* eGFR 30-59 mL/min/1.73 m2", ("<", 30), "not-met"),
    ("Inclusion Criteria:\n* eGFR ≥ 25 mL/min/1.73 m2", ("<", 30), "unknown"),
    # "ad" (sufficient to achieve), or no comparator FHIR knows: what the value is, unsaid
    ("Inclusion Criteria:\n* eGFR ≥ 25 mL/min/1.73 m2", ("ad", 30), "unknown"),
    ("Inclusion Criteria:\n* eGFR ≥ 25 mL/min/1.73 m2", (">>", 30), "unknown"),
])
def test_a_result_reported_beyond_a_value_is_a_range_of_values(
        line: str, reported: tuple[str, float], result: str) -> None:
    comparator, value = reported
    obs = _result("g", "2026-01-10", "33914-3", value, "mL/min/{1.73_m2}", "mL/min/{1.73_m2}")
    obs["resource"]["valueQuantity"]["comparator"] = comparator
    out = evaluate(line, {"resourceType": "Bundle", "type": "collection", "entry": [obs]},
                   as_of="2026-01-15")
    [row] = _criteria(out)
    [fact] = row["facts"]
    assert fact["result"]["valueCode"] == result
    assert comparator in fact["reason"]["valueString"]


def test_a_pregnancy_of_unknown_clinical_status_is_still_recorded() -> None:
    # R5's "unknown" clinical status says neither that it holds nor that it is over: before,
    # read as over, the pregnancy was ignored and the patient was "no record of pregnancy"
    entry = _recorded("preg", {"system": ICD10CM, "code": "Z33.1"})
    entry["resource"]["clinicalStatus"] = {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "unknown"}]}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "gender": "female",
                      "birthDate": "1990-01-01"}}, entry]}
    out = evaluate("Exclusion Criteria:\n* Pregnant women", bundle, as_of="2026-01-15")
    assert _verdict(out) == "not-eligible"
