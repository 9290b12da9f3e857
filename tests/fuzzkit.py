"""Fuzzing support: hypothesis profiles, honest per-suite counters, and structural mutators
for registry records (v2 JSON, legacy XML) and FHIR resources.

Mutations start from real records and change their structure the way broken exports and
hostile inputs do: keys dropped or added, values swapped to another JSON type, strings of
over 1 MB, odd Unicode (astral, right-to-left, combining marks, NUL, escaped lone
surrogates), nesting thousands of levels deep, huge and non-finite numbers. Values that the
test's own ``json.dumps`` could not write (deep nesting, lone surrogates) are sentinels
spliced into the serialised text, so the input really reaches the code under test.
"""

from __future__ import annotations

import copy
import json
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

FULL = os.environ.get("FHIRTRIAL_FULL", "") not in ("", "0")
ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- profiles
_COMMON: dict[str, Any] = {
    "deadline": None,  # a 1 MB string or a 5000-level document is slow by design
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                              HealthCheck.large_base_example, HealthCheck.filter_too_much],
    "print_blob": True,
    "database": DirectoryBasedExampleDatabase(str(ROOT / ".pytest_cache" / "hypothesis")),
}
settings.register_profile("fhirtrial-bounded", **_COMMON)
settings.register_profile("fhirtrial-full", **_COMMON)
settings.load_profile("fhirtrial-full" if FULL else "fhirtrial-bounded")


def examples(bounded: int, full: int) -> settings:
    """Per-test example budget: small in CI, large with FHIRTRIAL_FULL=1."""
    return settings(max_examples=full if FULL else bounded)


# ---------------------------------------------------------------- counters
#: suite -> Counter(tried=…, failures=…); printed by the terminal summary hook in conftest
COUNTS: dict[str, Counter[str]] = {}


@contextmanager
def counted(suite: str) -> Iterator[None]:
    """Count one input tried, and a failure when the check inside raises."""
    c = COUNTS.setdefault(suite, Counter())
    c["tried"] += 1
    try:
        yield
    except BaseException:
        c["failures"] += 1
        raise


def note(suite: str, outcome: str) -> None:
    """Tally an outcome (converted, refused, 2xx, 4xx…) so the summary shows the mix."""
    COUNTS.setdefault(suite, Counter())[f"outcome:{outcome}"] += 1


def summary_lines() -> list[str]:
    lines = []
    for suite, c in sorted(COUNTS.items()):
        mix = ", ".join(f"{k.removeprefix('outcome:')} {n}" for k, n in sorted(c.items())
                        if k.startswith("outcome:"))
        if suite.startswith("load-"):
            head = f"{suite}: {c['tried']} requests, {c['failures']} 5xx"
        else:
            head = f"fuzz {suite}: {c['tried']} inputs tried, {c['failures']} failures"
        lines.append(head + (f" ({mix})" if mix else ""))
    return lines


# ---------------------------------------------------------------- value strategies
ODD_PIECES = [
    "\u202e", "\u202dabc\u202c", "\u05e9\u05dc\u05d5\u05dd", "\u0645\u0631\u062d\u0628\u0627",
    "e\u0301\u0301\u0301\u0308", "\u0000", "\x01\x1f\x7f", "\U0001f600", "\U0001f9ea\u200d",
    "\U00010348", "\U0010fffd", "\ufeff", "\u200b", "\r\n", "\t", "\u2028\u2029", "\ufffd",
    "<script>alert(1)</script>", "&amp;&lt;", "]]>", "{{x}}", "%s%n", "' OR 1=1 --", "\\",
    "NCT", "NCT0000000", "   ", "",
]
odd_text = st.lists(st.one_of(st.sampled_from(ODD_PIECES), st.text(max_size=4)),
                    min_size=1, max_size=12).map("".join)
huge_text = st.builds(lambda piece, n: piece * (n // len(piece) + 1),
                      st.sampled_from(["x", "é", "\U0001f600", "word ", "a\u0301", "- item\n"]),
                      st.integers(1_048_577, 1_200_000))
big_numbers = st.one_of(st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
                        st.sampled_from([10 ** 400, -(10 ** 400), 2 ** 63, -1, 0]),
                        st.floats(allow_nan=True, allow_infinity=True))

# ---------------------------------------------------------------- edges the fuzzers missed
# (issue 13: each of these reached the server as a 500)

#: FHIR allows years 0001-9999 and offsets -14:00…+14:00: their UTC ranges leave the calendar
calendar_edges = st.one_of(
    st.sampled_from(["9999", "9999-12", "9999-12-31", "0001", "0001-01", "0001-01-01",
                     "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59.999999-14:00",
                     "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00.000+14:00",
                     "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
                     # and just outside what FHIR allows
                     "0000", "10000", "9999-12-31T23:59:59+14:01", "2020-01-01T00:00:00+99:99",
                     "9999-13", "0001-00-01"]),
    st.builds(lambda y, m, d, hh, sign, off: f"{y}-{m}-{d}T{hh}:59:59{sign}{off}",
              st.sampled_from(["0001", "9999"]), st.sampled_from(["01", "12"]),
              st.sampled_from(["01", "31"]), st.sampled_from(["00", "23"]),
              st.sampled_from(["+", "-"]), st.sampled_from(["14:00", "13:59", "00:00"])),
)
#: digits int(), float() and str.isdigit() accept that are not 0-9: superscripts,
#: Arabic-Indic, Devanagari, fullwidth, and other decimal digits
non_ascii_digits = st.one_of(
    st.sampled_from(["²", "³", "¹", "٣", "۴", "५", "１", "²³", "1²", "٢٠٢٠", "٢٠٢٠-٠١-٠١"]),
    st.text(alphabet=st.characters(whitelist_categories=("Nd", "No"),
                                   blacklist_characters="0123456789"), min_size=1, max_size=6),
)
#: integers past SQLite's 64-bit range, past a float, past Python's 4300-digit int() limit
huge_integers = st.one_of(
    st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63) - 1]).map(str),
    st.integers(19, 40).map(lambda n: "9" * n),
    st.integers(300, 5000).map(lambda n: "1" + "0" * n),
)
BIGINT = re.compile(r'"@@bigint:(\d+)@@"')
#: a JSON integer of that many digits, spliced into the text by serialise_json
big_json_int = st.integers(400, 6000).map(lambda n: f"@@bigint:{n}@@")


def _flood_value(name: str, i: int) -> str:
    """A valid value of the parameter's type, so that only the flood's size is wrong."""
    if name.startswith(("date", "_lastUpdated")):
        return f"ge{1900 + i % 100}"
    if name.startswith("recruitment"):
        return str(i)
    if name.startswith("site"):
        return f"Location/l{i}"
    return f"v{i}"


@st.composite
def parameter_floods(draw: st.DrawFn, names: list[str]) -> list[tuple[str, str]]:
    """Searches past SQLite's expression limits: one parameter with hundreds of OR-ed values,
    or hundreds of repeated parameters, or both; every value valid for its parameter."""
    how = draw(st.sampled_from(["or", "repeat", "both", "sort", "include"]))
    name = draw(st.sampled_from(names))
    n = draw(st.integers(90, 1200))
    if how == "or":
        return [(name, ",".join(_flood_value(name, i) for i in range(n)))]
    if how == "repeat":
        picked = [draw(st.sampled_from(names)) for _ in range(n)]
        return [(p, _flood_value(p, i)) for i, p in enumerate(picked)]
    if how == "sort":
        return [("_sort", ",".join([name.split(":")[0]] * (n // 50)))]
    if how == "include":
        return [("_include", "ResearchStudy:site")] * (n // 30)
    return [(name, ",".join(_flood_value(name, i) for i in range(30)))] * (n // 30)


DEEP = re.compile(r'"@@deep:(list|dict):(\d+)@@"')
SURROGATE = '"@@surrogate@@"'


def _deep_sentinel(kind: str, depth: int) -> str:
    return f"@@deep:{kind}:{depth}@@"


deep_value = st.builds(_deep_sentinel, st.sampled_from(["list", "dict"]),
                       st.integers(200, 6000))

scalar_values = st.one_of(st.none(), st.booleans(), big_numbers, st.text(max_size=20),
                          odd_text)
any_value = st.one_of(
    scalar_values,
    st.lists(scalar_values, max_size=4),
    st.dictionaries(st.text(max_size=8), scalar_values, max_size=4),
    st.builds(dict), st.builds(list),  # fresh objects: a later op may fill them
)
rare_value = st.one_of(huge_text, deep_value, st.just("@@surrogate@@"))
#: rare values plus the edges of issue 13, for the server's fuzzers
edge_value = st.one_of(rare_value, big_json_int, calendar_edges, non_ascii_digits,
                       huge_integers.map(lambda t: int(t) if len(t) < 400 else t))


# ---------------------------------------------------------------- JSON mutation
def json_paths(doc: Any, limit: int = 4000) -> list[tuple[Any, ...]]:
    """Every path (tuple of keys/indexes) into a JSON document, breadth first, capped."""
    out: list[tuple[Any, ...]] = [()]
    queue: list[tuple[tuple[Any, ...], Any]] = [((), doc)]
    while queue and len(out) < limit:
        path, node = queue.pop(0)
        children = (node.items() if isinstance(node, dict)
                    else enumerate(node) if isinstance(node, list) else ())
        for k, v in children:
            out.append((*path, k))
            queue.append(((*path, k), v))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def _retype(value: Any) -> list[Any]:
    """The same content as other JSON types (str↔int↔list↔dict↔null↔bool)."""
    text = value if isinstance(value, str) else json.dumps(value)[:50]
    return [None, True, False, 0, 7, -3, 1.5, text, [value], {"value": value}, [], {},
            str(len(text))]


@st.composite
def mutate_json(draw: st.DrawFn, doc: Any, *, max_ops: int = 4,
                keys: tuple[str, ...] = (), rare: st.SearchStrategy[Any] | None = None) -> Any:
    """A structurally mutated deep copy of ``doc`` (``rare``: the rare values to draw from)."""
    rare = rare_value if rare is None else rare
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, max_ops))):
        paths = json_paths(doc)
        path = draw(st.sampled_from(paths))
        target = _get(doc, path)
        parent = _get(doc, path[:-1]) if path else None
        op = draw(st.sampled_from(["drop", "add", "retype", "value", "rare", "dup"]))
        if op == "add" and isinstance(target, dict | list):
            key = draw(st.one_of(st.sampled_from(keys or ("x",)), st.text(max_size=10),
                                 odd_text)) if isinstance(target, dict) else None
            val = draw(st.one_of(any_value, rare) if draw(st.integers(0, 9)) == 0
                       else any_value)
            if isinstance(target, dict):
                target[key] = val
            else:
                target.insert(draw(st.integers(0, len(target))), val)
        elif not path:
            continue  # the root is replaced by serialise-level mutations only
        elif op == "drop":
            del parent[path[-1]]
        elif op == "retype":
            parent[path[-1]] = draw(st.sampled_from(_retype(target)))
        elif op == "value":
            parent[path[-1]] = draw(any_value)
        elif op == "rare":
            parent[path[-1]] = draw(rare)
        elif op == "dup" and isinstance(parent, list):
            parent.insert(path[-1], copy.deepcopy(target))
    return doc


# ---------------------------------------------------------------- invalid FHIR, on purpose
#: per JSON type of a primitive value, values of another JSON type FHIR JSON never allows there
#: (the models would coerce most of them: "yes" → True, "7" → 7)
WRONG_TYPED: dict[type, list[Any]] = {
    bool: ["yes", "true", "no", 1, 0, None, [True]],
    int: ["7", True, 1.5, "seven", {"value": 7}],
    str: [42, True, 1.5, {"value": "x"}],
}


def _primitive_paths(doc: Any) -> list[tuple[Any, ...]]:
    def plain(path: tuple[Any, ...]) -> bool:
        return not any(isinstance(k, str) and (k.startswith("_") or k == "resourceType")
                       for k in path)
    return [p for p in json_paths(doc, limit=20000)
            if p and isinstance(_get(doc, p), bool | int | str) and plain(p)]


@st.composite
def wrong_primitive(draw: st.DrawFn, doc: Any) -> tuple[Any, tuple[Any, ...]]:
    """A copy of ``doc`` with one primitive value, at any depth, of a JSON type FHIR does not
    allow there; and its path."""
    doc = copy.deepcopy(doc)
    path = draw(st.sampled_from(_primitive_paths(doc)))
    value = _get(doc, path)
    kind = bool if isinstance(value, bool) else int if isinstance(value, int) else str
    wrong = WRONG_TYPED[kind]
    if kind is int and path[-1] == "value":
        # a whole number where a decimal goes (Quantity.value, Range.low.value, ...): a
        # fraction is right there, not a wrong type (integer elements are named valueInteger)
        wrong = [w for w in wrong if not isinstance(w, float)]
    _get(doc, path[:-1])[path[-1]] = draw(st.sampled_from(wrong))
    return doc, path


#: XHTML FHIR narrative must not hold (txt-1), each inside otherwise valid content
BAD_XHTML = [
    "<script>alert(1)</script>", "<script src='https://x.example/a.js'></script>",
    '<p onclick="alert(1)">t</p>', '<img src="a.png" onerror="alert(1)"/>',
    '<div onmouseover="alert(1)">t</div>', '<a href="javascript:alert(1)">t</a>',
    '<a href=" JaVaScRiPt:alert(1)">t</a>', "<iframe src='https://x.example'></iframe>",
    "<object data='x.swf'></object>", "<embed src='x.swf'/>", "<form><input name='q'/></form>",
    "<style>p {color: red}</style>", "<link rel='stylesheet' href='x.css'/>",
    "<meta http-equiv='refresh' content='0'/>", "<base href='https://x.example/'/>",
    "<body>t</body>", '<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>',
    "<p>unclosed", "<p>a</q>", "<![CDATA[<script>x()</script>]]",
]


@st.composite
def bad_narrative(draw: st.DrawFn, resource: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``resource`` whose narrative carries one thing txt-1 forbids."""
    resource = copy.deepcopy(resource)
    before = draw(st.sampled_from(["", "Text ", "<p>Para</p>", "<b>bold</b> "]))
    after = draw(st.sampled_from(["", " more", "<br/>", "<ul><li>x</li></ul>"]))
    bad = draw(st.sampled_from(BAD_XHTML))
    resource["text"] = {"status": "generated",
                        "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{before}{bad}'
                               f"{after}</div>"}
    return resource


@st.composite
def dangling_reference(draw: st.DrawFn, bundle: dict[str, Any]
                       ) -> tuple[dict[str, Any], str]:
    """A copy of ``bundle`` where one ``urn:uuid`` reference points at no entry; the new
    reference."""
    bundle = copy.deepcopy(bundle)
    full_urls = {e.get("fullUrl") for e in bundle.get("entry", [])}
    paths = [p for p in json_paths(bundle, limit=20000) if p and p[-1] == "reference"
             and str(_get(bundle, p)).startswith("urn:uuid:")]
    path = draw(st.sampled_from(paths))
    new = f"urn:uuid:{draw(st.uuids())}"
    assert new not in full_urls
    _get(bundle, path[:-1])["reference"] = new
    return bundle, new


def _splice_deep(m: re.Match[str]) -> str:
    depth = int(m.group(2))
    if m.group(1) == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@st.composite
def serialise_json(draw: st.DrawFn, doc: Any) -> bytes:
    """JSON bytes of a mutated document, with sentinels spliced and byte-level damage."""
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()), allow_nan=True)
    text = DEEP.sub(_splice_deep, text)
    text = BIGINT.sub(lambda m: "9" * int(m.group(1)), text)
    text = text.replace(SURROGATE, '"\\ud83d lone"')
    data = text.encode("utf-8")
    damage = draw(st.integers(0, 19))
    if damage == 0 and data:
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif damage == 1:
        data = b"\xef\xbb\xbf" + data
    elif damage == 2:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    elif damage == 3:
        data = data + b"\n" + data  # two records where one was expected (NDJSON-ish)
    return data


# ---------------------------------------------------------------- XML mutation
def _all_elements(root: ET.Element) -> list[tuple[ET.Element | None, ET.Element]]:
    out: list[tuple[ET.Element | None, ET.Element]] = [(None, root)]
    for parent in root.iter():
        out.extend((parent, child) for child in parent)
    return out


XML_DEEP = "@@xmldeep@@"


@st.composite
def mutate_xml(draw: st.DrawFn, text: str, *, max_ops: int = 4) -> bytes:
    """A structurally mutated legacy <clinical_study> document, as bytes."""
    root = ET.fromstring(text)
    deep_depth = 0
    for _ in range(draw(st.integers(1, max_ops))):
        parent, el = draw(st.sampled_from(_all_elements(root)))
        op = draw(st.sampled_from(["drop", "text", "rare", "add", "dup", "deep"]))
        if op == "drop" and parent is not None:
            parent.remove(el)
        elif op == "text":
            el.text = draw(st.one_of(odd_text, st.text(max_size=30), st.just("")))
        elif op == "rare":
            el.text = draw(st.one_of(huge_text, st.just(XML_DEEP)))
            if el.text == XML_DEEP:
                deep_depth = draw(st.integers(500, 20000))
        elif op == "add":
            tag = draw(st.sampled_from(["nct_id", "textblock", "phase", "location", "zz",
                                        "condition", "arm_group", "eligibility"]))
            ET.SubElement(el, tag).text = draw(st.one_of(odd_text, st.text(max_size=10)))
        elif op == "dup" and parent is not None:
            parent.insert(list(parent).index(el), copy.deepcopy(el))
        elif op == "deep":
            el.text = XML_DEEP
            deep_depth = draw(st.integers(500, 20000))
    out = ET.tostring(root, encoding="unicode")
    if XML_DEEP in out:
        out = out.replace(XML_DEEP, "<b>" * deep_depth + "x" + "</b>" * deep_depth, 1)
        out = out.replace(XML_DEEP, "x")
    data = out.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0 and data:
        data = data[:draw(st.integers(1, len(data)))]
    return data


# ---------------------------------------------------------------- checks
MAX_FHIR_STRING = 1024 * 1024  # string.value maxLength (FHIR datatypes; markdown inherits it)


def iter_strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    stack: list[tuple[str, Any]] = [(path, node)]
    while stack:
        p, n = stack.pop()
        if isinstance(n, dict):
            stack.extend((f"{p}.{k}", v) for k, v in n.items())
        elif isinstance(n, list):
            stack.extend((p, v) for v in n)
        elif isinstance(n, str):
            yield p, n


def bundle_problems(bundle: dict[str, Any]) -> list[str]:
    """What makes a converted Bundle invalid beyond the model: dangling references, strings
    over FHIR's 1 MB limit, empty strings, output that is not JSON."""
    problems: list[str] = []
    full_urls = {e.get("fullUrl") for e in bundle.get("entry", [])}
    for path, value in iter_strings(bundle):
        if path.endswith(".div"):
            continue  # xhtml has no length limit
        if len(value) > MAX_FHIR_STRING:
            problems.append(f"{path}: string of {len(value)} characters exceeds 1 MB")
        if value == "":
            problems.append(f"{path}: empty string (FHIR primitives are never empty)")
        if path.endswith(".reference") and value not in full_urls:
            problems.append(f"{path}: dangling reference {value[:80]!r}")
    try:
        json.dumps(bundle, allow_nan=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError) as e:
        problems.append(f"not writable as JSON: {e}")
    return problems

