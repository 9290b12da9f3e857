"""The validator on a fresh install (no FHIR package in the cache) never says "valid" when it
did not look: types, cardinality, narrative rules and Bundle references still run, and what
needs the package is named in the summary line and the OperationOutcome. The server validates
writes with the same validator, so such resources are refused with nothing stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import WRITE_TOKEN, store_rows
from fhirtrial.cli import main
from fhirtrial.validate import Validator, get_validator, validate
from fhirtrial.validate.models import PRIMITIVE_REGEX, ModelDefinitions
from validate_support import R5_CORE, require_tarball

XHTML = "http://www.w3.org/1999/xhtml"
UUID_A = "urn:uuid:11111111-1111-4111-8111-111111111111"
UUID_MISSING = "urn:uuid:22222222-2222-4222-8222-222222222222"


@pytest.fixture(autouse=True)
def empty_package_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No package anywhere: an empty cache, and HOME pointing at an empty folder."""
    cache = tmp_path / "fhir-packages"
    cache.mkdir()
    monkeypatch.setenv("FHIRTRIAL_FHIR_PACKAGES", str(cache))
    monkeypatch.setenv("HOME", str(tmp_path))
    return cache


@pytest.fixture(scope="module")
def r5_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The R5 core installed by our own CLI into a cache of its own (for the comparisons)."""
    from fhirtrial.packages import locate

    cache = tmp_path_factory.mktemp("r5-cache")
    res = CliRunner().invoke(main, ["packages", "install", str(require_tarball(R5_CORE)),
                                    "--cache", str(cache)])
    assert res.exit_code == 0, res.output
    folder = locate("hl7.fhir.r5.core", "5.0.0", cache)
    assert folder is not None
    return folder


@pytest.fixture
def bare() -> Validator:
    v = Validator("R5", None)
    assert v.package is None
    return v


def _div(inner: str, attrs: str = "") -> dict[str, str]:
    return {"status": "generated", "div": f'<div xmlns="{XHTML}"{attrs}>{inner}</div>'}


def errors(findings: list[Any]) -> list[tuple[str, str | None]]:
    return [(f.code, f.location) for f in findings if f.severity in ("error", "fatal")]


# -- types -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("resource", "where"), [
    ({"resourceType": "Patient", "active": "yes"}, "Patient.active"),
    ({"resourceType": "Patient", "active": "true"}, "Patient.active"),
    ({"resourceType": "Patient", "birthDate": "1990-13-40"}, "Patient.birthDate"),
    ({"resourceType": "Patient", "multipleBirthInteger": "3"},
     "Patient.multipleBirth.ofType(integer)"),
    ({"resourceType": "Group", "type": "person", "membership": "definitional",
      "quantity": -1}, "Group.quantity"),
    ({"resourceType": "EvidenceVariable", "status": "active", "characteristic": [
        {"definitionByCombination": {"code": "all-of", "characteristic": [
            {"exclude": "yes", "definitionCodeableConcept": {"text": "adults"}}]}}]},
     "EvidenceVariable.characteristic[0].definitionByCombination.characteristic[0].exclude"),
    ({"resourceType": "ResearchStudy", "status": "active",
      "period": {"start": "2024-02-30T25:00:00Z"}}, "ResearchStudy.period.start"),
    ({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": UUID_A, "resource": {"resourceType": "Group", "type": "person",
                                         "membership": "definitional", "active": "no"}}]},
     "Bundle.entry[0].resource.active"),
], ids=["boolean-yes", "boolean-string-true", "bad-date", "integer-as-string-in-choice",
        "unsignedInt-negative", "nested-exclude-yes", "bad-dateTime", "in-bundle-entry"])
def test_wrong_primitive_is_an_error_without_a_package(bare: Validator, resource: dict,
                                                       where: str) -> None:
    found = bare.findings(resource)
    assert ("value", where) in errors(found), found


@pytest.mark.parametrize("version", ["R5", "R4"])
@pytest.mark.parametrize("value", ['{"code": "OTHER", "display": "Other"}', "other", 5, True])
def test_a_scalar_where_an_object_belongs_is_an_error(version: str, value: Any) -> None:
    """A Coding, a backbone element given as a string, number or boolean is an error there:
    before, a string holding JSON passed as valid (the models read it as the object it
    spells); the other scalars the models refused already (their finding may stand for
    ours at the same place)."""
    org = {"resourceType": "Organization", "name": "Asker", "type": [
        {"coding": [{"system": "http://example.org", "code": "a"}, value]}],
        "contact": [{"name": {"text": "Desk"}}]}
    validator = Validator(version, None)
    for _ in range(2):  # a validator remembers how it checks an element: the second time too
        found = [f for f in validator.findings(org)
                 if f.location == "Organization.type[0].coding[1]" and f.severity == "error"]
        assert found
        if isinstance(value, str) and value.startswith("{"):
            assert found[0].message.startswith(
                "Wrong JSON type for Coding: expected an object, got '{\"code\""), found
        # a single (not repeating) element too
        one = {"resourceType": "Organization", "name": "Asker", "contact": [{"name": value}]}
        assert ("value", "Organization.contact[0].name") in errors(validator.findings(one))
    org["type"][0]["coding"].pop()
    org["contact"] = ["front desk"]
    assert ("value", "Organization.contact[0]") in errors(
        Validator(version, None).findings(org))


def test_cardinality_and_required_elements_without_a_package(bare: Validator) -> None:
    found = errors(bare.findings({"resourceType": "Observation", "code": {"text": "x"},
                                  "identifier": {"value": "one"}}))
    assert ("required", "Observation.status") in found
    assert ("structure", "Observation.identifier") in found


def test_clean_resource_stays_clean_without_a_package(bare: Validator) -> None:
    group = {"resourceType": "Group", "id": "g1", "text": _div("A group <b>of</b> adults"),
             "type": "person", "membership": "definitional", "quantity": 3,
             "characteristic": [{"code": {"text": "age"}, "valueBoolean": True,
                                 "exclude": False}]}
    assert errors(bare.findings(group)) == []


# -- references --------------------------------------------------------------------------------
def _bundle(ref: str) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": UUID_A, "resource": {"resourceType": "Group", "type": "person",
                                         "membership": "definitional"}},
        {"fullUrl": "urn:uuid:33333333-3333-4333-8333-333333333333",
         "resource": {"resourceType": "ResearchStudy", "status": "active",
                      "recruitment": {"eligibility": {"reference": ref}}}}]}


def test_dangling_urn_uuid_reference_is_an_error_without_a_package(bare: Validator) -> None:
    found = bare.findings(_bundle(UUID_MISSING))
    assert errors(found) == [
        ("not-found", "Bundle.entry[1].resource.recruitment.eligibility.reference")]
    assert "does not resolve" in found[0].message
    assert errors(bare.findings(_bundle(UUID_A))) == []


def test_reference_to_a_type_not_allowed_is_an_error_without_a_package(bare: Validator) -> None:
    bundle = _bundle(UUID_A)
    bundle["entry"][0]["resource"] = {"resourceType": "Location", "name": "x"}
    assert errors(bare.findings(bundle)) == [
        ("structure", "Bundle.entry[1].resource.recruitment.eligibility.reference")]


def test_dangling_contained_reference_is_an_error_without_a_package(bare: Validator) -> None:
    study = {"resourceType": "ResearchStudy", "status": "active",
             "recruitment": {"eligibility": {"reference": "#nope"}}}
    assert errors(bare.findings(study)) == [
        ("not-found", "ResearchStudy.recruitment.eligibility.reference")]


# -- narrative ---------------------------------------------------------------------------------
BAD_NARRATIVES = {
    "script": _div("Hi<script>alert(1)</script>"),
    "onclick": _div('<p onclick="alert(1)">Hi</p>'),
    "onload-on-img": _div('<img src="x.png" onerror="alert(1)"/>Hi'),
    "iframe": _div('<iframe src="https://example.org"></iframe>Hi'),
    "form": _div("<form><input name='q'/></form>Hi"),
    "javascript-href": _div('<a href="javascript:alert(1)">Hi</a>'),
    "style-element": _div("<style>p {color: red}</style>Hi"),
    "svg": _div('<svg xmlns="http://www.w3.org/2000/svg"><circle r="1"/></svg>Hi'),
    "not-well-formed": _div("<p>Hi"),
    "no-namespace": {"status": "generated", "div": "<div>Hi</div>"},
    "not-a-div": {"status": "generated", "div": f'<p xmlns="{XHTML}">Hi</p>'},
    "empty": _div("   "),
    "doctype-entities": {"status": "generated",
                         "div": '<!DOCTYPE div [<!ENTITY a "aaaa">]>'
                                f'<div xmlns="{XHTML}">&a;</div>'},
}


@pytest.mark.parametrize("name", list(BAD_NARRATIVES))
@pytest.mark.parametrize("with_package", [False, True], ids=["no-package", "package"])
def test_narrative_breaking_txt_rules_is_an_error_in_every_mode(
        name: str, with_package: bool, request: pytest.FixtureRequest) -> None:
    validator = get_validator("R5", request.getfixturevalue("r5_folder")) if with_package \
        else Validator("R5", None)
    patient = {"resourceType": "Patient", "text": BAD_NARRATIVES[name]}
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"fullUrl": UUID_A, "resource": patient}]}
    assert ("invalid", "Patient.text.div") in errors(validator.findings(patient))
    assert ("invalid", "Bundle.entry[0].resource.text.div") in errors(
        validator.findings(bundle))


@pytest.mark.parametrize("div", [
    _div("Plain text"),
    _div('<p style="color: red" class="x" id="p1">A &amp; B&nbsp;&copy; 2024</p>'),
    _div('<table border="1"><tr><td colspan="2">x</td></tr></table>'
         '<a href="https://example.org/a" name="n">link</a><img src="#x" alt="i"/>'),
    _div('<ul><li>one</li></ul><ol start="2" type="a"><li>two</li></ol>'),
    _div('<span xml:lang="en" lang="en" dir="ltr" title="t">x</span><br/><hr/>'),
    {"status": "generated", "div": f'<div xmlns="{XHTML}"><img src="logo.png"/></div>'},
], ids=["text", "entities-and-style", "table-link-img", "lists", "lang-attrs", "image-only"])
def test_allowed_narrative_is_clean(bare: Validator, div: dict[str, str]) -> None:
    patient = {"resourceType": "Patient", "text": div}
    assert errors(bare.findings(patient)) == []


# -- saying what was not checked -----------------------------------------------------------
def test_outcome_names_what_the_missing_package_leaves_unchecked() -> None:
    outcome = validate({"resourceType": "Patient", "active": True})
    assert [(i["severity"], i["code"]) for i in outcome["issue"]] == [
        ("information", "informational")]
    text = outcome["issue"][0]["diagnostics"]
    assert text.startswith("Validation incomplete: not checked without the FHIR R5 core "
                           "package: the official JSON schema, the FHIRPath invariants")
    assert "fhirtrial packages install hl7.fhir.r5.core@5.0.0" in text


def test_outcome_says_nothing_is_missing_with_the_package(r5_folder: Path) -> None:
    outcome = validate({"resourceType": "Patient", "active": True, "text": _div("x")},
                       package=r5_folder)
    assert [i["diagnostics"] for i in outcome["issue"]] == ["No issues found."]


def test_cli_summary_line_says_what_was_not_checked(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"resourceType": "Patient", "active": True}))
    res = CliRunner().invoke(main, ["validate", str(f)])
    assert res.exit_code == 0, res.output
    assert res.stdout == ""
    assert res.stderr.splitlines()[-1].startswith(
        "1 input validated: no issues; not checked without the FHIR R5 core package: the "
        "official JSON schema")
    res = CliRunner().invoke(main, ["validate", str(f), "--format", "json"])
    issue = json.loads(res.stdout)["issue"]
    assert [(i["severity"], i["code"]) for i in issue] == [("information", "informational")]
    assert "not checked without the FHIR R5 core package" in issue[0]["diagnostics"]


def test_cli_fails_the_reproductions_of_issue_13(tmp_path: Path) -> None:
    cases = {
        "active-yes.json": {"resourceType": "Patient", "active": "yes"},
        "script.json": {"resourceType": "Patient", "text": _div("<script>x()</script>x")},
        "dangling.json": _bundle(UUID_MISSING),
    }
    for name, doc in cases.items():
        (tmp_path / name).write_text(json.dumps(doc))
    res = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert res.exit_code == 1
    lines = res.stdout.splitlines()
    assert [ln.split(": ")[0] for ln in lines] == [str(tmp_path / n) for n in sorted(cases)]
    assert all(": error: " in ln for ln in lines)
    assert res.stderr.splitlines()[-1].startswith("3 inputs validated: 3 errors; not checked")


# -- the model-derived definitions agree with the package -------------------------------------
def test_spec_regex_table_matches_the_core_package(r5_folder: Path) -> None:
    package = get_validator("R5", r5_folder).package
    assert package is not None
    differ = {}
    for tcode, ours in PRIMITIVE_REGEX.items():
        sd = package.structure_definitions["http://hl7.org/fhir/StructureDefinition/" + tcode]
        theirs = [ext["valueString"] for ed in sd["snapshot"]["element"]
                  if ed["path"] == f"{tcode}.value" for t in ed.get("type", [])
                  for ext in t.get("extension", []) if ext["url"].endswith("/regex")]
        if theirs != [ours]:
            differ[tcode] = (ours, theirs)
    assert differ == {}


def test_model_definitions_agree_with_the_package_on_this_projects_types(r5_folder: Path
                                                                        ) -> None:
    pkg = get_validator("R5", r5_folder).definitions
    mod = ModelDefinitions("R5")
    assert pkg is not None
    for rtype in ("ResearchStudy", "PlanDefinition", "EvidenceVariable", "Group", "Location",
                  "Organization", "Bundle", "Patient", "Observation"):
        p, m = pkg.type_info(rtype), mod.type_info(rtype)
        assert p is not None
        assert m is not None
        for path, kids in p.children.items():
            for name, elem in kids.items():
                if path not in m.children:
                    continue
                got = m.children[path].get(name)
                assert got is not None, f"{path}.{name}"
                assert got.repeats == elem.repeats, f"{path}.{name}"
                if elem.types and elem.types != ["string"] and name != "id":
                    assert sorted(got.types) == sorted(elem.types) or \
                        got.types == ["BackboneElement"], f"{path}.{name}"
                want = sorted(elem.target_types.get("Reference", []))
                if want and want != ["Resource"]:
                    assert sorted(got.target_types.get("Reference", [])) == want, \
                        f"{path}.{name}"


# -- the server refuses such writes ----------------------------------------------------------
W = {"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/fhir+json"}


def _rows(app: Any) -> dict[str, list]:
    return store_rows(app)  # every row of the store, SQLite or PostgreSQL


@pytest.mark.parametrize(("url", "body", "where"), [
    ("/fhir/Group", {"resourceType": "Group", "type": "person", "membership": "definitional",
                     "active": "yes"}, "Group.active"),
    ("/fhir/Group", {"resourceType": "Group", "type": "person", "membership": "definitional",
                     "text": _div("<script>alert(1)</script>Hi")}, "Group.text.div"),
    ("/fhir/Group", {"resourceType": "Group", "type": "person", "membership": "definitional",
                     "text": _div('<p onmouseover="alert(1)">Hi</p>')}, "Group.text.div"),
    ("/fhir/EvidenceVariable", {"resourceType": "EvidenceVariable", "status": "active",
                                "characteristic": [{"definitionByCombination": {
                                    "code": "all-of", "characteristic": [
                                        {"exclude": "yes",
                                         "definitionCodeableConcept": {"text": "x"}}]}}]},
     "EvidenceVariable.characteristic[0].definitionByCombination.characteristic[0].exclude"),
    # a string spelling a Coding where a Coding belongs (the models parse it as one)
    ("/fhir/Organization", {"resourceType": "Organization", "name": "Asker", "type": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                     "code": "other"}, '{"code": "OTHER", "display": "Other"}']}]},
     "Organization.type[0].coding[1]"),
], ids=["active-yes", "script-narrative", "event-attribute", "nested-exclude-yes",
        "coding-as-json-string"])
def test_server_refuses_invalid_write_and_stores_nothing(app: Any, client: Any, url: str,
                                                        body: dict, where: str) -> None:
    before = _rows(app)
    r = client.post(url, data=json.dumps(body), headers=W)
    assert r.status_code in (400, 422), r.get_data(as_text=True)
    oo = r.get_json()
    assert oo["resourceType"] == "OperationOutcome"
    assert oo["issue"][0]["severity"] == "error"
    assert any(where in (i.get("expression") or [""])[0] for i in oo["issue"]), oo
    assert _rows(app) == before
    assert client.get(url.replace("/fhir/", "/fhir/") + "?_summary=count").get_json()[
        "total"] == 0


def test_server_refuses_transaction_with_dangling_urn_uuid(app: Any, client: Any) -> None:
    bundle = _bundle(UUID_MISSING)
    bundle["type"] = "transaction"
    for e in bundle["entry"]:
        e["request"] = {"method": "POST", "url": e["resource"]["resourceType"]}
    before = _rows(app)
    r = client.post("/fhir", data=json.dumps(bundle), headers=W)
    assert 400 <= r.status_code < 500, r.get_data(as_text=True)
    assert r.get_json()["resourceType"] == "OperationOutcome"
    assert _rows(app) == before


def test_serve_says_at_start_up_what_write_validation_covers(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "FHIRTRIAL_FHIR_PACKAGES": str(tmp_path / "fhir-packages"),
           "FHIRTRIAL_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, "-m", "fhirtrial", "serve", "--dev", "--host",
                             "127.0.0.1", "--port", str(port)], env=env, text=True,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline().strip() for _ in range(2)]
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stderr is not None:
            proc.stderr.close()
    assert lines[0].startswith("fhirtrial: serving ")
    assert lines[1] == (
        "fhirtrial: write validation: R5 and R4: types, cardinality, narrative, references and "
        "the project's required codes; no core package, so no JSON schema, FHIRPath invariants "
        "or full terminology (`fhirtrial packages install` adds them)")


def _object_paths(x: Any, pre: tuple = ()) -> Any:
    if isinstance(x, dict):
        if pre:
            yield pre
        for k, v in x.items():
            yield from _object_paths(v, (*pre, k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _object_paths(v, (*pre, i))


def test_every_object_of_a_converted_study_spelled_as_a_json_string_is_an_error() -> None:
    """Each object of the seed study's Bundle (a Coding, a Narrative, a backbone element, a
    whole entry resource) replaced by the JSON string that spells it: the models would read
    most of those strings as the object, so the structure layer must say each is wrong —
    through one validator, as a server's or a bulk run's is reused."""
    from conftest import FIXTURES
    from fhirtrial.convert import convert_study
    from fhirtrial.sources import read_inputs

    [rec] = list(read_inputs([str(FIXTURES / "seed" / "NCT06534528.json")], fetch=None))
    bundle = json.loads(convert_study(rec.study).indented())
    validator = Validator("R5", None)
    assert not [f for f in validator.findings(bundle) if f.severity in ("error", "fatal")]
    passed, tried = [], 0
    for path in list(_object_paths(bundle)):
        mutated = json.loads(json.dumps(bundle))
        node = mutated
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = json.dumps(node[path[-1]])
        tried += 1
        if not any(f.severity in ("error", "fatal") for f in validator.findings(mutated)):
            passed.append(path)
    assert tried > 100
    assert passed == []
