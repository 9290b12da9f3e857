"""EvidenceVariables: the eligibility criteria, each arm's intended exposure, each outcome."""

from __future__ import annotations

import re
from typing import Any

from ...eligibility import criteria_for
from ...eligibility.fhir import characteristic
from ...model import Arm, Intervention, Outcome
from ...tables import table
from .. import narrative
from .context import Ctx, intervention_concept, number

LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
AGE_TYPE = {"coding": [{"system": LOINC, "code": "30525-0", "display": "Age"},
                       {"system": SCT, "code": "424144002",
                        "display": "Current chronological age"}], "text": "Age"}
SEX_TYPE = {"coding": [{"system": LOINC, "code": "46098-0", "display": "Sex"}], "text": "Sex"}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s+([A-Za-z]+)\s*$")


def _age_quantity(ctx: Ctx, age: str | None, field: str) -> dict[str, Any] | None:
    if not age:
        return None
    where = f"protocolSection.eligibilityModule.{field}"
    m = _AGE.match(age)
    if not m:
        ctx.warn("value", f"age {age!r} is not '<number> <unit>'; kept as text only", where)
        return None
    target = table("age-unit").target(m.group(2).capitalize(), "ucum")
    if target is None or target.code is None:
        ctx.warn("code-invalid", f"age unit {m.group(2)!r} has no UCUM mapping "
                 "(mappings/age-unit.json); kept as text only", where)
        return None
    return {"value": number(float(m.group(1))), "unit": target.display or target.code,
            "system": UCUM, "code": target.code}


def _age_characteristic(ctx: Ctx) -> dict[str, Any] | None:
    el = ctx.study.eligibility
    if not el.minimum_age and not el.maximum_age:
        return None
    if el.minimum_age and el.maximum_age:
        text = f"Age: {el.minimum_age} to {el.maximum_age}"
    elif el.minimum_age:
        text = f"Age: {el.minimum_age} and older"
    else:
        text = f"Age: up to {el.maximum_age}"
    low = _age_quantity(ctx, el.minimum_age, "minimumAge")
    high = _age_quantity(ctx, el.maximum_age, "maximumAge")
    out: dict[str, Any] = {"description": text}
    if (low or not el.minimum_age) and (high or not el.maximum_age):
        rng = {k: v for k, v in (("low", low), ("high", high)) if v}
        out["definitionByTypeAndValue"] = {"type": AGE_TYPE, "valueRange": rng}
    return out


def _sex_characteristic(ctx: Ctx) -> dict[str, Any] | None:
    el = ctx.study.eligibility
    if not el.sex:
        return None
    t = table("sex")
    text = f"Sex: {t.display(el.sex)}"
    if el.gender_description:
        text += f" ({el.gender_description})"
    out: dict[str, Any] = {"description": text}
    concept = ctx.concept("sex", el.sex, "r5", "protocolSection.eligibilityModule.sex")
    target = t.target(el.sex, "r5")
    if concept and target and target.code:
        out["definitionByTypeAndValue"] = {"type": SEX_TYPE, "valueCodeableConcept": concept}
    return out


def eligibility(ctx: Ctx) -> dict[str, str]:
    """The eligibility EvidenceVariable: age, sex, healthy volunteers, then every criterion."""
    study = ctx.study
    el = study.eligibility
    rid = ctx.new_id("EvidenceVariable", "eligibility")
    chars: list[dict[str, Any]] = []
    for c in (_age_characteristic(ctx), _sex_characteristic(ctx)):
        if c:
            chars.append(c)
    if el.healthy_volunteers is not None:
        chars.append({"description": "Accepts healthy volunteers: "
                      + ("Yes" if el.healthy_volunteers else "No"),
                      "definitionByTypeAndValue": {
                          "type": {"text": "Accepts healthy volunteers"},
                          "valueBoolean": el.healthy_volunteers}})
    criteria = criteria_for(el.criteria)
    ctx.criteria = criteria
    # one characteristic per criterion: its text, sense, facts (any-of in an exclusion,
    # nested items as a combination) and time windows — see fhirtrial.eligibility.fhir
    chars.extend(characteristic(c) for c in criteria)
    body: dict[str, Any] = {"title": f"Eligibility criteria of {study.nct_id}",
                            "status": "active"}
    desc = [p for p in (el.study_population and f"Study population: {el.study_population}",
                        el.sampling_method and "Sampling method: "
                        + el.sampling_method.replace("_", " ").lower()) if p]
    if desc:
        body["description"] = "\n\n".join(desc)
    body["actual"] = False
    if chars:
        body["characteristic"] = chars
    return ctx.add("EvidenceVariable", rid, f"Eligibility criteria of {study.nct_id}", [], body,
                   text=narrative.eligibility(study, criteria,
                                              rendered=ctx.criteria_rendered))


def exposure(ctx: Ctx, arm: Arm, ivs: list[Intervention], plan: dict[str, str]) -> dict[str, str]:
    """The arm's intended exposure (what R5 comparisonGroup.intendedExposure must point to),
    documented by the arm's PlanDefinition."""
    rid = ctx.new_id("EvidenceVariable", "exposure", arm.label)
    body: dict[str, Any] = {"title": f"Intended exposure: {arm.label}", "status": "active"}
    if arm.description:
        body["description"] = arm.description
    body["relatedArtifact"] = [{"type": "documentation", "label": "protocol",
                                "display": f"Arm: {arm.label}", "resourceReference": plan}]
    body["actual"] = False
    chars = []
    for iv in ivs:
        chars.append({"description": iv.label,
                      "definitionCodeableConcept": intervention_concept(iv, iv.name)})
    if chars:
        body["characteristic"] = chars
    return ctx.add("EvidenceVariable", rid, f"Intended exposure: {arm.label}",
                   [("Interventions", "; ".join(iv.label for iv in ivs))], body)


def outcome(ctx: Ctx, o: Outcome) -> dict[str, str]:
    """An outcome measure; its time frame is the characteristic's timeFromEvent description."""
    rid = ctx.new_id("EvidenceVariable", "outcome", o.kind, o.measure, o.time_frame)
    body: dict[str, Any] = {"title": o.measure, "status": "active"}
    if o.description:
        body["description"] = o.description
    body["actual"] = False
    char: dict[str, Any] = {"description": o.measure}
    if o.time_frame:
        char["timeFromEvent"] = [{"description": o.time_frame}]
    body["characteristic"] = [char]
    return ctx.add("EvidenceVariable", rid, o.measure,
                   [("Type", o.kind), ("Time frame", o.time_frame)], body)
