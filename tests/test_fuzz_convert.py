"""Fuzzing the readers and the R5 converter with registry records mutated from the real ones.

Every mutated input either converts to a Bundle that validates (fhir.resources R5 model, every
reference resolving, no string over FHIR's 1 MB limit, writable as JSON) or is refused with a
FhirtrialError whose message names the input. Anything else — a KeyError, a RecursionError,
an OverflowError, an invalid Bundle — is a failure. The same inputs through
``fhirtrial convert`` exit 0 or 1 and never print a traceback.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from fhir.resources.bundle import Bundle
from hypothesis import given
from hypothesis import strategies as st

from conftest import SHARED_V2, SHARED_V2_PARTIAL, SHARED_XML, needs_shared, shared_files
from fhirtrial.cli import main
from fhirtrial.convert import convert_study
from fhirtrial.errors import FhirtrialError
from fhirtrial.sources import parse_bytes
from fuzzkit import (
    bundle_problems,
    counted,
    examples,
    mutate_json,
    mutate_xml,
    note,
    serialise_json,
)

pytestmark = needs_shared

V2 = shared_files(SHARED_V2, "*.json") + shared_files(SHARED_V2_PARTIAL, "*.json")
XML = shared_files(SHARED_XML, "*.xml")
# smallest first: hypothesis shrinks towards the first element
V2_DOCS = sorted((json.loads(p.read_bytes()) for p in V2), key=lambda d: len(json.dumps(d)))
XML_TEXTS = sorted((p.read_text(encoding="utf-8") for p in XML), key=len)
V2_KEYS = ("protocolSection", "identificationModule", "nctId", "statusModule", "overallStatus",
           "designModule", "phases", "armsInterventionsModule", "armGroups", "interventions",
           "eligibilityModule", "eligibilityCriteria", "contactsLocationsModule", "locations",
           "geoPoint", "lat", "lon", "outcomesModule", "primaryOutcomes", "referencesModule",
           "conditionsModule", "conditionBrowseModule", "meshes", "studies", "derivedSection")

v2_inputs = st.sampled_from(V2_DOCS).flatmap(
    lambda d: mutate_json(d, keys=V2_KEYS)).flatmap(serialise_json) if V2_DOCS else st.nothing()
xml_inputs = (st.sampled_from(XML_TEXTS).flatmap(mutate_xml) if XML_TEXTS else st.nothing())


def convert_or_refuse(data: bytes, name: str) -> list[str]:
    """Outcomes ("converted"/"refused") of one input; asserts the contract on each record."""
    outcomes = []
    refusal: FhirtrialError | None = None
    try:
        records = list(parse_bytes(data, name))
    except FhirtrialError as e:
        refusal, records = e, []
    if refusal is not None:
        assert name in refusal.message, f"error does not name the input: {refusal.message!r}"
        return ["refused"]
    assert records, "an input gave neither a record nor an error"
    for rec in records:
        if rec.study is None:
            assert isinstance(rec.error, FhirtrialError)
            assert name in rec.error.message, f"error does not name the input: {rec.error}"
            outcomes.append("refused")
            continue
        try:
            conv = convert_study(rec.study)
        except FhirtrialError as e:
            refusal = e
        if refusal is not None:
            named = name in refusal.message or rec.study.nct_id in refusal.message
            assert named, f"conversion error names neither input nor study: {refusal!r}"
            outcomes.append("refused")
            refusal = None
            continue
        Bundle.model_validate(conv.bundle)
        problems = bundle_problems(conv.bundle)
        assert not problems, problems[:5]
        outcomes.append("converted")
    return outcomes


@examples(bounded=500, full=5000)
@given(data=v2_inputs)
def test_mutated_v2_json_converts_or_is_refused_by_name(data: bytes) -> None:
    with counted("convert-v2-json"):
        for outcome in convert_or_refuse(data, "mutated-v2.json"):
            note("convert-v2-json", outcome)


@examples(bounded=300, full=3000)
@given(data=xml_inputs)
def test_mutated_legacy_xml_converts_or_is_refused_by_name(data: bytes) -> None:
    with counted("convert-xml"):
        for outcome in convert_or_refuse(data, "mutated-record.xml"):
            note("convert-xml", outcome)


@examples(bounded=60, full=600)
@given(data=st.one_of(v2_inputs, xml_inputs))
def test_cli_convert_exits_0_or_1_without_traceback(data: bytes) -> None:
    with counted("convert-cli"), tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "fuzzed-input.dat"
        src.write_bytes(data)
        out = Path(tmp) / "out"
        result = CliRunner().invoke(main, ["convert", str(src), "-o", str(out), "-j", "1",
                                           "-q"])
        # CliRunner stores an escaped exception instead of raising it: that is the crash
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            repr(result.exception)
        assert result.exit_code in (0, 1), result.output
        assert "Traceback" not in result.output
        written = sorted(out.glob("*.json")) if out.is_dir() else []
        note("convert-cli", f"exit {result.exit_code}")
        if result.exit_code == 1:
            assert "fuzzed-input.dat" in result.stderr
        else:
            assert written, "exit 0 but no Bundle written"
        for f in written:
            Bundle.model_validate_json(f.read_bytes())


@pytest.mark.parametrize("depth", [1_000, 100_000], ids=["1k", "100k"])
def test_deeply_nested_json_record_is_refused_by_name(depth: int) -> None:
    data = ('{"protocolSection": {"identificationModule": {"nctId": "NCT01234567"}, "x": '
            + "[" * depth + "]" * depth + "}}").encode()
    with counted("convert-v2-json"):
        outcomes = convert_or_refuse(data, "deep.json")
    assert outcomes in (["refused"], ["converted"])


# ---------------------------------------------------------------- what fuzzing found
SEED_V2 = SHARED_V2 / "NCT02440776.json"  # one site with a geoPoint, an enrollment count


def _record_with(edit) -> bytes:
    doc = json.loads(SEED_V2.read_bytes())
    edit(doc["protocolSection"])
    return json.dumps(doc, allow_nan=True).encode()


def _set_lat(value):
    def edit(ps):
        ps["contactsLocationsModule"]["locations"][0]["geoPoint"]["lat"] = value
    return edit


def _set_count(value):
    def edit(ps):
        ps["designModule"]["enrollmentInfo"]["count"] = value
    return edit


@pytest.mark.parametrize(("edit", "warned"), [
    (_set_lat(10 ** 400), "geoPoint.lat is not a number"),
    (_set_lat(float("nan")), "geoPoint.lat is not a number"),
    (_set_lat(float("inf")), "geoPoint.lat is not a number"),
    (_set_count(10 ** 12), "enrollmentInfo.count is not a count"),
    (_set_count("9" * 5000), "enrollmentInfo.count is not a count"),
    (_set_count("²"), "enrollmentInfo.count is not a count"),
], ids=["huge-int-lat", "nan-lat", "infinite-lat", "count-over-unsignedInt",
        "5000-digit-count", "superscript-count"])
def test_out_of_range_numbers_are_warned_and_left_out(edit, warned: str) -> None:
    [rec] = parse_bytes(_record_with(edit), "numbers.json")
    assert rec.study is not None
    assert any(warned in f.message for f in rec.study.findings)
    conv = convert_study(rec.study)
    Bundle.model_validate(conv.bundle)
    assert bundle_problems(conv.bundle) == []


def test_escaped_lone_surrogate_becomes_replacement_character_with_warning() -> None:
    def edit(ps):
        ps["identificationModule"]["briefTitle"] = "Pathway \ud83d registry"
    data = _record_with(edit)
    assert b"\\ud83d" in data
    [rec] = parse_bytes(data, "surrogate.json")
    assert rec.study is not None
    assert rec.study.brief_title == "Pathway \ufffd registry"
    assert any("lone surrogate" in f.message for f in rec.study.findings)
    Bundle.model_validate(convert_study(rec.study).bundle)


def test_title_over_fhir_string_limit_is_refused_naming_study_and_element() -> None:
    def edit(ps):
        ps["identificationModule"]["briefTitle"] = "x" * (1024 * 1024 + 1)
    [rec] = parse_bytes(_record_with(edit), "huge.json")
    assert rec.study is not None
    with pytest.raises(FhirtrialError, match=r"NCT02440776: Bundle\.entry\.resource\.[\w.]+ would "
                                             r"be a string of 1048577 characters"):
        convert_study(rec.study)


@pytest.mark.parametrize("count", ["²", "9" * 5000, "99999999999"],
                         ids=["superscript", "5000-digits", "over-unsignedInt"])
def test_xml_enrollment_that_is_no_count_is_warned_and_left_out(count: str) -> None:
    text = next(t for t in XML_TEXTS if "<enrollment" in t)
    start = text.index("<enrollment")
    end = text.index("</enrollment>", start)
    head = text[start:text.index(">", start) + 1]
    data = (text[:start] + head + count + text[end:]).encode()
    [rec] = parse_bytes(data, "enrollment.xml")
    assert rec.study is not None
    assert rec.study.enrollment is None
    assert any("is not a count" in f.message for f in rec.study.findings)
