"""Grammar mechanisms that read more of what criteria state without guessing: two ranges joined
by "or", bounds for each sex inside brackets after the name. Lines written for these tests."""

from __future__ import annotations

import pytest

from fhirtrial.eligibility import criteria_for, facts_for
from fhirtrial.eligibility.criteria import at_least
from fhirtrial.eligibility.fhir import characteristic, fact_text


def _one(text: str, exclude: bool | None = None) -> dict:
    [f] = [f for f in facts_for(text, exclude) if f.kind in ("lab", "age")]
    return f.data


# --- two ranges joined by "or" ---------------------------------------------------------------

@pytest.mark.parametrize(("text", "first", "second", "unit"), [
    ("Adolescents aged 12-15 years or 19-21 years", (12, 15), (19, 21), "a"),
    ("Age 40 to 49 or 60 to 69 years", (40, 49), (60, 69), "a"),
    ("BMI 17-19 or 31-34 kg/m2", (17, 19), (31, 34), "kg/m2"),
])
def test_two_disjoint_ranges_joined_by_or_are_either_or_alternatives(
        text: str, first: tuple, second: tuple, unit: str) -> None:
    d = _one(text, False)
    assert ((d["low"], d["high"]), d["unit"]) == (first, unit)
    [alt] = d["alternatives"]
    assert ((alt["low"], alt["high"]), alt["unit"], alt["condition"]) == (second, unit, None)


def test_second_range_under_a_condition_keeps_the_condition_as_text() -> None:
    d = _one("Aged 14-16 years, or 17-19 if still attending school", False)
    assert (d["low"], d["high"]) == (14, 16)
    [alt] = d["alternatives"]
    assert (alt["low"], alt["high"], alt["condition"]) == (17, 19,
                                                           "if still attending school")


def test_one_range_restated_in_another_unit_after_or_is_one_range() -> None:
    d = _one("Haemoglobin 9-11 g/dL or 5.6-6.8 mmol/L", False)
    assert (d["low"], d["high"], d["unit"], d.get("alternatives")) == (9, 11, "g/dL", None)


@pytest.mark.parametrize("text", [
    "Aged 20-40 years or 30-50 years",  # overlapping: the first alone would narrow it
    "Aged 1-2 years or 18-30 months",  # overlapping once both are in months
    "Creatinine 1-1.5 mg/dL or 2-3 × ULN",  # a level or a multiple: not one scale
])
def test_ranges_joined_by_or_that_cannot_be_alternatives_stay_text_only(text: str) -> None:
    assert [f for f in facts_for(text, False) if f.kind in ("lab", "age")] == []


# --- a bound for each sex inside brackets ----------------------------------------------------

@pytest.mark.parametrize(("text", "first", "second"), [
    # both sexes in one bracket, the sides parted by a semicolon
    ("Reduced grip strength (handgrip strength <27 kg in men; <16 kg in women)",
     ("male", None, 27), ("female", None, 16)),
    ("Hand grip strength (< 30 kg for men; < 20 kg for women) at screening",
     ("male", None, 30), ("female", None, 20)),
    # the bracket names one sex; the bound before it is the other sex's
    ("Haemoglobin ≥ 13.5 g/dL (≥ 12.5 g/dL for women)", ("male", 13.5, None),
     ("female", 12.5, None)),
    ("Haemoglobin at least 13.5 g/dL (women: at least 12.5 g/dL)", ("male", 13.5, None),
     ("female", 12.5, None)),
    ("Body weight 60 kg or more (female: 48 kg or more), stable for 3 months",
     ("male", 60, None), ("female", 48, None)),
    ("Haemoglobin ≥ 13.5 g/dL (12.5 g/dL in females)", ("male", 13.5, None),
     ("female", 12.5, None)),
])
def test_bracketed_bound_for_one_sex_makes_two_sex_restricted_alternatives(
        text: str, first: tuple, second: tuple) -> None:
    d = _one(text, False)
    assert (d["sex"], d["low"], d["high"]) == first
    [alt] = d["alternatives"]
    assert (alt["sex"], alt["low"], alt["high"], alt["condition"]) == (*second, None)


def test_a_bound_after_a_semicolon_with_its_condition_is_a_conditional_alternative() -> None:
    # not one statement of two sexes as in brackets: the women with the trait are excluded
    # below 9 only (before, the "< 10" alone excluded them at 9.5)
    [f] = [f for f in facts_for("Haemoglobin < 10 g/dL; < 9 g/dL in women with "
                                "thalassaemia trait", True) if f.kind == "lab"]
    [alt] = f.data["alternatives"]
    assert (f.data["high"], "sex" in f.data) == (10, False)
    assert (alt["high"], alt["condition"]) == (9, "in women with thalassaemia trait")


@pytest.mark.parametrize("text", [
    "Haemoglobin ≥ 13.5 g/dL (≤ 12.5 g/dL for women)",  # the other way round: not one limit
    "Haemoglobin ≥ 13.5 g/dL (women: ≥ 12.5 g/dL in pregnancy)",  # more than a sex
])
def test_bracketed_sex_bound_that_is_not_a_plain_alternative_is_not_split_by_sex(
        text: str) -> None:
    for f in facts_for(text, False):
        assert "sex" not in f.data or f.kind == "sex"
        for alt in f.data.get("alternatives") or []:
            assert "sex" not in alt


# --- concepts added to the lexicon -----------------------------------------------------------

@pytest.mark.parametrize(("text", "test", "low", "high", "unit"), [
    ("2-hour plasma glucose ≥ 11.1 mmol/L on an oral glucose tolerance test", "glucose-2h",
     11.1, None, "mmol/L"),
    ("Two-hour glucose 140 to 199 mg/dL", "glucose-2h", 140, 199, "mg/dL"),
    ("Serum total protein ≥ 6.0 g/dL", "total-protein", 6, None, "g/dL"),
    ("β2-microglobulin < 3.5 mg/L", "beta2-microglobulin", None, 3.5, "mg/L"),
    ("Glasco coma score of 9 or more", "gcs", 9, None, "{score}"),
    ("eGFR < 45 ml/m", "egfr", None, 45, "mL/min/{1.73_m2}"),
])
def test_new_lexicon_concepts_and_spellings_are_read(text: str, test: str, low: float | None,
                                                     high: float | None, unit: str) -> None:
    d = _one(text, False)
    assert (d["test"], d["low"], d["high"], d["unit"]) == (test, low, high, unit)


def test_two_hour_glucose_is_not_the_fasting_glucose() -> None:
    facts = [f for f in facts_for("Fasting glucose < 7.0 mmol/L and 2-h glucose 7.8 to 11.0 "
                                  "mmol/L", False) if f.kind == "lab"]
    assert [(f.data["test"], f.data["low"], f.data["high"]) for f in facts] == [
        ("glucose", None, 7), ("glucose-2h", 7.8, 11)]


def test_beta2_microglobulin_units_convert_to_mg_per_litre() -> None:
    from fhirtrial.eligibility.tables import tables
    lab = tables().lab("beta2-microglobulin")
    assert lab.to_canonical(3.5, "mg/L") == 3.5
    assert lab.to_canonical(0.35, "mg/dL") == pytest.approx(3.5)
    assert lab.to_canonical(296.6, "nmol/L") == pytest.approx(3.5, rel=1e-3)


# --- ages stated in the middle of a sentence ---------------------------------------------------

@pytest.mark.parametrize(("text", "low"), [
    ("Only volunteers 21 years of age or older are enrolled", 21),
    ("Persons enrolled must be 19 years old or older", 19),
])
def test_age_with_of_age_before_or_older_is_an_age(text: str, low: int) -> None:
    d = _one(text, False)
    assert (d["low"], d["unit"]) == (low, "a")


@pytest.mark.parametrize("text", [
    "Started smoking since 15 years of age or younger",  # an age at an event
    "Asthma diagnosed at 12 years of age or older",
    "Hypertension, duration of 5 years or older",  # a time span
    "Type 1 diabetes history of 10 years and older",
    "Smoking since age 15 or younger",                   # "age" named, after the event's word
    "Menopause after age 55",
])
def test_age_at_an_event_or_a_duration_is_not_the_participants_age(text: str) -> None:
    assert [f for f in facts_for(text, False) if f.kind == "age"] == []


# --- ranges whose two ends are in different time units ----------------------------------------

@pytest.mark.parametrize(("text", "low", "high"), [
    ("Newborns aged 12 hours to 14 days", (12, "h"), (14, "d")),
    ("Aged between 6h of life and 3 days of life", (6, "h"), (3, "d")),
    ("Infants aged 5 days to 8 weeks", (5, "d"), (8, "wk")),
    ("Infants aged 3 weeks to 5 months", (3, "wk"), (5, "mo")),  # no exact conversion needed
    ("Older than 6 months and younger than 80 years", (6, "mo"), (80, "a")),
])
def test_age_range_in_two_time_units_keeps_each_end_in_its_own_unit(
        text: str, low: tuple, high: tuple) -> None:
    # ages are counted in completed units: "≤ 14 days" holds at 14 days 20 hours, where "≤ 336
    # hours" would not; so the two ends are two bounds that must both hold
    [f] = [f for f in facts_for(text, False) if f.kind != "time-window"]
    assert f.kind == "all-of"
    lo, hi = (m.data for m in f.data["facts"])
    assert ((lo["low"], lo["unit"]), lo["high"]) == (low, None)
    assert ((hi["high"], hi["unit"]), hi["low"]) == (high, None)


def test_an_age_range_in_two_units_is_met_by_completed_units() -> None:
    from datetime import date

    from fhirtrial.eligibility.match import evaluate
    patient = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "Patient", "id": "p", "birthDate": "2006-06-01", "gender": "male"}}]}
    # 17 years and 6 months old: "6 months to 17 years" takes him, as would "Maximum age: 17
    # Years"; read as "6 to 204 months" it did not (he is 210 months old)
    for side in ("Inclusion", "Exclusion"):
        out = evaluate(f"{side} Criteria:\n* Children aged 6 months to 17 years", patient,
                       as_of=date(2023, 12, 1))
        assert out["parameter"][0]["valueCode"] == ("eligible" if side == "Inclusion"
                                                    else "not-eligible")


# --- precision: whose bound, and what "and/or" means ---------------------------------------------

def test_bound_written_before_the_next_name_is_not_given_to_the_previous_one() -> None:
    # "≥ 95" belongs to DBP (written before it), never to SBP across the "and/or"
    facts = [f for f in facts_for("Hypertension (≥ 150 mmHg SBP and/or ≥ 95 mmHg DBP)", False)
             if f.kind == "lab"]
    assert [(f.data["test"], f.data["low"]) for f in facts
            if f.data["test"] == "bp-systolic"] in ([], [("bp-systolic", 150)])


def test_a_semicolon_inside_a_bracket_does_not_join_two_alternatives() -> None:
    # the ";" is the first bound's own (one bound per sex): read as joining, the two ways in
    # were both required
    [c] = criteria_for("Inclusion Criteria:\n- Lower handgrip strength (< 26 kg in men; < 18 kg "
                       "in women) or slow gait speed (< 1 m/s)")
    assert [f.kind for f in c.facts] == ["lab", "measurement"]
    assert c.combination == "any-of"


def test_and_or_between_two_bounds_makes_them_alternatives() -> None:
    [c] = criteria_for("Inclusion Criteria:\n- Systolic BP ≥ 150 mmHg and/or diastolic BP ≥ 95 "
                       "mmHg")
    assert [f.data["test"] for f in c.facts] == ["bp-systolic", "bp-diastolic"]
    assert c.combination == "any-of"


# --- an alternative the grammar cannot read -------------------------------------------------------

@pytest.mark.parametrize("line", [
    "Frailty: grip strength < 20 kg or a chair-stand time > 15 s",
    # "and/or" offers the other comparison as a way in too
    "Frailty: at least 3 falls in a year and/or grip strength < 20 kg",
])
def test_bound_offered_or_an_unread_comparison_stays_text_outside_exclusions(line: str) -> None:
    assert [f for f in facts_for(line, False) if f.kind == "lab"] == []
    # in an exclusion the bound read still excludes on its own
    [f] = [f for f in facts_for(line, True) if f.kind == "lab"]
    assert (f.data["test"], f.data["high"]) == ("handgrip-strength", 20)


def test_an_alternative_read_as_an_uncoded_measurement_is_an_alternative() -> None:
    [c] = criteria_for("Inclusion Criteria:\n* Frailty: grip strength < 20 kg or timed walk "
                       "speed < 0.8 m/s")
    assert c.combination == "any-of"
    assert [(f.kind, f.data["high"]) for f in c.facts] == [("lab", 20), ("measurement", 0.8)]


def test_an_unread_comparison_added_with_and_leaves_the_bound() -> None:
    # the "or" is inside a phrase; the joint next to the unread "< 6 months" is "and"
    [f] = [f for f in facts_for("Grip strength < 20 kg in the dominant or non-dominant hand, "
                                "and pain for < 6 months", False) if f.kind == "lab"]
    assert f.data["high"] == 20


@pytest.mark.parametrize(("text", "expected"), [
    ("Hypertension (≥ 150 mmHg SBP and/or ≥ 95 mmHg DBP)",
     [("bp-systolic", 150, None), ("bp-diastolic", 95, None)]),
    ("Smoker with ≥ 8 ppm exhaled carbon monoxide", [("exhaled-co", 8, None)]),
    ("Lean: < 55 kg body weight", [("body-weight", None, 55)]),
    ("≥ 4 kg weight loss in the last 3 months", []),  # a change, not a level
    ("> 1.5 g/dL haemoglobin drop after surgery", []),
    ("≥ 15 mg/kg body weight of iron", []),  # a dose per weight, not a weight
])
def test_comparator_and_unit_right_before_a_name_are_its_bound(text: str,
                                                               expected: list) -> None:
    got = [(f.data["test"], f.data["low"], f.data["high"]) for f in facts_for(text, True)
           if f.kind == "lab"]
    assert got == expected


def test_names_joined_by_or_the_share_the_bound_and_are_not_narrowed_to_the_last() -> None:
    line = "Beck Depression Inventory or the Hamilton Depression Rating Scale score ≥ 14"
    # in an inclusion either scale may meet it: not the second alone
    assert [f for f in facts_for(line, False) if f.kind == "lab"] == []
    assert [f.data["test"] for f in facts_for(line, True) if f.kind == "lab"] == ["bdi", "hamd"]


def test_a_shared_bound_is_in_each_names_own_unit() -> None:
    # "mL/min" is a clearance's mL/min and an eGFR's mL/min/1.73 m² (before, the clearance
    # was given the eGFR's unit, a different quantity)
    got = [(f.data["test"], f.data["low"], f.data["unit"])
           for f in facts_for("Creatinine clearance/GFR ≥ 60 ml/min", True) if f.kind == "lab"]
    assert got == [("creatinine-clearance", 60, "mL/min"), ("egfr", 60, "mL/min/{1.73_m2}")]


def test_person_named_in_an_alternatives_condition_does_not_make_the_age_someone_elses() -> None:
    d = _one("Aged 14-16 years, or 17-19 if still living with a parent", False)
    assert d["alternatives"][0]["condition"] == "if still living with a parent"
    # the person before the age still makes it someone else's
    assert [f for f in facts_for("Mother aged 18-30 years, or 31-35 if healthy", False)
            if f.kind == "age"] == []


@pytest.mark.parametrize(("text", "low", "alt", "condition"), [
    ("Participants aged 18 years or older (20 years or older in Japan)", 18, 20, "in Japan"),
    ("Aged 18 years and over (19 years and over in Korea)", 18, 19, "in Korea"),
    ("Age ≥ 18 years (20 years or older in Japan)", 18, 20, "in Japan"),
])
def test_bracketed_alternative_with_its_direction_in_words_is_an_alternative(
        text: str, low: int, alt: int, condition: str) -> None:
    d = _one(text, False)
    assert (d["low"], d["high"]) == (low, None)
    [a] = d["alternatives"]
    assert (a["low"], a["high"], a["unit"], a["condition"]) == (alt, None, "a", condition)


def test_bracketed_alternative_in_the_other_direction_stays_text() -> None:
    # "18 or older (20 or younger in Japan)" is no alternative of the same bound
    assert [f for f in facts_for("Age 18 years or older (20 years or younger in Japan)", False)
            if f.kind == "age"] == []


# --- units written past the one a concept knows ------------------------------------------------

@pytest.mark.parametrize("text", [
    "Body weight < 40 kg/m2",            # a BMI's unit, not a weight's
    "Urine protein < 100 mg/dL",         # a dipstick concentration, not a 24-hour amount
    "Proteinuria < 1 g/L",
    "Hemoglobin ≥ 9 g/L/dL",
])
def test_a_unit_going_on_past_a_known_one_is_another_unit_and_stays_text(text: str) -> None:
    assert [f for f in facts_for(text, False) if f.kind == "lab"] == []


@pytest.mark.parametrize(("text", "test", "unit"), [
    ("Creatinine clearance ≥ 60 mL/min/1.73 m^2", "creatinine-clearance", "mL/min"),
    ("24-hour urine protein < 1 g", "proteinuria-24h", "g/(24.h)"),
    ("Proteinuria ≥ 300 mg", "proteinuria-24h", "mg/(24.h)"),
])
def test_units_the_lexicon_lists_are_still_read(text: str, test: str, unit: str) -> None:
    d = _one(text, False)
    assert (d["test"], d["unit"]) == (test, unit)


def test_age_in_y_o_is_read() -> None:
    assert (_one("≥ 20 y/o patients", False)["low"], _one("≥ 20 y/o patients", False)["unit"]) \
        == (20, "a")


def test_either_protein_measure_meets_the_line() -> None:
    [c] = criteria_for("Inclusion Criteria:\n* Urine protein-to-creatinine ratio < 1.0 g/g or "
                       "24-hour urine protein < 1 g")
    assert c.combination == "any-of"
    assert [f.data["test"] for f in c.facts] == ["upcr", "proteinuria-24h"]


def test_an_unread_alternative_named_from_a_number_leaves_the_line_text() -> None:
    # "or 24-hour …": the name after "or" starts with a number; the bound read alone would
    # demand what the line offers as one way in
    line = "Urine protein-to-creatinine ratio < 1.0 g/g or 24-hour urine protein < 1 g/L"
    assert [f for f in facts_for(line, False) if f.kind == "lab"] == []


@pytest.mark.parametrize(("text", "test"), [
    ("Bone marrow blasts ≥ 20%", "blasts-marrow"),
    ("5% or more blasts in bone marrow", "blasts-marrow"),
    ("Peripheral blood blasts < 5%", "blasts"),
    ("Circulating blasts < 1%", "blasts"),
])
def test_blasts_are_read_with_their_specimen(text: str, test: str) -> None:
    assert _one(text, False)["test"] == test


@pytest.mark.parametrize("text", [
    "CMV viral load > 1000 copies/mL",
    "EBV viral load > 500 copies/mL",
    "Viral load < 50 copies/mL",          # of which virus, the line does not say
])
def test_a_viral_load_not_named_hivs_is_not_hiv_rna(text: str) -> None:
    assert [f.data.get("test") for f in facts_for(text, False)
            if f.kind in ("lab", "measurement")] == [None]


@pytest.mark.parametrize("text", [
    "Positive PPD (≥ 5 mm induration)",       # the tuberculin skin test
    "Tuberculin skin test (PPD) ≥ 10 mm",
])
def test_ppd_alone_is_no_probing_depth(text: str) -> None:
    assert [f for f in facts_for(text, True) if f.kind == "lab"] == []


@pytest.mark.parametrize(("text", "exclude"), [
    ("ECOG performance status ≤ 2 (Karnofsky ≥ 60%)", False),
    ("ECOG 0-1 (KPS ≥ 70%)", False),
    ("ECOG ≥ 3 (Karnofsky < 50%)", True),
])
def test_a_bracket_restating_a_scale_on_another_of_its_construct_is_either(
        text: str, exclude: bool) -> None:
    [c] = criteria_for(("Exclusion" if exclude else "Inclusion") + f" Criteria:\n* {text}")
    assert c.combination == "any-of"
    assert [f.data["test"] for f in c.facts] == ["ecog", "karnofsky"]


def test_scales_of_other_constructs_in_a_bracket_stay_both_required() -> None:
    # NYHA and ECOG measure different things: the bracket adds a requirement
    [c] = criteria_for("Inclusion Criteria:\n* NYHA class I-II (ECOG 0-1)")
    assert c.combination == "all-of"


def test_blasts_without_a_specimen_are_no_coded_concept() -> None:
    # "blasts ≥ 20%" may be counted in blood or in marrow: neither code says it
    assert [f.kind for f in facts_for("Blasts ≥ 20%", False)] == ["measurement"]


# --- a dot before three digits ------------------------------------------------------------------

@pytest.mark.parametrize(("text", "test", "low"), [
    ("Platelets ≥ 100.000/mm3", "platelets", 100000),
    ("ANC ≥ 1.500/mm3", "neutrophils", 1500),
    ("Leukocytes ≥ 3.000/mm3", "wbc", 3000),
])
def test_a_count_per_volume_with_a_dot_before_three_digits_is_in_thousands(
        text: str, test: str, low: int) -> None:
    d = _one(text, False)
    assert (d["test"], d["low"], d["unit"]) == (test, low, "/uL")


@pytest.mark.parametrize("text", [
    "ANC ≥ 1.500 x 10^9/L",               # 1.5 or 1500 × 10⁹/L: no telling
    "Hemoglobin ≥ 9.000 g/dL",
])
def test_a_dot_before_three_zeros_elsewhere_stays_text(text: str) -> None:
    assert [f for f in facts_for(text, False) if f.kind == "lab"] == []


def test_a_decimal_with_three_digits_is_a_decimal() -> None:
    assert _one("INR ≤ 1.125", False)["high"] == 1.125


# --- a count of the items, or any one of them ---------------------------------------------------

AT_LEAST_TWO = ("Inclusion Criteria:\n* At least 2 of the following:\n  * Hemoglobin < 10 g/dL\n"
                "  * Platelets < 100 x 10^9/L\n  * ANC < 1.5 x 10^9/L")


def test_items_counted_by_an_at_least_lead_combine_as_at_least_that_many() -> None:
    # any two of the three suffice: read as all-of, the three would all be required
    [lead] = criteria_for(AT_LEAST_TWO)
    assert [f.data["test"] for c in lead.children for f in c.facts] == [
        "hemoglobin", "platelets", "neutrophils"]
    ch = characteristic(lead)
    combo = ch["definitionByCombination"]
    assert (combo["code"], combo["threshold"]) == ("at-least", 2)
    assert [m["description"] for m in combo["characteristic"]] == [
        "Hemoglobin < 10 g/dL", "Platelets < 100 x 10^9/L", "ANC < 1.5 x 10^9/L"]


@pytest.mark.parametrize(("lead", "n"), [
    ("Patients meet at least three out of the following six conditions:", 3),
    ("Two or more of the following SIRS criteria:", 2),
    ("Any two of the following:", 2),
    ("≥ 2 of the following risk factors:", 2),
    ("A minimum of 4 of these:", 4),
])
def test_the_threshold_is_the_number_the_lead_in_asks_for(lead: str, n: int) -> None:
    assert at_least(lead) == n
    [c] = criteria_for(f"Inclusion Criteria:\n* {lead}\n  * Age ≥ 50 years\n  * BMI ≥ 30 kg/m2")
    assert characteristic(c)["definitionByCombination"]["threshold"] == n


@pytest.mark.parametrize("lead", ["One of the following:", "All of the following:",
                                  "At least 2 prior lines of therapy, and:",
                                  "Patients with the following:"])
def test_a_lead_in_that_does_not_count_has_no_threshold(lead: str) -> None:
    assert at_least(lead) is None


def test_own_facts_beside_counted_items_are_all_of_them_and_the_count() -> None:
    text = ("Inclusion Criteria:\n* Age ≥ 50 years with at least 2 of the following:\n"
            "  * Hemoglobin < 10 g/dL\n  * Platelets < 100 x 10^9/L\n  * ANC < 1.5 x 10^9/L")
    [c] = criteria_for(text)
    combo = characteristic(c)["definitionByCombination"]
    assert combo["code"] == "all-of"
    assert "threshold" not in combo
    [inner] = [m for m in combo["characteristic"] if m["linkId"] == "alternatives"]
    assert inner["description"] == "at least 2 of the nested criteria"
    assert (inner["definitionByCombination"]["code"],
            inner["definitionByCombination"]["threshold"]) == ("at-least", 2)


@pytest.mark.parametrize("text", [
    "At least 2 of the following: hemoglobin < 10 g/dL, platelets < 100 × 10^9/L, "
    "ANC < 1.5 × 10^9/L",
    "Metabolic syndrome (3 or more of: waist circumference ≥ 102 cm, triglycerides ≥ "
    "150 mg/dL, HDL < 40 mg/dL)",
])
def test_a_line_counting_its_bounds_stays_text(text: str) -> None:
    assert [f for f in facts_for(text, False) if f.kind == "lab"] == []


def test_a_count_of_something_else_leaves_the_lines_bounds() -> None:
    facts = facts_for("At least 2 prior lines of therapy; ECOG ≤ 1 and ANC ≥ 1.5 x 10^9/L", False)
    assert [f.data["test"] for f in facts if f.kind == "lab"] == ["ecog", "neutrophils"]


def test_one_of_the_following_then_bounds_in_a_list_is_any_of() -> None:
    [c] = criteria_for("Inclusion Criteria:\n* One of the following: hemoglobin < 10 g/dL, "
                       "platelets < 100 × 10^9/L")
    assert c.combination == "any-of"
    assert [f.data["test"] for f in c.facts] == ["hemoglobin", "platelets"]


# --- pregnancy stated in a sentence of its own ------------------------------------------------

@pytest.mark.parametrize(("text", "exclude", "expected"), [
    ("Not pregnant and not breastfeeding. The risk of the study drug to a fetus is unknown.",
     False, [("pregnancy", False), ("lactation", False)]),
    ("Not pregnant; if able to bear children, willing to use two methods of contraception",
     False, [("pregnancy", False)]),
    ("Pregnant women. Women of childbearing potential must use contraception.", True,
     [("pregnancy", True)]),
])
def test_a_sentence_saying_only_the_pregnancy_state_is_read_whatever_follows(
        text: str, exclude: bool, expected: list) -> None:
    got = [(f.kind, f.data["value"]) for f in facts_for(text, exclude)
           if f.kind in ("pregnancy", "lactation")]
    assert got == expected


@pytest.mark.parametrize("text", [
    # an industry protocol template: the states are the lead-in's own (before, text)
    "A female participant is eligible to participate if she is not pregnant (see Appendix 3), "
    "not breastfeeding, and at least one of the following conditions applies:",
    "Female participants are eligible if they are not pregnant or lactating",
])
def test_an_eligibility_sentence_saying_the_states_is_read(text: str) -> None:
    assert [(f.kind, f.data["value"]) for f in facts_for(text, False)] == [
        ("pregnancy", False), ("lactation", False)]


def test_the_states_lead_in_keeps_its_nested_ways_in_beside_them() -> None:
    from fhirtrial.eligibility import criteria_for
    from fhirtrial.eligibility.fhir import characteristic

    [c] = criteria_for(
        "* A female participant is eligible to participate if she is not pregnant, not "
        "breastfeeding, and at least one of the following conditions applies:\n"
        "  * Is not a woman of childbearing potential\n"
        "  * Is a woman of childbearing potential using highly effective contraception")
    combo = characteristic(c)["definitionByCombination"]
    assert combo["code"] == "all-of"
    *states, nested = combo["characteristic"]
    assert [s["description"] for s in states] == ["Pregnancy: no", "Lactation: no"]
    assert nested["definitionByCombination"]["code"] == "any-of"
    assert len(nested["definitionByCombination"]["characteristic"]) == 2


def test_pregnancy_words_in_a_sentence_about_something_else_stay_text() -> None:
    assert [f for f in facts_for("Negative pregnancy test. Patients may breastfeed after "
                                 "the study.", False)
            if f.kind in ("pregnancy", "lactation")] == []


def test_if_that_states_the_criterion_itself_is_not_a_condition() -> None:
    facts = facts_for("Women will be excluded if they are pregnant or breastfeeding", True)
    assert [(f.kind, f.data["value"]) for f in facts if f.kind in ("pregnancy", "lactation")] \
        == [("pregnancy", True), ("lactation", True)]
    # a real condition still leaves the bound text-only
    assert [f for f in facts_for("Life expectancy > 6 months if the tumour is resected", False)
            if f.kind == "lab"] == []


def test_or_if_continuing_an_exclusion_trigger_is_part_of_it() -> None:
    facts = facts_for("Women will be excluded if they are breastfeeding, or if they are "
                      "pregnant", True)
    assert sorted(f.kind for f in facts) == ["lactation", "pregnancy"]


def test_included_if_is_a_condition_unless_it_leads_in_to_a_list() -> None:
    # a lead-in: the age holds for everyone, the list below says the rest
    [age] = [f for f in facts_for("Adults, 21 years and older, were included if they had:", False)
             if f.kind == "age"]
    assert age.data["low"] == 21
    # a permission under a condition: the second BMI is not a bound on everyone
    bmis = [f.data for f in facts_for("BMI 19-24 kg/m2; those with BMI up to 27 kg/m2 will be "
                                      "included if waist circumference is < 90 cm", False)
            if f.kind == "lab" and f.data["test"] == "bmi"]
    assert [(d["low"], d["high"]) for d in bmis] == [(19, 24)]


# --- a condition that only restates that the first alternative failed ---------------------------

def test_condition_that_negates_the_first_alternative_is_dropped_and_the_or_kept() -> None:
    [c] = criteria_for("Inclusion Criteria:\n- Serum creatinine ≤ 1.3 × ULN OR creatinine "
                       "clearance ≥ 55 mL/min for patients with creatinine levels > 1.3 × ULN")
    assert [(f.data["test"], f.data["low"], f.data["high"]) for f in c.facts] == [
        ("creatinine", None, 1.3), ("creatinine-clearance", 55, None)]
    assert c.combination == "any-of"


def test_below_and_above_the_limit_are_each_others_failure() -> None:
    facts = facts_for("Serum creatinine below the institutional upper limit of normal or "
                      "creatinine clearance ≥ 55 mL/min for patients with creatinine above the "
                      "upper limit of normal", False)
    assert [f.data["test"] for f in facts if f.kind == "lab"] == ["creatinine",
                                                                  "creatinine-clearance"]


@pytest.mark.parametrize("text", [
    # the condition says more than "the first failed": it stays a condition
    "Creatinine ≤ 1.3 mg/dL or creatinine clearance ≥ 55 mL/min for patients with "
    "creatinine > 2 mg/dL",
    "Creatinine ≤ 1.3 mg/dL or creatinine clearance ≥ 55 mL/min for patients with diabetes",
])
def test_other_conditions_on_an_alternative_leave_the_clause_text_only(text: str) -> None:
    assert [f for f in facts_for(text, False) if f.kind == "lab"] == []


# --- names with brackets in them, and more concepts -----------------------------------------------

@pytest.mark.parametrize(("text", "test", "low", "high", "unit"), [
    ("Serum 25(OH)D level < 12 ng/mL", "vitamin-d", None, 12, "ng/mL"),
    ("Lp(a) ≥ 90 mg/dL", "lipoprotein-a", 90, None, "mg/dL"),
    ("Lipoprotein (a) above 60 mg/dL", "lipoprotein-a", 60, None, "mg/dL"),
    ("TSAT < 15%", "transferrin-saturation", None, 15, "%"),
])
def test_names_with_brackets_and_new_concepts_are_read(text: str, test: str,
                                                       low: float | None, high: float | None,
                                                       unit: str) -> None:
    d = _one(text, False)
    assert (d["test"], d["low"], d["high"], d["unit"]) == (test, low, high, unit)


def test_lipoprotein_a_in_nmol_per_litre_is_not_converted_to_mass() -> None:
    assert [f for f in facts_for("Lp(a) ≥ 150 nmol/L", False) if f.kind == "lab"] == []


# --- a value for each sex written as a pair -------------------------------------------------------

@pytest.mark.parametrize(("text", "first", "second"), [
    ("Low HDL cholesterol: < 45/35 mg/dL; F/M", ("female", None, 45), ("male", None, 35)),
    ("Waist circumference ≥ 85/95 cm (women/men)", ("female", 85, None), ("male", 95, None)),
    ("Haemoglobin < 11.5/12.5 g/dL (M/F)", ("male", None, 11.5), ("female", None, 12.5)),
])
def test_value_pair_with_the_sexes_it_is_for_is_one_bound_per_sex(
        text: str, first: tuple, second: tuple) -> None:
    d = _one(text, True)
    assert (d["sex"], d["low"], d["high"]) == first
    [alt] = d["alternatives"]
    assert (alt["sex"], alt["low"], alt["high"]) == second


@pytest.mark.parametrize("text", [
    "HDL cholesterol < 45/35 mg/dL",  # which value is whose is not said
    "Haemoglobin < 11.5/12.5 g/dL (F/F)",
])
def test_value_pair_without_two_sexes_stays_text(text: str) -> None:
    assert [f for f in facts_for(text, True) if f.kind == "lab"] == []


# --- brackets and phrases that make a bound hold for some patients only ----------------------

@pytest.mark.parametrize("text", [
    # a bracket without a number is otherwise blanked as a remark; this one qualifies the
    # bound, and holds more than the exception (exceptions in words: see below)
    "Total bilirubin ≤ 1.5 × ULN (ULN; unless known Gilbert's syndrome)",
    # one cohort's or group's bound, not everyone's
    "Platelets ≥ 100,000/µL for the dose-escalation cohort",
    "Hemoglobin ≥ 10 g/dL (for the healthy volunteer group)",
    "ALT ≤ 5 × ULN (if liver metastases)",
    "ALT ≤ 5 × ULN (in patients with liver metastases)",
    # a bracket whose bound could not be read as the alternative
    "Creatinine ≤ 1.5 mg/dL (in patients aged 65 or older: ≤ 1.2 mg/dL)",
    # the condition after the bound, in words the clause check did not know
    "ALT ≤ 5 × ULN with liver metastases",
    "Alkaline phosphatase ≤ 5 × ULN in the presence of bone metastases",
    "ALT ≤ 5 × ULN in the setting of hepatic metastases",
    "Platelets ≥ 75,000/µL when bone marrow involvement is present",
    # another test for some patients: the bound is not theirs
    "Total bilirubin ≤ 1.5 mg/dL (if Gilbert syndrome, the direct bilirubin value will be "
    "used)",
])
def test_a_bound_that_holds_for_some_patients_only_stays_text(text: str) -> None:
    for exclude in (False, True):
        assert [f for f in facts_for(text, exclude) if f.kind == "lab"] == []


@pytest.mark.parametrize(("text", "test", "words"), [
    # an exception in words, in brackets or after the bound (read as everyone's bound, it
    # turned away the patients with Gilbert's syndrome the trial takes; then the line was text)
    ("Total bilirubin ≤ 1.5 mg/dL (unless Gilbert's syndrome)", "bilirubin-total",
     "Gilbert's syndrome"),
    ("Serum bilirubin > 2 × ULN (except Gilbert's syndrome)", "bilirubin-total",
     "Gilbert's syndrome"),
    ("Total bilirubin ≤ 1.5 × ULN (excluding Gilbert's syndrome)", "bilirubin-total",
     "Gilbert's syndrome"),
    ("Total bilirubin ≤ 1.5 × ULN except for Gilbert's syndrome", "bilirubin-total",
     "Gilbert's syndrome"),
    ("Total bilirubin ≤ 1.5 × ULN, with the exception of Gilbert's syndrome", "bilirubin-total",
     "Gilbert's syndrome"),
    ("INR ≤ 1.5 unless receiving warfarin", "inr", "receiving warfarin"),
    # (a duration inside the exception is the exception's)
    ("PT/INR ≤ 1.5 × ULN unless on anticoagulation therapy with a stable dose for at least 2 "
     "weeks", "inr", "on anticoagulation therapy with a stable dose for at least 2 weeks"),
])
def test_an_exception_in_words_is_a_way_in_or_a_reason_not_to_exclude(
        text: str, test: str, words: str) -> None:
    # in an inclusion the words are a way in beside the bound (any-of); in an exclusion the
    # bound excludes unless the words hold
    [inc] = [f for f in facts_for(text, False) if f.kind == "lab"]
    assert inc.data["test"] == test
    assert inc.data["alternatives"] == [{"text": words}]
    assert "unless" not in inc.data
    [exc] = [f for f in facts_for(text, True) if f.kind == "lab"]
    assert exc.data["test"] == test
    assert exc.data["unless"] == [words]
    assert "alternatives" not in exc.data


@pytest.mark.parametrize(("text", "inclusion", "exclusion"), [
    # a cause: "or if due to …" as a way in, "unless due to …" as an exclusion's exception
    ("QTcF ≤ 470 ms other than due to bundle branch block", "if due to bundle branch block",
     "due to bundle branch block"),
    # the preposition of "except in …" is the patients', kept
    ("Bilirubin > 1.5 mg/dL except in patients with documented Gilbert's syndrome",
     "in patients with documented Gilbert's syndrome",
     "in patients with documented Gilbert's syndrome"),
    # a list of causes closed by "or" is the exception's whole (it kept its first item), in
    # the case it is written ("gilbert's", lower-cased, before)
    ("Total bilirubin ≤ 2.0 mg/dL unless due to Gilbert's syndrome, hemolysis, or hepatic "
     "infiltration by tumor",
     "if due to Gilbert's syndrome, hemolysis, or hepatic infiltration by tumor",
     "due to Gilbert's syndrome, hemolysis, or hepatic infiltration by tumor"),
])
def test_an_exceptions_words_as_the_reader_says_them(text: str, inclusion: str,
                                                     exclusion: str) -> None:
    [inc] = facts_for(text, False)
    assert inc.data["alternatives"] == [{"text": inclusion}]
    [exc] = facts_for(text, True)
    assert exc.data["unless"] == [exclusion]
    assert fact_text(exc).endswith(("unless " if exclusion.startswith("due") else "except ")
                                   + exclusion)


@pytest.mark.parametrize(("text", "waived", "plain"), [
    # joined by "and": the exception closing the pair is both bounds'
    ("INR ≤ 1.5 and aPTT ≤ 1.5 × ULN (unless on therapeutic anticoagulation)",
     ["inr", "aptt"], []),
    ("INR ≤ 1.5 and aPTT ≤ 1.5 × ULN unless on anticoagulation", ["inr", "aptt"], []),
    # a clause of its own: the exception is the INR's only
    ("Hemoglobin ≥ 9 g/dL; INR ≤ 1.5 (unless on anticoagulation)", ["inr"], ["hemoglobin"]),
    ("Total bilirubin ≤ 1.5 × ULN (unless Gilbert's syndrome); AST and ALT ≤ 3 × ULN",
     ["bilirubin-total"], ["ast", "alt"]),
    # earlier bounds of a comma list it closes may or may not be waived: text (the platelets
    # and the ANC), not everyone's bound nor a waiver no one wrote for them
    ("ANC ≥ 1.5 × 10^9/L, platelets ≥ 100 × 10^9/L, hemoglobin ≥ 9 g/dL (unless due to marrow "
     "involvement)", ["hemoglobin"], []),
    # … but after a bracket closing the list, the bracket's whole list
    ("Adequate bone marrow function (ANC ≥ 1.5 × 10^9/L, platelets ≥ 100 × 10^9/L) except for "
     "patients with marrow infiltration", ["neutrophils", "platelets"], []),
])
def test_which_bounds_an_exception_waives(text: str, waived: list[str], plain: list[str]
                                          ) -> None:
    facts = [f for f in facts_for(text, False) if f.kind == "lab"]
    assert [f.data["test"] for f in facts if f.data.get("alternatives")] == waived
    assert [f.data["test"] for f in facts if not f.data.get("alternatives")] == plain


@pytest.mark.parametrize(("text", "exclude"), [
    # the exception refers to other criteria, or is an age's (whose, is not said)
    ("Creatinine ≤ 1.5 mg/dL unless otherwise specified", False),
    ("Creatinine ≤ 1.5 mg/dL except as noted below", False),
    ("Age ≥ 18 and INR ≤ 1.5 unless on warfarin", False),
    # an exclusion's bound held for a time, or denied: the exception cannot be stated with it
    ("Hemoglobin < 9 g/dL within 2 weeks unless transfused", True),
    ("No platelets < 50 × 10^9/L unless on treatment", True),
])
def test_an_exception_the_reader_cannot_state_leaves_the_line_text(text: str,
                                                                   exclude: bool) -> None:
    assert [f for f in facts_for(text, exclude) if f.kind == "lab"] == []


@pytest.mark.parametrize(("text", "exclude", "condition"), [
    # the concept named again after "or", its bound under the words after it: the first
    # bound's alternative, as without the name (read as two bounds, the second let in every
    # BMI over 27, or excluded every BMI over 35)
    ("BMI ≥ 30 kg/m² or BMI ≥ 27 kg/m² with at least one weight-related comorbidity", False,
     "with at least one weight-related comorbidity"),
    ("BMI ≥ 40 kg/m² or BMI ≥ 35 kg/m² with obesity-related comorbidities", True,
     "with obesity-related comorbidities"),
    # (a joint the condition ran into is not the condition's)
    ("PaO2/FiO2 < 300 or PaO2/FiO2 < 200 if lung is the only organ dysfunction or SaO2:FiO2 "
     "150", False, "if lung is the only organ dysfunction"),
])
def test_a_bound_named_again_after_or_under_a_condition_is_an_alternative(
        text: str, exclude: bool, condition: str) -> None:
    [f] = facts_for(text, exclude)
    [alt] = f.data["alternatives"]
    assert alt["condition"] == condition


def test_what_an_exceptions_bracket_holds_is_the_excepted_only() -> None:
    # the lymph nodes' short axis was read as every patient's requirement (NCT02679963)
    line = ("At least one lesion ≥ 10 mm in the longest diameter (except lymph nodes that must "
            "have short axis ≥ 15 mm)")
    assert facts_for(line, False) == []


@pytest.mark.parametrize("text", [
    "Hemoglobin ≥ 9 g/dL (transfusion is allowed)",  # a permission, not a patient group
    "Hemoglobin ≥ 9 g/dL (transfusions are permitted)",
    "Hemoglobin ≥ 9 g/dL (if available)",  # about the test
    # which of two measurements counts when they disagree: the bound holds for everyone
    "Hemoglobin ≥ 9 g/dL (if the laboratory and point-of-care values differ, the laboratory "
    "value will be used)",
])
def test_remarks_that_qualify_nobody_leave_the_bound(text: str) -> None:
    [f] = [f for f in facts_for(text, False) if f.kind == "lab"]
    assert (f.data["test"], f.data["low"]) == ("hemoglobin", 9)


@pytest.mark.parametrize(("text", "test", "first", "second", "condition"), [
    ("ALT ≤ 2.5 × ULN (in patients with liver metastases: ≤ 5 × ULN)", "alt", 2.5, 5,
     "in patients with liver metastases"),
    ("ALT ≤ 2.5 × ULN (for patients with liver metastases ≤ 5 × ULN)", "alt", 2.5, 5,
     "for patients with liver metastases"),
    ("Platelets ≥ 50,000/µL (if bone marrow involvement, ≥ 30,000/µL)", "platelets", 50000,
     30000, "if bone marrow involvement"),
    # the comparator left out: the bound's own
    ("ALT ≤ 2.5 × ULN (5 × ULN if liver metastases)", "alt", 2.5, 5, "if liver metastases"),
    ("ANC ≥ 1500/µL (1000/µL if bone marrow involvement)", "neutrophils", 1500, 1000,
     "if bone marrow involvement"),
])
def test_bracketed_alternative_with_its_condition_first_or_no_comparator(
        text: str, test: str, first: float, second: float, condition: str) -> None:
    [f] = [f for f in facts_for(text, False) if f.kind == "lab"]
    d = f.data
    side = "high" if test == "alt" else "low"
    assert (d["test"], d[side]) == (test, first)
    [alt] = d["alternatives"]
    assert (alt[side], alt["relative"], alt["unit"], alt["condition"]) == (
        second, d["relative"], d["unit"], condition)


@pytest.mark.parametrize("text", [
    "No factors such as family history of long QT syndrome or unexplained sudden death under "
    "40 years of age",
    "First-degree relative diagnosed with colon cancer before age 50",
    "Family history of sudden cardiac death at < 50 years",
])
def test_a_relatives_age_at_an_event_is_not_the_participants_age(text: str) -> None:
    for exclude in (False, True):
        assert [f for f in facts_for(text, exclude) if f.kind == "age"] == []


def test_alternative_with_its_comparator_after_the_value_keeps_its_condition_as_written() -> None:
    d = _one("BMI of 30 kg/m² or greater, or 27 kg/m² or greater with at least one "
             "weight-related comorbidity", False)
    assert (d["test"], d["low"], d["unit"]) == ("bmi", 30, "kg/m2")
    [alt] = d["alternatives"]
    # the condition in the words of the criterion, not the canonical "with ≥ one"
    assert (alt["low"], alt["unit"], alt["condition"]) == (
        27, "kg/m2", "with at least one weight-related comorbidity")


@pytest.mark.parametrize("text", [
    "Age ≥ 60 years or age 18-59 years with comorbidities",
    "In a child aged ≥7 years (site A) or aged ≥8 years (site B), evidence of assent",
])
def test_two_ages_offered_with_or_are_not_both_required(text: str) -> None:
    # two age facts would demand both at once (≥ 60 and 18-59: nobody)
    assert [f for f in facts_for(text, False) if f.kind in ("age", "group")] == []


# --- notations -----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "low"), [
    ("Participant is at least eighteen (18) years old", 18),
    ("Aged seventeen (17) years or older", 17),
])
def test_a_number_in_words_and_in_digits_is_one_number(text: str, low: int) -> None:
    d = _one(text, False)
    assert (d["low"], d["unit"]) == (low, "a")


@pytest.mark.parametrize(("text", "low"), [
    # a compound number in words, and one right after "age" without a unit (before, text)
    ("Twenty-one years of age or older", 21),
    ("Age twenty-one or older", 21),
    ("Aged sixty-five or older", 65),
    ("Patients aged sixty five years or more", 65),
])
def test_ages_in_words(text: str, low: int) -> None:
    d = _one(text, False)
    assert (d["low"], d["high"], d["unit"]) == (low, None, "a")


def test_a_number_in_words_and_other_digits_is_not_read_as_either() -> None:
    assert [f for f in facts_for("Aged eighteen (21) years or older", False)
            if f.kind == "age"] == []


def test_a_unit_ending_in_a_name_is_not_a_mention_of_that_name() -> None:
    # "mm/hr": hr is the unit's hour, not heart rate (HR) cutting the bound short
    d = _one("ESR > 28 mm/hr", False)
    assert (d["test"], d["low"], d["unit"]) == ("esr", 28, "mm/h")


@pytest.mark.parametrize(("text", "test", "side", "relative"), [
    ("TSH above the normal range", "tsh", "low", "ULN"),
    ("Free T4 below normal range", "free-t4", "high", "LLN"),
    ("Amylase higher than normal", "amylase", "low", "ULN"),
])
def test_above_or_below_the_normal_range_is_a_reference_limit(
        text: str, test: str, side: str, relative: str) -> None:
    d = _one(text, False)
    assert (d["test"], d[side], d["relative"]) == (test, 1, relative)
    assert d["low_inclusive" if side == "low" else "high_inclusive"] is False


@pytest.mark.parametrize(("text", "alt_low", "condition"), [
    ("Patients ≥ 18 years of age (≥ 20 years of age in Japan)", 20, "in Japan"),
    ("Aged 18 years or older (or 20 years old in Japan)", 20, "in Japan"),
    ("Age ≥ 18 years (≥ 19 years in South Korea)", 19, "in South Korea"),
])
def test_an_age_for_one_country_in_brackets_is_a_conditional_alternative(
        text: str, alt_low: int, condition: str) -> None:
    # read as two ages, it demanded the larger of everyone
    [f] = [f for f in facts_for(text, False) if f.kind == "age"]
    assert (f.data["low"], f.data["unit"]) == (18, "a")
    [alt] = f.data["alternatives"]
    # the condition as written, capitals included (the narrative shows it)
    assert (alt["low"], alt["unit"], alt["condition"]) == (alt_low, "a", condition)


@pytest.mark.parametrize(("text", "high", "high_inclusive"), [
    ("Age ≥ 18 years old, ≤ 75 years", 75, True),
    ("Age ≥ 18 years old and < 65 years old", 65, False),
])
def test_years_old_between_the_two_sides_of_an_age_range(text: str, high: int,
                                                         high_inclusive: bool) -> None:
    d = _one(text, False)
    assert (d["low"], d["high"], d["high_inclusive"]) == (18, high, high_inclusive)


# --- a score written in its letter classes (the lexicon's grades) ----------------------------

@pytest.mark.parametrize(("text", "low", "high", "low_inclusive", "high_inclusive"), [
    ("Child-Pugh A", 5, 6, True, True),
    ("Cirrhosis with Child-Pugh class A", 5, 6, True, True),
    ("Child-Pugh score of A", 5, 6, True, True),
    ("Child-Pugh class A or B7", 5, 7, True, True),
    ("Child-Pugh B or C cirrhosis", 7, 15, True, True),
    ("Child-Pugh ≤ B7", None, 7, True, True),
    ("Child-Pugh < C", None, 10, True, False),
])
def test_child_pugh_classes_are_the_scores_they_stand_for(
        text: str, low, high, low_inclusive: bool, high_inclusive: bool) -> None:
    d = _one(text, False)
    assert (d["test"], d["low"], d["high"], d["unit"]) == ("child-pugh", low, high, "{score}")
    assert (d["low_inclusive"], d["high_inclusive"]) == (low_inclusive, high_inclusive)


@pytest.mark.parametrize("text", [
    "Child-Pugh A or C",  # not one range
    "Child-Pugh class B8 or worse",  # which way is worse is the scale's
    "cirrhosis of Child-Pugh B7 o >",
    "Child-Pugh class 2 or 3",  # not scores (5-15), and not letters
])
def test_child_pugh_classes_that_are_not_one_range_stay_text(text: str) -> None:
    assert [f for f in facts_for(text, False) if f.kind == "lab"] == []


@pytest.mark.parametrize("text", [
    "Infants born to mothers with HbA1c > 6.5%",  # the mother's, not the participant's
    "Partner BMI > 30 kg/m²",
    "Spouse's weight > 100 kg",
    "Tumor shrinkage of at least 30%",  # a change, not a level (uncoded name)
    "Bone loss > 15%",
])
def test_another_persons_level_or_a_change_is_not_the_participants_level(text: str) -> None:
    for exclude in (False, True):
        assert [f for f in facts_for(text, exclude)
                if f.kind in ("lab", "measurement", "age")] == []


@pytest.mark.parametrize(("text", "tests", "high"), [
    ("ALAT and ASAT ≤ 3 x N", ["alt", "ast"], 3),
    ("ASAT, ALAT ≤ 3N, bilirubin ≤ 1.5N", ["ast", "alt", "bilirubin-total"], None),
    ("Bilirubin < 1.5 N", ["bilirubin-total"], 1.5),
])
def test_n_after_a_multiple_is_the_upper_limit_of_normal(text: str, tests: list[str],
                                                         high: float | None) -> None:
    facts = [f.data for f in facts_for(text, False) if f.kind == "lab"]
    assert [d["test"] for d in facts] == tests
    assert {d["relative"] for d in facts} == {"ULN"}
    if high is not None:
        assert {d["high"] for d in facts} == {high}


@pytest.mark.parametrize("text", ["Grip strength > 200 N", "Stage T2 N0 M0", "cT1-2 N+"])
def test_n_that_is_not_after_a_lab_multiple_stays_what_it_was(text: str) -> None:
    assert [f for f in facts_for(text, False) if f.kind == "lab"] == []


@pytest.mark.parametrize("text", [
    "Aged eighteen (" + "9" * 5000 + ") years",  # int() of 4,300+ digits raises in 3.11
    "Lansky ≥ 50 for patients ≤ " + "9" * 400 + " years and Karnofsky ≥ 50 for patients > 16 "
    "years",  # an age that is not a finite number
])
def test_hostile_numbers_in_the_new_readers_are_text_not_an_error(text: str) -> None:
    assert [f for f in facts_for(text, False) if f.kind in ("age", "all-of")] == []


@pytest.mark.parametrize(("text", "high"), [
    ("Child-Pugh a score of 7 or less", 7),  # "a" the article, not class A
    ("Child-Pugh a score ≤ 7", 7),
])
def test_an_article_before_a_child_pugh_number_is_not_class_a(text: str, high: float) -> None:
    d = _one(text, False)
    assert (d["test"], d["low"], d["high"]) == ("child-pugh", None, high)


# --- a way in stated in words beside a bound -------------------------------------------------

@pytest.mark.parametrize(("text", "key", "words"), [
    ("Age > 40 or postmenopausal", None, "postmenopausal"),
    ("Postmenopausal or age > 55", None, "Postmenopausal"),
    ("Hemoglobin ≥ 9 g/dL or transfusion dependent", "hemoglobin", "transfusion dependent"),
    ("HbA1c ≥ 8.0% or diagnosed with T2D and taking diabetes medication", "hba1c",
     "diagnosed with T2D and taking diabetes medication"),
    ("Current diagnosis of major depressive disorder or HDRS ≥ 12", "hamd",
     "Current diagnosis of major depressive disorder"),
    # words with a number the grammar does not read as a bound are still words
    ("Age ≥ 18 years or 16-17 with consent", None, "16-17 with consent"),
    ("≥ 60 years old, or 50-59 with diabetes", None, "50-59 with diabetes"),
])
def test_a_way_in_stated_in_words_is_an_alternative_of_its_own(text, key, words) -> None:
    # before, the bound stood alone: every postmenopausal 38-year-old failed the line
    d = _one(text, False)
    assert d.get("test") == key
    assert d["alternatives"] == [{"text": words}]
    # in an exclusion each way in excludes by itself: the words are the bound's alternative
    # too, which the matcher names for a person to confirm (before, they were dropped and
    # nothing said the line was read in part)
    assert _one(text, True)["alternatives"] == [{"text": words}]


@pytest.mark.parametrize("text", [
    "Hb ≥ 9 g/dL or 5.6 mmol/L",  # the same bound in another unit
    "Age ≥ 18 years or older",
    "Age ≥ 18 years, male or female",  # "or" away from the bound
    "Male or female aged 18-65",
    "ECOG 0-1 or Karnofsky ≥ 70",  # the words hold a bound read on its own
])
def test_words_that_are_not_another_way_in_add_no_alternative(text) -> None:
    for f in facts_for(text, False):
        assert not any("text" in a for a in f.data.get("alternatives") or [])


def test_the_words_are_an_any_of_member_of_their_own_with_no_definition() -> None:
    from fhirtrial.eligibility.fhir import characteristic, fact_text

    [c] = criteria_for("Inclusion Criteria:\n* Age > 40 or postmenopausal")
    ch = characteristic(c)
    comb = ch["definitionByCombination"]
    assert comb["code"] == "any-of"
    age, words = comb["characteristic"]
    assert age["definitionByTypeAndValue"]["valueQuantity"]["value"] == 40
    assert words == {"linkId": "fact-1.2", "description": "postmenopausal"}
    assert fact_text(c.facts[0]) == "Age > 40 years, or postmenopausal"


def test_a_patient_who_meets_the_bound_is_eligible_and_one_who_does_not_is_for_review():
    from datetime import date

    from fhirtrial.eligibility.match import evaluate

    def verdict(birth: str) -> str:
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
            "resourceType": "Patient", "id": "p", "birthDate": birth, "gender": "female"}}]}
        out = evaluate("Inclusion Criteria:\n* Age > 40 or postmenopausal", bundle,
                       as_of=date(2024, 1, 2))
        return out["parameter"][0]["valueCode"]

    assert verdict("1970-01-01") == "eligible"  # 54: the bound is met
    assert verdict("1990-01-01") == "needs-review"  # 34: postmenopausal? the text decides


# --- lines whose bound is not a requirement on the patient's level -------------------------

@pytest.mark.parametrize("text", [
    "PSA ≥ 2 ng/mL above nadir",  # a rise from the lowest value, not the PSA level
    "PSA rise ≥ 2 ng/mL above the nadir",
    "PSA ≥ 2 ng/mL over the previous value",
])
def test_a_bound_above_a_patients_own_earlier_value_is_not_a_level(text) -> None:
    assert [f for f in facts_for(text, False) if f.kind == "lab"] == []


@pytest.mark.parametrize("text", [
    "Patients > 75 years are excluded",
    "Subjects with BMI > 35 will not be eligible.",
    "Hemoglobin below 9 g/dL is not allowed",
    "Patients with platelets < 50 x 10^9/L are not permitted",
    "Age > 75 years will lead to exclusion",
    "ALT > 3 x ULN is exclusionary",
])
def test_an_exclusion_written_among_inclusion_criteria_is_not_a_requirement(text) -> None:
    # read as a requirement it would include only the patients it excludes
    assert facts_for(text, False) == []
    assert [f.kind for f in facts_for(text, True)] in (["age"], ["lab"])  # as an exclusion


@pytest.mark.parametrize("text", [
    "Platelets ≥ 100 × 10^9/L is acceptable",
    "Patients with QTc ≤ 470 ms can participate",
    "Note: patients with LVEF ≥ 50% may enroll",
])
def test_an_allowance_written_among_exclusion_criteria_is_not_a_reason_to_exclude(text) -> None:
    # read as an exclusion it would turn away the very patients it admits
    assert [f for f in facts_for(text, True) if f.kind == "lab"] == []


def test_an_allowance_in_another_clause_leaves_the_exclusions_bound() -> None:
    facts = facts_for("QTc > 480 ms. Patients with a pacemaker can participate", True)
    assert [(f.data["test"], f.data["low"]) for f in facts if f.kind == "lab"] == [("qtc", 480)]


def test_an_allowance_is_no_alternative_of_the_exclusions_bound() -> None:
    # not "excluded below 50, or at 50-100 under a condition": 50-100 is whom it admits
    [f] = facts_for("Platelets < 50 × 10^9/L; patients with platelets 50-100 × 10^9/L may be "
                    "enrolled after discussion with the sponsor", True)
    assert (f.data["test"], f.data["high"]) == ("platelets", 50)
    assert "alternatives" not in f.data


def test_not_eligible_for_a_treatment_is_a_condition_not_an_exclusion() -> None:
    [f] = facts_for("Patients not eligible for surgery with ECOG ≤ 2", False)
    assert (f.data["test"], f.data["high"]) == ("ecog", 2)


def test_a_clause_that_is_only_another_bound_under_a_condition_conditions_the_one_before():
    # the patients with hepatic metastases may have ≤ 5 × ULN: ≤ 3 × ULN is not everyone's,
    # and is read with the other as its conditional alternative (it was text)
    line = "AST and ALT ≤ 3 × ULN; ≤ 5 × ULN if hepatic metastases are present"
    assert [(f.data["test"], f.data["high"],
             [(a["high"], a["condition"]) for a in f.data["alternatives"]])
            for f in facts_for(line, False) if f.kind == "lab"] == [
        (t, 3, [(5, "if hepatic metastases are present")]) for t in ("ast", "alt")]
    line = "ANC ≥ 1500/µL; ≥ 1000/µL for patients of African descent"
    [f] = [f for f in facts_for(line, False) if f.kind == "lab"]
    assert [(a["low"], a["condition"]) for a in f.data["alternatives"]] == [
        (1000, "for patients of African descent")]
    # a clause with a bound of its own is another requirement
    assert [f.data.get("test") for f in facts_for("Age ≥ 18 years; ECOG ≤ 2", False)] == [
        None, "ecog"]


def test_an_age_group_in_words_is_read_like_one_in_symbols() -> None:
    from fhirtrial.eligibility.criteria import GROUP

    g, older = facts_for("Creatinine ≤ 1.5 mg/dL for patients younger than 65 years", False)
    age, crea = g.data["facts"]
    assert (g.kind, age.data["high"], age.data["high_inclusive"]) == (GROUP, 65, False)
    assert (crea.data["test"], crea.data["high"]) == ("creatinine", 1.5)
    assert (older.kind, older.data["low"], older.data["high"]) == ("age", 65, None)


def test_a_bound_restated_under_a_condition_elsewhere_in_the_line_is_its_alternative():
    # before, the first bound stood alone: a Gilbert's patient with bilirubin 2 × ULN failed
    line = ("Total serum bilirubin ≤ ULN; or total bilirubin ≤ 3.0 × ULN with direct bilirubin "
            "within normal range in patients with documented Gilbert's syndrome")
    [f] = facts_for(line, False)
    assert (f.data["test"], f.data["high"], f.data["relative"]) == ("bilirubin-total", 1, "ULN")
    [alt] = f.data["alternatives"]
    assert (alt["high"], alt["relative"]) == (3, "ULN")
    assert alt["condition"].endswith("in patients with documented Gilbert's syndrome")
    line = ("BMI 18-25 kg/m2; those with BMI up to 28kg/m2 will be included if waist "
            "circumference is <96cm.")
    [f] = facts_for(line, False)
    [alt] = f.data["alternatives"]
    assert ((f.data["low"], f.data["high"]), alt["high"]) == ((18, 25), 28)
    assert alt["condition"].startswith("those with BMI up to 28")


def test_a_permission_is_not_a_requirement_and_a_doubled_comparator_is_one() -> None:
    # "may have": what some patients are allowed, not what every patient must have
    line = "Patients with known Gilbert's syndrome may have a total bilirubin up to 3 x ULN."
    assert [f for f in facts_for(line, False) if f.kind == "lab"] == []
    # the same as the conditional alternative of the bound before it; "up to ≤ 3" is "≤ 3"
    line = ("Total serum bilirubin ≤1.5x upper limit of normal (ULN). Patients with known "
            "Gilbert's syndrome may have a total bilirubin up to ≤3 x ULN.")
    [f] = facts_for(line, False)
    [alt] = f.data["alternatives"]
    assert (f.data["high"], alt["high"], alt["relative"]) == (1.5, 3, "ULN")
    assert [f.data["low"] for f in facts_for("Age at least ≥ 18 years", False)] == [18]


def test_an_alternative_with_a_number_the_grammar_did_not_read_leaves_the_bound_text() -> None:
    # "or adolescents 12-17 years weighing ≥ 40 kg": age ≥ 18 is one way in, not required
    line = "Patients aged ≥ 18 years or adolescents 12-17 years weighing ≥ 40 kg"
    assert [f for f in facts_for(line, False) if f.kind == "age"] == []


# --- ways in for other people, and values in the past ----------------------------------------

@pytest.mark.parametrize("line", [
    # the weight is the adolescents' way in only: an adult of 38 kg meets the line
    "Patients aged ≥ 18 years or adolescents 12-17 years weighing ≥ 40 kg",
    "Age ≥ 18 years, or ≥ 12 years and weighing at least 40 kg",
    "Infant is ≤ 750 grams at birth and/or < 27 weeks gestation at birth",
])
def test_a_bound_of_another_way_in_is_not_everyones(line: str) -> None:
    assert [f.data for f in facts_for(line, False) if f.kind == "lab"] == []


def test_a_bound_after_or_beside_a_read_alternative_is_still_an_alternative() -> None:
    # both ways in read: the line is their any-of, as before
    [c] = criteria_for("Inclusion Criteria:\n- Creatinine ≤ 1.5 mg/dL or creatinine clearance "
                       "≥ 60 mL/min")
    assert [f.data["test"] for f in c.facts] == ["creatinine", "creatinine-clearance"]
    assert c.combination == "any-of"


@pytest.mark.parametrize(("line", "test"), [
    ("History of QTc > 480 ms", "qtc"),
    ("Previous history of QTc prolongation: QTc > 480 ms", None),  # "history" not its name's
    ("Past medical history of platelet count < 50,000/µL", "platelets"),
    ("Documented LVEF ≤ 40% at any time in the past", "lvef"),
    ("Natremia > 155 mmol/L at any time", "sodium"),
    ("History of NYHA class III or IV heart failure", "nyha"),
])
def test_a_value_in_the_past_is_read_with_the_window_any_time(line: str, test: str | None
                                                              ) -> None:
    labs = [f for f in facts_for(line, True) if f.kind == "lab"]
    if test is None:  # the value itself, stated apart from the history: the latest one
        assert [f.data.get("window") for f in labs] == [None]
        return
    [f] = labs
    assert (f.data["test"], f.data["window"]) == (test, {"comparator": "ever"})


def test_a_value_in_the_past_within_a_window_stays_text() -> None:
    # any result of the last year, not the latest in it: neither reading says that
    facts = facts_for("History of systolic blood pressure > 180 mmHg within the last year", True)
    assert [f.kind for f in facts] == ["time-window"]


def test_the_current_value_is_not_a_history() -> None:
    [f] = [f for f in facts_for("QTc > 480 ms at screening", True) if f.kind == "lab"]
    assert "window" not in f.data


@pytest.mark.parametrize("line", [
    # the bound before the semicolon holds for patients without the condition only, and the
    # clause after it is no alternative the grammar reads
    "Measured or calculated creatinine clearance ≥ 50 mL/min per Cockcroft-Gault; if < 50, "
    "GFR ≥ 50 mL/min by 24-hour urine",
])
def test_a_clause_opening_with_a_condition_and_an_unread_bound_leaves_the_one_before_text(
        line: str) -> None:
    assert [f for f in facts_for(line, False) if f.kind == "lab"] == []


def test_a_clause_opening_with_a_condition_and_no_comparison_leaves_the_bound() -> None:
    [f] = [f for f in facts_for("ANC ≥ 1,500/µL; if on G-CSF, it must be stopped before "
                                "registration", False) if f.kind == "lab"]
    assert (f.data["test"], f.data["low"]) == ("neutrophils", 1500)


def test_a_second_value_in_the_same_unit_after_or_is_another_way_in() -> None:
    # TSAT < 20 % is the second way in's (ferritin 100-300), and ferritin < 100 is enough alone
    line = "Serum ferritin < 100 ng/mL, or 100-300 ng/mL with transferrin saturation < 20%"
    assert [f for f in facts_for(line, False) if f.kind == "lab"] == []


@pytest.mark.parametrize(("line", "low", "high"), [
    ("Hemoglobin ≥ 9 g/dL or 5.6 mmol/L", 9, None),  # the same bound in another unit
    ("Hb 10-12 g/dL or 6.2-7.4 mmol/L", 10, 12),
])
def test_a_bound_restated_in_another_unit_after_or_is_one_bound(line: str, low, high) -> None:
    [f] = [f for f in facts_for(line, False) if f.kind == "lab"]
    assert (f.data["test"], f.data["low"], f.data["high"], f.data["unit"]) == (
        "hemoglobin", low, high, "g/dL")


@pytest.mark.parametrize(("line", "exclude"), [
    # the alternative in another measure than the bound's: not one limit two ways
    ("Creatinine ≤ 1.5 mg/dL unless the patient has Gilbert's, in which case ≤ 3 × ULN", False),
    ("Total bilirubin ≤ 1.5 × ULN except subjects with Gilbert's syndrome who can have total "
     "bilirubin < 3.0 mg/dL", False),
    ("ALT ≤ 5 × ULN if liver metastases, otherwise ≤ 3 mg/dL", False),
    # the excepted patients' bound on another measure: not the first one's alternative
    ("Total bilirubin ≤ 1.5 mg/dL except patients with Gilbert's syndrome who may have direct "
     "bilirubin ≤ 1.0 mg/dL", False),
])
def test_an_exception_with_a_bound_of_its_own_leaves_the_bound_text(line: str,
                                                                    exclude: bool) -> None:
    assert [f for f in facts_for(line, exclude) if f.kind == "lab"] == []


@pytest.mark.parametrize(("line", "test", "high", "alt_high", "condition"), [
    ("ALT ≤ 2.5 × ULN unless liver metastases, in which case ≤ 5 × ULN", "alt", 2.5, 5,
     "if liver metastases"),
    ("Total bilirubin ≤ 1.5 × ULN unless the patient has Gilbert syndrome, in which case it "
     "must be ≤ 3 × ULN", "bilirubin-total", 1.5, 3, "if the patient has Gilbert syndrome"),
    # the condition written before the alternative, after a "," or ";" (before, the whole
    # line was text: the alternative's clause held a comparison no reading took)
    ("Total bilirubin ≤ 1.5 × ULN; for patients with Gilbert's syndrome ≤ 3 × ULN",
     "bilirubin-total", 1.5, 3, "for patients with Gilbert's syndrome"),
    ("ALT ≤ 2.5 × ULN, or in patients with liver metastases ≤ 5 × ULN", "alt", 2.5, 5,
     "in patients with liver metastases"),
    ("ALT ≤ 2.5 × ULN, if liver metastases ≤ 5 × ULN", "alt", 2.5, 5, "if liver metastases"),
    # after a ";", the condition after it
    ("ALT ≤ 3 x ULN; ≤ 5 x ULN in case of suspected leukemic liver involvement", "alt", 3, 5,
     "in case of suspected leukemic liver involvement"),
    # the conditional bound first, everyone else's after "otherwise" (before, text)
    ("ALT ≤ 5 × ULN if liver metastases, otherwise ≤ 3 × ULN", "alt", 3, 5,
     "if liver metastases"),
    ("Alkaline phosphatase ≤ 5 × ULN in case of bone metastases, otherwise ≤ 2.5 × ULN", "alp",
     2.5, 5, "in case of bone metastases"),
])
def test_a_conditional_alternative_keeps_its_condition_wherever_it_is_written(
        line, test, high, alt_high, condition) -> None:
    """The condition written between the bounds ("unless …, in which case"), or before or
    after the alternative past a "," or ";": the second bound holds under it."""
    [f] = [f for f in facts_for(line, False) if f.kind == "lab"]
    assert (f.data["test"], f.data["high"], f.data["relative"]) == (test, high, "ULN")
    [alt] = f.data["alternatives"]
    assert (alt["high"], alt["relative"], alt["condition"]) == (alt_high, "ULN", condition)


@pytest.mark.parametrize(("line", "exclude", "bound", "alt", "unit", "condition"), [
    # the exception's own bound after it, "then", in brackets or after a colon or comma
    ("Total bilirubin ≤ 1.5 mg/dL (unless Gilbert's syndrome, then ≤ 3 mg/dL)", False, 1.5, 3,
     "mg/dL", "if Gilbert's syndrome"),
    ("Serum bilirubin ≤ 1.5 × ULN, unless known Gilbert's disease (≤ 3 × ULN)", False, 1.5, 3,
     None, "if known Gilbert's disease"),
    ("Total bilirubin ≤ 1.5 mg/dL, except for patients with Gilbert's disease (≤ 3.0 mg/dL)",
     False, 1.5, 3, "mg/dL", "for patients with Gilbert's disease"),
    ("Total bilirubin ≤ 1.5 × ULN except in patients with Gilbert's syndrome (≤ 3 × ULN)", False,
     1.5, 3, None, "in patients with Gilbert's syndrome"),
    # in an exclusion: Gilbert's patients are excluded above 3 × ULN only (before, text)
    ("Total bilirubin > ULN except Gilbert's syndrome (> 3 × ULN)", True, 1, 3, None,
     "if Gilbert's syndrome"),
    ("Total bilirubin > 1.5 × ULN (except Gilbert's syndrome, > 3 × ULN)", True, 1.5, 3, None,
     "if Gilbert's syndrome"),
    # the excepted patients' bound stated with the measure named again (before, text)
    ("Total bilirubin ≤ 1.5 mg/dL (except subjects with Gilbert's syndrome, who can have "
     "total bilirubin < 3.0 mg/dL)", False, 1.5, 3, "mg/dL",
     "for subjects with Gilbert's syndrome"),
    ("Total bilirubin ≤ 1.5 × ULN, except in patients with Gilbert's syndrome who must have "
     "a total bilirubin level ≤ 3 × ULN", False, 1.5, 3, None,
     "in patients with Gilbert's syndrome"),
    ("Total bilirubin > 1.5 × ULN, except subjects with Gilbert's syndrome who may have total "
     "bilirubin > 3 × ULN", True, 1.5, 3, None, "for subjects with Gilbert's syndrome"),
    # (in a clause of its own, the name said again is that clause's bound, its condition the
    # clause: the exception's reading must not take it)
    ("Total bilirubin ≤ 1.5 mg/dL; patients with Gilbert's syndrome who may have total "
     "bilirubin ≤ 3 mg/dL are eligible", False, 1.5, 3, "mg/dL",
     "patients with Gilbert's syndrome who may have total bilirubin ≤ 3 mg/dL are eligible"),
])
def test_an_exception_with_its_own_bound_is_a_conditional_alternative(
        line: str, exclude: bool, bound: float, alt: float, unit: str | None,
        condition: str) -> None:
    [f] = [f for f in facts_for(line, exclude) if f.kind == "lab"]
    side = "low" if exclude else "high"
    assert (f.data["test"], f.data[side], f.data["unit"]) == ("bilirubin-total", bound, unit)
    [a] = f.data["alternatives"]
    assert (a[side], a["unit"], a["relative"], a["condition"]) == (
        alt, unit, f.data["relative"], condition)


def test_an_exception_later_in_a_list_leaves_the_bounds_before_it() -> None:
    facts = facts_for("Age < 18 years, inability to give informed consent, or creatinine "
                      "> 2 mg/dL other than in dialysis patients (> 8 mg/dL)", True)
    assert [f.kind for f in facts] == ["age"]


def test_a_conditional_alternative_keeps_its_whole_bracketed_condition() -> None:
    # the grammar stops the condition at the next name it knows ("aged"): a reader must see
    # whom the alternative is for, not "(for patients)"
    [f] = facts_for("ECOG performance status ≥ 2 (≥ 3 for patients aged ≥ 70)", True)
    [alt] = f.data["alternatives"]
    assert (alt["low"], alt["condition"]) == (3, "for patients aged ≥ 70")


@pytest.mark.parametrize("line", [
    # a second limit after ";" without what it is for: neither alone is the criterion
    "ALT ≤ 2.5 × ULN; ≤ 5 × ULN",
    "Creatinine ≤ 1.5 mg/dL; ≤ 2 × ULN",
])
def test_a_second_limit_without_its_condition_leaves_the_line_text(line: str) -> None:
    assert [f for f in facts_for(line, False) if f.kind == "lab"] == []


def test_a_bound_after_a_semicolon_on_something_else_is_not_an_alternative() -> None:
    [f] = [f for f in facts_for("Hemoglobin ≥ 9 g/dL; ≥ 2 weeks since last transfusion",
                                False) if f.kind == "lab"]
    assert (f.data["test"], f.data["low"], f.data.get("alternatives")) == ("hemoglobin", 9, None)


def test_a_condition_that_leads_its_clause_is_the_alternatives_condition() -> None:
    facts = facts_for("Liver function: TBIL≤1.5×ULN; ALT and AST≤2.5×ULN; if liver metastasis, "
                      "ALT and AST≤5×ULN", False)
    alts = {f.data["test"]: f.data.get("alternatives") for f in facts}
    for test in ("alt", "ast"):
        [alt] = alts[test]
        # not "if liver metastasis, ALT and AST≤5×ULN": the bound is not its own condition
        assert (alt["high"], alt["condition"]) == (5, "if liver metastasis")


# --- a further way in the grammar does not read ------------------------------------------------

@pytest.mark.parametrize(("text", "words"), [
    ("WBC > 12,000/mm^3 or < 4,000/mm^3 or > 10% bands", "> 10% bands"),
    ("Platelets < 100 x 10^9/L or > 50% decrease from baseline", "> 50% decrease from baseline"),
])
def test_an_unread_comparison_after_or_is_a_way_in_in_words(text: str, words: str) -> None:
    # without it, a patient coming in by the unread way would fail the line
    [f] = [f for f in facts_for(text, False) if f.kind == "lab"]
    assert {"text": words} in f.data["alternatives"]


def test_the_same_bound_in_another_unit_is_no_way_in_of_its_own() -> None:
    [f] = [f for f in facts_for("Hemoglobin ≥ 9 g/dL or ≥ 5.6 mmol/L", False) if f.kind == "lab"]
    assert not any("text" in a for a in f.data.get("alternatives") or [])


def test_words_after_or_are_a_way_in_past_where_the_value_is_measured() -> None:
    # a patient on oxygen with a saturation of 97 % meets this line
    [f] = [f for f in facts_for("SpO2 ≤ 94% on room air or requiring supplemental oxygen",
                                False) if f.kind == "lab"]
    assert f.data["alternatives"] == [{"text": "requiring supplemental oxygen"}]


# --- a negated state with its bound in brackets ------------------------------------------------

@pytest.mark.parametrize(("text", "negated"), [
    # the bracket defines the state denied: the bound is what must not hold
    ("Absence of anemia (hemoglobin < 10 g/dL)", True),
    ("No renal impairment (creatinine > 1.5 mg/dL)", True),
    ("No fever (temperature ≥ 38 °C) within 48 hours", True),
    # the bracket states the healthy side: read as denied it would demand the disorder
    ("Absence of proteinuria (UPCR < 0.5 g/g)", False),
    ("Free of hypertension (BP < 140/90)", False),
    ("No renal impairment (eGFR ≥ 60 mL/min/1.73 m2)", False),
    ("No hypoxemia (SpO2 ≥ 94%)", False),
    # a healthy state the words deny: its bound is what must not hold
    ("Blood pressure is not well controlled (systolic blood pressure is 150 mmHg or less)", True),
])
def test_a_bracket_after_a_negated_state_is_read_by_the_states_side(text: str,
                                                                     negated: bool) -> None:
    facts = [f for f in facts_for(text, False) if f.kind == "lab"]
    assert facts
    assert {bool(f.data.get("negated")) for f in facts} == {negated}


@pytest.mark.parametrize(("text", "negated"), [
    # a healthy state denied, the bracket on the disorder's side: the failure the words name
    # (read as denied, "HbA1c ≤ 9 %" would have been the exclusion)
    ("Diabetes not adequately controlled (HbA1c > 9%)", False),
    ("Hypertension not well controlled (SBP > 160 mmHg)", False),
    ("Without adequate renal function (creatinine > 2 mg/dL)", False),
    ("No adequate bone marrow function (i.e., platelets < 100 × 10^9/L)", False),
    # … on the healthy side: it defines the state denied
    ("Without normal renal function (eGFR ≥ 60 mL/min/1.73 m2)", True),
])
def test_a_bracket_after_a_denied_healthy_state_is_read_by_its_side(text: str,
                                                                    negated: bool) -> None:
    facts = [f for f in facts_for(text, True) if f.kind == "lab"]
    assert facts
    assert {bool(f.data.get("negated")) for f in facts} == {negated}


@pytest.mark.parametrize("text", [
    # which way the score goes is the scale's: neither side is known
    "Without adequate control of seizures (i.e., a seizure score < 3 on the CNS Disability "
    "Scoring System)",
    "No evidence of disease (PSA < 0.2 ng/mL)",      # a state the lexicon does not know
    # … with a digit in its words: read plainly, the line demanded the deficiency
    "No vitamin B12 deficiency (B12 < 200 pg/mL)",
    "Absence of significant liver disease (ALT < 3 × ULN)",
    "No thrombocytopenia (platelets 50-100 × 10^9/L)",  # a range has no one side
])
def test_a_bracket_after_a_state_of_unknown_side_stays_text(text: str) -> None:
    assert [f for f in facts_for(text, False) if f.kind in ("lab", "measurement")] == []


# --- a value outside a range ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "test", "low", "high"), [
    ("Hematocrit outside the normal range (35-50%)", "hematocrit", 35, 50),
    ("Serum potassium out of range (3.5-5.0 mmol/L)", "potassium", 3.5, 5),
    ("Sodium outside of the reference range of 135-145 mmol/L", "sodium", 135, 145),
])
def test_a_value_outside_a_range_is_the_range_denied(text: str, test: str, low: float,
                                                      high: float) -> None:
    # read as the range itself it would require the very values the line excludes
    [f] = [f for f in facts_for(text, True) if f.kind == "lab"]
    assert (f.data["test"], f.data["low"], f.data["high"]) == (test, low, high)
    assert f.data.get("negated") is True


@pytest.mark.parametrize("text", [
    "Potassium outside the normal range",          # no numbers: the laboratory's range
    "Potassium outside < 3.5 mmol/L",              # no range after "outside"
    "No potassium outside 3.5-5.0 mmol/L",         # denied twice: left to a reader
])
def test_outside_without_a_range_it_can_deny_stays_text(text: str) -> None:
    assert [f for f in facts_for(text, True) if f.kind == "lab"] == []


# --- an exclusion's way the reader cannot state ---------------------------------------------

@pytest.mark.parametrize("text", [
    # read alone, the weight would exclude every patient over 40 kg
    "Age ≥ 18 years, or ≥ 12 years and weighing ≥ 40 kg",
    "Patients aged ≥ 18 years or adolescents 12-17 years weighing ≥ 40 kg",
])
def test_a_bound_inside_an_unread_way_of_an_exclusion_is_not_read_alone(text: str) -> None:
    assert [f for f in facts_for(text, True) if f.kind == "lab"] == []


def test_a_bound_for_the_others_beside_a_clause_with_its_own_is_its_alternative() -> None:
    # the second clause gives patients with marrow involvement their own bound: ANC ≥ 1.0
    # alone would turn them away at 0.7 (it was text; the alternative keeps its condition)
    [f] = [f for f in facts_for("ANC ≥ 1.0 × 10^9/L; for patients with bone marrow "
                                "involvement ≥ 0.5 × 10^9/L", False) if f.kind == "lab"]
    assert [(a["low"], a["condition"]) for a in f.data["alternatives"]] == [
        (0.5, "for patients with bone marrow involvement")]


def test_a_way_in_read_but_not_stated_keeps_the_other_from_being_required() -> None:
    # "urine protein < 2+" (a dipstick grade) is read and dropped: no unit it can state. The
    # 24-hour protein alone would be required of a patient coming in by the dipstick
    assert [f for f in facts_for("Urine protein < 2+ or 24-hour urine protein < 1.0 g", False)
            if f.kind == "lab"] == []


def test_a_bound_that_is_a_way_of_its_own_stays_beside_an_unread_one() -> None:
    # "sodium < 130" has no unit and is not read; the potassium excludes by itself
    assert _one("Sodium < 130 or potassium > 5.5 mmol/L", True)["test"] == "potassium"


@pytest.mark.parametrize("text", ["LVEF ≥ 50% (or ≥ LLN)", "LVEF ≥ 50% (or ≥ institutional LLN)"])
def test_a_bracketed_way_in_at_a_reference_limit_is_an_alternative(text: str) -> None:
    # a bracket without a digit was taken for a remark, and the bound before it for the only
    # way in: a patient with an LVEF of 48 % and a lower limit of 45 % was turned away
    d = _one(text, False)
    assert (d["low"], d["unit"]) == (50, "%")
    [alt] = d["alternatives"]
    assert (alt["low"], alt["relative"], alt["condition"]) == (1, "LLN", None)


@pytest.mark.parametrize("line", [
    # how the bound was measured, a definition, or a coded condition the condition reader
    # names: no list of other ways
    "LVEF below the institutional normal range, as determined by MUGA or echocardiogram",
    "Severe hepatic impairment, ALT > 3 × ULN",
    "LVEF < 40 %, myocardial infarction, or stroke",
])
def test_an_exclusion_bounds_serial_list_is_only_words_of_other_ways(line: str) -> None:
    facts = [f for f in facts_for(line, True) if f.kind == "lab"]
    assert facts
    assert not any(f.data.get("alternatives") for f in facts)


def test_bounds_in_a_sentence_of_their_own_keep_their_own_or() -> None:
    # a requirement, then a sentence defining a second one by either of two bounds: before,
    # the "or" was read across the sentences (diabetes and the first bound, or the second) or
    # the two bounds on one concept contradicted each other and went
    text = ("Diagnosed diabetes mellitus and macular edema requiring treatment will be "
            "enrolled. Macular edema is defined as a central subfield thickness (CST) > 300 "
            "microns on optical coherence tomography (OCT) or CST > 250 microns with "
            "intraretinal fluid.")
    for suffix in ("", " Other inclusion criteria are age > 18 years."):
        facts = facts_for(text + suffix, False)
        assert [f.data["code"] for f in facts if f.kind == "condition"] == ["73211009"]
        [either] = [f for f in facts if f.kind == "any-of"]
        assert [(f.data["test"], f.data["low"]) for f in either.data["facts"]] == [
            ("central-subfield-thickness", 300), ("central-subfield-thickness", 250)]
        assert [f.kind for f in facts if f.kind not in ("condition", "any-of")] == (
            ["age"] if suffix else [])


@pytest.mark.parametrize("text", [
    "Age ≥ 18 years; hemoglobin ≥ 10 g/dL or hematocrit ≥ 30%",
    "Age ≥ 18 years. Hemoglobin ≥ 10 g/dL or hematocrit ≥ 30%.",
])
def test_an_age_beside_bounds_joined_by_or_is_required_with_either(text: str) -> None:
    # before, the line was any one of the three: an adult with neither value met it
    [c] = criteria_for(f"Inclusion Criteria:\n* {text}")
    assert c.combination == "all-of"
    assert [f.kind for f in c.facts] == ["age", "any-of"]
    assert [f.data["test"] for f in c.facts[1].data["facts"]] == ["hemoglobin", "hematocrit"]


def test_an_age_in_the_or_list_is_one_of_its_ways() -> None:
    [c] = criteria_for("Inclusion Criteria:\n* Age > 65 years or BMI > 30 kg/m2 or HbA1c > 7%")
    assert c.combination == "any-of"
    assert [f.kind for f in c.facts] == ["age", "lab", "lab"]


# --- what some participants are required to have ---------------------------------------------

@pytest.mark.parametrize("text", [
    # a group singled out by a condition, a treatment or an age, then what it must have: the
    # bound is that group's, not everyone's (before, each was demanded of every patient)
    "Total bilirubin ≤ 1.5 mg/dL; subjects with Gilbert's syndrome must have direct "
    "bilirubin ≤ 1.5 mg/dL",
    "Diabetic patients must have HbA1c < 8%",
    "Subjects with hypertension must have blood pressure < 140/90 mmHg",
    "Urine dipstick protein < 2+; patients with ≥ 2+ must have 24-hour urine protein < 1 g",
    "Patients on warfarin should have INR ≤ 3.0",
    "Platelets ≥ 100 × 10^9/L; participants receiving anticoagulation must also have "
    "INR ≤ 1.5",
])
def test_a_groups_requirement_is_not_everyones(text: str) -> None:
    # the group's bound is met, or the patient is not one of the group: the bound with the
    # words "not among <group>" as its way in (for review when it is not met), never the
    # bound alone
    whose = {"bilirubin-direct", "hba1c", "bp-systolic", "bp-diastolic", "proteinuria-24h",
             "inr"}
    for f in facts_for(text, False):
        if f.kind == "lab" and f.data["test"] in whose:
            [alt] = f.data["alternatives"]
            assert alt["text"].startswith("not among ")


@pytest.mark.parametrize(("text", "test", "words"), [
    ("Diabetic patients must have HbA1c < 8%", "hba1c", "not among Diabetic patients"),
    ("Patients on warfarin should have INR ≤ 3.0", "inr", "not among Patients on warfarin"),
    # (LCT NCT03860350, a coronary-calcium trial)
    ("Subjects with diabetic must have HbA1C < 8.0", "hba1c",
     "not among Subjects with diabetic"),
])
def test_a_groups_bound_is_the_bound_or_not_being_in_the_group(
        text: str, test: str, words: str) -> None:
    [f] = facts_for(text, False)
    assert (f.data["test"], f.data["alternatives"]) == (test, [{"text": words}])


@pytest.mark.parametrize(("text", "test", "low", "high", "words"), [
    # the group's bound is stricter than everyone's: no alternative states it (a transfused
    # patient at 9.5 g/dL, a 75-year-old at ECOG 1 would meet the line), but everyone's bound
    # stands — a patient failing it fails the line whoever they are — and the group's demand
    # is said beside it, for a person to confirm (before, the line was text: nothing
    # computable; earlier still, the second line demanded an age over 70 of every patient)
    ("Hemoglobin ≥ 9 g/dL; patients with prior transfusion must have hemoglobin ≥ 10 g/dL",
     "hemoglobin", 9, None, "patients with prior transfusion must have hemoglobin ≥ 10 g/dL"),
    ("ECOG 0-1; patients older than 70 must have ECOG 0", "ecog", 0, 1,
     "patients older than 70 must have ECOG 0"),
    ("ECOG 0-2; patients aged ≥ 75 years must have ECOG 0-1", "ecog", 0, 2,
     "patients aged ≥ 75 years must have ECOG 0-1"),
    ("ALT and AST ≤ 3 × ULN; if liver metastases, ALT ≤ 2 × ULN", "alt", None, 3,
     "if liver metastases, ALT ≤ 2 × ULN"),
])
def test_a_groups_stricter_bound_is_said_beside_everyones(text, test, low, high, words):
    f = next(f for f in facts_for(text, False) if f.data["test"] == test)
    assert (f.data["low"], f.data["high"], f.data["also"]) == (low, high, [words])
    assert not f.data.get("alternatives")  # no way in: a further demand


def test_a_groups_stricter_bound_in_an_exclusion_is_not_said_so():
    """Only an inclusion's bound is a demand a group's stricter bound adds to."""
    assert all(not f.data.get("also") for f in facts_for(
        "ECOG ≥ 2; patients older than 70 with ECOG ≥ 1", True))


def test_a_groups_looser_bound_is_an_alternative() -> None:
    d = _one("Creatinine clearance ≥ 50 mL/min; patients older than 65 years must have "
             "creatinine clearance ≥ 40 mL/min", False)
    assert (d["test"], d["low"]) == ("creatinine-clearance", 50)
    [alt] = d["alternatives"]
    assert (alt["low"], alt["unit"]) == (40, "mL/min")
    # the condition is the group, not the whole clause that says what it must have
    assert alt["condition"] == "patients older than 65 years"


def test_a_groups_condition_is_the_group() -> None:
    d = _one("ALT ≤ 2.5 × ULN; patients with liver metastases must have ALT ≤ 5 × ULN", False)
    [alt] = d["alternatives"]
    assert (alt["high"], alt["condition"]) == (5, "patients with liver metastases")


def test_an_age_group_at_the_head_of_the_line_keeps_its_reading() -> None:
    # no bound before it: that age group must have the ECOG (an all-of of the two), the
    # other ages are the line's other ways in — unchanged by the group rule above
    group, *others = facts_for("Patients aged 18-75 years must have ECOG 0-1", False)
    assert group.kind == "all-of"
    assert [f.kind for f in group.data["facts"]] == ["age", "lab"]
    assert [(f.data["low"], f.data["high"]) for f in others] == [(None, 17), (76, None)]


def test_a_patient_outside_the_group_is_not_turned_away_by_its_age() -> None:
    from datetime import date

    from fhirtrial.eligibility.match import evaluate
    [c] = criteria_for("Inclusion Criteria:\n* ECOG 0-1; patients older than 70 must have "
                       "ECOG 0")
    patient = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p", "birthDate": "1974-01-01"}},
        {"resource": {"resourceType": "Observation", "id": "o", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "89247-1"}]},
                      "effectiveDateTime": "2024-01-01", "valueInteger": 1}}]}
    out = evaluate([c], patient, as_of=date(2024, 1, 2))
    assert out["parameter"][0]["valueCode"] != "not-eligible"


# --- "respectively" ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "exclude", "first", "second"), [
    ("Hemoglobin ≥ 12 g/dL and ≥ 13 g/dL for women and men, respectively", False,
     (12, "female"), (13, "male")),
    ("Hemoglobin ≥ 13 g/dL or ≥ 12 g/dL in men and women respectively", False,
     (13, "male"), (12, "female")),
    ("Hemoglobin < 12 and < 13 g/dL for females and males respectively", True,
     (12, "female"), (13, "male")),
])
def test_bounds_for_two_sexes_respectively_are_each_one_sexs(
        text: str, exclude: bool, first: tuple, second: tuple) -> None:
    # before, the second bound was an alternative under the condition "for women and men,
    # respectively": either bound for anyone (a man at 12.5 g/dL met the first line)
    d = _one(text, exclude)
    [alt] = d["alternatives"]
    value = "high" if exclude else "low"
    assert (d[value], d["sex"]) == first
    assert (alt[value], alt["sex"], alt["condition"]) == (*second, None)


@pytest.mark.parametrize("text", [
    "Hemoglobin ≥ 11.0 or 12.0 g/dL in females and males, respectively",
    "Creatinine ≤ 1.2 mg/dL and 1.0 mg/dL, respectively",
])
def test_bounds_paired_respectively_in_a_way_no_fact_states_are_text(text: str) -> None:
    assert [f for f in facts_for(text, False) if f.kind == "lab"] == []


def test_respectively_in_another_clause_leaves_the_first_alone() -> None:
    facts = facts_for("Age ≥ 18 years; ANC and platelets ≥ 1.5 and 100 × 10^9/L, "
                      "respectively", False)
    assert [(f.kind, f.data["low"]) for f in facts] == [("age", 18)]


# --- what an exclusion leaves unread, and what it lets back in ---------------------------------

def test_an_exclusions_unread_clause_is_named_for_a_person_to_confirm() -> None:
    from datetime import date

    from fhirtrial.eligibility.match import evaluate
    line = ("estimated glomerular filtration rate ≤30 mL/min; aspartate aminotransferase and "
            "alanine aminotransferase levels ≥3 times the upper limit of normal")
    # (LCT NCT03860220: "AST and ALT ≥ 3 × ULN" in an exclusion, both at once, is not read)
    [egfr] = facts_for(line, True)
    assert egfr.data["alternatives"] == [{"text": "aspartate aminotransferase and alanine "
                                          "aminotransferase levels ≥3 times the upper limit "
                                          "of normal"}]
    [c] = criteria_for(f"Exclusion Criteria:\n* {line}")
    patient = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01"}},
        {"resource": {"resourceType": "Observation", "id": "o", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "33914-3"}]},
                      "effectiveDateTime": "2024-01-01",
                      "valueQuantity": {"value": 60, "system": "http://unitsofmeasure.org",
                                        "code": "mL/min/{1.73_m2}"}}}]}
    out = evaluate([c], patient, as_of=date(2024, 1, 2))
    [criterion] = [p for p in out["parameter"] if p["name"] == "criterion"]
    [fact] = [p for p in criterion["part"] if p["name"] == "fact"]
    # before, the line was not met on the eGFR alone and nothing named the rest
    assert {"name": "toConfirm", "valueString": egfr.data["alternatives"][0]["text"]} in \
        fact["part"]


@pytest.mark.parametrize("line", [
    "Hemoglobin < 9 g/dL; platelets < 100 × 10^9/L",  # every clause read
    "ALT > 3 × ULN; > 5 × ULN if liver metastases",  # a clause under a condition
    "Platelets < 50 × 10^9/L; patients with platelets 50-100 × 10^9/L may be enrolled",
])
def test_an_exclusion_read_whole_names_nothing_more(line: str) -> None:
    assert not [a for f in facts_for(line, True) for a in f.data.get("alternatives") or ()
                if "text" in a]


@pytest.mark.parametrize(("line", "words"), [
    # before, the bound alone excluded: a patient at 1.8 mg/dL with a clearance of 70 mL/min,
    # a patient with Gilbert's syndrome at twice the ULN
    ("Creatinine > 1.5 mg/dL. Patients with creatinine clearance ≥ 60 mL/min are eligible",
     "Patients with creatinine clearance ≥ 60 mL/min are eligible"),
    ("Bilirubin > 1.5 × ULN; patients with Gilbert's syndrome are eligible",
     "patients with Gilbert's syndrome are eligible"),
])
def test_an_allowance_after_an_exclusions_bound_is_its_exception(line: str, words: str) -> None:
    [f] = facts_for(line, True)
    assert f.data["unless"] == [words]


def test_an_inclusions_unread_clause_is_said_beside_the_facts() -> None:
    # before, "ALT or AST ≤ 3 × ULN" (an "or" between two bounds in an inclusion is not read)
    # went unmentioned and the line was met on the hemoglobin alone
    [hb] = facts_for("Hemoglobin ≥ 9 g/dL; ALT or AST ≤ 3 × ULN", False)
    assert (hb.data["test"], hb.data["also"]) == ("hemoglobin", ["ALT or AST ≤ 3 × ULN"])


def test_a_clause_restating_the_bound_is_not_unread() -> None:
    # (LCT NCT03927885) the second sentence says how to reach the bound, no other requirement
    [hb] = facts_for("Hemoglobin level of >= 9 g/dL. Patient may receive packed red blood "
                     "cell (PRBC) transfusion so as to have hemoglobin level of >= 9 g/dL so "
                     "at participate in the study", False)
    assert "also" not in hb.data


@pytest.mark.parametrize(("line", "exclude"), [
    ("Hemoglobin ≥ 9 g/dL; patients with hemoglobin < 9 g/dL may receive a transfusion", False),
    ("Age ≥ 18 years; participants aged ≥ 65 years will be assigned to the elderly cohort",
     False),
    ("QTc > 470 ms. Fib-4 1.45 - 3.25 requires Medical Monitor consultation", True),
])
def test_what_a_value_sets_off_is_not_an_unread_requirement(line: str, exclude: bool) -> None:
    [f] = [f for f in facts_for(line, exclude) if f.kind in ("lab", "age")]
    assert "also" not in f.data
    assert "alternatives" not in f.data


@pytest.mark.parametrize(("line", "exclude", "test", "words"), [
    # another concept for some patients: before, the Gilbert's patient at 2.5 mg/dL failed
    # the total bilirubin and nothing said the direct one was theirs to meet
    ("Total bilirubin ≤ 1.5 mg/dL; subjects with Gilbert's syndrome must have direct "
     "bilirubin ≤ 1.5 mg/dL", False, "bilirubin-total",
     "subjects with Gilbert's syndrome must have direct bilirubin ≤ 1.5 mg/dL"),
    ("ALT > 3 × ULN; for patients with liver metastases, AST > 5 × ULN", True, "alt",
     "for patients with liver metastases, AST > 5 × ULN"),
])
def test_a_clause_under_a_condition_on_another_concept_is_a_way_in_words(
        line: str, exclude: bool, test: str, words: str) -> None:
    [f] = facts_for(line, exclude)
    assert (f.data["test"], f.data["alternatives"]) == (test, [{"text": words}])


def test_an_age_groups_unread_requirement_is_said_beside_the_age() -> None:
    [age] = facts_for("Age ≥ 18 years. Patients aged ≥ 70 years must have a creatinine "
                      "clearance ≥ 50 mL/min", False)
    assert age.data["also"] == ["Patients aged ≥ 70 years must have a creatinine clearance "
                                "≥ 50 mL/min"]


def test_a_groups_bound_stated_as_an_alternative_is_not_said_again() -> None:
    [f] = facts_for("Creatinine clearance ≥ 50 mL/min; patients older than 65 years must have "
                    "creatinine clearance ≥ 40 mL/min", False)
    assert "also" not in f.data
    assert [a["low"] for a in f.data["alternatives"]] == [40]


def test_an_unread_clause_keeps_its_bracketed_exception() -> None:
    # (shared partial record NCT02576665) the words a person confirms must carry the
    # exception, or a Gilbert's patient would be turned away by the reader of the words
    [alt] = facts_for("Liver: total bilirubin ≤ 1.5 x the upper limit of normal (ULN; unless "
                      "known Gilbert's syndrome); alanine aminotransferase ≤ 2.5 x ULN (≤ 5.0 x "
                      "ULN in patients with liver metastases).", False)
    assert alt.data["also"] == ["Liver: total bilirubin ≤ 1.5 x the upper limit of normal "
                                "(ULN; unless known Gilbert's syndrome)"]


@pytest.mark.parametrize("line", [
    # a group's requirement on an unrelated concept is that group's own bound — not another
    # way in for the line's other facts (before: the age was left text, since the whole line
    # counted as conditional, and the CD4 bound was everyone's)
    "Age ≥ 18 years; patients with HIV must have CD4 ≥ 200 cells/µL",
    "Hemoglobin ≥ 9 g/dL; patients with HIV must have CD4 ≥ 200 cells/µL",
])
def test_a_groups_requirement_on_another_function_is_its_own_fact(line: str) -> None:
    first, cd4 = facts_for(line, False)
    assert "alternatives" not in first.data
    assert "also" not in first.data
    assert (cd4.data["test"], cd4.data["alternatives"]) == (
        "cd4", [{"text": "not among patients with HIV"}])


def test_a_bound_under_if_on_another_function_is_said_beside() -> None:
    # "if liver metastases" names no group of participants: the clause is said beside the age
    [age] = facts_for("Age ≥ 18 years; if liver metastases, ALT ≤ 5 × ULN", False)
    assert (age.kind, age.data["also"]) == ("age", ["if liver metastases, ALT ≤ 5 × ULN"])


@pytest.mark.parametrize("line", [
    "ALT ≤ 2.5 × ULN (≤ 5 times for liver metastasis)",
    "ALT and AST ≤ 2.5 times the upper limit of normal value (≤ 5 times for liver metastasis)",
])
def test_an_unread_bound_in_a_bracket_under_a_condition_is_a_way_in_words(line: str) -> None:
    # "≤ 5 times" names no reference, so no alternative is read; before, the bracket was
    # dropped and a patient with liver metastases at 4 × ULN failed the line
    facts = [f for f in facts_for(line, False) if f.kind == "lab"]
    assert facts
    for f in facts:
        assert (f.data["high"], f.data["alternatives"]) == (
            2.5, [{"text": "≤ 5 times for liver metastasis"}])


def test_a_bracket_restating_the_bound_is_no_way_in() -> None:
    [f] = facts_for("Hemoglobin ≥ 9 g/dL (≥ 5.6 mmol/L)", False)
    assert "alternatives" not in f.data


def test_an_allowance_after_an_excluded_age_leaves_the_line_text() -> None:
    # an exception in words goes with no age (as after "unless"): before, every patient over
    # 75 was excluded though the line lets them in at the investigator's discretion
    assert facts_for("Age > 75 years. Patients older than 75 may be included at the "
                     "investigator's discretion", True) == []
