"""Mapping tables: they load and validate, cover every CT.gov enum value, and a bad table fails
at load with a MappingError naming the file and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ROOT, SHARED, needs_shared
from fhirtrial import tables
from fhirtrial.errors import MappingError

TABLE_FILES = sorted(p for p in (ROOT / "mappings").glob("*.json")
                     if not (ROOT / "mappings" / "schema" / f"{p.stem}.schema.json").is_file())
DATA_TABLES = sorted(p.stem for p in (ROOT / "mappings").glob("*.json")
                     if (ROOT / "mappings" / "schema" / f"{p.stem}.schema.json").is_file())
ENUMS_FILE = SHARED / "spec" / "enums-2.0.5.json"

#: every enum the converter maps, and the table that must cover it
REQUIRED = {
    "Status": "overall-status", "Phase": "phase", "PrimaryPurpose": "primary-purpose",
    "ArmGroupType": "arm-type", "InterventionType": "intervention-type",
    "StudyType": "study-type", "DesignAllocation": "allocation",
    "InterventionalAssignment": "intervention-model", "DesignMasking": "masking",
    "WhoMasked": "who-masked", "ObservationalModel": "observational-model",
    "DesignTimePerspective": "time-perspective", "AgencyClass": "agency-class",
    "OfficialRole": "party-role", "ContactRole": "party-role",
    "RecruitmentStatus": "site-status", "ReferenceType": "reference-type", "Sex": "sex",
}

#: codes of the R5 (5.0.0) code systems the tables target, copied from hl7.fhir.r5.core
R5_CODES = {
    "http://hl7.org/fhir/research-study-status": {
        "overall-study", "active", "active-but-not-recruiting", "administratively-completed",
        "approved", "closed-to-accrual", "closed-to-accrual-and-intervention", "completed",
        "disapproved", "enrolling-by-invitation", "in-review", "not-yet-recruiting",
        "recruiting", "temporarily-closed-to-accrual",
        "temporarily-closed-to-accrual-and-intervention", "terminated", "withdrawn"},
    "http://hl7.org/fhir/research-study-phase": {
        "n-a", "early-phase-1", "phase-1", "phase-1-phase-2", "phase-2", "phase-2-phase-3",
        "phase-3", "phase-4"},
    "http://hl7.org/fhir/research-study-prim-purp-type": {
        "treatment", "prevention", "diagnostic", "supportive-care", "screening",
        "health-services-research", "basic-science", "device-feasibility"},
    "http://hl7.org/fhir/research-study-arm-type": {
        "active-comparator", "placebo-comparator", "sham-comparator", "no-intervention",
        "experimental", "other-arm-type"},
    "http://hl7.org/fhir/research-study-party-role": {
        "sponsor", "lead-sponsor", "sponsor-investigator", "primary-investigator",
        "collaborator", "funding-source", "general-contact", "recruitment-contact",
        "sub-investigator", "study-director", "study-chair", "irb"},
    "http://hl7.org/fhir/publication-status": {"draft", "active", "retired", "unknown"},
    "http://hl7.org/fhir/related-artifact-type": {
        "documentation", "justification", "citation", "predecessor", "successor",
        "derived-from", "depends-on", "composed-of", "part-of", "amends", "amended-with",
        "appends", "appended-with", "cites", "cited-by", "comments-on", "comment-in",
        "contains", "contained-in", "corrects", "correction-in", "replaces", "replaced-with",
        "retracts", "retracted-by", "signs", "similar-to", "supports", "supported-with",
        "transforms", "transformed-into", "transformed-with", "documents", "specification-of",
        "created-with", "cite-as"},
    "http://hl7.org/fhir/research-study-party-organization-type": {
        "nih", "fda", "government", "nonprofit", "academic", "industry"},
    "http://terminology.hl7.org/CodeSystem/organization-type": {
        "prov", "dept", "team", "govt", "ins", "pay", "edu", "reli", "crs", "cg", "bus",
        "other"},
    "http://hl7.org/fhir/administrative-gender": {"male", "female", "other", "unknown"},
    "http://hl7.org/fhir/study-design": {
        "SEVCO:01001", "SEVCO:01002", "SEVCO:01003", "SEVCO:01005", "SEVCO:01011",
        "SEVCO:01012", "SEVCO:01013", "SEVCO:01020", "SEVCO:01022", "SEVCO:01023",
        "SEVCO:01027", "SEVCO:01038", "SEVCO:01044", "SEVCO:01060", "SEVCO:01061",
        "SEVCO:01062"},
    "http://hl7.org/fhir/fhir-types": {
        "MedicationRequest", "DeviceRequest", "NutritionOrder", "ServiceRequest"},
}
#: UCUM is a grammar, not a list; these are the age units the spec's examples use
AGE_UCUM = {"a", "mo", "wk", "d", "h", "min"}


@pytest.mark.parametrize("path", TABLE_FILES, ids=lambda p: p.name)
def test_table_loads_and_validates(path: Path) -> None:
    t = tables.load_table_file(path)
    assert t.values(), f"{path.name} maps nothing"
    for value, entry in t.doc["map"].items():
        for target, m in entry.items():
            if isinstance(m, dict) and m["equivalence"] == "unmatched":
                assert m["code"] is None, f"{value}/{target}: unmatched but coded"
                assert m["comment"], f"{value}/{target} needs a reason"


def test_every_table_file_is_reachable_through_the_cached_loader() -> None:
    assert set(tables.all_tables()) == {p.stem for p in TABLE_FILES}
    assert tables.table("phase") is tables.table("phase")  # loaded once


def test_loader_finds_the_checkout_mappings_directory() -> None:
    assert tables.mappings_dir() == ROOT / "mappings"


@needs_shared
@pytest.mark.parametrize(("enum", "table_name"), sorted(REQUIRED.items()), ids=str)
def test_every_enum_value_is_mapped_or_unmapped_with_reason(enum: str, table_name: str) -> None:
    values = json.loads(ENUMS_FILE.read_text("utf-8"))[enum]
    t = tables.table(table_name)
    known = set()
    for key in t.values():
        known.update(key.split("+"))  # phase keys are sets: "PHASE1+PHASE2"
    missing = [v for v in values if v not in known]
    assert not missing, f"{enum} values missing from mappings/{table_name}.json: {missing}"
    for reason in t.doc["unmapped"].values():
        assert reason.strip()


@pytest.mark.parametrize("path", TABLE_FILES, ids=lambda p: p.name)
def test_table_codes_exist_in_the_r5_code_systems(path: Path) -> None:
    t = tables.load_table_file(path)
    for value in t.doc["map"]:
        for target in t.doc["targets"]:
            m = t.target(value, target)
            if m is None or m.code is None:
                continue
            if m.system == "http://unitsofmeasure.org":
                assert m.code in AGE_UCUM
            elif m.system in R5_CODES:
                assert m.code in R5_CODES[m.system], f"{value}: {m.system}|{m.code} not in R5"


def test_phase_set_maps_to_the_combined_phase_code() -> None:
    t = tables.table("phase")
    target = t.target("PHASE1+PHASE2", "r5")
    assert target is not None
    assert (target.system, target.code) == ("http://hl7.org/fhir/research-study-phase",
                                            "phase-1-phase-2")


def _bad(tmp_path: Path, name: str, mutate) -> Path:
    doc = json.loads((ROOT / "mappings" / "phase.json").read_text("utf-8"))
    mutate(doc)
    doc["table"] = name
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps(doc), "utf-8")
    return p


def test_malformed_json_table_raises_mapping_error_naming_the_file(tmp_path: Path) -> None:
    p = tmp_path / "broken.json"
    p.write_text('{"table": "broken", ', "utf-8")
    with pytest.raises(MappingError, match=r"^broken\.json: not valid JSON"):
        tables.load_table_file(p)


def test_unmatched_entry_with_a_code_is_rejected(tmp_path: Path) -> None:
    def mutate(doc):
        doc["map"]["PHASE1"]["r5"]["equivalence"] = "unmatched"
    p = _bad(tmp_path, "bad-unmatched", mutate)
    with pytest.raises(MappingError, match=r"^bad-unmatched\.json: map/PHASE1/r5"):
        tables.load_table_file(p)


def test_unknown_equivalence_is_rejected(tmp_path: Path) -> None:
    def mutate(doc):
        doc["map"]["PHASE2"]["r4"]["equivalence"] = "roughly"
    p = _bad(tmp_path, "bad-equivalence", mutate)
    with pytest.raises(MappingError, match=r"bad-equivalence\.json: map/PHASE2/r4/equivalence"):
        tables.load_table_file(p)


def test_undeclared_target_is_rejected(tmp_path: Path) -> None:
    def mutate(doc):
        doc["map"]["PHASE3"]["r6"] = {"code": "x", "display": "x", "equivalence": "equivalent"}
    p = _bad(tmp_path, "bad-target", mutate)
    with pytest.raises(MappingError, match=r"target 'r6' is not declared"):
        tables.load_table_file(p)


def test_value_both_mapped_and_unmapped_is_rejected(tmp_path: Path) -> None:
    def mutate(doc):
        doc["unmapped"]["PHASE4"] = "because"
    p = _bad(tmp_path, "bad-both", mutate)
    with pytest.raises(MappingError, match=r"'PHASE4' is both mapped and unmapped"):
        tables.load_table_file(p)


def test_missing_required_key_is_rejected(tmp_path: Path) -> None:
    p = _bad(tmp_path, "bad-missing", lambda doc: doc.pop("targets"))
    with pytest.raises(MappingError, match=r"'targets' is a required property"):
        tables.load_table_file(p)


def test_unknown_table_name_raises_mapping_error() -> None:
    with pytest.raises(MappingError, match=r"no-such-table\.json: no such mapping table"):
        tables.table("no-such-table")


def test_mapping_error_becomes_a_code_invalid_operation_outcome(tmp_path: Path) -> None:
    p = tmp_path / "broken.json"
    p.write_text("[", "utf-8")
    with pytest.raises(MappingError) as err:
        tables.load_table_file(p)
    issue = err.value.to_operation_outcome()["issue"][0]
    assert issue["severity"] == "error"
    assert issue["code"] == "code-invalid"
    assert issue["diagnostics"].startswith("broken.json: not valid JSON")


@pytest.mark.parametrize("name", DATA_TABLES)
def test_data_table_validates_against_its_own_schema(name: str) -> None:
    assert tables.data_table(name)


def test_data_table_breaking_its_schema_raises_mapping_error(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "code-table.schema.json").write_text("{}", encoding="utf-8")
    (tmp_path / "schema" / "t.schema.json").write_text(
        '{"type": "object", "required": ["rows"]}', encoding="utf-8")
    (tmp_path / "t.json").write_text('{"columns": []}', encoding="utf-8")
    monkeypatch.setattr(tables, "mappings_dir", lambda: tmp_path)
    tables.data_table.cache_clear()
    with pytest.raises(MappingError, match=r"t\.json: \(top level\): 'rows' is a required"):
        tables.data_table("t")
    tables.data_table.cache_clear()
