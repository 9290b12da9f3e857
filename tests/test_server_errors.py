"""Every bad request gets the right status and a whole OperationOutcome, and leaves the store
exactly as it was (the SQLite file is compared table by table)."""

from __future__ import annotations

import json

import pytest

from conftest import READ_TOKEN, WRITE_TOKEN, store_rows

FHIR_JSON = "application/fhir+json"
W = {"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": FHIR_JSON}
EXISTING = {"resourceType": "ResearchStudy", "id": "s1", "status": "active", "title": "Kept"}


def snapshot(app) -> dict[str, list]:
    return store_rows(app)


def _study(**kw):
    return json.dumps({**EXISTING, **kw})


CASES = [
    # (id, method, url, body, headers, status, issue code, diagnostics fragment)
    ("malformed-json", "PUT", "/fhir/ResearchStudy/s1", b'{"resourceType": "Research', W,
     400, "invalid", "not valid JSON at line 1"),
    ("json-not-object", "POST", "/fhir/ResearchStudy", b"[1, 2]", W, 400, "invalid",
     "not a JSON object"),
    ("wrong-resource-type", "PUT", "/fhir/ResearchStudy/s1",
     json.dumps({"resourceType": "Location", "id": "s1"}), W, 400, "invalid",
     "resourceType 'Location' in the body does not match ResearchStudy"),
    ("id-mismatch", "PUT", "/fhir/ResearchStudy/s1", _study(id="s2"), W, 400, "invalid",
     "id 's2' in the body does not match 's1'"),
    ("update-without-id", "PUT", "/fhir/ResearchStudy/s1",
     json.dumps({"resourceType": "ResearchStudy", "status": "active"}), W, 400, "invalid",
     "must carry the resource's id"),
    ("invalid-element", "PUT", "/fhir/ResearchStudy/s1", _study(title=["x"]), W, 422,
     "invalid", "failed validation"),
    ("unknown-element", "POST", "/fhir/ResearchStudy", _study(colour="blue"), W, 422,
     "invalid", "failed validation"),
    ("huge-body", "POST", "/fhir/ResearchStudy",
     _study(description="x" * (3 * 1024 * 1024)), W, 413, "too-costly", "larger than"),
    ("xml-body", "POST", "/fhir/ResearchStudy", b"<ResearchStudy/>",
     {**W, "Content-Type": "application/fhir+xml"}, 415, "not-supported",
     "'application/fhir+xml' is not supported"),
    ("missing-token", "PUT", "/fhir/ResearchStudy/s1", _study(title="x"),
     {"Content-Type": FHIR_JSON}, 401, "login", "bearer token is required"),
    ("wrong-token", "PUT", "/fhir/ResearchStudy/s1", _study(title="x"),
     {**W, "Authorization": "Bearer nope"}, 401, "login", "not valid"),
    ("read-only-token", "DELETE", "/fhir/ResearchStudy/s1", None,
     {"Authorization": f"Bearer {READ_TOKEN}"}, 403, "forbidden", "may read but not write"),
    ("stale-if-match", "PUT", "/fhir/ResearchStudy/s1", _study(title="x"),
     {**W, "If-Match": 'W/"9"'}, 412, "conflict", "does not match the current version 1"),
    ("unknown-type", "GET", "/fhir/Spaceship/1", None, {}, 404, "not-found",
     "Unknown resource type 'Spaceship'"),
    ("unsupported-type", "POST", "/fhir/Medication", json.dumps({"resourceType": "Medication"}),
     W, 404, "not-supported", "Medication is not supported"),
    ("no-such-resource", "GET", "/fhir/ResearchStudy/nope", None, {}, 404, "not-found",
     "ResearchStudy/nope is not known"),
    ("no-route", "GET", "/elsewhere", None, {}, 404, "not-found", "No FHIR endpoint"),
    ("method-not-allowed", "PATCH", "/fhir/ResearchStudy/s1", _study(), W, 405,
     "not-supported", "PATCH is not allowed"),
    ("xml-only-accept", "GET", "/fhir/ResearchStudy/s1", None,
     {"Accept": "application/fhir+xml"}, 406, "not-supported", "speaks application/fhir+json"),
    ("bad-date", "GET", "/fhir/ResearchStudy?date=ge2020-13-45", None, {}, 400, "invalid",
     "not a FHIR date"),
    ("bad-number", "GET", "/fhir/ResearchStudy?recruitment-target=lots", None, {}, 400,
     "invalid", "not a number"),
    ("bad-modifier", "GET", "/fhir/ResearchStudy?title:below=x", None, {}, 400, "invalid",
     "Modifier :below is not supported"),
    ("bad-count", "GET", "/fhir/ResearchStudy?_count=-1", None, {}, 400, "invalid",
     "non-negative integer"),
    ("bad-include", "GET", "/fhir/ResearchStudy?_include=ResearchStudy:title", None, {}, 400,
     "invalid", "has no reference parameter 'title'"),
    ("strict-unknown-param", "GET", "/fhir/ResearchStudy?colour=blue", None,
     {"Prefer": "handling=strict"}, 400, "invalid", "Unknown search parameter 'colour'"),
    ("bad-near", "GET", "/fhir/Location?near=91|0|10|km", None, {}, 400, "invalid",
     "out of range"),
    ("bundle-wrong-type", "POST", "/fhir",
     json.dumps({"resourceType": "Bundle", "type": "collection"}), W, 400, "invalid",
     "expected transaction or batch"),
    ("transaction-dangling-urn", "POST", "/fhir", json.dumps({
        "resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {**EXISTING, "title": "changed",
                          "site": [{"reference": "urn:uuid:0000"}]},
             "request": {"method": "PUT", "url": "ResearchStudy/s1"}}]}), W, 400, "invalid",
     "names no entry of this transaction"),
    ("conditional-update-ambiguous", "PUT", "/fhir/ResearchStudy?status=active",
     json.dumps({"resourceType": "ResearchStudy", "status": "active"}), W, 412, "conflict",
     "matches more than one"),
]


@pytest.mark.parametrize(("method", "url", "body", "headers", "status", "code", "fragment"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_request_gets_status_and_outcome_and_store_is_unchanged(
        app, client, method, url, body, headers, status, code, fragment):
    assert client.put("/fhir/ResearchStudy/s1", data=json.dumps(EXISTING), headers=W
                      ).status_code == 201
    assert client.put("/fhir/ResearchStudy/s2", data=_study(id="s2"), headers=W
                      ).status_code == 201
    before = snapshot(app)
    r = client.open(url, method=method, data=body, headers=headers)
    assert r.status_code == status, r.get_data()
    assert r.headers["Content-Type"].startswith(FHIR_JSON)
    oo = r.get_json()
    assert oo["resourceType"] == "OperationOutcome"
    assert oo["issue"][0]["severity"] == "error"
    assert oo["issue"][0]["code"] == code
    assert fragment in oo["issue"][0]["diagnostics"]
    if status == 401:
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert snapshot(app) == before


def test_validation_outcome_lists_each_finding_with_its_path(client):
    bad = {"resourceType": "ResearchStudy", "id": "s9", "status": "active", "title": 5,
           "colour": "blue"}
    r = client.put("/fhir/ResearchStudy/s9", data=json.dumps(bad), headers=W)
    assert r.status_code == 422
    issues = r.get_json()["issue"]
    paths = sorted(tuple(i.get("expression", [])) for i in issues[1:])
    assert paths == [("ResearchStudy.colour",), ("ResearchStudy.title",)]
    assert {i["code"] for i in issues[1:]} == {"structure", "value"}


def test_unknown_search_parameter_is_ignored_and_reported_when_lenient(client):
    client.put("/fhir/ResearchStudy/s1", data=json.dumps(EXISTING), headers=W)
    out = client.get("/fhir/ResearchStudy?colour=blue").get_json()
    assert out["total"] == 1
    assert "colour" not in out["link"][0]["url"]
    outcome = [e for e in out["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome[0]["resource"]["issue"][0]["diagnostics"] == \
        "Search parameter 'colour' is not supported and was ignored"
