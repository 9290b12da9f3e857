"""Bundle assembly: resources → a collection or transaction Bundle with urn:uuid fullUrls.

Every reference inside the Bundle is the target's ``urn:uuid`` fullUrl (ids.full_url), so a
server rewrites them on a transaction. In a transaction every entry is a conditional update
keyed on a business identifier: the ResearchStudy on its NCT id, the rest on
``ids.business_identifier`` (Provenance, which has no identifier, by its deterministic id);
a re-push updates instead of duplicating.
"""

from __future__ import annotations

from typing import Any

from ..errors import FhirtrialError
from . import ids

BUNDLE_TYPES = ("collection", "transaction")


def _conditional_url(resource: dict[str, Any]) -> str:
    rtype, rid = resource["resourceType"], resource["id"]
    if rtype == "ResearchStudy":
        return f"ResearchStudy?identifier={ids.CTGOV_SYSTEM}|{rid}"
    if rtype == "Provenance":
        # Provenance has no identifier element: it is updated by its deterministic id
        return f"Provenance/{rid}"
    ident = ids.business_identifier(rtype, rid)
    return f"{rtype}?identifier={ident['system']}|{ident['value']}"


def assemble(nct_id: str, resources: list[dict[str, Any]], bundle_type: str = "collection"
             ) -> dict[str, Any]:
    """A Bundle of the given resources (order kept) as a ``collection`` or ``transaction``."""
    if bundle_type not in BUNDLE_TYPES:
        raise FhirtrialError(f"unsupported bundle type {bundle_type!r} (use one of "
                             f"{', '.join(BUNDLE_TYPES)})")
    entries = []
    for res in resources:
        entry: dict[str, Any] = {"fullUrl": ids.full_url(res["resourceType"], res["id"]),
                                 "resource": res}
        if bundle_type == "transaction":
            entry["request"] = {"method": "PUT", "url": _conditional_url(res)}
        entries.append(entry)
    return {"resourceType": "Bundle", "id": f"{nct_id}-{bundle_type}",
            "identifier": {"system": ids.CTGOV_SYSTEM, "value": nct_id},
            "type": bundle_type, "entry": entries}
