"""Bounds on measurements the lexicon does not have ("Pupil > 4 mm", "Cobb angle between 10
and 40 degrees"): the number, comparator and unit are read, the name is kept as written and
uncoded; a matcher answers unknown for them. What is in doubt stays text. Lines written for
these tests."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhirtrial.eligibility import criteria_for, facts_for
from fhirtrial.eligibility.fhir import characteristic, fact_text
from fhirtrial.eligibility.match import evaluate


def _measured(text: str, exclude: bool | None = False) -> list[tuple]:
    return [(f.data["name"], f.data["low"], f.data["high"], f.data["low_inclusive"],
             f.data["high_inclusive"], f.data["unit"])
            for f in facts_for(text, exclude) if f.kind == "measurement"]


@pytest.mark.parametrize(("text", "want"), [
    ("Pupil > 4 mm", [("Pupil", 4, None, False, True, "mm")]),
    ("The participant's knee flexion contracture is between 10 and 40 degrees.",
     [("knee flexion contracture", 10, 40, True, True, "deg")]),
    ("Axial deformity ≤ 5°", [("Axial deformity", None, 5, True, True, "deg")]),
    ("Prostate volume < 60 cc on MRI", [("Prostate volume", None, 60, True, False, "mL")]),
    ("Residual limb length greater than 6.5 inches", [
        ("Residual limb length", 6.5, None, False, True, "[in_i]")]),
    ("Fluid overload ≥1.1L.", [("Fluid overload", 1.1, None, True, True, "L")]),
    ("Masses greater than 30 mm and/or calcifications > 20 mm",
     [("Masses", 30, None, False, True, "mm"), ("calcifications", 20, None, False, True, "mm")]),
    ("Distraction range was between 15-20 mm.",
     [("Distraction range", 15, 20, True, True, "mm")]),
    ("Plaque index score less than 30%", [("Plaque index score", None, 30, True, False, "%")]),
    ("Serum galactomannan index ≥ 0.5 ng/mL",
     [("Serum galactomannan index", 0.5, None, True, True, "ng/mL")]),
    # the comparison after the number and its unit
    ("Framingham risk score (10 % or above)",
     [("Framingham risk score", 10, None, True, True, "%")]),
    ("Post-void residual volume 100 mL or less",
     [("Post-void residual volume", None, 100, True, True, "mL")]),
])
def test_a_bound_with_a_unit_on_an_unknown_name_is_read_with_the_name_as_written(
        text: str, want: list[tuple]) -> None:
    assert _measured(text) == want


@pytest.mark.parametrize(("text", "want"), [
    ("Dubois memory test ≥ 9", [("Dubois memory test", 9, None, True, True, "{score}")]),
    ("Alcohol Contemplation Ladder score of 9 or 10.",
     [("Alcohol Contemplation Ladder score", 9, 10, True, True, "{score}")]),
    ("Lysholm knee scale < 65 points", [("Lysholm knee scale", None, 65, True, False, "{score}")]),
    ("Clinical LS score ≥ 4", [("Clinical LS score", 4, None, True, True, "{score}")]),
])
def test_a_named_score_without_a_unit_is_read_as_a_score(text: str, want: list[tuple]) -> None:
    assert _measured(text) == want


@pytest.mark.parametrize("text", [
    "Tinetti balance test score 10",  # a number alone is not an exact score
    "Score ≥ 20",  # a score of what?
    "HAMD24 item 1 ≥ 2 and total score ≥ 20",  # "total score": still of what?
    "UPDRS-III score ≥ 20",  # the end of a lexicon name: its reading decides
    "Dubois 5 words test ≥ 9",  # the name goes on past a number
    "Dubois five words test ≥ 9",
    "Pain questionnaire ≥ 4 for 3 days",  # a duration after the bound
    "Fatigue scale > 4 mg",  # a unit: not a score
])
def test_what_is_not_a_named_score_stays_text(text: str) -> None:
    assert _measured(text) == []


@pytest.mark.parametrize("text", [
    "Prednisone > 10 mg/day",  # a dose
    "History of stroke > 6 months ago",  # a time, not a measurement
    "No more than 2 hospital admissions",  # a count without a unit
    "Score > 5 in both eyes",  # no unit
    "Hemoglobin < 11 g/dL in women",  # a lexicon name: its reading decides (here: text)
    "Have a varus angle or valgus ≥ 15 °",  # a list sharing the bound: whose?
    "Thrombocytopenia < 150 G/L",  # a disorder named by a measurement it does not say
    "Urine output < 0.5 mL/kg/h",  # the unit goes on past what was read
    "Rash must cover less than 10% of body surface area",  # a verb, not a name
    "Axial deformity of the lower limbs ≤ 5 °",  # "limbs" is the end of a longer name
    # … so are words after "in" or "to" (before, "bone marrow ≥ 10 %" and "lung > 20 Gy" were
    # named for a person to confirm, measuring neither)
    "Monoclonal plasma cells in bone marrow ≥ 10%",
    "Cumulative dose of radiation to the lung > 20 Gy",
    "No pupil > 4 mm",  # denied
    "Fetal heart rate > 160 /min",  # someone else's
    "Weight loss > 5 kg in the past month",  # the lexicon's name, a change
    "Tumour ≤ 3 × ULN",  # a reference multiple needs a concept
    "Pupil 4 mm",  # a number and a unit, no comparison
    "Prostate volume 30-80 mL",  # a range without "between": a size class as often as a bound
    "At least 25 follicles (2-9 mm)",
    "Proptosis ≥ 3 mm above normal for race and gender",  # a difference from a limit
    "Vitamin D deficiency by serum level < 50 nmol/L",  # "serum level": of what?
    "Peak expiratory flow ≤ 80% of personal best",  # a share of the patient's own best
    # standard deviations from a norm: no level without a concept
    "Score on any neuropsychological test of 1.5 SDs or more outside the age norm",
])
def test_what_is_in_doubt_stays_text(text: str) -> None:
    assert _measured(text) == []


@pytest.mark.parametrize(("text", "want"), [
    # units no lexicon entry measures in, read only on uncoded names (mappings: uncoded.units)
    ("Total body irradiation ≥ 1200 cGy", [("Total body irradiation", 1200, None, True, True,
                                           "cGy")]),
    ("Prior mediastinal radiotherapy > 30 Gy", [("mediastinal radiotherapy", 30, None,
                                                False, True, "Gy")]),
    ("Tricuspid regurgitation velocity > 3.4 m/s",
     [("Tricuspid regurgitation velocity", 3.4, None, False, True, "m/s")]),
    ("Usual gait speed below 0.8 m/s", [("Usual gait speed", None, 0.8, True, False, "m/s")]),
    # refraction in diopters, cell densities, exhaled gases in ppb, indexed volumes
    ("Spherical equivalent ≤ -0.75 diopters",
     [("Spherical equivalent", None, -0.75, True, True, "[diop]")]),
    ("Endothelial cell density ≥ 2000 cells/mm2",
     [("Endothelial cell density", 2000, None, True, True, "{cells}/mm2")]),
    ("FeNO ≥ 25 ppb", [("FeNO", 25, None, True, True, "[ppb]")]),
    ("LAVI > 34 mL/m2", [("LAVI", 34, None, False, True, "mL/m2")]),
    # a name ending in "pH" bounds a number without a unit, in pH (uncoded.heads)
    ("Vaginal pH 4.0-4.5", [("Vaginal pH", 4.0, 4.5, True, True, "[pH]")]),
    ("Gastric pH > 4 at screening", [("Gastric pH", 4, None, False, True, "[pH]")]),
])
def test_units_and_heads_the_lexicon_declares_for_uncoded_names(text: str,
                                                                 want: list[tuple]) -> None:
    assert _measured(text) == want


@pytest.mark.parametrize("text", [
    "pH < 7.1",  # pH of what?
    "Vaginal pH 4 to 5 ng/mL",  # a written unit is not a pH
    "Vaginal pH 15",  # no pH is 15 (and a number alone is no bound)
])
def test_a_ph_without_a_specimen_or_with_a_unit_stays_text(text: str) -> None:
    assert _measured(text) == []


@pytest.mark.parametrize(("text", "want"), [
    # the bound in brackets right after the name
    ("Enlarged thyroid volume (> 18 mL) on ultrasound",
     [("thyroid volume", 18, None, False, True, "mL")]),
    ("Slow walking speed (< 1 m/s), or low grip strength",
     [("walking speed", None, 1, True, False, "m/s")]),
    ("Pupil diameter (≥ 3 mm) (either eye)", [("Pupil diameter", 3, None, True, True, "mm")]),
])
def test_a_bound_in_brackets_after_the_name_is_read(text: str, want: list[tuple]) -> None:
    assert _measured(text, exclude=True) == want


@pytest.mark.parametrize("text", [
    "A wound too deep for suturing (> 12 mm)",  # the bracket measures the wound
    "Tumours with a low (< 5 %) recurrence rate",  # the name follows the bracket
    "Anti-Müllerian hormone age appropriate (≥ 2.3 ng/mL)",  # "age appropriate" names nothing
    "Thyroid volume (> 18 mL if measured by CT)",  # the bracket says more than the bound
    "Increased (> 18 mL)",  # a judgement is not a name
])
def test_a_bracketed_bound_whose_name_is_in_doubt_stays_text(text: str) -> None:
    assert _measured(text, exclude=True) == []


def test_the_characteristic_is_typed_by_text_with_a_ucum_value() -> None:
    [c] = criteria_for("Inclusion Criteria:\n* Knee flexion contracture between 10 and 40 "
                       "degrees")
    d = characteristic(c)["definitionByTypeAndValue"]
    assert d["type"] == {"text": "Knee flexion contracture"}  # no coding: no code is claimed
    ucum = "http://unitsofmeasure.org"
    assert d["valueRange"] == {"low": {"value": 10, "unit": "deg", "system": ucum,
                                       "code": "deg"},
                               "high": {"value": 40, "unit": "deg", "system": ucum,
                                        "code": "deg"}}


def test_the_reading_is_in_units_a_clinician_writes() -> None:
    [c] = criteria_for("Inclusion Criteria:\n* Residual limb length greater than 6.5 inches "
                       "and pupil > 4 mm")
    ch = characteristic(c)
    texts = [m["description"] for m in ch["definitionByCombination"]["characteristic"]]
    assert texts == ["Residual limb length > 6.5 in", "Pupil > 4 mm"]
    assert [fact_text(f) for f in facts_for("Temperature > 38.5 °C and platelets "
                                            "≥ 100 × 10⁹/L")] == [
        "Body temperature > 38.5 °C", "Platelet count ≥ 100 × 10⁹/L"]
    # a pH has no unit a clinician writes; radiation doses and speeds keep theirs
    assert [fact_text(f) for f in facts_for("Arterial pH < 7.2 and gastric pH > 4")] == [
        "pH of Arterial blood < 7.2", "Gastric pH > 4"]
    assert [fact_text(f) for f in facts_for("TBI ≥ 1200 cGy and gait speed < 0.8 m/s")] == [
        "TBI ≥ 1200 cGy", "Gait speed < 0.8 m/s"]


def _patient(*resources: dict[str, Any]) -> dict[str, Any]:
    entries = [{"resource": {"resourceType": "Patient", "id": "p", "birthDate": "1960-01-01",
                             "gender": "female"}}]
    entries += [{"resource": {"id": f"r{i}", **r}} for i, r in enumerate(resources)]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def test_a_matcher_answers_unknown_and_names_the_measurement() -> None:
    # an Observation carrying the same words is still not evidence: nothing coded to compare
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "Pupil"},
           "effectiveDateTime": "2024-01-01",
           "valueQuantity": {"value": 6, "unit": "mm", "system": "http://unitsofmeasure.org",
                             "code": "mm"}}
    out = evaluate("Inclusion Criteria:\n* Pupil > 4 mm", _patient(obs), as_of=date(2024, 1, 2))
    assert out["parameter"][0]["valueCode"] != "eligible"
    [crit] = [p for p in out["parameter"] if p["name"] == "criterion"
              and any(x.get("valueString") == "Pupil > 4 mm" for x in p["part"])]
    [fact] = [x for x in crit["part"] if x["name"] == "fact"]
    row = {y["name"]: next(v for k, v in y.items() if k.startswith("value"))
           for y in fact["part"]}
    assert row["result"] == "unknown"
    assert row["reason"].startswith("Pupil is not a coded measurement")


@pytest.mark.parametrize(("text", "want"), [
    ("Age 13-17 years or 19-21 years", "Age 13 to 17 years or 19 to 21 years"),
    ("Aged 14-16 years, or 17-19 if still attending school",
     "Age 14 to 16 years or 17 to 19 years (if still attending school)"),
])
def test_a_range_with_an_alternative_names_both_in_its_reading(text: str, want: str) -> None:
    [f] = [f for f in facts_for(text, False) if f.kind == "age"]
    assert fact_text(f) == want


def test_a_name_after_or_that_follows_a_statement_with_its_own_bound_is_read() -> None:
    # "… using dynamometer or slowly gait speed": the words before "or" end the handgrip
    # statement (its bound in brackets), they are no list of names sharing one bound
    text = ("Subject has lower handgrip strength (<26 kg in men; <18 kg in women) using "
            "dynamometer (CAMRY®, Zhongshan, Guangdong) or slowly gait speed (<1 m/s)")
    assert _measured(text) == [("gait speed", None, 1, True, False, "m/s")]


@pytest.mark.parametrize(("text", "name"), [
    # the verb that gives a size is not part of the name
    ("Extensive calcifications extending more than 20 mm", "Extensive calcifications"),
    # … while a verb of extent stays: what the share is of is the name's ("Bone loss affecting
    # > 30 % of the teeth")
    ("Bone loss affecting >30% of the existing teeth", "Bone loss affecting"),
    # a word the blanked remark left twice is named once
    ("Patient whose Neurological severity score (NSS) score is ≥ 3.",
     "Neurological severity score"),
])
def test_the_name_as_a_clinician_would_write_it(text: str, name: str) -> None:
    [f] = [f for f in facts_for(text, True) if f.kind == "measurement"]
    assert f.data["name"] == name
