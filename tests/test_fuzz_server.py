"""Fuzzing the FHIR server: mutated resources written and mutated search queries asked must
never give a 5xx, and SQL metacharacters in a search value are matched as plain text.

Resources start from the converter's output for the shared registry records and from the
shared FHIR examples; they are mutated structurally (fuzzkit) and sent as creates, updates,
conditional updates and transaction/batch Bundles to the Flask app on a real SQLite file.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import (
    FHIR_EXAMPLES,
    READ_TOKEN,
    SHARED_V2,
    WRITE_TOKEN,
    needs_shared,
    shared_files,
)
from fhirtrial.convert import convert_study
from fhirtrial.server import create_app
from fhirtrial.server.searchparams import PREFIXES, REGISTRY
from fhirtrial.sources import read_inputs
from fuzzkit import (
    calendar_edges,
    counted,
    edge_value,
    examples,
    huge_integers,
    mutate_json,
    non_ascii_digits,
    note,
    odd_text,
    parameter_floods,
    serialise_json,
)

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/fhir+json"}
FHIR_KEYS = ("id", "meta", "versionId", "resourceType", "identifier", "system", "value",
             "status", "title", "name", "reference", "extension", "url", "contained", "text",
             "div", "coding", "code", "period", "start", "position", "latitude", "entry",
             "resource", "request", "method", "fullUrl", "type")


def _converted_bundles(n: int) -> list[dict[str, Any]]:
    out = []
    for rec in read_inputs([str(p) for p in shared_files(SHARED_V2, "*.json")[:n]],
                           fetch=None):
        assert rec.study is not None, rec.error
        out.append(convert_study(rec.study, bundle_type="transaction").bundle)
    return out


BUNDLES = _converted_bundles(6) if SHARED_V2.is_dir() else []
RESOURCES = sorted(
    [e["resource"] for b in BUNDLES for e in b["entry"]]
    + [json.loads(p.read_bytes()) for p in shared_files(FHIR_EXAMPLES / "r5", "*.json")],
    key=lambda r: len(json.dumps(r)))
TYPES = sorted(REGISTRY["R5"])


@pytest.fixture(scope="module")
def loaded(module_stores):
    """One app and store for the module (once per backend), holding the converted studies
    (searches find data)."""
    app = create_app({"DB": module_stores(),
                      "TOKENS": f"{WRITE_TOKEN},{READ_TOKEN}:read",
                      "MAX_BODY_BYTES": 2 * 1024 * 1024})
    client = app.test_client()
    for b in BUNDLES:
        r = client.post("/fhir", data=json.dumps(b), headers=AUTH)
        assert r.status_code == 200, r.get_data(as_text=True)[:500]
    yield client
    app.extensions["fhirtrial.store"].close()


def _assert_fhir_answer(r: Any, suite: str) -> None:
    assert r.status_code < 500, r.get_data(as_text=True)[:2000]
    note(suite, f"{r.status_code // 100}xx")
    if r.status_code in (304,) or not r.data:
        return
    doc = json.loads(r.data)
    assert isinstance(doc.get("resourceType"), str)
    if r.status_code >= 400:
        assert doc["resourceType"] == "OperationOutcome"


# ---------------------------------------------------------------- writes
write_kinds = st.sampled_from(["create", "update", "conditional", "transaction", "batch"])


@needs_shared
@examples(bounded=500, full=5000)
@given(data=st.data())
def test_mutated_resources_never_give_a_5xx(loaded, data: st.DataObject) -> None:
    kind = data.draw(write_kinds, label="kind")
    if kind in ("transaction", "batch"):
        base = dict(data.draw(st.sampled_from(BUNDLES), label="bundle"), type=kind)
        doc = data.draw(mutate_json(base, keys=FHIR_KEYS, rare=edge_value),
                        label="mutated bundle")
        url = "/fhir"
        rtype = "Bundle"
    else:
        base = data.draw(st.sampled_from(RESOURCES), label="resource")
        doc = data.draw(mutate_json(base, keys=FHIR_KEYS, rare=edge_value), label="mutated")
        rtype = base["resourceType"]
        rid = doc.get("id") if isinstance(doc, dict) else None
        if kind == "update":
            rid = rid if isinstance(rid, str) and re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", rid) \
                else base.get("id", "x1")
            url = f"/fhir/{rtype}/{rid}"
        elif kind == "conditional":
            url = f"/fhir/{rtype}?identifier={quote(str(data.draw(odd_text, label='ident')))}"
        else:
            url = f"/fhir/{rtype}"
    body = data.draw(serialise_json(doc), label="body")
    method = "POST" if kind in ("create", "transaction", "batch") else "PUT"
    with counted("server-write"):
        r = loaded.open(url, method=method, data=body, headers=AUTH)
        _assert_fhir_answer(r, "server-write")
        if r.status_code in (200, 201) and kind in ("create", "update"):
            # an acknowledged write is readable, with the version the server announced
            back = loaded.get(urlsplit(r.headers["Location"]).path.split("/_history")[0])
            assert back.status_code == 200
            assert back.headers["ETag"] == r.headers["ETag"]


# ---------------------------------------------------------------- searches
SQL_BITS = ["' OR 1=1 --", "'; DROP TABLE current; --", "%", "_", "\\", "%_%", "\" OR \"\"=\"",
            "*", "?", "(", ")", ";", "--", "/*", "*/", "\x00", "' UNION SELECT body FROM "
            "versions --"]
MODIFIERS = ["", "missing", "exact", "contains", "text", "not", "above", "below", "in",
             "of-type", "identifier", "iterate", "ResearchStudy", "zz", ":"]
SPECIAL = ["_id", "_lastUpdated", "_sort", "_count", "_offset", "_include", "_revinclude",
           "_summary", "_elements", "_total", "_format", "_pretty", "_has", "_filter",
           "_content", "zz-unknown", "", "=", "&"]
values = st.one_of(
    st.sampled_from(SQL_BITS), odd_text, st.text(max_size=15),
    st.builds(lambda p, v: f"{p}{v}", st.sampled_from([*PREFIXES, ""]),
              st.one_of(calendar_edges, non_ascii_digits, huge_integers)),
    st.builds(lambda p, n: f"{p}{n}", st.sampled_from([*PREFIXES, "xx", ""]),
              st.one_of(st.integers(-10**20, 10**20).map(str),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr),
                        st.sampled_from(["2020", "2020-13-45", "2020-01-01T25:00:00Z",
                                         "1e999", "-0", "9" * 400, "2020-01-01T00:00:00+99:99"]))),
    st.sampled_from(["a|b", "|", "|x", "x|", "ResearchStudy/x", "http://x/ResearchStudy/1",
                     "42.3|-71.0|10|km", "0|0|1e308|mi", "91|0|1|km", "a,b,,c",
                     "ResearchStudy:site", "Location:zz:Location", "*", "ResearchStudy:*",
                     "-title", "title,-date", "count", "true"]),
)


@st.composite
def query_strings(draw: st.DrawFn, rtype: str) -> str:
    names = [*REGISTRY["R5"][rtype], *SPECIAL]
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.one_of(st.sampled_from(names), st.text(max_size=8)))
        mod = draw(st.sampled_from(MODIFIERS))
        key = f"{name}:{mod}" if mod else name
        value = draw(values)
        how = draw(st.integers(0, 4))
        if how == 0:  # raw, possibly malformed (stray %, &, =, unicode)
            parts.append(f"{key}={value}")
        else:
            parts.append(urlencode({key: value}))
    return "&".join(parts)


@needs_shared
@examples(bounded=800, full=8000)
@given(data=st.data())
def test_mutated_search_queries_never_give_a_5xx(loaded, data: st.DataObject) -> None:
    rtype = data.draw(st.sampled_from(TYPES), label="type")
    qs = data.draw(query_strings(rtype), label="query")
    headers = {"Prefer": data.draw(st.sampled_from(["", "handling=strict", "handling=lenient"]))}
    post = data.draw(st.booleans(), label="POST _search")
    with counted("server-search"):
        if post:
            r = loaded.post(f"/fhir/{rtype}/_search", data=qs.encode("utf-8", "replace"),
                            headers={**headers,
                                     "Content-Type": "application/x-www-form-urlencoded"})
        else:
            r = loaded.get(f"/fhir/{rtype}?{qs}", headers=headers)
        _assert_fhir_answer(r, "server-search")
        if r.status_code == 200:
            assert json.loads(r.data)["resourceType"] == "Bundle"


# ---------------------------------------------------------------- SQL metacharacters are data
META_ALPHABET = "ab%_\\'\";-=*()/"


@pytest.fixture(scope="module")
def titled(module_stores):
    """A store of ResearchStudy resources whose titles are made of SQL metacharacters (once
    per backend)."""
    app = create_app({"DB": module_stores(),
                      "TOKENS": WRITE_TOKEN})
    client = app.test_client()
    titles: dict[str, str] = {}
    for t in ["' OR 1=1 --", "a OR 1=1 --", "100% sure", "100 sure", "1000 sure",
              "under_score", "underXscore", "back\\slash", "backslash", "back/slash", "%", "_",
              "\\", "x"]:
        titles[_create(client, t)] = t
    yield client, titles
    app.extensions["fhirtrial.store"].close()


def _create(client: Any, title: str) -> str:
    r = client.post("/fhir/ResearchStudy", headers=AUTH, data=json.dumps(
        {"resourceType": "ResearchStudy", "status": "active", "title": title}))
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.headers["Location"].split("/ResearchStudy/")[1].split("/")[0]


def fhir_escape(value: str) -> str:
    """A search value as FHIR search syntax spells it: ``\\`` ``\\,`` ``\\|`` ``\\$``
    (the backslash is FHIR's escape character, so a literal one is sent doubled)."""
    for ch in "\\,|$":
        value = value.replace(ch, "\\" + ch)
    return value


def _found(client: Any, param: str, value: str) -> set[str]:
    query = urlencode({param: fhir_escape(value), "_count": "1000"})
    r = client.get(f"/fhir/ResearchStudy?{query}")
    assert r.status_code == 200, r.get_data(as_text=True)
    return {e["resource"]["id"] for e in json.loads(r.data).get("entry", [])}


@pytest.mark.parametrize("value", ["' OR 1=1 --", "100% sure", "under_score", "back\\slash",
                                   "%", "_", "\\"])
def test_sql_metacharacters_in_exact_search_match_only_that_title(titled, value: str) -> None:
    client, titles = titled
    assert _found(client, "title:exact", value) == {i for i, t in titles.items() if t == value}


@pytest.mark.parametrize("value", ["%", "_", "\\", "' OR 1=1", "0% s", "r_s"])
def test_sql_metacharacters_in_contains_search_are_literal(titled, value: str) -> None:
    client, titles = titled
    expected = {i for i, t in titles.items() if value.lower() in t.lower()}
    assert expected, "the fixture titles must contain every probed value"
    assert _found(client, "title:contains", value) == expected


@examples(bounded=100, full=1000)
@given(title=st.text(alphabet=META_ALPHABET, min_size=1, max_size=8),
       probe=st.text(alphabet=META_ALPHABET, min_size=1, max_size=4))
def test_metacharacter_titles_are_found_by_exactly_their_text(titled, title: str,
                                                              probe: str) -> None:
    client, titles = titled
    with counted("server-sql-literal"):
        titles[_create(client, title)] = title
        # the alphabet is lowercase ASCII without spaces: the server's case/space folding is
        # the identity on it, so Python's own string tests are the oracle
        assert _found(client, "title:exact", title) == {i for i, t in titles.items()
                                                        if t == title}
        assert _found(client, "title:contains", probe) == {i for i, t in titles.items()
                                                           if probe in t.lower()}
        assert _found(client, "title", probe) == {i for i, t in titles.items()
                                                  if t.lower().startswith(probe)}


# ---------------------------------------------------------------- issue 13's edges
# Calendar edges, non-ASCII digits, huge integers and parameter floods, in every place a
# request carries a date or a number: resources, transactions, search values, paging,
# ETags, conditional headers, version ids. None needs ../shared.
@pytest.fixture(scope="module")
def edged(tmp_path_factory):
    """A store holding studies whose dates sit on the calendar's edges."""
    app = create_app({"DB": str(tmp_path_factory.mktemp("edges") / "store.sqlite"),
                      "TOKENS": WRITE_TOKEN})
    client = app.test_client()
    for i, when in enumerate(["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                              "9999", "2020-05-01"]):
        r = client.put(f"/fhir/ResearchStudy/e{i}", headers=AUTH, data=json.dumps(
            {"resourceType": "ResearchStudy", "id": f"e{i}", "status": "active",
             "period": {"start": when, "end": when},
             "identifier": [{"system": "s", "value": str(i)}]}))
        assert r.status_code == 201, r.get_data(as_text=True)
    return client


def _never_5xx(r: Any, suite: str) -> None:
    _assert_fhir_answer(r, suite)
    assert b"Traceback" not in r.data


numberish = st.one_of(non_ascii_digits, huge_integers, st.integers(0, 5).map(str))


@examples(bounded=150, full=2000)
@given(data=st.data())
def test_edge_dates_and_numbers_anywhere_never_give_a_5xx(edged, data: st.DataObject) -> None:
    where = data.draw(st.sampled_from(["resource", "transaction", "search", "since", "paging",
                                       "if-match", "if-none-exist", "vread"]), label="where")
    when = data.draw(calendar_edges, label="date")
    num = data.draw(numberish, label="number")
    with counted("server-edges"):
        if where in ("resource", "transaction"):
            study = {"resourceType": "ResearchStudy", "status": "active",
                     "period": {data.draw(st.sampled_from(["start", "end"])): when}}
            if where == "resource":
                r = edged.post("/fhir/ResearchStudy", data=json.dumps(study), headers=AUTH)
            else:
                r = edged.post("/fhir", headers=AUTH, data=json.dumps(
                    {"resourceType": "Bundle", "type": data.draw(st.sampled_from(
                        ["transaction", "batch"])), "entry": [
                        {"request": {"method": "POST", "url": "ResearchStudy"},
                         "resource": study}]}))
        elif where == "search":
            param = data.draw(st.sampled_from(["date", "_lastUpdated"]))
            prefix = data.draw(st.sampled_from([*PREFIXES, ""]))
            r = edged.get(f"/fhir/ResearchStudy?{urlencode({param: prefix + when})}")
        elif where == "since":
            r = edged.get(f"/fhir/ResearchStudy/_history?{urlencode({'_since': when})}")
        elif where == "paging":
            param = data.draw(st.sampled_from(["_count", "_offset"]))
            path = data.draw(st.sampled_from(["/fhir/ResearchStudy",
                                              "/fhir/ResearchStudy/_history",
                                              "/fhir/ResearchStudy/e0/_history"]))
            r = edged.get(f"{path}?{urlencode({param: num})}")
        elif where == "if-match":
            r = edged.put("/fhir/ResearchStudy/e3", headers={**AUTH, "If-Match": f'W/"{num}"'},
                          data=json.dumps({"resourceType": "ResearchStudy", "id": "e3",
                                           "status": "active"}))
            assert r.status_code in (200, 412), r.get_data(as_text=True)
        elif where == "if-none-exist":
            crit = data.draw(st.sampled_from(["_count", "recruitment-target", "_offset",
                                              "date"]))
            r = edged.post("/fhir/ResearchStudy", headers={
                **AUTH, "If-None-Exist": urlencode({crit: when if crit == "date" else num})},
                data=json.dumps({"resourceType": "ResearchStudy", "status": "active"}))
        else:
            r = edged.get(f"/fhir/ResearchStudy/e0/_history/{quote(num)}")
        _never_5xx(r, "server-edges")


@examples(bounded=25, full=300)
@given(data=st.data())
def test_parameter_floods_are_answered_or_refused_never_a_5xx(edged,
                                                             data: st.DataObject) -> None:
    names = ["identifier", "title", "date", "_id", "status", "recruitment-target", "site",
             "_lastUpdated", "title:contains", "identifier:not"]
    items = data.draw(parameter_floods(names), label="flood")
    form = urlencode(items)
    with counted("server-floods"):
        if data.draw(st.booleans(), label="POST _search"):
            r = edged.post("/fhir/ResearchStudy/_search", data=form,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            r = edged.get(f"/fhir/ResearchStudy?{form}")
        _never_5xx(r, "server-floods")
        if r.status_code == 400:  # refused with the limit it passed, not a generic message
            assert "at most" in json.loads(r.data)["issue"][0]["diagnostics"]
