"""Hand-built R4 study Bundles shaped like the converter's output, for push tests.

They follow fhirtrial.convert.ids (urn:uuid fullUrls, business identifiers, NCT identifier on
the ResearchStudy) and start from the official R4 examples in ../shared where present, so the
push tests do not depend on the converter.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from conftest import SHARED
from fhirtrial.convert.ids import (
    CTGOV_SYSTEM,
    business_identifier,
    full_url,
    organization_id,
    scoped_id,
)

R4_EXAMPLES = SHARED / "fhir-examples" / "r4"
#: resource types a study bundle holds (what the tests count on the server)
TYPES = ("ResearchStudy", "Organization", "Location", "Group", "PlanDefinition")


def _example(name: str, fallback: dict[str, Any]) -> dict[str, Any]:
    path = R4_EXAMPLES / name
    doc = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else dict(fallback)
    doc.pop("id", None)
    doc.pop("text", None)
    return doc


def _entry(rtype: str, rid: str, resource: dict[str, Any]) -> dict[str, Any]:
    resource = {"resourceType": rtype, "id": rid, **resource}
    resource.setdefault("identifier", []).append(business_identifier(rtype, rid))
    return {"fullUrl": full_url(rtype, rid), "resource": resource,
            "request": {"method": "PUT", "url": f"{rtype}/{rid}"}}


def study_bundle(nct: str, *, sites: int = 2, sponsor: str = "Acme Research",
                 title: str | None = None, status: str = "active") -> dict[str, Any]:
    """A transaction Bundle of one study: sponsor, sites, eligibility Group, protocol."""
    org_id = organization_id(sponsor)
    group_id = scoped_id(nct, "eligibility")
    plan_id = scoped_id(nct, "arm", "Arm A")
    site_ids = [scoped_id(nct, "site", f"Site {n}") for n in range(sites)]
    group = _example("Group-101.json", {"type": "person", "actual": False})
    group.pop("identifier", None)
    group.update({"type": "person", "actual": False, "name": f"Eligibility of {nct}"})
    study = _example("ResearchStudy-example.json", {"status": "active"})
    study.update({
        "identifier": [{"use": "official", "system": CTGOV_SYSTEM, "value": nct}],
        "title": title or f"Study {nct}",
        "status": status,
        "sponsor": {"reference": full_url("Organization", org_id)},
        "enrollment": [{"reference": full_url("Group", group_id)}],
        "protocol": [{"reference": full_url("PlanDefinition", plan_id)}],
        "site": [{"reference": full_url("Location", s)} for s in site_ids],
    })
    entries = [
        _entry("ResearchStudy", nct, study),
        _entry("Organization", org_id, {"name": sponsor}),
        _entry("Group", group_id, group),
        _entry("PlanDefinition", plan_id, {"status": "active", "title": "Arm A"}),
    ]
    entries += [_entry("Location", s, {"name": f"Site {n} of {nct}"})
                for n, s in enumerate(site_ids)]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def resources_of(bundle: dict[str, Any]) -> int:
    return len(bundle["entry"])


def server_counts(base: str) -> dict[str, int]:
    """How many resources of each study type the server holds."""
    counts = {}
    for rtype in TYPES:
        r = requests.get(f"{base}/{rtype}", params={"_count": "1000"}, timeout=10)
        r.raise_for_status()
        counts[rtype] = len(r.json().get("entry") or [])
    return counts


def server_versions(base: str, rtype: str) -> dict[str, str]:
    """id → versionId of every resource of a type (to prove nothing was rewritten)."""
    r = requests.get(f"{base}/{rtype}", params={"_count": "1000"}, timeout=10)
    r.raise_for_status()
    return {e["resource"]["id"]: e["resource"]["meta"]["versionId"]
            for e in r.json().get("entry") or []}
