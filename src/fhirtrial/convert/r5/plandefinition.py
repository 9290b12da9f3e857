"""PlanDefinition per arm (one action per intervention, one child action per dose level) and
ActivityDefinition per dose level (the R5 place for a structured Dosage)."""

from __future__ import annotations

from typing import Any

from ...model import Arm, DoseLevel, Intervention
from ...tables import table
from .. import ids, narrative
from ..doses import extract_dose_levels, route_target, timing_of
from .context import Ctx, intervention_concept, number

PLAN_TYPE = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
UCUM = "http://unitsofmeasure.org"


def _dose_quantity(level: DoseLevel) -> dict[str, Any] | None:
    if level.value is None or not level.unit:
        return None
    per = level.per if level.per not in (None, "person", "dose", "d") else None
    code = f"{level.unit}/{per}" if per else level.unit
    return {"value": number(level.value), "unit": code, "system": UCUM, "code": code}


def dosage(level: DoseLevel) -> dict[str, Any]:
    """A Dosage for one dose level; the words it came from are always its text."""
    out: dict[str, Any] = {"text": level.text}
    timing = timing_of(level.frequency)
    if timing:
        rep: dict[str, Any] = {}
        if timing.count is not None:
            rep["count"] = timing.count
        if timing.frequency is not None:
            rep["frequency"] = timing.frequency
            rep["period"] = timing.period
            rep["periodUnit"] = timing.period_unit
        out["timing"] = {"repeat": rep, "code": {"text": level.frequency}}
    if level.route:
        target = route_target(level.route)
        route: dict[str, Any] = {}
        if target and (c := target.coding()):
            route["coding"] = [c]
        route["text"] = level.route
        out["route"] = route
    q = _dose_quantity(level)
    if q:
        if level.per == "d":
            # an amount per day is a rate, not the amount of one administration
            q = {**q, "unit": f"{q['unit']}/d", "code": f"{q['code']}/d"}
            out["doseAndRate"] = [{"rateQuantity": q}]
        else:
            out["doseAndRate"] = [{"doseQuantity": q}]
    return out


def _activity(ctx: Ctx, arm: Arm, iv: Intervention, level: DoseLevel) -> str:
    """An ActivityDefinition for one dose level; returns its canonical URL."""
    rid = ctx.new_id("ActivityDefinition", "dose", arm.label, iv.label, level.text)
    url = ids.full_url("ActivityDefinition", rid)
    kind = table("intervention-type").target(iv.type, "activity_kind") if iv.type else None
    body: dict[str, Any] = {"url": url, "title": f"{iv.name} {level.text}", "status": "active",
                            "description": iv.description or iv.name}
    if kind and kind.code:
        body["kind"] = kind.code
    body["productCodeableConcept"] = intervention_concept(iv, iv.name)
    body["dosage"] = [dosage(level)]
    ctx.add("ActivityDefinition", rid, f"{iv.name}: {level.text}", [], body,
            text=narrative.activity(arm, iv, level))
    return url


def _levels(arm: Arm, iv: Intervention, ivs: list[Intervention]) -> list[DoseLevel]:
    levels = extract_dose_levels(iv.description, route_text=arm.description)
    if levels:
        return levels
    if len(ivs) == 1:
        # the arm's own words (or a reader's dose levels) apply when it gives one intervention
        return arm.dose_levels or extract_dose_levels(arm.description,
                                                      route_text=iv.description)
    text = (arm.description or "").casefold()
    named = [other for other in ivs if other.name.casefold() in text]
    # with several interventions, the arm's dose is this one's only when it alone is named
    return (extract_dose_levels(arm.description, route_text=iv.description)
            if named == [iv] else [])


def intervention_action(ctx: Ctx, arm: Arm | None, iv: Intervention, ivs: list[Intervention],
                        where: str) -> dict[str, Any]:
    """The action for one intervention (dose levels as child actions)."""
    action: dict[str, Any] = {"title": iv.name}
    if iv.description:
        action["description"] = iv.description
    if iv.other_names:
        action["textEquivalent"] = "Other names: " + "; ".join(iv.other_names)
    code = ctx.concept("intervention-type", iv.type, None, f"{where}.type")
    if code:
        action["code"] = code
    if arm is not None:
        levels = _levels(arm, iv, ivs)
        ctx.doses[(arm.label, iv.label)] = levels
        children = [{"title": f"{iv.name} {lv.text}", "description": lv.text,
                     "definitionCanonical": _activity(ctx, arm, iv, lv)}
                    for lv in levels]
        if children:
            action["action"] = children
    return action


def arm_interventions(arm: Arm, interventions: list[Intervention]) -> list[Intervention]:
    """The interventions an arm gives: named by the arm ("Drug: X") or naming the arm."""
    names = {n.casefold() for n in arm.intervention_names}
    return [iv for iv in interventions
            if iv.label.casefold() in names or iv.name.casefold() in names
            or arm.label.casefold() in {a.casefold() for a in iv.arm_labels}]


def plan_for_arm(ctx: Ctx, arm: Arm, index: int) -> dict[str, str]:
    """The PlanDefinition of what an arm's participants receive."""
    study = ctx.study
    rid = ctx.new_id("PlanDefinition", "arm", arm.label)
    ivs = arm_interventions(arm, study.interventions)
    ctx.arm_interventions.setdefault(arm.label, ivs)
    body: dict[str, Any] = {"title": arm.label, "type": {"coding": [{
        "system": PLAN_TYPE, "code": "clinical-protocol", "display": "Clinical Protocol"}]},
        "status": "active"}
    if arm.description:
        body["description"] = arm.description
    actions = [intervention_action(ctx, arm, iv, ivs,
                                   f"protocolSection.armsInterventionsModule.interventions"
                                   f"[{study.interventions.index(iv)}]") for iv in ivs]
    if actions:
        body["action"] = actions
    doses = {iv.label: ctx.doses.get((arm.label, iv.label), []) for iv in ivs}
    return ctx.add("PlanDefinition", rid, f"Arm: {arm.label}", [], body,
                   text=narrative.plan(arm, ivs, doses))


def plan_for_unassigned(ctx: Ctx, ivs: list[Intervention]) -> dict[str, str]:
    """One PlanDefinition for interventions no arm names (or a study without arms)."""
    study = ctx.study
    rid = ctx.new_id("PlanDefinition", "interventions")
    body: dict[str, Any] = {"title": "Study interventions", "type": {"coding": [{
        "system": PLAN_TYPE, "code": "clinical-protocol", "display": "Clinical Protocol"}]},
        "status": "active",
        "description": "Interventions the registry record lists without assigning them to an arm."}
    body["action"] = [intervention_action(
        ctx, None, iv, ivs,
        f"protocolSection.armsInterventionsModule.interventions[{study.interventions.index(iv)}]")
        for iv in ivs]
    return ctx.add("PlanDefinition", rid, "Study interventions", [], body,
                   text=narrative.plan(None, ivs, {}))
