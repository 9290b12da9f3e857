"""``POST [base]/ResearchStudy/$match`` (type level): the trials of this server a patient
could join, ranked — the CodeX ``ClinicalTrialMatchService`` operation, answered from the
store by :mod:`fhirtrial.matching`. Its OperationDefinition is
``GET [base]/OperationDefinition/trial-match``.

The answer is the ``searchset`` Bundle itself (not wrapped in Parameters): CodeX's single
``out`` parameter, ``trialMatchOutput``, is that Bundle.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from .. import __version__
from ..errors import SourceError
from . import http
from .service import BadRequest

bp = Blueprint("findtrials", __name__)

TRIAL_MATCH = "trial-match"


def _p(name: str, use: str, lo: int, hi: str, doc: str, type_: str) -> dict[str, Any]:
    return {"name": name, "use": use, "min": lo, "max": hi, "documentation": doc, "type": type_}


def operation_definition(base: str) -> dict[str, Any]:
    """The OperationDefinition of type-level ``ResearchStudy/$match`` (valid in R4 and R5)."""
    return {
        "resourceType": "OperationDefinition",
        "id": TRIAL_MATCH,
        "url": f"{base}/OperationDefinition/{TRIAL_MATCH}",
        "version": __version__,
        "name": "TrialMatch",
        "title": "Find the research studies a patient could join, ranked",
        "status": "active",
        "kind": "operation",
        "date": "2025-01-01",
        "publisher": "fhirtrial",
        "description": (
            "The CodeX ClinicalTrialMatchService operation (same parameter names) answered from "
            "the studies stored on this server: candidates by the patient's conditions (codes "
            "and text against each study's conditions, keywords and MeSH terms, with synonyms "
            "and broader terms scoring lower), filtered by recruitment status, phase, distance "
            "to the nearest site whose own status fits, age and sex; then each candidate's "
            "computable eligibility criteria evaluated against the patient's data. The answer "
            "is a searchset Bundle (the trialMatchOutput Bundle itself, not a Parameters): "
            "each ResearchStudy with search.mode=match and search.score 0..1, followed by its "
            "per-criterion evaluation (a Parameters, search.mode=include, referenced from the "
            "study entry's search extension urn:fhirtrial:match-evaluation). Studies a "
            "criterion rules out are left out unless includeRuledOut is true. Pre-screening "
            "only: a person confirms every enrolment."),
        "affectsState": False,
        "code": "match",
        "resource": ["ResearchStudy"],
        "system": False,
        "type": True,
        "instance": False,
        "parameter": [
            _p("trialMatchClinicalData", "in", 1, "1", "The patient's data: a Bundle with one "
               "Patient and their Conditions, Observations (MedicationStatements and "
               "Procedures are accepted and not yet read). The body may also be this Bundle "
               "itself, the other parameters then in the URL", "Bundle"),
            _p("zipCode", "in", 0, "1", "US ZIP code of the patient (resolved offline)",
               "string"),
            _p("travelRadius", "in", 0, "1", "Distance from the patient to the nearest site "
               "of the study, in statute miles (as CodeX); '80 km' is also understood",
               "string"),
            _p("phase", "in", 0, "*", "research-study-phase code(s) or ClinicalTrials.gov "
               "phase(s), comma-separated; a combined phase (phase-1-phase-2) fits either",
               "string"),
            _p("recruitmentStatus", "in", 0, "*", "research-study-status code(s) or "
               "ClinicalTrials.gov status(es), comma-separated; 'all' for any status. Default: "
               "recruiting, not-yet-recruiting, enrolling-by-invitation. Sites are filtered by "
               "their own status where they state one", "string"),
            _p("latitude", "in", 0, "1", "fhirtrial: the patient's latitude (instead of a "
               "zipCode, e.g. outside the US)", "decimal"),
            _p("longitude", "in", 0, "1", "fhirtrial: the patient's longitude", "decimal"),
            _p("place", "in", 0, "1", "fhirtrial: a city name ('Lyon, France', 'Boston, MA'), "
               "resolved offline with GeoNames", "string"),
            _p("_count", "in", 0, "1", "fhirtrial: how many studies to return (1-100, default "
               "10)", "integer"),
            _p("includeRuledOut", "in", 0, "1", "fhirtrial: also list studies a criterion "
               "rules out (verdict not-eligible, score 0, the criteria named)", "boolean"),
            _p("as-of", "in", 0, "1", "fhirtrial: evaluation date (default: the latest "
               "clinical date in the patient's data)", "date"),
            _p("trialMatchOutput", "out", 1, "1", "The ranked searchset Bundle (returned as "
               "the response body)", "Bundle"),
        ],
    }


@bp.post("/ResearchStudy/$match")
def trial_match(fv: str) -> Response:
    from ..matching import find_trials, search_bundle
    from ..matching.engine import SERVER_WAIT
    from ..matching.request import collect, parse

    try:
        req = parse(collect(http.json_body(), list(request.args.items(multi=True))))
        result = find_trials(http.store(), fv, req, wait=SERVER_WAIT)
    except SourceError as e:
        raise BadRequest(e.message, location=e.location) from None
    bodies = {m.study.id: _body(fv, m.study.id) for m in result.matches}
    return http.body_response(search_bundle(result, http.base_url(), bodies))


def _body(fv: str, rid: str) -> bytes:
    stored = http.store().read(fv, "ResearchStudy", rid)
    assert stored.body is not None
    return stored.body
