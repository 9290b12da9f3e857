"""The forms cooperative-group and NCI protocol templates repeat across thousands of trials
(organ-function tables, dose notes, the paediatric creatinine-by-age table, a rationale
restating the age limit, heart-failure classes in brackets). Lines written for these tests in
the templates' own wording; each states what a matcher must (or must not) take from it."""

from __future__ import annotations

import pytest

from fhirtrial.eligibility import criteria_for, facts_for


def _bounds(text: str, exclude: bool | None) -> list[tuple]:
    return [(f.kind, f.data.get("test"), f.data.get("low"), f.data.get("high"),
             (f.data.get("window") or {}).get("comparator"))
            for f in facts_for(text, exclude) if f.kind in ("lab", "age")]


# --- a second, different bound on one concept is not everyone's -------------------------------

@pytest.mark.parametrize("text", [
    # a dose note: read with the requirement, no one above 50 mL/min would be eligible
    "Calculated creatinine clearance (CrCl) ≥ 30 mL/min by Cockcroft-Gault formula; patients "
    "with CrCl 30-50 mL/min receive a reduced dose",
    # rows of a table: no one is 1 and 2 years old at once
    "Serum creatinine based on age/sex as follows: Age 1 to < 2 years: maximum 0.6 mg/dL; "
    "Age 2 to < 6 years: maximum 0.8 mg/dL",
    "Volunteers between 18 and 55 years of age for Substudy 1 and patients with psoriasis "
    "between 18 and 75 years of age for Substudy 2",
])
def test_two_different_bounds_on_one_concept_stay_text(text: str) -> None:
    assert _bounds(text, False) == []


def test_a_range_read_with_its_own_two_sides_is_one_bound() -> None:
    assert _bounds("Minimum age: 18 years maximum age: 99 years", False) == [
        ("age", None, 18, 99, None)]


# --- what a value sets off is not a requirement ----------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("Patients with CrCl 30-50 mL/min will receive a reduced dose of cisplatin", []),
    ("Subjects with body weight < 50 kg will be dosed at 10 mg", []),
    ("Participants with eGFR 30-59 mL/min/1.73 m2 will be assigned to cohort B", []),
    ("Hemoglobin ≥ 9 g/dL; patients with hemoglobin < 9 g/dL may receive a transfusion",
     [("lab", "hemoglobin", 9, None, None)]),
    ("Age ≥ 18 years; participants aged ≥ 65 years will be assigned to the elderly cohort",
     [("age", None, 18, None, None)]),
])
def test_a_bound_that_decides_treatment_or_cohort_is_not_a_requirement(
        text: str, expected: list[tuple]) -> None:
    assert _bounds(text, False) == expected


# --- a rationale restating the limit ---------------------------------------------------------

def test_the_reason_for_an_age_limit_is_not_a_second_age() -> None:
    text = ("Age ≥ 18 years. Because no dosing or adverse event data are currently available on "
            "the use of olaparib in patients < 18 years of age, children are excluded from this "
            "study")
    assert _bounds(text, False) == [("age", None, 18, None, None)]


def test_because_of_a_cause_is_not_a_rationale() -> None:
    # "because of" names a cause; the bound stays what it was
    assert _bounds("Hemoglobin < 8 g/dL because of chronic bleeding", True) == [
        ("lab", "hemoglobin", None, 8, None)]


# --- a bracket that says how the bound may be reached ----------------------------------------

@pytest.mark.parametrize("text", [
    "Hemoglobin ≥ 9 g/dL (may have been transfused)",
    "Hemoglobin ≥ 9 g/dL (with or without transfusion)",
    "Hemoglobin ≥ 9 g/dL (post-transfusion is acceptable)",
])
def test_a_transfusion_permission_keeps_the_bound(text: str) -> None:
    assert _bounds(text, False) == [("lab", "hemoglobin", 9, None, None)]


def test_a_bracketed_exception_is_a_way_in_beside_the_bound() -> None:
    # (the bound alone turned away the patients with thalassemia the trial takes)
    [f] = facts_for("Hemoglobin ≥ 9 g/dL (unless due to thalassemia)", False)
    assert (f.data["test"], f.data["low"]) == ("hemoglobin", 9)
    assert f.data["alternatives"] == [{"text": "if due to thalassemia"}]


# --- "for patients with creatinine above normal": whoever fails the first bound ---------------

@pytest.mark.parametrize(("first", "high"), [
    ("Creatinine ≤ 1.5 × institutional upper limit of normal", 1.5),
    # the older template: within normal limits of a concept with an upper limit only
    ("Creatinine within normal institutional limits", 1),
])
def test_the_nci_creatinine_template_is_either_bound(first: str, high: float) -> None:
    [c] = criteria_for(
        f"Inclusion Criteria:\n- {first} OR creatinine clearance ≥ 60 mL/min/1.73 m^2 for "
        "patients with creatinine levels above institutional normal")
    assert [(f.data["test"], f.data["low"], f.data["high"], f.data["relative"])
            for f in c.facts] == [("creatinine", None, high, "ULN"),
                                  ("creatinine-clearance", 60, None, None)]
    assert c.combination == "any-of"


def test_a_condition_some_who_fail_the_first_bound_do_not_meet_stays_text() -> None:
    # creatinine 1.5-2 × ULN fails the first bound and is not "above 2 × ULN"
    text = ("Creatinine ≤ 1.5 × ULN or creatinine clearance ≥ 60 mL/min for patients with "
            "creatinine > 2 × ULN")
    assert [b for b in _bounds(text, False) if b[1] == "creatinine-clearance"] == []


# --- classes in brackets ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "exclude", "expected"), [
    ("Liver cirrhosis (Child-Pugh B or C)", True, [("lab", "child-pugh", 7, 15, None)]),
    ("Physical status (ASA I-II)", False, [("lab", "asa", 1, 2, None)]),
    ("Severe heart failure (NYHA III and IV)", True, [("lab", "nyha", 3, 4, None)]),
    # the class of a condition in its history: at any time
    ("Patients with a history of congestive heart failure (NYHA class III or IV)", True,
     [("lab", "nyha", 3, 4, "ever")]),
    ("Known history of the following: uncontrolled hypertension, severe congestive heart "
     "failure (NYHA class IV)", True, [("lab", "nyha", 4, 4, "ever")]),
    # a bracket of words only stays a remark
    ("Hemoglobin ≥ 9 g/dL (Hb class II excluded)", False, [("lab", "hemoglobin", 9, None, None)]),
])
def test_a_class_in_brackets_is_read(text: str, exclude: bool, expected: list[tuple]) -> None:
    assert _bounds(text, exclude) == expected


def test_a_window_leading_a_list_is_the_window_of_its_classes() -> None:
    text = ("Any of the following within the 6 months prior to study entry: myocardial "
            "infarction, unstable angina, congestive heart failure (New York Heart Association "
            "Class ≥ II), cerebrovascular accident")
    [f] = [f for f in facts_for(text, True) if f.kind == "lab"]
    assert (f.data["test"], f.data["low"], f.data["window"]) == (
        "nyha", 2, {"comparator": "<=", "value": 6, "unit": "mo"})


@pytest.mark.parametrize("text", [
    "A serum creatinine based on age/gender as follows: maximum serum creatinine (mg/dL) 0.6 "
    "for age 2 to < 6 years",
    # the rows on one line, the second age a number the reader does not take for an age:
    # before, everyone had to be 1 to < 2 years old
    "Creatinine based on age/gender as follows: Age 1 to < 2 years, maximum 0.6 mg/dL; 2 to "
    "< 6 years, 0.8 mg/dL",
    "Maximum serum creatinine according to age: age 1 to < 2 years, 0.6 mg/dL",
])
def test_the_age_of_a_table_row_is_not_a_requirement(text: str) -> None:
    assert _bounds(text, False) == []


def test_a_transfusion_free_period_is_not_the_window_of_the_count() -> None:
    text = ("Platelet count ≥ 75,000/µL (transfusion independent, defined as not receiving "
            "platelet transfusions for at least 7 days prior to enrollment)")
    assert _bounds(text, False) == [("lab", "platelets", 75000, None, None)]


# --- forms of other specialties found the same way --------------------------------------------

def test_the_size_of_an_instrument_is_not_a_value() -> None:
    assert _bounds("HAM-D 17-item total score ≥ 18 at screening and baseline", False) == [
        ("lab", "hamd", 18, None, None)]
    assert _bounds("NRS pain intensity score ≥ 4 on an 11-point scale", False) == [
        ("lab", "pain-nrs", 4, None, None)]


def test_a_second_way_in_after_the_time_of_the_first_is_unread() -> None:
    # ≥ 300 at screening, or ≥ 150 with a documented ≥ 300 in the past year: no one bound
    text = ("Blood eosinophil count ≥ 300 cells/µL at screening or ≥ 150 cells/µL with "
            "documented ≥ 300 cells/µL in the previous 12 months")
    assert _bounds(text, False) == []


def test_some_of_several_samples_is_not_the_latest_result() -> None:
    assert _bounds("UACR between 30 and 300 mg/g in at least 2 of 3 consecutive samples",
                   False) == []


def test_a_bracket_giving_the_condition_then_the_concept_again_is_an_alternative() -> None:
    [f] = facts_for("Total bilirubin ≤ 1.5 × institutional upper limit of normal (ULN) (in "
                    "patients with known Gilbert's syndrome, total bilirubin ≤ 3 × ULN)", False)
    assert (f.data["test"], f.data["high"], f.data["relative"]) == ("bilirubin-total", 1.5, "ULN")
    [alt] = f.data["alternatives"]
    assert (alt["high"], alt["relative"], alt["condition"]) == (
        3, "ULN", "in patients with known Gilbert's syndrome")


@pytest.mark.parametrize("text", [
    "Absolute neutrophil count ≥ 1,500/mcL without growth factor support in the past 14 days",
    "Platelets ≥ 100,000/mcL without transfusion in the past 14 days",
])
def test_the_window_of_a_support_free_period_is_not_the_labs(text: str) -> None:
    [lab] = [f for f in facts_for(text, False) if f.kind == "lab"]
    assert "window" not in lab.data
    assert [(f.data["comparator"], f.data["value"], f.data["unit"])
            for f in facts_for(text, False) if f.kind == "time-window"] == [("<=", 14, "d")]


def test_a_value_on_several_time_points_is_not_the_latest_result() -> None:
    assert _bounds("Resting ECG with QTcF > 470 msec on 2 or more time points within a 24 hour "
                   "period", True) == []
    # a mean of several is one value
    assert _bounds("Mean resting QTcF > 470 ms obtained from 3 ECGs", True) == [
        ("lab", "qtc", 470, None, None)]


def test_a_name_is_not_cut_at_an_and_inside_it() -> None:
    # "Timed Up and Go test": not a measurement named "Go test"
    assert [f for f in facts_for("Timed Up and Go test > 12 seconds", False)
            if f.kind == "measurement"] == []


# --- sponsor templates (organ-function tables flattened into one line) ------------------------

def test_a_limit_multiple_the_concept_has_no_limit_for_is_not_its_bound() -> None:
    # the table's "≤ 1.5 × ULN" is creatinine's and "≥ 30 mL/min" the clearance's; the
    # condition "for participant with creatinine > 1.5 × ULN" is not a requirement
    text = ("Creatinine OR Measured or calculated creatinine clearance (GFR can also be used in "
            "place of creatinine or CrCl) ≤1.5 × ULN OR ≥30 mL/min for participant with "
            "creatinine levels >1.5 × institutional ULN")
    assert _bounds(text, False) == []
    assert _bounds("Creatinine clearance ≤ 1.5 × ULN", False) == []


def test_a_limit_without_a_multiple_sign_is_one_times_it() -> None:
    [c] = criteria_for("Inclusion Criteria:\n- Total bilirubin ≤1.5 ×ULN OR direct bilirubin "
                       "≤ULN for participants with total bilirubin levels >1.5 × ULN")
    assert [(f.data["test"], f.data["high"], f.data["relative"]) for f in c.facts] == [
        ("bilirubin-total", 1.5, "ULN"), ("bilirubin-direct", 1, "ULN")]
    assert c.combination == "any-of"


def test_exceptions_for_several_metastatic_sites_leave_the_bounds_text() -> None:
    text = ("AST, ALT, and alkaline phosphatase (ALP) ≤ 2.5 × ULN, with the following "
            "exceptions: Patients with documented liver metastases: AST and ALT ≤ 5 × ULN; "
            "Patients with documented liver or bone metastases: ALP ≤ 5 × ULN")
    assert _bounds(text, False) == []


# --- registry English from other countries ------------------------------------------------------

def test_each_sex_its_own_age_range_is_not_everyones() -> None:
    assert _bounds("Female patients aged 18-70 years old, male aged 18-75 years old",
                   False) == []
    # a sex ratio is not an age of the other sex
    assert _bounds("The ratio of male to female is 3:1, and the age is between 50 and 70 "
                   "years old", False) == [("age", None, 50, 70, None)]


def test_a_lower_age_written_before_the_name_with_old() -> None:
    assert _bounds("18 years old ≤ age ≤ 75 years old", False) == [("age", None, 18, 75, None)]


@pytest.mark.parametrize(("text", "expected"), [
    ("Fasting blood glucose (FBG) ≥ 7.0 mmol/L or 2h postprandial blood glucose ≥ 11.1 mmol/L",
     [("lab", "glucose", 7, None, None), ("lab", "glucose-2h", 11.1, None, None)]),
    # a value at a time after a load the lexicon has no concept for: not the plain one
    ("1-hour plasma glucose ≥ 155 mg/dL", []),
    # … and one it has: the 24-hour mean of ambulatory monitoring (LOINC 8490-5), not an
    # office reading
    ("Mean 24-h systolic BP ≥ 130 mmHg on ambulatory monitoring",
     [("lab", "bp-systolic-24h", 130, None, None)]),
    ("24-hour ambulatory blood pressure ≥ 130/80 mmHg",
     [("lab", "bp-systolic-24h", 130, None, None), ("lab", "bp-diastolic-24h", 80, None, None)]),
    ("Daytime ambulatory systolic BP ≥ 135 mmHg", []),
])
def test_a_timed_value_is_not_the_plain_concept(text: str, expected: list[tuple]) -> None:
    assert _bounds(text, False) == expected


# --- exclusions whose bound is one part of what they exclude ----------------------------------

def test_a_count_of_results_after_two_bounds_is_both_bounds() -> None:
    assert _bounds("Systolic BP > 180 mmHg or diastolic BP > 110 mmHg on two consecutive "
                   "measurements", True) == []


def test_an_exclusion_bound_with_a_finding_is_not_the_bound_alone() -> None:
    [f] = facts_for("Lipase > 2 × ULN with clinical signs of pancreatitis", True)
    assert (f.data["test"], f.data["low"], f.data["with"]) == (
        "lipase", 2, ["with clinical signs of pancreatitis"])
    # in an inclusion the bound is necessary, and read
    assert _bounds("Lipase > 2 × ULN with clinical signs of pancreatitis", False) == [
        ("lab", "lipase", 2, None, None)]


# --- "within normal institutional limits" ----------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("Total bilirubin within normal institutional limits",
     [("lab", "bilirubin-total", None, 1, None)]),
    ("AST(SGOT)/ALT(SGPT) within normal institutional limits",
     [("lab", "ast", None, 1, None), ("lab", "alt", None, 1, None)]),
    # both limits matter: one multiple does not state "between them"
    ("Serum potassium within normal limits", []),
    ("Hemoglobin within normal range", []),
])
def test_within_normal_limits_of_a_concept_with_an_upper_limit_only(
        text: str, expected: list[tuple]) -> None:
    assert _bounds(text, False) == expected


def test_an_age_group_that_must_weigh_is_a_group_not_everyones_age() -> None:
    [c] = criteria_for("Inclusion Criteria:\n- Patients < 18 years of age must weigh at least "
                       "20 kg")
    assert c.combination == "any-of"
    group, rest = c.facts
    assert group.kind == "all-of"
    assert [(f.kind, f.data.get("test"), f.data["low"], f.data["high"])
            for f in group.data["facts"]] == [("age", None, None, 18),
                                              ("lab", "body-weight", 20, None)]
    assert (rest.kind, rest.data["low"], rest.data["high"]) == ("age", 18, None)


def test_one_age_group_per_clause_each_with_its_scale() -> None:
    [c] = criteria_for("Inclusion Criteria:\n- For patients ≥ 16 years: Karnofsky ≥ 60%; for "
                       "patients < 16 years: Lansky ≥ 60")
    assert c.combination == "any-of"
    assert [[(f.kind, f.data.get("test"), f.data["low"], f.data["high"])
             for f in g.data["facts"]] for g in c.facts] == [
        [("age", None, 16, None), ("lab", "karnofsky", 60, None)],
        [("age", None, None, 16), ("lab", "lansky", 60, None)]]


@pytest.mark.parametrize(("text", "low", "high"), [
    ("Premature infants born at 23 0/7 to 28 6/7 weeks gestational age", 161, 202),
    ("Gestational age ≥ 32 0/7 weeks", 224, None),
    # weeks+days as much of Europe writes them
    ("Singleton pregnancy between 24+0 and 34+6 weeks of gestation", 168, 244),
    ("Gestational age ≥ 37+0 weeks", 259, None),
])
def test_gestational_weeks_and_sevenths_are_days(text: str, low: int, high: int | None) -> None:
    [f] = facts_for(text, False)
    assert (f.data["test"], f.data["low"], f.data["high"], f.data["unit"]) == (
        "gestational-age", low, high, "d")


def test_sevenths_on_a_concept_without_days_are_not_read() -> None:
    assert _bounds("Hemoglobin 9 1/7 g/dL", False) == []
    assert _bounds("HER2 IHC 3+ or ISH ratio ≥ 2.0", False) == []


@pytest.mark.parametrize("text", [
    "Modified Rankin Scale (mRS) score ≤ 1 before the stroke",
    "Pre-stroke mRS ≤ 2",
    "Pre stroke mRS ≤ 2",  # the prefix written as a word of its own
    "Premorbid modified Rankin score 0-1",
    "PSA < 4 ng/mL at diagnosis",
])
def test_a_value_before_the_illness_is_not_the_latest(text: str) -> None:
    assert _bounds(text, False) == []


def test_a_value_before_study_treatment_is_the_screening_value() -> None:
    assert _bounds("Hemoglobin ≥ 9 g/dL prior to treatment", False) == [
        ("lab", "hemoglobin", 9, None, None)]


@pytest.mark.parametrize("text", [
    "Orthostatic hypotension (drop in SBP ≥ 20 mmHg on standing)",
    "Changes in body weight more than 10 pounds in the past three months",
    "Daytime ambulatory SBP ≥ 135 mmHg",
])
def test_a_change_or_an_ambulatory_mean_is_not_a_level(text: str) -> None:
    assert _bounds(text, True) == []


def test_any_result_of_a_window_and_a_treatment_target_are_not_the_latest_level() -> None:
    # any one result in the 24 hours, not the latest
    assert _bounds("Temperature ≥ 38.5 °C on at least one occasion within 24 hours",
                   False) == []
    # the MAP vasopressors keep, not the patient's own
    assert _bounds("Requiring vasopressors to maintain MAP ≥ 65 mmHg", False) == []


def test_a_value_before_pregnancy_and_unread_ways_in_named_by_time() -> None:
    assert _bounds("Pre-pregnancy BMI ≥ 30 kg/m2", False) == []
    # any one of three values meets the line: the fasting one alone is not necessary
    assert _bounds("Fasting plasma glucose ≥ 92 mg/dL or 1-h ≥ 180 mg/dL or 2-h ≥ 153 mg/dL "
                   "on a 75-g OGTT", False) == []


def test_a_second_bound_in_another_measure_joined_by_and_is_not_an_alternative() -> None:
    [f] = facts_for("Reversibility of ≥ 12% and ≥ 200 mL in FEV1 after 400 µg salbutamol",
                    False)
    assert (f.data["low"], f.data["unit"], f.data.get("alternatives")) == (12, "%", None)


@pytest.mark.parametrize("text", [
    "Randomization will be stratified by ECOG performance status (0 vs 1)",
    "Weight will be recorded at each visit; patients losing > 10% of body weight will be "
    "evaluated by a dietitian",
    "Patients with BMI < 18.5 kg/m2 will receive nutritional support",
    "Treatment will be held if platelets < 50,000/µL",
])
def test_study_procedure_lines_state_no_bound(text: str) -> None:
    assert _bounds(text, False) == []


# --- registries in Japan and elsewhere -----------------------------------------------------------

@pytest.mark.parametrize("text", ["Platelet count ≧ 10×10⁴/μL", "Platelets ≥ 10 × 10^4/µL"])
def test_counts_in_ten_thousands_per_microlitre(text: str) -> None:
    [f] = facts_for(text, False)
    assert (f.data["test"], f.data["low"], f.data["unit"]) == ("platelets", 10, "10*4/uL")


def test_another_bound_of_the_same_kind_in_the_bracket_leaves_the_first_text() -> None:
    assert _bounds("Patients aged ≥ 20 years (Japan: ≥ 20 years; other countries: ≥ 18 years)",
                   False) == []
    # the bound restated in another unit is the same bound
    assert _bounds("Serum creatinine ≤ 1.5 mg/dl (≤ 133 µmol/l)", False) == [
        ("lab", "creatinine", None, 1.5, None)]


@pytest.mark.parametrize("text", [
    # the other side in a bracket, the first side's unit not where its text ends (before, ≥ 18
    # alone: an 80-year-old met it)
    "Age 18 years or older (maximum 75 years)",
    # the other side named as age again, which the grammar does not read
    "Age ≥ 18 years, upper age limit 65 years",
])
def test_an_unread_second_age_leaves_the_age_text(text: str) -> None:
    assert _bounds(text, False) == []


@pytest.mark.parametrize(("text", "low", "high"), [
    # "upper age" is no "per age" (a growth chart's): the age is the participant's (before,
    # text)
    ("Age ≥ 18 years, no upper age limit", 18, None),
    ("18 years and older, no upper age limit", 18, None),
    ("Age limit: 18-60 years", 18, 60),
])
def test_age_limits_as_written(text: str, low: int, high: int | None) -> None:
    assert _bounds(text, False) == [("age", None, low, high, None)]


@pytest.mark.parametrize("text", [
    # the lymph nodes' short axis is not every lesion's bound, nor is the 10 mm alone
    "Target lesion ≥ 10 mm in longest diameter (≥ 15 mm in short axis for lymph nodes)",
    # another symptom's rating than pain's
    "Weekly average itch NRS ≥ 7",
    # a name cut at its stop word is no name
    "Time in range < 50% on continuous glucose monitoring",
])
def test_lesion_subsets_other_symptoms_and_cut_names_are_not_read(text: str) -> None:
    assert [f for f in facts_for(text, False) if f.kind in ("lab", "measurement")] == []


def test_a_recist_target_lesion_is_the_patients() -> None:
    assert _bounds("Target lesion ≥ 10 mm", False) == [("lab", "lesion-size", 10, None, None)]
    # a target value is a goal
    assert _bounds("Target weight ≤ 70 kg", False) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("Natrium ≥ 135 mmol/l", [("lab", "sodium", 135, None, None)]),
    ("Kalium 3.5-5.0 mmol/l", [("lab", "potassium", 3.5, 5, None)]),
    ("Âge ≥ 18 ans", [("age", None, 18, None, None)]),
    ("Edad ≥ 18 años", [("age", None, 18, None, None)]),
])
def test_names_european_registries_use(text: str, expected: list[tuple]) -> None:
    assert _bounds(text, False) == expected
