"""Patients built from a study's structured eligibility, for match acceptance tests.

Given a study's criteria (a ``Study``, an eligibility ``EvidenceVariable``, eligibility text or
``Criterion`` objects from ``fhirtrial.eligibility``), :func:`meeting` builds a FHIR patient
Bundle that meets every structured criterion, and :func:`breaking` one that meets every
criterion but one. The data is derived from the facts' own fields (bounds, units, windows,
codes), by fact kind, with interval arithmetic of its own: the generator does not ask the
evaluator what passes, so a test comparing the evaluator's verdict with the generator's intent
checks the evaluator.

What the patient carries, per fact kind (``HANDLED``):

- ``age``: ``Patient.birthDate``, chosen so the completed years/months/weeks/days at ``as_of``
  fall strictly inside (or, for an exclusion, outside) every bound;
- ``sex``: ``Patient.gender``;
- ``pregnancy`` / ``lactation``: the gender, a Condition coded with the table's finding, or a
  LOINC 82810-3 "not pregnant" status Observation;
- measurements (``MEASUREMENT_KINDS``: labs now, vitals and scores when the parser states them
  with the same fields): one final Observation per test with the table's LOINC code, a value in
  the canonical UCUM unit, a ``referenceRange`` high/low chosen so "× ULN/LLN" bounds hold, a
  separate ``%`` Observation for "% of predicted", dated inside the fact's time window; a class
  scale (NYHA, ASA) as its class's SNOMED concept (``valueCodeableConcept``), as EHRs record it;
- ``condition``: a Condition with the table's code, active and dated inside the window, for an
  inclusion; none at all for an exclusion (the evaluator takes the problem list as complete).

Kinds the evaluator does not decide from data (``UNDECIDABLE``: healthy volunteers, uncoded
measurements) and kinds this module does not know (anything new) are not guessed at: a
criterion that needs them is listed in ``Case.uncertain``, and ``Case.skipped`` counts the
facts by kind. ``time-window`` facts are not evaluated on their own (``NOT_EVALUATED``); their
windows reach the patient through the lab and condition facts that carry them.

Criteria are taken greedily in order; each takes the first way of being met (for an any-of,
all members first, then one at a time) that stays consistent with the ones before it. A
criterion no way of which fits is ``uncertain`` (it may then come out unknown), or
``unmeetable`` when no way of it fits even alone (no patient meets it as read).
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from fhirtrial.eligibility import Criterion, Fact, criteria_for
from fhirtrial.eligibility.criteria import AT_LEAST, GROUP, at_least, children_combination
from fhirtrial.eligibility.match import from_evidence_variable, registry_criteria
from fhirtrial.eligibility.tables import tables
from fhirtrial.model import Study

AS_OF = date(2026, 6, 15)
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_NS = uuid.UUID("8f0b5c1e-6a1f-4c55-9a4e-2f6c1d7b9e10")

MET, NOT_MET = "met", "not-met"
HANDLED = frozenset({"age", "sex", "pregnancy", "lactation", "condition", "lab"})
#: measurement kinds read with the lab fields (``test``, bounds, ``unit``, ``relative``)
MEASUREMENT_KINDS = frozenset({"lab", "vital", "score"})
#: the evaluator answers *unknown* for these whatever the data
UNDECIDABLE = frozenset({"healthy-volunteers",
                         # a measurement the lexicon has no code for: no Observation names it
                         "measurement"})
#: the evaluator does not evaluate these on their own (they qualify other facts)
NOT_EVALUATED = frozenset({"time-window"})

# days per time unit, for windows: the data is placed well inside a window (a tenth of it to
# spare), so the month length a reader uses does not matter
_DAYS = {"h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.4375, "a": 365.25}


# --- intervals ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Interval:
    lo: float | None  # None: unbounded
    hi: float | None
    lo_incl: bool = True
    hi_incl: bool = True

    def contains(self, v: float) -> bool:
        if self.lo is not None and (v < self.lo or (v == self.lo and not self.lo_incl)):
            return False
        return not (self.hi is not None and (v > self.hi or (v == self.hi and not self.hi_incl)))

    def empty(self) -> bool:
        if self.lo is None or self.hi is None:
            return False
        return self.lo > self.hi or (self.lo == self.hi and not (self.lo_incl and self.hi_incl))


EVERYTHING = (Interval(None, None),)


def _interval(d: dict[str, Any], scale: Any = None) -> Interval:
    lo, hi = d.get("low"), d.get("high")
    if scale is not None:
        lo = None if lo is None else scale(lo)
        hi = None if hi is None else scale(hi)
    return Interval(lo, hi, bool(d.get("low_inclusive", True)), bool(d.get("high_inclusive", True)))


def _complement(i: Interval) -> tuple[Interval, ...]:
    out = []
    if i.lo is not None:
        out.append(Interval(None, i.lo, True, not i.lo_incl))
    if i.hi is not None:
        out.append(Interval(i.hi, None, not i.hi_incl, True))
    return tuple(out)


def _intersect(a: tuple[Interval, ...], b: tuple[Interval, ...]) -> tuple[Interval, ...]:
    out = []
    for x in a:
        for y in b:
            if x.lo is None or (y.lo is not None and (y.lo > x.lo or (y.lo == x.lo
                                                                        and not y.lo_incl))):
                lo, lo_incl = y.lo, y.lo_incl
            else:
                lo, lo_incl = x.lo, x.lo_incl
            if x.hi is None or (y.hi is not None and (y.hi < x.hi or (y.hi == x.hi
                                                                        and not y.hi_incl))):
                hi, hi_incl = y.hi, y.hi_incl
            else:
                hi, hi_incl = x.hi, x.hi_incl
            z = Interval(lo, hi, lo_incl, hi_incl)
            if not z.empty():
                out.append(z)
    return tuple(out)


def _pick(s: tuple[Interval, ...], *, positive: bool = True, integer: bool = False
          ) -> float | None:
    """A value well inside the set: an integer near the middle where one fits, never on a
    bound another rounding could move (an inclusive integer bound only for integer scales,
    "ECOG 0-1"); above zero where ``positive`` allows it."""
    for i in s:
        if positive:
            if i.hi is not None and (i.hi < 0 or (i.hi == 0 and not i.hi_incl)):
                continue
            if i.lo is None or i.lo < 0:
                i = Interval(0.0, i.hi, False, i.hi_incl)
        lo, hi = i.lo, i.hi
        if lo is not None and hi is not None:
            mid = (lo + hi) / 2
            ints = [n for n in (round(mid), math.floor(mid), math.ceil(mid)) if i.contains(n)]
            strict = [n for n in ints if lo < n < hi]
            if strict:
                return float(strict[0])
            if ints and (integer or lo == hi):
                return float(ints[0])
            if not integer and lo < hi:
                return mid
        elif lo is not None:
            return float(math.ceil(max(lo * 1.25, lo + 1)))
        elif hi is not None:
            return float(math.floor(hi) - 1)
        else:
            return 1.0
    return None


# --- what the criteria ask ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Want:
    """One fact and the result the patient must give it."""

    fact: Fact
    result: str  # MET or NOT_MET


class Unknowable(Exception):
    """A fact the generator cannot give a definite result (a kind it does not handle)."""


def _is_measurement(f: Fact) -> bool:
    return f.kind in MEASUREMENT_KINDS and "test" in f.data


def _handled(f: Fact) -> bool:
    if f.kind == GROUP:
        return all(_handled(m) for m in f.data["facts"])
    return f.kind in HANDLED or _is_measurement(f)


def _evaluated(f: Fact) -> bool:
    return f.kind not in NOT_EVALUATED


def _options(c: Criterion, target: str, limit: int = 64) -> list[list[Want]]:
    """Ways (each a list of wants) for criterion ``c`` to come out ``target``, preferred first;
    a way that needs a fact of a kind the generator does not handle is left out."""
    facts: list[Any] = [f for f in c.facts if _evaluated(f)]
    kids: list[Any] = [k for k in c.children if _computable(k)]
    if not c.children:
        return _ways(facts, c.combination, target, limit)
    side = "any-of" if c.exclude else "all-of"
    code = children_combination(c)
    if code != side and kids:  # own facts, and the nested items combined as the lead-in says
        # (a nested item in words counts there as unknown: it may be the one that counts)
        group = _Group(kids, code, at_least(c.text), len(c.children) - len(kids))
        return _ways([*facts, group], side, target, limit)
    return _ways(facts + kids, side, target, limit)


@dataclass
class _Group:
    """Nested criteria that combine on their own ("one of the following:")."""

    items: list[Any]
    code: str
    #: how many items an at-least needs
    threshold: int | None = None
    #: items in words beside ``items``: unknown to the evaluator, whatever the patient has
    open: int = 0


def _group_ways(g: _Group, target: str, limit: int) -> list[list[Want]]:
    """Ways for a group to reach the target, its items in words being unknown: an any-of is
    not-met only when every item is, so never with one in words (and an all-of never met);
    an at-least of n out of t items is met by n items met and not met by t - n + 1 items
    not met (met and unknown together then stay below n)."""
    if g.code != AT_LEAST:
        if g.open and (g.code == "any-of") == (target == NOT_MET):
            return []
        return _ways(g.items, g.code, target, limit)
    assert g.threshold is not None
    need = g.threshold if target == MET else len(g.items) + g.open - g.threshold + 1
    if need <= 0:
        return [[]]
    per_item = [_ways([it], "all-of", target, limit) for it in g.items]
    out: list[list[Want]] = []
    for chosen in itertools.combinations(range(len(g.items)), need):
        if not all(per_item[i] for i in chosen):
            continue
        combos: list[list[Want]] = [[]]
        for i in chosen:
            combos = [a + b for a in combos for b in per_item[i]][:limit]
        out += combos
        if len(out) >= limit:
            break
    return out[:limit]


def _ways(items: list[Any], code: str, target: str, limit: int) -> list[list[Want]]:
    if not items:
        return []

    def ways(item: Any, t: str) -> list[list[Want]]:
        if isinstance(item, Fact) and item.data.get("negated"):
            # "no evidence of QTc > 480 ms": met when its bound is not
            plain = Fact(item.kind, {k: v for k, v in item.data.items() if k != "negated"})
            return ways(plain, NOT_MET if t == MET else MET)
        if isinstance(item, Fact) and item.kind == GROUP:
            return _ways(item.data["facts"], "all-of", t, limit)
        if isinstance(item, Fact) and item.data.get("alternatives"):
            return _alternative_ways(item, t, limit) if _handled(item) else []
        if isinstance(item, Fact):
            return [[Want(item, t)]] if _handled(item) else []
        if isinstance(item, _Group):
            return _group_ways(item, t, limit)
        return _options(item, t, limit)

    every = (code == "all-of") == (target == MET)  # all items must reach the target
    per_item = [ways(it, target) for it in items]
    out: list[list[Want]] = []
    if every:
        if all(per_item):
            combos: list[list[Want]] = [[]]
            for ws in per_item:
                combos = [a + b for a in combos for b in ws][:limit]
            out += combos
    else:
        # one item suffices; all of them together first (the natural patient), then each
        if len([w for w in per_item if w]) > 1 and all(per_item):
            combos = [[]]
            for ws in per_item:
                combos = [a + b for a in combos for b in ws[:1]][:limit]
            out += combos
        for ws in per_item:
            out += ws
    return out[:limit]


def _alternative_ways(f: Fact, target: str, limit: int) -> list[list[Want]]:
    """A bound with alternatives is met when the bound or an alternative is ("< 30 or > 69",
    "≤ 1.5 mg/dL or ≤ 1.5 × ULN"), each member restricted to its sex when it names one
    ("< 11 g/dL in women and < 12 g/dL in men"). A conditional alternative met alone leaves
    the answer unknown, so a patient meant to meet the bound meets an unconditional member;
    an alternative in words ({"text": …}) is unknown, so no patient surely fails the bound."""
    base = {k: v for k, v in f.data.items() if k != "alternatives"}
    members: list[tuple[dict[str, Any], bool]] = [(base, False)]
    if target == NOT_MET and any("text" in alt for alt in f.data["alternatives"]):
        return []  # a way in stated in words is unknown: no patient surely fails them all
    for alt in f.data["alternatives"]:
        if "text" in alt:
            continue  # (and met by another member, the words do not matter)
        d = dict(base, **{k: v for k, v in alt.items() if k != "condition"})
        d["sex"] = alt.get("sex")
        members.append((d, bool(alt.get("condition"))))
    items: list[Any] = []
    for d, conditional in members:
        if conditional and target == MET:
            continue
        bound = Fact(f.kind, {k: v for k, v in d.items() if k != "sex"})
        if d.get("sex"):
            items.append(_Group([Fact("sex", {"sex": d["sex"]}), bound], "all-of"))
        else:
            items.append(bound)
    return _ways(items, "any-of", target, limit)


def _computable(c: Criterion) -> bool:
    return any(_evaluated(f) for f in c.facts) or any(_computable(k) for k in c.children)


def _skipped_kinds(c: Criterion) -> Counter[str]:
    return Counter(m.kind for x in c.walk() for f in x.facts
                   for m in (f.data["facts"] if f.kind == GROUP else [f])
                   if _evaluated(m) and not _handled(m))


# --- solving -----------------------------------------------------------------------------

@dataclass(slots=True)
class _Measure:
    absolute: tuple[Interval, ...] = EVERYTHING
    uln: tuple[Interval, ...] = EVERYTHING
    lln: tuple[Interval, ...] = EVERYTHING
    windows: list[dict[str, Any]] = field(default_factory=list)
    has_uln: bool = False
    has_lln: bool = False


@dataclass(slots=True)
class _Plan:
    """Everything the wants say about the patient's data; ``None`` from :func:`_plan` when
    they contradict each other."""

    ages: list[tuple[str, tuple[Interval, ...]]] = field(default_factory=list)
    genders: set[str] = field(default_factory=lambda: {"male", "female"})
    states: dict[str, bool] = field(default_factory=dict)  # pregnancy/lactation present?
    measures: dict[tuple[str, bool], _Measure] = field(default_factory=dict)
    conditions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


def _lab(key: str) -> Any:
    try:
        return tables().lab(key)
    except KeyError:
        return None


def _add(plan: _Plan, w: Want) -> bool:
    f, d, met = w.fact, w.fact.data, w.result == MET
    if f.kind == "age":
        i = _interval(d)
        plan.ages.append((d["unit"], (i,) if met else _complement(i)))
    elif f.kind == "sex":
        plan.genders &= {d["sex"]} if met else {"male", "female"} - {d["sex"]}
    elif f.kind in ("pregnancy", "lactation"):
        present = met == bool(d.get("value", True))
        if plan.states.setdefault(f.kind, present) != present:
            return False
    elif _is_measurement(f):
        lab = _lab(d["test"])
        if lab is None:
            return False
        predicted = d.get("relative") == "predicted"
        m = plan.measures.setdefault((d["test"], predicted), _Measure())
        rel = d.get("relative")
        if rel in ("ULN", "LLN"):
            i = _interval(d)
            s = (i,) if met else _complement(i)
            if rel == "ULN":
                m.uln, m.has_uln = _intersect(m.uln, s), True
            else:
                m.lln, m.has_lln = _intersect(m.lln, s), True
        else:
            unit = d.get("unit")
            if predicted or unit is None or unit == lab.unit:
                i = _interval(d)
            else:
                if lab.unit_for(unit) is None:
                    return False
                i = _interval(d, lambda v: lab.to_canonical(v, unit))
            m.absolute = _intersect(m.absolute, (i,) if met else _complement(i))
        if d.get("window"):
            m.windows.append(d["window"])
        return all(bool(x) for x in (m.absolute, m.uln, m.lln))
    elif f.kind == "condition":
        key = (d["system"], d["code"])
        c = plan.conditions.setdefault(key, {"present": met, "windows": [], "display":
                                             d.get("display") or d.get("text") or d["code"]})
        if c["present"] != met:
            return False
        if d.get("window"):
            c["windows"].append(d["window"])
    else:
        return False
    return True


def _plan(wants: list[Want]) -> _Plan | None:
    plan = _Plan()
    for w in wants:
        if not _add(plan, w):
            return None
    return plan


def _completed(b: date, a: date, unit: str) -> int:
    months = (a.year - b.year) * 12 + (a.month - b.month) - (1 if a.day < b.day else 0)
    if unit == "a":
        return months // 12
    if unit == "mo":
        return months
    days = (a - b).days
    return days // 7 if unit == "wk" else days if unit == "d" else days * 24


def _minus(a: date, n: int, unit: str) -> date:
    """The birth date of someone exactly ``n`` units old (plus a few days) on ``a``."""
    if unit in ("a", "mo"):
        months = n * 12 if unit == "a" else n
        y, m = divmod(a.year * 12 + (a.month - 1) - months, 12)
        return date(y, m + 1, min(a.day, 28)) - timedelta(days=3)
    days = n * 7 if unit == "wk" else n if unit == "d" else n // 24
    return a - timedelta(days=days + (3 if unit == "wk" else 0))


def _birth_date(ages: list[tuple[str, tuple[Interval, ...]]], as_of: date) -> date | None:
    """A birth date whose completed age meets every age constraint, adults near 40 first."""
    cands: set[date] = {_minus(as_of, 40, "a")}
    for unit, s in ages:
        for i in s:
            for b in (i.lo, i.hi):
                if b is None:
                    continue
                for n in (math.floor(b) - 1, math.floor(b), math.ceil(b), math.ceil(b) + 1):
                    if n >= 0:
                        cands.add(_minus(as_of, n, unit))
            if i.lo is not None and i.hi is not None:
                cands.add(_minus(as_of, int((i.lo + i.hi) // 2), unit))
    ok = [b for b in cands if b <= as_of and all(
        any(i.contains(_completed(b, as_of, u)) for i in s) for u, s in ages)]
    target = _minus(as_of, 40, "a")
    ok.sort(key=lambda b: (abs((b - target).days), b))
    return ok[0] if ok else None


def _date_in(windows: list[dict[str, Any]], as_of: date) -> date | None:
    """A date inside every look-back window (``<=`` N units before ``as_of``: well within;
    ``>=``: well beyond)."""
    lo, hi = 1.0, math.inf  # days before as_of
    for w in windows:
        if w["comparator"] in ("ever", "now"):  # any time before as_of (the Condition is
            continue  # made active, so present now too): no bound
        days = float(w["value"]) * _DAYS[w["unit"]]
        if w["comparator"] in ("<=", "<"):
            hi = min(hi, days * 0.9)
        else:
            lo = max(lo, days * 1.1 + 1)
    if lo > hi:
        return None
    n = math.ceil(lo) if math.isinf(hi) else math.ceil(lo) if math.ceil(lo) <= hi else None
    return None if n is None else as_of - timedelta(days=n)


@dataclass(slots=True)
class Case:
    """A generated patient and what it is meant to show."""

    bundle: dict[str, Any]
    as_of: date
    #: text of the criterion the patient is built not to meet (None: meets them all)
    broken: str | None
    #: criteria whose result the generator could not settle (they may come out unknown)
    uncertain: list[str]
    #: facts of kinds the generator does not handle, by kind
    skipped: Counter[str]
    #: per criterion text, the data it reads ("birthDate", "gender", or a resource id)
    inputs: dict[str, set[str]]
    #: criterion texts decided by this patient (every computable one not uncertain)
    decided: list[str] = field(default_factory=list)
    #: criteria no patient meets as the parser reads them (the evaluator may say not-met)
    unmeetable: list[str] = field(default_factory=list)


def _fact_inputs(f: Fact) -> set[str]:
    d = f.data
    if f.kind == GROUP:
        return set().union(*(_fact_inputs(m) for m in d["facts"]))
    if f.kind == "age":
        return {"birthDate"}
    if f.kind == "sex":
        return {"gender"}
    if f.kind == "pregnancy":
        return {"gender", "pregnancy", "pregnancy-status"}
    if f.kind == "lactation":
        return {"gender", "lactation"}
    if _is_measurement(f):
        # a bound and its alternatives ("≥ 1.2 L or > 40% predicted", "… in women")
        members = [d, *(d.get("alternatives") or [])]
        return {_obs_id(d["test"], m.get("relative") == "predicted") for m in members} | (
            {"gender"} if any(m.get("sex") for m in members) else set())
    if f.kind == "condition":
        return {_cond_id(d["code"])}
    return {f"?{f.kind}"}


def _obs_id(test: str, predicted: bool) -> str:
    return f"obs-{test}" + ("-pct" if predicted else "")


def _cond_id(code: str) -> str:
    return f"cond-{code}"


def criteria_of(source: Any) -> list[Criterion]:
    """The criteria a pre-screen evaluates for ``source``: a Study (its registry fields and
    text), an eligibility EvidenceVariable, eligibility text, or criteria."""
    if isinstance(source, Study):
        return registry_criteria(source.eligibility) + criteria_for(source.eligibility.criteria)
    if isinstance(source, dict) and source.get("resourceType") == "EvidenceVariable":
        return from_evidence_variable(source)
    if isinstance(source, str):
        return criteria_for(source)
    return list(source)


def _target(c: Criterion) -> str:
    return NOT_MET if c.exclude else MET


def _feasible(wants: list[Want], as_of: date) -> bool:
    plan = _plan(wants)
    return plan is not None and _realise(plan, as_of) is not None


def _solve(criteria: list[Criterion], as_of: date, broken: int | None
           ) -> tuple[list[Want], list[str], list[str]] | None:
    """(wants, uncertain criterion texts, unmeetable criterion texts), greedily; None when
    the criterion to break cannot be broken."""
    order = list(range(len(criteria)))
    if broken is not None:
        order.remove(broken)
        order.insert(0, broken)
    wants: list[Want] = []
    uncertain: list[str] = []
    unmeetable: list[str] = []
    for k in order:
        c = criteria[k]
        if not _computable(c):
            continue
        target = _target(c)
        if k == broken:
            target = MET if target == NOT_MET else NOT_MET
        ways = _options(c, target)
        for way in ways:
            if _feasible(wants + way, as_of):
                wants += way
                break
        else:
            if k == broken:
                return None
            if ways and not any(_feasible(way, as_of) for way in ways):
                # no patient meets it as read (cohorts that exclude each other under a
                # lead-in the reader takes as all-of)
                unmeetable.append(c.text)
            else:
                uncertain.append(c.text)
            continue
        if _skipped_kinds(c) and (k == broken or not _options_certain(c, target)):
            uncertain.append(c.text)
    return wants, uncertain, unmeetable


def _options_certain(c: Criterion, target: str) -> bool:
    """Whether the target holds whatever the skipped facts answer: for all-of MET / any-of
    NOT_MET every item counts, so an unhandled fact leaves it open."""
    code = ("any-of" if c.exclude else "all-of") if c.children else c.combination
    if c.children and children_combination(c) != code:
        return False  # own facts and alternatives: whether a skipped fact counts is open
    every = (code == "all-of") == (target == MET)
    return not every


def _realise(plan: _Plan, as_of: date) -> dict[str, Any] | None:
    """The resources of a plan (by id), or None when no data meets it."""
    res: dict[str, Any] = {}
    if not plan.genders:
        return None
    birth = _birth_date(plan.ages, as_of)
    if birth is None:
        return None
    gender = None
    for g in ("male", "female"):
        if g not in plan.genders:
            continue
        if g == "male" and any(plan.states.values()):
            continue  # a state present needs a woman
        if g == "female" and plan.states.get("lactation") is False:
            continue  # no data says a woman is not breast-feeding: it would stay unknown
        gender = g
        break
    if gender is None:
        return None
    res["patient"] = {"resourceType": "Patient", "id": "patient", "gender": gender,
                      "birthDate": birth.isoformat()}
    findings = tables().findings
    for kind, present in sorted(plan.states.items()):
        f = findings[kind]
        if present:
            key = (f["condition"]["system"], f["condition"]["code"])
            if key in plan.conditions and not plan.conditions[key]["present"]:
                return None
            res[kind] = _condition(kind, f["condition"], as_of - timedelta(days=30))
        elif gender == "female":  # pregnancy only (lactation ruled out above)
            status = f["status_observation"]
            res["pregnancy-status"] = _observation(
                "pregnancy-status", status, as_of - timedelta(days=1),
                {"valueCodeableConcept": {"coding": [dict(f["not_pregnant_values"][0])]}})
    for (system, code), c in sorted(plan.conditions.items()):
        if not c["present"]:
            continue
        when = _date_in(c["windows"], as_of)
        if when is None:
            return None
        res[_cond_id(code)] = _condition(_cond_id(code), {"system": system, "code": code,
                                                          "display": c["display"]}, when)
    used: dict[str, str] = {}  # LOINC code → observation id, so no two tests share one
    for (test, predicted), m in sorted(plan.measures.items()):
        obs = _measurement(test, predicted, m, as_of)
        if obs is None:
            return None
        lab = _lab(test)
        # the codes the evaluator reads this observation as: a "% predicted" one under its
        # own code (FEV1 20152-5) sits beside the absolute one; without such a code, both
        # would be read from one code, so they cannot both be there
        claims = set(lab.percent_predicted_codes) if predicted and lab.percent_predicted_codes \
            else lab.all_codes()
        for code in claims:
            if used.setdefault(code, obs["id"]) != obs["id"]:
                return None
        res[obs["id"]] = obs
    return res


def _class_observation(test: str, m: _Measure, as_of: date) -> dict[str, Any] | None:
    """A class scale (NYHA, ASA) as an EHR records it: the Observation of the scale with the
    class's SNOMED concept as its coded value, a class inside the wanted set."""
    lab = _lab(test)
    numbers = sorted({n for n, _ in lab.classes})
    value = _pick(_intersect(m.absolute, (Interval(numbers[0], numbers[-1]),)), integer=True)
    when = _date_in(m.windows, as_of)
    if value is None or int(value) not in numbers or when is None:
        return None
    codings = [dict(c) for n, c in lab.classes if n == int(value)]
    return _observation(_obs_id(test, False), {"system": lab.code["system"],
                                               "code": lab.code["code"]}, when,
                        {"valueCodeableConcept": {"coding": codings}})


def _measurement(test: str, predicted: bool, m: _Measure, as_of: date) -> dict[str, Any] | None:
    lab = _lab(test)
    if lab.classes and not predicted and not (m.has_uln or m.has_lln):
        return _class_observation(test, m, as_of)
    integer = lab.kind == "score"
    unit = "%" if predicted else lab.unit
    value = _pick(m.absolute, integer=integer)
    if value is None:
        return None
    extra: dict[str, Any] = {}
    ref: dict[str, Any] = {}
    if m.has_uln or m.has_lln:
        if value <= 0:
            value = _pick(_intersect(m.absolute, (Interval(0, None, False),)), integer=integer)
            if value is None:
                return None
        for key, s, on in (("high", m.uln, m.has_uln), ("low", m.lln, m.has_lln)):
            if not on:
                continue
            ratio = _pick(s)
            if not ratio:
                return None
            limit = round(value / ratio, 6)
            if not any(i.contains(value / limit) for i in s):
                return None
            ref[key] = _qty(limit, unit)
        extra["referenceRange"] = [ref]
    when = _date_in(m.windows, as_of)
    if when is None:
        return None
    if predicted and lab.percent_predicted_codes:
        coding = {"system": LOINC, "code": lab.percent_predicted_codes[0]}
    else:
        coding = {"system": lab.code["system"], "code": lab.code["code"]}
    value = int(value) if float(value).is_integer() else round(value, 6)
    obs = _observation(_obs_id(test, predicted), coding, when,
                       {"valueQuantity": _qty(value, unit)})
    obs.update(extra)
    return obs


def _qty(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _observation(rid: str, coding: dict[str, Any], when: date,
                 value: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": {"coding": [dict(coding)]}, "subject": {"reference": "Patient/patient"},
            "effectiveDateTime": when.isoformat(), **value}


def _condition(rid: str, coding: dict[str, Any], onset: date) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": rid,
            "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
            "code": {"coding": [dict(coding)]}, "subject": {"reference": "Patient/patient"},
            "onsetDateTime": onset.isoformat()}


def _bundle(resources: dict[str, Any]) -> dict[str, Any]:
    order = sorted(resources, key=lambda k: (k != "patient", k))
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid5(_NS, k)}", "resource": resources[k]}
                      for k in order]}


def _case(criteria: list[Criterion], as_of: date, broken: int | None) -> Case | None:
    solved = _solve(criteria, as_of, broken)
    if solved is None:
        return None
    wants, uncertain, unmeetable = solved
    plan = _plan(wants)
    assert plan is not None
    resources = _realise(plan, as_of)
    assert resources is not None
    skipped: Counter[str] = Counter()
    inputs: dict[str, set[str]] = {}
    for c in criteria:
        skipped += _skipped_kinds(c)
        inputs[c.text] = {x for n in c.walk() for f in n.facts if _evaluated(f)
                          for x in _fact_inputs(f)}
    decided = [c.text for c in criteria if _computable(c) and c.text not in uncertain
               and c.text not in unmeetable]
    return Case(_bundle(resources), as_of,
                criteria[broken].text if broken is not None else None, uncertain, skipped,
                inputs, decided, unmeetable)


def meeting(source: Any, as_of: date = AS_OF) -> Case:
    """A patient meeting every structured criterion of ``source`` it can settle."""
    case = _case(criteria_of(source), as_of, None)
    assert case is not None  # without a broken criterion every criterion may be left open
    return case


def breaking(source: Any, index: int, as_of: date = AS_OF) -> Case | None:
    """A patient failing criterion ``index`` (of :func:`criteria_of`) and meeting every other
    one it can settle; None when that criterion cannot be failed alone (another criterion
    states the same bound, or its kind is not handled)."""
    criteria = criteria_of(source)
    c = criteria[index]
    if not _computable(c) or _skipped_kinds(c):
        return None
    case = _case(criteria, as_of, index)
    if case is None:
        return None
    # the others must stay as the meeting patient leaves them: none newly uncertain
    base = _case(criteria, as_of, None)
    assert base is not None
    if set(case.uncertain) - {c.text} - set(base.uncertain) or (
            set(case.unmeetable) != set(base.unmeetable)):
        return None
    return case


def broken_variants(source: Any, as_of: date = AS_OF) -> Iterator[Case]:
    """One patient per criterion that can be failed alone."""
    criteria = criteria_of(source)
    for k in range(len(criteria)):
        case = breaking(criteria, k, as_of)
        if case is not None:
            yield case


def without(case: Case, key: str) -> dict[str, Any]:
    """The case's Bundle with one input removed: a resource id, or ``birthDate``/``gender``
    of the Patient."""
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": []}
    for e in case.bundle["entry"]:
        r = dict(e["resource"])
        if r.get("id") == key:
            continue
        if r["resourceType"] == "Patient":
            r.pop(key, None)
        bundle["entry"].append({**e, "resource": r})
    return bundle


def bundle_inputs(case: Case) -> set[str]:
    """The inputs present in the case's Bundle (ids, and the Patient's birthDate/gender)."""
    out = set()
    for e in case.bundle["entry"]:
        r = e["resource"]
        out.add(r["id"])
        if r["resourceType"] == "Patient":
            out |= {k for k in ("birthDate", "gender") if k in r}
    return out
