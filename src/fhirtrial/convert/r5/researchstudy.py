"""The ResearchStudy: the registry record's own facts, pointing at every other resource."""

from __future__ import annotations

from typing import Any

from ...model import Citation, DateInfo, Study
from ...tables import table
from .. import ids, narrative
from .context import Ctx, fhir_instant

TITLE_TYPE = "http://hl7.org/fhir/title-type"
PARTY_ROLE = "http://hl7.org/fhir/research-study-party-role"
OBJECTIVE_TYPE = "http://hl7.org/fhir/research-study-objective-type"
CLASSIFIERS = "http://hl7.org/fhir/research-study-classifiers"
MESH = "http://id.nlm.nih.gov/mesh"
PUBMED = "https://pubmed.ncbi.nlm.nih.gov/"
DOI = "https://doi.org"
OBJECTIVE = {"primary": ("primary", "Primary"), "secondary": ("secondary", "Secondary"),
             "other": ("exploratory", "Exploratory")}
CTGOV_ID_TYPE = ("https://clinicaltrials.gov/data-api/about-api/study-data-structure"
                 "#enum-SecondaryIdType")


def _label(code: str, display: str, value: str) -> dict[str, Any]:
    return {"type": {"coding": [{"system": TITLE_TYPE, "code": code, "display": display}]},
            "value": value}


def role_concept(code: str) -> dict[str, Any]:
    return {"coding": [{"system": PARTY_ROLE, "code": code, "display": code}]}


def identifiers(study: Study) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"use": "official", "system": ids.CTGOV_SYSTEM,
                                  "value": study.nct_id}]
    for sid in study.identifiers:
        ident: dict[str, Any] = {"use": "secondary"}
        label = "Organization study id" if sid.role == "org" else "Secondary id"
        if sid.type:
            ident["type"] = {"coding": [{"system": CTGOV_ID_TYPE, "code": sid.type}],
                             "text": f"{label} ({sid.type})"}
        else:
            ident["type"] = {"text": label}
        ident["value"] = sid.value
        if sid.domain:
            ident["assigner"] = {"display": sid.domain}
        out.append(ident)
    return out


def _milestone(text: str, d: DateInfo | None, end: bool) -> dict[str, Any] | None:
    if d is None:
        return None
    out: dict[str, Any] = {"state": {"text": text}}
    if d.actual is not None:
        out["actual"] = d.actual
    out["period"] = {"end": d.date} if end else {"start": d.date}
    return out


def progress(ctx: Ctx) -> list[dict[str, Any]]:
    """progressStatus[]: the lifecycle state from overallStatus, then the dated milestones."""
    s = ctx.study
    out: list[dict[str, Any]] = []
    where = "protocolSection.statusModule.overallStatus"
    if s.overall_status:
        t = table("overall-status")
        target = t.target(s.overall_status, "r5_state")
        state = ctx.concept("overall-status", s.overall_status, "r5_state", where)
        if state and target and target.code is None:
            known = f"; last known status: {t.display(s.last_known_status)}" if (
                s.last_known_status) else ""
            state["text"] = f"{t.display(s.overall_status)}{known}"
            ctx.warn("code-invalid", f"overall status {s.overall_status} has no R5 "
                     f"research-study-status code: written as text ({target.comment})", where)
        if state:
            out.append({"state": state})
    else:
        ctx.warn("incomplete", "no overall status: progressStatus has no lifecycle state", where)
    if s.start or s.completion:
        overall: dict[str, Any] = {"state": {"coding": [{
            "system": "http://hl7.org/fhir/research-study-status", "code": "overall-study",
            "display": "Overall study"}]}}
        actuals = {d.actual for d in (s.start, s.completion) if d}
        if len(actuals) == 1 and None not in actuals:
            overall["actual"] = actuals.pop()
        overall["period"] = _period(s)
        out.append(overall)
    for m in (_milestone("Study start", s.start, False),
              _milestone("Primary completion", s.primary_completion, True),
              _milestone("Study completion", s.completion, True)):
        if m:
            out.append(m)
    return out


def _period(s: Study) -> dict[str, str]:
    return {k: d.date for k, d in (("start", s.start), ("end", s.completion)) if d}


def phase(ctx: Ctx) -> dict[str, Any] | None:
    phases = sorted(set(ctx.study.phases))
    if not phases:
        return None
    key = "+".join(phases)
    t = table("phase")
    target = t.target(key, "r5")
    text = "/".join(t.display(p) for p in phases)
    if target is None or target.code is None:
        ctx.warn("code-invalid", f"phase combination {key} has no research-study-phase code; "
                 "kept as text", "protocolSection.designModule.phases")
        return {"text": text}
    coding = target.coding()
    return {"coding": [coding] if coding else [], "text": target.display or text}


def design(ctx: Ctx) -> list[dict[str, Any]]:
    s, d = ctx.study, ctx.study.design
    p = "protocolSection.designModule"
    rows: list[tuple[str, str | None, str]] = [
        ("study-type", s.study_type, f"{p}.studyType"),
        ("allocation", d.allocation, f"{p}.designInfo.allocation"),
        ("intervention-model", d.intervention_model, f"{p}.designInfo.interventionModel"),
        ("observational-model", d.observational_model, f"{p}.designInfo.observationalModel"),
        ("time-perspective", d.time_perspective, f"{p}.designInfo.timePerspective"),
        ("masking", d.masking, f"{p}.designInfo.maskingInfo.masking"),
    ]
    rows += [("who-masked", w, f"{p}.designInfo.maskingInfo.whoMasked") for w in d.who_masked]
    out = []
    for name, value, where in rows:
        c = ctx.concept(name, value, "sevco", where, prefix=table(name).label)
        if c:
            out.append(c)
    return out


def conditions(study: Study) -> list[dict[str, Any]]:
    """One condition per registry condition, with the MeSH terms CT.gov matched to it; MeSH
    terms matching no condition are kept as conditions of their own."""
    out = []
    unused = list(study.condition_mesh)
    for cond in study.conditions:
        match = [m for m in unused if (m.display or "").casefold() == cond.casefold()]
        cc: dict[str, Any] = {}
        if match:
            cc["coding"] = [{"system": MESH, "code": m.code, "display": m.display or m.code}
                            for m in match]
            unused = [m for m in unused if m not in match]
        cc["text"] = cond
        out.append(cc)
    for m in unused:
        out.append({"coding": [{"system": MESH, "code": m.code, **(
            {"display": m.display} if m.display else {})}], "text": m.display or m.code})
    return out


def _citation(c: Citation) -> dict[str, Any]:
    t = table("reference-type")
    target = t.target(c.type, "r5") if c.type else None
    out: dict[str, Any] = {"type": target.code if target and target.code else "citation"}
    if c.type and t.entry(c.type):
        out["classifier"] = [{"coding": [t.ctgov_coding(c.type)], "text": t.display(c.type)}]
    if c.pmid:
        out["label"] = f"PMID {c.pmid}"
    if c.citation:
        out["citation"] = c.citation
    if c.pmid:
        out["document"] = {"url": f"{PUBMED}{c.pmid}/"}
    elif c.doi:
        out["document"] = {"url": f"https://doi.org/{c.doi}"}
    if c.doi:
        # RelatedArtifact has no identifier element; a logical reference carries the DOI
        out["resourceReference"] = {"type": "Citation", "identifier": {
            "system": DOI, "value": c.doi}, "display": f"doi:{c.doi}"}
    return out


def related(ctx: Ctx) -> list[dict[str, Any]]:
    s = ctx.study
    out = []
    for i, c in enumerate(s.references):
        if c.type and not table("reference-type").entry(c.type):
            ctx.warn("code-invalid", f"reference type {c.type!r} unknown; written as citation",
                     f"protocolSection.referencesModule.references[{i}].type")
        out.append(_citation(c))
    for link in s.see_also:
        ra: dict[str, Any] = {"type": "documentation"}
        if link.label:
            ra["display"] = link.label
        ra["document"] = {"url": link.url}
        out.append(ra)
    for r in s.related_studies:
        ra = {"type": "similar-to", "label": r.nct_id}
        if r.title:
            ra["display"] = r.title
        ra["document"] = {"url": f"https://clinicaltrials.gov/study/{r.nct_id}"}
        out.append(ra)
    return out


def classifiers(study: Study) -> list[dict[str, Any]]:
    o = study.oversight
    out: list[dict[str, Any]] = []
    if o.fda_regulated_drug:
        out.append({"coding": [{"system": CLASSIFIERS, "code": "fda-regulated-drug",
                                "display": "FDA regulated drug"}]})
    if o.fda_regulated_device:
        out.append({"coding": [{"system": CLASSIFIERS, "code": "fda-regulated-device",
                                "display": "FDA regulated device"}]})
    # no R5 code says "has a data monitoring committee" or "results posted": text keeps them
    if o.has_dmc is not None:
        out.append({"text": "Data monitoring committee: " + ("Yes" if o.has_dmc else "No")})
    if study.has_results:
        out.append({"text": "Results posted on ClinicalTrials.gov"})
    return out


def research_study(ctx: Ctx, parts: dict[str, Any]) -> dict[str, str]:
    """Build the ResearchStudy from the Study and the references to its other resources."""
    s = ctx.study
    body: dict[str, Any] = {}
    if s.last_update_posted and (lu := fhir_instant(s.last_update_posted.date)):
        body["meta"] = {"lastUpdated": lu}
    body["identifier"] = identifiers(s)
    title = s.brief_title or s.official_title or s.acronym
    if title:
        body["title"] = title
    else:
        ctx.warn("incomplete", "no title in the record", "protocolSection.identificationModule")
    labels = []
    if s.brief_title:
        labels.append(_label("short-title", "Short title", s.brief_title))
    if s.official_title:
        labels.append(_label("official", "Official title", s.official_title))
    if s.acronym:
        labels.append(_label("acronym", "Acronym", s.acronym))
    if labels:
        body["label"] = labels
    if parts["protocol"]:
        body["protocol"] = parts["protocol"]
    if rel := related(ctx):
        body["relatedArtifact"] = rel
    if s.last_update_posted:
        body["date"] = s.last_update_posted.date
    pub = table("overall-status").target(s.overall_status, "r5_publication_status") if (
        s.overall_status) else None
    body["status"] = pub.code if pub and pub.code else "unknown"
    pp = ctx.concept("primary-purpose", s.design.primary_purpose, "r5",
                     "protocolSection.designModule.designInfo.primaryPurpose")
    if pp:
        body["primaryPurposeType"] = pp
    if ph := phase(ctx):
        body["phase"] = ph
    if sd := design(ctx):
        body["studyDesign"] = sd
    if parts["focus"]:
        body["focus"] = parts["focus"]
    if cond := conditions(s):
        body["condition"] = cond
    if s.keywords:
        body["keyword"] = [{"text": k} for k in s.keywords]
    if s.brief_summary:
        body["descriptionSummary"] = s.brief_summary
    if s.detailed_description:
        body["description"] = s.detailed_description
    if s.start or s.completion:
        body["period"] = _period(s)
    if parts["sites"]:
        body["site"] = parts["sites"]
    if cls := classifiers(s):
        body["classifier"] = cls
    if parts["parties"]:
        body["associatedParty"] = parts["parties"]
    if prog := progress(ctx):
        body["progressStatus"] = prog
    if s.why_stopped:
        body["whyStopped"] = {"text": s.why_stopped}
    rec: dict[str, Any] = {}
    if s.enrollment is not None:
        if s.enrollment_actual:
            rec["actualNumber"] = s.enrollment
        else:
            # an enrolment of unstated type is the registry's anticipated figure
            rec["targetNumber"] = s.enrollment
    rec["eligibility"] = parts["eligibility"]
    body["recruitment"] = rec
    if parts["groups"]:
        body["comparisonGroup"] = parts["groups"]
    if parts["outcomes"]:
        body["outcomeMeasure"] = parts["outcomes"]
    text = narrative.research_study(s, phase=body.get("phase", {}).get("text"), doses=ctx.doses,
                                    arm_interventions=ctx.arm_interventions,
                                    criteria=ctx.criteria, rendered=ctx.criteria_rendered)
    return ctx.add("ResearchStudy", s.nct_id, f"{s.nct_id}: {title or 'untitled study'}", [],
                   body, business_id=False, text=text)


def party(name: str | None, role: dict[str, Any], ref: dict[str, str] | None,
          classifier: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    out["role"] = role
    if classifier:
        out["classifier"] = classifier
    if ref:
        out["party"] = ref
    return out


def objective_type(kind: str) -> list[dict[str, Any]]:
    code, display = OBJECTIVE[kind]
    return [{"coding": [{"system": OBJECTIVE_TYPE, "code": code, "display": display}]}]


__all__ = ["objective_type", "party", "research_study", "role_concept"]
