"""A :class:`MatchResult` as the operation's answer: a ``searchset`` Bundle.

Per match, two entries:

- the stored ResearchStudy, ``search.mode = match``, ``search.score`` (0..1), and on
  ``entry.search`` the extensions
  ``http://hl7.org/fhir/StructureDefinition/match-grade`` (eligible → ``probable``,
  needs-review → ``possible``, not-eligible → ``certainly-not``: pre-screening never says
  *certain*), ``urn:fhirtrial:match-verdict`` (valueCode), ``urn:fhirtrial:match-condition``
  (valueString: which of the patient's conditions matched, how), ``urn:fhirtrial:match-distance``
  (valueQuantity, miles, to ``urn:fhirtrial:match-site`` valueString, the nearest fitting site)
  and ``urn:fhirtrial:match-evaluation`` (valueReference to the next entry);
- the per-criterion evaluation, the same ``Parameters`` instance-level ``$match`` answers,
  ``search.mode = include``, its ``fullUrl`` a ``urn:uuid`` derived from the study id and
  version (deterministic).

Last, an OperationOutcome (``search.mode = outcome``) says how many studies were retrieved and
evaluated. Same store, same request → same bytes.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from .engine import Match, MatchResult

GRADE = {"eligible": "probable", "needs-review": "possible", "not-eligible": "certainly-not"}
EXT = "urn:fhirtrial:"
_NS = uuid.UUID("6f1c1f7e-7b0e-5b5e-9a53-5e0d6a4d3c11")


def evaluation_url(m: Match) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, f'{m.study.id}/{m.study.vid}')}"


def search_bundle(result: MatchResult, base: str, bodies: dict[str, bytes]) -> dict[str, Any]:
    """The searchset Bundle; ``bodies`` are the stored ResearchStudy bytes by id."""
    entries: list[dict[str, Any]] = []
    for m in result.matches:
        ext: list[dict[str, Any]] = [
            {"url": "http://hl7.org/fhir/StructureDefinition/match-grade",
             "valueCode": GRADE[m.verdict]},
            {"url": f"{EXT}match-verdict", "valueCode": m.verdict},
            {"url": f"{EXT}match-condition", "valueString": m.condition_reason},
        ]
        if m.distance_miles is not None:
            ext.append({"url": f"{EXT}match-distance", "valueQuantity": {
                "value": m.distance_miles, "unit": "mi", "system": "http://unitsofmeasure.org",
                "code": "[mi_i]"}})
            if m.nearest_site:
                ext.append({"url": f"{EXT}match-site", "valueString": m.nearest_site})
        ev_url = evaluation_url(m)
        ext.append({"url": f"{EXT}match-evaluation", "valueReference": {"reference": ev_url}})
        entries.append({"fullUrl": f"{base}/ResearchStudy/{m.study.id}",
                        "resource": json.loads(bodies[m.study.id]),
                        "search": {"extension": ext, "mode": "match", "score": m.score}})
        entries.append({"fullUrl": ev_url, "resource": m.evaluation,
                        "search": {"mode": "include"}})
    note = (f"{result.candidates} studies matched the patient's conditions and the filters; "
            f"{result.evaluated} had their eligibility criteria evaluated")
    if not result.exhausted:
        note += " (evaluation stopped at the limit: lower-ranked candidates were not evaluated)"
    entries.append({"resource": {"resourceType": "OperationOutcome", "issue": [
        {"severity": "information", "code": "informational", "diagnostics": note}]},
        "search": {"mode": "outcome"}})
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


def summary_rows(result: MatchResult) -> list[dict[str, Any]]:
    """One plain row per match (the CLI's table and JSON)."""
    return [{"rank": i, "id": m.study.id, "title": m.study.title, "score": m.score,
             "verdict": m.verdict, "distance_miles": m.distance_miles, "site": m.nearest_site,
             "condition": m.condition_reason, "unknown": m.unknown,
             "to_confirm": m.to_confirm, "ruled_out_by": m.against}
            for i, m in enumerate(result.matches, 1)]
