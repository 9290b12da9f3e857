"""Dose levels read from arm / intervention text: plain statements structured, doubt as text."""

from __future__ import annotations

import pytest

from fhirtrial.convert.doses import extract_dose_levels, frequency_of, route_of, timing_of

SEED_INTERVENTION = (
    "Four different doses were set, and three subjects in each dose plan received human umbilical "
    "cord mesenchymal stem cell injection successively. Each subject received a single dose of "
    r"6.0\*10\^6, 3.0\*10\^7,6.0\*10\^7, and 9.0\*10\^7 cells / person.")
SEED_ARM = ("Different doses of human umbilical cord mesenchymal stem cell injection were infused "
            "to the focus of patients with idiopathic pulmonary fibrosis through bronchoscope")


def test_seed_trial_gives_four_single_cell_doses_per_person_by_bronchoscope() -> None:
    levels = extract_dose_levels(SEED_INTERVENTION, route_text=SEED_ARM)
    assert [lv.value for lv in levels] == [6.0e6, 3.0e7, 6.0e7, 9.0e7]
    assert {(lv.unit, lv.per, lv.count, lv.frequency) for lv in levels} == {
        ("{cells}", "person", 1, "single dose")}
    assert {lv.route for lv in levels} == {"Bronchoscopic instillation"}
    assert levels[0].text == "6.0*10^6 cells / person"


@pytest.mark.parametrize(("text", "value", "unit", "per", "frequency", "route"), [
    ("125 mg orally once daily", 125, "mg", None, "once daily", "Oral route"),
    ("10 mg/kg IV every 3 weeks", 10, "mg", "kg", "every 3 weeks", "Intravenous route"),
    ("Pregablin 75 mg per oral two times a day", 75, "mg", None, "twice daily", "Oral route"),
    (r"Paclitaxel 175 mg/m\^2 intravenously every 21 days", 175, "mg", "m2", "every 21 days",
     "Intravenous route"),
    ("2.5mg by sublingual administration", 2.5, "mg", None, None, "Sublingual route"),
    ("400 mcg subcutaneous injection weekly", 400, "ug", None, "once weekly",
     "Subcutaneous route"),
], ids=["oral-daily", "per-kg-q3w", "bid", "per-m2", "sublingual", "mcg-weekly"])
def test_plain_dose_statement_is_structured(text, value, unit, per, frequency, route) -> None:
    [level] = extract_dose_levels(text)
    assert (level.value, level.unit, level.per, level.frequency, level.route) == (
        value, unit, per, frequency, route)


@pytest.mark.parametrize("text", [
    "200 mg of Remdesivir on Day 1, followed by a 100 mg once-daily maintenance dose",
    "a sterile suspension containing 300 mg/mL of RPV",
    "1 ml of GP40081 contains 100 units of insulin aspart",
    "drink up to 2000 ml of cold water (i.e. 200-800 ml at a time)",
    "after receiving 33 ± 4 Gy",
    "dose ascent starting from 120mg qd",
    "orally at an initial dose of 240mg (120mg bid) once daily",
    "Atezolizumab intravenously at a dosage of 1200mg or subcutaneously at 1875 mg",
    "Insulin 10 units before meals",
    "Standard of care chemotherapy",
], ids=["loading-then-maintenance", "concentration", "content", "up-to-and-range", "plus-minus",
        "starting-dose", "initial-and-split", "two-routes", "ambiguous-units", "no-amount"])
def test_uncertain_text_gives_no_structure(text: str) -> None:
    assert extract_dose_levels(text) == []


def test_two_routes_in_one_text_give_no_route() -> None:
    assert route_of("given intravenously or subcutaneously") is None
    assert route_of("given intravenously") == "Intravenous route"


def test_frequency_words_become_timing() -> None:
    assert frequency_of("twice daily") == "twice daily"
    t = timing_of("every 3 weeks")
    assert t is not None
    assert (t.frequency, t.period, t.period_unit) == (1, 3, "wk")
    single = timing_of("single dose")
    assert single is not None
    assert single.count == 1
    assert frequency_of("once daily, then twice daily") is None  # two schedules: none
