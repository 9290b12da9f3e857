"""The R5 → R4 writer: every element of the R5 Bundle either goes to its R4 element or travels as
the official cross-version extension, so the R4 Bundle holds everything the R5 one does.

This is the only module that knows how R4 differs from R5. The generic rule (an element R4 has
under the same name, with a type R4 accepts, is copied; backbone elements recurse; anything else
is an extension) covers most resources; the functions below handle what R4 expresses differently:
ResearchStudy (lifecycle ``status``, ``arm``, ``objective``, ``enrollment``, ``sponsor`` …),
Group (``actual`` for ``membership``) and EvidenceVariable, which R4 models differently: the
eligibility criteria become the R4 ``enrollment`` Group, any other EvidenceVariable a ``Basic``
resource whose content is all cross-version extensions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ...model import DateInfo, Finding, Study
from ..ids import business_identifier, full_url
from ..r5.context import fhir_instant
from .status import r4_status
from .xver import element_type, encode, fits_r4

_TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"
#: R5 publishes these code systems under hl7.org/fhir; R4 under terminology.hl7.org
_MOVED_SYSTEMS = {f"http://hl7.org/fhir/{n}": _TERMINOLOGY + n for n in (
    "research-study-phase", "research-study-prim-purp-type", "research-study-arm-type",
    "research-study-objective-type")}
_R4_GROUP_TYPES = {"person", "animal", "practitioner", "device", "medication", "substance"}
_R4_OBJECTIVE_TYPES = {"primary", "secondary", "exploratory"}
_SPONSOR_ROLES = ("lead-sponsor", "sponsor")
_PI_ROLES = ("primary-investigator",)
_CONTACT_ROLES = ("general-contact", "recruitment-contact")
RESOURCE_TYPES_SYSTEM = "http://hl7.org/fhir/resource-types"
#: the builders keep the registry's own enum value as a coding in one of these systems
_CTGOV_SYSTEMS = ("https://clinicaltrials.gov/data-api/about-api/study-data-structure#enum-",
                  "http://clinicaltrials.gov")


@dataclass
class _Context:
    """What the writer knows about the whole Bundle while it writes one resource."""

    types: dict[str, str]  # reference (fullUrl, Type/id or #id) → resourceType
    resources: dict[str, dict[str, Any]]
    eligibility: set[str]  # references to EvidenceVariables that are eligibility criteria
    findings: list[Finding] = field(default_factory=list)
    overall_status: str | None = None
    last_known_status: str | None = None


def to_r4(bundle: dict[str, Any], *, study: Study | None = None,
          overall_status: str | None = None, last_known_status: str | None = None,
          ) -> tuple[dict[str, Any], list[Finding]]:
    """An R5 Bundle → the same content as an R4 Bundle, and findings about approximations.

    The registry's status (``study.overall_status``, or ``overall_status`` without a Study) keys
    the R4 ``status`` table: R5's own lifecycle codes cannot say UNKNOWN or WITHHELD. The Study's
    record dates stand in for a missing ``Provenance.recorded``, which R4 requires.
    """
    if study is not None:
        overall_status, last_known_status = study.overall_status, study.last_known_status
    ctx = _Context({}, {}, set(), overall_status=overall_status,
                   last_known_status=last_known_status)
    entries = bundle.get("entry", [])
    for e in entries:
        _index(ctx, e.get("resource") or {}, e.get("fullUrl"))
    remap: dict[str, tuple[str, str]] = {}  # old reference → (new reference, new type)
    out_entries = []
    for e in entries:
        res = e.get("resource")
        new_e = {k: copy.deepcopy(v) for k, v in e.items() if k in (
            "fullUrl", "search", "request", "response", "link")}
        if res is not None:
            new_res = write_resource(res, ctx)
            new_e["resource"] = new_res
            old_t, new_t = res["resourceType"], new_res["resourceType"]
            if old_t != new_t and res.get("id"):
                new_url = full_url(new_t, res["id"])
                for old in filter(None, (e.get("fullUrl"), f"{old_t}/{res['id']}")):
                    remap[old] = (new_url if old == e.get("fullUrl") else
                                  f"{new_t}/{res['id']}", new_t)
                if e.get("fullUrl"):
                    new_e["fullUrl"] = new_url
            if "request" in new_e:
                new_e["request"] = _request(new_res)
        out_entries.append({k: new_e[k] for k in (
            "link", "fullUrl", "resource", "search", "request", "response") if k in new_e})
    out_entries = _provenance_recorded(out_entries, study, ctx)
    _stable_canonicals(out_entries)
    out: dict[str, Any] = {k: copy.deepcopy(v) for k, v in bundle.items() if k in (
        "resourceType", "id", "meta", "implicitRules", "language", "identifier", "type",
        "timestamp", "total", "link", "signature")}
    out["entry"] = out_entries
    _rewrite_references(out, remap)
    return out, ctx.findings


def _stable_canonicals(entries: list[dict[str, Any]]) -> None:
    """Canonical URLs that are the resource's own ``urn:uuid`` fullUrl → its business URI.

    A transaction's ``urn:uuid`` names are placeholders: R4 servers (Medplum) replace them in
    every string, canonical ``url`` included, by the server's ``Type/id``, so the stored
    canonical differs per server and a later compare always sees a change. The identifier URI
    (``urn:fhirtrial:Type/id``) is as stable as the id and survives a transaction unchanged;
    ``definitionCanonical`` values pointing at it follow.
    """
    moved = {}
    for e in entries:
        res = e.get("resource") or {}
        if e.get("fullUrl") and res.get("url") == e["fullUrl"] and res.get("id"):
            moved[e["fullUrl"]] = business_identifier(res["resourceType"], res["id"])["value"]
    if moved:
        for e in entries:
            if "resource" in e:
                e["resource"] = _replace_strings(e["resource"], moved)


def _replace_strings(node: Any, moved: dict[str, str], key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _replace_strings(v, moved, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_strings(v, moved, key) for v in node]
    if isinstance(node, str) and key != "reference" and node in moved:
        return moved[node]
    return node


def _request(res: dict[str, Any]) -> dict[str, str]:
    """A transaction entry's request in R4: a plain create.

    Conditional updates (``PUT Type?identifier=…``, the R5 Bundle's shape) need the server to
    isolate the whole transaction, and real R4 servers bound that: Medplum refuses more than 8
    conditional entries or 50 updates in one transaction, so a study with its sites would be
    refused whole. Creates are accepted at any size by every R4 server; re-sending a Bundle
    therefore adds copies, and ``fhirtrial push`` is the idempotent way to update a server.
    """
    return {"method": "POST", "url": str(res["resourceType"])}


#: record-level registry dates, any of which stands in for the last-update date as
#: Provenance.recorded; study dates (start, completion) are not: they may lie in the future
_RECORD_DATES = ("last_update_posted", "results_first_posted", "first_posted",
                 "first_submitted", "status_verified")


def recorded_instant(study: Study | None) -> tuple[str, str] | None:
    """(instant, field) of the latest record-level date of the Study, or None."""
    if study is None:
        return None
    found = []
    for name in _RECORD_DATES:
        value = getattr(study, name)
        date = value.date if isinstance(value, DateInfo) else value
        if instant := fhir_instant(date):
            found.append((instant, name))
    # the latest: the record was last written no earlier than any date it states
    return max(found, key=lambda f: f[0]) if found else None


def _provenance_recorded(entries: list[dict[str, Any]], study: Study | None,
                         ctx: _Context) -> list[dict[str, Any]]:
    """Give every Provenance the ``recorded`` instant R4 requires (1..1), or leave it out.

    R5 leaves ``recorded`` out when the record has no last-update date. R4 takes the latest
    other record date; with none at all, the Provenance (and the Device only it names) is left
    out rather than stamped with an invented time — a warning says so.
    """
    missing = [e for e in entries if e.get("resource", {}).get("resourceType") == "Provenance"
               and "recorded" not in e["resource"]]
    if not missing:
        return entries
    found = recorded_instant(study)
    if found is not None:
        instant, name = found
        for e in missing:
            e["resource"] = _ordered_provenance({**e["resource"], "recorded": instant})
        ctx.findings.append(Finding(
            "warning", "informational", f"the record has no last-update date; R4 "
            f"Provenance.recorded (required) is its {name.replace('_', ' ')} date {instant}",
            "Provenance.recorded"))
        return entries
    dropped = {e.get("fullUrl") for e in missing}
    agents = {a.get("who", {}).get("reference") for e in missing
              for a in e["resource"].get("agent", [])}
    still_named = {r for e in entries if e.get("fullUrl") not in dropped
                   for r in _references(e.get("resource"))}
    dropped |= {a for a in agents if a and a not in still_named}
    ctx.findings.append(Finding(
        "warning", "incomplete", "the record states no registry date; R4 Provenance.recorded is "
        "required, so the Provenance is left out of the R4 Bundle rather than given an "
        "invented time", "Provenance.recorded"))
    return [e for e in entries if e.get("fullUrl") not in dropped]


def _ordered_provenance(res: dict[str, Any]) -> dict[str, Any]:
    # recorded sits after target/occurred[x] in FHIR's element order
    head = [k for k in res if k in ("resourceType", "id", "meta", "implicitRules", "language",
                                    "text", "contained", "extension", "modifierExtension",
                                    "target", "occurredPeriod", "occurredDateTime")]
    return {**{k: res[k] for k in head}, "recorded": res["recorded"],
            **{k: v for k, v in res.items() if k not in head and k != "recorded"}}


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return own + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


def _index(ctx: _Context, res: dict[str, Any], url: str | None) -> None:
    rt, rid = res.get("resourceType"), res.get("id")
    if not rt:
        return
    for key in filter(None, (url, f"{rt}/{rid}" if rid else None)):
        ctx.types[key] = rt
        ctx.resources[key] = res
    for c in res.get("contained", []):
        if c.get("id"):
            ctx.types[f"#{c['id']}"] = c["resourceType"]
            ctx.resources[f"#{c['id']}"] = c
    if rt == "ResearchStudy":
        ref = ((res.get("recruitment") or {}).get("eligibility") or {}).get("reference")
        if ref:
            ctx.eligibility.add(ref)


def _rewrite_references(node: Any, remap: dict[str, tuple[str, str]]) -> None:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in remap:
            node["reference"], new_type = remap[ref]
            if "type" in node:
                node["type"] = new_type
        for v in node.values():
            _rewrite_references(v, remap)
    elif isinstance(node, list):
        for v in node:
            _rewrite_references(v, remap)


def write_resource(res: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    """One R5 resource → its R4 form (see the module docstring for the rules)."""
    rt = res["resourceType"]
    if rt == "ResearchStudy":
        return _research_study(res, ctx)
    if rt == "Group":
        return _group(res, ctx)
    if rt == "EvidenceVariable":
        ref_forms = {f"EvidenceVariable/{res.get('id')}", f"#{res.get('id')}"}
        ref_forms |= {u for u, r in ctx.resources.items() if r is res}
        if ref_forms & ctx.eligibility:
            return _eligibility_group(res, ctx)
        return _basic(res, ctx)
    return generic(res, ctx)


def generic(res: dict[str, Any], ctx: _Context, *, rt: str | None = None,
            skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Copy what R4 has under the same name and type; everything else as extensions."""
    rt = rt or res["resourceType"]
    out = _element(rt, "", rt, rt, {k: v for k, v in res.items() if k not in skip}, ctx)
    return out


def _element(rt: str, path: str, r5_model: str, r4_model: str, obj: dict[str, Any],
             ctx: _Context) -> dict[str, Any]:
    out: dict[str, Any] = {}
    exts: list[dict[str, Any]] = []
    for key, val in obj.items():
        sub = f"{path}.{key}" if path else key
        if key in ("resourceType", "id", "extension", "modifierExtension"):
            out[key] = copy.deepcopy(val)
            continue
        if key == "contained":
            out[key] = [write_resource(c, ctx) for c in val]
            continue
        if key.startswith("_"):
            if key[1:] in obj and element_type("R4", r4_model, key[1:]) is not None:
                out[key] = copy.deepcopy(val)
            continue
        r5 = element_type("R5", r5_model, key)
        r4 = element_type("R4", r4_model, key)
        if r5 is None:
            ctx.findings.append(Finding("warning", "structure",
                                        f"{r5_model}.{key} is not an R5 element; dropped", sub))
            continue
        if r4 is not None and r4.is_list == r5.is_list:
            items = val if isinstance(val, list) else [val]
            if r5.is_backbone and r4.is_backbone:
                conv = [_element(rt, sub, r5.name, r4.name, i, ctx) for i in items]
                out[key] = conv if r4.is_list else conv[0]
                continue
            if _compatible(r5.name, r4.name, items):
                out[key] = copy.deepcopy(val)
                continue
        exts.extend(encode(rt, sub, r5_model, key, val))
    if exts:
        out["extension"] = [*out.get("extension", []), *exts]
    return _ordered(out)


def _compatible(r5_type: str, r4_type: str, items: list[Any]) -> bool:
    text = {"string", "markdown"}
    if r5_type != r4_type and not {r5_type, r4_type} <= text:
        return False
    if r5_type[0].islower():  # primitive of the same type
        return True
    return all(fits_r4(r4_type, i) for i in items)


def _ordered(out: dict[str, Any]) -> dict[str, Any]:
    # resourceType, id, meta, text, contained, extension first: how FHIR JSON is usually read
    head = [k for k in ("resourceType", "id", "meta", "implicitRules", "language", "text",
                        "contained", "extension", "modifierExtension") if k in out]
    return {**{k: out[k] for k in head}, **{k: v for k, v in out.items() if k not in head}}


def _moved(cc: dict[str, Any]) -> dict[str, Any]:
    cc = copy.deepcopy(cc)
    for c in cc.get("coding", []):
        if c.get("system") in _MOVED_SYSTEMS:
            c["system"] = _MOVED_SYSTEMS[c["system"]]
    return cc


def _codes(cc: dict[str, Any] | None) -> set[str]:
    return {c.get("code") for c in (cc or {}).get("coding", []) if c.get("code")}


def _research_study(res: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    rt = "ResearchStudy"
    special = frozenset({
        "status", "phase", "primaryPurposeType", "studyDesign", "region", "whyStopped",
        "description", "descriptionSummary", "site", "associatedParty", "recruitment",
        "comparisonGroup", "objective", "outcomeMeasure", "focus"})
    out = generic(res, ctx, skip=special)
    exts: list[dict[str, Any]] = []
    native: dict[str, Any] = {}

    is_part = bool(res.get("partOf"))  # a per-site ResearchStudy: its status is the site's
    status_src = _site_status(res) if is_part else ctx.overall_status
    code, found = r4_status(status_src, None if is_part else ctx.last_known_status)
    if not is_part:
        ctx.findings.extend(found)
    native["status"] = code
    if "status" in res:
        exts += encode(rt, "status", rt, "status", res["status"])
    for key in ("phase", "primaryPurposeType"):
        if key in res:
            native[key] = _moved(res[key])
    if res.get("studyDesign"):
        native["category"] = copy.deepcopy(res["studyDesign"])
        exts += encode(rt, "studyDesign", rt, "studyDesign", res["studyDesign"])
    # R5 focus is CodeableReference, R4 focus CodeableConcept: the concept is the R4 focus; an
    # item that also names a resource travels whole as an extension
    focus = res.get("focus", [])
    if concepts := [copy.deepcopy(f["concept"]) for f in focus if f.get("concept")]:
        native["focus"] = concepts
    if referencing := [f for f in focus if set(f) - {"concept"}]:
        exts += encode(rt, "focus", rt, "focus", referencing)
    if res.get("region"):
        native["location"] = copy.deepcopy(res["region"])
    if res.get("whyStopped"):
        native["reasonStopped"] = copy.deepcopy(res["whyStopped"])
    if res.get("description") or res.get("descriptionSummary"):
        native["description"] = res.get("description") or res["descriptionSummary"]
    if "descriptionSummary" in res:
        exts += encode(rt, "descriptionSummary", rt, "descriptionSummary",
                     res["descriptionSummary"])

    sites: list[dict[str, Any]] = []
    other_sites: list[dict[str, Any]] = []
    for s in res.get("site", []):
        kind = s.get("type") or ctx.types.get(s.get("reference", ""))
        (sites if kind == "Location" else other_sites).append(s)
    if sites:
        native["site"] = copy.deepcopy(sites)
    if other_sites:
        exts += encode(rt, "site", rt, "site", other_sites)

    parties = res.get("associatedParty", [])
    if parties:
        exts += encode(rt, "associatedParty", rt, "associatedParty", parties)
        sponsor = _party(parties, _SPONSOR_ROLES, {"Organization"}, ctx)
        if sponsor:
            native["sponsor"] = sponsor
        pi = _party(parties, _PI_ROLES, {"Practitioner", "PractitionerRole"}, ctx)
        if pi:
            native["principalInvestigator"] = pi
        contacts = [_contact(p, ctx) for p in parties
                    if _codes(p.get("role")) & set(_CONTACT_ROLES)]
        if contacts:
            native["contact"] = contacts

    rec = res.get("recruitment")
    if rec:
        if rec.get("eligibility"):
            native["enrollment"] = [copy.deepcopy(rec["eligibility"])]
        rest = {k: v for k, v in rec.items() if k != "eligibility"}
        if rest:
            exts += encode(rt, "recruitment", rt, "recruitment", rest)

    arms = []
    for g in res.get("comparisonGroup", []):
        arm: dict[str, Any] = {"name": g.get("name", "")}
        if g.get("type"):
            arm["type"] = _moved(g["type"])
        if g.get("description"):
            arm["description"] = g["description"]
        rest_exts: list[dict[str, Any]] = []
        for k, v in g.items():
            if k not in ("name", "type", "description", "id", "extension"):
                rest_exts += encode(rt, f"comparisonGroup.{k}", "ResearchStudyComparisonGroup",
                                    k, v)
        if g.get("extension") or rest_exts:
            arm = {"extension": [*g.get("extension", []), *rest_exts], **arm}
        arms.append(arm)
    if arms:
        native["arm"] = arms

    objectives = []
    for o in res.get("objective", []):
        obj: dict[str, Any] = {}
        if o.get("name"):
            obj["name"] = o["name"]
        if o.get("type"):
            obj["type"] = _moved(o["type"])
        if o.get("description"):
            obj = {"extension": encode(rt, "objective.description", "ResearchStudyObjective",
                                       "description", o["description"]), **obj}
        objectives.append(obj)
    for m in res.get("outcomeMeasure", []):
        # the R5 outcome measure, whole, on the R4 objective that names it: R4-native readers
        # see the objective, cross-version readers the measure
        obj = {"extension": encode(rt, "outcomeMeasure", rt, "outcomeMeasure", m)}
        if m.get("name"):
            obj["name"] = m["name"]
        for t in m.get("type", []):
            otype = next((c for c in _codes(t) if c in _R4_OBJECTIVE_TYPES), None)
            if otype:
                obj["type"] = {"coding": [{"system": _TERMINOLOGY + "research-study-objective-type",
                                           "code": otype}]}
                break
        objectives.append(obj)
    if objectives:
        native["objective"] = objectives

    if exts:
        out["extension"] = [*out.get("extension", []), *exts]
    return _ordered({**out, **native})


def _site_status(res: dict[str, Any]) -> str | None:
    """The registry status of a per-site ResearchStudy, read back from its progressStatus."""
    for p in res.get("progressStatus", []):
        for c in (p.get("state") or {}).get("coding", []):
            if c.get("code") and str(c.get("system", "")).startswith(_CTGOV_SYSTEMS):
                return str(c["code"])
    for p in res.get("progressStatus", []):
        codes = _codes(p.get("state"))
        for ct, r5 in (("RECRUITING", "recruiting"), ("NOT_YET_RECRUITING", "not-yet-recruiting"),
                       ("ACTIVE_NOT_RECRUITING", "active-but-not-recruiting"),
                       ("ENROLLING_BY_INVITATION", "enrolling-by-invitation"),
                       ("COMPLETED", "completed"), ("TERMINATED", "terminated"),
                       ("WITHDRAWN", "withdrawn"), ("SUSPENDED", "temporarily-closed-to-accrual")):
            if r5 in codes:
                return ct
    return None


def _party(parties: list[dict[str, Any]], roles: tuple[str, ...], kinds: set[str],
           ctx: _Context) -> dict[str, Any] | None:
    for role in roles:
        for p in parties:
            ref = p.get("party") or {}
            kind = ref.get("type") or ctx.types.get(ref.get("reference", ""))
            if role in _codes(p.get("role")) and kind in kinds:
                return copy.deepcopy(ref)
    return None


def _contact(party: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    detail: dict[str, Any] = {}
    target = ctx.resources.get((party.get("party") or {}).get("reference", ""), {})
    name = party.get("name") or next((n.get("text") for n in target.get("name", [])
                                      if isinstance(n, dict) and n.get("text")), None)
    if name:
        detail["name"] = name
    telecom = target.get("telecom") or [t for c in target.get("contact", [])
                                        for t in c.get("telecom", [])]
    if telecom:
        detail["telecom"] = copy.deepcopy(telecom)
    return detail


def _group(res: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    rt = "Group"
    out = generic(res, ctx, skip=frozenset({"membership", "type"}))
    exts: list[dict[str, Any]] = []
    if "membership" in res:
        exts += encode(rt, "membership", rt, "membership", res["membership"])
    out["actual"] = res.get("membership") == "enumerated"
    gtype = res.get("type")
    out["type"] = gtype if gtype in _R4_GROUP_TYPES else "person"
    if gtype and gtype not in _R4_GROUP_TYPES:
        exts += encode(rt, "type", rt, "type", gtype)
    if exts:
        out["extension"] = [*out.get("extension", []), *exts]
    return _ordered(out)


def _carried(res: dict[str, Any], ctx: _Context, new_type: str,
             keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """An R4 ``new_type`` shell for an R5 resource R4 shapes differently: the resource header
    copied, contained resources written, and every other element (but ``keep``, which the
    caller maps itself) carried as a cross-version extension."""
    rt = res["resourceType"]
    out: dict[str, Any] = {"resourceType": new_type}
    for k in _HEADER:
        if k in res:
            out[k] = copy.deepcopy(res[k])
    if res.get("contained"):
        out["contained"] = [write_resource(c, ctx) for c in res["contained"]]
    exts = list(res.get("extension", []))
    for k, v in res.items():
        if k in ("resourceType", *_HEADER, "contained", "extension", *keep) or k.startswith("_"):
            continue
        exts += encode(rt, k, rt, k, v)
    if exts:
        out["extension"] = exts
    if res.get("identifier"):
        out["identifier"] = copy.deepcopy(res["identifier"])
    return out


_HEADER = ("id", "meta", "implicitRules", "language", "text")


def _eligibility_group(ev: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    """The eligibility EvidenceVariable → the R4 ``enrollment`` Group (one characteristic per
    criterion, ``exclude`` for exclusions); the R5 content rides along as extensions."""
    out = _carried(ev, ctx, "Group", keep=("characteristic",))
    out["type"] = "person"
    out["actual"] = False
    if ev.get("title") or ev.get("name"):
        out["name"] = ev.get("title") or ev.get("name")
    chars = [_characteristic(c) for c in ev.get("characteristic", [])]
    if chars:
        out["characteristic"] = chars
    return _ordered(out)


def _characteristic(c: dict[str, Any]) -> dict[str, Any]:
    rt = "EvidenceVariable"
    tv = c.get("definitionByTypeAndValue") or {}
    code = (c.get("definitionCodeableConcept") or tv.get("type")
            or ({"text": c["description"]} if c.get("description") else {"text": "criterion"}))
    ch: dict[str, Any] = {"extension": encode(rt, "characteristic", rt, "characteristic", c),
                          "code": copy.deepcopy(code)}
    for vk in ("valueCodeableConcept", "valueBoolean", "valueQuantity", "valueRange",
               "valueReference"):
        if vk in tv:
            ch[vk] = copy.deepcopy(tv[vk])
            break
    else:
        # the criterion is its text: R4 requires a value, "true" says the code applies
        ch["valueBoolean"] = True
    ch["exclude"] = bool(c.get("exclude", False))
    if ch.get("valueBoolean") is False:
        # "value false, included" and "value true, excluded" say the same of a boolean; the
        # second is written because validators that test a required value[x] by truthiness
        # (FHIR.js) reject a false one. The R5 characteristic, kept whole above, is unchanged.
        ch["valueBoolean"], ch["exclude"] = True, not ch["exclude"]
    return ch


def _basic(res: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    """A resource R4 does not have in this shape → Basic, content as cross-version extensions."""
    out = _carried(res, ctx, "Basic")
    out["code"] = {"coding": [{"system": RESOURCE_TYPES_SYSTEM, "code": res["resourceType"]}]}
    return _ordered(out)
