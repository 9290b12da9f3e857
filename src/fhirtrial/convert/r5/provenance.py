"""Provenance of a conversion: every resource, derived by fhirtrial from the registry record."""

from __future__ import annotations

from typing import Any

from ... import __version__
from .. import ids
from .context import Ctx, fhir_instant

AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
ACTIVITY = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"


def software(ctx: Ctx) -> dict[str, str]:
    """The Device standing for this fhirtrial version (the Provenance agent)."""
    rid = f"fhirtrial-{__version__}".replace("+", "-")
    body: dict[str, Any] = {"displayName": "fhirtrial",
                            "name": [{"value": "fhirtrial", "type": "user-friendly-name"}],
                            "version": [{"value": __version__}]}
    return ctx.add("Device", rid, f"fhirtrial {__version__}",
                   [("Role", "converts ClinicalTrials.gov records to FHIR")], body)


def provenance(ctx: Ctx) -> dict[str, str]:
    """A Provenance whose target is every other resource of the conversion."""
    s = ctx.study
    agent = software(ctx)
    targets = [ctx.ref(rt, rid) for (rt, rid) in ctx.resources]
    rid = ctx.new_id("Provenance", "provenance")
    last = s.last_update_posted.date if s.last_update_posted else None
    body: dict[str, Any] = {"target": targets}
    # recorded is the registry record's own last update, never the wall clock, so the same
    # record always gives the same bytes
    if recorded := fhir_instant(last):
        body["recorded"] = recorded
    body["activity"] = {"coding": [{"system": ACTIVITY, "code": "CREATE", "display": "create"}],
                        "text": f"converted from {s.source.format}"}
    body["agent"] = [{"type": {"coding": [{"system": AGENT_TYPE, "code": "assembler",
                                           "display": "Assembler"}]}, "who": agent}]
    what_display = f"{s.source.registry} record {s.nct_id}"
    if last:
        what_display += f", last updated {last}"
    body["entity"] = [{"role": "source", "what": {
        "identifier": {"system": ids.CTGOV_SYSTEM, "value": s.nct_id}, "display": what_display}}]
    return ctx.add("Provenance", rid, f"Provenance of {s.nct_id}",
                   [("Source", what_display), ("Agent", f"fhirtrial {__version__}")], body,
                   business_id=False)
