"""CDS Hooks 2.0, independent of Flask: the discovery document, the ``patient-view``
request checked and turned into a patient Bundle (from ``prefetch``, or read from the
``fhirServer`` with ``fhirAuthorization``), and the cards for the best matches.

Errors carry the HTTP status the specification gives them: 400 for a malformed request,
412 when the service cannot get the FHIR data it needs (no prefetch and no ``fhirServer``,
or the FHIR server refuses or fails).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from ..errors import FhirtrialError

SERVICE_ID = "fhirtrial-trial-finder"
HOOK = "patient-view"
#: observations read when no prefetch is given: the most recent ones
OBSERVATIONS = 30
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": f"Observation?patient={{{{context.patientId}}}}&_sort=-date&_count="
                    f"{OBSERVATIONS}",
}
SUMMARY_MAX = 140
CARDS_MAX = 3
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")


class CdsError(FhirtrialError):
    """A CDS Hooks request the service cannot answer, with the spec's HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = status
        self.issue_code = "invalid" if status == 400 else "processing"


def discovery() -> dict[str, Any]:
    """``GET /cds-services``."""
    return {"services": [{
        "hook": HOOK,
        "id": SERVICE_ID,
        "title": "Clinical trials this patient could join",
        "description": ("Ranks the recruiting studies stored on this fhirtrial server for the "
                        "patient whose record is open: by condition, then by the eligibility "
                        "criteria the patient's data decides. Pre-screening only."),
        "prefetch": PREFETCH,
        "usageRequirements": ("Prefetch (or a fhirServer with an access token that may read "
                              "Patient, Condition and Observation)."),
    }]}


# ------------------------------------------------------------------ the request

def check_request(body: Any) -> dict[str, Any]:
    """The request's fields checked (400 otherwise); returns the body."""
    if not isinstance(body, dict):
        raise CdsError(400, "the request body is not a JSON object")
    if body.get("hook") != HOOK:
        raise CdsError(400, f"this service answers the {HOOK!r} hook, not {body.get('hook')!r}")
    hi = body.get("hookInstance")
    if not isinstance(hi, str) or not _UUID.match(hi):
        raise CdsError(400, "hookInstance must be a UUID")
    ctx = body.get("context")
    if not isinstance(ctx, dict):
        raise CdsError(400, "context is missing or not an object")
    pid = ctx.get("patientId")
    if not isinstance(pid, str) or not _ID.match(pid):
        raise CdsError(400, "context.patientId must be a FHIR id")
    if not isinstance(ctx.get("userId"), str) or "/" not in ctx["userId"]:
        raise CdsError(400, "context.userId must be a reference ([ResourceType]/[id])")
    server = body.get("fhirServer")
    if server is not None and (not isinstance(server, str)
                               or not server.startswith(("http://", "https://"))):
        raise CdsError(400, "fhirServer must be an http(s) URL")
    auth = body.get("fhirAuthorization")
    if auth is not None:
        if server is None:
            raise CdsError(400, "fhirAuthorization is given without fhirServer")
        if not isinstance(auth, dict) or not isinstance(auth.get("access_token"), str) \
                or auth.get("token_type") != "Bearer":
            raise CdsError(400, "fhirAuthorization needs access_token and token_type Bearer")
    pre = body.get("prefetch")
    if pre is not None and not isinstance(pre, dict):
        raise CdsError(400, "prefetch must be an object")
    return body


def _resources(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        return [e["resource"] for e in value.get("entry") or []
                if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    return [value] if "resourceType" in value else []


def patient_bundle(body: dict[str, Any], fetch: Any) -> dict[str, Any]:
    """The patient's data as one Bundle: each prefetch key the client filled, the rest read
    from ``fhirServer`` with ``fetch(url, token) -> resource`` (which raises CdsError 412)."""
    pid = body["context"]["patientId"]
    pre = body.get("prefetch") or {}
    server = (body.get("fhirServer") or "").rstrip("/")
    token = (body.get("fhirAuthorization") or {}).get("access_token")
    resources: list[dict[str, Any]] = []
    for key, template in PREFETCH.items():
        value = pre.get(key)
        if value is None:
            if not server:
                raise CdsError(412, f"prefetch {key!r} is missing and no fhirServer is given to "
                               "read it from")
            url = f"{server}/{template.replace('{{context.patientId}}', quote(pid, safe=''))}"
            value = fetch(url, token)
        got = _resources(value)
        if key == "patient":
            got = [r for r in got if r.get("resourceType") == "Patient"]
            if not got:
                raise CdsError(412, f"Patient/{pid} could not be read")
        resources += got
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in resources]}


def fetch_json(url: str, token: str | None, timeout: float = 10.0) -> Any:
    """GET one FHIR URL (Bearer ``token``), as the spec's direct FHIR access; 412 on failure."""
    import requests

    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        r = requests.get(url, headers=headers, timeout=timeout)
    except requests.RequestException as e:
        raise CdsError(412, f"the FHIR server could not be reached ({type(e).__name__})") \
            from None
    if r.status_code != 200:
        raise CdsError(412, f"the FHIR server answered {r.status_code} to GET {url}")
    try:
        return r.json()
    except ValueError:
        raise CdsError(412, f"the FHIR server's answer to GET {url} is not JSON") from None


# ------------------------------------------------------------------ the cards

def cards(result: Any, study_url: Any, source_url: str) -> dict[str, Any]:
    """The response: one card per match (best first, at most CARDS_MAX); no cards when
    nothing matches. ``study_url(id)`` gives the study's page."""
    out = []
    for m in result.matches[:CARDS_MAX]:
        verdict = {"eligible": "may be eligible", "needs-review": "to review"}.get(
            m.verdict, m.verdict)
        where = f", {m.distance_miles:g} mi" if m.distance_miles is not None else ""
        summary = _clip(f"Trial {m.study.id} ({verdict}{where}): {m.study.title}")
        detail = [f"**{m.study.title}** ({m.study.id})", "",
                  f"- Condition: {m.condition_reason}",
                  f"- Pre-screening verdict: {m.verdict} (score {m.score:g})"]
        if m.distance_miles is not None:
            detail.append(f"- Nearest site: {m.nearest_site} ({m.distance_miles:g} miles)")
        if m.unknown:
            detail.append(f"- Still to check ({len(m.unknown)}): "
                          + "; ".join(_clip(u, 80) for u in m.unknown[:5])
                          + (" …" if len(m.unknown) > 5 else ""))
        if m.to_confirm:
            detail.append("- Also check by hand (words beside checked criteria): "
                          + "; ".join(_clip(u, 80) for u in m.to_confirm[:5])
                          + (" …" if len(m.to_confirm) > 5 else ""))
        out.append({
            "uuid": _card_uuid(m),
            "summary": summary,
            "detail": "\n".join(detail),
            "indicator": "info",
            "source": {"label": "fhirtrial", "url": source_url},
            "links": [{"label": f"Study {m.study.id}", "url": study_url(m.study.id),
                       "type": "absolute"}],
        })
    return {"cards": out}


def _clip(text: str, n: int = SUMMARY_MAX - 1) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 1].rstrip() + "…"


def _card_uuid(m: Any) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:fhirtrial:card:{m.study.id}/{m.study.vid}"))
