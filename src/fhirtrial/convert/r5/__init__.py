"""FHIR R5 builders: a Study → the resources of its Bundle (ResearchStudy first)."""

from __future__ import annotations

from typing import Any

from ...model import Finding, Person, Study
from ...tables import table
from .. import ids
from . import evidencevariable, location, parties, plandefinition, provenance, researchstudy
from .context import Ctx, Resource, intervention_concept


def study_level_mesh(study: Study) -> list[dict[str, Any]]:
    """A focus per intervention MeSH term that no intervention's name carries (once each).

    Written without text: an intervention's focus always has one ("Drug: X"), so a reader
    (sources/fhir_r4.py) tells the two apart."""
    seen = {(c.system, c.code) for iv in study.interventions for c in iv.mesh}
    out = []
    for c in study.intervention_mesh:
        if (c.system, c.code) in seen:
            continue
        seen.add((c.system, c.code))
        coding = {"system": c.system, "code": c.code, **({"display": c.display}
                                                          if c.display else {})}
        out.append({"concept": {"coding": [coding]}})
    return out


def _sponsor_parties(ctx: Ctx) -> list[dict[str, Any]]:
    s = ctx.study
    out = []
    p = "protocolSection.sponsorCollaboratorsModule"
    for role, orgs in (("lead-sponsor", [s.lead_sponsor] if s.lead_sponsor else []),
                       ("collaborator", s.collaborators)):
        for i, org in enumerate(orgs):
            where = f"{p}.leadSponsor" if role == "lead-sponsor" else f"{p}.collaborators[{i}]"
            ref = parties.organization(ctx, org, where)
            classifier = None
            if org.agency_class:
                c = ctx.concept("agency-class", org.agency_class, "party_classifier",
                                f"{where}.class")
                classifier = [c] if c else None
            out.append(researchstudy.party(org.name, researchstudy.role_concept(role), ref,
                                           classifier))
    rp = s.responsible_party
    if rp and rp.investigator_name and rp.type in ("PRINCIPAL_INVESTIGATOR",
                                                    "SPONSOR_INVESTIGATOR"):
        code = "primary-investigator" if rp.type == "PRINCIPAL_INVESTIGATOR" else (
            "sponsor-investigator")
        who = parties.practitioner(ctx, Person(rp.investigator_name,
                                              affiliation=rp.investigator_affiliation),
                                   "protocolSection.sponsorCollaboratorsModule.responsibleParty")
        out.append(researchstudy.party(rp.investigator_name, researchstudy.role_concept(code), who,
                                       [{"text": "Responsible party"}]))
    return out


def _people_parties(ctx: Ctx) -> list[dict[str, Any]]:
    s = ctx.study
    out = []
    p = "protocolSection.contactsLocationsModule"
    roles = table("party-role")
    for i, person in enumerate(s.officials):
        where = f"{p}.overallOfficials[{i}]"
        target = roles.target(person.role, "r5") if person.role else None
        role_text = roles.display(person.role) if person.role else "Overall official"
        role: dict[str, Any] = {"text": role_text}
        if target and (coding := target.coding()):
            role = {"coding": [coding], "text": role_text}
        if person.role and not target:
            ctx.warn("code-invalid", f"official role {person.role!r} unknown; kept as text",
                     f"{where}.role")
        ref = parties.practitioner_role(ctx, person, role_text, where)
        out.append(researchstudy.party(person.name, role, ref))
    for i, person in enumerate(s.central_contacts):
        where = f"{p}.centralContacts[{i}]"
        target = roles.target("CONTACT", "r5")
        assert target is not None
        ref = parties.practitioner(ctx, person, where)
        out.append(researchstudy.party(person.name, {"coding": [target.coding()],
                                                     "text": "Central contact"}, ref))
    return out


def build(study: Study) -> tuple[list[Resource], list[Finding]]:
    """All R5 resources for one Study, in Bundle order, and the conversion's findings."""
    ctx = Ctx(study)
    parts: dict[str, Any] = {"parties": _sponsor_parties(ctx) + _people_parties(ctx)}
    parts["sites"] = [location.location(ctx, site, i) for i, site in enumerate(study.sites)]
    groups, protocol = [], []
    assigned: set[int] = set()
    for i, arm in enumerate(study.arms):
        ivs = plandefinition.arm_interventions(arm, study.interventions)
        assigned.update(id(iv) for iv in ivs)
        plan = plandefinition.plan_for_arm(ctx, arm, i)
        protocol.append(plan)
        group: dict[str, Any] = {"linkId": f"arm-{ids.key_hash(arm.label)}", "name": arm.label}
        t = ctx.concept("arm-type", arm.type, "r5",
                        f"protocolSection.armsInterventionsModule.armGroups[{i}].type")
        if t:
            group["type"] = t
        if arm.description:
            group["description"] = arm.description
        group["intendedExposure"] = [evidencevariable.exposure(ctx, arm, ivs, plan)]
        groups.append(group)
    rest = [iv for iv in study.interventions if id(iv) not in assigned]
    if rest:
        protocol.append(plandefinition.plan_for_unassigned(ctx, rest))
    parts["groups"], parts["protocol"] = groups, protocol
    parts["focus"] = [{"concept": intervention_concept(iv, iv.label)}
                      for iv in study.interventions] + study_level_mesh(study)
    parts["eligibility"] = evidencevariable.eligibility(ctx)
    outcomes = []
    for o in study.outcomes:
        om: dict[str, Any] = {"name": o.measure, "type": researchstudy.objective_type(o.kind)}
        if o.description:
            om["description"] = o.description
        om["reference"] = evidencevariable.outcome(ctx, o)
        outcomes.append(om)
    parts["outcomes"] = outcomes
    researchstudy.research_study(ctx, parts)
    # the ResearchStudy is built last (it points at everything) but is the Bundle's first entry
    rs_key = ("ResearchStudy", study.nct_id)
    ctx.resources = {rs_key: ctx.resources.pop(rs_key), **ctx.resources}
    provenance.provenance(ctx)
    return list(ctx.resources.values()), ctx.findings

