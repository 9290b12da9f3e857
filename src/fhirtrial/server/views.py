"""Stored FHIR resources → what the HTML pages show (plain dicts for the templates).

The pages read only FHIR (what the store holds), never the registry record: a study loaded from
another converter, or written by hand, shows the same way. Everything here is a pure function of
the store's content, so a page is the same every time it is asked for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import GoneError, NotFoundError
from . import search as search_mod
from .searchparams import norm_text, split_reference
from .store import Store, Stored, haversine_km

Resource = dict[str, Any]

#: R5 research-study-status codes a person filters by (progress-status-state), in their order
STATUSES = [("recruiting", "Recruiting"), ("not-yet-recruiting", "Not yet recruiting"),
            ("enrolling-by-invitation", "Enrolling by invitation"),
            ("active-but-not-recruiting", "Active, not recruiting"),
            ("temporarily-closed-to-accrual", "Suspended"), ("completed", "Completed"),
            ("terminated", "Terminated"), ("withdrawn", "Withdrawn")]
#: research-study-phase codes
PHASES = [("early-phase-1", "Early Phase 1"), ("phase-1", "Phase 1"),
          ("phase-1-phase-2", "Phase 1/Phase 2"), ("phase-2", "Phase 2"),
          ("phase-2-phase-3", "Phase 2/Phase 3"), ("phase-3", "Phase 3"),
          ("phase-4", "Phase 4"), ("n-a", "Not applicable")]
SEXES = [("female", "Female"), ("male", "Male")]
#: the most studies a front-page search lists
MAX_RESULTS = 50
#: the most candidate studies a search with a place, an age or a sex looks at
MAX_CANDIDATES = 1000
_LATLON = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*[,; ]\s*(-?\d+(?:\.\d+)?)\s*$")
_AGE_UNITS_YEARS = {"a": 1.0, "mo": 1 / 12, "wk": 1 / 52.1775, "d": 1 / 365.25, "h": 1 / 8766}


# ---------------------------------------------------------------- the search form

@dataclass(slots=True)
class Form:
    """The front page's search form, as typed (strings), and what was wrong with it."""

    condition: str = ""
    status: str = "recruiting"
    phase: str = ""
    place: str = ""
    radius: str = "100"
    age: str = ""
    sex: str = ""
    submitted: bool = False
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: Any) -> Form:
        f = cls()
        f.submitted = any(k in args for k in ("condition", "status", "phase", "place", "age",
                                              "sex"))
        for name in ("condition", "status", "phase", "place", "radius", "age", "sex"):
            if name in args:
                setattr(f, name, str(args.get(name, "")).strip()[:200])
        if f.status and f.status not in dict(STATUSES):
            f.errors["status"] = "Choose a status from the list."
        if f.phase and f.phase not in dict(PHASES):
            f.errors["phase"] = "Choose a phase from the list."
        if f.sex and f.sex not in dict(SEXES):
            f.errors["sex"] = "Choose female or male, or leave it empty."
        if f.age and not re.fullmatch(r"\d{1,3}(\.\d+)?", f.age):
            f.errors["age"] = "Age in years, a number such as 54."
        if f.place and not re.fullmatch(r"\d{1,5}(\.\d+)?", f.radius or ""):
            f.errors["radius"] = "Radius in kilometres, a number such as 100."
        return f

    def fhir_queries(self) -> list[list[tuple[str, str]]]:
        """The FHIR searches (ResearchStudy, R5) this form stands for, their results joined:
        the words typed are looked for in the conditions and, since registry records often
        name the disease only in their title, in the title."""
        common = []
        if self.status:
            common.append(("progress-status-state", self.status))
        if self.phase:
            common.append(("phase", self.phase))
        if not self.condition:
            return [common]
        return [[("condition:text-advanced", self.condition), *common],
                [("title:text", self.condition), *common]]


@dataclass(slots=True)
class Place:
    label: str
    lat: float
    lon: float
    how: str


def resolve_place(store: Store, fv: str, text: str) -> Place | None:
    """A place typed in the form → coordinates, without any network: ``lat, long`` as given,
    else a city or country of a stored study site (its geo point, the first by id)."""
    m = _LATLON.match(text)
    if m:
        lat, lon = float(m.group(1)), float(m.group(2))
        if -90 <= lat <= 90 and -180 <= lon <= 180:
            return Place(f"{lat:.4f}, {lon:.4f}", lat, lon, "coordinates as typed")
        return None
    want = norm_text(text)
    for param in ("address-city", "address-country"):
        q = search_mod.parse(fv, "Location", [(param, text)], strict=True)
        rows, _ = _find(store, fv, "Location", q.criteria, count=200, total=False)
        for s in rows:
            loc = s.resource()
            pos = loc.get("position") or {}
            addr = loc.get("address") or {}
            field_value = addr.get("city" if param == "address-city" else "country") or ""
            if (isinstance(pos.get("latitude"), int | float) and isinstance(
                    pos.get("longitude"), int | float) and norm_text(field_value) == want):
                label = ", ".join(p for p in (addr.get("city"), addr.get("state"),
                                              addr.get("country")) if p)
                return Place(label, float(pos["latitude"]), float(pos["longitude"]),
                             f"the position of a study site in {label}")
    return None


def _position(loc: Resource) -> tuple[float, float] | None:
    pos = loc.get("position") or {}
    lat, lon = pos.get("latitude"), pos.get("longitude")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return float(lat), float(lon)
    return None


def nearest_site(sites: Iterable[Resource], lat: float, lon: float
                 ) -> tuple[Resource, float] | None:
    """The site nearest a point and its distance in km (None when no site has a position)."""
    best: tuple[Resource, float] | None = None
    for loc in sites:
        p = _position(loc)
        if p is None:
            continue
        d = haversine_km(lat, lon, p[0], p[1])
        if best is None or d < best[1] or (d == best[1] and loc.get("id", "") < best[0].get(
                "id", "")):
            best = (loc, d)
    return best


# ---------------------------------------------------------------- small readers

def plain(text: Any) -> str:
    """Registry free text as a person reads it (the registry's Markdown escapes undone)."""
    from ..eligibility import unescape

    return unescape(text) if isinstance(text, str) else ""


def unique(values: Iterable[str]) -> list[str]:
    """Values without repeats (case-insensitive), first spelling kept, in order."""
    seen: set[str] = set()
    out = []
    for v in values:
        if v and norm_text(v) not in seen:
            seen.add(norm_text(v))
            out.append(v)
    return out


def text_of(cc: Any) -> str:
    """A CodeableConcept (or CodeableReference) as words: its text, else a display or code."""
    if not isinstance(cc, dict):
        return ""
    if isinstance(cc.get("concept"), dict):
        cc = cc["concept"]
    if isinstance(cc.get("text"), str):
        return cc["text"]
    for c in cc.get("coding") or []:
        if isinstance(c, dict) and (c.get("display") or c.get("code")):
            return str(c.get("display") or c.get("code"))
    return ""


def status_of(rs: Resource) -> tuple[str, str]:
    """(code, words) of a ResearchStudy's recruitment state (progressStatus, not the record's
    publication status)."""
    for p in rs.get("progressStatus") or []:
        state = p.get("state") or {}
        codes = [c.get("code") for c in state.get("coding") or [] if isinstance(c, dict)]
        if "overall-study" in codes or not (codes or state.get("text")):
            continue
        if not codes and state.get("text", "").startswith(("Study ", "Primary ")):
            continue  # a dated milestone, not the lifecycle state
        code = next((c for c in codes if c), "")
        return code or "", text_of(state) or code or ""
    return "", ""


def milestones(rs: Resource) -> list[tuple[str, str, str]]:
    """(what, date, actual/anticipated) for the study's dated milestones."""
    out = []
    for p in rs.get("progressStatus") or []:
        state = p.get("state") or {}
        if state.get("coding"):
            continue
        period = p.get("period") or {}
        when = period.get("start") or period.get("end")
        if not when:
            continue
        how = {True: "actual", False: "anticipated"}.get(p.get("actual"), "")
        out.append((text_of(state), when, how))
    return out


def sponsor_of(rs: Resource) -> str:
    for party in rs.get("associatedParty") or []:
        codes = {c.get("code") for c in (party.get("role") or {}).get("coding") or []}
        if codes & {"lead-sponsor", "sponsor"} and party.get("name"):
            return str(party["name"])
    return ""


def _ref_id(ref: Any, rtype: str) -> str | None:
    if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
        return None
    t, rid = split_reference(ref["reference"])
    return rid if t == rtype else None


def _find(store: Store, fv: str, rtype: str, criteria: Sequence[search_mod.Criterion], *,
          count: int, total: bool) -> tuple[list[Stored], int | None]:
    """The first ``count`` matches of a search, in id order."""
    return store.search(fv, rtype, criteria, sort=(), offset=0, count=count, total=total)


def _read(store: Store, fv: str, rtype: str, rid: str | None) -> Resource | None:
    if not rid:
        return None
    try:
        return store.read(fv, rtype, rid).resource()
    except (NotFoundError, GoneError):
        return None


def sites_of(store: Store, fv: str, stored: Stored) -> list[Resource]:
    """The study's site Locations, in the study's own order."""
    found = {s.id: s.resource() for s in store.include(fv, [stored], "ResearchStudy", "site",
                                                           "Location")}
    rs = stored.resource()
    out = []
    for ref in rs.get("site") or []:
        rid = _ref_id(ref, "Location")
        if rid and rid in found:
            out.append(found.pop(rid))
    return out


def site_status(loc: Resource) -> str:
    for c in loc.get("characteristic") or []:
        words = text_of(c)
        if words.startswith("Site recruitment status"):
            return words.split(":", 1)[-1].strip()
    return ""


def site_row(loc: Resource, distance: float | None = None) -> dict[str, Any]:
    addr = loc.get("address") or {}
    pos = _position(loc)
    return {"id": loc.get("id", ""), "name": loc.get("name") or "Study site",
            "city": ", ".join(p for p in (addr.get("city"), addr.get("state")) if p),
            "country": addr.get("country") or "", "status": site_status(loc),
            "lat": pos[0] if pos else None, "lon": pos[1] if pos else None,
            "distance": None if distance is None else (
                "< 1" if distance < 1 else f"{distance:,.0f}")}


# ---------------------------------------------------------------- eligibility

def eligibility_limits(ev: Resource | None) -> dict[str, Any]:
    """Age range (years) and sex a study's eligibility EvidenceVariable states."""
    out: dict[str, Any] = {"low": None, "high": None, "sex": None, "ages": "", "sex_text": ""}
    for ch in (ev or {}).get("characteristic") or []:
        d = ch.get("definitionByTypeAndValue") or {}
        kind = text_of(d.get("type"))
        if "exclude" in ch:
            continue  # a criterion from the text; the registry's own limits come first
        if kind == "Age":
            out["ages"] = str(ch.get("description", "")).removeprefix("Age: ")
            rng = d.get("valueRange") or {}
            for end in ("low", "high"):
                q = rng.get(end) or {}
                if isinstance(q.get("value"), int | float):
                    out[end] = q["value"] * _AGE_UNITS_YEARS.get(q.get("code", "a"), 1.0)
        elif kind == "Sex":
            out["sex_text"] = str(ch.get("description", "")).removeprefix("Sex: ")
            codes = [c.get("code") for c in (d.get("valueCodeableConcept") or {}).get(
                "coding") or []]
            out["sex"] = next((c for c in codes if c in ("female", "male")), None)
        elif str(ch.get("description", "")).startswith("Sex: "):
            out["sex_text"] = str(ch["description"]).removeprefix("Sex: ")
        elif str(ch.get("description", "")).startswith("Age: "):
            out["ages"] = str(ch["description"]).removeprefix("Age: ")
    return out


def fits(limits: dict[str, Any], age: float | None, sex: str | None) -> bool:
    if age is not None:
        if limits["low"] is not None and age < limits["low"]:
            return False
        if limits["high"] is not None and age > limits["high"] + 1 - 1e-9:
            return False  # "up to 65 years" takes a 65-year-old until their 66th birthday
    return not (sex and limits["sex"] and limits["sex"] != sex)


def criteria_view(ev: Resource | None) -> dict[str, Any]:
    """The eligibility page section: the registry's limits, then inclusion and exclusion
    criteria with the facts computed from each (re-read from the criterion text)."""
    from ..eligibility.fhir import fact_text
    from ..eligibility.match import from_evidence_variable

    summary = []
    crits = []
    for ch in (ev or {}).get("characteristic") or []:
        if isinstance(ch, dict) and "exclude" not in ch:
            summary.append(str(ch.get("description") or ""))
        elif isinstance(ch, dict):
            crits.append(ch)
    parsed = from_evidence_variable({"characteristic": crits}) if crits else []

    def item(c: Any) -> dict[str, Any]:
        used = [f.data["window"] for f in c.facts if f.data.get("window")]
        facts = list(dict.fromkeys(fact_text(f) for f in c.facts if not (
            f.kind == "time-window" and any(f.data == w for w in used))))
        return {"text": c.text, "facts": facts, "children": [item(k) for k in c.children]}

    return {"summary": summary,
            "inclusion": [item(c) for c in parsed if not c.exclude],
            "exclusion": [item(c) for c in parsed if c.exclude]}


# ---------------------------------------------------------------- arms and doses

def arms_view(store: Store, fv: str, stored: Stored) -> list[dict[str, Any]]:
    """Each arm: its type and description, its interventions and their dose levels."""
    rs = stored.resource()
    plans = {s.id: s.resource() for s in store.include(fv, [stored], "ResearchStudy",
                                                           "protocol", "PlanDefinition")}
    groups = {g.get("name"): g for g in rs.get("comparisonGroup") or [] if isinstance(g, dict)}
    urls: list[str] = []
    ordered = []
    for ref in rs.get("protocol") or []:
        rid = _ref_id(ref, "PlanDefinition")
        if rid and rid in plans:
            ordered.append(plans[rid])
            for a in plans[rid].get("action") or []:
                urls += [k["definitionCanonical"] for k in a.get("action") or []
                         if isinstance(k.get("definitionCanonical"), str)]
    acts: dict[str, Resource] = {}
    for i in range(0, len(urls), 100):
        q = search_mod.parse(fv, "ActivityDefinition",
                             [("url", ",".join(u.replace(",", "\\,") for u in urls[i:i + 100]))],
                             strict=True)
        rows, _ = _find(store, fv, "ActivityDefinition", q.criteria, count=1000, total=False)
        acts.update({str(r.resource().get("url")): r.resource() for r in rows})
    out = []
    for plan in ordered:
        label = plan.get("title") or ""
        group = groups.get(label) or {}
        ivs = []
        for a in plan.get("action") or []:
            doses = []
            for k in a.get("action") or []:
                ad = acts.get(k.get("definitionCanonical")) or {}
                dosage = (ad.get("dosage") or [{}])[0]
                doses.append({"text": k.get("description") or k.get("title") or "",
                              "route": text_of(dosage.get("route")),
                              "schedule": text_of((dosage.get("timing") or {}).get("code")),
                              "activity": ad.get("id")})
            ivs.append({"name": a.get("title") or "", "type": text_of(a.get("code")),
                        "description": plain(a.get("description")),
                        "other_names": a.get("textEquivalent") or "", "doses": doses})
        out.append({"label": label if plan.get("description") != (
            "Interventions the registry record lists without assigning them to an arm.")
            else "Interventions not assigned to an arm",
            "type": text_of(group.get("type")),
            "description": plain(plan.get("description") or group.get("description")),
            "interventions": ivs, "plan": plan.get("id")})
    return out


# ---------------------------------------------------------------- the study page

def study_view(store: Store, fv: str, stored: Stored) -> dict[str, Any]:
    rs = stored.resource()
    code, status = status_of(rs)
    ev = _read(store, fv, "EvidenceVariable", _ref_id(
        (rs.get("recruitment") or {}).get("eligibility"), "EvidenceVariable"))
    sites = [site_row(loc) for loc in sites_of(store, fv, stored)]
    rec = rs.get("recruitment") or {}
    enrol = ""
    if isinstance(rec.get("actualNumber"), int):
        enrol = f"{rec['actualNumber']} (actual)"
    elif isinstance(rec.get("targetNumber"), int):
        enrol = f"{rec['targetNumber']} (target)"
    outcomes = []
    for om in rs.get("outcomeMeasure") or []:
        target = _read(store, fv, "EvidenceVariable", _ref_id(om.get("reference"),
                                                              "EvidenceVariable"))
        tf = ""
        for ch in (target or {}).get("characteristic") or []:
            for t in ch.get("timeFromEvent") or []:
                tf = tf or str(t.get("description") or "")
        kinds = [text_of(t) for t in om.get("type") or []]
        outcomes.append({"kind": kinds[0] if kinds else "", "name": plain(om.get("name")),
                         "description": plain(om.get("description")), "time_frame": plain(tf)})
    contacts = []
    for party in rs.get("associatedParty") or []:
        role = text_of(party.get("role"))
        codes = {c.get("code") for c in (party.get("role") or {}).get("coding") or []}
        if codes & {"lead-sponsor", "sponsor", "collaborator"}:
            continue
        who = party.get("party") or {}
        rtype, rid = split_reference(who.get("reference", "")) if isinstance(
            who.get("reference"), str) else (None, None)
        person = _read(store, fv, rtype, rid) if rtype in ("Practitioner",) else None
        if rtype == "PractitionerRole":
            pr = _read(store, fv, rtype, rid) or {}
            person = _read(store, fv, "Practitioner", _ref_id(pr.get("practitioner"),
                                                               "Practitioner"))
        telecom = (person or {}).get("telecom") or []
        contacts.append({
            "name": party.get("name") or "", "role": role if role not in ("contact",) else
            "Contact",
            "phone": next((t.get("value") for t in telecom if t.get("system") == "phone"), ""),
            "email": next((t.get("value") for t in telecom if t.get("system") == "email"), "")})
    ident = next((i.get("value") for i in rs.get("identifier") or []
                  if i.get("system") == "http://clinicaltrials.gov"), "")
    return {
        "id": rs.get("id"), "nct": ident, "title": rs.get("title") or rs.get("id"),
        "official_title": next((lb.get("value") for lb in rs.get("label") or []
                                if any(c.get("code") == "official" for c in (
                                    lb.get("type") or {}).get("coding") or [])), ""),
        "status": status, "status_code": code, "milestones": milestones(rs),
        "why_stopped": text_of(rs.get("whyStopped")),
        "phase": text_of(rs.get("phase")), "design": [text_of(d) for d in
                                                      rs.get("studyDesign") or []],
        "purpose": text_of(rs.get("primaryPurposeType")),
        "conditions": unique(text_of(c) for c in rs.get("condition") or []),
        "keywords": unique(text_of(k) for k in rs.get("keyword") or []),
        "summary": plain(rs.get("descriptionSummary")), "enrollment": enrol,
        "sponsor": sponsor_of(rs), "arms": arms_view(store, fv, stored),
        "eligibility": criteria_view(ev), "has_eligibility": ev is not None,
        "outcomes": outcomes, "contacts": contacts, "sites": sites,
        "map": site_map(sites),
    }


# ---------------------------------------------------------------- the offline map

def site_map(sites: Sequence[dict[str, Any]], width: int = 640, height: int = 320
             ) -> dict[str, Any] | None:
    """An SVG plot of the sites' coordinates (equirectangular, framed on the sites), drawn by
    the page itself: no tile server, so it works with no internet access."""
    pts = [(s["lat"], s["lon"], s) for s in sites if s["lat"] is not None]
    if not pts:
        return None
    lats = [p[0] for p in pts]
    lons = [p[1] for p in pts]
    pad = 2.0
    lo_lat, hi_lat = min(lats) - pad, max(lats) + pad
    lo_lon, hi_lon = min(lons) - pad, max(lons) + pad
    # keep the aspect: a degree of longitude is cos(lat) of a degree of latitude
    mid = math.radians((lo_lat + hi_lat) / 2)
    kx = math.cos(mid)
    span_x, span_y = (hi_lon - lo_lon) * kx, hi_lat - lo_lat
    scale = min((width - 40) / span_x, (height - 40) / span_y)
    ox = (width - span_x * scale) / 2
    oy = (height - span_y * scale) / 2

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return (round(ox + (lon - lo_lon) * kx * scale, 1),
                round(oy + (hi_lat - lat) * scale, 1))

    step = next(s for s in (1, 2, 5, 10, 20, 30, 60) if max(hi_lat - lo_lat,
                                                              hi_lon - lo_lon) / s <= 8)
    grid = []
    for lat in range(math.ceil(lo_lat / step) * step, math.floor(hi_lat) + 1, step):
        y = xy(lat, lo_lon)[1]
        grid.append({"x1": 0, "y1": y, "x2": width, "y2": y,
                     "label": f"{abs(lat)}°{'N' if lat >= 0 else 'S'}", "lx": 4, "ly": y - 3})
    for lon in range(math.ceil(lo_lon / step) * step, math.floor(hi_lon) + 1, step):
        x = xy(lo_lat, lon)[0]
        grid.append({"x1": x, "y1": 0, "x2": x, "y2": height,
                     "label": f"{abs(lon)}°{'E' if lon >= 0 else 'W'}", "lx": x + 3,
                     "ly": height - 4})
    dots = []
    labelled: set[str] = set()
    boxes: list[tuple[float, float, float, float]] = []
    for lat, lon, s in pts:
        x, y = xy(lat, lon)
        place = s["city"].split(",")[0] or s["country"]
        # a place is named once, and only where its label overlaps no other label
        box = (x + 7, y - 8, x + 9 + 6.5 * len(place), y + 6)
        show = bool(place) and place not in labelled and box[2] < width and not any(
            box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes)
        if show:
            labelled.add(place)
            boxes.append(box)
        dots.append({"x": x, "y": y, "title": f"{s['name']} — {s['city'] or s['country']}",
                     "label": place if show else "", "recruiting": s["status"] == "Recruiting"})
    return {"width": width, "height": height, "grid": grid, "dots": dots,
            "missing": len(sites) - len(pts)}


# ---------------------------------------------------------------- the front page search

def find_studies(store: Store, fv: str, form: Form) -> dict[str, Any]:
    """Run the front page's search: the FHIR search the form stands for, then distance and the
    patient's age and sex, which ResearchStudy search parameters cannot express."""
    notes: list[str] = []
    place = None
    if form.place:
        place = resolve_place(store, fv, form.place)
        if place is None:
            form.errors["place"] = ("Not a known place: type a city or country of a study site "
                                    "on this server, or latitude, longitude (e.g. 42.36, -71.06).")
        else:
            notes.append(f"“{form.place}” is at {place.lat:.2f}, {place.lon:.2f} "
                         f"({place.how}).")
    if form.errors:
        return {"rows": [], "total": 0, "notes": notes, "query": ""}
    queries = form.fhir_queries()
    alternatives = [search_mod.parse(fv, "ResearchStudy", items, strict=True).criteria
                    for items in queries]
    radius = float(form.radius) if place else None
    age = float(form.age) if form.age else None
    sex = form.sex or None
    near_sites: dict[str, Resource] = {}
    site_criteria: list[list[search_mod.Criterion]] = [[]]
    if place is not None:
        lq = search_mod.parse(fv, "Location", [("near", f"{place.lat}|{place.lon}|{radius}|km")],
                              strict=True)
        locs, _ = _find(store, fv, "Location", lq.criteria, count=MAX_CANDIDATES * 5,
                               total=False)
        near_sites = {s.id: s.resource() for s in locs}
        ids = sorted(near_sites)
        site_criteria = [search_mod.parse(fv, "ResearchStudy", [
            ("site", ",".join(f"Location/{x}" for x in ids[i:i + 200]))], strict=True).criteria
            for i in range(0, len(ids), 200)]
    found: dict[str, Stored] = {}
    for criteria in alternatives:
        for extra in site_criteria:
            got, _ = _find(store, fv, "ResearchStudy", [*criteria, *extra],
                                  count=MAX_CANDIDATES, total=False)
            found.update({s.id: s for s in got})
    rows: list[tuple[Stored, float | None, Resource | None]] = []
    for s in found.values():
        best = None
        if place is not None:
            mine = [near_sites[rid] for ref in s.resource().get("site") or []
                    if (rid := _ref_id(ref, "Location")) in near_sites]
            best = nearest_site(mine, place.lat, place.lon)
        rows.append((s, best[1] if best else None, best[0] if best else None))
    # nearest first when a place is given; else by title, as a person scans a list
    rows.sort(key=lambda r: (r[1] if r[1] is not None else math.inf,
                             norm_text(r[0].resource().get("title") or ""), r[0].id))
    out: list[dict[str, Any]] = []
    total = 0
    need_limits = age is not None or sex is not None
    for s, dist, site in rows:
        if not need_limits and len(out) >= MAX_RESULTS:
            total += 1  # counted, not shown: no need to read its eligibility
            continue
        rs = s.resource()
        ev = _read(store, fv, "EvidenceVariable", _ref_id(
            (rs.get("recruitment") or {}).get("eligibility"), "EvidenceVariable"))
        limits = eligibility_limits(ev)
        if need_limits and not fits(limits, age, sex):
            continue
        total += 1
        if len(out) >= MAX_RESULTS:
            continue
        code, status = status_of(rs)
        out.append({"id": rs.get("id"), "title": rs.get("title") or rs.get("id"),
                    "status": status, "status_code": code, "phase": text_of(rs.get("phase")),
                    "conditions": unique(text_of(c) for c in rs.get("condition") or []),
                    "ages": limits["ages"], "sex": limits["sex_text"],
                    "site": site_row(site, dist) if site else None,
                    "n_sites": len(rs.get("site") or [])})
    if len(found) >= MAX_CANDIDATES:
        notes.append(f"More than {MAX_CANDIDATES} studies match; only the first "
                     f"{MAX_CANDIDATES} were looked at. Narrow the search.")
    if total > len(out):
        notes.append(f"Showing the first {len(out)} of {total} studies; narrow the search "
                     "to see the others.")
    return {"rows": out, "total": total, "notes": notes,
            "query": _query_text(queries, place, radius)}


def _query_text(queries: list[list[tuple[str, str]]], place: Place | None,
                radius: float | None) -> str:
    """The FHIR requests the search ran, for people who want to run them themselves."""
    from urllib.parse import urlencode

    text = " + ".join("ResearchStudy?" + urlencode(items, safe=":|,") if items
                      else "ResearchStudy" for items in queries)
    if place is not None:
        text += f", with a site in Location?near={place.lat:g}|{place.lon:g}|{radius:g}|km"
    return text
