"""Structured facts read from criterion text: the seed trial's criteria, and phrases that must
stay text-only."""

from __future__ import annotations

import json
import time

import pytest

from conftest import FIXTURES
from fhirtrial.eligibility import criteria_for, facts_for
from fhirtrial.eligibility.criteria import EITHER, GROUP

SEED_TEXT = json.loads((FIXTURES / "seed" / "NCT06534528.json").read_text(encoding="utf-8"))[
    "protocolSection"]["eligibilityModule"]["eligibilityCriteria"]


def _criterion(start: str):
    [c] = [c for c in criteria_for(SEED_TEXT) if c.text.startswith(start)]
    return c


def _labs(c) -> dict[str, dict]:
    return {f.data["test"]: f.data for f in c.facts if f.kind == "lab"}


ULN_BOUNDS = [("alt", 2.5), ("ast", 2.5), ("bilirubin-total", 2), ("bilirubin-direct", 1.5),
              ("creatinine", 3)]


@pytest.mark.parametrize(("test", "multiple"), ULN_BOUNDS, ids=[t for t, _ in ULN_BOUNDS])
def test_seed_liver_and_kidney_limits_are_multiples_of_uln(test: str, multiple: float) -> None:
    c = _criterion("Blood biochemistry")
    d = _labs(c)[test]
    assert (d["high"], d["high_inclusive"], d["low"], d["relative"]) == (multiple, True, None,
                                                                         "ULN")
    assert not c.exclude


def test_seed_biochemistry_bounds_must_all_hold() -> None:
    assert _criterion("Blood biochemistry").combination == "all-of"


@pytest.mark.parametrize(("line", "combination"), [
    # commas, then "or" before the last: one of them (all of them turned away a patient who
    # came in by one)
    ("Hemoglobin < 10 g/dL, platelets < 100 × 10^9/L, or ANC < 1.5 × 10^9/L", "any-of"),
    ("Confirmed diagnosis of prediabetes or T2D (documented A1c of ≥ 5.7%, 2-hour post-load "
     "glucose of > 140 mg/dL, or FBG of > 100 mg/dL)", "any-of"),
    # … but after a lead-in to requirements registries write "or" for "and" (the seed's
    # biochemistry line, above)
    ("Adequate organ function: hemoglobin ≥ 9 g/dL, platelets ≥ 100 × 10^9/L, or ANC ≥ "
     "1.5 × 10^9/L", "all-of"),
    ("Hemoglobin ≥ 9 g/dL, platelets ≥ 100 × 10^9/L, and ANC ≥ 1.5 × 10^9/L", "all-of"),
])
def test_a_list_closed_by_or_is_one_of_its_bounds(line: str, combination: str) -> None:
    [c] = criteria_for(f"Inclusion Criteria:\n* {line}")
    assert len(c.facts) == 3
    assert c.combination == combination


def test_seed_dlco_is_30_to_80_percent_predicted_within_three_months() -> None:
    d = _labs(_criterion("The diffusion capacity"))["dlco"]
    assert (d["low"], d["high"], d["relative"], d["unit"]) == (30, 80, "predicted", "%")
    assert d["window"] == {"comparator": "<=", "value": 3, "unit": "mo"}


@pytest.mark.parametrize("text", [
    # the window qualifies the infarction it follows, not the NYHA class after a comma
    "Severe acute myocardial infarction within 6 months before enrollment, unstable angina, "
    "congestive heart failure (NYHA class > 2)",
    # … or the alternative after an "or"
    "Congestive heart failure (NYHA class > 2) or myocardial infarction within 6 months",
])
def test_a_window_of_another_event_does_not_qualify_a_lab(text: str) -> None:
    labs = [f for f in facts_for(text, True) if f.kind == "lab"]
    assert [f.data["test"] for f in labs] == ["nyha"]
    assert "window" not in labs[0].data


@pytest.mark.parametrize("text", [
    "Within 14 days before registration, hemoglobin ≥ 9 g/dL",
    # the window of a category the lab is an instance of; an "or" inside the bound
    "Cardiovascular disease within 12 months, including NYHA class III or IV heart failure",
    "ECOG performance score of 0 or 1 with no deterioration over the previous 2 weeks",
    "Creatinine greater than or equal to 1.3 mg/dL within the past 6 months",
    # hours as "h"
    "Fever > 38.5 °C within 48 h",
])
def test_a_window_of_the_lab_qualifies_it(text: str) -> None:
    labs = [f for f in facts_for(text, False) if f.kind == "lab"]
    assert len(labs) == 1
    assert "window" in labs[0].data


@pytest.mark.parametrize(("text", "exclude"), [
    # names joined by "or" before their one bound share the window after it (before, the
    # "or" was taken for an alternative's and only the last name was dated)
    ("ALT or AST > 3 x ULN within 28 days prior to day 1", True),
    ("AST and ALT ≤ 2.5 × ULN within 14 days before enrollment", False),
])
def test_a_window_after_a_shared_bound_qualifies_every_name(text: str, exclude: bool) -> None:
    labs = [f for f in facts_for(text, exclude) if f.kind == "lab"]
    assert len(labs) == 2
    assert [f.data.get("window", {}).get("value") for f in labs] == [
        28 if exclude else 14] * 2


def test_seed_fvc_is_40_to_70_percent_predicted() -> None:
    d = _labs(_criterion("The diffusion capacity"))["fvc"]
    assert (d["low"], d["high"], d["low_inclusive"], d["high_inclusive"], d["relative"]) == (
        40, 70, True, True, "predicted")


def test_seed_airway_obstruction_is_fev1_fvc_below_0_7_in_an_exclusion() -> None:
    c = _criterion("Individuals with a history of mechanical ventilation")
    d = _labs(c)["fev1-fvc"]
    assert (d["high"], d["high_inclusive"], d["low"]) == (0.7, False, None)
    assert c.exclude
    assert c.combination == "any-of"


def test_seed_oxygen_therapy_over_15_hours_a_day() -> None:
    d = _labs(_criterion("Individuals with a history of mechanical ventilation"))[
        "oxygen-therapy"]
    assert (d["low"], d["low_inclusive"], d["unit"]) == (15, False, "h/d")


def test_seed_pregnant_and_lactating_women_excluded() -> None:
    c = _criterion("Pregnant and lactating women")
    assert [(f.kind, f.data["value"]) for f in c.facts] == [("pregnancy", True),
                                                            ("lactation", True)]
    assert c.exclude


@pytest.mark.parametrize("text", [
    # a pregnancy of another time, or a disease pregnancy brings, is no pregnancy now: read as
    # one, the line excluded every pregnant woman (the whole population of an obstetric trial)
    "Preterm birth < 37 weeks in a previous pregnancy",
    "Prior pregnancy loss",
    "Women with a history of previous pregnancy",
    "Maternal pregnancy-related disease necessitating delivery",
    # … nor is a kind of pregnancy every pregnancy, nor breastfeeding one agrees to stop
    "Multiple pregnancy",
    "Twin pregnancy",
    "History of ectopic pregnancy",
    "Pregnant women in the first trimester",
    "Lactating women who do not agree to stop breastfeeding",
])
def test_a_pregnancy_of_another_time_is_not_the_state_now(text: str) -> None:
    assert [f.kind for f in facts_for(text, True)
            if f.kind in ("pregnancy", "lactation")] == []


@pytest.mark.parametrize("text", [
    # the denial is the list's: read as "lactation: yes", NCT00023673's inclusion "Not pregnant
    # or nursing" turned away every woman who is not nursing
    "Not pregnant or nursing",
    "Not pregnant/nursing",
    "Not pregnant or breastfeeding",
])
def test_not_before_a_list_of_states_denies_each(text: str) -> None:
    facts = facts_for(text, False)
    assert sorted((f.kind, f.data["value"]) for f in facts) == [("lactation", False),
                                                                ("pregnancy", False)]


@pytest.mark.parametrize("text", [
    # a denial before a list of conditions is each one's: NCT05832827's "no history of HBV or
    # HCV infection" required hepatitis C, NCT03861819's "No coronary artery disease or COPD"
    # required COPD
    "No coronary artery disease or chronic obstructive pulmonary disease.",
    "Without asthma or COPD",
    "Patients with no history of HBV or HCV infection",
])
def test_a_denial_before_a_list_of_conditions_requires_none_of_them(text: str) -> None:
    assert [f for f in facts_for(text, False) if f.kind == "condition"] == []


def test_a_denial_before_a_list_of_bounds_denies_each_and_all_must_hold() -> None:
    # "no QTc > 450 ms or LVEF < 50 %": neither — read as the LVEF bound, the inclusion
    # demanded heart failure, and as one of two ways in it let in a QTc of 500 ms
    [c] = criteria_for("Inclusion Criteria:\n* No QTc > 450 ms or LVEF < 50%")
    assert [(f.data["test"], f.data.get("negated")) for f in c.facts] == [
        ("qtc", True), ("lvef", True)]
    assert c.combination == "all-of"


@pytest.mark.parametrize("text", [
    "Must not be pregnant or breastfeeding",  # (before, text)
    "Neither pregnant nor breastfeeding",
])
def test_an_inclusion_that_denies_both_states_requires_neither(text: str) -> None:
    assert sorted((f.kind, f.data["value"]) for f in facts_for(text, False)) == [
        ("lactation", False), ("pregnancy", False)]


@pytest.mark.parametrize("text", ["Must not be pregnant", "Non-pregnant women"])
def test_a_denied_state_among_the_exclusions_is_text(text: str) -> None:
    # a requirement in the wrong list: read as written it excluded everyone not pregnant
    assert [f for f in facts_for(text, True) if f.kind == "pregnancy"] == []


def test_a_present_pregnancy_named_beside_a_prior_one_still_excludes() -> None:
    facts = facts_for("Any concurrent or prior pregnancy within previous twelve months.", True)
    assert [(f.kind, f.data.get("value")) for f in facts if f.kind == "pregnancy"] == [
        ("pregnancy", True)]


@pytest.mark.parametrize(("text", "states"), [
    # a condition in another item of the list is that item's: before, the line was text and
    # excluded no pregnant woman
    ("Pregnancy, lactation, or inability or unwillingness to use medically acceptable forms "
     "of contraception if pregnancy is a risk.", [("pregnancy", True), ("lactation", True)]),
    ("Females who are pregnant or breast feeding at the time of screening; a urine pregnancy "
     "test will be performed in women of child-bearing potential at screening.",
     [("pregnancy", True), ("lactation", True)]),
    # … and one in the state's own item, one opening an item of its own, or one before it,
    # still makes it conditional
    ("Pregnancy, if not using contraception", []),
    ("Lactating women, if they do not agree to stop breastfeeding", []),
    ("If of childbearing potential, pregnancy or lactation", []),
    # ("will be excluded if they were pregnant": the criterion itself, as before)
    ("Female subjects will be excluded if they were pregnant, lactating or planning a "
     "pregnancy in the next year", [("pregnancy", True), ("lactation", True)]),
])
def test_an_exclusions_states_are_conditional_only_by_their_own_items(
        text: str, states: list[tuple[str, bool]]) -> None:
    assert [(f.kind, f.data["value"]) for f in facts_for(text, True)
            if f.kind in ("pregnancy", "lactation")] == states


def test_seed_malignancy_within_five_years_with_its_exceptions() -> None:
    c = _criterion("Screening for malignant tumors")
    [cond] = [f for f in c.facts if f.kind == "condition"]
    assert (cond.data["system"], cond.data["code"]) == ("http://snomed.info/sct", "363346000")
    assert cond.data["window"] == {"comparator": "<=", "value": 5, "unit": "a"}
    assert cond.data["exceptions"].startswith("excluding cervical carcinoma in situ")
    assert c.exclude


def test_seed_interstitial_lung_disease_is_coded() -> None:
    [cond] = _criterion("Clinical diagnosis of interstitial").facts
    assert cond.data["code"] == "233703007"


@pytest.mark.parametrize("start", [
    "For patients receiving immunosuppressive therapy",
    "have a history of abuse",
    "individuals allergic to human serum albumin",
    "Researchers have determined that the expected survival",
], ids=["immunosuppressive", "abuse", "allergy", "survival"])
def test_seed_criteria_without_computable_meaning_stay_text_only(start: str) -> None:
    assert _criterion(start).facts == []


PHRASES = [
    ("Age ≥18 years old;", "age", {"low": 18, "high": None, "unit": "a"}),
    ("Patient is between 18 and 75 years of age, inclusive.", "age",
     {"low": 18, "high": 75, "low_inclusive": True, "high_inclusive": True}),
    ("Age < 18", "age", {"low": None, "high": 18, "high_inclusive": False}),
    ("c) ≥ 14 days to < 28 days of age", "age", {"low": 14, "high": 28, "unit": "d",
                                                "high_inclusive": False}),
    ("年龄≥18岁", "age", {"low": 18, "unit": "a"}),
    # the number glued to the name, "between" (在…之间), "or more" (以上), full years (周岁)
    ("年龄18-75岁", "age", {"low": 18, "high": 75, "unit": "a"}),
    ("年龄在18-75岁之间", "age", {"low": 18, "high": 75, "unit": "a"}),
    ("年龄18岁以上", "age", {"low": 18, "high": None, "unit": "a"}),
    ("年龄75岁以下", "age", {"low": None, "high": 75, "unit": "a"}),
    ("18~65周岁", "age", {"low": 18, "high": 65, "unit": "a"}),
    ("Gamma-GT ≤ 2.5 ULN", "lab", {"test": "ggt", "high": 2.5, "relative": "ULN"}),
    ("WHO PS 0-2", "lab", {"test": "ecog", "low": 0, "high": 2}),
    ("Women aged 40-65 years", "sex", {"sex": "female"}),
    # the verb before the sex or the age (retrospective "were", "being" in a list)
    ("Being female", "sex", {"sex": "female"}),
    ("Girls aged 9-14 years", "sex", {"sex": "female"}),
    ("Boys aged 6 to 12 years", "sex", {"sex": "male"}),
    ("Patients were ≥ 18 years at admission", "age", {"low": 18, "unit": "a"}),
    ("The inclusion criteria were being female, ≥ 18 years, having an initial diagnosis of "
     "SI, being literate, and agreeing to participate", "age", {"low": 18, "unit": "a"}),
    ("Platelets ≥ 100 × 10⁹/L", "lab", {"test": "platelets", "low": 100, "unit": "10*9/L"}),
    ("absolute neutrophil count ≥ 1,500/ mm3", "lab",
     {"test": "neutrophils", "low": 1500, "unit": "/uL"}),
    ("Hemoglobin value < 9,0 g/dl", "lab", {"test": "hemoglobin", "high": 9, "unit": "g/dL"}),
    ("ＡＬＴ ≦ 2.5 × ULN", "lab", {"test": "alt", "high": 2.5, "relative": "ULN"}),
    ("ECOG performance status of 0 or 1.", "lab", {"test": "ecog", "low": 0, "high": 1}),
    ("Patient has an ECOG score of 4 or higher", "lab", {"test": "ecog", "low": 4,
                                                        "high": None}),
    ("HbA1c 7.0-10.5%", "lab", {"test": "hba1c", "low": 7, "high": 10.5, "unit": "%"}),
    ("Participants who took any experimental drug within 90 days prior to screening.",
     "time-window", {"comparator": "<=", "value": 90, "unit": "d"}),
    ("Use of botulinum toxin injections in the past 12 weeks", "time-window",
     {"comparator": "<=", "value": 12, "unit": "wk"}),
    ("Healthy male volunteers", "healthy-volunteers", {"value": True}),
]


@pytest.mark.parametrize(("text", "kind", "expected"), PHRASES, ids=[p[0][:40] for p in PHRASES])
def test_phrase_gives_fact(text: str, kind: str, expected: dict) -> None:
    found = [f.data for f in facts_for(text) if f.kind == kind]
    assert found, f"no {kind} fact in {text!r}"
    assert {k: found[0].get(k) for k in expected} == expected


TEXT_ONLY = [
    ("Women of childbearing potential must have a negative pregnancy test.", False),
    ("Female participants:", False),
    ("Eastern Cooperative Oncology Group performance status score 0-2 (if aged ≥18 years)", False),
    ("Patients with known Gilbert disease who have serum bilirubin level ≤ 3 ⋅ ULN may be "
     "enrolled.", False),
    ("ALT and AST value > 2 folds as high as maximal normal value", True),
    ("Urine protein ≤2+", False),
    ("Anticipated discharge from the hospital within 72 hours.", True),
    ("Participants with any significant condition, such as: pulmonary, malignancy", True),
    # 50 neutrophils without a unit: too many for 10⁹/L, too few to be a threshold per µL
    # (in neither size range of the lexicon's bare units); "Platelets ≥ 100" is read (below)
    ("Neutrophils ≥ 50", False),
    ("no serious illnesses in progress as cancer, autoimmune disease, liver disease", False),
]


@pytest.mark.parametrize(("text", "exclude"), TEXT_ONLY, ids=[t[:40] for t, _ in TEXT_ONLY])
def test_unsure_phrase_stays_text_only(text: str, exclude: bool) -> None:
    got = [f for f in facts_for(text, exclude) if f.kind not in ("time-window",)]
    assert got == []


@pytest.mark.parametrize(("text", "windows"), [
    # a window closing an item of an "or" list is that item's (before, only the last was read)
    ("Radiotherapy within 2 weeks or chemotherapy within 3 weeks", [(2, "wk"), (3, "wk")]),
    ("Surgery involving the intestinal lumen within 30 days or known intestinal strictures",
     [(30, "d")]),
    # "within N days since" what is named
    ("Immunotherapy: within 42 days since tumor vaccines, and within 21 days since receipt of "
     "CAR T-cell therapy", [(42, "d"), (21, "d")]),
    # a window with another measure beside it is no plain look-back: text
    ("Any investigational drug within 4 weeks or 5 half-lives, whichever is longer", []),
    ("Exposure to any other investigational drug within 30 days or fewer than 5 half-lives "
     "prior to screening", []),
])
def test_the_windows_of_an_exclusions_items(text: str, windows: list[tuple]) -> None:
    assert [(f.data["value"], f.data["unit"]) for f in facts_for(text, True)
            if f.kind == "time-window"] == windows


@pytest.mark.parametrize(("text", "value"), [
    ("Stroke < 6 months prior to screening", 6),
    ("Thymectomy performed less than 12 months prior to screening", 12),
    # the same look-back in other words (before, no window was read)
    ("Radiotherapy completed fewer than 14 days before enrollment", 14),
    ("Live vaccines 4 weeks or less before the first dose", 4),
    ("Surgery no more than 2 weeks prior to screening", 2),
    ("Surgery less than 3 months ago", 3),
    # "<" after a space, the "less than" of the shared pattern (LCT NCT03869086)
    ("Current smokers, or ex-smokers ceasing < 6 months ago", 6),
])
def test_an_exclusive_window_is_the_inclusive_one(text: str, value: int) -> None:
    # a window's comparators are "<=" and ">=" (the matcher, the narrative and timeFromEvent
    # read no other; "<" was taken as "at least")
    assert [(f.data["comparator"], f.data["value"]) for f in facts_for(text, True)
            if f.kind == "time-window"] == [("<=", value)]


def test_alternatives_joined_by_or_in_an_inclusion_are_any_of() -> None:
    [c] = criteria_for("Inclusion Criteria:\n* creatinine ≤ 1.5 mg/dL or creatinine clearance "
                       "≥ 60 mL/min")
    assert [f.data["test"] for f in c.facts] == ["creatinine", "creatinine-clearance"]
    assert c.combination == "any-of"


def test_bare_unit_on_a_lab_that_needs_one_is_not_guessed() -> None:
    assert facts_for("creatinine ≤ 1.5") == []


def test_the_no_number_shortcut_keeps_every_labelled_bound() -> None:
    """measure_facts skips a criterion that states no number (digits, number words, Roman
    class numerals, a reference limit alone): every hand-labelled line with an age or lab
    bound must still be read."""
    from fhirtrial.eligibility.structure import _graded_names, _may_state_number, normalise
    text = (FIXTURES / "eligibility" / "labelled.jsonl").read_text(encoding="utf-8")
    lines = [json.loads(x) for x in text.splitlines() if x.strip()]
    bounded = [x for x in lines if any(f["kind"] in ("age", "lab") for f in x["facts"])]
    assert len(bounded) > 100
    # (a score in letter classes, "Child-Pugh B or C", passes by its name)
    missed = [x["text"] for x in bounded if not _may_state_number(normalise(x["text"]))
              and not _graded_names().search(normalise(x["text"]))]
    assert missed == []
    for words in ("aged eighteen years or older", "nyha class iii or iv", "asa i-ii",
                  "lvef ≥ institutional lln", "tsh above the upper limit of normal"):
        assert _may_state_number(words)
    assert not _may_state_number("pregnant or breastfeeding women")


@pytest.mark.parametrize(("text", "read"), [
    # "if screening shows …" reports the finding the line is about
    ("If screening shows that the WBC is less than 3000/µL or more than 8000/µL", True),
    ("If laboratory tests show ALT > 3 × ULN", True),
    # a condition on the bound stays a condition
    ("Hemoglobin ≥ 9 g/dL if no transfusion in the past month", False),
])
def test_if_a_test_shows_is_the_finding_not_a_condition(text: str, read: bool) -> None:
    labs = [f for f in facts_for(text, True) if f.kind == "lab"]
    assert bool(labs) == read


# --- terms for one sex, extremes of a period ------------------------------------------------

@pytest.mark.parametrize("line", [
    "Women must be ≥ 50 years of age; men ≥ 40 years",
    "Men ≥ 40 years and women ≥ 50 years",
    "Postmenopausal women ≥ 50 years of age; men with hypogonadism aged 40-70",
])
def test_an_age_or_sex_of_one_sex_is_not_every_patients_when_the_other_has_its_own(
        line: str) -> None:
    # a man of 45 meets the first line; the second is not "men only"
    assert [f.kind for f in facts_for(line, False) if f.kind in ("age", "sex")] == []


@pytest.mark.parametrize("line", [
    # a man of 45 meets the first; the one age read before ("50-75") failed him
    "Males aged 40-75 and females aged 50-75 years",
    "Women aged 18-45 years and men aged 18-50 years",
])
def test_ages_each_sex_is_given_apart_stay_text(line: str) -> None:
    assert [f for f in facts_for(line, False) if f.kind in ("age", "sex", GROUP)] == []


@pytest.mark.parametrize(("line", "sex", "age"), [
    ("Women aged ≥ 50 years", "female", {"low": 50, "high": None}),
    ("Men older than 65", "male", {"low": 65, "high": None}),
    ("Women <18 yo", "female", {"low": None, "high": 18}),
])
def test_an_exclusion_of_one_sexs_age_is_that_sex_at_that_age(line: str, sex: str,
                                                              age: dict) -> None:
    # read as two facts, any of which excludes, it turned away every woman (or everyone
    # of that age)
    [group] = facts_for(line, True)
    assert group.kind == GROUP
    s, a = group.data["facts"]
    assert (s.kind, s.data["sex"]) == ("sex", sex)
    assert a.kind == "age"
    assert {k: a.data[k] for k in ("low", "high")} == age


@pytest.mark.parametrize("line", [
    "Age < 18 years, inability to consent, pregnant or breastfeeding women",
    "Children, adults under 21 years of age, and pregnant women",
])
def test_a_sex_named_after_the_age_is_not_whose_age_it_is(line: str) -> None:
    [age] = [f for f in facts_for(line, True) if f.kind == "age"]
    assert age.data["high"] in (18, 21)


@pytest.mark.parametrize(("line", "age", "sex"), [
    ("Male and female patients aged 18-75, inclusive", (18, 75), None),
    ("Women aged 40-65 years", (40, 65), "female"),
    ("Female sex, aged 18-45", (18, 45), "female"),  # the sex named as such (before, none)
])
def test_one_age_for_both_sexes_or_one_sex_is_still_read(line: str, age, sex) -> None:
    facts = facts_for(line, False)
    [a] = [f for f in facts if f.kind == "age"]
    assert (a.data["low"], a.data["high"]) == age
    assert [f.data["sex"] for f in facts if f.kind == "sex"] == ([sex] if sex else [])


@pytest.mark.parametrize(("line", "sex"), [
    ("Female sex", ["female"]), ("Sex: female", ["female"]), ("Gender: male", ["male"]),
    ("Sex: male or female", []),
])
def test_a_sex_named_as_such(line: str, sex: list[str]) -> None:
    assert [f.data["sex"] for f in facts_for(line, False) if f.kind == "sex"] == sex


@pytest.mark.parametrize("line", [
    "Lowest recorded platelet count below 50 × 10^9/L during prior treatment",
    "Nadir ANC < 0.5 × 10^9/L after the first cycle",
    "Peak ALT > 5 × ULN during previous checkpoint inhibitor therapy",
])
def test_an_extreme_of_a_period_is_not_a_bound_on_the_current_value(line: str) -> None:
    assert [f for f in facts_for(line, True) if f.kind == "lab"] == []


@pytest.mark.parametrize("line", [
    # 16-17-year-olds with parental consent, and Part B's 12-17-year-olds, meet these lines
    "Aged 18 to 70 years (inclusive) at the time of consent, or 16-17 years with parental "
    "consent",
    "Adults aged 18 years and older; for Part B, 12 years and older",
])
def test_an_age_with_another_age_for_some_patients_is_not_everyones(line: str) -> None:
    assert [f for f in facts_for(line, False) if f.kind in ("age", "all-of")] == []


def test_an_age_naming_whose_bound_follows_is_not_everyones_nor_is_the_bound() -> None:
    # "≥ 70 years" says whose creatinine clearance must be ≥ 50: a patient of 50 meets the
    # line whatever her clearance; "≥ 18 years" stays everyone's
    facts = facts_for("Age ≥ 18 years. Patients aged ≥ 70 years must have a creatinine "
                      "clearance ≥ 50 mL/min", False)
    assert [(f.kind, f.data.get("low")) for f in facts] == [("age", 18)]
    # "must be able to" is the patient's own requirement: the age stays
    [age] = facts_for("Patients aged ≥ 18 years must be able to give consent", False)
    assert (age.kind, age.data["low"]) == ("age", 18)


@pytest.mark.parametrize("line", [
    "Urine sodium < 20 mmol/L",  # not serum sodium: every patient would fail it
    "Urine glucose > 100 mg/dL",
    "CSF glucose < 40 mg/dL",
    "Sweat chloride ≥ 60 mmol/L",
    "Pleural fluid LDH > 200 U/L",
    "Cord blood pH < 7.0",
])
def test_a_concept_measured_in_another_specimen_is_not_the_blood_concept(line: str) -> None:
    assert [f for f in facts_for(line, False) if f.kind == "lab"] == []


@pytest.mark.parametrize(("line", "test"), [
    ("Serum sodium < 135 mmol/L", "sodium"),
    ("Urine protein-to-creatinine ratio ≥ 0.5 g/g", "upcr"),  # the concept's own specimen
])
def test_a_concept_in_its_own_specimen_is_read(line: str, test: str) -> None:
    assert [f.data["test"] for f in facts_for(line, False) if f.kind == "lab"] == [test]


# --- negation -------------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "kind", "low", "high"), [
    ("No evidence of QTc > 480 ms", "lab", 480, None),
    ("Not having a BMI > 35 kg/m2", "lab", 35, None),
    ("Patients must not have ALT > 3 × ULN", "lab", 3, None),
    ("Absence of anemia (hemoglobin < 10 g/dL)", "lab", None, 10),
    ("Free of severe renal impairment (eGFR < 30 mL/min/1.73 m2)", "lab", None, 30),
    ("Must not be older than 75", "age", 75, None),
    ("Are not between 18 and 50 years of age", "age", 18, 50),
    ("Cannot have platelets < 100 × 10^9/L", "lab", None, 100),
    ("Can't have platelets < 100 × 10^9/L", "lab", None, 100),
    ("Patients who don't have QTc > 470 ms", "lab", 470, None),
])
def test_a_bound_under_a_plain_negation_is_read_negated(line: str, kind: str, low, high) -> None:
    [f] = [f for f in facts_for(line, False) if f.kind in ("lab", "age")]
    assert (f.kind, f.data["low"], f.data["high"], f.data.get("negated")) == (
        kind, low, high, True)


def test_a_bracket_that_defines_what_the_words_deny_is_negated() -> None:
    # not well controlled = not (SBP ≤ 150 and DBP ≤ 90)
    facts = facts_for("Blood pressure is not well controlled (with 2 or fewer antihypertensive "
                      "drugs, systolic blood pressure is 150 mmHg or less and diastolic blood "
                      "pressure is 90 mmHg or less)", True)
    assert [(f.data["test"], f.data["high"], f.data.get("negated")) for f in facts] == [
        ("bp-systolic", 150, True), ("bp-diastolic", 90, True)]


def test_neither_nor_negates_both_bounds() -> None:
    facts = facts_for("Neither ALT > 3 × ULN nor AST > 3 × ULN", False)
    assert [(f.data["test"], f.data["low"], f.data.get("negated")) for f in facts] == [
        ("alt", 3, True), ("ast", 3, True)]


def test_a_bracket_defining_the_state_cannot_names_is_not_negated() -> None:
    # "cannot be controlled (SBP ≥ 150 mmHg)": the bracket defines the uncontrolled state
    facts = facts_for("Hypertension that cannot be controlled by drug therapy (systolic blood "
                      "pressure ≥ 150 mmHg or diastolic blood pressure ≥ 100 mmHg)", True)
    assert [(f.data["test"], f.data["low"], f.data.get("negated")) for f in facts] == [
        ("bp-systolic", 150, None), ("bp-diastolic", 100, None)]


@pytest.mark.parametrize(("line", "expected"), [
    # requirements the patient does not meet, listed after the words: each bound is one they
    # fail (read as written, the exclusion turned away the patients who meet them)
    ("Patients who do not meet the following laboratory criteria: hemoglobin ≥ 9 g/dL, "
     "platelets ≥ 100,000/µL", [("hemoglobin", 9, True), ("platelets", 100000, True)]),
    ("Failing to meet hemoglobin ≥ 9 g/dL", [("hemoglobin", 9, True)]),
    ("Does not fulfil: LVEF ≥ 50%", [("lvef", 50, True)]),
    ("Lack of adequate hematologic function (ANC ≥ 1.5 × 10^9/L)", [("neutrophils", 1.5, True)]),
    # "inadequate"/"insufficient" deny a healthy state: a bracketed bound on its healthy side
    # is the requirement failed, one on the failing side defines the failure
    ("Patients with insufficient renal function (creatinine clearance ≥ 60 mL/min is "
     "required)", [("creatinine-clearance", 60, True)]),
    ("Inadequate organ function (ANC < 1500/µL)", [("neutrophils", None, None)]),
    # … and a clause after the words is not in their scope
    ("Patients who do not meet the inclusion criteria, or have hemoglobin < 9 g/dL",
     [("hemoglobin", None, None)]),
])
def test_requirements_not_met_are_negated(line: str, expected: list) -> None:
    facts = [f for f in facts_for(line, True) if f.kind == "lab"]
    assert [(f.data["test"], f.data["low"], f.data.get("negated")) for f in facts] == expected


@pytest.mark.parametrize(("line", "tests"), [
    # in an exclusion a bound the words after it come with excludes only with them: alone it
    # turned away everyone over it ("BMI ≥ 35 with comorbidities": every BMI ≥ 35); the words
    # go with it (before, the line was text, and cleared no one under the bound either)
    ("BMI ≥ 35 kg/m² with comorbidities", [("bmi", ["with comorbidities"])]),
    ("QTc > 450 ms with bundle branch block", [("qtc", ["with bundle branch block"])]),
    ("BMI ≥ 35 kg/m² with at least one comorbidity",
     [("bmi", ["with at least one comorbidity"])]),
    ("SBP > 160 mmHg with ≥ 2 risk factors", [("bp-systolic", ["with ≥ 2 risk factors"])]),
    # words that add a requirement of another kind
    ("Hemoglobin < 8 g/dL requiring transfusion", [("hemoglobin", ["requiring transfusion"])]),
    ("Potassium < 3.0 mmol/L or > 5.5 mmol/L that cannot be corrected",
     [("potassium", ["that cannot be corrected"])]),
    ("LDL-C > 190 mg/dL while on statin", [("ldl", ["while on statin"])]),
    # (after the bracket the bound is written in)
    ("Bradycardia (HR < 50) requiring pacing", [("heart-rate", ["requiring pacing"])]),
    # the words whole, a remark in brackets and a list joined by "or" included (before, cut
    # at either: "with comorbidities", "with hypertension")
    ("BMI ≥ 35 kg/m² with comorbidities (diabetes or hypertension)",
     [("bmi", ["with comorbidities (diabetes or hypertension)"])]),
    ("BMI ≥ 35 kg/m² with hypertension or diabetes",
     [("bmi", ["with hypertension or diabetes"])]),
    # closing bounds joined without a comma: each one's
    ("SBP > 160 mmHg or DBP > 100 mmHg despite medication",
     [("bp-systolic", ["despite medication"]), ("bp-diastolic", ["despite medication"])]),
    # (a conditional alternative's own words are its condition)
    ("BMI ≥ 40 kg/m² or BMI ≥ 35 kg/m² with obesity-related comorbidities", [("bmi", None)]),
    # … not another bound, nor "with or without"
    ("SBP > 160 mmHg with DBP > 100 mmHg", [("bp-systolic", None), ("bp-diastolic", None)]),
    ("Creatinine clearance < 30 mL/min with or without dialysis",
     [("creatinine-clearance", None)]),
])
def test_an_excluded_bound_with_words_after_it_holds_only_with_them(line: str,
                                                                     tests: list) -> None:
    facts = facts_for(line, True)
    found = [m for f in facts for m in (f.data["facts"] if f.kind == GROUP else [f])]
    assert [(f.data["test"], f.data.get("with")) for f in found if f.kind == "lab"] == tests
    # in an inclusion the bound is necessary, not sufficient: the same words go with it (read
    # alone, the bound was "met" for a patient the words may leave out)
    inc = [m for f in facts_for(line, False)
           for m in (f.data["facts"] if f.kind in (GROUP, EITHER) else [f])]
    assert [(f.data["test"], f.data.get("with")) for f in inc if f.kind == "lab"] == tests


@pytest.mark.parametrize("line", [
    "BMI ≥ 35 kg/m² with comorbidities (diabetes or hypertension)",
    "BMI ≥ 35 kg/m² with hypertension or diabetes",
])
def test_a_condition_the_words_name_is_theirs_not_an_exclusion_of_its_own(line: str) -> None:
    # before, "hypertension" (in the bracket) and "diabetes" (after "or") were each read as a
    # condition of the exclusion's any-of: every hypertensive or diabetic patient turned away,
    # whatever their BMI
    assert [f.kind for f in facts_for(line, True)] == ["lab"]


def test_another_way_in_after_the_words_is_still_its_own() -> None:
    facts = facts_for("BMI ≥ 35 kg/m² with hypertension, or diabetes", True)
    assert [(f.kind, f.data.get("with") or f.data.get("key")) for f in facts] == [
        ("lab", ["with hypertension"]), ("condition", "diabetes-mellitus")]


def test_words_cut_short_by_a_bracket_leave_the_bound_text() -> None:
    # "with translocations t(9;22) …": no words of their own to go with the count
    facts = facts_for("WBC count ≥ 300 × 10^9/L with translocations t(9;22) (q34;q11)", True)
    assert [f for f in facts if f.kind == "lab"] == []


@pytest.mark.parametrize("line", [
    # the negation's scope may or may not reach the bound: text
    "No competing illness that would additionally limit the life expectancy to less than "
    "6 months",
])
def test_a_bound_a_negation_may_reach_stays_text(line: str) -> None:
    assert [f for f in facts_for(line, False) if f.kind == "lab"] == []


@pytest.mark.parametrize(("line", "test"), [
    ("No prior chemotherapy and ANC ≥ 1,500/µL", "neutrophils"),  # "and" ends its scope
    ("Not eligible for surgery, with ECOG ≤ 2", "ecog"),
    ("Hemoglobin not less than 9 g/dL", "hemoglobin"),  # a comparator in words
])
def test_a_negation_of_something_else_leaves_the_bound(line: str, test: str) -> None:
    [f] = [f for f in facts_for(line, False) if f.kind == "lab"]
    assert (f.data["test"], f.data.get("negated")) == (test, None)


@pytest.mark.parametrize("line", [
    # any one result, or two of them: the latest result (what a matcher reads) does not tell
    "At least one HbA1c ≥ 6.5% in the past 12 months",
    "Two fasting glucose values ≥ 126 mg/dL",
    "One or more HbA1c values ≥ 7%",
])
def test_a_count_of_results_is_not_a_bound_on_the_latest_one(line: str) -> None:
    assert [f for f in facts_for(line, False) if f.kind == "lab"] == []


@pytest.mark.parametrize(("line", "test"), [
    ("Type 2 diabetes with HbA1c ≥ 7%", "hba1c"),
    ("Grade 3 neutropenia (ANC < 1000/µL)", "neutrophils"),
])
def test_a_number_that_is_not_a_count_of_results_leaves_the_bound(line: str, test: str) -> None:
    assert [f.data["test"] for f in facts_for(line, False) if f.kind == "lab"] == [test]


@pytest.mark.parametrize(("line", "test"), [
    ("At least one lesion ≥ 1.5 cm on CT", "lesion-size"),  # a count of lesions
    ("(1) gestational age 35 to 39 weeks", "gestational-age"),  # an item number
])
def test_a_count_of_things_or_an_item_number_is_not_a_count_of_results(line: str,
                                                                      test: str) -> None:
    assert [f.data["test"] for f in facts_for(line, False) if f.kind == "lab"] == [test]


@pytest.mark.parametrize(("line", "exclude", "test"), [
    ("ISI score ≥ 15 on two occasions", False, "isi"),  # two results, not the latest
    ("CD4 count ≥ 200 cells/mm3 on two occasions at least 4 weeks apart", False, "cd4"),
    ("Serum phosphorus > 5.5 mg/dL at two consecutive visits", False, "phosphate"),
    # held for a share of the night: the latest SpO2 alone would exclude too many (the AHI,
    # a way to be excluded of its own, is read)
    ("AHI ≥ 30 or oxygen saturation < 80% for > 10% of sleep time", True, "spo2"),
])
def test_a_value_over_several_results_or_a_time_is_text(line: str, exclude: bool,
                                                         test: str) -> None:
    facts = [f for f in facts_for(line, exclude) if f.kind == "lab"]
    assert test not in {f.data["test"] for f in facts}
    assert all(f.data["test"] == "ahi" for f in facts)


def test_in_an_inclusion_the_latest_result_of_a_value_held_for_a_time_is_read() -> None:
    # the latest result meeting it is necessary: read, as "within 14 days" is
    [f] = [f for f in facts_for("HIV viral load < 50 copies/mL for at least 12 months", False)
           if f.kind == "lab"]
    assert (f.data["test"], f.data["high"]) == ("hiv-rna", 50)


@pytest.mark.parametrize("line", [
    # the 15 mm is lymph nodes' (read together, ≥ 15 mm for every lesion)
    "Measurable disease per RECIST v1.1: at least one lesion ≥ 10 mm in longest diameter "
    "(≥ 15 mm short axis for lymph nodes)",
    # > 60 for cisplatin, ≥ 51 for carboplatin (NCT02679963)
    "Creatinine clearance > 60mL/min as calculated by Cockroft-Gault formula for cisplatin "
    "administration; creatinine clearance >/= 51mL/min by Cockroft-Gault formula for "
    "carboplatin administration",
])
def test_two_bounds_on_one_side_with_different_values_are_not_both_everyones(
        line: str) -> None:
    assert [f for f in facts_for(line, False) if f.kind == "lab"] == []


def test_a_window_in_a_bracket_about_another_event_is_not_the_labs() -> None:
    facts = facts_for("ANC ≥ 1.5 × 10⁹/L, platelets ≥ 100 × 10⁹/L, hemoglobin ≥ 9 g/dL "
                      "(without transfusion within 7 days)", False)
    assert [f.data.get("window") for f in facts if f.kind == "lab"] == [None, None, None]
    # a bracket that says when the value was had is the lab's
    [f] = [f for f in facts_for("Creatinine ≥ 1.3 mg/dL (via clinical record within the past "
                                "6 months)", True) if f.kind == "lab"]
    assert f.data["window"] == {"comparator": "<=", "value": 6, "unit": "mo"}


@pytest.mark.parametrize(("line", "test", "low", "high"), [
    ("No QTc > 480 ms", "qtc", 480, None),  # the cue right before the name
    ("Without ALT > 3 × ULN", "alt", 3, None),
    ("No NYHA class III or IV heart failure", "nyha", 3, 4),
])
def test_a_name_right_after_a_negation_is_read_negated(line: str, test: str, low,
                                                       high) -> None:
    [f] = [f for f in facts_for(line, False) if f.kind == "lab"]
    assert (f.data["test"], f.data["low"], f.data["high"], f.data.get("negated")) == (
        test, low, high, True)


@pytest.mark.parametrize(("line", "tests"), [
    # non-HDL cholesterol is not total cholesterol, nor HDL: the lexicon's own concept
    ("Non-HDL cholesterol > 190 mg/dL", ["non-hdl"]),
    ("Non-fasting glucose < 200 mg/dL", []),  # nor fasting glucose
])
def test_non_before_a_name_makes_another_concept(line: str, tests: list[str]) -> None:
    assert [f.data["test"] for f in facts_for(line, True) if f.kind == "lab"] == tests


#: long lines whose bracket the parser blanks into one long run of spaces. Readers that tried
#: such a run from each of its spaces ("\s*,?\s*…" matched after a bound) took 15 s, 19 s and
#: 8 s on the 2,000-character lines (cubic or quadratic in the run's length) and seconds on the
#: 8,000-character one; read linearly each takes milliseconds. Not a speed measurement
#: (bench/bench_eligibility.py has that): a guard, with a hundredfold margin, against a
#: registry record stalling a conversion for minutes
LONG_BRACKETS = [
    "Creatinine ≤ 1.5 mg/dL (" + "word " * 400 + ") or other.",
    "Creatinine below the upper limit of normal (" + "word " * 400 + ") or other.",
    "Age ≥ 18 years (" + "word " * 1600 + ").",
    "Creatinine ≤ 1.5 mg/dL " + "(a) " * 400,
    # a serial list after an exclusion bound, read by one pattern of repeated items, took 3.6 s
    # on 3,200 "or"s (quadratic); scanned, milliseconds
    "eGFR < 30 mL/min/1.73 m², " + " or ".join(["dialysis transplant"] * 3200) + " (",
    # each window found was checked against every one before it, and the rest of the line
    # copied for the next test: 4.9 s on 10,000 windows (quadratic); one flag per character
    "Surgery within the past 2 weeks or " * 10000,
]


@pytest.mark.parametrize("line", LONG_BRACKETS, ids=["after-bound", "after-name", "after-age",
                                                     "many-brackets", "or-chain",
                                                     "window-chain"])
@pytest.mark.parametrize("side", ["Inclusion Criteria:", "Exclusion Criteria:"])
def test_a_long_bracket_is_read_in_time_linear_in_its_length(line: str, side: str) -> None:
    start = time.process_time()
    [root] = criteria_for(f"{side}\n* {line}")
    assert time.process_time() - start < 2.0
    assert [c.text for c in root.walk()][-1] == line.strip()


#: one line of hundreds of bounds (a table flattened into a line, or not a criterion at all):
#: the steps that weigh each bound against the others cost time cubic in their number (400
#: took seconds, 800 two minutes); beyond ``structure.MOST_BOUNDS`` the line is text: a guard
MANY_BOUNDS = [
    "history of " + ", ".join(f"SBP > {100 + i} mmHg" for i in range(400)),
    "; ".join(f"creatinine ≤ {i % 5}.5 mg/dL" for i in range(400)),
]


@pytest.mark.parametrize("line", MANY_BOUNDS, ids=["history-list", "semicolons"])
def test_a_line_of_hundreds_of_bounds_is_text_and_read_in_time(line: str) -> None:
    start = time.process_time()
    [root] = criteria_for(f"Exclusion Criteria:\n* {line}")
    assert time.process_time() - start < 2.0
    [c] = [c for c in root.walk() if c.text == line]
    assert c.facts == []



@pytest.mark.parametrize(("text", "test", "value"), [
    ("ANC ≥ 1.5", "neutrophils", 1.5),
    ("Platelets ≥ 100", "platelets", 100),
    ("WBC ≥ 3.0", "wbc", 3),
    ("ANC ≥ 500", "neutrophils", 500),  # per µL, as 1,500 is
])
def test_a_count_without_its_unit_is_read_in_the_unit_its_size_says(text: str, test: str,
                                                                    value: float) -> None:
    # as oncology criteria write them: 100 platelets can only be 100 × 10⁹/L (= 100 × 10³/µL)
    [f] = facts_for(text, False)
    unit = "/uL" if value >= 100 and test == "neutrophils" else "10*9/L"
    assert (f.data["test"], f.data["low"], f.data["unit"]) == (test, value, unit)


PREDIABETES = ("Inclusion Criteria:\n* Age 40-70 years\n"
               "* Fasting blood glucose from 6.1 to 7.0 mmol/L or,\n"
               "* Impaired glucose tolerance (2-hour glucose 7.8 to 11.1 mmol/L) or,\n"
               "* HbA1c between 5.7 and 6.4%\n")


def test_inclusion_criteria_joined_by_or_are_alternatives() -> None:
    # three definitions of prediabetes (NCT03925909 writes them so): read as three inclusion
    # criteria, a patient had to meet all three bounds
    from fhirtrial.eligibility.criteria import EITHER_OR
    from fhirtrial.eligibility.fhir import characteristic

    roots = criteria_for(PREDIABETES)
    assert [r.link_id for r in roots] == [None, EITHER_OR]
    holder = roots[1]
    assert [c.text[:8] for c in holder.children] == ["Fasting ", "Impaired", "HbA1c be"]
    ch = characteristic(holder)
    assert ch["linkId"] == EITHER_OR
    assert ch["definitionByCombination"]["code"] == "any-of"
    assert len(ch["definitionByCombination"]["characteristic"]) == 3


def test_one_alternative_joined_by_or_meets_the_criterion() -> None:
    from fhirtrial.eligibility.match import evaluate

    def patient(hba1c: float) -> dict:
        return {"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01"}},
            {"resource": {"resourceType": "Observation", "id": "a1c", "status": "final",
                          "code": {"coding": [{"system": "http://loinc.org",
                                               "code": "4548-4"}]},
                          "effectiveDateTime": "2025-01-01",
                          "valueQuantity": {"value": hba1c, "unit": "%", "system":
                                            "http://unitsofmeasure.org", "code": "%"}}}]}

    def verdict(hba1c: float) -> str:
        return evaluate(PREDIABETES, patient(hba1c), as_of="2025-01-02")["parameter"][0][
            "valueCode"]

    # the HbA1c alone meets the criterion (the glucose results are not known)
    assert verdict(6.0) == "eligible"
    # outside it the other ways in are not known: review, not a verdict either way
    assert verdict(7.5) == "needs-review"
    # the stored EvidenceVariable reads back to the same answers
    from fhirtrial.eligibility.fhir import characteristic

    ev = {"resourceType": "EvidenceVariable", "id": "x",
          "characteristic": [characteristic(c) for c in criteria_for(PREDIABETES)]}
    for hba1c in (6.0, 7.5):
        assert evaluate(ev, patient(hba1c), as_of="2025-01-02")["parameter"][0][
            "valueCode"] == verdict(hba1c)


def test_ages_no_one_has_at_once_under_one_lead_are_a_tables_rows() -> None:
    # the children's oncology template: rows keyed by age under "as follows:"; read as
    # requirements, every age was required at once and no one was eligible
    text = ("Inclusion Criteria:\n* Age ≥ 1 year\n* Age ≤ 21 years\n"
            "* A serum creatinine based on age/gender as follows:\n"
            "  * Age 1 to < 2 years: 0.6 mg/dL (male), 0.6 mg/dL (female)\n"
            "  * Age 2 to < 6 years: 0.8 mg/dL (male), 0.8 mg/dL (female)\n"
            "  * Age ≥ 16 years: 1.7 mg/dL (male), 1.4 mg/dL (female)\n"
            "Exclusion Criteria:\n* Age < 1 year\n* Age > 21 years\n")
    roots = criteria_for(text)
    assert [[f.kind for f in c.facts] for r in roots for c in r.walk()] == [
        ["age"], ["age"], [], [], [], [], ["age"], ["age"]]


def test_an_or_between_two_items_of_a_comma_list_joins_those_two() -> None:
    # the creatinine-or-clearance pair inside an organ-function list: both were required, so a
    # patient with creatinine 1.6 × ULN and a clearance of 65 mL/min was turned away
    [c] = criteria_for("Inclusion Criteria:\n* ANC ≥ 1.5 × 10^9/L, hemoglobin ≥ 9 g/dL, serum "
                       "creatinine ≤ 1.5 × ULN or creatinine clearance ≥ 50 mL/min, total "
                       "bilirubin ≤ 1.5 × ULN")
    assert c.combination == "all-of"
    assert [f.kind for f in c.facts] == ["lab", "lab", "any-of", "lab"]
    assert [m.data["test"] for m in c.facts[2].data["facts"]] == [
        "creatinine", "creatinine-clearance"]


def test_a_list_closed_by_or_is_not_split_by_its_commas() -> None:
    # "A, B or C" ends a list with "or": one of the three, as before (not B-or-C beside A)
    [c] = criteria_for("Inclusion Criteria:\n* Hemoglobin ≥ 9 g/dL, platelets ≥ 100,000/µL or "
                       "ANC ≥ 1500/µL")
    assert [f.kind for f in c.facts] == ["lab", "lab", "lab"]
    assert c.combination == "any-of"


@pytest.mark.parametrize("text", [
    # two measures of one function (the lexicon's "measures") closing a list: the last item's
    # alternatives. Read as the list's, ANC 0.5 × 10⁹/L with a normal creatinine was "met"
    "ANC ≥ 1500/µL, platelets ≥ 100,000/µL, hemoglobin ≥ 9 g/dL, creatinine ≤ 1.5 mg/dL or "
    "creatinine clearance ≥ 60 mL/min",
    # after a lead-in to requirements, read as all of them, a creatinine of 1.8 × ULN with a
    # clearance of 70 mL/min was turned away
    "Adequate organ function: ANC ≥ 1.5 × 10^9/L, platelets ≥ 100 × 10^9/L, total bilirubin ≤ "
    "1.5 × ULN or direct bilirubin ≤ ULN",
])
def test_two_measures_of_one_function_closing_a_list_are_its_last_items(text: str) -> None:
    [c] = criteria_for(f"Inclusion Criteria:\n* {text}")
    assert c.combination == "all-of"
    *required, either = c.facts
    assert all(f.kind == "lab" for f in required)
    assert len(required) >= 2
    assert either.kind == "any-of"
    assert len(either.data["facts"]) == 2


@pytest.mark.parametrize(("text", "combination"), [
    # a comma before the "or" is the list's joint: as before (the seed trial's list)
    ("Hemoglobin ≥ 9 g/dL, creatinine ≤ 1.5 mg/dL, or creatinine clearance ≥ 60 mL/min",
     "any-of"),
    # two concepts of different functions: as before
    ("Hemoglobin ≥ 9 g/dL, platelets ≥ 100,000/µL or ANC ≥ 1500/µL", "any-of"),
])
def test_an_or_closing_a_list_otherwise_stays_the_lists(text: str, combination: str) -> None:
    [c] = criteria_for(f"Inclusion Criteria:\n* {text}")
    assert c.combination == combination
    assert all(f.kind == "lab" for f in c.facts)


@pytest.mark.parametrize("text", [
    "Serum creatinine ≤ 1.5 × ULN, or creatinine clearance ≥ 60 mL/min",
    "Kidney function: serum creatinine (Scr) ≤ 1.5 × ULN, or creatinine clearance rate (Ccr) "
    "≥ 60 mL/min",
])
def test_two_measures_of_one_function_alone_are_either_one_comma_or_not(text: str) -> None:
    # a comma before "or" ends no list of two (before, all-of: a patient with a clearance of
    # 70 mL/min and a creatinine of 1.6 × ULN failed the line)
    [c] = criteria_for(f"Inclusion Criteria:\n* {text}")
    assert [f.data["test"] for f in c.facts] == ["creatinine", "creatinine-clearance"]
    assert c.combination == "any-of"


def test_a_list_opened_by_one_or_more_is_of_ways_in() -> None:
    # NCT03863210: "one or more CV risk factors [BMI ≥ 25 …, waist ≥ 88 cm, …, cholesterol
    # ≥ 5.2 mmol/L and active smoking]" required every factor
    [c] = criteria_for("Inclusion Criteria:\n* one or more CV risk factors [body mass index ≥ "
                       "25 kg/m2, and/or waist circumference ≥ 88 cm, high blood cholesterol "
                       "(≥ 5.2 mmol/L) and active smoking]")
    assert c.combination == "any-of"
    assert [f.data["test"] for f in c.facts] == ["bmi", "waist-circumference",
                                                  "cholesterol-total"]
    # a count of one before a bound of its own is no list ("at least one lesion ≥ 10 mm")
    [d] = criteria_for("Inclusion Criteria:\n* At least one measurable lesion ≥ 10 mm and "
                       "ECOG 0-1")
    assert d.combination == "all-of"


def test_disjoint_ages_are_found_without_testing_every_pair() -> None:
    import itertools
    import random

    from fhirtrial.eligibility.structure import _disjoint, _disjoint_from_another

    # the same answer as every pair, on random lists (closed, open and unbounded sides)
    rng = random.Random(7)
    inf = float("inf")
    for _ in range(3000):
        ivs = []
        for _ in range(rng.randint(0, 6)):
            lo, hi = sorted((rng.choice([-inf, 0, 1, 2, 3]), rng.choice([0, 1, 2, 3, inf])))
            ivs.append((lo, rng.random() < 0.5, hi, rng.random() < 0.5))
        pairs = {k for i, j in itertools.combinations(range(len(ivs)), 2)
                 if _disjoint(ivs[i], ivs[j]) for k in (i, j)}
        assert _disjoint_from_another(ivs) == pairs
    # a long table (a hostile record may hold thousands of rows) is still read
    rows = "".join(f"  * Age {n} to < {n + 1} years: {n / 10} mg/dL\n" for n in range(2_000))
    roots = criteria_for("Inclusion Criteria:\n* Creatinine as follows:\n" + rows)
    assert not any(c.facts for c in roots[0].children)


def _conditions(text: str, exclude: bool) -> list[tuple[str, list[str]]]:
    return [(f.data["code"], [a["text"] for a in f.data.get("alternatives") or ()])
            for f in facts_for(text, exclude) if f.kind == "condition"]


@pytest.mark.parametrize(("text", "exclude", "expected"), [
    # the third clause's "infection" hid hepatitis C: a patient with it was cleared
    ("Known HIV, hepatitis B or hepatitis C infection", True,
     [("86406008", []), ("66071002", []), ("50711007", [])]),
    # conditions no code states are the coded one's alternatives in words: before, a
    # patient with pneumonia was cleared by the seed's respiratory exclusion
    ("Individuals with a history of mechanical ventilation or concurrent infectious pneumonia "
     "or asthma within the previous month", True,
     [("195967001", ["mechanical ventilation, concurrent infectious pneumonia"])]),
    ("Known HIV(+) or has been diagnosed with AIDS", True, [("86406008", ["AIDS"])]),
    ("Women with immunosuppressive disorders or with HIV", True,
     [("86406008", ["immunosuppressive disorders"])]),
    # a suspicion of the condition is words beside the recorded one (before, "known or
    # suspected HIV infection" was text)
    ("Known or suspected HIV infection", True, [("86406008", ["suspected HIV infection"])]),
    ("Suspected or confirmed COPD", True, [("13645005", ["Suspected COPD"])]),
    ("Confirmed or probable COPD", False, [("13645005", ["probable COPD"])]),
    # (one named by a letter no code states is named whole; words that qualify it stay)
    ("Active hepatitis B, C or D", True, [("66071002", ["hepatitis D"]), ("50711007", [])]),
    ("History of hepatitis B or a positive test", True, [("66071002", ["positive test"])]),
    # a way in among the inclusions, joined by "or" alone
    ("Diagnosis of type 2 diabetes or prediabetes", False, [("44054006", ["prediabetes"])]),
    # kinds of the condition after a comma are no other way in; the line reads as before
    ("Diagnosis of cluster headache, episodic or chronic.", False, [("193031009", [])]),
    # commas and a last "or" are a list of ways in too
    ("Diagnosis of asthma, bronchiectasis or COPD", False,
     [("195967001", ["bronchiectasis"]), ("13645005", [])]),
    # what the line's other facts read is not another condition
    ("Known HIV infection, or pregnant or breastfeeding women", True, [("86406008", [])]),
    ("Renal failure, or ASA class IV or higher", True, [("42399005", [])]),
    # two times joined by "or" are any time, no condition of their own: before, "Lifetime"
    # and "Concomitant diagnosis of past" were shown as conditions to confirm
    ("Lifetime or current diagnosis of asthma or COPD", True,
     [("195967001", []), ("13645005", [])]),
    ("Concomitant diagnosis of past or present hepatitis B", True, [("66071002", [])]),
    ("Current or past HIV infection or AIDS", True, [("86406008", ["AIDS"])]),
    # the words as written where the text holds them whole (before, each word's case came
    # from its first use: "Severe depression" from "Severe Mental Illnesses")
    ("Severe Mental Illnesses - bipolar disorder, severe depression, or schizophrenia", False,
     [("58214004", ["Severe Mental Illnesses - bipolar disorder, severe depression"])]),
])
def test_conditions_named_beside_a_coded_one_are_its_alternatives_in_words(
        text: str, exclude: bool, expected: list[tuple[str, list[str]]]) -> None:
    assert _conditions(text, exclude) == expected


def _window(w: dict | None) -> str | None:
    if w is None or w["comparator"] == "now":
        return w and "now"
    return f"{w['comparator']} {w['value']:g} {w['unit']}"


def _dated(text: str, exclude: bool = True) -> list[tuple[str, str | None]]:
    """(code, "≤ N unit" window, "now" or None) of each condition a line is read as."""
    return [(f.data["code"], _window(f.data.get("window")))
            for f in facts_for(text, exclude) if f.kind == "condition"]


@pytest.mark.parametrize(("text", "expected"), [
    ("History of myocardial infarction within the past 6 months", [("22298006", "<= 6 mo")]),
    ("Documented history of cerebrovascular accident (CVA)", [("230690007", None)]),
    ("Cerebro-vascular attack within the prior year", [("230690007", "<= 1 a")]),
    ("Hypertension", [("38341003", None)]),
    ("Congestive heart failure", [("84114007", None)]),
    # "active", "current": the condition now (before, a tuberculosis treated years ago
    # excluded as one now does)
    ("Evidence of active tuberculosis (TB)", [("56717001", "now")]),
    ("Current diagnosis of asthma", [("195967001", "now")]),
    ("Known active hepatitis B or C infection", [("66071002", "now"), ("50711007", "now")]),
    ("History of active tuberculosis", [("56717001", None)]),
    ("Lifetime or current diagnosis of asthma", [("195967001", None)]),
    ("Concurrent malignancy or a history of malignancy", [("363346000", "now"),
                                                          ("363346000", None)]),
    # the list's time is the name's too ("active" within it)
    ("Any of the following within the 6 months prior to entry: active tuberculosis, stroke",
     [("56717001", "<= 6 mo"), ("230690007", "<= 6 mo")]),
    ("Dementia", [("52448006", None)]),
    ("Latent tuberculosis", []),  # a kind the lexicon does not code
    ("Atrial fibrillation", [("49436004", None)]),
    ("Prior diagnosis of AF", [("49436004", None)]),
    ("Persistent or permanent atrial fibrillation", []),  # kinds: which ones, for a person
    ("Previously diagnosed liver cirrhosis", [("19943007", None)]),
    ("History of bipolar disorder or schizophrenia", [("13746004", None), ("58214004", None)]),
    ("Multiple sclerosis", [("24700007", None)]),
    ("Rheumatoid arthritis", [("69896004", None)]),
    ("Systemic lupus erythematosus (SLE)", [("55464009", None)]),
    ("Lupus nephritis", []),
    # a bracket naming the participants it is for: not everyone's criterion (before, the
    # healthy controls' exclusion turned away every patient of a rheumatoid arthritis trial)
    ("Rheumatoid arthritis (healthy control group)", []),
    ("Hypertension (cohort B only)", []),
    # a condition in a statement about information to give is no criterion on the patient
    ("HIV infection is allowed. Additional information on participants should include "
     "results from any biopsy, history of hypertension, and prior treatment", []),
    # a time said once for the list is every name's: before, MI and stroke in such a list
    # were read at any time, so an infarction ten years ago excluded the patient
    ("Myocardial infarction, acute coronary syndrome, stroke or transient ischemic attack "
     "within 6 months prior to screening", [("22298006", "<= 6 mo"), ("394659003", "<= 6 mo"),
                                            ("230690007", "<= 6 mo"), ("266257000", "<= 6 mo")]),
    ("Any of the following within the 3 months prior to study entry: unstable angina, "
     "heart failure, stroke", [("4557003", "<= 3 mo"), ("84114007", "<= 3 mo"),
                               ("230690007", "<= 3 mo")]),
    # the one time closing the list after its last name is every name's, that name coded or
    # not (coded, it was read as the last name's alone: a stroke ten years ago excluded)
    ("Stroke or TIA within the past 3 months", [("230690007", "<= 3 mo"),
                                                ("266257000", "<= 3 mo")]),
    ("History of stroke or myocardial infarction within 6 months", [("230690007", "<= 6 mo"),
                                                                    ("22298006", "<= 6 mo")]),
    # … not where more of the list follows it
    ("Unstable angina, myocardial infarction within the last 6 months, or arrhythmia",
     [("4557003", None), ("22298006", "<= 6 mo")]),
    ("Diabetes mellitus", [("73211009", None)]),
    ("Diabetes insipidus", []),
    ("Gestational diabetes", []),
    ("History of coronary artery disease", [("53741008", None)]),
    ("Patients with active inflammatory bowel disease", [("24526004", "now")]),
    ("History of ulcerative colitis or Crohn's disease", [("64766004", None),
                                                          ("34000006", None)]),
    ("Chronic renal disease", [("709044004", None)]),
    ("Current major depressive disorder", [("370143000", "now")]),
    ("History of deep vein thrombosis or pulmonary embolism within 6 months",
     [("128053003", "<= 6 mo"), ("59282003", "<= 6 mo")]),
    # "and / or" written with spaces is a joint, not a condition "/" to confirm
    ("Chronic kidney disease and / or heart failure", [("709044004", None),
                                                       ("84114007", None)]),
    # (the lead-in's window is the list's, its first name's clause holding it or not)
    ("Any of the following within the 6 months prior to entry: myocardial infarction, "
     "uncontrolled/unstable angina, stroke", [("22298006", "<= 6 mo"), ("230690007", "<= 6 mo")]),
    # a name's own window stays its own
    ("History of myocardial infarction within 6 months, or stroke",
     [("22298006", "<= 6 mo"), ("230690007", None)]),
    # a time the list holds but the window grammar does not read, or one that is no
    # "within": whose it is cannot be said, so no name is read without it
    ("History of stroke or TIA for 6 months prior to screening", []),
    ("Type 2 diabetes and treated with insulin for at least 24 weeks prior to consent", []),
    ("Hypertension and taking antihypertensive drugs for more than 1 year", []),
    # a bound in a bracket after the name is what the name means here
    ("Heart failure (LVEF < 40%)", []),
    ("Renal failure (creatinine > 2 mg/dL)", []),
    ("Resting hypotension (systolic < 90 mmHg) or hypertension (resting blood pressure "
     ">170/110)", []),
    # other hypertensions are other conditions
    ("Pulmonary hypertension", []),
    ("Portal hypertension or ocular hypertension", []),
])
def test_coded_conditions_and_the_time_a_list_says_once(
        text: str, expected: list[tuple[str, str | None]]) -> None:
    assert _dated(text) == expected


@pytest.mark.parametrize("text", [
    # what a score counts is no criterion: before, "age > 67" here excluded every older
    # patient and "heart failure" every patient with it
    "1 point each: age>67, female sex, or being on loop diuretic",
    "3 points each: sepsis, heart failure, QT-prolonging drugs",
    "+2 points: hypertension",
])
def test_a_scores_tally_line_states_no_fact(text: str) -> None:
    assert facts_for(text, True) == []
    assert facts_for(text, False) == []


@pytest.mark.parametrize(("text", "exclude", "codes"), [
    # a condition "with" a bound the line reads is, among the inclusions, a requirement beside
    # it: before, the name was dropped and the bound alone let a patient without it in
    ("Type 2 diabetes with HbA1c between 7.0% and 10.0%", False, ["44054006"]),
    ("Heart failure with LVEF ≤ 40%", False, ["84114007"]),
    ("HIV infection with CD4 count > 200 cells/uL", False, ["86406008"]),
    # words beside the name that are not the bound keep the line as it was
    ("Hepatitis C with cirrhosis and ALT > 3 × ULN", False, []),
])
def test_a_condition_with_a_bound_is_required_beside_it(
        text: str, exclude: bool, codes: list[str]) -> None:
    assert [f.data["code"] for f in facts_for(text, exclude) if f.kind == "condition"] == codes
    assert any(f.kind == "lab" for f in facts_for(text, exclude))


@pytest.mark.parametrize(("text", "code", "test"), [
    # among the exclusions the two together exclude: before, the bound alone turned away a
    # patient with an LVEF of 35 % and no heart failure, or lymphopenic and without HIV
    ("Heart failure with LVEF < 40%", "84114007", "lvef"),
    ("Known HIV infection with CD4 count < 200 cells/µL", "86406008", "cd4"),
])
def test_an_excluded_condition_with_a_bound_excludes_with_both(
        text: str, code: str, test: str) -> None:
    [f] = facts_for(text, True)
    assert f.kind == GROUP
    cond, bound = f.data["facts"]
    assert (cond.kind, cond.data["code"], bound.kind, bound.data["test"]) == (
        "condition", code, "lab", test)
    assert "_with_bound_at" not in cond.data  # (the reader's note, not the fact's)


@pytest.mark.parametrize(("text", "codes"), [
    # a state opening a list is each name's: before, "hypertension" here turned away every
    # hypertensive patient, controlled or not
    ("Poorly controlled diabetes or hypertension", []),
    ("Uncontrolled asthma, COPD or hypertension", []),
    ("History of uncontrolled hypertension or COPD", []),
    # a state inside the list is its own item's
    ("Asthma or uncontrolled COPD", ["195967001"]),
])
def test_a_state_opening_a_condition_list_is_each_names(text: str, codes: list[str]) -> None:
    assert [f.data["code"] for f in facts_for(text, True) if f.kind == "condition"] == codes


@pytest.mark.parametrize(("text", "alternatives", "qualified"), [
    # a state after a comma qualifies the condition before it …
    ("Type 2 diabetes, poorly controlled", [], ["poorly controlled"]),
    # … a state of another thing is the list's next item (before, "uncontrolled/unstable
    # angina" qualified the infarction, and a patient with angina alone was cleared)
    ("Myocardial infarction, uncontrolled/unstable angina", ["uncontrolled/unstable angina"], []),
])
def test_a_state_after_a_comma_qualifies_only_when_it_is_all_the_clause_says(
        text: str, alternatives: list[str], qualified: list[str]) -> None:
    [f] = [f for f in facts_for(text, True) if f.kind == "condition"]
    assert [a["text"] for a in f.data.get("alternatives") or ()] == alternatives
    assert f.data.get("with", []) == qualified


@pytest.mark.parametrize(("text", "also", "conditions"), [
    # the line's other requirement, in words: named beside the age (before, met on the age
    # and nothing said the rest was unchecked)
    ("Patients aged ≥ 18 years with histologically confirmed NSCLC",
     ["with histologically confirmed NSCLC"], []),
    ("Subjects aged 40 to 75 years and having moderate to severe COPD",
     ["and having moderate to severe COPD"], []),
    # words cut short by a list or a bracket: the rest of the line, whatever it says
    ("Adult (18 years of age or older) with the diagnosis of essential thrombocytosis, "
     "prefibrotic myelofibrosis or overt myelofibrosis", ["and the rest of the criterion (in "
                                                          "words)"], []),
    # words that name a coded condition and nothing else are that condition
    ("Children 6-12 years with asthma", None, ["195967001"]),
    ("Age ≥ 18 years, with a diagnosis of type 2 diabetes", None, ["44054006"]),
    # the age's own words
    ("Adult patients (≥ 18 years) with no age limit", None, []),
    # (an age read twice is one age, with the words)
    ("Adults over age 18 with diabetes mellitus, diabetic macular edema and visually "
     "significant cataracts", ["and the rest of the criterion (in words)"], []),
    # … and before it (before, the age alone met the line: a man met "Postmenopausal women
    # aged 50-75", an adult without cancer "Patients with confirmed NSCLC aged ≥ 18 years")
    ("Patients with confirmed NSCLC aged ≥ 18 years", ["with confirmed NSCLC"], []),
    ("Postmenopausal women aged 50-75 years", ["Postmenopausal women"], []),
    # as written, a bracket inside them too (it was blanked: the approach was dropped after
    # the age, and the words before it lower-cased)
    ("Patients over 18 years of age who are scheduled for a right hemicolectomy (robotic or "
     "laparoscopic) with an anastomosis", ["who are scheduled for a right hemicolectomy "
                                           "(robotic or laparoscopic) with an anastomosis"], []),
    ("HIV-1 infected antiretroviral therapy (ART)-naive men or women aged 18 years or greater",
     ["HIV-1 infected antiretroviral therapy (ART)-naive men or women"], []),
    ("Children with asthma aged 6-12 years", None, ["195967001"]),
    # words that only say who, label a group, lead in, or offer another way in: none
    ("Male or female patients aged 18-65 years", None, []),
    ("Older adults (≥ 65 years)", None, []),
    ("Cohort 1: ≥ 12 years to < 18 years of age", None, []),
    ("Male or non-pregnant female adult ≥ 18 years of age", None, []),
    # the age's lower side written before its name is the age, not words to confirm
    ("18 years ≤ age ≤ 75 years", None, []),
    ("20 years old ≤ age ≤ 75 years old", None, []),
    ("Patients with NSCLC, 18 years ≤ age ≤ 75 years", ["with NSCLC"], []),
])
def test_an_inclusion_ages_words_are_the_lines_other_requirement(
        text: str, also: list[str] | None, conditions: list[str]) -> None:
    facts = facts_for(text, False)
    [age] = [f for f in facts if f.kind == "age"]
    assert age.data.get("also") == also
    assert [f.data["code"] for f in facts if f.kind == "condition"] == conditions


@pytest.mark.parametrize(("text", "exclude", "codes"), [
    # a window that ran up to a study event ("… prior to | registration") leaves the event
    ("Previous cancer in the 2 years prior to registration", True, ["363346000"]),
    # an event is acute: "acute" says nothing else about it (before, text); of any other
    # condition it names a kind ("acute renal failure" is no chronic renal failure)
    ("Acute myocardial infarction within 30 days of randomization", True, ["22298006"]),
    ("Acute renal failure", True, []),
    # how the diagnosis was made says nothing else about the condition (before, text)
    ("Confirmed diagnosis of rheumatoid arthritis according to ACR/EULAR 2010 criteria", False,
     ["69896004"]),
    ("COPD as defined by GOLD guidelines", False, ["13645005"]),
    # how recent, the window says ("recent" alone says no more than the name: text)
    ("Recent (within 3 months) myocardial infarction", True, ["22298006"]),
    ("Recent myocardial infarction", True, []),
    ("History of asthma before randomization", True, ["195967001"]),
    ("History of COPD prior to the first dose of study drug", True, ["13645005"]),
    ("Known HBV or HCV infection", True, ["66071002", "50711007"]),
    # a condition named by the letter that tells it from the one before it
    ("Hepatitis B or C infection", True, ["66071002", "50711007"]),
    ("Chronic hepatitis B or C", False, ["66071002", "50711007"]),
    ("Chronic hepatitis B", True, ["66071002"]),
    # a name that qualifies another noun, a cause of something else, what is tested or
    # consented to: no condition of the patient's
    ("Cancer screening within the last year", True, []),
    ("Malignancy screening within the last year", True, []),
    ("Being hemiplegic due to trauma, malignancy and intracranial operation", True, []),
    ("subjects who consented to carry out serological tests HIV, hepatitis B, hepatitis C",
     False, []),
    # (what another clause consents to is that clause's)
    ("Unable to give informed consent; history of asthma", True, ["195967001"]),
    ("Family history of cancer", True, []),
    # COVID-19 is a condition the lexicon codes (before, text), its vaccine and the pandemic
    # none of the patient's
    ("COVID-19 infection within 2 weeks prior to enrollment", True, ["840539006"]),
    ("Confirmed SARS-CoV-2 infection", True, ["840539006"]),
    ("Has laboratory-confirmed SARS-CoV-2 infection", False, ["840539006"]),
    ("Received a COVID-19 vaccine within 14 days", True, []),
    ("Unable to attend visits due to COVID-19 pandemic restrictions", True, []),
    # a window cut off with the exception may be the exception's: not read without it
    ("History of malignancy other than breast cancer within 2 years prior to screening", True,
     []),
])
def test_condition_names_and_what_is_no_condition_of_the_patients(
        text: str, exclude: bool, codes: list[str]) -> None:
    assert [f.data["code"] for f in facts_for(text, exclude) if f.kind == "condition"] == codes


@pytest.mark.parametrize(("text", "exclude", "words"), [
    # a clause after a comma that qualifies the condition: the condition holds only with it
    # (before, "or requiring hospitalization" was read as another condition beside asthma)
    ("History of asthma, requiring hospitalization", True, ["requiring hospitalization"]),
    ("Type 2 diabetes, poorly controlled", True, ["poorly controlled"]),
    ("Type 2 diabetes, treated with metformin", False, ["treated with metformin"]),
    # another condition after the comma is none of its qualifiers
    ("History of asthma, COPD", True, None),
])
def test_a_clause_qualifying_a_condition_goes_with_it(
        text: str, exclude: bool, words: list[str] | None) -> None:
    cond = next(f for f in facts_for(text, exclude) if f.kind == "condition")
    assert cond.data.get("with") == words


def test_an_inclusion_list_of_conditions_with_one_in_words_is_any_of_them() -> None:
    # before, "asthma, bronchiectasis or COPD" required asthma *and* COPD (the uncoded middle
    # item hid the list's "or"), turning away a patient with either alone
    [c] = criteria_for("Inclusion Criteria:\n* Diagnosis of asthma, bronchiectasis or COPD")
    assert c.combination == "any-of"


@pytest.mark.parametrize(("text", "kinds"), [
    # an excluded age with a coded condition: both together (before: the age, with words
    # for review — every patient over 75 was left to a person)
    ("Patients older than 75 years with COPD", ["age", "condition"]),
    ("Women older than 75 years with COPD", ["sex", "age", "condition"]),
    # words that are more than a condition stay the age's words
    ("Patients older than 80 years with frailty", None),
])
def test_an_excluded_age_with_a_coded_condition_excludes_with_both(
        text: str, kinds: list[str] | None) -> None:
    [f] = facts_for(text, True)
    if kinds is None:
        assert f.kind == "age"
        assert f.data["with"] == ["with frailty"]
    else:
        assert f.kind == GROUP
        assert [m.kind for m in f.data["facts"]] == kinds
        assert not any(m.data.get("with") for m in f.data["facts"])


# --- sub-headings that name the measure (the NCI's PDQ "PATIENT CHARACTERISTICS") -----------

PDQ_MARKDOWN = """DISEASE CHARACTERISTICS:

* Histologically confirmed adenocarcinoma of the prostate

PATIENT CHARACTERISTICS:

Age:

* 18 and over

Life expectancy:

* At least 12 weeks

Hemoglobin:

* At least 9 g/dL

Other:

* Not specified
* At least 4 weeks since prior radiotherapy
"""
# the legacy XML's layout of the same (NCT00023673 has it, with "Not specified" items)
PDQ_XML = """        PATIENT CHARACTERISTICS:

        Age:

          -  18 and over

        Life expectancy:

          -  At least 12 weeks

        Hemoglobin:

          -  At least 9 g/dL

        Other:

          -  Not specified

          -  At least 4 weeks since prior radiotherapy
"""


@pytest.mark.parametrize("text", [PDQ_MARKDOWN, PDQ_XML], ids=["markdown", "xml"])
def test_an_item_under_a_heading_naming_its_measure_is_read_with_the_name(text: str) -> None:
    # before, "18 and over" under "Age:" was a number of nothing: text
    read = {c.text: c for root in criteria_for(text) for c in root.walk()}
    assert [(f.kind, f.data["low"]) for f in read["18 and over"].facts] == [("age", 18)]
    [life] = read["At least 12 weeks"].facts
    assert (life.data["test"], life.data["low"], life.data["unit"]) == (
        "life-expectancy", 12, "wk")
    [hb] = read["At least 9 g/dL"].facts
    assert (hb.data["test"], hb.data["low"]) == ("hemoglobin", 9)
    # a heading that names no measure lends nothing; the headings stay text, each line once
    assert read["Not specified"].facts == []
    line = "At least 4 weeks since prior radiotherapy"
    assert read[line].facts == facts_for(line, False)
    assert read["Age:"].facts == []
    assert read["Other:"].facts == []


@pytest.mark.parametrize("text", ["Myocardial infarction no more than 6 months ago",
                                  "Myocardial infarction not more than 6 months ago",
                                  # (the "or" of the comparison splits no list of conditions)
                                  "Myocardial infarction 6 months or less before screening"])
def test_a_windows_own_no_denies_no_condition(text: str) -> None:
    # before, the "no"/"not" of the window was taken for a denial of the infarction: the
    # line excluded no one with a recorded infarction
    [mi] = [f for f in facts_for(text, True) if f.kind == "condition"]
    assert (mi.data["code"], mi.data["window"]) == (
        "22298006", {"comparator": "<=", "value": 6, "unit": "mo"})


@pytest.mark.parametrize(("text", "value", "unit"), [
    # how long the condition has lasted, in more words than "for at least" (before: text)
    ("Diagnosed with T2DM for more than 1 year", 1, "a"),
    ("Hypertension for over 6 months", 6, "mo"),
    ("Asthma for longer than 1 year", 1, "a"),
    ("Type 1 diabetes > 6 months", 6, "mo"),
])
def test_a_condition_lasting_more_than_a_time_is_its_at_least_window(
        text: str, value: int, unit: str) -> None:
    [c] = [f for f in facts_for(text, False) if f.kind == "condition"]
    assert c.data["window"] == {"comparator": ">=", "value": value, "unit": unit}


@pytest.mark.parametrize("text", ["Stroke > 3 months ago",
                                  "Myocardial infarction > 6 months before screening"])
def test_more_than_a_time_ago_is_no_duration(text: str) -> None:
    # a time since an event, not how long a condition lasted: no ">=" window is read here
    assert not [f for f in facts_for(text, True) if (f.data.get("window") or f.data).get(
        "comparator") == ">="]
