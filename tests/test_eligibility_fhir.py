"""Facts as R5 EvidenceVariable characteristic parts, checked against the R5 model."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.evidencevariable import EvidenceVariable

from conftest import FIXTURES
from fhirtrial.eligibility import Fact, criteria_for
from fhirtrial.eligibility.fhir import (
    characteristic,
    characteristic_extras,
    fact_text,
    fact_to_definition,
)

SEED_TEXT = json.loads((FIXTURES / "seed" / "NCT06534528.json").read_text(encoding="utf-8"))[
    "protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
UCUM = "http://unitsofmeasure.org"


def _ev(chars: list[dict[str, Any]]) -> EvidenceVariable:
    return EvidenceVariable.model_validate({"resourceType": "EvidenceVariable",
                                            "status": "active", "characteristic": chars})


def test_seed_criteria_make_a_valid_r5_evidence_variable() -> None:
    ev = _ev([characteristic(c) for c in criteria_for(SEED_TEXT)])
    assert len(ev.characteristic) == 16


def test_uln_multiple_is_a_ratio_with_the_upper_normal_limit_offset() -> None:
    d = fact_to_definition(Fact("lab", {"test": "alt", "low": None, "high": 2.5,
                                        "low_inclusive": True, "high_inclusive": True,
                                        "unit": None, "relative": "ULN"}))
    assert d == {
        "type": {"coding": [{"system": "http://loinc.org", "code": "1742-6",
                             "display": "Alanine aminotransferase [Enzymatic activity/volume] "
                                        "in Serum or Plasma"}],
                 "text": "Alanine aminotransferase"},
        "valueQuantity": {"value": 2.5, "comparator": "<=", "unit": "1", "system": UCUM,
                          "code": "1"},
        "offset": {"coding": [{"system": "http://hl7.org/fhir/characteristic-offset",
                               "code": "UNL", "display": "Upper Normal Limit"}]}}


def test_percent_predicted_fvc_uses_the_measured_over_predicted_code() -> None:
    d = fact_to_definition(Fact("lab", {"test": "fvc", "low": 40, "high": 70,
                                        "low_inclusive": True, "high_inclusive": True,
                                        "unit": "%", "relative": "predicted"}))
    assert d["type"]["coding"][0]["code"] == "19872-1"
    assert d["valueRange"] == {"low": {"value": 40, "unit": "%", "system": UCUM, "code": "%"},
                               "high": {"value": 70, "unit": "%", "system": UCUM, "code": "%"}}


def test_age_range_in_years_is_a_ucum_range() -> None:
    d = fact_to_definition(Fact("age", {"low": 18, "high": 75, "low_inclusive": True,
                                        "high_inclusive": True, "unit": "a"}))
    assert d["type"]["coding"][0]["code"] == "424144002"
    assert d["valueRange"]["low"] == {"value": 18, "unit": "years", "system": UCUM, "code": "a"}


def test_two_sided_bound_with_an_exclusive_end_has_no_fhir_range() -> None:
    # FHIR Range bounds are inclusive: "≥ 12 and < 18" cannot be written as one
    assert fact_to_definition(Fact("age", {"low": 12, "high": 18, "low_inclusive": True,
                                           "high_inclusive": False, "unit": "a"})) is None


def test_time_window_is_a_time_from_event_range_before_the_eligibility_assessment() -> None:
    extras = characteristic_extras(Fact("time-window", {"comparator": "<=", "value": 3,
                                                        "unit": "mo"}))
    [tfe] = extras["timeFromEvent"]
    assert tfe["description"] == "within the previous 3 months"
    assert tfe["eventCodeableConcept"]["coding"][0]["code"] == "450332002"
    assert tfe["range"] == {"low": {"value": -3, "unit": "months", "system": UCUM, "code": "mo"},
                            "high": {"value": 0, "unit": "months", "system": UCUM,
                                     "code": "mo"}}


def test_a_condition_asked_for_now_is_present_at_the_eligibility_assessment() -> None:
    # "active tuberculosis": 0 days from the assessment, not a look-back range
    [c] = criteria_for("Exclusion Criteria:\n* Active tuberculosis")
    ch = characteristic(c)
    assert ch["description"] == "Active tuberculosis"
    assert ch["definitionByTypeAndValue"]["valueCodeableConcept"]["coding"][0]["code"] == \
        "56717001"
    [tfe] = ch["timeFromEvent"]
    assert tfe["description"] == "current: present at the eligibility assessment"
    assert tfe["eventCodeableConcept"]["coding"][0]["code"] == "450332002"
    assert tfe["quantity"] == {"value": 0, "unit": "days", "system": UCUM, "code": "d"}
    assert "range" not in tfe


def test_seed_dlco_characteristic_carries_its_three_month_window() -> None:
    [c] = [c for c in criteria_for(SEED_TEXT) if c.text.startswith("The diffusion capacity")]
    ch = characteristic(c)
    members = ch["definitionByCombination"]["characteristic"]
    assert ch["definitionByCombination"]["code"] == "all-of"
    assert [m["description"] for m in members] == ["DLCO 30 to 80 % of predicted within the "
                                                   "previous 3 months",
                                                   "FVC 40 to 70 % of predicted"]
    assert members[0]["timeFromEvent"][0]["description"] == "within the previous 3 months"
    assert "timeFromEvent" not in members[1]


def test_exclusion_with_several_facts_excludes_on_any_of_them() -> None:
    [c] = [c for c in criteria_for(SEED_TEXT) if c.text.startswith("Pregnant and lactating")]
    ch = characteristic(c)
    assert ch["exclude"] is True
    assert ch["definitionByCombination"]["code"] == "any-of"
    _ev([ch])


def test_text_only_criterion_has_its_description_and_no_definition() -> None:
    [c] = criteria_for("Exclusion Criteria:\n* have a history of abuse")
    assert characteristic(c) == {"description": "have a history of abuse", "exclude": True}


@pytest.mark.parametrize("kind", ["sex", "pregnancy", "lactation", "healthy-volunteers",
                                  "condition"])
def test_every_fact_kind_gives_a_valid_definition(kind: str) -> None:
    data = {"sex": {"sex": "female"}, "pregnancy": {"value": True},
            "lactation": {"value": False}, "healthy-volunteers": {"value": True},
            "condition": {"key": "asthma", "system": "http://snomed.info/sct",
                          "code": "195967001", "display": "Asthma (disorder)",
                          "text": "asthma"}}[kind]
    d = fact_to_definition(Fact(kind, data))
    assert d is not None
    _ev([{"description": kind, "definitionByTypeAndValue": d}])


def test_a_value_at_any_time_is_a_time_from_event_with_no_start() -> None:
    [c] = criteria_for("Exclusion Criteria:\n* History of QTc > 480 ms")
    ch = characteristic(c)
    _ev([ch])  # valid R5
    assert ch["definitionByTypeAndValue"]["valueQuantity"]["value"] == 480
    [tfe] = ch["timeFromEvent"]
    assert tfe["description"] == "at any time"
    assert tfe["eventCodeableConcept"]["coding"][0]["code"] == "450332002"
    # up to the assessment (0 days before it), from no earlier date
    assert tfe["range"] == {"high": {"value": 0, "unit": "days",
                                     "system": "http://unitsofmeasure.org", "code": "d"}}


def test_a_negated_bound_is_a_member_that_excludes() -> None:
    [c] = criteria_for("Inclusion Criteria:\n* No evidence of QTc > 480 ms")
    ch = characteristic(c)
    _ev([ch])
    assert ch["exclude"] is False  # the criterion stays an inclusion criterion
    [member] = ch["definitionByCombination"]["characteristic"]
    assert member["exclude"] is True  # its bound is what must not hold
    assert member["description"] == "not QTc interval > 480 ms"
    assert member["definitionByTypeAndValue"]["valueQuantity"] == {
        "value": 480, "comparator": ">", "unit": "ms", "system": UCUM, "code": "ms"}


def _seed_bundle_text(criteria: str, version: str) -> str:
    """The seed trial converted with ``criteria`` as its eligibility text, checked valid by the
    validator in ``version``, as JSON text."""
    from fhirtrial.convert import convert_study
    from fhirtrial.sources import parse_bytes
    from fhirtrial.validate import has_errors, validate_findings

    record = json.loads((FIXTURES / "seed" / "NCT06534528.json").read_text(encoding="utf-8"))
    record["protocolSection"]["eligibilityModule"]["eligibilityCriteria"] = criteria
    [rec] = list(parse_bytes(json.dumps(record).encode(), "changed.json"))
    bundle = convert_study(rec.study, fhir_version=version).bundle
    findings = validate_findings(bundle, fhir_version=version)
    assert not has_errors(findings), [f.message for f in findings if f.severity == "error"]
    return json.dumps(bundle, ensure_ascii=False)


@pytest.mark.parametrize("version", ["R5", "R4"])
def test_negated_and_any_time_bounds_make_valid_bundles_in_both_versions(version: str) -> None:
    text = _seed_bundle_text(
        "Inclusion Criteria:\n\n* No evidence of QTc > 480 ms\n\nExclusion Criteria:\n\n"
        "* History of QTc > 480 ms\n* Are not between 18 and 50 years of age\n", version)
    # the R4 Bundle carries the R5 characteristic whole (as cross-version extensions), so
    # both say the same: the negated members, their exclude, the window "at any time"
    said = ('"description": "{}"' if version == "R5" else
            '{{"url": "description", "valueMarkdown": "{}"}}')
    for words in ("not QTc interval > 480 ms", "at any time", "Age outside 18 to 50 years"):
        assert said.format(words) in text, words
    excluded = ('"exclude": true' if version == "R5" else
                '{"url": "exclude", "valueBoolean": true}')
    # the two exclusion criteria and the two negated members
    assert text.count(excluded) == 4


def test_an_exclusion_of_one_sexs_value_is_stated_as_all_of_the_sex_and_the_bound() -> None:
    [c] = criteria_for("Exclusion Criteria:\n* Females with hemoglobin < 10 g/dL")
    combo = characteristic(c)["definitionByCombination"]
    assert combo["code"] == "all-of"
    sex, hb = (m["definitionByTypeAndValue"] for m in combo["characteristic"])
    assert sex["valueCodeableConcept"]["coding"][0]["code"] == "female"
    assert hb["type"]["coding"][0]["code"] == "718-7"
    assert fact_text(c.facts[0]) == "Female, Haemoglobin < 10 g/dL"


@pytest.mark.parametrize(("text", "first", "second"), [
    # each sex its own bound: read as two plain bounds, each held for both sexes (in the
    # inclusion women needed 13); read as "< 10 g/dL (women) or < 12 g/dL (men)" is
    ("Exclusion Criteria:\n* Women with hemoglobin < 10 g/dL and men with hemoglobin < 12 g/dL",
     ("female", 10), ("male", 12)),
    ("Inclusion Criteria:\n* Women with hemoglobin ≥ 12 g/dL and men with hemoglobin ≥ 13 g/dL",
     ("female", 12), ("male", 13)),
])
def test_bounds_each_sex_opens_apart_are_one_bound_per_sex(text: str, first, second) -> None:
    [c] = criteria_for(text)
    [f] = [f for f in c.facts if f.kind == "lab"]
    [alt] = f.data["alternatives"]
    value = "high" if "Exclusion" in text else "low"
    assert (f.data["sex"], f.data[value]) == first
    assert (alt["sex"], alt[value]) == second


def test_bounds_each_sex_opens_on_two_concepts_stay_text() -> None:
    [c] = criteria_for("Inclusion Criteria:\n* Women with Hb ≥ 12 g/dL and men with platelets ≥ "
                       "100 × 10^9/L")
    assert not [f for f in c.facts if f.kind == "lab"]


def test_both_sexes_named_together_restrict_no_bound() -> None:
    [c] = criteria_for("Exclusion Criteria:\n* Male or female with Hb < 10 g/dL")
    assert [f.kind for f in c.facts] == ["lab"]


def test_an_exclusion_of_one_sexs_age_is_stated_as_all_of_the_sex_and_the_age() -> None:
    [c] = criteria_for("Exclusion Criteria:\n* Women aged ≥ 50 years")
    ch = characteristic(c)
    assert ch["exclude"] is True
    combo = ch["definitionByCombination"]
    assert combo["code"] == "all-of"
    sex, age = (m["definitionByTypeAndValue"] for m in combo["characteristic"])
    assert sex["valueCodeableConcept"]["coding"][0]["code"] == "female"
    assert age["type"]["coding"][0]["code"] == "424144002"
    assert (age["valueQuantity"]["comparator"], age["valueQuantity"]["value"]) == (">=", 50)
    # a clinician reads the pair as one: not "Sex: female and Age ≥ 50 years"
    assert [f.kind for f in c.facts] == ["all-of"]
    assert fact_text(c.facts[0]) == "Female, age ≥ 50 years"


def test_every_lexicon_unit_reads_as_a_clinician_writes_it() -> None:
    # a UCUM code with brackets, braces or "*" ("k[IU]/L", "{letters}", "mL/min/mm[Hg]") is
    # spelt for a person in a description, or is one a bound is written without ("{score}",
    # "{INR}", "[pH]": "MMSE ≥ 20", "INR ≤ 1.5", "pH < 7.3")
    from fhirtrial.eligibility.fhir import _UNIT_TEXT
    from fhirtrial.eligibility.tables import tables
    silent = {"{score}", "{INR}", "[pH]"}
    units = {u.ucum for lab in tables().labs for u in lab.units} | \
        {lab.unit for lab in tables().labs if lab.unit}
    coded = {u for u in units if any(c in u for c in "[{*")}
    assert sorted(coded - silent - set(_UNIT_TEXT)) == []
    for code in silent:
        fact = next(Fact("lab", {"test": lab.key, "low": 1, "high": None, "low_inclusive": True,
                                 "high_inclusive": True, "unit": code, "relative": None})
                    for lab in tables().labs if lab.unit == code)
        assert code not in fact_text(fact)


def test_a_range_for_one_sex_says_whose_it_is() -> None:
    # the first range of "18.5-30 kg/m² (men) or 18.5-28 kg/m² (women)" read as everyone's in
    # the description (the characteristic held the sex): a coordinator saw 30 for women too
    [c] = criteria_for("Inclusion Criteria:\n* BMI 18.5-30 kg/m² (men) or 18.5-28 kg/m² (women)")
    assert fact_text(c.facts[0]) == (
        "Body mass index 18.5 to 30 kg/m² (male) or 18.5 to 28 kg/m² (female)")


@pytest.mark.parametrize(("line", "text"), [
    # a condition at least N before is one begun that long ago (before: "Diabetes mellitus
    # type 2 (at least 6 months before)", which a coordinator could read as a past diabetes)
    ("Type 2 diabetes for at least 6 months", "Diabetes mellitus type 2 (begun at least 6 "
                                              "months before)"),
    ("History of myocardial infarction within the past 6 months",
     "Myocardial infarction (within the previous 6 months)"),
])
def test_a_conditions_window_says_when_it_was_present(line: str, text: str) -> None:
    [c] = criteria_for(f"Inclusion Criteria:\n* {line}")
    assert fact_text(next(f for f in c.facts if f.kind == "condition")) == text


def test_a_bound_held_for_a_time_carries_its_duration() -> None:
    [c] = criteria_for("Inclusion Criteria:\n* HIV-1 RNA < 50 copies/mL for at least 6 months")
    [f] = c.facts
    assert f.data["held"] == {"value": 6, "comparator": ">=", "unit": "mo"}
    ch = characteristic(c)
    _ev([ch])  # valid R5: EvidenceVariable.characteristic.durationQuantity
    assert ch["description"] == "HIV-1 RNA < 50 copies/mL for at least 6 months"
    assert ch["definitionByTypeAndValue"]["valueQuantity"]["value"] == 50
    assert ch["durationQuantity"] == {"value": 6, "comparator": ">=", "unit": "months",
                                      "system": UCUM, "code": "mo"}
    assert fact_text(f) == "HIV 1 RNA < 50 copies/mL for ≥ 6 months"


def test_a_time_held_after_a_bound_is_not_an_age() -> None:
    # "for at least 1 year" read as the group "aged ≥ 1 year" bound the CD4 count to
    # patients over one and let in every infant
    [c] = criteria_for("Inclusion Criteria:\n* CD4 count > 200 cells/mm3 for at least 1 year")
    assert [(f.kind, f.data.get("test"), f.data.get("held")) for f in c.facts] == [
        ("lab", "cd4", {"value": 1, "comparator": ">=", "unit": "a"})]
    # among the exclusions a value held for a time stays text, as before
    [e] = criteria_for("Exclusion Criteria:\n* HIV RNA > 50 copies/mL for ≥ 6 months")
    assert e.facts == []


@pytest.mark.parametrize("version", ["R5", "R4"])
def test_a_held_bound_makes_valid_bundles_in_both_versions(version: str) -> None:
    text = _seed_bundle_text("Inclusion Criteria:\n\n* HIV-1 RNA < 50 copies/mL for ≥ 6 months\n"
                             "* CD4 count > 200 cells/mm3 for at least 1 year\n", version)
    # the duration rides along in R4 as the R5 characteristic's cross-version extension
    said = ('"durationQuantity": {}' if version == "R5" else
            '{{"url": "durationQuantity", "valueQuantity": {}}}')
    for value, unit, code in ((6, "months", "mo"), (1, "years", "a")):
        quantity = json.dumps({"value": value, "comparator": ">=", "unit": unit,
                               "system": UCUM, "code": code})
        assert said.format(quantity) in text
    # the narrative reads the duration ("… 6 months" as the registry wrote it, "≥ 1 year" as
    # read from "at least 1 year")
    assert "for ≥ 1 year" in text
