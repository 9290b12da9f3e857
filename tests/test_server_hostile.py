"""Hostile input that used to reach the server as a 500 (issue 13): calendar edges, non-ASCII
digits, integers beyond SQLite's range or Python's int() limit, parameter floods, a batch
whose later entry fails, two conditional creates of one identifier in a transaction, and
the HTML landing page. Each gets a 4xx OperationOutcome naming the problem (or, where the
input is valid FHIR, the right answer), and a refused write stores nothing.

The app runs on a real SQLite file (conftest ``client``)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest

from fhirtrial.server.search import MAX_CRITERIA, MAX_OFFSET, MAX_VALUES_PER_PARAM


def _study(**kw: Any) -> dict[str, Any]:
    return {"resourceType": "ResearchStudy", "status": "active", **kw}


def _outcome(r: Any) -> str:
    doc = json.loads(r.data)
    assert doc["resourceType"] == "OperationOutcome", doc
    assert "Traceback" not in r.get_data(as_text=True)
    return " | ".join(i["diagnostics"] for i in doc["issue"])


def _total(client: Any, query: str = "") -> int:
    r = client.get(f"/fhir/ResearchStudy?_summary=count{query}")
    assert r.status_code == 200, r.get_data(as_text=True)
    return json.loads(r.data)["total"]


def _history_total(client: Any) -> int:
    return json.loads(client.get("/fhir/ResearchStudy/_history").data)["total"]


# ---------------------------------------------------------------- the calendar's edges
EDGE_DATES = ["9999", "9999-12", "9999-12-31", "9999-12-31T23:59:59-14:00",
              "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00+14:00",
              "0001-01-01T00:00:00-14:00", "0001"]


@pytest.mark.parametrize("when", EDGE_DATES)
def test_calendar_edge_date_in_a_resource_is_stored_and_found(client, auth, when):
    r = client.post("/fhir/ResearchStudy", data=json.dumps(_study(period={"start": when})),
                    headers=auth)
    assert r.status_code == 201, r.get_data(as_text=True)
    rid = json.loads(r.data)["id"]
    # the search for the same value finds it: the range is clamped, not lost
    found = json.loads(client.get(f"/fhir/ResearchStudy?date=ge{quote(when)}").data)
    assert rid in {e["resource"]["id"] for e in found.get("entry", [])}


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_calendar_edge_date_in_a_transaction_is_stored(client, auth, when):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "ResearchStudy"},
         "resource": _study(period={"start": when})}]}
    r = client.post("/fhir", data=json.dumps(bundle), headers=auth)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert json.loads(r.data)["entry"][0]["response"]["status"] == "201 Created"


@pytest.mark.parametrize("query", [
    "date=9999-12-31T23:59:59-14:00", "date=0001-01-01T00:00:00%2B14:00", "date=le9999-12-31",
    "date=gt0001-01-01T00:00:00%2B14:00", "_lastUpdated=gt9999-12-31T23:59:59-14:00",
    "_lastUpdated=lt0001-01-01T00:00:00%2B14:00"])
def test_calendar_edge_date_in_a_search_is_answered(client, query):
    r = client.get(f"/fhir/ResearchStudy?{query}")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert json.loads(r.data)["total"] == 0  # an empty store: the answer, not a 500


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00%2B14:00", "9999-12-31T23:59:59-14:00"])
def test_calendar_edge_since_in_history_is_answered(client, auth, since):
    client.put("/fhir/ResearchStudy/a", data=json.dumps(_study(id="a")), headers=auth)
    r = client.get(f"/fhir/ResearchStudy/_history?_since={since}")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert json.loads(r.data)["total"] == (1 if since.startswith("0001") else 0)


def test_date_with_an_offset_beyond_14_hours_is_not_a_date(client):
    r = client.get("/fhir/ResearchStudy?date=2020-01-01T00:00:00%2B99:99")
    assert r.status_code == 400
    assert "not a FHIR date" in _outcome(r)


# ---------------------------------------------------------------- digits that are not 0-9
@pytest.mark.parametrize(("param", "value"), [("_count", "²"), ("_offset", "²"),
                                              ("_count", "٣"), ("_offset", "１")])
def test_non_ascii_digits_in_paging_are_a_400(client, param, value):
    r = client.get(f"/fhir/ResearchStudy?{param}={quote(value)}")
    assert r.status_code == 400
    assert _outcome(r) == f"{param}={value!r}: expected a non-negative integer (digits 0-9)"


@pytest.mark.parametrize("param", ["_count", "_offset"])
def test_non_ascii_digits_in_history_paging_are_a_400(client, param):
    r = client.get(f"/fhir/ResearchStudy/_history?{param}=%C2%B2")
    assert r.status_code == 400
    assert "digits 0-9" in _outcome(r)


def test_non_ascii_digit_in_if_match_is_a_412_and_nothing_changes(client, auth):
    client.put("/fhir/ResearchStudy/a", data=json.dumps(_study(id="a", title="one")),
               headers=auth)
    r = client.put("/fhir/ResearchStudy/a", data=json.dumps(_study(id="a", title="two")),
                   headers={**auth, "If-Match": 'W/"²"'})
    assert r.status_code == 412
    assert "is not a version ETag" in _outcome(r)
    assert json.loads(client.get("/fhir/ResearchStudy/a").data)["title"] == "one"


@pytest.mark.parametrize("criteria", ["_count=%C2%B2", "recruitment-target=%C2%B2",
                                      "recruitment-target=%D9%A3"])
def test_non_ascii_digit_in_if_none_exist_is_a_400_and_nothing_is_stored(client, auth,
                                                                          criteria):
    r = client.post("/fhir/ResearchStudy", data=json.dumps(_study()),
                    headers={**auth, "If-None-Exist": criteria})
    assert r.status_code == 400, r.get_data(as_text=True)
    _outcome(r)
    assert _total(client) == 0


def test_non_ascii_digits_in_a_number_search_are_not_a_number(client):
    r = client.get("/fhir/ResearchStudy?recruitment-target=%D9%A3")  # Arabic-Indic three
    assert r.status_code == 400
    assert _outcome(r) == "recruitment-target='٣': not a number"


# ---------------------------------------------------------------- integers out of range
def test_offset_beyond_the_limit_is_a_400(client):
    r = client.get("/fhir/ResearchStudy?_offset=99999999999999999999")
    assert r.status_code == 400
    assert _outcome(r) == f"_offset='99999999999999999999': at most {MAX_OFFSET}"


def test_offset_at_the_limit_is_an_empty_page(client):
    r = client.get(f"/fhir/ResearchStudy?_offset={MAX_OFFSET}&_total=none")
    assert r.status_code == 200
    assert "entry" not in json.loads(r.data)


def test_huge_count_is_clamped_not_parsed(client):
    r = client.get("/fhir/ResearchStudy?_count=" + "9" * 5000)
    assert r.status_code == 200
    assert "_count=1000" in json.loads(r.data)["link"][0]["url"]


def test_history_offset_beyond_sqlite_integers_is_a_400(client):
    r = client.get("/fhir/ResearchStudy/_history?_offset=99999999999999999999")
    assert r.status_code == 400
    _outcome(r)


def test_version_id_beyond_sqlite_integers_is_not_found(client, auth):
    client.put("/fhir/ResearchStudy/a", data=json.dumps(_study(id="a")), headers=auth)
    r = client.get("/fhir/ResearchStudy/a/_history/99999999999999999999")
    assert r.status_code == 404
    assert _outcome(r) == "ResearchStudy/a has no version '99999999999999999999'"


@pytest.mark.parametrize("vid", ["1" + "0" * 4300, "²", "%D9%A1"])
def test_version_id_werkzeug_int_would_choke_on_is_not_found(client, auth, vid):
    client.put("/fhir/ResearchStudy/a", data=json.dumps(_study(id="a")), headers=auth)
    r = client.get(f"/fhir/ResearchStudy/a/_history/{vid}")
    assert r.status_code == 404
    assert _outcome(r).startswith("ResearchStudy/a has no version '")


def test_version_id_beyond_sqlite_integers_in_a_batch_read_is_not_found(client, auth):
    client.put("/fhir/ResearchStudy/a", data=json.dumps(_study(id="a")), headers=auth)
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "ResearchStudy/a/_history/99999999999999999999"}},
        {"request": {"method": "GET", "url": "ResearchStudy/a/_history/²"}},
        {"request": {"method": "GET", "url": "ResearchStudy/a/_history/1"}}]}
    r = client.post("/fhir", data=json.dumps(bundle), headers=auth)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert [e["response"]["status"][:3] for e in json.loads(r.data)["entry"]] == \
        ["404", "404", "200"]


@pytest.mark.parametrize(("number", "message"), [
    ("9" * 5000, "The body holds an integer of 5000 digits (at most 1000)"),
    ("1e400", "The body holds the number 1e400, beyond the range of a decimal"),
    ("NaN", "The body holds NaN, which is not a JSON number"),
    ("-Infinity", "The body holds -Infinity, which is not a JSON number")])
def test_number_no_fhir_element_can_hold_is_a_400_and_nothing_is_stored(client, auth, number,
                                                                         message):
    body = ('{"resourceType":"ResearchStudy","status":"active","recruitment":'
            '{"targetNumber":' + number + "}}")
    r = client.post("/fhir/ResearchStudy", data=body, headers=auth)
    assert r.status_code == 400
    assert _outcome(r) == message
    assert _total(client) == 0


def test_integer_beyond_float_range_is_not_indexed_but_does_not_crash():
    from fhirtrial.server.searchparams import extract

    rows = extract("R5", {"resourceType": "Location", "position": {
        "latitude": 10 ** 400, "longitude": 1}})
    assert rows.geo == []


# ---------------------------------------------------------------- parameter floods
def test_more_or_values_than_the_limit_is_a_400_naming_it(client):
    values = ",".join(f"s|{i}" for i in range(MAX_VALUES_PER_PARAM + 1))
    r = client.get(f"/fhir/ResearchStudy?identifier={quote(values)}")
    assert r.status_code == 400
    assert _outcome(r) == (f"identifier: {MAX_VALUES_PER_PARAM + 1} values; at most "
                           f"{MAX_VALUES_PER_PARAM} OR-ed values per parameter")


def test_or_values_up_to_the_limit_work(client, auth):
    client.put("/fhir/ResearchStudy/a", data=json.dumps(_study(
        id="a", identifier=[{"system": "s", "value": "77"}])), headers=auth)
    values = ",".join(f"s|{i}" for i in range(MAX_VALUES_PER_PARAM))
    for prefix in ("", "ge", "le"):  # dates OR two index scans per value
        r = client.get(f"/fhir/ResearchStudy?date={prefix}" + ",".join(
            ["2020"] * MAX_VALUES_PER_PARAM))
        assert r.status_code == 200, r.get_data(as_text=True)
    r = client.get(f"/fhir/ResearchStudy?identifier={quote(values)}")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert json.loads(r.data)["total"] == 1


def test_search_post_with_a_thousand_parameters_is_a_400(client):
    form = "&".join(f"title=t{i}" for i in range(1000))
    r = client.post("/fhir/ResearchStudy/_search", data=form,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    assert _outcome(r) == f"1000 search parameters: at most {MAX_CRITERIA} in one search"


def test_search_with_parameters_up_to_the_limit_works(client):
    form = "&".join(f"title=t{i % 3}" for i in range(MAX_CRITERIA))
    r = client.post("/fhir/ResearchStudy/_search", data=form,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.get_data(as_text=True)


@pytest.mark.parametrize(("query", "needle"), [
    ("_sort=" + ",".join(["title"] * 11), "_sort: 11 keys; at most 10"),
    ("&".join(["_include=ResearchStudy:site"] * 21), "21 _include/_revinclude: at most 20"),
    ("&".join(f"title={','.join(['x'] * 100)}" for _ in range(6)),
     "600 search values in all: at most 500 in one search"),
    ("_id=" + ",".join(f"x{i}" for i in range(5000)), "_id: 5000 values")])
def test_other_floods_are_a_400_naming_the_limit(client, query, needle):
    r = client.get(f"/fhir/ResearchStudy?{query}")
    assert r.status_code == 400
    assert needle in _outcome(r)


# ---------------------------------------------------------------- batches and transactions
def test_batch_whose_later_entry_fails_answers_per_entry(client, auth):
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "POST", "url": "ResearchStudy"}, "resource": _study(title="a")},
        {"request": {"method": "POST", "url": "ResearchStudy"},
         "resource": _study(period={"start": "0001-01-01T00:00:00+14:00"})},
        {"request": {"method": "GET", "url": "ResearchStudy?_count=%C2%B2"}},
        {"request": {"method": "PUT", "url": "ResearchStudy/b"}, "resource": _study(id="b")}]}
    r = client.post("/fhir", data=json.dumps(bundle), headers=auth)
    assert r.status_code == 200, r.get_data(as_text=True)
    statuses = [e["response"]["status"][:3] for e in json.loads(r.data)["entry"]]
    assert statuses == ["201", "201", "400", "201"]
    assert _total(client) == 3


def test_batch_entry_that_fails_unexpectedly_is_answered_in_its_place(client, auth,
                                                                      monkeypatch):
    from fhirtrial.server import service

    real = service.create

    def flaky(tx, fv, rtype, resource, **kw):
        if resource.get("title") == "boom":
            raise RuntimeError("a fault of the code, not of the input")
        return real(tx, fv, rtype, resource, **kw)

    monkeypatch.setattr(service, "create", flaky)
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "POST", "url": "ResearchStudy"}, "resource": _study(title="ok")},
        {"request": {"method": "POST", "url": "ResearchStudy"}, "resource": _study(title="boom")},
        {"request": {"method": "POST", "url": "ResearchStudy"},
         "resource": _study(title="ok2")}]}
    r = client.post("/fhir", data=json.dumps(bundle), headers=auth)
    assert r.status_code == 200
    entries = json.loads(r.data)["entry"]
    assert [e["response"]["status"][:3] for e in entries] == ["201", "500", "201"]
    assert entries[1]["response"]["outcome"]["issue"][0]["diagnostics"] == (
        "Internal server error (RuntimeError); this entry was not applied")
    assert "Traceback" not in r.get_data(as_text=True)
    assert _total(client) == 2


def _conditional_pair(kind: str, ident: str) -> list[dict[str, Any]]:
    res = _study(identifier=[{"system": "s", "value": ident}])
    if kind == "create":
        req = {"method": "POST", "url": "ResearchStudy", "ifNoneExist": f"identifier=s|{ident}"}
    else:
        req = {"method": "PUT", "url": f"ResearchStudy?identifier=s|{ident}"}
    return [{"request": req, "resource": res}, {"request": dict(req), "resource": dict(res)}]


@pytest.mark.parametrize("kind", ["create", "update"])
def test_two_conditional_writes_of_one_identifier_in_a_transaction_are_refused(client, auth,
                                                                               kind):
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": _conditional_pair(kind, "dup")}
    r = client.post("/fhir", data=json.dumps(bundle), headers=auth)
    assert r.status_code == 409, r.get_data(as_text=True)
    doc = json.loads(r.data)
    assert doc["issue"][0]["code"] == "duplicate"
    assert "would match more than one ResearchStudy (also written by Bundle.entry[1])" in \
        doc["issue"][0]["diagnostics"]
    assert "Nothing was stored" in doc["issue"][0]["diagnostics"]
    assert _total(client) == 0
    assert _history_total(client) == 0
    # and the identifier still works for a later conditional write
    one = {"resourceType": "Bundle", "type": "transaction",
           "entry": _conditional_pair(kind, "dup")[:1]}
    assert client.post("/fhir", data=json.dumps(one), headers=auth).status_code == 200
    assert client.post("/fhir", data=json.dumps(one), headers=auth).status_code == 200
    assert _total(client, "&identifier=s|dup") == 1


def test_conditional_create_that_a_plain_create_in_the_same_transaction_matches_is_refused(
        client, auth):
    res = _study(identifier=[{"system": "s", "value": "x"}])
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "ResearchStudy"}, "resource": res},
        {"request": {"method": "POST", "url": "ResearchStudy", "ifNoneExist": "identifier=s|x"},
         "resource": res}]}
    r = client.post("/fhir", data=json.dumps(bundle), headers=auth)
    assert r.status_code == 409
    assert _total(client) == 0


def test_batch_with_two_conditional_creates_of_one_identifier_creates_one(client, auth):
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": _conditional_pair("create",
                                                                                     "b")}
    r = client.post("/fhir", data=json.dumps(bundle), headers=auth)
    assert [e["response"]["status"][:3] for e in json.loads(r.data)["entry"]] == ["201", "200"]
    assert _total(client) == 1


# ---------------------------------------------------------------- the landing page
@pytest.mark.parametrize("mount", ["/fhir", "/fhir/R4", "/fhir/R5"])
def test_base_url_in_a_browser_is_the_landing_page(client, auth, mount):
    client.put("/fhir/ResearchStudy/a", data=json.dumps(_study(id="a")), headers=auth)
    r = client.get(mount, headers={"Accept": "text/html"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.content_type.startswith("text/html")
    page = r.get_data(as_text=True)
    if mount == "/fhir/R4":  # the R4 endpoint's resource index
        assert "/fhir/R4/metadata" in page
    else:  # the R5 base in a browser is the trial search people came for (the front page)
        assert "<form" in page
        assert 'name="condition"' in page


def test_every_pages_home_link_leads_to_a_page_that_renders(client, auth):
    client.put("/fhir/ResearchStudy/a", data=json.dumps(_study(id="a")), headers=auth)
    page = client.get("/fhir/ResearchStudy/a", headers={"Accept": "text/html"})
    assert page.status_code == 200
    home = re.search(r'class="brand" href="([^"]+)"', page.get_data(as_text=True))
    assert home, page.get_data(as_text=True)[:500]
    r = client.get(home.group(1), headers={"Accept": "text/html"})
    assert r.status_code == 200
    assert "<form" in r.get_data(as_text=True)
    assert client.get("/fhir", headers={"Accept": "text/html"}).status_code == 200


def test_id_missing_false_finds_every_resource_and_true_none(client, auth):
    # every resource has an id: _id:missing=false is all of them (the string "false" was once
    # taken as true), _id:missing=true none, anything else a 400
    for i in ("a", "b"):
        client.put(f"/fhir/ResearchStudy/{i}", data=json.dumps(_study(id=i)), headers=auth)
    total = lambda q: client.get(f"/fhir/ResearchStudy?{q}&_summary=count").get_json()  # noqa: E731
    assert total("_id:missing=false")["total"] == 2
    assert total("_id:missing=true")["total"] == 0
    r = client.get("/fhir/ResearchStudy?_id:missing=maybe")
    assert r.status_code == 400
