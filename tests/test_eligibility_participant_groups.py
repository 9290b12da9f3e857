"""Criteria for one group of participants ("Part A", "Cohort 2", "the dose expansion"): a trial
that enrols adults in one part and adolescents in another lists an age for each, and read as
everyone's the two contradict. They stay text (for a person to confirm) unless they are
alternatives under a lead-in ("meet one of the following"). Lines written for these tests."""

from __future__ import annotations

from datetime import date

import pytest

from fhirtrial.eligibility import criteria_for
from fhirtrial.eligibility.match import evaluate

COMMON = "* ECOG 0-1\n"
PARTS = {
    "headings with items": "Inclusion Criteria:\n" + COMMON + "* Part A:\n  * Age ≥ 18 years\n"
                           "* Part B:\n  * Age 12 to 17 years\n",
    "labels on lines of their own": "Inclusion Criteria:\n" + COMMON + "\nPart A\n\n"
                                    "* Age ≥ 18 years\n\nPart B\n\n* Age 12 to 17 years\n",
    "section headings": "Inclusion Criteria:\n" + COMMON + "Inclusion Criteria (Part A):\n"
                        "* Age ≥ 18 years\nInclusion Criteria for Part B:\n"
                        "* Age 12 to 17 years\n",
    "labels opening the line": "Inclusion Criteria:\n" + COMMON + "* Cohort 1: Age ≥ 18 years\n"
                               "* Cohorts 2-3: Age 12 to 17 years\n",
    "labels in brackets": "Inclusion Criteria:\n" + COMMON + "* Age ≥ 18 years (Part A)\n"
                          "* Age 12 to 17 years (Part B only)\n",
}


def _facts(text: str) -> dict[str, list[str]]:
    return {c.text: [f.kind for f in c.facts] for r in criteria_for(text) for c in r.walk()}


@pytest.mark.parametrize("text", PARTS.values(), ids=PARTS.keys())
def test_one_groups_criteria_are_text_and_the_common_ones_are_read(text: str) -> None:
    facts = _facts(text)
    assert facts["ECOG 0-1"] == ["lab"]
    ages = [t for t in facts if "years" in t]
    assert len(ages) == 2
    assert all(facts[t] == [] for t in ages), facts


@pytest.mark.parametrize("text", PARTS.values(), ids=PARTS.keys())
def test_an_adult_is_not_turned_away_by_the_adolescents_age(text: str) -> None:
    patient = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p", "birthDate": "1980-01-01"}},
        {"resource": {"resourceType": "Observation", "id": "o", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "89247-1"}]},
                      "effectiveDateTime": "2024-01-01", "valueInteger": 1}}]}
    out = evaluate(text, patient, as_of=date(2024, 1, 2))
    # (read as everyone's, "Age 12 to 17 years" made every adult not eligible)
    assert out["parameter"][0]["valueCode"] == "eligible"


def test_groups_as_alternatives_under_a_lead_in_are_read() -> None:
    text = ("Inclusion Criteria:\n* Aged < 18 years and meeting one of the following:\n"
            "  * a) Cohort 1: ≥ 12 years to < 18 years of age and weight ≥ 40 kg\n"
            "  * b) Cohort 2: < 12 years of age and weight ≥ 40 kg\n")
    facts = _facts(text)
    assert facts["a) Cohort 1: ≥ 12 years to < 18 years of age and weight ≥ 40 kg"] == [
        "age", "lab"]
    assert facts["b) Cohort 2: < 12 years of age and weight ≥ 40 kg"] == ["age", "lab"]


@pytest.mark.parametrize("line", [
    "Arm circumference ≥ 20 cm",  # an arm, not "Arm A"
    "Group B streptococcus colonisation and age ≥ 18 years",
    "Participated in a phase 2 trial and age ≥ 18 years",
    "Stage III or IV disease and age ≥ 18 years",
])
def test_words_that_name_no_group_are_read_as_before(line: str) -> None:
    facts = _facts(f"Inclusion Criteria:\n* {line}\n")
    assert facts[line] != []
