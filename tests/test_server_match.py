"""``POST [base]/ResearchStudy/{id}/$match`` through real HTTP: the seed trial loaded with
``fhirtrial load``, the patients of fixtures/eligibility/patients, a werkzeug server on
127.0.0.1 and ``requests`` as the client."""

from __future__ import annotations

import copy
import json
import re
import threading
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from fhir.resources.operationdefinition import OperationDefinition
from fhir.resources.parameters import Parameters
from werkzeug.serving import make_server

from conftest import FIXTURES, READ_TOKEN, WRITE_TOKEN
from fhirtrial.cli import main
from fhirtrial.server import create_app

SEED = FIXTURES / "seed" / "NCT06534528.json"
NCT = "NCT06534528"
ELIGIBLE = FIXTURES / "eligibility" / "patients" / "seed-eligible.json"
SPIROMETRY = {"19872-1", "19911-7", "19926-5"}  # LOINC FVC % predicted, DLCO, FEV1/FVC
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
W = {**FHIR_JSON, "Authorization": f"Bearer {WRITE_TOKEN}"}


def _serve(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_port}/fhir"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("match") / "store.sqlite"
    r = CliRunner().invoke(main, ["load", str(SEED), "--db", str(path), "--fhir-version", "R5"])
    assert r.exit_code == 0, r.output
    return path


@pytest.fixture(scope="module")
def base(db):
    """The seed trial served over real HTTP (reads open, writes with WRITE_TOKEN)."""
    server, thread, url = _serve(create_app({"DB": str(db), "TOKENS": WRITE_TOKEN}))
    yield url
    server.shutdown()
    thread.join(5)


def patient() -> dict[str, Any]:
    return json.loads(ELIGIBLE.read_text(encoding="utf-8"))


def _resource(bundle: dict[str, Any], rid: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"].get("id") == rid)


def _param(out: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [p for p in out["parameter"] if p["name"] == name]


def _facts(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}

    def walk(parts):
        for p in parts:
            if p["name"] == "fact":
                f = {x["name"]: x for x in p["part"]}
                found[f["description"]["valueString"]] = f
            elif p["name"] == "criterion":
                walk(p["part"])

    walk(out["parameter"])
    return found


def _match(base: str, body: Any, *, name: str = "$match", study: str = NCT,
           headers: dict[str, str] | None = None, **kw: Any) -> requests.Response:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return requests.post(f"{base}/ResearchStudy/{study}/{name}", data=data,
                         headers=headers or FHIR_JSON, timeout=30, **kw)


def _oo(status_code: int, code: str, diagnostics: str, expression: str | None = None) -> dict:
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


# ---------------------------------------------------------------- verdicts


def test_patient_meeting_every_criterion_is_eligible_over_http(base):
    r = _match(base, patient())
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/fhir+json")
    out = r.json()
    Parameters.model_validate(out)
    assert _param(out, "verdict") == [{"name": "verdict", "valueCode": "eligible"}]
    assert _param(out, "study") == [{"name": "study", "valueString": NCT}]
    assert _param(out, "patient") == [{"name": "patient",
                                       "valueReference": {"reference": "Patient/p1"}}]
    assert _param(out, "decidedBy") == []


def test_fvc_of_85_percent_is_not_eligible_and_names_the_fvc_criterion(base):
    b = patient()
    _resource(b, "fvc")["valueQuantity"]["value"] = 85  # the registry's bound: 40% to 70%
    out = _match(base, b).json()
    assert _param(out, "verdict")[0]["valueCode"] == "not-eligible"
    [decided] = [p["valueString"] for p in _param(out, "decidedBy")]
    registry_text = json.loads(SEED.read_text(encoding="utf-8"))["protocolSection"][
        "eligibilityModule"]["eligibilityCriteria"]
    fvc_sentence = re.search(r"Forced vital capacity \(FVC\) is 40% to 70%[^\n;]*",
                             registry_text).group(0)
    assert fvc_sentence in decided  # the criterion as the registry states it
    fvc = _facts(out)["FVC 40 to 70 % of predicted"]
    assert fvc["result"]["valueCode"] == "not-met"
    assert fvc["evidence"]["valueReference"] == {"reference": "Observation/fvc"}


def test_patient_without_spirometry_needs_review(base):
    b = patient()
    b["entry"] = [e for e in b["entry"] if not {c["code"] for c in e["resource"].get(
        "code", {}).get("coding", [])} & SPIROMETRY]
    out = _match(base, b).json()
    assert _param(out, "verdict")[0]["valueCode"] == "needs-review"
    dlco = _facts(out)["DLCO 30 to 80 % of predicted within the previous 3 months"]
    assert dlco["result"]["valueCode"] == "unknown"
    assert _facts(out)["FVC 40 to 70 % of predicted"]["result"]["valueCode"] == "unknown"


def test_parameters_body_with_as_of_equals_bundle_body_with_as_of_in_the_url(base):
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "patient-bundle", "resource": patient()},
        {"name": "as-of", "valueDate": "2026-04-15"}]}
    a = _match(base, params)
    b = _match(base, patient(), params={"as-of": "2026-04-15"})
    assert a.status_code == b.status_code == 200
    assert a.content == b.content
    assert _param(a.json(), "asOf") == [{"name": "asOf", "valueDate": "2026-04-15"}]


def test_evaluate_eligibility_is_the_same_operation(base):
    a = _match(base, patient())
    b = _match(base, patient(), name="$evaluate-eligibility")
    assert b.status_code == 200
    assert a.content == b.content  # same input, same bytes


def test_r5_mount_answers_like_the_default_mount(base):
    a = _match(base, patient())
    b = _match(base + "/R5", patient())
    assert a.content == b.content


# ---------------------------------------------------------------- errors, asserted whole


def test_unknown_study_is_404(base):
    r = _match(base, patient(), study="NCT00000000")
    assert r.status_code == 404
    assert r.json() == _oo(404, "not-found", "ResearchStudy/NCT00000000 is not known",
                           "ResearchStudy/NCT00000000")


def test_study_without_eligibility_is_422(base):
    r = requests.put(f"{base}/ResearchStudy/no-criteria", headers=W, timeout=30, data=json.dumps(
        {"resourceType": "ResearchStudy", "id": "no-criteria", "status": "active"}))
    assert r.status_code in (200, 201), r.text
    r = _match(base, patient(), study="no-criteria")
    assert r.status_code == 422
    assert r.json() == _oo(422, "processing", "ResearchStudy/no-criteria states no eligibility "
                           "criteria (recruitment.eligibility)",
                           "ResearchStudy.recruitment.eligibility")


def test_eligibility_reference_to_a_missing_evidence_variable_is_422(base):
    study = {"resourceType": "ResearchStudy", "id": "dangling", "status": "active",
             "recruitment": {"eligibility": {"reference": "EvidenceVariable/absent"}}}
    requests.put(f"{base}/ResearchStudy/dangling", headers=W, data=json.dumps(study), timeout=30)
    r = _match(base, patient(), study="dangling")
    assert r.status_code == 422
    assert r.json() == _oo(422, "processing", "ResearchStudy/dangling: its eligibility "
                           "'EvidenceVariable/absent' is not stored on this server",
                           "ResearchStudy.recruitment.eligibility")


@pytest.mark.parametrize(("body", "query", "diagnostics", "expression"), [
    ("{", None, "The body is not valid JSON at line 1 column 2", "Resource"),
    ("", None, "The request has no body", "Resource"),
    ({"resourceType": "Observation", "status": "final"}, None,
     "$match takes a Bundle (the patient's data) or a Parameters resource, not 'Observation'",
     "resourceType"),
    ({"resourceType": "Parameters", "parameter": []}, None, "Parameters has no patient-bundle",
     "Parameters.parameter"),
    ({"resourceType": "Parameters", "parameter": [{"name": "patient", "valueString": "x"}]},
     None, "'patient' is not a parameter of $match (patient-bundle, as-of)",
     "Parameters.parameter[0].name"),
    (None, {"as-of": "yesterday"}, "as-of 'yesterday' is not a date (YYYY-MM-DD)", "as-of"),
    (None, {"as-of": "2026-02-30"}, "as-of '2026-02-30' is not a date (YYYY-MM-DD)", "as-of"),
    (None, {"asof": "2026-01-01"},
     "'asof' is not a parameter of $match (patient-bundle, as-of)", "asof"),
    ({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "a"}},
        {"resource": {"resourceType": "Patient", "id": "b"}}]}, None,
     "patient-bundle: the Bundle holds 2 Patients; pre-screening is for one", "patient-bundle"),
    # the shape of what the evaluator reads (before, a 500 with a traceback in the log)
    ({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "a"}},
        {"resource": {"resourceType": "Condition", "id": "c", "code": {"coding": 5}}}]}, None,
     "patient-bundle.entry[1].resource.code.coding must be a list of objects",
     "patient-bundle.entry[1].resource.code"),
], ids=["not-json", "empty", "observation", "no-patient-bundle", "unknown-parameter",
        "as-of-not-a-date", "as-of-impossible-date", "unknown-url-parameter", "two-patients",
        "malformed-condition"])
def test_bad_body_is_400_with_a_precise_outcome(base, body, query, diagnostics, expression):
    r = _match(base, patient() if body is None else body, params=query)
    assert r.status_code == 400
    assert r.json() == _oo(400, "invalid", diagnostics, expression)


def test_wrong_media_type_is_415(base):
    r = _match(base, json.dumps(patient()), headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert r.json() == _oo(415, "not-supported", "Content-Type 'text/plain' is not supported; "
                           "send application/fhir+json")


def test_get_is_405_naming_post(base):
    r = requests.get(f"{base}/ResearchStudy/{NCT}/$match", timeout=30)
    assert r.status_code == 405
    assert "POST" in r.headers["Allow"]
    assert r.json()["issue"][0]["code"] == "not-supported"


def test_r4_endpoint_says_match_is_not_available_there(base):
    r = _match(base + "/R4", patient())
    assert r.status_code == 404
    assert r.json()["issue"][0]["code"] == "not-supported"


# ---------------------------------------------------------------- authorisation


def test_match_is_a_read_open_without_token_while_writes_are_not(base):
    assert _match(base, patient()).status_code == 200  # POST, but reads only
    r = requests.post(f"{base}/ResearchStudy", headers=FHIR_JSON, timeout=30,
                      data=json.dumps({"resourceType": "ResearchStudy", "status": "active"}))
    assert r.status_code == 401


def test_with_read_auth_match_needs_a_token_and_a_read_token_suffices(db):
    app = create_app({"DB": str(db), "TOKENS": f"{WRITE_TOKEN},{READ_TOKEN}:read",
                      "READ_AUTH": True})
    server, thread, url = _serve(app)
    try:
        r = _match(url, patient())
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        r = _match(url, patient(), headers={**FHIR_JSON, "Authorization": f"Bearer {READ_TOKEN}"})
        assert r.status_code == 200
        assert _param(r.json(), "verdict")[0]["valueCode"] == "eligible"
    finally:
        server.shutdown()
        thread.join(5)


# ---------------------------------------------------------------- declaration


def test_capability_statement_declares_match_with_a_resolvable_definition(base):
    cs = requests.get(f"{base}/metadata", timeout=30).json()
    rs = next(r for r in cs["rest"][0]["resource"] if r["type"] == "ResearchStudy")
    ops = {o["name"]: o["definition"] for o in rs["operation"]}
    assert set(ops) == {"match", "evaluate-eligibility"}
    assert len(set(ops.values())) == 1
    od = requests.get(ops["match"], timeout=30).json()  # the canonical resolves
    OperationDefinition.model_validate(od)
    assert od["url"] == ops["match"]
    assert (od["code"], od["resource"], od["instance"], od["type"], od["system"]) == (
        "match", ["ResearchStudy"], True, False, False)
    assert od["affectsState"] is False
    ins = {p["name"]: (p["min"], p["max"], p.get("type")) for p in od["parameter"]
           if p["use"] == "in"}
    assert ins == {"patient-bundle": (1, "1", "Bundle"), "as-of": (0, "1", "date")}
    assert any(r["type"] == "OperationDefinition" for r in cs["rest"][0]["resource"])


def test_every_output_parameter_is_declared_in_the_operation_definition(base):
    od = requests.get(f"{base}/OperationDefinition/match", timeout=30).json()
    declared = {p["name"]: p for p in od["parameter"] if p["use"] == "out"}
    b = patient()
    _resource(b, "fvc")["valueQuantity"]["value"] = 85
    out = _match(base, b).json()

    def check(params, decl):
        counts: dict[str, int] = {}
        for p in params:
            assert p["name"] in decl, p["name"]
            counts[p["name"]] = counts.get(p["name"], 0) + 1
            d = decl[p["name"]]
            if "part" in p:
                check(p["part"], {x["name"]: x for x in d["part"]})
            else:
                value_key = next(k for k in p if k.startswith("value"))
                assert value_key.lower() == "value" + d["type"].lower(), (p, d)
        for name, d in decl.items():
            n = counts.get(name, 0)
            assert n >= d["min"], name
            assert d["max"] == "*" or n <= int(d["max"]), name

    check(out["parameter"], declared)


def test_unknown_operation_definition_is_404(base):
    r = requests.get(f"{base}/OperationDefinition/nope", timeout=30)
    assert r.status_code == 404
    assert r.json() == _oo(404, "not-found", "OperationDefinition/nope is not known",
                           "OperationDefinition/nope")


def test_same_request_twice_gives_the_same_bytes(base):
    b = patient()
    assert _match(base, copy.deepcopy(b)).content == _match(base, b).content


# ---------------------------------------------------------------- class scales

CLASS_LINES = ("\n\nExclusion Criteria:\n\n* NYHA class III or IV heart failure\n"
               "* ASA physical status > III\n")


@pytest.fixture(scope="module")
def class_base(tmp_path_factory):
    """The seed trial with two class criteria (NYHA, ASA) added to its exclusions."""
    record = json.loads(SEED.read_text(encoding="utf-8"))
    elig = record["protocolSection"]["eligibilityModule"]
    elig["eligibilityCriteria"] = elig["eligibilityCriteria"].rstrip() + CLASS_LINES
    tmp = tmp_path_factory.mktemp("match-classes")
    (tmp / f"{NCT}.json").write_text(json.dumps(record), encoding="utf-8")
    r = CliRunner().invoke(main, ["load", str(tmp / f"{NCT}.json"), "--db",
                                  str(tmp / "store.sqlite"), "--fhir-version", "R5"])
    assert r.exit_code == 0, r.output
    server, thread, url = _serve(create_app({"DB": str(tmp / "store.sqlite"),
                                             "TOKENS": WRITE_TOKEN}))
    yield url
    server.shutdown()
    thread.join(5)


def _with(*resources: dict[str, Any]) -> dict[str, Any]:
    b = patient()
    b["entry"] += [{"resource": r} for r in resources]
    return b


_SCT = "http://snomed.info/sct"


def test_class_criteria_without_class_data_need_review_over_http(class_base):
    out = _match(class_base, patient()).json()
    assert _param(out, "verdict")[0]["valueCode"] == "needs-review"
    facts = _facts(out)
    assert facts["NYHA functional class III or IV"]["result"]["valueCode"] == "unknown"
    assert facts["ASA physical status class IV, V or VI"]["result"]["valueCode"] == "unknown"


def test_coded_classes_outside_the_exclusions_are_eligible_over_http(class_base):
    nyha_ii = {"resourceType": "Observation", "id": "nyha", "status": "final",
               "effectiveDateTime": "2024-05-01",
               "code": {"coding": [{"system": "http://loinc.org", "code": "88020-3"}]},
               "valueCodeableConcept": {"coding": [{"system": _SCT, "code": "421704003"}]}}
    asa_ii = {"resourceType": "Condition", "id": "asa", "recordedDate": "2024-05-01",
              "code": {"coding": [{"system": _SCT, "code": "413496000"}]}}
    out = _match(class_base, _with(nyha_ii, asa_ii)).json()
    assert _param(out, "verdict")[0]["valueCode"] == "eligible"
    assert _facts(out)["NYHA functional class III or IV"]["evidence"]["valueReference"] == {
        "reference": "Observation/nyha"}


def test_class_inside_an_exclusion_is_not_eligible_naming_it_over_http(class_base):
    nyha_iv = {"resourceType": "Observation", "id": "nyha", "status": "final",
               "effectiveDateTime": "2024-05-01",
               "code": {"coding": [{"system": "http://loinc.org", "code": "88020-3"}]},
               "valueInteger": 4}
    out = _match(class_base, _with(nyha_iv)).json()
    assert _param(out, "verdict")[0]["valueCode"] == "not-eligible"
    assert [p["valueString"] for p in _param(out, "decidedBy")] == [
        "NYHA class III or IV heart failure"]
    nyha = _facts(out)["NYHA functional class III or IV"]
    assert (nyha["result"]["valueCode"], nyha["reason"]["valueString"]) == (
        "met", "NYHA functional class IV")
