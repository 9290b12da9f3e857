"""Find trials for a patient: candidates from the index, filters, then the eligibility
criteria of the best candidates only, ranked.

1. **Retrieve** — each of the patient's Conditions becomes weighted keys
   (:func:`~fhirtrial.matching.concepts.patient_keys`: its own concept 1.0, a synonym 0.9, a
   broader concept 0.75 per level); every study indexed under one of those keys, or whose
   condition/keyword text contains the patient's condition text (0.7), is a candidate with the
   best weight it reached (× 0.9 when only a keyword matched). A patient with no Condition gets
   the studies that accept healthy volunteers (0.5).
2. **Filter** on the index alone — status, phase, distance to the nearest site whose own
   status fits, and (unless ruled-out studies are asked for) the registry's age range and sex.
3. **Evaluate** the computable criteria (:func:`fhirtrial.eligibility.match.evaluate`) of the
   candidates in order of their condition weight, stopping once ``count`` results are certain
   to be the best (a candidate's score can only fall from its condition weight) or after
   :data:`MAX_EVALUATED` evaluations.
4. **Score** = condition weight × eligibility factor: eligible 1.0; needs-review 0.5 + 0.4 ×
   the share of computable criteria decided in the patient's favour; not-eligible 0 (listed
   only when asked). Ties: nearer first, then NCT id.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from ..errors import GoneError, NotFoundError, SourceError
from ..server.store import Store
from . import concepts as cx
from .geo import EARTH_MILES, Place
from .index import (
    PHASE_BITS,
    SEX,
    Arrays,
    CandidateIndex,
    StudyEntry,
    index_for,
    read_registry_criteria,
    status_code,
)

#: studies a patient can still join: the default recruitment statuses
OPEN_STATUSES = ("recruiting", "not-yet-recruiting", "enrolling-by-invitation")
HEALTHY_WEIGHT = 0.5
MAX_EVALUATED = 200
DEFAULT_COUNT = 10
MAX_COUNT = 100
#: how long a server request waits for a first index build before answering 503
SERVER_WAIT = 20.0


@dataclass(slots=True)
class MatchRequest:
    """What a caller asks (the operation's parameters, already checked)."""

    patient_bundle: dict[str, Any]
    place: Place | None = None
    radius_miles: float | None = None
    statuses: tuple[str, ...] | None = OPEN_STATUSES  # None: any status
    phases: tuple[str, ...] | None = None
    count: int = DEFAULT_COUNT
    include_ruled_out: bool = False
    as_of: str | None = None


@dataclass(slots=True)
class Match:
    """One study in the answer."""

    study: StudyEntry
    score: float
    condition_weight: float
    condition_reason: str  # e.g. "Cluster Headache: exact (condition)"
    verdict: str
    evaluation: dict[str, Any]  # the Parameters evaluate() gave
    distance_miles: float | None = None
    nearest_site: str | None = None
    unknown: list[str] = field(default_factory=list)  # computable criteria still unknown
    #: words beside decided facts that no data decides (``toConfirm``), for a person
    to_confirm: list[str] = field(default_factory=list)
    against: list[str] = field(default_factory=list)  # criteria that rule the study out


@dataclass(slots=True)
class MatchResult:
    matches: list[Match]
    candidates: int  # studies retrieved by condition and passing the filters
    evaluated: int
    exhausted: bool  # False when MAX_EVALUATED stopped the evaluation early


@dataclass(slots=True)
class _Candidate:
    entry: StudyEntry
    weight: float
    reason: str
    distance: float | None = None
    site: str | None = None


def find_trials(store: Store, fv: str, req: MatchRequest,
                wait: float | None = None) -> MatchResult:
    """Ranked studies for one patient (see the module docstring); ``wait``: see
    :func:`~fhirtrial.matching.index.index_for`."""
    from ..eligibility.match import default_as_of, read_patient

    patient = read_patient(req.patient_bundle)  # SourceError on a malformed bundle
    as_of = _as_of(req.as_of) or default_as_of(patient)
    idx = index_for(store, fv, wait)
    arr = idx.arrays()
    weights, reason_of, reasons = _retrieve(idx, arr, patient.conditions)
    rows = np.nonzero(weights > 0)[0]
    rows, dist, site = _filter(arr, rows, req, patient, as_of)
    order = np.lexsort((rows, dist, -weights[rows]))  # weight desc, nearer, id
    matches: list[Match] = []
    evaluated = 0
    exhausted = True
    for n, k in enumerate(order):
        r = int(rows[k])
        weight = float(weights[r])
        shown = [m for m in matches if m.verdict != "not-eligible" or req.include_ruled_out]
        if len(shown) >= req.count:
            shown.sort(key=_rank)
            if shown[req.count - 1].score >= weight:
                break  # no later candidate can beat the current page
        if evaluated >= MAX_EVALUATED:
            exhausted = n >= len(order)
            break
        evaluated += 1
        d = float(dist[k])
        c = _Candidate(idx.studies[arr.ids[r]], weight, reasons[int(reason_of[r])],
                       None if math.isinf(d) else round(d, 1),
                       arr.site_name[int(site[k])] if site[k] >= 0 else None)
        m = _evaluate(store, fv, idx, c, req, as_of)
        if m is not None:
            matches.append(m)
    shown = [m for m in matches if m.verdict != "not-eligible" or req.include_ruled_out]
    shown.sort(key=_rank)
    return MatchResult(shown[:req.count], len(rows), evaluated, exhausted)


def _rank(m: Match) -> tuple[float, float, str]:
    return (-m.score, m.distance_miles if m.distance_miles is not None else 1e18, m.study.id)


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SourceError(f"as-of {value!r} is not a date (YYYY-MM-DD)") from None


# ---------------------------------------------------------------- retrieval

def _retrieve(idx: CandidateIndex, arr: Arrays, conditions: list[dict[str, Any]]
              ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per study row: the best condition weight reached (0: not a candidate) and why."""
    n = len(arr.ids)
    weights = np.zeros(n, dtype=np.float64)
    reason_of = np.full(n, -1, dtype=np.int32)
    reasons: list[str] = []

    def offer(rows: np.ndarray, weight: float, reason: str) -> None:
        if not len(rows):
            return
        better = rows[weights[rows] < weight]
        if len(better):
            weights[better] = weight
            reason_of[better] = len(reasons)
            reasons.append(reason)

    from ..eligibility.match import condition_label

    for cond in conditions:
        label = condition_label(cond)
        for key, (w, how) in sorted(cx.patient_keys(cond).items(), key=lambda kv: -kv[1][0]):
            post = arr.postings.get(key)
            if post is not None:
                offer(post[0], w, f"{label}: {how} (condition)")
                offer(post[1], round(w * cx.KEYWORD, 4), f"{label}: {how} (keyword)")
            if key.startswith("text:") and how == "exact":
                offer(idx.containing_rows(key[5:], arr), cx.TEXT_CONTAINS,
                      f"{label}: text contained in the study's")
    if not conditions:
        offer(arr.healthy, HEALTHY_WEIGHT,
              "no condition recorded: the study accepts healthy volunteers")
    return weights, reason_of, reasons


def _filter(arr: Arrays, rows: np.ndarray, req: MatchRequest, patient: Any,
            as_of: date | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate rows that pass, with the distance to (and index of) each one's nearest
    fitting site (inf / -1 without a place)."""
    keep = np.ones(len(rows), dtype=bool)
    wanted = None
    if req.statuses is not None:
        wanted = np.array([status_code(s) for s in req.statuses], dtype=np.int16)
        keep &= np.isin(arr.status[rows], wanted)
    if req.phases is not None:
        # the study's mask counts a combined phase as each part; the request's is exact
        keep &= (arr.phases[rows] & sum(PHASE_BITS.get(p, 0) for p in req.phases)) != 0
    if not req.include_ruled_out:
        if patient.birth_date is not None and as_of is not None:
            # the evaluator counts whole years / months: the slack keeps the index from
            # ruling out what the evaluator would call met
            age = float((as_of - patient.birth_date).days)
            lo, hi = arr.age_lo[rows], arr.age_hi[rows]
            keep &= ~(age + 31 < lo)  # nan compares False: no bound
            keep &= ~(age > hi + 366)
        if patient.gender in ("male", "female"):
            sex = arr.sex[rows]
            keep &= (sex == 0) | (sex == SEX[patient.gender])
    rows = rows[keep]
    dist = np.full(len(rows), np.inf)
    site = np.full(len(rows), -1, dtype=np.int64)
    if req.place is None:
        return rows, dist, site
    pos = np.full(len(arr.ids), -1, dtype=np.int64)
    pos[rows] = np.arange(len(rows))
    s = np.nonzero(pos[arr.site_row] >= 0)[0]  # sites of candidates
    st = arr.site_status[s]
    st = np.where(st < 0, arr.status[arr.site_row[s]], st)
    if wanted is not None:
        s = s[np.isin(st, wanted)]
    d = _miles(req.place.lat, req.place.lon, arr.site_lat[s], arr.site_lon[s])
    owner = pos[arr.site_row[s]]
    # nearest site per candidate: sort by (owner, distance), take each owner's first
    o = np.lexsort((d, owner))
    first = np.ones(len(o), dtype=bool)
    first[1:] = owner[o][1:] != owner[o][:-1]
    best = o[first]
    dist[owner[best]] = d[best]
    site[owner[best]] = s[best]
    ok = np.isfinite(dist)
    if req.radius_miles is not None:
        ok &= dist <= req.radius_miles
    return rows[ok], dist[ok], site[ok]


def _miles(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    p1, p2 = math.radians(lat), np.radians(lats)
    dp, dl = p2 - p1, np.radians(lons - lon)
    a = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_MILES * np.arcsin(np.minimum(1.0, np.sqrt(a)))


# ---------------------------------------------------------------- evaluation

_CRITERIA: OrderedDict[tuple[int, str, str, int], list[Any]] = OrderedDict()
_CRITERIA_LOCK = threading.Lock()
_CRITERIA_SIZE = 4096


def _criteria(store: Store, fv: str, evid: str) -> list[Any] | None:
    """The structured criteria of a stored EvidenceVariable, parsed once per version."""
    from ..eligibility.match import from_evidence_variable

    try:
        stored = store.read(fv, "EvidenceVariable", evid)
    except (NotFoundError, GoneError):
        return None
    key = (id(store), fv, evid, stored.vid)
    with _CRITERIA_LOCK:
        hit = _CRITERIA.get(key)
        if hit is not None:
            _CRITERIA.move_to_end(key)
            return hit
    ev = stored.resource()
    if not ev.get("characteristic"):
        return None
    crit = from_evidence_variable(ev)
    add_registry_facts(ev, crit)
    with _CRITERIA_LOCK:
        _CRITERIA[key] = crit
        while len(_CRITERIA) > _CRITERIA_SIZE:
            _CRITERIA.popitem(last=False)
    return crit


def add_registry_facts(ev: dict[str, Any], crit: list[Any]) -> None:
    """The registry's sex (and age) characteristics are structured in the EvidenceVariable
    (LOINC-typed); where re-reading their description gave no fact, the structured value
    becomes it, so that the evaluation decides (and names) what the index filters on."""
    from ..eligibility import Fact

    by_text: dict[str, Any] = {}
    for ch in ev.get("characteristic") or []:
        if not isinstance(ch, dict) or not isinstance(ch.get("description"), str):
            continue
        one = StudyEntry("", 0, "", None, frozenset(), {}, ())
        read_registry_criteria({"characteristic": [ch]}, one)
        if one.sex:
            by_text[ch["description"]] = Fact("sex", {"sex": one.sex})
        elif one.age_low_days is not None or one.age_high_days is not None:
            by_text[ch["description"]] = _age_fact(ch)
    for c in crit:
        fact = by_text.get(c.text)
        if fact is not None and not c.facts and not c.children:
            c.facts = [fact]


def _age_fact(ch: dict[str, Any]) -> Any:
    from ..eligibility import Fact

    rng = ch["definitionByTypeAndValue"].get("valueRange") or {}
    lo, hi = rng.get("low") or {}, rng.get("high") or {}
    unit = lo.get("code") or hi.get("code")
    return Fact("age", {"low": lo.get("value"), "high": hi.get("value"), "low_inclusive": True,
                        "high_inclusive": True, "unit": unit})


def _evaluate(store: Store, fv: str, idx: CandidateIndex, c: _Candidate,
              req: MatchRequest, as_of: date | None) -> Match | None:
    from ..eligibility.match import evaluate, registry_criteria  # noqa: F401

    e = c.entry
    crit = _criteria(store, fv, e.eligibility) if e.eligibility else None
    if crit is None:
        crit = []  # no stated criteria: nothing to decide; the verdict says needs-review
    try:
        out = evaluate(crit, req.patient_bundle, as_of=as_of)
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        # data of a shape the evaluator does not expect: the request's fault, said as such
        raise SourceError(f"the patient's data could not be evaluated against {e.id} "
                          f"({type(exc).__name__}); check its FHIR JSON",
                          location="trialMatchClinicalData") from None
    params = out["parameter"]
    params.insert(1, {"name": "study", "valueString": e.id})
    verdict = params[0]["valueCode"]
    rows = [p for p in params if p["name"] == "criterion"]
    computable = [r for r in rows if _part(r, "computable")]
    unknown = [str(_part(r, "text")) for r in computable if _part(r, "result") == "unknown"]
    to_confirm = [str(q.get("valueString")) for r in computable for f in r.get("part") or []
                  if f["name"] == "fact" for q in f.get("part") or []
                  if q["name"] == "toConfirm"]
    against = [p["valueString"] for p in params if p["name"] == "decidedBy"] \
        if verdict == "not-eligible" else []
    if not crit:
        verdict = "needs-review"
        params[0]["valueCode"] = verdict
    if verdict == "eligible":
        factor = 1.0
    elif verdict == "needs-review":
        favour = sum(1 for r in computable if _favours(r))
        factor = 0.5 + 0.4 * (favour / len(computable) if computable else 0.0)
    else:
        factor = 0.0
    return Match(study=e, score=round(c.weight * factor, 4), condition_weight=c.weight,
                 condition_reason=c.reason, verdict=verdict, evaluation=out,
                 distance_miles=c.distance, nearest_site=c.site, unknown=unknown,
                 to_confirm=to_confirm,
                 against=against)


def _part(row: dict[str, Any], name: str) -> Any:
    for p in row.get("part") or []:
        if p["name"] == name:
            return next((v for k, v in p.items() if k.startswith("value")), None)
    return None


def _favours(row: dict[str, Any]) -> bool:
    exclude, result = _part(row, "exclude"), _part(row, "result")
    return (result == "not-met") if exclude else (result == "met")
