"""Criteria for groups of participants ("Part A", "Cohort 2", "the dose expansion"): a trial
that enrols adults in one part and adolescents in another lists an age for each, and read as
everyone's the two contradict. With two groups or more among the inclusion criteria, a patient
meets those common to all and those of one group (an any-of the reader adds, linkId
"participant-group"); a single group's inclusions and any group's exclusions stay text. Lines
written for these tests."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhirtrial.eligibility import criteria_for
from fhirtrial.eligibility.criteria import PARTICIPANT_GROUP
from fhirtrial.eligibility.fhir import characteristic
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
    # two populations named on lines of their own (NCT03928028: "Adolescents", "Parents")
    "populations on lines of their own": "Inclusion Criteria:\n" + COMMON + "\nAdults\n\n"
                                         "* Age ≥ 18 years\n\nAdolescents\n\n"
                                         "* Age 12 to 17 years\n",
    "populations as sub-headings": "Inclusion Criteria:\n" + COMMON + "Adults:\n"
                                   "* Age ≥ 18 years\nAdolescents:\n* Age 12 to 17 years\n",
}


def _walk(cs: list[Any]) -> list[Any]:
    return [c for r in cs for c in r.walk()]


def _patient(birth: str, ecog: int = 1) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p", "birthDate": birth}},
        {"resource": {"resourceType": "Observation", "id": "o", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "89247-1"}]},
                      "effectiveDateTime": "2024-01-01", "valueInteger": ecog}}]}


def _verdict(criteria: Any, birth: str, ecog: int = 1) -> str:
    out = evaluate(criteria, _patient(birth, ecog), as_of=date(2024, 1, 2))
    return out["parameter"][0]["valueCode"]


@pytest.mark.parametrize("text", PARTS.values(), ids=PARTS.keys())
def test_each_group_is_one_way_in_beside_the_common_criteria(text: str) -> None:
    roots = criteria_for(text)
    [holder] = [r for r in roots if r.link_id == PARTICIPANT_GROUP]
    assert holder.text.startswith("One of these participant groups: ")
    ch = characteristic(holder)
    assert ch["linkId"] == PARTICIPANT_GROUP
    assert ch["definitionByCombination"]["code"] == "any-of"
    assert len(ch["definitionByCombination"]["characteristic"]) == 2
    # the common criterion stays at the top, read; both ages are read, inside the holder
    assert [f.kind for f in roots[0].facts] == ["lab"]
    ages = [c for c in _walk([holder]) if "years" in c.text]
    assert [[f.kind for f in c.facts] for c in ages] == [["age"], ["age"]]


@pytest.mark.parametrize("text", PARTS.values(), ids=PARTS.keys())
def test_a_patient_of_either_group_is_eligible_and_one_of_neither_is_not(text: str) -> None:
    # (read as everyone's, "Age 12 to 17 years" made every adult not eligible, and "Age ≥ 18
    # years" every adolescent)
    assert _verdict(text, "1980-01-01") == "eligible"
    assert _verdict(text, "2009-06-01") == "eligible"
    assert _verdict(text, "2016-06-01") == "not-eligible"
    assert _verdict(text, "1980-01-01", ecog=3) == "not-eligible"


@pytest.mark.parametrize("text", PARTS.values(), ids=PARTS.keys())
def test_the_stored_evidence_variable_reads_back_the_same(text: str) -> None:
    ev = {"resourceType": "EvidenceVariable", "id": "x",
          "characteristic": [characteristic(c) for c in criteria_for(text)]}
    for birth in ("1980-01-01", "2009-06-01", "2016-06-01"):
        assert _verdict(ev, birth) == _verdict(text, birth)


@pytest.mark.parametrize("text", [
    # one group named: the others' terms are not in the criteria
    "Inclusion Criteria:\n* ECOG 0-1\n* Age 12-17 years (Part B)\n",
    "Inclusion Criteria:\n* ECOG 0-1\n* Part B:\n  * Age 12 to 17 years\n",
    # a group's exclusions exclude only its patients, whom the criteria do not name
    "Inclusion Criteria:\n* ECOG 0-1\nExclusion Criteria (Part B):\n* Age < 12 years\n",
    "Inclusion Criteria:\n* ECOG 0-1\nExclusion Criteria:\n* Part A:\n  * Age < 18 years\n"
    "* Part B:\n  * Age < 12 years\n",
])
def test_a_single_groups_inclusions_and_any_groups_exclusions_are_text(text: str) -> None:
    cs = _walk(criteria_for(text))
    assert [f.kind for f in cs[0].facts] == ["lab"]
    assert [c.text for c in cs if "years" in c.text and c.facts] == []
    assert _verdict(text, "1980-01-01") == "eligible"


def test_groups_as_alternatives_under_a_lead_in_are_read() -> None:
    text = ("Inclusion Criteria:\n* Aged < 18 years and meeting one of the following:\n"
            "  * a) Cohort 1: ≥ 12 years to < 18 years of age and weight ≥ 40 kg\n"
            "  * b) Cohort 2: < 12 years of age and weight ≥ 40 kg\n")
    cs = _walk(criteria_for(text))
    assert not any(c.link_id for c in cs)  # (already alternatives: nothing added)
    assert [[f.kind for f in c.facts] for c in cs[1:]] == [["age", "lab"], ["age", "lab"]]


@pytest.mark.parametrize("line", [
    "Arm circumference ≥ 20 cm",  # an arm, not "Arm A"
    "Group B streptococcus colonisation and age ≥ 18 years",
    "Participated in a phase 2 trial and age ≥ 18 years",
    "Stage III or IV disease and age ≥ 18 years",
])
def test_words_that_name_no_group_are_read_as_before(line: str) -> None:
    [c] = criteria_for(f"Inclusion Criteria:\n* {line}\n")
    assert c.facts != []
    assert c.link_id is None


def test_one_population_named_over_the_list_is_everyone() -> None:
    # a single "Patients:" heads the list; read as a group, its ages would become text
    text = "Inclusion Criteria:\nPatients:\n* Age ≥ 18 years\n* ECOG 0-1\n"
    cs = _walk(criteria_for(text))
    assert [c.link_id for c in cs] == [None, None, None]
    assert [[f.kind for f in c.facts] for c in cs[1:]] == [["age"], ["lab"]]
