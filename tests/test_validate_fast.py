"""The validator's compiled fast paths give jsonschema's verdict.

The schema layer skips jsonschema for a resource the compiled check (validate/schemafast.py)
calls valid, so that check must never call valid what jsonschema rejects — and, to be worth
having, should call valid what jsonschema accepts. Both directions are compared here on the
official R5 examples and on mutations of them that break one schema rule each, at the root
and deep inside.
"""

from __future__ import annotations

import copy
import tarfile
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft6Validator

from fhirtrial.packages import install, load, locate
from fhirtrial.validate.schema import SchemaLayer
from fhirtrial.validate.schemafast import CompiledSchema, is_valid
from validate_support import R5_CORE, R5_EXAMPLES, read_members, require_tarball

TYPES = ("ResearchStudy", "PlanDefinition", "EvidenceVariable", "Group", "Location",
         "Organization", "Bundle", "Patient", "Observation", "Provenance", "Practitioner",
         "ActivityDefinition", "Device", "Questionnaire", "Condition", "Library")


@pytest.fixture(scope="module")
def defs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cache = tmp_path_factory.mktemp("pkgs")
    install(str(require_tarball(R5_CORE)), cache)
    folder = locate("hl7.fhir.r5.core", "5.0.0", cache)
    assert folder is not None
    schema = load(folder).json_schema
    assert schema is not None
    return SchemaLayer(schema)._defs


@pytest.fixture(scope="module")
def examples() -> list[dict[str, Any]]:
    tgz = require_tarball(R5_EXAMPLES)
    with tarfile.open(tgz, "r:gz") as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile()
                       and m.name.count("/") == 1 and m.name.endswith(".json"))
    picked: list[str] = []
    for t in TYPES:
        picked += [n for n in names if Path(n).name.split("-", 1)[0] == t][:6]
    return [r for r in read_members(tgz, picked).values()
            if isinstance(r, dict) and r.get("resourceType") in TYPES]


def _first_path(value: Any, want: type, path: tuple = ()) -> tuple | None:
    """The path of the deepest-first value of type ``want`` (not a resourceType)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "resourceType":
                continue
            found = _first_path(v, want, (*path, k))
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _first_path(v, want, (*path, i))
            if found:
                return found
    elif isinstance(value, want) and not isinstance(value, bool) and len(path) > 1:
        return path
    return None


def _set(doc: Any, path: tuple, value: Any) -> None:
    for p in path[:-1]:
        doc = doc[p]
    doc[path[-1]] = value


def mutations(res: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = [("as published", res)]

    def mutant(label: str, fn) -> None:  # type: ignore[no-untyped-def]
        m = copy.deepcopy(res)
        fn(m)
        out.append((label, m))

    mutant("unknown root element", lambda m: m.__setitem__("trialPhaseX", "1"))
    mutant("id breaks its pattern", lambda m: m.__setitem__("id", "bad id!"))
    mutant("meta.lastUpdated not an instant",
           lambda m: m.setdefault("meta", {}).__setitem__("lastUpdated", "2024-13-01"))
    mutant("wrong resourceType const", lambda m: m.__setitem__("language", 7))
    deep_str = _first_path(res, str)
    if deep_str:
        mutant("deep string becomes a number", lambda m: _set(m, deep_str, 12))
        mutant("deep string becomes a list", lambda m: _set(m, deep_str, ["x"]))
        mutant("deep string becomes null", lambda m: _set(m, deep_str, None))
        mutant("unknown element beside a deep string",
               lambda m: _set(m, (*deep_str[:-1], "zzUnknown"), "x")
               if isinstance(deep_str[-1], str) else None)
    deep_list = _first_path(res, list)
    if deep_list:
        mutant("array becomes an object", lambda m: _set(m, deep_list, {"a": 1}))
    deep_num = _first_path(res, int | float)
    if deep_num:
        mutant("number becomes a string", lambda m: _set(m, deep_num, "3"))
        mutant("number becomes true", lambda m: _set(m, deep_num, True))
    if "text" in res:
        mutant("narrative loses its required div",
               lambda m: m["text"].pop("div", None))
    return out


def test_compiled_schema_gives_jsonschemas_verdict(defs: dict[str, Any],
                                                   examples: list[dict[str, Any]]):
    fast = CompiledSchema(defs)
    checked = valid = invalid = undecided = 0
    disagreements = []
    for res in examples:
        rtype = res["resourceType"]
        slow = Draft6Validator({"$ref": f"#/definitions/{rtype}", "definitions": defs})
        for label, case in mutations(res):
            verdict = is_valid(fast, rtype, case)
            if verdict is None:
                undecided += 1
                continue
            expected = not any(True for _ in slow.iter_errors(case))
            checked += 1
            valid += expected
            invalid += not expected
            if verdict != expected:
                disagreements.append(f"{rtype}/{res.get('id')} {label}: compiled {verdict}, "
                                     f"jsonschema {expected}")
    assert disagreements == []
    assert undecided == 0  # every definition these types use compiles
    assert valid >= 50, (valid, invalid)  # both verdicts were exercised
    assert invalid >= 200, (valid, invalid)


def test_a_definition_using_an_unknown_keyword_is_left_to_jsonschema():
    defs = {"Thing": {"properties": {"n": {"$ref": "#/definitions/positive"}},
                      "additionalProperties": False},
            "positive": {"type": "number", "minimum": 1}}
    fast = CompiledSchema(defs)
    assert is_valid(fast, "Thing", {"m": 5}) is False  # decided before reaching "positive"
    assert is_valid(fast, "Thing", {"n": 5}) is None  # reached through a $ref: undecided
    assert is_valid(fast, "positive", 5) is None  # minimum is not compiled
    assert is_valid(CompiledSchema(defs), "positive", 5) is None
    assert is_valid(fast, "Nothing", {}) is None


def test_draft6_details_match(defs: dict[str, Any]):
    """$ref siblings ignored, 1.0 an integer, bool not a number, pattern searched."""
    small = {"R": {"$ref": "#/definitions/s", "type": "number"},
             "s": {"type": "string", "pattern": "b"},
             "i": {"type": "integer"}, "n": {"type": "number"}}
    fast = CompiledSchema(small)
    for name, value in [("R", "abc"), ("R", 3), ("i", 1.0), ("i", 1.5), ("i", True),
                        ("n", False), ("n", 2), ("s", "xbx"), ("s", "xx")]:
        expected = Draft6Validator({"$ref": f"#/definitions/{name}",
                                    "definitions": small}).is_valid(value)
        assert is_valid(fast, name, value) is expected, (name, value)


def _dicts(value: Any, into: list[dict[str, Any]]) -> None:
    if isinstance(value, dict):
        into.append(value)
        for v in value.values():
            _dicts(v, into)
    elif isinstance(value, list):
        for v in value:
            _dicts(v, into)


def _tricky() -> list[dict[str, Any]]:
    """Objects built to sit on the edge of each shortcut."""
    res = {"resourceType": "Organization", "name": "x"}
    return [
        {"type": "collection", "entry": [{"resource": res}, {"request": {"method": "PUT"}}]},
        {"type": "collection", "entry": [{"resource": res, "request": {"method": "PUT"}}]},
        {"type": "collection", "entry": [{"fullUrl": "", "resource": res}]},
        {"type": "collection", "entry": []}, {"type": "collection"},
        {"type": "document", "entry": [{"resource": res}]}, {"type": ["collection"]},
        {"type": "searchset", "total": 3, "entry": [{"search": {"mode": "match"}}]},
        {"type": "history", "entry": [{"request": {"method": "PATCH"}}]},
        {"fullUrl": "http://x/Patient/1/_history/2", "resource": res},
        {"fullUrl": "http://x/Patient/1", "resource": {}}, {"request": {}}, {},
        {"definitionReference": {"reference": "Group/1"}, "definitionId": "x"},
        {"definitionCanonical": ["a", "b"]}, {"definitionId": "x"},
        {"name": [{"value": "a", "display": True}, {"value": "b", "display": True}]},
        {"name": [{"value": "a", "display": "true"}]}, {"name": [{"value": "a"}, "b"]},
        {"name": "lowercase"}, {"name": "Upper"}, {"identifier": [], "name": ""},
        {"identifier": [{"value": "1"}]}, {"text": {"div": ""}}, {"text": {"status": "x"}},
        {"contained": [{"resourceType": "Patient", "meta": {"versionId": "1"},
                        "contained": [res]}]},
        {"issues": {"resourceType": "OperationOutcome"}, "type": "document"},
        {"member": [{"entity": {"reference": "Patient/1"}}], "actual": False},
        {"member": [{"entity": {"reference": "Patient/1"}}], "actual": True},
        {"member": [{"entity": {"reference": "Patient/1"}}]}, {"name": "Upper name"},
        {"name": "Upper_9"},
        # Timing.repeat (tim-*)
        {"frequency": 2, "period": 1, "periodUnit": "d"}, {"period": 1}, {"period": -1},
        {"period": "1", "periodUnit": "d"}, {"duration": 2, "durationUnit": "h"},
        {"duration": 2}, {"duration": -0.5, "durationUnit": "h"}, {"duration": True},
        {"periodMax": 2, "period": 1}, {"periodMax": 2}, {"durationMax": 3},
        {"durationMax": 3, "duration": 1}, {"countMax": 3}, {"countMax": 3, "count": 1},
        {"offset": 5, "when": ["C"]}, {"offset": 5, "when": ["MORN"]}, {"offset": 5},
        {"timeOfDay": ["10:00:00"], "when": ["MORN"]}, {"timeOfDay": ["10:00:00"]},
        {"when": ["MORN"]},
    ]


def test_invariant_shortcuts_never_hide_a_failure(examples: list[dict[str, Any]]):
    """Wherever a shortcut says a constraint holds, the FHIRPath engine agrees."""
    import fhirpathpy
    from fhirpathpy.engine.nodes import ResourceNode
    from fhirpathpy.models import models

    from fhirtrial.validate.invariants import FUNCTIONS
    from fhirtrial.validate.invfast import HOLDS

    pool: list[dict[str, Any]] = []
    for res in examples:
        for _, case in mutations(res):
            _dicts(case, pool)
    pool = pool[::7] + _tricky()  # every 7th object keeps the engine's share to seconds
    fired = dict.fromkeys(HOLDS, 0)
    deferred = dict.fromkeys(HOLDS, 0)
    wrong = []
    for expression, look in HOLDS.items():
        fn = fhirpathpy.compile(expression, models["r5"],
                                {"userInvocationTable": FUNCTIONS})
        for obj in pool:
            if not look(obj):
                deferred[expression] += 1
                continue
            fired[expression] += 1
            # ext-1's ``value`` is the Extension's value[x]: the engine resolves it from the type
            base = "Extension" if expression.startswith("extension.exists() != value") \
                else obj.get("resourceType", "")
            try:
                result = fn(ResourceNode.create_node(obj, base),
                            {"resource": obj, "rootResource": obj})
            except Exception:  # the engine cannot evaluate it here: nothing would be reported
                continue
            if result == [False]:
                wrong.append(f"{expression} holds by its shortcut, fails by FHIRPath: {obj}")
    assert wrong == []
    assert all(fired.values()), [e for e, n in fired.items() if not n]  # each shortcut used
    assert all(deferred.values()), [e for e, n in deferred.items() if not n]  # and declined


def _records(n: int) -> list[Path]:
    """The first ``n`` shared v2 records, or the project's seed record where ../shared is
    absent (a user's clone): converted Bundles carry what only Bundles exercise."""
    from conftest import FIXTURES, SHARED_V2, shared_files

    return shared_files(SHARED_V2, "*.json")[:n] or [FIXTURES / "seed" / "NCT06534528.json"]


def _r4_cases() -> list[tuple[str, dict[str, Any]]]:
    """The official R4 examples of the trial types with the mutations above, and the shared
    records converted to R4 (Bundles carrying the extensions the R4 writer adds)."""
    from validate_support import R4_EXAMPLES, example_names

    tgz = require_tarball(R4_EXAMPLES)
    cases = [(f"{name} {label}", case)
             for name, res in read_members(tgz, example_names(tgz, TYPES[:6])).items()
             for label, case in mutations(res)]
    from fhirtrial.convert import convert_study
    from fhirtrial.sources import read_inputs

    for path in _records(6):
        for rec in read_inputs([path]):
            if rec.study is not None:
                for kind in ("collection", "transaction"):
                    bundle = convert_study(rec.study, fhir_version="R4", bundle_type=kind).bundle
                    cases += [(f"{path.name} R4 {kind} {label}", case)
                              for label, case in mutations(bundle)[:4]]
    return cases


@pytest.mark.parametrize("version", ["R5", "R4"])
def test_invariant_shortcuts_leave_every_finding(version: str, examples: list[dict[str, Any]],
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The whole validator, with and without the shortcuts, on the mutation corpus (and R4
    Bundles converted from the shared records): the same findings, case by case. Each
    shortcut is evaluated where the validator meets it, with the engine's own base type (an
    Extension's ``value`` is its value[x] only there)."""
    from fhirtrial.validate import Validator, invfast
    from validate_support import R4_EXAMPLES

    tgz = require_tarball(R5_CORE if version == "R5" else R4_EXAMPLES)
    install(str(tgz), tmp_path)
    folder = locate(*(("hl7.fhir.r5.core", "5.0.0") if version == "R5"
                      else ("hl7.fhir.r4.examples", "4.0.1")), tmp_path)
    assert folder is not None
    cases = [(f"{r['resourceType']}/{r.get('id')} {label}", case)
             for r in examples for label, case in mutations(r)] if version == "R5" \
        else _r4_cases()
    fast = Validator(version, load(folder))
    fired: dict[str, int] = {}
    real = invfast.HOLDS

    class Counting(dict):  # type: ignore[type-arg]
        def get(self, key, default=None):  # type: ignore[no-untyped-def]
            look = real.get(key)
            if look is None:
                return default
            return lambda v: look(v) and fired.__setitem__(key, fired.get(key, 0) + 1) is None

    monkeypatch.setattr(invfast, "HOLDS", Counting())
    with_shortcuts = [fast.findings(case) for _, case in cases]
    monkeypatch.setattr(invfast, "HOLDS", {})
    slow = Validator(version, load(folder))
    differ = [label for (label, case), got in zip(cases, with_shortcuts, strict=True)
              if got != slow.findings(case)]
    assert differ == []
    used = ["extension.exists() != value.exists()"] + ([] if version == "R5" else [
        "fullUrl.contains('/_history/').not()", "entry.search.empty() or (type = 'searchset')",
        next(e for e in real if e.startswith("entry.all(request.exists()")),
        next(e for e in real if e.startswith("entry.all(response.exists()"))])
    assert [e for e in used if not fired.get(e)] == []  # the shortcuts were exercised
    assert any(f.code == "invariant" for fs in with_shortcuts for f in fs)  # and failures seen


def test_extension_shortcut_declines_what_breaks_ext1():
    from fhirtrial.validate.invfast import certainly_holds

    ext1 = "extension.exists() != value.exists()"
    assert certainly_holds(ext1, {"url": "u", "valueString": "x"})
    assert certainly_holds(ext1, {"url": "u", "valueBoolean": False})
    assert certainly_holds(ext1, {"url": "u", "extension": [{"url": "a", "valueCode": "c"}]})
    for broken in ({"url": "u"}, {"url": "u", "valueString": "x", "extension": [{"url": "a"}]},
                   {"url": "u", "valueString": ""}, {"url": "u", "extension": []},
                   {"url": "u", "valueString": "x", "valueCode": "y"},
                   {"url": "u", "_valueString": {"id": "1"}}):
        assert not certainly_holds(ext1, broken), broken


def test_schema_proof_skips_the_models_without_losing_a_finding(
        examples: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Where the compiled schema check proves a resource valid, the validator does not ask the
    fhir.resources models: over the R5 mutation corpus and R5 Bundles converted from the
    shared records (and mutated), every case has the same findings as with the models run."""
    from fhirtrial.convert import convert_study
    from fhirtrial.sources import read_inputs
    from fhirtrial.validate import Validator
    from fhirtrial.validate import validator as validator_module
    from fhirtrial.validate.schema import SchemaLayer

    install(str(require_tarball(R5_CORE)), tmp_path)
    folder = locate("hl7.fhir.r5.core", "5.0.0", tmp_path)
    assert folder is not None
    cases = [case for r in examples for _, case in mutations(r)]
    for path in _records(3):
        for rec in read_inputs([path]):
            if rec.study is not None:
                cases += [case for _, case in mutations(convert_study(rec.study).bundle)[:5]]
    models_asked = []
    real_check = validator_module.check_model
    monkeypatch.setattr(validator_module, "check_model",
                        lambda *a: models_asked.append(1) or real_check(*a))
    with_proof = [Validator("R5", load(folder)).findings(case) for case in cases]
    asked_with_proof = len(models_asked)
    monkeypatch.setattr(SchemaLayer, "proves_valid", lambda self, *a: False)
    slow = Validator("R5", load(folder))
    assert [i for i, case in enumerate(cases) if slow.findings(case) != with_proof[i]] == []
    skipped = len(cases) - asked_with_proof
    assert skipped >= 50, (skipped, asked_with_proof)  # the proof saved work …
    assert asked_with_proof >= 200, (skipped, asked_with_proof)  # … and was often declined
    assert sum(1 for fs in with_proof if any(f.severity == "error" for f in fs)) >= 200
