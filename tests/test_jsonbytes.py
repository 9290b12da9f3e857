"""The fast serialiser writes exactly the standard library's bytes.

Output bytes are part of fhirtrial's contract (goldens, push change detection, users' diffs),
so ``jsonbytes`` (orjson with fallbacks) is compared byte for byte with the serialiser it
replaced, ``json.dumps(ensure_ascii=False, indent=2)`` (and the compact form NDJSON uses), on
every shared record in every output form, and on the corners where orjson writes differently.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, SHARED_V2, SHARED_V2_PARTIAL, SHARED_XML, shared_files
from fhirtrial import jsonbytes
from fhirtrial.convert import convert_study, dumps
from fhirtrial.sources import parse_bytes


def old_indented(doc: object) -> bytes:
    return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")


def old_compact(doc: object) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def indented_via_compact(doc: object) -> bytes:
    """``dumps_indented`` checked on orjson's compact bytes, as ``Conversion.indented`` calls
    it (the converter passes None where orjson refuses the document)."""
    try:
        compact = orjson.dumps(doc, option=jsonbytes.ORJSON_OPTS)
    except TypeError:
        compact = None
    return jsonbytes.dumps_indented(doc, orjson_bytes=compact)


RECORDS = [*shared_files(SHARED_V2, "*.json"), *shared_files(SHARED_V2_PARTIAL, "*.json"),
           *shared_files(SHARED_XML, "*.xml"), FIXTURES / "seed" / "NCT06534528.json"]


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_record_serialises_to_the_old_bytes_in_every_form(path: Path):
    """R5 and R4, collection and transaction, indented and compact: the same bytes."""
    studies = [r.study for r in parse_bytes(path.read_bytes(), path.name) if r.study]
    assert studies, f"{path.name}: no study read"
    forms = 0
    for study in studies:
        for version in ("R5", "R4"):
            for bundle_type in ("collection", "transaction"):
                conv = convert_study(study, fhir_version=version, bundle_type=bundle_type)
                bundle = conv.bundle
                assert dumps(bundle) == old_indented(bundle), (version, bundle_type)
                assert conv.indented() == old_indented(bundle), (version, bundle_type)
                assert jsonbytes.dumps_compact(bundle) == old_compact(bundle)
                assert conv.compact() == old_compact(bundle)
                forms += 1
    assert forms == 4 * len(studies)


def test_source_records_parse_to_the_same_values():
    """The reader's parser (orjson, json as fallback) gives json.loads's value."""
    paths = [p for p in RECORDS if p.suffix == ".json"]
    for p in paths:
        data = p.read_bytes()
        assert jsonbytes.loads(data) == json.loads(data), p.name
        assert jsonbytes.loads(data.decode()) == json.loads(data.decode()), p.name


# floats are where orjson's spelling differs (0.00001 vs 1e-05, 1e16 vs 1e+16)
FLOAT_CORNERS = [1e-05, 1e-07, 1.5e-05, 0.0001, 1e16, 1e15, 1.2345678901234568e+17, 1e300,
                 5e-324, -0.0, 0.1, 2.5, 100.0, -1e-10]


@pytest.mark.parametrize("value", FLOAT_CORNERS, ids=repr)
def test_float_spelling_matches_repr(value: float):
    doc = {"valueDecimal": value, "list": [value, {"v": value}], "top": [[value]]}
    assert jsonbytes.dumps_indented(doc) == old_indented(doc)
    assert jsonbytes.dumps_compact(doc) == old_compact(doc)
    assert jsonbytes.dumps_indented(value) == old_indented(value)
    assert jsonbytes.dumps_compact([value]) == old_compact([value])
    assert indented_via_compact(doc) == old_indented(doc)


@pytest.mark.parametrize("doc", [
    {"n": math.nan}, {"n": [math.inf, -math.inf]},  # orjson would write null
    {"big": 2**64}, {"neg": -(2**63) - 1}, {"u64": 2**64 - 1},  # beyond orjson's integers
    {1: "int key"}, {"k": None}, {"text": "null hypothesis: 1e5 is not 1e+05"},
    {"deep": [[[[[[[[[[]]]]]]]]]]}, {"empty": {}, "e": [], "s": ""},
], ids=repr)
def test_corners_orjson_writes_differently_fall_back_exactly(doc: object):
    assert jsonbytes.dumps_indented(doc) == old_indented(doc)
    assert jsonbytes.dumps_compact(doc) == old_compact(doc)
    assert indented_via_compact(doc) == old_indented(doc)


def test_nesting_beyond_orjsons_limit_falls_back():
    doc: list = []
    for _ in range(300):
        doc = [doc]
    assert jsonbytes.dumps_indented(doc) == old_indented(doc)


def test_every_character_is_escaped_as_json_escapes_it():
    text = "".join(chr(c) for c in range(0x30000) if not 0xD800 <= c <= 0xDFFF)
    doc = {"all": text, text[:200]: [text[::7]]}
    assert jsonbytes.dumps_indented(doc) == old_indented(doc)
    assert jsonbytes.dumps_compact(doc) == old_compact(doc)


def test_lone_surrogate_fails_as_it_did():
    with pytest.raises(UnicodeEncodeError):
        old_indented({"s": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        jsonbytes.dumps_indented({"s": "\ud800"})


def test_what_json_refuses_is_still_refused():
    import dataclasses
    import datetime

    @dataclasses.dataclass
    class D:
        x: int

    for bad in (D(1), datetime.date(2026, 1, 1), {"s": {1, 2}}):
        with pytest.raises(TypeError):
            old_indented(bad)
        with pytest.raises(TypeError):
            jsonbytes.dumps_indented(bad)


@pytest.mark.parametrize("data", [
    b'\xef\xbb\xbf{"a": 1}', '{"a": 1}'.encode("utf-16"), b'{"a": NaN}', b'{"s": "\\ud800"}',
    b'{"big": 123456789012345678901234567890}', b'{"a": 1, "a": 2}', b'[1.0, 1e-05, 1E400]',
], ids=repr)
def test_loads_gives_json_loads_value(data: bytes):
    a, b = json.loads(data), jsonbytes.loads(data)
    assert repr(a) == repr(b)  # repr: NaN != NaN, and -0.0 == 0.0


@pytest.mark.parametrize("text", [
    '{"big": 123456789012345678901234567890}', '{"big": -18446744073709551616}',
    '[18446744073709551615, 9223372036854775808]', '{"s": "\u0661\u0662" , "n": 1}',
    '{"s": "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠", "n": 12345678901234567890123}', '{"s": "\ud800x"}',
    r'{"s": "\ud800"}', r'{"s": "a\ud800b"}',
], ids=lambda t: ascii(t))
def test_loads_of_text_gives_json_loads_value(text: str):
    """A str (how the readers pass a decoded record) is read as json reads it: a big integer
    stays an int, a lone surrogate character does not break the 19-digit scan."""
    def outcome(read):
        try:
            return repr(read(text))
        except json.JSONDecodeError as e:
            return ("error", e.msg, e.pos)

    assert outcome(jsonbytes.loads) == outcome(json.loads)


@pytest.mark.parametrize("doc", [
    {"f": 1e16}, {"f": [1e-7]}, {"f": 1.5e300}, {"f": -2.5e-300}, {"s": "see 1e5,", "f": 1e22},
    {"s": "the e-1, e+2] e3}"}, [1e100, "x"],
], ids=repr)
def test_exponent_prefilter_never_hides_a_float_json_spells_otherwise(doc: object):
    assert jsonbytes.dumps_indented(doc) == old_indented(doc)
    assert jsonbytes.dumps_compact(doc) == old_compact(doc)
    assert indented_via_compact(doc) == old_indented(doc)


@pytest.mark.parametrize("data", [b'{"a": 1', b"", b"[1,]", b'{"a": 1} x'], ids=repr)
def test_loads_raises_json_loads_error(data: bytes):
    with pytest.raises(json.JSONDecodeError) as old:
        json.loads(data)
    with pytest.raises(json.JSONDecodeError) as new:
        jsonbytes.loads(data)
    assert (new.value.msg, new.value.pos) == (old.value.msg, old.value.pos)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_serialises_to_the_old_bytes(doc: object):
    try:
        expected = old_indented(doc)
    except UnicodeEncodeError:  # a lone surrogate drawn by st.text()
        with pytest.raises(UnicodeEncodeError):
            jsonbytes.dumps_indented(doc)
        return
    assert jsonbytes.dumps_indented(doc) == expected
    assert jsonbytes.dumps_compact(doc) == old_compact(doc)
    assert indented_via_compact(doc) == expected


def test_full_url_is_the_rfc4122_name_based_uuid():
    """ids.full_url spells uuid5 by hand (faster); it must be the same UUID."""
    import uuid

    from fhirtrial.convert import ids

    for rtype, rid in [("ResearchStudy", "NCT06534528"), ("Group", "NCT1-arm-3f2a9c1e"),
                       ("Location", "é ü ✓ \x00"), ("Organization", "")]:
        expected = uuid.uuid5(ids._NAMESPACE, f"{rtype}/{rid}")
        assert ids.full_url(rtype, rid) == f"urn:uuid:{expected}"
        assert uuid.UUID(ids.full_url(rtype, rid)[9:]).version == 5


_FORWARD = [re.compile(p) for p in (rb"e[-+]?[0-9]+[,\n\]}]", rb"0\.0000[0-9]*[,\n\]}]",
                                     rb"null[,\n\]}]")]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([b"e", b"-", b"+", b"0", b"1", b"7", b".", b"0000", b"null",
                                 b"nul", b",", b"\n", b"]", b"}", b"x", b'"', b" "]),
                max_size=24).map(b"".join))
def test_reversed_search_finds_what_the_three_forward_patterns_find(data: bytes):
    """The one reversed scan of the token-end translation flags a text exactly when one of the
    three forward patterns (exponent, tiny fixed-point, null) matches it."""
    found = jsonbytes._DIFFERS_REVERSED.search(data.translate(jsonbytes._ENDS)[::-1])
    assert (found is not None) == any(p.search(data) for p in _FORWARD)
