"""Reader for the R4 Bundles fhirtrial writes: R4 Bundle → the Study facts it carries.

It reads R4 elements first and the official R5 cross-version extensions where R4 has no element
(labels, progress status, enrollment numbers, outcome measures), and the ClinicalTrials.gov
codings the builders keep beside every FHIR code. It exists to prove the R4 output loses nothing
(the round-trip test) and to let a FHIR R4 server's ResearchStudy be compared with a registry
record; it does not read arbitrary third-party R4.
"""

from __future__ import annotations

import re
from typing import Any

from ..convert.r4 import ctgov_status, decode
from ..eligibility.fhir import nested_criteria
from ..errors import SourceError
from ..model import (
    Arm,
    Coding,
    Eligibility,
    Intervention,
    Organization,
    Outcome,
    Site,
    SourceInfo,
    Study,
)
from ..tables import table

CTGOV_IDENTIFIER_SYSTEMS = ("http://clinicaltrials.gov", "https://clinicaltrials.gov")
CTGOV_ENUM_SYSTEM = "https://clinicaltrials.gov/data-api/about-api/study-data-structure#enum-"
_R4_PHASES = {"n-a": ["NA"], "early-phase-1": ["EARLY_PHASE1"], "phase-1": ["PHASE1"],
              "phase-1-phase-2": ["PHASE1", "PHASE2"], "phase-2": ["PHASE2"],
              "phase-2-phase-3": ["PHASE2", "PHASE3"], "phase-3": ["PHASE3"],
              "phase-4": ["PHASE4"]}
_OBJECTIVE_KIND = {"primary": "primary", "secondary": "secondary", "exploratory": "other"}
MESH = "http://id.nlm.nih.gov/mesh"
#: the registry's Markdown escapes (fhirtrial.eligibility.criteria.unescape undoes them)
_ESCAPABLE = re.compile(r"([\\`*_{}\[\]()#+\-.!<>=^~|&%$@\"'/:;,?])")
_AGE = re.compile(r"^Age: (?:up to (?P<hi>.+)|(?P<lo>.+) and older|"
                  r"(?P<both_lo>.+) to (?P<both_hi>.+))$")


def ctgov_codes(cc: dict[str, Any] | None, enum: str) -> list[str]:
    """The ClinicalTrials.gov enum values kept as codings of a CodeableConcept."""
    system = CTGOV_ENUM_SYSTEM + enum
    return [c["code"] for c in (cc or {}).get("coding", [])
            if c.get("system") == system and c.get("code")]


def _codes(cc: dict[str, Any] | None) -> set[str]:
    return {c["code"] for c in (cc or {}).get("coding", []) if c.get("code")}


def read_r4_bundle(bundle: dict[str, Any], name: str = "<bundle>") -> Study:
    """The Study facts an R4 Bundle written by fhirtrial carries."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise SourceError(f"{name}: not a FHIR Bundle")
    by_ref: dict[str, dict[str, Any]] = {}
    for e in bundle.get("entry", []):
        res = e.get("resource") or {}
        if e.get("fullUrl"):
            by_ref[e["fullUrl"]] = res
        if res.get("id"):
            by_ref[f"{res.get('resourceType')}/{res['id']}"] = res
    studies = [r for r in by_ref.values() if r.get("resourceType") == "ResearchStudy"
               and not r.get("partOf")]
    if not studies:
        raise SourceError(f"{name}: the Bundle holds no ResearchStudy")
    rs = studies[0]
    nct = next((i.get("value") for i in rs.get("identifier", [])
                if str(i.get("system", "")).rstrip("/") in CTGOV_IDENTIFIER_SYSTEMS), None)
    if not nct:
        raise SourceError(f"{name}: the ResearchStudy has no ClinicalTrials.gov identifier")

    contained = {f"#{c['id']}": c for c in rs.get("contained", []) if c.get("id")}

    def resolve(ref: dict[str, Any] | None) -> dict[str, Any]:
        key = (ref or {}).get("reference", "")
        return contained.get(key) or by_ref.get(key, {})

    exts = rs.get("extension", [])
    study = Study(nct_id=nct, source=SourceInfo(format="fhir-r4-bundle", name=name))
    study.brief_title = rs.get("title")
    for label in decode("ResearchStudy", "label", exts) or []:
        ltype = label.get("type") or {}
        kinds = _codes(ltype) | {str(ltype.get("text", "")).lower()}
        if kinds & {"official-title", "official", "official title"}:
            study.official_title = label.get("value")
        elif kinds & {"acronym"}:
            study.acronym = label.get("value")

    study.overall_status = _status(rs, exts)
    phase_cc = rs.get("phase")
    study.phases = sorted({p for c in ctgov_codes(phase_cc, "Phase") for p in c.split("+")}
                          or {p for c in _codes(phase_cc) for p in _R4_PHASES.get(c, [])})
    # the R5 builder writes a MeSH term matching no registry condition as a condition of its
    # own, so registry conditions and unmatched MeSH terms read back as one list
    study.conditions = [c.get("text") or next(iter(_codes(c)), "")
                        for c in rs.get("condition", [])]
    study.condition_mesh = [Coding(MESH, c["code"], c.get("display"))
                            for cc in rs.get("condition", []) for c in cc.get("coding", [])
                            if c.get("system") == MESH and c.get("code")]
    for focus in rs.get("focus", []):
        if "text" in focus or not _mesh_codings(focus):
            study.interventions.append(_intervention(focus))
        else:  # a study-level MeSH term (no intervention's name carries it)
            study.intervention_mesh.extend(_mesh_codings(focus))
    # every intervention MeSH term, as the registry record holds them: the interventions' first
    named = [c for iv in study.interventions for c in iv.mesh]
    study.intervention_mesh = list({(c.code): c for c in named + study.intervention_mesh}.values())
    study.keywords = [k.get("text", "") for k in rs.get("keyword", [])]

    sponsor = resolve(rs.get("sponsor"))
    if sponsor.get("name"):
        study.lead_sponsor = Organization(sponsor["name"])
    for party in decode("ResearchStudy", "associatedParty", exts) or []:
        if "collaborator" in _codes(party.get("role")):
            org = resolve(party.get("party"))
            name_ = org.get("name") or party.get("name")
            if name_:
                study.collaborators.append(Organization(name_))

    recruitment = decode("ResearchStudy", "recruitment", exts) or {}
    if "actualNumber" in recruitment:
        study.enrollment, study.enrollment_actual = recruitment["actualNumber"], True
    elif "targetNumber" in recruitment:
        study.enrollment, study.enrollment_actual = recruitment["targetNumber"], False

    for arm in rs.get("arm", []):
        types = ctgov_codes(arm.get("type"), "ArmGroupType")
        study.arms.append(Arm(arm.get("name", ""), types[0] if types else None,
                              arm.get("description")))

    for obj in rs.get("objective", []):
        measures = decode("ResearchStudy", "outcomeMeasure", obj.get("extension", []))
        if not measures:
            continue
        m = measures[0]
        kind: Any = next((_OBJECTIVE_KIND[c] for t in m.get("type", []) for c in _codes(t)
                     if c in _OBJECTIVE_KIND), "other")
        study.outcomes.append(Outcome(kind, m.get("name", obj.get("name", "")),
                                      m.get("description")))

    for ref in rs.get("enrollment", []):
        group = resolve(ref)
        if group.get("resourceType") == "Group":
            study.eligibility = _eligibility(group)

    # Location sites are R4 ``site``; R5 sites that are per-site ResearchStudies ride as extensions
    for ref in [*rs.get("site", []), *(decode("ResearchStudy", "site", exts) or [])]:
        loc = resolve(ref)
        if loc.get("resourceType") == "Location":
            study.sites.append(_site(loc))
        elif loc.get("resourceType") == "ResearchStudy":
            study.sites.extend(_site(resolve(inner)) for inner in loc.get("site", []))
    return study


def _status(rs: dict[str, Any], exts: list[dict[str, Any]]) -> str | None:
    """The registry status: kept as a CT.gov coding in progressStatus, else the lossless inverse
    of the R4 status table (R4 alone cannot tell RECRUITING from ENROLLING_BY_INVITATION)."""
    for p in decode("ResearchStudy", "progressStatus", exts) or []:
        codes = ctgov_codes(p.get("state"), "Status")
        if codes:
            return codes[0]
    return ctgov_status(rs.get("status", ""))


def _mesh_codings(concept: dict[str, Any]) -> list[Coding]:
    return [Coding(MESH, c["code"], c.get("display")) for c in concept.get("coding", [])
            if isinstance(c, dict) and c.get("system") == MESH and c.get("code")]


def _intervention(concept: dict[str, Any]) -> Intervention:
    """An R4 focus ("Drug: Cisplatin" + MeSH codings) → the registry intervention it names."""
    text = str(concept.get("text", ""))
    kind, sep, name = text.partition(": ")
    types = {table("intervention-type").display(v).casefold(): v
             for v in table("intervention-type").values()}
    mesh = _mesh_codings(concept)
    if sep and kind.casefold() in types:
        return Intervention(types[kind.casefold()], name, mesh=mesh)
    return Intervention(None, text, mesh=mesh)


def _eligibility(group: dict[str, Any]) -> Eligibility:
    """The enrollment Group → eligibility: criteria from the R5 characteristics each R4
    characteristic carries, written back as Markdown the criteria splitter reads identically."""
    el = Eligibility()
    lines: list[str] = []
    sense: bool | None = None
    for ch in group.get("characteristic", []):
        found = decode("EvidenceVariable", "characteristic", ch.get("extension", []))
        r5 = found[0] if found else {}
        text = str(r5.get("description", ""))
        if "exclude" not in r5:  # age, sex, healthy volunteers: the registry's own fields
            _field(el, text, r5)
            continue
        if r5["exclude"] != sense:
            sense = bool(r5["exclude"])
            lines.append("Exclusion Criteria:" if sense else "Inclusion Criteria:")
        lines.extend(_item(r5, 0))
    el.criteria = "\n".join(lines) or None
    return el


def _item(ch: dict[str, Any], depth: int) -> list[str]:
    # escaped, so unescaping on the way back in gives the text exactly; continuation lines
    # indented under their bullet; nested criteria (not the facts, linkId fact-N) one level down
    pad = "  " * depth
    first, *rest = [_ESCAPABLE.sub(r"\\\1", line) for line in
                    str(ch.get("description", "")).split("\n")]
    out = [f"{pad}* {first}", *(f"{pad}    {line}" for line in rest)]
    for kid in nested_criteria(ch):
        out.extend(_item(kid, depth + 1))
    return out


def _field(el: Eligibility, text: str, ch: dict[str, Any]) -> None:
    head, _, value = text.partition(": ")
    if head == "Age" and (m := _AGE.match(text)):
        el.minimum_age = m.group("both_lo") or m.group("lo")
        el.maximum_age = m.group("both_hi") or m.group("hi")
    elif head == "Sex":
        value_cc = (ch.get("definitionByTypeAndValue") or {}).get("valueCodeableConcept")
        codes = ctgov_codes(value_cc, "Sex")
        by_display = {table("sex").display(v): v for v in table("sex").values()}
        display, _, desc = value.partition(" (")
        el.sex = codes[0] if codes else by_display.get(display)
        if desc:
            el.gender_description = desc[:-1] if desc.endswith(")") else desc
    elif head == "Accepts healthy volunteers":
        el.healthy_volunteers = value == "Yes"


def _site(loc: dict[str, Any]) -> Site:
    addr = loc.get("address") or {}
    city, country = addr.get("city"), addr.get("country")
    name = loc.get("name")
    # a site with no facility is named "City, Country" (or "Study site") by the builder
    if name in (", ".join(p for p in (city, country) if p), "Study site"):
        name = None
    return Site(name, city=city, country=country)
