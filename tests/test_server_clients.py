"""Real, unmodified FHIR clients (fhirpy, fhirclient) against the server on 127.0.0.1."""

from __future__ import annotations

import pytest

from conftest import WRITE_TOKEN

PHASE = "http://hl7.org/fhir/research-study-phase"


def r5_study(i: int, phase: str) -> dict:
    return {"resourceType": "ResearchStudy", "id": f"NCT{i:08d}", "status": "active",
            "title": f"Trial {i}", "phase": {"coding": [{"system": PHASE, "code": phase}]},
            "site": [{"reference": f"Location/site-{i % 2}"}]}


@pytest.fixture
def fhirpy_client(live_server):
    from fhirpy import SyncFHIRClient

    return SyncFHIRClient(live_server, authorization=f"Bearer {WRITE_TOKEN}")


def test_fhirpy_create_read_update_search_paging_and_include(fhirpy_client):
    c = fhirpy_client
    for i in range(2):
        c.resource("Location", id=f"site-{i}", name=f"Site {i}").save()
    for i in range(5):
        c.resource("ResearchStudy", **{k: v for k, v in r5_study(i, "phase-2" if i % 2 else
                                                               "phase-3").items()
                                       if k != "resourceType"}).save()
    created = c.resource("ResearchStudy", status="active", title="Server-assigned")
    created.save()
    assert created.id
    assert created["meta"]["versionId"] == "1"

    got = c.reference("ResearchStudy", "NCT00000003").to_resource()
    assert got["title"] == "Trial 3"
    got["title"] = "Trial 3, amended"
    got.save()
    assert c.reference("ResearchStudy", "NCT00000003").to_resource()["meta"]["versionId"] == "2"

    # fetch_all follows the server's next links: 3 pages of 1 for the phase-3 studies
    phase3 = c.resources("ResearchStudy").search(phase="phase-3").limit(1).fetch_all()
    assert sorted(r.id for r in phase3) == ["NCT00000000", "NCT00000002", "NCT00000004"]

    raw = (c.resources("ResearchStudy").search(phase="phase-2")
           .include("ResearchStudy", "site").fetch_raw())
    kinds = sorted((e["resource"]["resourceType"], e["resource"]["id"]) for e in raw["entry"])
    assert kinds == [("Location", "site-1"), ("ResearchStudy", "NCT00000001"),
                     ("ResearchStudy", "NCT00000003")]
    titled = c.resources("ResearchStudy").search(title="trial 3").fetch()
    assert [r["title"] for r in titled] == ["Trial 3, amended"]


def test_fhirpy_transaction_bundle(fhirpy_client):
    loc = "urn:uuid:aaaaaaaa-0000-5000-8000-000000000001"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": loc, "resource": {"resourceType": "Location", "name": "Tx site"},
         "request": {"method": "POST", "url": "Location"}},
        {"resource": {"resourceType": "ResearchStudy", "id": "NCT99999999", "status": "active",
                      "site": [{"reference": loc}]},
         "request": {"method": "PUT", "url": "ResearchStudy/NCT99999999"}}]}
    resp = fhirpy_client.execute("", method="post", data=bundle)
    assert resp["type"] == "transaction-response"
    site_ref = fhirpy_client.reference("ResearchStudy", "NCT99999999").to_resource()["site"][0]
    assert site_ref["reference"] == resp["entry"][0]["response"]["location"].rsplit(
        "/_history", 1)[0]
    assert fhirpy_client.reference(reference=site_ref["reference"]).to_resource()["name"] == \
        "Tx site"


def test_fhirclient_r4_read_search_paging_include_create_update_transaction(live_server):
    from fhirclient import client as fc
    from fhirclient.models import bundle as fbundle
    from fhirclient.models import location as flocation
    from fhirclient.models import researchstudy as frs

    smart = fc.FHIRClient(settings={"app_id": "fhirtrial-test",
                                    "api_base": f"{live_server}/R4/"})
    smart.server.session.headers["Authorization"] = f"Bearer {WRITE_TOKEN}"
    server = smart.server

    site = flocation.Location({"name": "Clinic", "status": "active"})
    made = site.create(server)
    site_id = made["id"]
    for i in range(4):
        rs = frs.ResearchStudy({"status": "active" if i % 2 else "completed",
                                "title": f"R4 trial {i}",
                                "site": [{"reference": f"Location/{site_id}"}]})
        rs.id = f"r4-{i}"
        rs.update(server)  # PUT with a client id: update-as-create
    got = frs.ResearchStudy.read("r4-2", server)
    assert got.title == "R4 trial 2"
    assert got.status == "completed"
    got.title = "R4 trial 2 (amended)"
    got.update(server)
    assert frs.ResearchStudy.read("r4-2", server).meta.versionId == "2"

    search = frs.ResearchStudy.where({"status": "completed", "_count": "1"})
    found = [r.id for r in search.perform_resources_iter(server)]  # follows next links
    assert sorted(found) == ["r4-0", "r4-2"]

    inc = next(iter(frs.ResearchStudy.where({"_id": "r4-1", "_include": "ResearchStudy:site"}
                                            ).perform_iter(server)))
    assert sorted(e.resource.resource_type for e in inc.entry) == ["Location", "ResearchStudy"]

    tx = fbundle.Bundle({"type": "transaction", "entry": [
        {"resource": {"resourceType": "ResearchStudy", "id": "r4-tx", "status": "active"},
         "request": {"method": "PUT", "url": "ResearchStudy/r4-tx"}},
        {"request": {"method": "DELETE", "url": "ResearchStudy/r4-3"}}]})
    resp = server.post_json("", tx.as_json()).json()
    assert [e["response"]["status"] for e in resp["entry"]] == ["201 Created", "200 OK"]
    assert frs.ResearchStudy.read("r4-tx", server).status == "active"
    with pytest.raises(Exception, match="410"):
        frs.ResearchStudy.read("r4-3", server)
