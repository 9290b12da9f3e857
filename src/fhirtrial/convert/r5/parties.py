"""Organization, Practitioner and PractitionerRole: sponsors, collaborators, officials, contacts."""

from __future__ import annotations

from typing import Any

from ...model import Organization, Person
from ...tables import table
from .. import ids
from .context import Ctx, telecom


def organization(ctx: Ctx, org: Organization | str, location: str) -> dict[str, str]:
    """An Organization keyed on its name alone (one sponsor = one resource across studies)."""
    name = org if isinstance(org, str) else org.name
    agency = None if isinstance(org, str) else org.agency_class
    rid = ids.organization_id(name)
    body: dict[str, Any] = {"active": True}
    if agency:
        t = table("agency-class")
        concept = ctx.concept("agency-class", agency, "organization_type", f"{location}.class")
        if concept:
            body["type"] = [concept]
        rows = [("Agency class", t.display(agency))]
    else:
        rows = []
    body["name"] = name
    return ctx.add("Organization", rid, name, rows, body)


def practitioner(ctx: Ctx, person: Person, location: str) -> dict[str, str]:
    """A Practitioner for an official or contact, keyed within the study on name and email."""
    key_name = person.name or person.email or person.phone or "unnamed"
    rid = ids.scoped_id(ctx.study.nct_id, "person", key_name, person.email if not person.name
                        else None)
    body: dict[str, Any] = {"active": True}
    if person.name:
        body["name"] = [{"text": person.name}]
    if tc := telecom(person.email, person.phone, person.phone_ext):
        body["telecom"] = tc
    rows = [("Affiliation", person.affiliation), ("Email", person.email), ("Phone", person.phone)]
    if (("Practitioner", rid)) in ctx.resources:
        # the same person listed twice (official and contact): merge the contact details
        res = ctx.resources[("Practitioner", rid)]
        have = {(c["system"], c["value"]) for c in res.get("telecom", [])}
        extra = [c for c in body.get("telecom", []) if (c["system"], c["value"]) not in have]
        if extra:
            res.setdefault("telecom", []).extend(extra)
        return ctx.ref("Practitioner", rid)
    return ctx.add("Practitioner", rid, person.name or "Study contact", rows, body)


def practitioner_role(ctx: Ctx, person: Person, role_text: str, location: str) -> dict[str, str]:
    """The person in their study role at their affiliation (PractitionerRole)."""
    who = practitioner(ctx, person, location)
    rid = ids.scoped_id(ctx.study.nct_id, "role", person.name or person.email, role_text)
    body: dict[str, Any] = {"active": True, "practitioner": who}
    if person.affiliation:
        body["organization"] = organization(ctx, person.affiliation, f"{location}.affiliation")
    code = ctx.concept("party-role", person.role, None, f"{location}.role") if person.role else None
    body["code"] = [code or {"text": role_text}]
    return ctx.add("PractitionerRole", rid, f"{person.name or 'Contact'} — {role_text}",
                   [("Role", role_text), ("Affiliation", person.affiliation)], body)
