"""Walk the CapabilityStatement and exercise everything it declares: each interaction of each
resource type, each search parameter (a value that must match and one that must not), each
_include and _revinclude, each operation (its definition read, then invoked with inputs built
from that definition). A declared parameter or operation without a case here fails the walk."""

from __future__ import annotations

import json

import pytest

from conftest import WRITE_TOKEN

W = {"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/fhir+json"}
CC = lambda code, text="": {"coding": [{"system": "http://x.org", "code": code}],  # noqa: E731
                            "text": text or code}
URL = "http://example.org/fhir/def"

# one sample per type, written to exercise every parameter of that type
_CANON = {"status": "active", "url": URL, "name": "SampleName", "title": "Sample title",
          "version": "1.0", "date": "2023-05-06", "description": "Sample description",
          "identifier": [{"system": "http://ids", "value": "ID-1"}]}
SAMPLES_R5 = {
    "ResearchStudy": {
        **{k: v for k, v in _CANON.items() if k != "version"}, "version": "1.0",
        "progressStatus": [{"state": CC("recruiting")}], "phase": CC("phase-2"),
        "condition": [CC("D1", "Diabetes")], "keyword": [CC("kw", "keyword")],
        "classifier": [CC("cls")], "studyDesign": [CC("rct")], "region": [CC("US")],
        "focus": [{"concept": CC("drug-a")}], "period": {"start": "2020-01", "end": "2022-06"},
        "site": [{"reference": "Location/loc-1"}], "protocol": [
            {"reference": "PlanDefinition/pd-1"}], "partOf": [{"reference": "ResearchStudy/rs-0"}],
        "recruitment": {"targetNumber": 120, "actualNumber": 80,
                        "eligibility": {"reference": "EvidenceVariable/ev-1"}},
        "comparisonGroup": [{"name": "Arm A", "intendedExposure": [
            {"reference": "EvidenceVariable/ev-1"}]}],
        "associatedParty": [{"name": "Sponsor Org", "role": {"coding": [
            {"system": "http://hl7.org/fhir/research-study-party-role",
             "code": "lead-sponsor"}]}, "party": {"reference": "Organization/org-1"}}]},
    "PlanDefinition": {**_CANON, "type": CC("protocol"), "topic": [CC("topic-a")]},
    "ActivityDefinition": {**_CANON, "topic": [CC("topic-a")]},
    "EvidenceVariable": {**_CANON},
    "Group": {"identifier": _CANON["identifier"], "type": "person", "membership": "definitional",
              "code": CC("grp"), "name": "SampleName", "characteristic": [
                  {"code": CC("age"), "valueCodeableConcept": CC("adult"), "exclude": False}]},
    "Location": {"identifier": _CANON["identifier"], "name": "SampleName", "status": "active",
                 "type": [CC("HOSP")], "address": {"city": "Springfield", "state": "IL",
                                                   "country": "US", "postalCode": "62701"},
                 "managingOrganization": {"reference": "Organization/org-1"},
                 "partOf": {"reference": "Location/loc-0"},
                 "position": {"latitude": 39.78, "longitude": -89.65}},
    "Organization": {"identifier": _CANON["identifier"], "name": "SampleName", "active": True,
                     "type": [CC("prov")], "contact": [{"address": {"city": "Springfield"}}],
                     "partOf": {"reference": "Organization/org-0"}},
    "Practitioner": {"identifier": _CANON["identifier"], "name": [{"family": "SampleName"}],
                     "telecom": [{"system": "email", "value": "a@b.org"}]},
    "Device": {"identifier": _CANON["identifier"], "type": [CC("dev")],
               "name": [{"value": "SampleName", "type": "user-friendly-name"}]},
    "Provenance": {"target": [{"reference": "ResearchStudy/rs-0"}],
                   "recorded": "2023-05-06T10:00:00Z",
                   "agent": [{"who": {"reference": "Organization/org-1"}}]},
    "PractitionerRole": {"identifier": _CANON["identifier"], "code": [CC("PI")],
                         "practitioner": {"reference": "Practitioner/pr-1"},
                         "organization": {"reference": "Organization/org-1"}},
    # patient data (the server can stand in for an EHR's FHIR server for CDS Hooks)
    "Patient": {"identifier": _CANON["identifier"], "name": [{"family": "SampleName"}],
                "birthDate": "1980-01-01", "gender": "female"},
    "Condition": {"clinicalStatus": {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": CC("grp"), "subject": {"reference": "Patient/pat-1"}},
    "Observation": {"status": "final", "code": CC("grp"), "subject": {"reference": "Patient/pat-1"},
                    "effectiveDateTime": "2023-05-06"},
}
SAMPLES_R4 = {
    **SAMPLES_R5,
    "ResearchStudy": {
        "status": "active", "identifier": _CANON["identifier"], "title": "Sample title",
        "category": [CC("cat")], "focus": [CC("drug-a")], "keyword": [CC("kw", "keyword")],
        "location": [CC("US")], "phase": CC("phase-2"), "condition": [CC("D1", "Diabetes")],
        "period": {"start": "2020-01", "end": "2022-06"},
        "site": [{"reference": "Location/loc-1"}],
        "protocol": [{"reference": "PlanDefinition/pd-1"}],
        "partOf": [{"reference": "ResearchStudy/rs-0"}],
        "sponsor": {"reference": "Organization/org-1"},
        "principalInvestigator": {"reference": "Practitioner/pr-1"},
        "enrollment": [{"reference": "Group/grp-1"}]},
    "EvidenceVariable": {k: v for k, v in _CANON.items() if k != "version"} | {
        "characteristic": [{"definitionCodeableConcept": CC("x")}]},
    "Group": {**SAMPLES_R5["Group"], "actual": False},
}
SAMPLES_R4["Group"].pop("membership")
SAMPLES_R4["Basic"] = {"identifier": _CANON["identifier"], "code": CC("grp"),
                       "subject": {"reference": "ResearchStudy/rs-0"}, "created": "2023-05-06",
                       "author": {"reference": "Organization/org-1"}}
SAMPLES_R4["Device"] = {"identifier": _CANON["identifier"], "type": CC("dev"),
                        "deviceName": [{"name": "SampleName", "type": "user-friendly-name"}]}
SAMPLES_R5["Group"]["membership"] = "definitional"
SAMPLES_R4["Organization"] = {**SAMPLES_R5["Organization"], "address": [{"city": "Springfield"}]}
SAMPLES_R4["Organization"].pop("contact")
SAMPLES_R5["Organization"] = {**SAMPLES_R5["Organization"]}

# param -> (value that must match the sample, value that must not)
BY_TYPE = {
    "token": None, "string": ("samplen", "zzz"), "uri": (URL, URL + "x"),
    "date": ("ge2023-01-01", "lt2000"), "number": (None, None),
}
VALUES = {
    "identifier": ("http://ids|ID-1", "http://ids|ID-2"), "status": ("active", "retired"),
    "version": ("1.0", "2.0"), "name": ("samplen", "zzz"), "title": ("sample t", "zzz"),
    "description": ("sample d", "zzz"), "url": (URL, URL + "x"),
    "date": ("ge2019-01-01", "lt2000"), "progress-status-state": ("recruiting", "completed"),
    "phase": ("phase-2", "phase-3"), "condition": ("http://x.org|D1", "D2"),
    "keyword": ("kw", "other"), "classifier": ("cls", "other"), "study-design": ("rct", "x"),
    "region": ("US", "FR"), "focus": ("drug-a", "drug-b"), "site": ("Location/loc-1", "loc-9"),
    "protocol": ("PlanDefinition/pd-1", "pd-9"), "part-of": ("rs-0", "rs-9"),
    "partof": ("rs-0", "rs-9"), "recruitment-target": ("ge100", "lt100"),
    "recruitment-actual": ("80", "81"), "eligibility": ("EvidenceVariable/ev-1", "ev-9"),
    "intended-exposure": ("ev-1", "ev-9"), "sponsor": ("Organization/org-1", "org-9"),
    "party": ("org-1", "org-9"), "party-name": ("sponsor", "zzz"), "type": ("protocol", "x"),
    "topic": ("topic-a", "topic-b"), "code": ("grp", "x"), "characteristic": ("age", "sex"),
    "value": ("adult", "child"), "exclude": ("false", "true"), "address": ("spring", "zzz"),
    "address-city": ("springfield", "zzz"), "address-state": ("il", "zz"),
    "address-country": ("us", "fr"), "address-postalcode": ("627", "999"),
    "organization": ("org-1", "org-9"), "role": ("PI", "RN"),
    "practitioner": ("Practitioner/pr-1", "pr-9"), "device-name": ("samplen", "zzz"),
    "target": ("ResearchStudy/rs-0", "rs-9"), "recorded": ("ge2023-05-06", "lt2023"),
    "agent": ("Organization/org-1", "org-9"), "near": ("39.78|-89.65|5|km", "48.85|2.35|5|km"),
    "active": ("true", "false"), "email": ("a@b.org", "c@d.org"), "category": ("cat", "x"),
    "location": ("US", "FR"), "principalinvestigator": ("Practitioner/pr-1", "pr-9"),
    "enrollment": ("Group/grp-1", "grp-9"), "_id": ("{id}", "nope"),
    "subject": ("ResearchStudy/rs-0", "rs-9"), "created": ("2023-05", "2024"),
    "author": ("Organization/org-1", "org-9"),
    "_lastUpdated": ("ge2000-01-01", "lt2000-01-01"),
    "birthdate": ("1980-01-01", "lt1900"), "gender": ("female", "male"),
    "patient": ("Patient/pat-1", "pat-9"), "clinical-status": ("active", "resolved"),
}
TYPE_VALUES = {("Device", "type"): ("dev", "x"), ("Location", "type"): ("HOSP", "x"),
               ("Organization", "type"): ("prov", "x"),
               ("Group", "type"): ("person", "device"),
               ("Organization", "partof"): ("org-0", "org-9"),
               ("Location", "partof"): ("loc-0", "loc-9"),
               ("Condition", "subject"): ("Patient/pat-1", "pat-9"),
               ("Observation", "subject"): ("Patient/pat-1", "pat-9")}


# operation inputs by type: the data of an adult and a minor, against "Age 18 years or older"
ADULT = {"resourceType": "Bundle", "type": "collection", "entry": [
    {"resource": {"resourceType": "Patient", "id": "p", "birthDate": "1980-01-01"}}]}
MINOR = {"resourceType": "Bundle", "type": "collection", "entry": [
    {"resource": {"resourceType": "Patient", "id": "p", "birthDate": "2015-01-01"}}]}
INPUT_BY_TYPE = {"Bundle": ("resource", ADULT), "date": ("valueDate", "2026-01-01")}
# what each declared operation needs stored first, and what its answer must say
OPERATION_SETUP = {
    ("ResearchStudy", "match"): {"resourceType": "EvidenceVariable", "id": "ev-1",
                                 "status": "active",
                                 "characteristic": [{"description": "Age 18 years or older"}]},
}
OPERATION_SETUP[("ResearchStudy", "evaluate-eligibility")] = OPERATION_SETUP[
    ("ResearchStudy", "match")]
# type-level operations: their inputs (some exclude others, so chosen, not generated) and the
# patient, whose condition is the sample study's
WITH_DIABETES = {**ADULT, "entry": [*ADULT["entry"], {"resource": {
    "resourceType": "Condition", "id": "c", "code": {"text": "Diabetes"},
    "subject": {"reference": "Patient/p"}}}]}
TYPE_OPERATION_INPUTS = {
    ("ResearchStudy", "match"): [
        {"name": "trialMatchClinicalData", "resource": WITH_DIABETES},
        {"name": "recruitmentStatus", "valueString": "all"},
        {"name": "_count", "valueInteger": 5}, {"name": "includeRuledOut", "valueBoolean": True},
        {"name": "as-of", "valueDate": "2026-01-01"}],
}


def _local(url: str) -> str:
    return url.replace("http://localhost", "")


def _exercise_operation(client, mount, rtype, rid, op, declared_types):
    """Read the operation's definition, then call it as the definition says."""
    assert "OperationDefinition" in declared_types, "a definition must be readable"
    od = client.get(_local(op["definition"]))
    assert od.status_code == 200, (op, od.get_data())
    od = od.get_json()
    assert od["resourceType"] == "OperationDefinition"
    assert od["url"] == op["definition"]
    assert rtype in od["resource"]
    if od["type"]:
        _exercise_type_operation(client, mount, rtype, rid, op, od)
        return
    assert od["instance"], "an operation is instance or type level"
    setup = OPERATION_SETUP.get((rtype, op["name"]))
    assert setup is not None, f"{rtype}/${op['name']} is declared but has no conformance case"
    url = f"{mount}/{rtype}/{rid}/${op['name']}"
    params = []
    for p in od["parameter"]:
        if p["use"] == "in":  # every input, optional ones too (as-of: no dates in ADULT)
            key, value = INPUT_BY_TYPE[p["type"]]
            params.append({"name": p["name"], key: value})
    body = {"resourceType": "Parameters", "parameter": params}
    # an operation that changes nothing is a read: no token needed
    headers = {"Content-Type": "application/fhir+json"} if od.get("affectsState") is False else W
    # before the criteria are stored the study cannot be evaluated
    client.delete(f"{mount}/{setup['resourceType']}/{setup['id']}", headers=W)
    r = client.post(url, data=json.dumps(body), headers=headers)
    assert r.status_code == 422, (url, r.get_data())
    assert client.put(f"{mount}/{setup['resourceType']}/{setup['id']}", data=json.dumps(setup),
                      headers=W).status_code in (200, 201)
    r = client.post(url, data=json.dumps(body), headers=headers)
    assert r.status_code == 200, (url, r.get_data())
    out = r.get_json()
    assert out["resourceType"] == "Parameters"
    outs = {p["name"]: p for p in od["parameter"] if p["use"] == "out"}
    got = [p["name"] for p in out["parameter"]]
    assert set(got) <= set(outs), set(got) - set(outs)
    assert all(n in got for n, p in outs.items() if p["min"] >= 1)
    assert {"name": "verdict", "valueCode": "eligible"} in out["parameter"]
    minor = {"resourceType": "Parameters", "parameter": [
        {**p, "resource": MINOR} if p["name"] == "patient-bundle" else p for p in params]}
    r = client.post(url, data=json.dumps(minor), headers=headers)
    assert {"name": "verdict", "valueCode": "not-eligible"} in r.get_json()["parameter"]


def _exercise_type_operation(client, mount, rtype, rid, op, od):
    """A type-level operation with its chosen inputs: a searchset naming the sample."""
    body = {"resourceType": "Parameters",
            "parameter": TYPE_OPERATION_INPUTS[(rtype, op["name"])]}
    names = {p["name"] for p in od["parameter"] if p["use"] == "in"}
    assert {p["name"] for p in body["parameter"]} <= names
    headers = {"Content-Type": "application/fhir+json"} if od.get("affectsState") is False else W
    r = client.post(f"{mount}/{rtype}/${op['name']}", data=json.dumps(body), headers=headers)
    assert r.status_code == 200, r.get_data()
    out = r.get_json()
    assert (out["resourceType"], out["type"]) == ("Bundle", "searchset")
    assert rid in [e["resource"]["id"] for e in out["entry"] if e["search"]["mode"] == "match"]


def _capability(client, mount: str) -> dict:
    cs = client.get(f"{mount}/metadata").get_json()
    assert cs["resourceType"] == "CapabilityStatement"
    return cs


@pytest.mark.parametrize(("mount", "samples"), [("/fhir/R5", SAMPLES_R5),
                                                ("/fhir/R4", SAMPLES_R4)], ids=["R5", "R4"])
def test_every_declared_interaction_and_search_parameter_works(client, mount, samples):
    cs = _capability(client, mount)
    rest = cs["rest"][0]
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch"}
    declared_types = {r["type"] for r in rest["resource"]}
    read_only = {r["type"] for r in rest["resource"]
                 if {i["code"] for i in r["interaction"]} == {"read"}}
    assert declared_types - read_only == set(samples), "every declared type needs a sample"
    operations = 0
    for res in rest["resource"]:
        rtype = res["type"]
        base = f"{mount}/{rtype}"
        inter = {i["code"] for i in res["interaction"]}
        if rtype in read_only:  # served, not stored: read what the statement points at
            canon = [op["definition"] for r in rest["resource"] for op in r.get("operation", [])]
            assert canon, f"{rtype} is declared read-only but nothing refers to one"
            for url in canon:
                got = client.get(_local(url))
                assert got.status_code == 200
                assert got.get_json()["resourceType"] == rtype
            continue
        sample = {"resourceType": rtype, **samples[rtype]}
        # create / read / update / vread / history / search / delete, as declared
        assert "create" in inter
        r = client.post(base, data=json.dumps(sample), headers=W)
        assert r.status_code == 201, (rtype, r.get_data())
        rid = r.get_json()["id"]
        assert client.get(f"{base}/{rid}").get_json()["resourceType"] == rtype
        assert "update" in inter
        changed = {**sample, "id": rid, "language": "en"}
        put = client.put(f"{base}/{rid}", data=json.dumps(changed), headers=W)
        assert put.status_code == 200
        assert put.get_json()["meta"]["versionId"] == "2"
        # the same content again is no new version (the current one answers)
        again = client.put(f"{base}/{rid}", data=json.dumps(changed), headers=W)
        assert again.status_code == 200
        assert again.get_json()["meta"] == put.get_json()["meta"]
        assert client.get(f"{base}/{rid}/_history/1").status_code == 200  # vread
        assert client.get(f"{base}/{rid}/_history").get_json()["total"] == 2
        assert client.get(f"{base}/_history").get_json()["total"] >= 2
        for p in res["searchParam"]:
            name = p["name"]
            pair = TYPE_VALUES.get((rtype, name)) or VALUES.get(name)
            assert pair is not None, f"{rtype}.{name} is declared but has no conformance case"
            hit, miss = (v.replace("{id}", rid) for v in pair)
            got = client.get(base, query_string={name: hit, "_count": "50"}).get_json()
            assert got["resourceType"] == "Bundle", (rtype, name, got)
            assert rid in [e["resource"]["id"] for e in got.get("entry", [])], (rtype, name, hit)
            got = client.get(base, query_string={name: miss}).get_json()
            assert rid not in [e["resource"]["id"] for e in got.get("entry", [])], (rtype, name)
        for inc in res["searchInclude"]:
            got = client.get(base, query_string={"_id": rid, "_include": inc})
            assert got.status_code == 200, (inc, got.get_data())
        for rev in res["searchRevInclude"]:
            got = client.get(base, query_string={"_id": rid, "_revinclude": rev})
            assert got.status_code == 200, (rev, got.get_data())
        for op in res.get("operation", []):
            _exercise_operation(client, mount, rtype, rid, op, declared_types)
            operations += 1
        assert "delete" in inter
        assert client.delete(f"{base}/{rid}", headers=W).status_code == 200
        assert client.get(f"{base}/{rid}").status_code == 410
    assert operations == sum(len(r.get("operation", [])) for r in rest["resource"])


def test_declared_include_returns_the_referenced_resource(client):
    client.put("/fhir/Location/loc-1", data=json.dumps(
        {"resourceType": "Location", "id": "loc-1", "name": "L"}), headers=W)
    client.put("/fhir/ResearchStudy/rs-1", data=json.dumps(
        {"resourceType": "ResearchStudy", "id": "rs-1", "status": "active",
         "site": [{"reference": "Location/loc-1"}]}), headers=W)
    cs = _capability(client, "/fhir")
    rs = next(r for r in cs["rest"][0]["resource"] if r["type"] == "ResearchStudy")
    assert "ResearchStudy:site" in rs["searchInclude"]
    loc = next(r for r in cs["rest"][0]["resource"] if r["type"] == "Location")
    assert "ResearchStudy:site" in loc["searchRevInclude"]
    b = client.get("/fhir/Location?_id=loc-1&_revinclude=ResearchStudy:site").get_json()
    assert sorted(e["resource"]["id"] for e in b["entry"]) == ["loc-1", "rs-1"]
