"""The eligibility lab/condition table: schema-checked at load, conversions sound, and the
parser's measured precision on the labelled lines."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ROOT
from fhirtrial.eligibility.tables import load, tables
from fhirtrial.errors import MappingError

TABLE = ROOT / "mappings" / "eligibility-labs.json"
REQUIRED = ["alt", "ast", "bilirubin-total", "bilirubin-direct", "creatinine",
            "creatinine-clearance", "egfr", "hemoglobin", "platelets", "neutrophils", "inr",
            "hba1c", "bmi", "fev1", "fvc", "fev1-fvc", "dlco", "lvef", "ecog", "karnofsky"]


@pytest.mark.parametrize("key", REQUIRED)
def test_common_trial_lab_is_in_the_table_with_a_loinc_code(key: str) -> None:
    lab = tables().lab(key)
    assert lab.code["system"] == "http://loinc.org"
    assert re.fullmatch(r"\d{1,7}-\d", lab.code["code"])


def test_loinc_check_digits_are_right() -> None:
    # LOINC's mod-10 check digit: a typo in a code fails here, not in a hospital
    def ok(code: str) -> bool:
        body, check = code.split("-")
        digits = [int(c) for c in body]
        total = 0
        for i, dgt in enumerate(reversed(digits)):
            if i % 2 == 0:
                dgt *= 2
                dgt = dgt - 9 if dgt > 9 else dgt
            total += dgt
        return (10 - total % 10) % 10 == int(check)

    codes = [c for lab in tables().labs if lab.code["system"] == "http://loinc.org"
             for c in (lab.code["code"], *lab.alt_codes, *lab.percent_predicted_codes)]
    assert [c for c in codes if not ok(c)] == []


@pytest.mark.parametrize(("key", "value", "unit", "canonical"), [
    ("bilirubin-total", 17.1, "umol/L", 1.0), ("creatinine", 88.4, "µmol/L", 1.0),
    ("hemoglobin", 100, "g/L", 10.0), ("platelets", 150000, "/mm3", 150.0),
    ("neutrophils", 1.5, "10*9/L", 1.5), ("fvc", 2500, "mL", 2.5), ("alt", 1, "ukat/L", 60.0),
    ("hba1c", 53, "mmol/mol", 7.0), ("ast", 0.15, "IU/mL", 150.0), ("ggt", 0.2, "U/mL", 200.0),
    ("fvc", 1500, "cc", 1.5)])
def test_unit_converts_to_the_canonical_unit(key, value, unit, canonical) -> None:
    assert tables().lab(key).to_canonical(value, unit) == pytest.approx(canonical, abs=0.02)


def test_unknown_unit_is_not_converted() -> None:
    assert tables().lab("platelets").to_canonical(1, "lakh/uL") is None


def _changed_table(tmp_path: Path, change: Callable[[dict], None]) -> Path:
    """The lexicon with ``change`` made to it, beside its schema in ``tmp_path``."""
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "eligibility-labs.schema.json").write_bytes(
        (ROOT / "mappings" / "schema" / "eligibility-labs.schema.json").read_bytes())
    doc = json.loads(TABLE.read_text(encoding="utf-8"))
    change(doc)
    bad = tmp_path / "eligibility-labs.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    return bad


def test_malformed_table_is_a_mapping_error_naming_the_place(tmp_path: Path) -> None:
    bad = _changed_table(tmp_path, lambda doc: doc["labs"][0]["code"].update(code=1742))
    with pytest.raises(MappingError, match=r"1742 is not of type 'string' at /labs/0/code/code"):
        load(bad)


def test_a_state_naming_a_concept_the_lexicon_lacks_is_a_mapping_error(tmp_path: Path) -> None:
    bad = _changed_table(tmp_path,
                         lambda doc: doc["states"]["entries"][0].update(low=["haemoglobin-typo"]))
    with pytest.raises(MappingError, match=r"names no lab 'haemoglobin-typo'"):
        load(bad)


@pytest.mark.parametrize(("change", "message"), [
    ({"names": ["transaminases"], "labs": ["ast", "alt-typo"]}, r"names no lab 'alt-typo'"),
    # read as "ast/alt" in its place, a shorter name would move every position after it
    ({"names": ["lfts"], "labs": ["ast", "alt"]}, r"group name 'lfts' is shorter than 'ast/alt'"),
])
def test_a_group_naming_no_concept_or_too_short_is_a_mapping_error(
        tmp_path: Path, change: dict, message: str) -> None:
    bad = _changed_table(tmp_path, lambda doc: doc["groups"].update(entries=[change]))
    with pytest.raises(MappingError, match=message):
        load(bad)


@pytest.mark.parametrize(("entries", "message"), [
    ([{"function": "renal function", "labs": ["creatinine", "egfr-typo"]}],
     r"measures of 'renal function' name no lab 'egfr-typo'"),
    # one concept, two functions: which pair it makes would depend on the order
    ([{"function": "renal function", "labs": ["creatinine", "egfr"]},
      {"function": "muscle", "labs": ["creatinine", "ck"]}],
     r"'creatinine' is a measure of both 'renal function' and 'muscle'"),
])
def test_measures_naming_no_concept_or_one_twice_are_a_mapping_error(
        tmp_path: Path, entries: list, message: str) -> None:
    bad = _changed_table(tmp_path, lambda doc: doc["measures"].update(entries=entries))
    with pytest.raises(MappingError, match=message):
        load(bad)


@pytest.mark.parametrize(("change", "message"), [
    (lambda sw: sw["words"].append(dict(sw["words"][0])), r"state word 'pregnant' is listed "
                                                           r"twice"),
    (lambda sw: sw["words"][0].update(state="pregnant"), r"is not one of \['pregnancy', "
                                                          r"'lactation'\] at /state_words/"
                                                          r"words/0/state"),
    (lambda sw: sw["other_before"].append("Prior"), r"at /state_words/other_before/\d+"),
])
def test_a_malformed_pregnancy_word_list_is_a_mapping_error(
        tmp_path: Path, change: Callable[[dict], None], message: str) -> None:
    bad = _changed_table(tmp_path, lambda doc: change(doc["state_words"]))
    with pytest.raises(MappingError, match=message):
        load(bad)


@pytest.mark.parametrize(("change", "message"), [
    (lambda cw: cw["shown_filler"].append("cancer"), r"shown filler 'cancer' is no condition "
                                                     r"filler"),
    (lambda cw: cw["kinds"].append("Chronic"), r"at /condition_words/kinds/\d+"),
    (lambda cw: cw.pop("suspicion"), r"'suspicion' is a required property"),
])
def test_a_malformed_condition_word_list_is_a_mapping_error(
        tmp_path: Path, change: Callable[[dict], None], message: str) -> None:
    bad = _changed_table(tmp_path, lambda doc: change(doc["condition_words"]))
    with pytest.raises(MappingError, match=message):
        load(bad)


def _condition_entry(doc: dict, key: str) -> dict:
    return next(c for c in doc["conditions"] if c["key"] == key)


@pytest.mark.parametrize(("change", "message"), [
    (lambda doc: _condition_entry(doc, "interstitial-lung-disease").update(
        includes=["pulmonary-fibrosis-typo"]), r"'interstitial-lung-disease' includes no "
                                                r"condition 'pulmonary-fibrosis-typo'"),
    (lambda doc: _condition_entry(doc, "asthma").update(includes=["asthma"]),
     r"'asthma' includes itself"),
    # an ICD-10-CM prefix is a code's start, not a range or a display
    (lambda doc: _condition_entry(doc, "asthma").update(icd10cm=["J45-J46"]),
     r"at /conditions/\d+/icd10cm/0"),
    (lambda doc: _condition_entry(doc, "asthma").pop("icd10cm"),
     r"'icd10cm' is a required property"),
])
def test_a_malformed_condition_entry_is_a_mapping_error(
        tmp_path: Path, change: Callable[[dict], None], message: str) -> None:
    with pytest.raises(MappingError, match=message):
        load(_changed_table(tmp_path, change))


def test_a_condition_in_both_tables_has_the_same_icd_codes_in_each() -> None:
    """The lexicon's conditions and the trial-matching concept table (condition-concepts.json)
    code the same disorder the same way: where both carry one SNOMED code, their ICD-10-CM
    codes agree (one curated answer, not two)."""
    concepts = json.loads((ROOT / "mappings" / "condition-concepts.json").read_text("utf-8"))
    by_snomed = {s: c for c in concepts["concepts"] for s in c["snomed"]}
    shared = [(c["key"], c["icd10cm"], by_snomed[c["code"]["code"]]["icd10cm"])
              for c in tables().conditions if c["code"]["code"] in by_snomed]
    assert len(shared) >= 5  # asthma, HIV, both diabetes types, cluster headache
    for key, ours, theirs in shared:
        assert sorted(ours) == sorted(theirs), key


def test_every_state_names_a_side_for_each_of_its_concepts() -> None:
    for words, sides in tables().states:
        assert words
        assert sides
        assert set(sides.values()) <= {"low", "high"}


def test_benchmark_precision_is_at_least_0_95_for_every_kind() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_eligibility.py"), "--check"],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "labelled criterion lines" in r.stdout


def test_labelled_set_has_at_least_150_lines_with_negatives() -> None:
    rows = [json.loads(x) for x in (ROOT / "fixtures" / "eligibility" / "labelled.jsonl")
            .read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 150
    assert sum(1 for r in rows if not r["facts"]) >= 50
