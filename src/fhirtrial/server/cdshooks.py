"""CDS Hooks 2.0 at the server root: ``GET /cds-services`` (discovery) and
``POST /cds-services/fhirtrial-trial-finder`` (the ``patient-view`` service), answering
cards for the studies of the default FHIR endpoint (``/fhir``) a patient could join.

The logic is in :mod:`fhirtrial.matching.cds`; this module is the HTTP layer. A service call
changes nothing, so it is authorised as a read (open unless READ_AUTH is configured).
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request

from ..errors import SourceError
from . import http

PREFIX = "/cds-services"
bp = Blueprint("cdshooks", __name__, url_prefix=PREFIX)


def _json(doc: object, status: int = 200) -> Response:
    return Response(json.dumps(doc, ensure_ascii=False), status=status,
                    content_type="application/json; charset=utf-8")


@bp.get("")
def discovery() -> Response:
    from ..matching.cds import discovery as doc

    return _json(doc())


@bp.post("/<service_id>")
def call(service_id: str) -> Response:
    from ..eligibility.match import check_patient_bundle
    from ..matching import find_trials
    from ..matching.cds import (
        SERVICE_ID,
        CdsError,
        cards,
        check_request,
        fetch_json,
        patient_bundle,
    )
    from ..matching.engine import SERVER_WAIT, MatchRequest

    if service_id != SERVICE_ID:
        raise CdsError(404, f"no CDS service {service_id!r} here (GET {PREFIX} lists them)")
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CdsError(400, "the request body is not JSON (or is nested too deeply)") from None
    check_request(body)
    bundle = patient_bundle(body, fetch_json)
    try:
        check_patient_bundle(bundle)
    except SourceError as e:
        raise CdsError(400, f"the patient's data is malformed: {e.message}") from None
    mount, fv = current_app.extensions["fhirtrial.mounts"]["fhir"]
    root = (http.cfg()["BASE_URL"] or request.host_url).rstrip("/")
    try:
        result = find_trials(http.store(), fv, MatchRequest(patient_bundle=bundle, count=3),
                             wait=SERVER_WAIT)
    except SourceError as e:
        raise CdsError(412, f"the patient's data cannot be read: {e.message}") from None
    return _json(cards(result, lambda sid: f"{root}{mount}/ResearchStudy/{sid}",
                       f"{root}{PREFIX}"))
