"""``GET /metadata``: a CapabilityStatement generated from what the server really implements."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from .. import __version__
from . import http
from .findtrials import TRIAL_MATCH
from .operations import MATCH, MATCH_NAMES, MATCH_VERSIONS
from .searchparams import REGISTRY, resource_types

bp = Blueprint("metadata", __name__)

FHIR_VERSIONS = {"R5": "5.0.0", "R4": "4.0.1"}
TYPE_INTERACTIONS = ("read", "vread", "update", "delete", "history-instance", "history-type",
                     "create", "search-type")
_DOC = {
    "_id": "Logical id of the resource",
    "_lastUpdated": "When the resource version last changed (prefixes eq, ne, gt, lt, ge, le, "
                    "sa, eb, ap)",
}


def capability_statement(fv: str, base: str) -> dict[str, Any]:
    """The CapabilityStatement of one FHIR version's endpoint."""
    resources = []
    for rtype in resource_types(fv):
        params = REGISTRY[fv][rtype]
        rev = sorted(f"{src}:{p.name}" for src, ps in REGISTRY[fv].items()
                     for p in ps.values() if p.type == "reference"
                     and (rtype in p.targets))
        resources.append({
            "type": rtype,
            "interaction": [{"code": c} for c in TYPE_INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": True,
            "conditionalDelete": "not-supported",
            "searchInclude": sorted(f"{rtype}:{p.name}" for p in params.values()
                                    if p.type == "reference"),
            "searchRevInclude": rev,
            "searchParam": [
                {"name": "_id", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id",
                 "type": "token", "documentation": _DOC["_id"]},
                {"name": "_lastUpdated",
                 "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
                 "type": "date", "documentation": _DOC["_lastUpdated"]},
                *({"name": p.name, "definition": p.url, "type": p.type,
                   "documentation": f"{p.expression}" + (
                       f" (modifiers: {', '.join(p.modifiers)})" if p.modifiers else "")}
                  for p in params.values()),
            ],
        })
        if rtype == "ResearchStudy":
            ops = [{"name": "match", "definition": f"{base}/OperationDefinition/{TRIAL_MATCH}",
                    "documentation": "Type level: the studies a patient could join, ranked "
                                     "(CodeX ClinicalTrialMatchService parameters); read-only"}]
            if fv in MATCH_VERSIONS:
                ops += [{
                    "name": name, "definition": f"{base}/OperationDefinition/{MATCH}",
                    "documentation": "Instance level: pre-screen a patient (POST a Bundle) "
                                     "against the study's eligibility criteria; read-only, "
                                     "authorised as a read"}
                    for name in MATCH_NAMES]
            resources[-1]["operation"] = ops
    # served so that the operations' definition canonicals resolve; nothing else
    resources.append({"type": "OperationDefinition", "interaction": [{"code": "read"}]})
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2025-01-01",
        "kind": "instance",
        "software": {"name": "fhirtrial", "version": __version__},
        "implementation": {"description": "fhirtrial clinical-trial FHIR server", "url": base},
        "fhirVersion": FHIR_VERSIONS[fv],
        "format": ["application/fhir+json", "json", "text/html"],
        "rest": [{
            "mode": "server",
            "security": {"cors": True, "description": (
                "Writes need an Authorization: Bearer token from the server's configuration; "
                "reads are open unless the server is configured with READ_AUTH.")},
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}],
        }],
    }


@bp.get("/metadata")
def metadata(fv: str) -> Response:
    return http.body_response(capability_statement(fv, http.base_url()))
