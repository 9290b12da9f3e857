"""Location: one per study site, with the site's own recruitment status and contacts."""

from __future__ import annotations

from typing import Any

from ...model import Site
from .context import Ctx, number, telecom


def location(ctx: Ctx, site: Site, index: int) -> dict[str, str]:
    """A Location for a site (address, geo position, recruitment status, contacts)."""
    where = f"protocolSection.contactsLocationsModule.locations[{index}]"
    rid = ctx.new_id("Location", "site", site.facility, site.city, site.state, site.zip,
                     site.country)
    name = site.facility or ", ".join(p for p in (site.city, site.country) if p) or "Study site"
    contacts = []
    for c in site.contacts:
        contact: dict[str, Any] = {}
        if c.name:
            contact["name"] = [{"text": c.name}]
        if tc := telecom(c.email, c.phone, c.phone_ext):
            contact["telecom"] = tc
        if contact:
            contacts.append(contact)
    address = {k: v for k, v in (("city", site.city), ("state", site.state),
                                 ("postalCode", site.zip), ("country", site.country)) if v}
    body: dict[str, Any] = {"name": name, "mode": "instance"}
    if contacts:
        body["contact"] = contacts
    if address:
        body["address"] = address
    if site.latitude is not None and site.longitude is not None:
        body["position"] = {"longitude": number(site.longitude),
                            "latitude": number(site.latitude)}
    if site.status:
        # a site's recruitment status is about this study at this place, not the place itself,
        # so it is a characteristic (not Location.status, which is about the building)
        concept = ctx.concept("site-status", site.status, "r5_state", f"{where}.status",
                              prefix="Site recruitment status")
        if concept:
            body["characteristic"] = [concept]
    rows = [("Address", ", ".join(address.values()) if address else None),
            ("Recruitment status", site.status and body["characteristic"][0]["text"])]
    return ctx.add("Location", rid, name, rows, body)
