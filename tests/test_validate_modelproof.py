"""R4's model proof (validate/modelproof.py): where it proves a resource valid the validator does
not ask the fhir.resources R4B models, so it must never prove what the models reject.

Compared here: findings with and without the proof over the R4 mutation corpus, mutated R4
Bundles converted from the shared records and mutations aimed at the proof's own checks; each
primitive check against the models on values either side of its edges; the shipped tables
against the installed models.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fhirtrial.packages import install, load, locate
from fhirtrial.validate import modelproof
from fhirtrial.validate.modelproof import PRIMITIVES, ModelProof
from validate_support import R4_EXAMPLES, require_tarball


def _aimed(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """Mutations at what the proof checks itself (dates, codes, urls, twins, choices …)."""
    out = []
    study = next(e["resource"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "ResearchStudy")
    index = bundle["entry"].index(next(e for e in bundle["entry"] if e["resource"] is study))

    def mutant(fn) -> None:  # type: ignore[no-untyped-def]
        m = copy.deepcopy(bundle)
        fn(m["entry"][index]["resource"], m)
        out.append(m)

    for status in ("active ", "act  ive", "", " ", "ä", 3, None, ["active"]):
        mutant(lambda r, _m, s=status: r.__setitem__("status", s))
    for date in ("2023-02-29", "2024-02-29", "2023-13", "2023-00", "0000", "2023-1-01",
                 "2023-01-01T10:00:00", "2023-01-01T10:00:00Z", "2023-01-01T24:00:00Z",
                 "2023-06-30T23:59:60Z", "2023-01-01T10:00:00.1234567+01:00", 2023):
        mutant(lambda r, _m, d=date: r.setdefault("period", {}).__setitem__("start", d))
    for title in ("", " ", "\x0b", "\ud800", "ok\u2028", 1, True, {"a": 1}):
        mutant(lambda r, _m, t=title: r.__setitem__("title", t))
    for url in ("http://a.com", "http://1.2.3.999", "https://xn--zz.com/", "http://a b.com",
                "ftp://a.com", "mailto:x@y.z", "/Patient/1", "http://a.com:99999", ""):
        mutant(lambda r, _m, u=url: r.setdefault("relatedArtifact", []).append(
            {"type": "citation", "url": u}))
    mutant(lambda r, _m: r.__setitem__("_title", {"extension": [
        {"url": "http://x", "valueString": "y"}]}))
    mutant(lambda r, _m: r.__setitem__("_title", {}))
    mutant(lambda r, _m: r.__setitem__("_status", {"id": "a"}))
    mutant(lambda r, _m: r.__setitem__("_keyword", [{"id": "a"}]))
    mutant(lambda r, _m: r.__setitem__("fhir_comments", ["x"]))
    mutant(lambda r, _m: r.setdefault("extension", []).append(
        {"url": "http://x", "valueString": "a", "valueCode": "b"}))
    mutant(lambda r, _m: r.setdefault("extension", []).append({"url": "http://x"}))
    mutant(lambda r, _m: r.setdefault("extension", []).append(
        {"url": "http://x", "valueTime": "10:00:00"}))
    mutant(lambda r, _m: r.setdefault("extension", []).append(
        {"url": "http://x", "valueDecimal": float("nan")}))
    mutant(lambda r, _m: r.setdefault("extension", []).append(
        {"url": "http://x", "valueInteger": 2**31}))
    mutant(lambda r, _m: r.setdefault("extension", []).append(
        {"url": "http://x", "valueUuid": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520"}))
    mutant(lambda r, _m: r.__setitem__("contained", [{"resourceType": "Resource", "id": "a"}]))
    mutant(lambda r, _m: r.__setitem__("contained", [{"resourceType": "Patient", "id": "a"}]))
    mutant(lambda r, _m: r.__setitem__("contained", [None]))
    mutant(lambda r, _m: r.__setitem__("identifier", []))
    mutant(lambda r, _m: r.__setitem__("identifier", [None]))
    mutant(lambda r, _m: r.__setitem__("id", "x" * 65))
    mutant(lambda r, _m: r.__setitem__("meta", {"resourceType": "Meta"}))
    mutant(lambda r, m: m.__setitem__("type", "not-a-type"))
    mutant(lambda r, m: m["entry"][0].__setitem__("resource", {"resourceType": "Nope"}))
    mutant(lambda r, m: m["entry"][0].pop("resource"))
    return out


def _cases() -> list[dict[str, Any]]:
    from fhirtrial.convert import convert_study
    from fhirtrial.sources import read_inputs
    from test_validate_fast import _r4_cases, _records

    cases = [case for _, case in _r4_cases()]
    for path in _records(2):
        for rec in read_inputs([path]):
            if rec.study is not None:
                cases += _aimed(convert_study(rec.study, fhir_version="R4").bundle)
    return cases


def test_model_proof_skips_the_models_without_losing_a_finding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from fhirtrial.validate import Validator
    from fhirtrial.validate import validator as validator_module

    install(str(require_tarball(R4_EXAMPLES)), tmp_path)
    folder = locate("hl7.fhir.r4.examples", "4.0.1", tmp_path)
    assert folder is not None
    cases = _cases()
    asked = []
    real_check = validator_module.check_model
    monkeypatch.setattr(validator_module, "check_model",
                        lambda *a: asked.append(1) or real_check(*a))
    fast = Validator("R4", load(folder))
    assert fast.model_proof is not None
    with_proof = [fast.findings(case) for case in cases]
    asked_with_proof = len(asked)
    monkeypatch.setattr(ModelProof, "proves", lambda self, *a: False)
    slow = Validator("R4", load(folder))
    differ = [(i, slow.findings(case), with_proof[i]) for i, case in enumerate(cases)]
    assert [d for d in differ if d[1] != d[2]] == []
    skipped = len(cases) - asked_with_proof
    assert skipped >= 40, (skipped, asked_with_proof)  # the proof saved work …
    assert asked_with_proof >= 200, (skipped, asked_with_proof)  # … and was often declined
    assert sum(1 for fs in with_proof if any(f.severity == "error" for f in fs)) >= 200


EDGES: dict[str, list[Any]] = {
    "boolean": [True, False, 0, 1, "true", None],
    "integer": [0, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 1.0, True, "1"],
    "unsignedInt": [0, -1, 1, 2**31, True],
    "positiveInt": [0, 1, 2**31 - 1, 2**31, True],
    "decimal": [0, 1.5, -0.0, 1e-07, 1e300, 10**30, float("inf"), float("nan"), True, "1.0"],
    "string": ["a", " a ", "", " ", "\t\n", "\x0b", "\x1c", "\u00a0", "\ud800", "é", 1],
    "code": ["a", "a b", "a  b", " a", "a ", "a\tb", "é", "", 1],
    "id": ["a", "a.b-C9", "a_b", "x" * 64, "x" * 65, "", "a b"],
    "uri": ["http://x", "urn:uuid:1", "a b", "", "é"],
    "canonical": ["http://x|1.0", " ", ""],
    "url": ["http://a.com", "https://a.b.c/x?y=1#z", "http://1.2.3.999", "http://a.com:65536",
            "http://a.com:9999", "http://xn--zz.com", "https://a-.com", "http://a_b.com",
            "http://localhost/x y", "/Patient/1", "mailto:x@y.z"],
    "oid": ["urn:oid:1.2.3", "urn:oid:3.1", "urn:oid:1.02", "1.2"],
    "date": ["2023", "2023-02", "2023-02-28", "2023-02-29", "2024-02-29", "2023-13", "0000",
             "0001-01-01", "2023-1", "2023-01-01T00:00:00Z"],
    "dateTime": ["2023", "2023-02-29", "2023-01-01T10:00:00Z", "2023-01-01T10:00:00",
                 "2023-01-01T10:00:00.123456+14:00", "2023-01-01T10:00:00.1234567Z",
                 "2023-01-01T10:00:60Z", "2023-02-30T10:00:00Z", "2023-01-01T10:00Z"],
    "instant": ["2023-01-01T10:00:00Z", "2023-01-01", "2023-01-01T10:00:00+15:00",
                "2023-12-31T23:59:59.999999-13:59"],
    "markdown": ["# x", "", "\n"],
    "xhtml": ['<div xmlns="http://www.w3.org/1999/xhtml">x</div>', ""],
}


@pytest.mark.parametrize("tcode", sorted(PRIMITIVES))
def test_a_primitive_the_proof_accepts_the_models_accept(tcode: str):
    """Each value a primitive check takes, the R4B model of an element of that type takes
    (through Extension.value[x], or the element that has the type)."""
    import pydantic
    from fhir.resources.R4B import get_fhir_model_class

    where = {"xhtml": ("Narrative", "div", {"status": "generated"}),
             "markdown": ("Annotation", "text", {}),
             "id": ("Resource", "id", {})}
    taken = 0
    for value in EDGES[tcode]:
        if not PRIMITIVES[tcode](value):
            continue
        taken += 1
        if tcode in where:
            cls_name, key, rest = where[tcode]
            cls, data = get_fhir_model_class(cls_name), {**rest, key: value}
        else:
            name = "value" + tcode[0].upper() + tcode[1:]
            cls, data = get_fhir_model_class("Extension"), {"url": "http://x", name: value}
        try:
            cls.model_validate(data)
        except pydantic.ValidationError as exc:
            pytest.fail(f"{tcode} {value!r} proved, the models reject it: {exc}")
    assert taken >= 1


def test_the_shipped_tables_are_the_installed_models():
    """The tables load (versions match the installed fhir.resources and fhir.core) and the
    trial types' tables are what the generator gives for the installed models."""
    import importlib

    from fhir.resources.R4B import get_fhir_model_class

    from fhirtrial.validate.models import _field_type, _unwrap

    proof = ModelProof.load()
    assert proof is not None, "regenerate: python -m fhirtrial.validate.modelproof"
    shipped = json.loads(Path(modelproof.__file__).with_name(modelproof.TABLE).read_text())
    for tname in ("ResearchStudy", "Bundle", "Group", "Organization", "Location",
                  "PlanDefinition", "Extension", "CodeableConcept", "Reference", "Narrative"):
        cls = get_fhir_model_class(tname)
        info: dict[str, Any] = {"children": {}, "groups": {}}
        modelproof._fields(cls, tname, info, {cls: tname}, _unwrap, _field_type)
        assert info["children"] == shipped["types"][tname]["children"], tname
        assert info["groups"] == shipped["types"][tname]["groups"], tname
    assert importlib.import_module("fhirtrial.validate.modelproof").DISTRIBUTIONS


def test_other_model_versions_turn_the_proof_off(monkeypatch: pytest.MonkeyPatch):
    from importlib import metadata

    for dist in modelproof.DISTRIBUTIONS:  # the quick look-up agrees with importlib.metadata
        assert modelproof.installed_version(dist) == metadata.version(dist)
    monkeypatch.setattr(modelproof, "installed_version", lambda dist: "0.0.0")
    assert ModelProof.load() is None
