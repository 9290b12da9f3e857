"""The layered validator against the official FHIR packages: no false alarms on the R5
examples, every mutation of a valid Bundle caught with the right issue type and expression,
the CLI's outputs and exit codes, and the package cache installer."""

from __future__ import annotations

import copy
import json
import tarfile
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import SHARED_V2, SHARED_V2_PARTIAL, SHARED_XML, needs_shared, shared_files
from fhirtrial.cli import main
from fhirtrial.packages import PackageError, install, locate
from fhirtrial.validate import Validator, get_validator, has_errors, validate_findings
from validate_support import (
    R4_EXAMPLES,
    R5_CORE,
    R5_EXAMPLES,
    example_names,
    read_members,
    require_tarball,
)


@pytest.fixture(scope="session")
def fhir_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary FHIR package cache holding the R5 core, installed by our own CLI."""
    tgz = require_tarball(R5_CORE)
    cache = tmp_path_factory.mktemp("fhir-packages")
    result = CliRunner().invoke(main, ["packages", "install", str(tgz), "--cache", str(cache)])
    assert result.exit_code == 0, result.output
    return cache


@pytest.fixture(scope="session")
def r5_package(fhir_cache: Path) -> Path:
    folder = locate("hl7.fhir.r5.core", "5.0.0", fhir_cache)
    assert folder is not None
    return folder


@pytest.fixture(scope="session")
def r5(r5_package: Path) -> Validator:
    return get_validator("R5", r5_package)


@pytest.fixture(scope="session")
def r4(fhir_cache: Path) -> Validator:
    """R4 from the R4 examples package (the npm hl7.fhir.r4.core is an empty placeholder)."""
    folder = install(str(require_tarball(R4_EXAMPLES)), fhir_cache)
    return get_validator("R4", folder)


def notable(findings: list[Any]) -> list[Any]:
    """Warnings and errors: information-level advice (dom-6 narrative) left out."""
    return [f for f in findings if f.severity != "information"]


def errors_of(findings: list[Any]) -> list[str]:
    return [f"{f.severity} {f.code} {f.location}: {f.message}" for f in findings
            if f.severity in ("error", "fatal")]


# -- no false alarms --------------------------------------------------------------------------
R5_EXAMPLE_NAMES = example_names(R5_EXAMPLES)


def test_fhir_packages_are_set_up() -> None:
    """Fails loudly (rather than silently collecting nothing) when the set-up was not run."""
    require_tarball(R5_CORE)
    require_tarball(R5_EXAMPLES)
    require_tarball(R4_EXAMPLES)
    assert len(R5_EXAMPLE_NAMES) >= 100


@pytest.mark.parametrize("name", R5_EXAMPLE_NAMES, ids=[n.split("/")[-1] for n in R5_EXAMPLE_NAMES])
def test_official_r5_example_has_zero_errors(name: str, r5: Validator) -> None:
    resource = read_members(R5_EXAMPLES, [name])[name]
    assert errors_of(r5.findings(resource)) == []


# -- the project's own output ----------------------------------------------------------------
SHARED_RECORDS = [*shared_files(SHARED_V2, "*.json"), *shared_files(SHARED_V2_PARTIAL, "*.json"),
                  *shared_files(SHARED_XML, "*.xml")]


@needs_shared
@pytest.mark.parametrize("path", SHARED_RECORDS, ids=[p.name for p in SHARED_RECORDS])
def test_every_converted_shared_record_validates_with_zero_errors(path: Path, r5: Validator,
                                                                  r4: Validator) -> None:
    from fhirtrial.convert import convert_study
    from fhirtrial.sources import read_inputs

    studies = [rec.study for rec in read_inputs([path]) if rec.study is not None]
    assert studies
    for study in studies:
        assert errors_of(r5.findings(convert_study(study).bundle)) == []
        assert errors_of(r5.findings(
            convert_study(study, bundle_type="transaction").bundle)) == []
        assert errors_of(r4.findings(convert_study(study, fhir_version="R4").bundle)) == []


# -- mutation corpus --------------------------------------------------------------------------
BASE_TYPES = ("ResearchStudy", "PlanDefinition", "EvidenceVariable", "Group", "Location",
              "Organization")


def _urn(key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, key)}"


@pytest.fixture(scope="session")
def base_bundle() -> dict[str, Any]:
    """A transaction of official R5 examples of the trial-related types (PUT, urn:uuid): the
    first three of each type in name order, which keeps the corpus a few hundred Bundles."""
    tgz = require_tarball(R5_EXAMPLES)
    names = [n for t in BASE_TYPES for n in example_names(tgz, (t,))[:3]]
    entries = []
    for name, res in read_members(tgz, names).items():
        entries.append({"fullUrl": _urn(name), "resource": res,
                        "request": {"method": "PUT",
                                    "url": f"{res['resourceType']}/{res['id']}"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _references(value: Any, expr: str) -> list[str]:
    """Expressions of the plain (non-choice) Reference.reference values in a resource."""
    out = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "contained":
                continue
            if key == "reference" and isinstance(item, str) and not item.startswith("#"):
                out.append(expr)
            elif not key.endswith("Reference"):
                items = item if isinstance(item, list) else [item]
                for i, x in enumerate(items):
                    out.extend(_references(x, f"{expr}.{key}[{i}]" if isinstance(item, list)
                                           else f"{expr}.{key}"))
    return out


def _set(res: dict[str, Any], expr_tail: str, value: Any) -> None:
    """Set the value at a simple ``a.b[0].c`` path inside a resource."""
    cur: Any = res
    parts = expr_tail.split(".")
    for part in parts[:-1]:
        name, _, idx = part.partition("[")
        cur = cur[name] if not idx else cur[name][int(idx[:-1])]
    cur[parts[-1]] = value


def mutations(bundle: dict[str, Any]) -> list[tuple[str, dict[str, Any], str, str]]:
    """(kind, mutated bundle, expected issue type, expected expression) for every mutation.

    Each expected value is read off the input and the spec: the element mutated and the
    issue type the spec's rule violated implies (issue-type ValueSet).
    """
    out = []
    reqd_status = {"ResearchStudy", "PlanDefinition", "EvidenceVariable", "Location"}
    for i, entry in enumerate(bundle["entry"]):
        res = entry["resource"]
        rt = res["resourceType"]
        at = f"Bundle.entry[{i}].resource"

        def mutated(fn: Any, i: int = i) -> dict[str, Any]:
            b = copy.deepcopy(bundle)
            fn(b["entry"][i]["resource"], b)
            return b

        out.append(("unknown element", mutated(lambda r, b: r.__setitem__("trialPhaseX", "1")),
                    "structure", f"{at}.trialPhaseX"))
        strings = [k for k, v in res.items() if isinstance(v, str)
                   and k not in ("resourceType", "id", "status", "language")]
        if strings:
            k = strings[0]
            out.append(("wrong type", mutated(lambda r, b, k=k: r.__setitem__(k, 42)),
                        "value", f"{at}.{k}"))
        if "status" in res and rt in reqd_status:
            out.append(("cardinality breach", mutated(
                lambda r, b: r.__setitem__("status", [r["status"]])), "structure",
                f"{at}.status"))
            if rt != "Location":  # Location.status is 0..1; the others' are 1..1
                out.append(("cardinality breach", mutated(lambda r, b: r.pop("status")),
                            "required", f"{at}.status"))
            out.append(("bad code in required binding", mutated(
                lambda r, b: r.__setitem__("status", "recruiting-ish")), "code-invalid",
                f"{at}.status"))
        if rt == "Group":  # Group.membership is 1..1
            out.append(("cardinality breach", mutated(lambda r, b: r.pop("membership")),
                        "required", f"{at}.membership"))
        out.append(("bad date format", mutated(
            lambda r, b: r.setdefault("meta", {}).__setitem__("lastUpdated", "2024-13-01")),
            "value", f"{at}.meta.lastUpdated"))
        out.append(("bad id format", mutated(lambda r, b: r.__setitem__("id", "NCT 0001!")),
                    "value", f"{at}.id"))
        out.append(("bad uri format", mutated(
            lambda r, b: r.__setitem__("implicitRules", "http://example.org/has space")),
            "value", f"{at}.implicitRules"))
        out.append(("empty element", mutated(lambda r, b: r.__setitem__("meta", {})),
                    "invariant", f"{at}.meta"))
        if i > 0:
            out.append(("duplicate fullUrl", mutated(
                lambda r, b, i=i: b["entry"][i].__setitem__("fullUrl", b["entry"][0]["fullUrl"])),
                "duplicate", f"Bundle.entry[{i}].fullUrl"))
        refs = _references({k: v for k, v in res.items()}, at)
        if refs:
            ref_expr = refs[0]
            tail = ref_expr[len(at) + 1:] + ".reference"
            out.append(("dangling reference", mutated(
                lambda r, b, t=tail: _set(r, t, _urn("nowhere"))), "not-found",
                f"{ref_expr}.reference"))
        out.append(("missing request in transaction", mutated(
            lambda r, b, i=i: b["entry"][i].pop("request")), "required",
            f"Bundle.entry[{i}].request"))
    return out


def test_base_bundle_of_official_examples_is_clean(base_bundle: dict[str, Any],
                                                   r5: Validator) -> None:
    assert len(base_bundle["entry"]) == 16
    assert errors_of(r5.findings(base_bundle)) == []


def test_every_mutation_is_caught_with_type_and_expression(base_bundle: dict[str, Any],
                                                           r5: Validator) -> None:
    corpus = mutations(base_bundle)
    tried: Counter[str] = Counter()
    caught: Counter[str] = Counter()
    missed = []
    for kind, bundle, code, expr in corpus:
        tried[kind] += 1
        findings = r5.findings(bundle)
        hit = [f for f in findings if f.code == code and f.location == expr
               and f.severity in ("error", "fatal")]
        if hit:
            caught[kind] += 1
        else:
            missed.append((kind, code, expr, [(f.code, f.location) for f in findings
                                              if f.severity == "error"][:4]))
    print("\nmutation detection rate per kind:")
    for kind in sorted(tried):
        print(f"  {kind:32} {caught[kind]:4}/{tried[kind]:<4} "
              f"{100 * caught[kind] / tried[kind]:.1f}%")
    assert len(tried) == 11
    for m in missed:
        print("MISSED", m)
    assert missed == []


def test_dangling_relative_reference_in_a_collection_is_a_warning(r5: Validator) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": _urn("g"), "resource": {"resourceType": "Group", "id": "g",
                                            "type": "person", "membership": "definitional",
                                            "managingEntity": {"reference": "Organization/x"}}}]}
    findings = r5.findings(bundle)
    assert [(f.severity, f.code, f.location) for f in findings if f.code == "not-found"] == [
        ("warning", "not-found", "Bundle.entry[0].resource.managingEntity.reference")]


def test_reference_to_a_type_the_element_does_not_allow_is_an_error(r5: Validator) -> None:
    # Group.managingEntity allows Organization, RelatedPerson, Practitioner, PractitionerRole
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": _urn("g"), "resource": {"resourceType": "Group", "id": "g",
                                            "type": "person", "membership": "definitional",
                                            "managingEntity": {"reference": _urn("l")}}},
        {"fullUrl": _urn("l"), "resource": {"resourceType": "Location", "id": "l",
                                            "name": "Ward 1"}}]}
    findings = [f for f in r5.findings(bundle) if f.severity == "error"]
    assert [(f.code, f.location) for f in findings] == [
        ("structure", "Bundle.entry[0].resource.managingEntity.reference")]
    assert "Location" in findings[0].message


def test_extensible_binding_miss_is_a_warning_not_an_error(r5: Validator) -> None:
    study = {"resourceType": "ResearchStudy", "status": "active", "progressStatus": [
        {"state": {"coding": [{"system": "http://hl7.org/fhir/research-study-status",
                               "code": "recruting"}]}}]}
    findings = notable(r5.findings(study))
    assert [(f.severity, f.code, f.location) for f in findings] == [
        ("warning", "code-invalid", "ResearchStudy.progressStatus[0].state.coding[0]")]


def test_invariant_failure_names_its_constraint(r5: Validator) -> None:
    # ext-1: "Must have either extensions or value[x], not both"
    study = {"resourceType": "ResearchStudy", "status": "active", "extension": [
        {"url": "http://example.org/x", "valueString": "a",
         "extension": [{"url": "y", "valueString": "b"}]}]}
    findings = notable(r5.findings(study))
    assert [(f.code, f.location) for f in findings] == [
        ("invariant", "ResearchStudy.extension[0]")]
    assert findings[0].message.startswith("Constraint ext-1 failed")


def test_malformed_json_is_a_fatal_structure_issue(r5: Validator) -> None:
    findings = r5.findings(b'{"resourceType": "Group",')
    assert [(f.severity, f.code) for f in findings] == [("fatal", "structure")]
    assert "line 1" in findings[0].message


def test_object_without_resource_type_is_rejected(r5: Validator) -> None:
    findings = r5.findings({"id": "x"})
    assert [(f.severity, f.code, f.location) for f in findings] == [
        ("error", "structure", "$this")]


def test_findings_are_deterministic(base_bundle: dict[str, Any], r5: Validator) -> None:
    _, bundle, _, _ = mutations(base_bundle)[0]
    assert r5.findings(copy.deepcopy(bundle)) == r5.findings(copy.deepcopy(bundle))


def test_validate_returns_operation_outcome_and_is_callable_from_top_level(
        r5_package: Path) -> None:
    import fhirtrial

    outcome = fhirtrial.validate(BAD, package=r5_package)
    assert outcome["resourceType"] == "OperationOutcome"
    assert [(i["severity"], i["code"], i["expression"]) for i in outcome["issue"]] == [
        ("error", "code-invalid", ["Group.type"])]


def test_without_core_package_structure_and_own_tables_still_catch(tmp_path: Path) -> None:
    v = Validator("R5", None)
    findings = v.findings({"resourceType": "ResearchStudy", "status": "recruiting",
                           "phaseX": 1})
    assert sorted((f.code, f.location) for f in findings) == [
        ("code-invalid", "ResearchStudy.status"), ("structure", "ResearchStudy.phaseX")]
    assert set(v.unavailable) == {"schema", "invariants", "terminology"}


def test_own_binding_table_matches_the_core_package(r5_package: Path) -> None:
    from importlib import resources

    from fhirtrial.packages import load
    from fhirtrial.validate.terminology import build_fallback_table

    shipped = json.loads(resources.files("fhirtrial.validate")
                         .joinpath("required_bindings_r5.json").read_text("utf-8"))
    assert build_fallback_table(load(r5_package), "R5") == shipped
    assert shipped["bindings"]["ResearchStudy.status"][1] == \
        "http://hl7.org/fhir/ValueSet/publication-status"


def test_has_errors_respects_threshold(r5: Validator) -> None:
    warn_only = notable(r5.findings({"resourceType": "ResearchStudy", "status": "active",
                             "progressStatus": [{"state": {"coding": [{
                                 "system": "http://hl7.org/fhir/research-study-status",
                                 "code": "nope"}]}}]}))
    assert not has_errors(warn_only, "error")
    assert has_errors(warn_only, "warning")


# -- CLI --------------------------------------------------------------------------------------
NARRATIVE = {"status": "generated",
             "div": '<div xmlns="http://www.w3.org/1999/xhtml">A group</div>'}
GOOD = {"resourceType": "Group", "id": "g1", "text": NARRATIVE, "type": "person",
        "membership": "definitional"}
BAD = {"resourceType": "Group", "id": "g2", "text": NARRATIVE, "type": "persn",
       "membership": "definitional"}


def _run(args: list[str], package: Path, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, ["validate", "--package", str(package), *args],
                              input=stdin)


def test_cli_clean_file_exits_zero(tmp_path: Path, r5_package: Path) -> None:
    f = tmp_path / "good.json"
    f.write_text(json.dumps(GOOD))
    result = _run([str(f)], r5_package)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""


def test_cli_text_lines_name_file_location_severity(tmp_path: Path, r5_package: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(BAD))
    result = _run([str(f)], r5_package)
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 1
    line = result.stdout.splitlines()[0]
    assert line.startswith(f"{f}: Group.type: error: [code-invalid] The value 'persn'")


def test_cli_json_for_many_files_is_a_bundle_of_outcomes(tmp_path: Path,
                                                         r5_package: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(GOOD))
    (tmp_path / "b.json").write_text(json.dumps(BAD))
    result = _run([str(tmp_path), "--format", "json"], r5_package)
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["resourceType"] == "Bundle"
    sources = [e["resource"]["extension"][0]["valueString"] for e in out["entry"]]
    assert sources == [str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    assert out["entry"][0]["resource"]["issue"][0]["code"] == "informational"
    assert out["entry"][1]["resource"]["issue"][0]["expression"] == ["Group.type"]


def test_cli_ndjson_is_validated_line_by_line(tmp_path: Path, r5_package: Path) -> None:
    f = tmp_path / "groups.ndjson"
    f.write_text(json.dumps(GOOD) + "\n\n" + json.dumps(BAD) + "\n")
    result = _run([str(f)], r5_package)
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{f}:3: Group.type: error:")
    assert "2 inputs validated" in result.stderr


def test_cli_stdin_and_fail_on_warning(r5_package: Path) -> None:
    study = {"resourceType": "ResearchStudy", "status": "active", "progressStatus": [
        {"state": {"coding": [{"system": "http://hl7.org/fhir/research-study-status",
                               "code": "recruting"}]}}]}
    assert _run(["-"], r5_package, json.dumps(study)).exit_code == 0
    assert _run(["-", "--fail-on", "warning"], r5_package, json.dumps(study)).exit_code == 1


def test_cli_usage_errors_exit_two(tmp_path: Path, r5_package: Path) -> None:
    assert _run([str(tmp_path / "missing.json")], r5_package).exit_code == 2
    assert _run(["-", "--fail-on", "fatal"], r5_package, "{}").exit_code == 2
    assert CliRunner().invoke(main, ["validate"]).exit_code == 2


def test_cli_malformed_json_is_reported_not_a_traceback(tmp_path: Path,
                                                        r5_package: Path) -> None:
    f = tmp_path / "broken.json"
    f.write_text('{"resourceType": ')
    result = _run([str(f)], r5_package)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{f}: -: fatal: [structure] Not well-formed JSON" in result.stdout


def _validate_with_package(package: Path, tmp_path: Path) -> Any:
    f = tmp_path / "patient.json"
    f.write_text('{"resourceType": "Patient", "id": "p"}')
    return CliRunner().invoke(main, ["validate", "--package", str(package), str(f)])


def test_cli_package_folder_that_is_a_cache_says_so_in_one_line(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "hl7.fhir.r5.core#5.0.0" / "package").mkdir(parents=True)
    (cache / "hl7.fhir.r5.core#5.0.0" / "package" / "package.json").write_text(
        '{"name": "hl7.fhir.r5.core", "version": "5.0.0"}')
    result = _validate_with_package(cache, tmp_path)
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: {cache} is not a FHIR package folder")
    assert "hl7.fhir.r5.core#5.0.0" in line
    assert "FHIRTRIAL_FHIR_PACKAGES" in line


def test_cli_damaged_package_is_one_line_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "package").mkdir(parents=True)
    (tmp_path / "pkg" / "package" / "package.json").write_text('{"name": ')
    result = _validate_with_package(tmp_path / "pkg", tmp_path)
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'pkg' / 'package' / 'package.json'} is not "
                           "readable JSON")


# -- package cache ----------------------------------------------------------------------------
def test_install_rejects_a_tarball_that_is_not_a_fhir_package(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tgz"
    with tarfile.open(bogus, "w:gz") as tar:
        readme = tmp_path / "README"
        readme.write_text("not a package")
        tar.add(readme, arcname="package/README")
    cache = tmp_path / "cache"
    with pytest.raises(PackageError, match=r"no package/package\.json"):
        install(str(bogus), cache)
    assert not cache.exists() or not any(p for p in cache.iterdir()
                                         if not p.name.startswith("."))


def test_install_cli_reports_bad_source_with_exit_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["packages", "install", "not-a-package",
                                       "--cache", str(tmp_path)])
    assert result.exit_code == 1
    assert "neither a .tgz file nor NAME@VERSION" in result.stderr


def test_installed_core_is_found_through_the_env_override(fhir_cache: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FHIRTRIAL_FHIR_PACKAGES", str(fhir_cache))
    findings = notable(validate_findings(BAD))
    assert [(f.code, f.location) for f in findings] == [("code-invalid", "Group.type")]
