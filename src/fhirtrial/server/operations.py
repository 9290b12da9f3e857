"""``POST [base]/ResearchStudy/{id}/$match`` (alias ``$evaluate-eligibility``): pre-screen one
patient against a stored study's eligibility criteria, and the OperationDefinition that
declares it (``GET [base]/OperationDefinition/match``).

The request body is one of

- a ``Bundle`` (any type) holding the Patient and their Observations / Conditions — the FHIR
  shortcut for an operation whose only resource input is that Bundle; the evaluation date then
  travels in the URL (``?as-of=YYYY-MM-DD``);
- a ``Parameters`` resource with ``patient-bundle`` (resource, a Bundle) and optionally
  ``as-of`` (valueDate);
- a lone ``Patient`` (only age and sex can then be decided).

The answer is the Parameters of :func:`fhirtrial.eligibility.match.evaluate`. The operation
changes nothing (``affectsState`` false), so it is authorised as a read.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, request

from .. import __version__
from ..errors import FhirtrialError, GoneError, NotFoundError, SourceError
from . import http
from .searchparams import split_reference
from .service import BadRequest, HttpError

bp = Blueprint("operations", __name__)

MATCH = "match"
#: the names $match answers to; both read-only (POST, but authorised as a read)
MATCH_NAMES = ("match", "evaluate-eligibility")
READ_ONLY_SUFFIXES = tuple(f"/${n}" for n in MATCH_NAMES)
#: FHIR versions whose stored studies $match can read (R5: recruitment.eligibility →
#: EvidenceVariable)
MATCH_VERSIONS = ("R5",)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_URL_PARAMS_IGNORED = ("_format", "_pretty")


class Unprocessable(FhirtrialError):
    """The study exists but cannot be matched against (no usable eligibility criteria)."""

    issue_code = "processing"
    http_status = 422


# ---------------------------------------------------------------- the OperationDefinition

def _p(name: str, use: str, lo: int, hi: str, doc: str, type_: str | None = None,
       part: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "use": use, "min": lo, "max": hi, "documentation": doc}
    if type_:
        out["type"] = type_
    if part:
        out["part"] = part
    return out


def _criterion_parts(nested: bool) -> list[dict[str, Any]]:
    fact = [
        _p("description", "out", 1, "1", "What was checked, in words", "string"),
        _p("result", "out", 1, "1", "met | not-met | unknown", "code"),
        _p("reason", "out", 0, "1", "Why: the value found, or what is missing", "string"),
        _p("evidence", "out", 0, "*", "The patient's resource(s) the answer rests on",
           "Reference"),
        _p("toConfirm", "out", 0, "*", "Words of the criterion beside the fact that no data "
           "decides and that do not change the answer (another condition named in words, "
           "an age's other requirement): a person confirms them", "string"),
    ]
    parts = [
        _p("text", "out", 1, "1", "The criterion as the registry states it", "string"),
        _p("exclude", "out", 1, "1", "True for an exclusion criterion", "boolean"),
        _p("result", "out", 1, "1", "met | not-met | unknown", "code"),
        _p("computable", "out", 1, "1", "False for text-only criteria a person must confirm "
           "(they never change the verdict)", "boolean"),
        _p("fact", "out", 0, "*", "One computable fact of the criterion", part=fact),
    ]
    if nested:
        parts.append(_p("criterion", "out", 0, "*", "A sub-criterion (a member of an AND/OR "
                        "group), with the same parts; deeper levels repeat them",
                        part=_criterion_parts(False)))
    return parts


def operation_definition(base: str) -> dict[str, Any]:
    """The OperationDefinition of ``ResearchStudy/[id]/$match`` (valid in R4 and R5)."""
    return {
        "resourceType": "OperationDefinition",
        "id": MATCH,
        "url": f"{base}/OperationDefinition/{MATCH}",
        "version": __version__,
        "name": "Match",
        "title": "Pre-screen a patient against a research study's eligibility criteria",
        "status": "active",
        "kind": "operation",
        "date": "2025-01-01",
        "publisher": "fhirtrial",
        "description": (
            "Evaluates the eligibility criteria of the study (the EvidenceVariable its "
            "recruitment.eligibility references) against one patient's data: per criterion "
            "met / not-met / unknown with the evidence used, and a verdict (eligible, "
            "not-eligible, needs-review). Pre-screening only: a person confirms every "
            "enrolment. The body may be the patient Bundle itself (as-of then in the URL), "
            "or a Parameters resource. Also invoked as $evaluate-eligibility."),
        "affectsState": False,
        "code": MATCH,
        "resource": ["ResearchStudy"],
        "system": False,
        "type": False,
        "instance": True,
        "parameter": [
            _p("patient-bundle", "in", 1, "1", "The patient's data: a Bundle with one Patient "
               "and their Observations and Conditions", "Bundle"),
            _p("as-of", "in", 0, "1", "Evaluation date (YYYY-MM-DD); default: the latest "
               "clinical date in the patient's data, so the same input gives the same answer",
               "date"),
            _p("verdict", "out", 1, "1", "eligible | not-eligible | needs-review", "code"),
            _p("study", "out", 0, "1", "The id of the ResearchStudy evaluated", "string"),
            _p("patient", "out", 0, "1", "The Patient evaluated", "Reference"),
            _p("asOf", "out", 0, "1", "The evaluation date used", "date"),
            _p("decidedBy", "out", 0, "*", "The criteria that decided a not-eligible or "
               "needs-review verdict", "string"),
            _p("criterion", "out", 0, "*", "One criterion of the study and its answer",
               part=_criterion_parts(True)),
        ],
    }


@bp.get("/OperationDefinition/<fid:rid>")
def read_definition(fv: str, rid: str) -> Response:
    from .findtrials import TRIAL_MATCH
    from .findtrials import operation_definition as trial_match_definition

    if rid == TRIAL_MATCH:
        return http.body_response(trial_match_definition(http.base_url()))
    if rid != MATCH or fv not in MATCH_VERSIONS:
        raise NotFoundError(f"OperationDefinition/{rid} is not known",
                            location=f"OperationDefinition/{rid}")
    return http.body_response(operation_definition(http.base_url()))


# ---------------------------------------------------------------- the operation

@bp.post("/ResearchStudy/<fid:rid>/$match")
def match(fv: str, rid: str) -> Response:
    return _match(fv, rid)


@bp.post("/ResearchStudy/<fid:rid>/$evaluate-eligibility")
def evaluate_eligibility(fv: str, rid: str) -> Response:
    return _match(fv, rid)


def _match(fv: str, rid: str) -> Response:
    from ..eligibility.match import evaluate

    if fv not in MATCH_VERSIONS:
        raise HttpError(404, "not-supported", f"$match is not available on the {fv} endpoint "
                        f"(its studies state eligibility as a Group); use the "
                        f"{'/'.join(MATCH_VERSIONS)} endpoint")
    study = http.store().read(fv, "ResearchStudy", rid).resource()  # 404 / 410
    bundle, as_of = parse_input(http.json_body(), list(request.args.items(multi=True)))  # 400
    ev = eligibility_of(fv, study)  # 422
    try:
        out = evaluate(ev, bundle, as_of=as_of)
    except SourceError as e:
        # (an element of the wrong shape is named where it is)
        where = e.location if (e.location or "").startswith("patient-bundle.") else None
        raise BadRequest(e.message if where else f"patient-bundle: {e.message}",
                         location=where or "patient-bundle") from None
    for p in out["parameter"]:
        if p["name"] == "study":  # evaluate names what it was given: here the EvidenceVariable
            p["valueString"] = rid
    return http.body_response(out)


def parse_input(body: Any, query: list[tuple[str, str]]) -> tuple[dict[str, Any], str | None]:
    """The request body and URL parameters → (patient bundle, as-of date or None)."""
    as_of: str | None = None
    for key, value in query:
        if key in _URL_PARAMS_IGNORED:
            continue
        if key != "as-of":
            raise BadRequest(f"{key!r} is not a parameter of $match (patient-bundle, as-of)",
                             location=key)
        if as_of is not None:
            raise BadRequest("as-of is given more than once", location="as-of")
        as_of = _check_date(value)
    if not isinstance(body, dict):
        raise BadRequest("The body is not a JSON object", location="Resource")
    rtype = body.get("resourceType")
    if rtype in ("Bundle", "Patient"):
        return body, as_of
    if rtype != "Parameters":
        raise BadRequest(f"$match takes a Bundle (the patient's data) or a Parameters "
                         f"resource, not {rtype!r}", location="resourceType")
    params = body.get("parameter")
    if not isinstance(params, list):
        raise BadRequest("Parameters.parameter is missing or not a list",
                         location="Parameters.parameter")
    bundle: dict[str, Any] | None = None
    for i, p in enumerate(params):
        where = f"Parameters.parameter[{i}]"
        name = p.get("name") if isinstance(p, dict) else None
        if name == "patient-bundle":
            res = p.get("resource")
            if not isinstance(res, dict) or res.get("resourceType") not in ("Bundle", "Patient"):
                raise BadRequest("patient-bundle must carry a Bundle in 'resource'",
                                 location=f"{where}.resource")
            if bundle is not None:
                raise BadRequest("patient-bundle is given more than once", location=where)
            bundle = res
        elif name == "as-of":
            if as_of is not None:
                raise BadRequest("as-of is given more than once", location=where)
            value = p.get("valueDate")
            if not isinstance(value, str):
                raise BadRequest("as-of must be a valueDate", location=f"{where}.valueDate")
            as_of = _check_date(value)
        else:
            raise BadRequest(f"{name!r} is not a parameter of $match (patient-bundle, as-of)",
                             location=f"{where}.name")
    if bundle is None:
        raise BadRequest("Parameters has no patient-bundle", location="Parameters.parameter")
    return bundle, as_of


def _check_date(value: str) -> str:
    from datetime import date

    try:
        if not _DATE.match(value):
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"as-of {value!r} is not a date (YYYY-MM-DD)",
                         location="as-of") from None
    return value


def eligibility_of(fv: str, study: dict[str, Any]) -> dict[str, Any]:
    """The eligibility EvidenceVariable a stored R5 ResearchStudy references (422 if none)."""
    sid = f"ResearchStudy/{study.get('id')}"
    ref = ((study.get("recruitment") or {}).get("eligibility") or {}).get("reference")
    if not isinstance(ref, str) or not ref:
        raise Unprocessable(f"{sid} states no eligibility criteria (recruitment.eligibility)",
                            location="ResearchStudy.recruitment.eligibility")
    if ref.startswith("#"):
        ev = next((c for c in study.get("contained") or [] if isinstance(c, dict)
                   and c.get("id") == ref[1:]), None)
    else:
        rtype, eid = split_reference(ref)
        if rtype != "EvidenceVariable" or eid is None:
            raise Unprocessable(f"{sid}: eligibility {ref!r} is not an EvidenceVariable; "
                                "$match reads EvidenceVariable criteria only",
                                location="ResearchStudy.recruitment.eligibility")
        try:
            ev = http.store().read(fv, "EvidenceVariable", eid).resource()
        except (NotFoundError, GoneError):
            ev = None
    if not isinstance(ev, dict) or ev.get("resourceType") != "EvidenceVariable":
        raise Unprocessable(f"{sid}: its eligibility {ref!r} is not stored on this server",
                            location="ResearchStudy.recruitment.eligibility")
    if not ev.get("characteristic"):
        raise Unprocessable(f"{sid}: its eligibility {ref!r} has no criteria (characteristic)",
                            location="ResearchStudy.recruitment.eligibility")
    return ev
