"""Fuzzing the validator with every layer on (the R5 core package installed): a structurally
mutated resource or Bundle gets findings, never an exception — the server validates every write
with it, so a crash here is a 500 there. And with no package at all (a fresh install): FHIR made
invalid on purpose (wrong primitive types at any depth, forbidden narrative XHTML, dangling
urn:uuid references) is always an error, never "valid"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from conftest import FIXTURES, SHARED_V2, needs_shared, shared_files
from fhirtrial.cli import main
from fhirtrial.convert import convert_study
from fhirtrial.packages import locate
from fhirtrial.sources import read_inputs
from fhirtrial.validate import Validator, get_validator
from fuzzkit import (
    bad_narrative,
    counted,
    dangling_reference,
    examples,
    mutate_json,
    note,
    wrong_primitive,
)
from validate_support import R5_CORE, require_tarball

KEYS = ("id", "meta", "resourceType", "identifier", "system", "value", "status", "coding",
        "code", "reference", "extension", "url", "text", "div", "entry", "resource", "request",
        "method", "fullUrl", "type", "characteristic", "period", "start", "action")

BUNDLES: list[dict[str, Any]] = []
for _rec in read_inputs([str(p) for p in shared_files(SHARED_V2, "*.json")[:4]], fetch=None):
    if _rec.study is not None:
        BUNDLES.append(convert_study(_rec.study, bundle_type="transaction").bundle)


GOLDENS = [json.loads(p.read_text(encoding="utf-8"))
           for p in sorted((FIXTURES / "expected").glob("*.json"))]
BARE = {"R5": Validator("R5", None)}


def _errors(findings: list[Any]) -> list[Any]:
    return [f for f in findings if f.severity in ("error", "fatal")]


@examples(bounded=50, full=1200)
@given(data=st.data())
def test_wrong_primitive_type_anywhere_is_an_error_without_a_package(
        data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(GOLDENS), label="bundle")
    whole = data.draw(st.booleans(), label="whole bundle")
    target = base if whole else data.draw(
        st.sampled_from([e["resource"] for e in base["entry"]]), label="resource")
    mutated, path = data.draw(wrong_primitive(target), label="mutated")
    with counted("validate-wrong-type"):
        errors = _errors(BARE["R5"].findings(mutated))
        assert errors, f"no error for a wrong JSON type at {path}"
        note("validate-wrong-type", errors[0].code)


@examples(bounded=25, full=600)
@given(data=st.data())
def test_forbidden_narrative_is_an_error_without_a_package(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(GOLDENS), label="bundle")
    i = data.draw(st.integers(0, len(base["entry"]) - 1), label="entry")
    bundle = json.loads(json.dumps(base))
    bundle["entry"][i]["resource"] = data.draw(bad_narrative(bundle["entry"][i]["resource"]),
                                               label="resource")
    with counted("validate-bad-narrative"):
        where = f"Bundle.entry[{i}].resource.text.div"
        assert where in {f.location for f in _errors(BARE["R5"].findings(bundle))}


@examples(bounded=25, full=600)
@given(data=st.data())
def test_dangling_urn_uuid_is_an_error_without_a_package(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(GOLDENS), label="bundle")
    bundle, ref = data.draw(dangling_reference(base), label="bundle")
    with counted("validate-dangling-ref"):
        found = [f for f in _errors(BARE["R5"].findings(bundle)) if f.code == "not-found"]
        assert [f.message for f in found] == [
            f"Reference {ref} does not resolve (no entry has that fullUrl)"]


@pytest.fixture(scope="module")
def full_validator(tmp_path_factory: pytest.TempPathFactory) -> Validator:
    cache = tmp_path_factory.mktemp("fhir-packages")
    res = CliRunner().invoke(main, ["packages", "install", str(require_tarball(R5_CORE)),
                                    "--cache", str(cache)])
    assert res.exit_code == 0, res.output
    folder = locate("hl7.fhir.r5.core", "5.0.0", Path(cache))
    assert folder is not None
    validator = get_validator("R5", folder)
    assert not validator.unavailable, validator.unavailable
    return validator


@needs_shared
@examples(bounded=150, full=1500)
@given(data=st.data())
def test_mutated_fhir_gets_findings_never_an_exception(full_validator: Validator,
                                                       data: st.DataObject) -> None:
    whole = data.draw(st.booleans(), label="whole bundle")
    base = data.draw(st.sampled_from(BUNDLES), label="bundle")
    target = base if whole else data.draw(
        st.sampled_from([e["resource"] for e in base["entry"]]), label="resource")
    mutated = data.draw(mutate_json(target, keys=KEYS), label="mutated")
    with counted("validate-mutated"):
        findings = full_validator.findings(mutated)
        assert all(f.severity in ("fatal", "error", "warning", "information") for f in findings)
        analysed = not any(f.message.startswith("The resource is malformed in a way the "
                                                 "validator could not analyse") for f in findings)
        # a layer that could not analyse the input still says "error"; count how often, so
        # the summary shows what the layers do not foresee yet
        note("validate-mutated", ("errors" if any(f.severity == "error" for f in findings)
                                  else "clean") if analysed else "not analysed (error)")
