"""REST interactions of the FHIR server: read, vread, history, create, update, delete,
conditional writes, transaction/batch, ETags and Prefer, formats, CORS, the R4 mount."""

from __future__ import annotations

import json
from html import escape

from conftest import FHIR_EXAMPLES, READ_TOKEN, WRITE_TOKEN, needs_shared

FHIR_JSON = "application/fhir+json"


def study(sid: str | None = None, **extra) -> dict:
    res = {"resourceType": "ResearchStudy", "status": "active", "title": "Aspirin after stroke",
           **extra}
    if sid:
        res["id"] = sid
    return res


def put(client, auth, res, **headers):
    return client.put(f"/fhir/{res['resourceType']}/{res['id']}", data=json.dumps(res),
                      headers={**auth, **headers})


def test_create_assigns_id_version_and_location(client, auth):
    r = client.post("/fhir/ResearchStudy", data=json.dumps(study()), headers=auth)
    assert r.status_code == 201
    body = r.get_json()
    assert body["meta"]["versionId"] == "1"
    assert r.headers["ETag"] == 'W/"1"'
    assert r.headers["Location"] == f"http://localhost/fhir/ResearchStudy/{body['id']}/_history/1"
    assert r.headers["Content-Type"].startswith(FHIR_JSON)
    got = client.get(f"/fhir/ResearchStudy/{body['id']}").get_json()
    assert got["title"] == "Aspirin after stroke"
    assert got["meta"]["lastUpdated"] == body["meta"]["lastUpdated"]


def test_update_as_create_keeps_client_id_then_update_bumps_version(client, auth):
    r1 = put(client, auth, study("NCT00000001"))
    assert r1.status_code == 201
    r2 = put(client, auth, study("NCT00000001", title="Renamed"))
    assert r2.status_code == 200
    assert r2.get_json()["meta"]["versionId"] == "2"
    assert client.get("/fhir/ResearchStudy/NCT00000001/_history/1").get_json()["title"] == \
        "Aspirin after stroke"
    assert client.get("/fhir/ResearchStudy/NCT00000001").get_json()["title"] == "Renamed"


def test_delete_then_read_is_gone_and_history_keeps_all_versions(client, auth):
    put(client, auth, study("s1"))
    put(client, auth, study("s1", title="v2"))
    d = client.delete("/fhir/ResearchStudy/s1", headers=auth)
    assert d.status_code == 200
    assert d.get_json()["resourceType"] == "OperationOutcome"
    gone = client.get("/fhir/ResearchStudy/s1")
    assert gone.status_code == 410
    assert gone.get_json()["issue"][0]["code"] == "deleted"
    hist = client.get("/fhir/ResearchStudy/s1/_history").get_json()
    assert hist["type"] == "history"
    assert hist["total"] == 3
    assert [e["request"]["method"] for e in hist["entry"]] == ["DELETE", "PUT", "PUT"]
    assert "resource" not in hist["entry"][0]
    # update after delete recreates it (201) with the next version
    again = put(client, auth, study("s1", title="back"))
    assert again.status_code == 201
    assert again.get_json()["meta"]["versionId"] == "4"


def test_type_history_lists_versions_of_every_resource(client, auth):
    put(client, auth, study("a"))
    put(client, auth, study("b"))
    put(client, auth, study("a", title="a2"))
    hist = client.get("/fhir/ResearchStudy/_history").get_json()
    assert hist["total"] == 3
    assert sorted((e["resource"]["id"], e["resource"]["meta"]["versionId"])
                  for e in hist["entry"]) == [("a", "1"), ("a", "2"), ("b", "1")]


def test_if_match_mismatch_is_412_and_changes_nothing(client, auth):
    put(client, auth, study("s1"))
    r = put(client, auth, study("s1", title="lost update"), **{"If-Match": 'W/"7"'})
    assert r.status_code == 412
    assert r.get_json()["issue"][0]["severity"] == "error"
    assert client.get("/fhir/ResearchStudy/s1").get_json()["title"] == "Aspirin after stroke"
    ok = put(client, auth, study("s1", title="ok"), **{"If-Match": 'W/"1"'})
    assert ok.status_code == 200


def test_if_none_match_current_version_is_304(client, auth):
    put(client, auth, study("s1"))
    r = client.get("/fhir/ResearchStudy/s1", headers={"If-None-Match": 'W/"1"'})
    assert r.status_code == 304
    assert r.get_data() == b""
    assert r.headers["ETag"] == 'W/"1"'
    full = client.get("/fhir/ResearchStudy/s1", headers={"If-None-Match": 'W/"0"'})
    assert full.status_code == 200
    assert full.headers["Last-Modified"].endswith(" GMT")


def test_conditional_create_returns_existing_match_without_writing(client, auth):
    ident = {"system": "http://clinicaltrials.gov", "value": "NCT01234567"}
    first = client.post("/fhir/ResearchStudy", data=json.dumps(study(identifier=[ident])),
                        headers={**auth, "If-None-Exist":
                                 "identifier=http://clinicaltrials.gov|NCT01234567"})
    assert first.status_code == 201
    second = client.post("/fhir/ResearchStudy", data=json.dumps(study(identifier=[ident])),
                         headers={**auth, "If-None-Exist":
                                  "identifier=http://clinicaltrials.gov|NCT01234567"})
    assert second.status_code == 200
    assert second.get_json()["id"] == first.get_json()["id"]
    assert client.get("/fhir/ResearchStudy?_summary=count").get_json()["total"] == 1


def test_conditional_update_by_identifier_creates_then_updates(client, auth):
    ident = {"system": "http://clinicaltrials.gov", "value": "NCT07654321"}
    url = "/fhir/ResearchStudy?identifier=http://clinicaltrials.gov|NCT07654321"
    r1 = client.put(url, data=json.dumps(study(identifier=[ident])), headers=auth)
    assert r1.status_code == 201
    r2 = client.put(url, data=json.dumps(study(identifier=[ident], title="T2")), headers=auth)
    assert r2.status_code == 200
    assert r2.get_json()["id"] == r1.get_json()["id"]
    assert r2.get_json()["meta"]["versionId"] == "2"


def test_prefer_return_minimal_and_operation_outcome(client, auth):
    r = client.post("/fhir/ResearchStudy", data=json.dumps(study()),
                    headers={**auth, "Prefer": "return=minimal"})
    assert r.status_code == 201
    assert r.get_data() == b""
    assert "Location" in r.headers
    r = client.post("/fhir/ResearchStudy", data=json.dumps(study()),
                    headers={**auth, "Prefer": "return=OperationOutcome"})
    assert r.get_json()["resourceType"] == "OperationOutcome"
    assert "created" in r.get_json()["issue"][0]["diagnostics"]


def test_transaction_rewrites_urn_uuid_references_and_commits_all(client, auth):
    loc, org = "urn:uuid:11111111-1111-5111-8111-111111111111", \
        "urn:uuid:22222222-2222-5222-8222-222222222222"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:33333333-3333-5333-8333-333333333333",
         "resource": study("NCT00000009", site=[{"reference": loc}],
                           associatedParty=[{"role": {"coding": [{
                               "system": "http://hl7.org/fhir/research-study-party-role",
                               "code": "lead-sponsor"}]}, "party": {"reference": org}}]),
         "request": {"method": "PUT", "url": "ResearchStudy/NCT00000009"}},
        {"fullUrl": loc, "resource": {"resourceType": "Location", "name": "Site A"},
         "request": {"method": "POST", "url": "Location"}},
        {"fullUrl": org, "resource": {"resourceType": "Organization", "id": "org-1",
                                      "name": "Sponsor Inc"},
         "request": {"method": "PUT", "url": "Organization/org-1"}},
    ]}
    r = client.post("/fhir", data=json.dumps(bundle), headers=auth)
    assert r.status_code == 200, r.get_data()
    out = r.get_json()
    assert out["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in out["entry"]]
    assert statuses == ["201 Created", "201 Created", "201 Created"]
    loc_id = out["entry"][1]["response"]["location"].split("/")[1]
    rs = client.get("/fhir/ResearchStudy/NCT00000009").get_json()
    assert rs["site"] == [{"reference": f"Location/{loc_id}"}]
    assert rs["associatedParty"][0]["party"] == {"reference": "Organization/org-1"}
    found = client.get("/fhir/ResearchStudy?sponsor=Organization/org-1").get_json()
    assert [e["resource"]["id"] for e in found["entry"]] == ["NCT00000009"]


def test_transaction_with_one_bad_entry_writes_nothing(client, auth):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": study("good"), "request": {"method": "PUT", "url": "ResearchStudy/good"}},
        {"resource": {"resourceType": "ResearchStudy", "status": "active", "title": 42},
         "request": {"method": "POST", "url": "ResearchStudy"}},
    ]}
    r = client.post("/fhir", data=json.dumps(bundle), headers=auth)
    assert r.status_code == 422
    assert "Bundle.entry[1]" in r.get_json()["issue"][0]["diagnostics"]
    assert client.get("/fhir/ResearchStudy/good").status_code == 404


def test_batch_entries_succeed_or_fail_on_their_own(client, auth):
    put(client, auth, study("exists"))
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "ResearchStudy/exists"}},
        {"request": {"method": "GET", "url": "ResearchStudy/missing"}},
        {"resource": study("new"), "request": {"method": "PUT", "url": "ResearchStudy/new"}},
    ]}
    out = client.post("/fhir", data=json.dumps(bundle), headers=auth).get_json()
    assert out["type"] == "batch-response"
    assert out["entry"][0]["resource"]["id"] == "exists"
    assert out["entry"][1]["response"]["status"] == "404"
    assert out["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert out["entry"][2]["response"]["status"] == "201 Created"
    assert client.get("/fhir/ResearchStudy/new").status_code == 200


def test_pretty_and_format_parameters(client, auth):
    put(client, auth, study("s1"))
    compact = client.get("/fhir/ResearchStudy/s1").get_data()
    pretty = client.get("/fhir/ResearchStudy/s1?_pretty=true").get_data()
    assert b"\n" not in compact
    assert b'\n  "resourceType"' in pretty
    assert json.loads(compact) == json.loads(pretty)
    assert client.get("/fhir/ResearchStudy/s1?_format=json").status_code == 200
    assert client.get("/fhir/ResearchStudy/s1?_format=xml").status_code == 406


@needs_shared
def test_browser_gets_html_with_sandboxed_narrative_and_links(client, auth):
    res = json.loads((FHIR_EXAMPLES / "r5" / "ResearchStudy-example-ctgov-study-record.json")
                     .read_text())
    assert put(client, auth, res).status_code == 201
    r = client.get(f"/fhir/ResearchStudy/{res['id']}",
                   headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    page = r.get_data(as_text=True)
    # an R5 ResearchStudy is shown as its study page, built from its data: the stored XHTML
    # is not put into the page at all
    assert "<h1>" + escape(res["title"], quote=False) + "</h1>" in page
    assert "Raw FHIR JSON" in page
    assert "<iframe" not in page
    # any other resource: its narrative in a sandboxed frame, its JSON with links
    loc = {"resourceType": "Location", "id": "loc-1", "name": "A site", "text": {
        "status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">A site</div>'}}
    assert put(client, auth, loc).status_code == 201
    page = client.get("/fhir/Location/loc-1", headers={"Accept": "text/html"}).get_data(
        as_text=True)
    assert "<iframe sandbox=''" in page
    listing = client.get("/fhir/ResearchStudy", headers={"Accept": "text/html"}).get_data(
        as_text=True)
    assert f"href='http://localhost/fhir/ResearchStudy/{res['id']}'" in listing


def test_cors_preflight_and_exposed_headers(client):
    r = client.options("/fhir/ResearchStudy", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    g = client.get("/fhir/metadata", headers={"Origin": "https://app.example"})
    assert "ETag" in g.headers["Access-Control-Expose-Headers"]


def test_read_token_cannot_write_and_reads_can_be_protected(tmp_path):
    from fhirtrial.server import create_app

    app = create_app({"DB": str(tmp_path / "p.sqlite"), "READ_AUTH": True,
                      "TOKENS": f"{WRITE_TOKEN},{READ_TOKEN}:read"})
    c = app.test_client()
    assert c.get("/fhir/ResearchStudy").status_code == 401
    assert c.get("/fhir/ResearchStudy", headers={"Authorization": f"Bearer {READ_TOKEN}"}
                 ).status_code == 200
    r = c.post("/fhir/ResearchStudy", data=json.dumps(study()),
               headers={"Authorization": f"Bearer {READ_TOKEN}", "Content-Type": FHIR_JSON})
    assert r.status_code == 403
    assert r.get_json()["issue"][0]["code"] == "forbidden"


def test_r4_mount_serves_what_was_stored_for_r4_only(client, auth):
    r4 = {"resourceType": "ResearchStudy", "id": "r4only", "status": "active",
          "title": "R4 study"}
    assert client.put("/fhir/R4/ResearchStudy/r4only", data=json.dumps(r4), headers=auth
                      ).status_code == 201
    assert client.get("/fhir/R4/ResearchStudy/r4only").get_json()["title"] == "R4 study"
    assert client.get("/fhir/ResearchStudy/r4only").status_code == 404
    assert client.get("/fhir/R5/ResearchStudy/r4only").status_code == 404
    assert client.get("/fhir/R4/metadata").get_json()["fhirVersion"] == "4.0.1"
    # R4's ResearchStudy.sponsor element is valid there and unknown to R5
    r4["sponsor"] = {"reference": "Organization/o1"}
    assert client.put("/fhir/R4/ResearchStudy/r4only", data=json.dumps(r4), headers=auth
                      ).status_code == 200
    assert client.put("/fhir/R5/ResearchStudy/r4only", data=json.dumps(r4), headers=auth
                      ).status_code == 422


def test_r4_mount_takes_basic_the_r4_writer_uses_for_r5_only_resources(client, auth):
    # R4 has no EvidenceVariable of the R5 shape: outcome measures travel as Basic with
    # cross-version extensions, pushed by conditional update on their identifier
    ident = {"system": "urn:ietf:rfc:3986", "value": "urn:fhirtrial:Basic/NCT1-outcome-1"}
    basic = {"resourceType": "Basic", "identifier": [ident],
             "code": {"coding": [{"system": "http://hl7.org/fhir/fhir-types",
                                  "code": "EvidenceVariable"}]}}
    url = "/fhir/R4/Basic?identifier=urn:ietf:rfc:3986|urn:fhirtrial:Basic/NCT1-outcome-1"
    assert client.put(url, data=json.dumps(basic), headers=auth).status_code == 201
    found = client.get(url).get_json()
    assert [e["resource"]["identifier"] for e in found["entry"]] == [[ident]]
    assert client.get("/fhir/R4/Basic?code=EvidenceVariable").get_json()["total"] == 1
    declared = {r["type"]: r for r in client.get("/fhir/R4/metadata").get_json()["rest"][0][
        "resource"]}
    assert declared["Basic"]["conditionalUpdate"] is True
    assert "identifier" in {p["name"] for p in declared["Basic"]["searchParam"]}


def test_transaction_reference_rewrite_on_bytes_matches_the_walk():
    """bundles._resolved rewrites references on orjson's bytes: the same resources as the
    Python walk (_rewritten) for every shape a reference takes, the same refusal of a
    ``urn:`` naming no entry, and the walk itself where the bytes cannot be trusted."""
    import pytest

    from fhirtrial.server.bundles import _resolved, _rewritten
    from fhirtrial.server.service import BadRequest

    idmap = {"urn:uuid:a": "Location/1", "http://x.org/Organization/o": "Organization/o",
             "urn:uuid:é": "Group/é"}
    cases = [
        {"resourceType": "ResearchStudy", "id": "s", "title": 'say "reference":"urn:uuid:b"'},
        {"resourceType": "ResearchStudy", "site": [{"reference": "urn:uuid:a"},
                                                   {"reference": "Location/9"}],
         "associatedParty": [{"party": {"reference": "http://x.org/Organization/o"}}],
         "focus": [{"reference": {"reference": "urn:uuid:é"}}], "n": 1.5e-7, "b": True},
        {"resourceType": "Basic", "extension": [{"valueReference": {"reference": "urn:uuid:a",
                                                                    "display": "a\\b\"c"}}]},
        {"resourceType": "Basic", "x": {"reference": "a\\\"b"}, "y": {"reference": "urn:uuid:a"}},
        {"resourceType": "Basic", "x": float("nan"), "y": {"reference": "urn:uuid:a"}},
        {"resourceType": "Basic", "x": 2 ** 70, "y": {"reference": "urn:uuid:a"}},
        {"resourceType": "Basic", "x": None, "y": [{"reference": "urn:uuid:a"}, None]},
    ]
    for res in cases:
        got, want = _resolved(res, idmap), _rewritten(res, idmap)
        assert json.dumps(got) == json.dumps(want)
        assert got is not res
    for res in ({"resourceType": "Basic", "y": {"reference": "urn:uuid:nope"}},
                {"resourceType": "Basic", "y": {"reference": "urn:oid:1.2"}}):
        for ids in (idmap, {}):
            with pytest.raises(BadRequest, match="names no entry"):
                _resolved(res, ids)
    # nothing to rewrite: a new top-level object (the writer sets id and meta on it)
    res = {"resourceType": "Basic", "y": {"reference": "Basic/1"}}
    got = _resolved(res, {})
    assert got == res
    assert got is not res
