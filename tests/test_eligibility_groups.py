"""Groups of bounds joined by "or" ("fasting glucose < 7.0 and 2-hour glucose ≥ 7.8, or fasting
glucose ≥ 6.1 and 2-hour glucose < 7.8"): one criterion met by any one group, each group
whole. Read only where that is clear; a list ("A, B, or C") and "A and B or C" stay as they
were. Lines written for these tests."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhirtrial.eligibility import criteria_for
from fhirtrial.eligibility.criteria import EITHER, GROUP
from fhirtrial.eligibility.fhir import characteristic, fact_text
from fhirtrial.eligibility.match import evaluate

GLUCOSE = ("Fasting glucose < 7.0 mmol/L and 2-hour glucose ≥ 7.8 mmol/L OR fasting glucose "
           "≥ 6.1 mmol/L and 2-hour glucose < 7.8 mmol/L")
BLOOD = "Hemoglobin < 9 g/dL and platelets < 100 × 10^9/L, or ANC < 1.0 × 10^9/L"


def _criterion(text: str, exclude: bool) -> Any:
    [c] = criteria_for(f"{'Exclusion' if exclude else 'Inclusion'} Criteria:\n* {text}")
    return c


@pytest.mark.parametrize("exclude", [False, True])
def test_groups_joined_by_or_are_alternatives_each_whole(exclude: bool) -> None:
    c = _criterion(GLUCOSE, exclude)
    assert c.combination == "any-of"
    assert [f.kind for f in c.facts] == [GROUP, GROUP]
    assert [[fact_text(m) for m in f.data["facts"]] for f in c.facts] == [
        ["Glucose < 7 mmol/L", "Glucose 2 hours after a glucose load or meal ≥ 7.8 mmol/L"],
        ["Glucose ≥ 6.1 mmol/L", "Glucose 2 hours after a glucose load or meal < 7.8 mmol/L"]]


def test_a_group_is_an_all_of_inside_the_criterions_any_of() -> None:
    ch = characteristic(_criterion(BLOOD, True))
    combo = ch["definitionByCombination"]
    assert combo["code"] == "any-of"
    first, second = combo["characteristic"]
    assert first["definitionByCombination"]["code"] == "all-of"
    assert [m["definitionByTypeAndValue"]["type"]["coding"][0]["code"]
            for m in first["definitionByCombination"]["characteristic"]] == ["718-7", "777-3"]
    assert second["definitionByTypeAndValue"]["type"]["coding"][0]["code"] == "751-8"
    assert first["description"] == "Haemoglobin < 9 g/dL and Platelet count < 100 × 10⁹/L"


@pytest.mark.parametrize("text", [
    # a list: its commas take the last joint
    "ALT ≤ 2.5 × ULN, AST ≤ 2.5 × ULN, total bilirubin ≤ 2 × ULN, or creatinine ≤ 3 × ULN",
    # "A and B or C" could be "A and (B or C)"
    "Hemoglobin ≥ 9 g/dL and platelets ≥ 100 × 10^9/L or ANC ≥ 1.5 × 10^9/L",
])
def test_what_may_not_be_groups_is_read_as_before(text: str) -> None:
    for exclude in (False, True):
        assert GROUP not in [f.kind for f in _criterion(text, exclude).facts]


def _obs(code: str, value: float, unit: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "effectiveDateTime": "2024-01-01",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                              "code": unit}}


def _verdict(text: str, exclude: bool, *obs: dict[str, Any]) -> str:
    entries = [{"resource": {"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01",
                             "gender": "female"}}]
    entries += [{"resource": {"id": f"o{i}", **o}} for i, o in enumerate(obs)]
    out = evaluate(f"{'Exclusion' if exclude else 'Inclusion'} Criteria:\n* {text}",
                   {"resourceType": "Bundle", "type": "collection", "entry": entries},
                   as_of=date(2024, 1, 2))
    return out["parameter"][0]["valueCode"]


def test_a_patient_meeting_one_group_meets_the_inclusion() -> None:
    # impaired glucose tolerance with a normal fasting glucose: the first group. Read as one
    # list of bounds, the fasting glucose had to be ≥ 6.1 as well
    first = (_obs("2345-7", 5.5, "mmol/L"), _obs("12610-2", 8.5, "mmol/L"))
    assert _verdict(GLUCOSE, False, *first) == "eligible"
    second = (_obs("2345-7", 6.5, "mmol/L"), _obs("12610-2", 7.0, "mmol/L"))
    assert _verdict(GLUCOSE, False, *second) == "eligible"
    neither = (_obs("2345-7", 5.5, "mmol/L"), _obs("12610-2", 7.0, "mmol/L"))
    assert _verdict(GLUCOSE, False, *neither) == "not-eligible"


def test_an_exclusion_group_excludes_only_whole() -> None:
    low_hb_only = (_obs("718-7", 8.0, "g/dL"), _obs("777-3", 150, "10*9/L"),
                   _obs("751-8", 2.0, "10*9/L"))
    assert _verdict(BLOOD, True, *low_hb_only) == "eligible"
    both = (_obs("718-7", 8.0, "g/dL"), _obs("777-3", 80, "10*9/L"), _obs("751-8", 2.0, "10*9/L"))
    assert _verdict(BLOOD, True, *both) == "not-eligible"
    low_anc = (_obs("718-7", 12.0, "g/dL"), _obs("777-3", 150, "10*9/L"),
               _obs("751-8", 0.8, "10*9/L"))
    assert _verdict(BLOOD, True, *low_anc) == "not-eligible"


def test_a_bound_repeated_in_a_later_group_belongs_to_that_group() -> None:
    text = ("Impaired glucose tolerance: fasting glucose < 7.0 mmol/L and 2-hour glucose ≥ 7.8 "
            "mmol/L OR normal glucose tolerance: fasting glucose < 6.1 mmol/L and 2-hour "
            "glucose ≥ 7.8 mmol/L")
    c = _criterion(text, False)
    assert [len(f.data["facts"]) for f in c.facts] == [2, 2]
    # one line restating its bound is still one bound
    [f] = _criterion("Hemoglobin (Hb) < 12 g/dL", False).facts
    assert fact_text(f) == "Haemoglobin < 12 g/dL"


# --- a part between semicolons that offers its own "or" -----------------------------------------

ORGAN = ("Adequate organ function: hemoglobin ≥ 9 g/dL; creatinine ≤ 1.5 mg/dL or creatinine "
         "clearance ≥ 50 mL/min; platelets ≥ 100 × 10^9/L")


def test_a_part_with_its_own_or_is_one_any_of_among_the_required_parts() -> None:
    c = _criterion(ORGAN, False)
    assert c.combination == "all-of"
    assert [f.kind for f in c.facts] == ["lab", EITHER, "lab"]
    assert [fact_text(m) for m in c.facts[1].data["facts"]] == [
        "Creatinine ≤ 1.5 mg/dL", "Creatinine clearance ≥ 50 mL/min"]
    member = characteristic(c)["definitionByCombination"]["characteristic"][1]
    assert member["definitionByCombination"]["code"] == "any-of"
    assert member["description"] == "Creatinine ≤ 1.5 mg/dL or Creatinine clearance ≥ 50 mL/min"


def test_a_patient_meeting_either_bound_of_the_part_meets_it() -> None:
    # creatinine 2.0 mg/dL with a clearance of 60: read as a list of bounds, the creatinine
    # alone made the patient not eligible
    hb, plt = _obs("718-7", 10.0, "g/dL"), _obs("777-3", 150, "10*9/L")
    assert _verdict(ORGAN, False, hb, plt, _obs("2160-0", 2.0, "mg/dL"),
                    _obs("2164-2", 60, "mL/min")) == "eligible"
    assert _verdict(ORGAN, False, hb, plt, _obs("2160-0", 2.0, "mg/dL"),
                    _obs("2164-2", 40, "mL/min")) == "not-eligible"
    assert _verdict(ORGAN, False, hb, plt, _obs("2160-0", 2.0, "mg/dL")) == "needs-review"


@pytest.mark.parametrize("text", [
    # "A, B or C" in one part could be "(A and B) or C", or three ways in
    "Hemoglobin ≥ 9 g/dL, creatinine ≤ 1.5 mg/dL or creatinine clearance ≥ 50 mL/min; "
    "platelets ≥ 100 × 10^9/L",
    # no semicolon: as before
    "Hemoglobin ≥ 9 g/dL and creatinine ≤ 1.5 mg/dL or creatinine clearance ≥ 50 mL/min",
])
def test_what_may_not_be_a_part_with_its_own_or_is_read_as_before(text: str) -> None:
    assert EITHER not in [f.kind for f in _criterion(text, False).facts]


def test_an_age_with_a_bound_excludes_only_together() -> None:
    # the old with poor renal function are excluded, not everyone over 65 nor every patient
    # with a low clearance
    c = _criterion("Age > 65 years and creatinine clearance < 50 mL/min", True)
    assert [f.kind for f in c.facts] == [GROUP]
    assert [fact_text(m) for m in c.facts[0].data["facts"]] == [
        "Age > 65 years", "Creatinine clearance < 50 mL/min"]
    young_low = (_obs("2164-2", 40, "mL/min"),)
    assert _verdict("Age > 65 years and creatinine clearance < 50 mL/min", True,
                    *young_low) == "eligible"  # (the patient is 54)


@pytest.mark.parametrize(("text", "words", "verdict"), [
    ("Patients older than 80 years with frailty", "with frailty", "eligible"),
    ("Women aged ≥ 50 years with a history of fracture", "with a history of fracture",
     "needs-review"),
    # (the age's own "of age"/"old" are not the words)
    ("Patients older than 80 years of age with frailty", "with frailty", "eligible"),
    ("Subjects over 75 years old who are frail", "who are frail", "eligible"),
])
def test_an_excluded_age_that_holds_only_with_words_goes_with_them(text: str, words: str,
                                                                   verdict: str) -> None:
    # read alone the age (and the sex) would exclude everyone over 80, every woman over 50;
    # with its words it clears those under it and leaves those over it to review (the patient
    # is a woman of 54)
    facts = _criterion(text, True).facts
    ages = [m for f in facts for m in (f.data["facts"] if f.kind == GROUP else [f])
            if m.kind == "age"]
    assert [a.data["with"] for a in ages] == [[words]]
    assert _verdict(text, True) == verdict
