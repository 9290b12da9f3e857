"""Pre-screening: a study's criteria against one patient's FHIR data.

``evaluate(study_or_criteria, patient_bundle)`` answers, per criterion, *met*, *not-met* or
*unknown* with the evidence used, and an overall verdict, as a FHIR ``Parameters`` resource
(the body of ``ResearchStudy/{id}/$match``).

How the patient's data is read:

- age from ``Patient.birthDate`` at the evaluation date (a date without its day, "2008" or
  "2008-01", decides a bound only when every day it may mean agrees); sex from
  ``Patient.gender``;
- a lab from the most recent final/amended/corrected Observation carrying one of the test's
  LOINC codes (its unit converted to the table's canonical unit; an unknown unit gives
  *unknown*, never a guess); "× ULN" against that Observation's ``referenceRange.high``
  ("× LLN": ``.low``), "% of predicted" from the measured/predicted code or a ``%`` value;
- a class on a class scale (NYHA, ASA) from the latest record of it: an Observation of the
  scale whose value is the class's code or number, an Observation coded (or valued) with the
  class's concept, or a Condition coded with it; met when the class is one the bound allows;
- a time window ("within the previous 3 months") against the Observation's effective date /
  the Condition's onset or recorded date (a Condition is within "the past N" when it began,
  is active, or abated in it; "at least N ago" is its onset's alone); a value at any time
  ("history of QTc > 480 ms") against every result up to the evaluation date: met by any,
  not met when none meets it;
- conditions by code: the lexicon's SNOMED code (or a kind's: idiopathic pulmonary fibrosis
  is an interstitial lung disease) or an ICD-10-CM / ICD-10 code under its prefixes; a
  Condition under another code whose text or display names the condition ("Chronic
  hepatitis C" coded with a narrower SNOMED concept) is *unknown*, for a person to confirm,
  unless its words say it is no record of it ("family history of …", "… vaccination"),
  and so is one whose ``verificationStatus`` is provisional, differential or unconfirmed.
  The problem list is taken as complete: no such Condition means *not-met*
  (``verificationStatus`` refuted/entered-in-error do not count); conditions the criterion
  names in words beside the code are, in an exclusion, named for a person to confirm, and
  in an inclusion another way in (unknown);
- pregnancy / lactation: never for a male patient; a Condition, or a Pregnancy status
  Observation (LOINC 82810-3); otherwise *unknown*.

The evaluation date (``as_of``) defaults to the latest clinical date in the bundle, so the
same input always gives the same answer; pass it explicitly to screen "today".

Verdict: ``not-eligible`` when an inclusion criterion is not met or an exclusion criterion is
met; ``needs-review`` when a computable criterion cannot be decided from the data;
``eligible`` when every computable criterion is decided in the patient's favour. Criteria
that are text only are listed (``computable`` false) for a human to confirm: they do not
change the verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from typing import Any

from ..errors import SourceError
from ..jsonbytes import finite_number
from ..model import Eligibility, Study
from .criteria import (
    AT_LEAST,
    EITHER,
    EITHER_OR,
    GROUP,
    PARTICIPANT_GROUP,
    Criterion,
    Fact,
    at_least,
    children_combination,
)
from .fhir import (
    class_text,
    condition_name,
    fact_text,
    held_text,
    measurement_name,
    nested_criteria,
    window_text,
    without_tag,
)
from .grammar import MEASUREMENT
from .structure import structure
from .tables import DAYS, Lab, tables

_FINAL = {"final", "amended", "corrected", "preliminary"}

MET, NOT_MET, UNKNOWN = "met", "not-met", "unknown"


@dataclass(slots=True)
class Result:
    """The answer for one fact or one criterion."""

    result: str
    reason: str
    evidence: list[str] = field(default_factory=list)
    #: words of the criterion beside the fact that no data decides and that do not change the
    #: answer (a criterion in words within the line): for a person to confirm
    confirm: list[str] = field(default_factory=list)


# --- the patient ---------------------------------------------------------------------------

@dataclass(slots=True)
class Patient:
    """What the evaluator reads from a patient Bundle."""

    ref: str | None = None
    birth_date: date | None = None
    #: the last day ``Patient.birthDate`` may mean ("1970" is any day of that year)
    birth_latest: date | None = None
    gender: str | None = None
    observations: list[dict[str, Any]] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        parts = value[:10].split("-")
        y = int(parts[0])
        m = int(parts[1]) if len(parts) > 1 else 1
        d = int(parts[2]) if len(parts) > 2 else 1
        return date(y, m, d)
    except (ValueError, IndexError):
        return None


def _obs_date(o: dict[str, Any]) -> date | None:
    """When the value was true of the patient: its effective time; only without one, when it
    was issued (a report may come days after the sample)."""
    return (_date(o.get("effectiveDateTime")) or _date((o.get("effectivePeriod") or {}).get("end"))
            or _date((o.get("effectivePeriod") or {}).get("start"))
            or _date(o.get("effectiveInstant")) or _date(o.get("issued")))


def _cond_date(c: dict[str, Any]) -> date | None:
    """The Condition's date as a person reads it (its onset, else when it was recorded)."""
    first, last = _cond_days(c)
    return last if first == date.min else first


def _cond_days(c: dict[str, Any]) -> tuple[date | None, date | None]:
    """The first and the last day the Condition's onset may be: a date without its day
    ("2021", "2021-06") is any day of it; with no onset, any day up to the date it was
    recorded (``date.min`` first: a condition recorded last month may have begun years ago —
    before, the recorded date was taken for the onset, and an infarction of 2015 entered on
    a new clinic's problem list last month met "within the past 6 months")."""
    for raw in (c.get("onsetDateTime"), (c.get("onsetPeriod") or {}).get("start")):
        first = _date(raw)
        if first is not None:
            return first, _last_day(raw, first)
    raw = c.get("recordedDate")
    recorded = _date(raw)
    if recorded is not None:
        return date.min, _last_day(raw, recorded)
    return None, None


#: the shape of the elements the matcher and the evaluator read, per resource type
_SHAPES: dict[str, dict[str, type | tuple[type, ...]]] = {
    "Patient": {"id": str, "birthDate": str, "gender": str},
    "Condition": {"id": str, "code": dict, "clinicalStatus": dict, "verificationStatus": dict,
                  "onsetDateTime": str, "onsetPeriod": dict, "recordedDate": str,
                  "abatementDateTime": str, "abatementPeriod": dict},
    "Observation": {"id": str, "status": str, "code": dict, "valueQuantity": dict,
                    "valueCodeableConcept": dict, "valueInteger": int,
                    "effectiveDateTime": str, "effectivePeriod": dict, "effectiveInstant": str,
                    "issued": str, "referenceRange": list},
}
_DICT_LISTS = {"coding", "referenceRange"}


def check_patient_bundle(bundle: dict[str, Any], param: str = "trialMatchClinicalData") -> None:
    """The elements the matcher reads have their FHIR JSON shape (SourceError naming the
    first that does not, under the request's parameter ``param``): malformed data is a 400,
    not a failure halfway through."""
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise SourceError("Bundle.entry must be a list", location=param)
    for i, e in enumerate(entries):
        where = f"{param}.entry[{i}]"
        if not isinstance(e, dict) or not isinstance(e.get("resource", {}), dict):
            raise SourceError(f"{where} is not an entry with a resource object", location=where)
        r = e.get("resource") or {}
        for name, kind in _SHAPES.get(str(r.get("resourceType")), {}).items():
            v = r.get(name)
            if v is None:
                continue
            if not isinstance(v, kind) or isinstance(v, bool):
                raise SourceError(f"{r['resourceType']}.{name} has the wrong JSON type",
                                  location=f"{where}.resource.{name}")
            _check_nested(v, f"{where}.resource.{name}")


def _check_nested(v: Any, where: str) -> None:
    if isinstance(v, dict):
        for k, x in v.items():
            if k in _DICT_LISTS and (not isinstance(x, list)
                                     or not all(isinstance(y, dict) for y in x)):
                raise SourceError(f"{where}.{k} must be a list of objects", location=where)
            if k in ("low", "high") and x is not None and not isinstance(x, dict):
                raise SourceError(f"{where}.{k} must be an object", location=where)
            if k in ("value",) and x is not None and (isinstance(x, bool)
                                                       or not isinstance(x, int | float)):
                raise SourceError(f"{where}.value must be a number", location=where)
            if k in ("code", "system", "unit", "text", "display", "start", "end") \
                    and x is not None and not isinstance(x, str):
                raise SourceError(f"{where}.{k} must be a string", location=where)
            if isinstance(x, dict | list):
                _check_nested(x, f"{where}.{k}")
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _check_nested(x, f"{where}[{i}]")


def read_patient(bundle: Any) -> Patient:
    """The Patient, Observations and Conditions of a Bundle (or a lone Patient resource)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") not in ("Bundle", "Patient"):
        raise SourceError("patient data must be a FHIR Bundle (or Patient) JSON object")
    check_patient_bundle(bundle if bundle["resourceType"] == "Bundle" else
                         {"entry": [{"resource": bundle}]}, "patient-bundle")
    resources = ([bundle] if bundle["resourceType"] == "Patient" else
                 [e.get("resource") for e in bundle.get("entry") or [] if isinstance(e, dict)])
    p = Patient()
    patients = [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "Patient"]
    if len(patients) > 1:
        raise SourceError(f"the Bundle holds {len(patients)} Patients; pre-screening is for one")
    if patients:
        pt = patients[0]
        p.ref = f"Patient/{pt['id']}" if pt.get("id") else "Patient"
        p.birth_date = _date(pt.get("birthDate"))
        p.birth_latest = _last_day(pt.get("birthDate"), p.birth_date)
        p.gender = pt.get("gender")
    for r in resources:
        if not isinstance(r, dict):
            continue
        if r.get("resourceType") == "Observation" and r.get("status", "final") in _FINAL:
            p.observations.append(r)
        elif r.get("resourceType") == "Condition":
            vs = {c.get("code") for c in (r.get("verificationStatus") or {}).get("coding", [])}
            if not vs & {"refuted", "entered-in-error"}:
                p.conditions.append(r)
    return p


def _ref(r: dict[str, Any]) -> str:
    return f"{r['resourceType']}/{r['id']}" if r.get("id") else r["resourceType"]


def _codes(cc: Any) -> set[tuple[str, str]]:
    if not isinstance(cc, dict):
        return set()
    return {(c.get("system", ""), c.get("code", "")) for c in cc.get("coding") or []
            if isinstance(c, dict)}


def default_as_of(p: Patient) -> date | None:
    """The latest clinical date in the patient's data (the deterministic default)."""
    dates = [d for d in (*map(_obs_date, p.observations), *map(_cond_date, p.conditions)) if d]
    return max(dates) if dates else None


# --- facts ---------------------------------------------------------------------------------

def _in_bounds(v: float, d: dict[str, Any], lo: float | None = None,
               hi: float | None = None) -> bool:
    lo = d.get("low") if lo is None else lo
    hi = d.get("high") if hi is None else hi
    if lo is not None and (v < lo or (v == lo and not d.get("low_inclusive", True))):
        return False
    return not (hi is not None and (v > hi or (v == hi and not d.get("high_inclusive", True))))


def _censored(v: float, comparator: str, d: dict[str, Any], lo: float | None = None,
              hi: float | None = None) -> str:
    """MET, NOT_MET or UNKNOWN for a value reported only as beyond ``v`` (an Observation's
    ``valueQuantity.comparator``: "eGFR > 60", "HIV RNA < 20 copies/mL"): met when every value
    it may be meets the bound, not met when none does."""
    lo = d.get("low") if lo is None else lo
    hi = d.get("high") if hi is None else hi
    lo_in, hi_in = d.get("low_inclusive", True), d.get("high_inclusive", True)
    strict = comparator in ("<", ">")
    if comparator in ("<", "<="):  # any value up to v
        if lo is not None and (v < lo or (v == lo and (strict or not lo_in))):
            return NOT_MET
        if lo is None and (hi is None or v < hi or (v == hi and (hi_in or strict))):
            return MET
        return UNKNOWN
    # any value from v up
    if hi is not None and (v > hi or (v == hi and (strict or not hi_in))):
        return NOT_MET
    if hi is None and (lo is None or v > lo or (v == lo and (lo_in or strict))):
        return MET
    return UNKNOWN


_CENSORED = {"<", "<=", ">", ">="}


def _judged(x: float, d: dict[str, Any], o: dict[str, Any], shown: str, evidence: list[str],
            lo: float | None = None, hi: float | None = None) -> Result:
    """One value (canonical, a ratio, or % of predicted) against a bound: the value's own
    comparator, if the result was reported as one, makes it a range of values (``shown``
    says it, see :func:`_shown`)."""
    q = o.get("valueQuantity")
    comparator = q.get("comparator") if isinstance(q, dict) else None
    if comparator is not None and (not isinstance(comparator, str) or
                                   comparator not in _CENSORED):
        # (FHIR's comparators are < <= >= > and ad, "sufficient to achieve": any other, or
        # "ad", leaves what the value is unsaid)
        return Result(UNKNOWN, f"{shown} reported with the comparator {comparator!r}: for a "
                      "person to confirm", evidence)
    if comparator is None:
        return Result(MET if _in_bounds(x, d, lo, hi) else NOT_MET, shown, evidence)
    answer = _censored(x, comparator, d, lo, hi)
    return Result(answer, shown + (": the bound falls inside what it may be, for a person to "
                                   "confirm" if answer == UNKNOWN else ""), evidence)


def _last_day(value: Any, first: date | None) -> date | None:
    """The last day a partial date means: "1970" → 1970-12-31, "1970-06" → 1970-06-30."""
    if first is None or not isinstance(value, str):
        return first
    if len(value) == 4:
        return date(first.year, 12, 31)
    if len(value) == 7:
        nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return nxt - timedelta(days=1)
    return first


def _age(p: Patient, as_of: date | None, unit: str, born: date | None = None) -> float | None:
    b = born or p.birth_date
    if b is None or as_of is None:
        return None
    a = as_of
    months = (a.year - b.year) * 12 + (a.month - b.month) - (1 if a.day < b.day else 0)
    if unit == "a":
        return months // 12
    if unit == "mo":
        return months
    days = (a - b).days
    if unit == "h":
        return days * 24
    return days // 7 if unit == "wk" else days


def _eval_age(d: dict[str, Any], p: Patient, as_of: date | None) -> Result:
    age = _age(p, as_of, d["unit"])
    if age is None:
        return Result(UNKNOWN, "no Patient.birthDate" if p.birth_date is None
                      else "no evaluation date")
    ok = _in_bounds(age, d)
    youngest = _age(p, as_of, d["unit"], p.birth_latest)
    if youngest is not None and youngest != age and _in_bounds(youngest, d) != ok:
        # "birthDate": "2008" on 2026-01-15 is 17 or 18 years: whether ≥ 18 is not said
        return Result(UNKNOWN, f"age {youngest}-{age} {d['unit']} on {as_of} (Patient.birthDate "
                      "gives no day)", [p.ref] if p.ref else [])
    return Result(MET if ok else NOT_MET, f"age {age} {d['unit']} on {as_of}",
                  [p.ref] if p.ref else [])


def _eval_sex(d: dict[str, Any], p: Patient) -> Result:
    if p.gender not in ("male", "female"):
        return Result(UNKNOWN, "Patient.gender is not male or female")
    return Result(MET if p.gender == d["sex"] else NOT_MET, f"Patient.gender is {p.gender}",
                  [p.ref] if p.ref else [])


def _eval_state(kind: str, d: dict[str, Any], p: Patient) -> Result:
    """Pregnancy / lactation: the state's presence, then flipped for 'non-pregnant'."""
    finding = tables().findings[kind]
    code = (finding["condition"]["system"], finding["condition"]["code"])
    present: Result
    if p.gender == "male":
        present = Result(NOT_MET, "Patient.gender is male", [p.ref] if p.ref else [])
    else:
        # (the SNOMED finding, or an ICD-10-CM code of the state now: pregnant state
        # Z33.1/Z33.3, supervision of a pregnancy Z34/O09; a lactating mother's care, Z39.1)
        sense = _Sense(frozenset([code[1]]), tuple(i.replace(".", "") for i in
                                                   finding.get("icd10cm", ())), ())
        ask = {"system": code[0], "code": code[1]}
        conds = [c for c in p.conditions if _records(c, ask, sense) == "code"
                 and _clinical_active(c) is not False and not _tentative(c)]
        obs = []
        if kind == "pregnancy":
            status = finding["status_observation"]
            obs = sorted((o for o in p.observations
                          if (status["system"], status["code"]) in _codes(o.get("code"))),
                         key=lambda o: _obs_date(o) or date.min)
        if conds:
            present = Result(MET, f"{kind} recorded as a Condition", [_ref(conds[0])])
        elif obs:
            o = obs[-1]
            val = _codes(o.get("valueCodeableConcept"))
            yes = {(c["system"], c["code"]) for c in finding["pregnant_values"]}
            no = {(c["system"], c["code"]) for c in finding["not_pregnant_values"]}
            if val & yes:
                present = Result(MET, "pregnancy status: pregnant", [_ref(o)])
            elif val & no:
                present = Result(NOT_MET, "pregnancy status: not pregnant", [_ref(o)])
            else:
                present = Result(UNKNOWN, "pregnancy status value not understood", [_ref(o)])
        else:
            present = Result(UNKNOWN, f"no record of {kind} status")
    if d.get("value", True) or present.result == UNKNOWN:
        return present
    flipped = NOT_MET if present.result == MET else MET
    return Result(flipped, present.reason, present.evidence)


def _tentative(c: dict[str, Any]) -> set[str]:
    """The Condition's verification status when it is short of a diagnosis (provisional,
    differential, unconfirmed), else an empty set."""
    return {code for _, code in _codes(c.get("verificationStatus"))} & {
        "unconfirmed", "provisional", "differential"}


#: the clinical statuses that say a condition holds, and those that say it is over (R5 adds
#: "unknown", which says neither)
_ONGOING = frozenset({"active", "recurrence", "relapse"})
_OVER = frozenset({"inactive", "remission", "resolved"})


def _clinical_active(c: dict[str, Any]) -> bool | None:
    """True when the Condition's clinical status says it holds, False when it says it is
    over, None when it says neither (no status, or "unknown")."""
    codes = {code for _, code in _codes(c.get("clinicalStatus"))}
    if codes & _ONGOING:
        return True
    return False if codes & _OVER else None


def _within(d0: date | None, window: dict[str, Any] | None, as_of: date | None) -> bool | None:
    if window is None:
        return True
    if d0 is None or as_of is None:
        return None
    age_days = (as_of - d0).days
    limit = window["value"] * DAYS[window["unit"]]
    return age_days <= limit if window["comparator"] == "<=" else age_days >= limit


def _abated(c: dict[str, Any]) -> date | None:
    period = c.get("abatementPeriod") or {}
    return (_date(c.get("abatementDateTime")) or _date(period.get("end"))
            or _date(period.get("start")))


def _present_within(c: dict[str, Any], window: dict[str, Any] | None,
                    as_of: date | None, event: bool = True) -> bool | None:
    """Whether a Condition answers a criterion's window. "Within the past N": present at any
    time in it — begun in it, active now, or abated in it (a cancer diagnosed ten years ago
    and in remission since last year was present within the past five; before, only the
    onset was compared and that patient was cleared); begun before it with no date it ended
    is not met for an ``event`` (a myocardial infarction of 2015 is no infarction within 6
    months) and not said for anything else (a cancer of 2010 "in remission" since a date the
    record does not give may have been present in the past five years: before, not met, and
    the patient was cleared). "At least N ago" ("diagnosed at least 6 months ago"):
    the onset alone (before, an active condition met it whatever its onset). "Current"
    ("active tuberculosis"): present at ``as_of`` — active by its clinical status, or with no
    status and no abatement on or before it (a problem list's entry, taken as current);
    inactive, in remission, resolved or abated is not (before, any record met it)."""
    if window is not None and window["comparator"] == "now":
        active = _clinical_active(c)
        if active is not None:
            return active
        # (no status, or "unknown": the abatement decides; none, the entry is taken as current;
        # one without a date — an age, a range, words: "resolved in childhood" — says it is over)
        end = _abated(c)
        if end is None:
            return not any(k.startswith("abatement") and c[k] not in (None, "", False)
                           for k in c)
        return as_of is None or end > as_of
    first, last = _cond_days(c)
    inside = _within(first, window, as_of)
    if window is not None and last != first and _within(last, window, as_of) != inside:
        # ("2021" against "within the past 5 years" on 2026-01-15: in it if after January
        # 15th): met only when active or abated in the window, else not said
        inside = None if inside is False or window["comparator"] != "<=" else inside
    if inside or window is None or window["comparator"] != "<=":
        return inside
    active = _clinical_active(c)
    if active:
        return True
    end = _abated(c)
    if end is not None and as_of is not None:
        return (as_of - end).days <= window["value"] * DAYS[window["unit"]]
    if not event and inside is False:
        return None  # (begun before the window; when it ended, the record does not say)
    return inside


@dataclass(frozen=True, slots=True)
class _Sense:
    """What a patient's Condition may carry for one condition of a criterion: its SNOMED codes
    (its own and its kinds'), ICD-10-CM code prefixes, and names (normalised)."""

    snomed: frozenset[str]
    icd: tuple[str, ...]
    names: tuple[str, ...]
    #: an acute event (its onset is when it happened), see :func:`_present_within`
    event: bool = False


_ICD = ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10")
_SNOMED = "http://snomed.info/sct"
_NON_WORD = re.compile(r"[^0-9a-z]+")


def _words(text: str) -> str:
    return f" {_NON_WORD.sub(' ', text.casefold()).strip()} "


@cache
def _senses() -> dict[tuple[str, str], _Sense]:
    """The lexicon's conditions by code: what a patient's Condition may record each as."""
    conds = {c["key"]: c for c in tables().conditions}
    out = {}
    for c in conds.values():
        family = [c, *(conds[k] for k in c.get("includes", ()))]
        out[(c["code"]["system"], c["code"]["code"])] = _Sense(
            frozenset(m["code"]["code"] for m in family if m["code"]["system"] == _SNOMED),
            tuple(i.replace(".", "") for m in family for i in m.get("icd10cm", ())),
            tuple(dict.fromkeys(_words(n) for m in family
                                for n in (*m["names"], *m.get("record_words", ())))),
            bool(c.get("event")))
    return out


def _sense(d: dict[str, Any]) -> _Sense:
    """A criterion's condition as the lexicon knows it; one it does not (a foreign
    EvidenceVariable's) is its own code and the names it is given."""
    known = _senses().get((d["system"], d["code"]))
    if known is not None:
        return known
    names = [without_tag(n) for n in (d.get("display"), d.get("text")) if n]
    return _Sense(frozenset([d["code"]]) if d["system"] == _SNOMED else frozenset(), (),
                  tuple(dict.fromkeys(w for n in names if (w := _words(n)).strip())))


def _records(c: dict[str, Any], d: dict[str, Any], sense: _Sense) -> str | None:
    """How a patient's Condition records the criterion's condition: ``"code"`` (its own code,
    a kind's, or an ICD-10 code under its prefixes), ``"words"`` (a text or display naming it
    under a code the lexicon does not relate, "Chronic viral hepatitis C" coded with a
    narrower SNOMED concept), or None."""
    cc = c.get("code")
    if not isinstance(cc, dict):
        return None
    texts = [cc["text"]] if isinstance(cc.get("text"), str) else []
    for coding in cc.get("coding") or ():
        if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
            continue
        system, code = coding.get("system"), coding["code"]
        if (system, code) == (d["system"], d["code"]) or (
                system == _SNOMED and code in sense.snomed):
            return "code"
        if system in _ICD and code.replace(".", "").upper().startswith(sense.icd or ("\0",)):
            return "code"
        if isinstance(coding.get("display"), str):
            texts.append(coding["display"])
    words = _condition_text_words()
    for text in texts:
        said = _words(text)
        if any(n in said for n in sense.names) and not (set(said.split()) & words):
            return "words"
    return None


def condition_label(c: dict[str, Any]) -> str:
    """A Condition as a person knows it: its text, else a display, else its code (the
    matcher's messages and the trial-matching answers name it so)."""
    cc = c.get("code") if isinstance(c.get("code"), dict) else {}
    codings = [x for x in cc.get("coding") or () if isinstance(x, dict)]
    return next((s.strip() for s in (cc.get("text"), *(x.get("display") for x in codings))
                 if isinstance(s, str) and s.strip()),
                next((f"{x.get('system', '')}|{x['code']}" for x in codings
                      if isinstance(x.get("code"), str)), "(uncoded condition)"))


@cache
def _condition_text_words() -> frozenset[str]:
    """Words that make a name in a Condition's text no record of the condition ("family
    history of cancer", "hepatitis B vaccination", "suspected HIV")."""
    cw = tables().condition_words
    return frozenset(w for k in ("not_the_condition", "suspicion", "modifies") for w in cw[k])


def _eval_condition(d: dict[str, Any], p: Patient, as_of: date | None) -> Result:
    sense = _sense(d)
    name = condition_name(d)
    how = [(c, _records(c, d, sense)) for c in p.conditions]
    conds = [c for c, h in how if h == "code" and not _tentative(c)]
    # a diagnosis recorded as provisional, differential or unconfirmed is no diagnosis to
    # decide on, either way: a person confirms it, as one named only in words
    named = [c for c, h in how if h == "words" or (h == "code" and _tentative(c))]
    if not conds and not named:
        return Result(NOT_MET, f"no Condition coded {name} (problem list taken as "
                      "complete)")
    if not conds:
        # the words are the patient's record's own, the code one this check cannot place
        # under the condition's: a person confirms (not met would clear them unread)
        if _tentative(named[0]):
            return Result(UNKNOWN, f"{name} recorded as "
                          f"{' / '.join(sorted(_tentative(named[0])))}: for a person to confirm",
                          [_ref(c) for c in named])
        return Result(UNKNOWN, f"{condition_label(named[0])!r} recorded: its words name "
                      f"{name}, its code is none this check knows for it: for a person "
                      "to confirm", [_ref(c) for c in named])
    window = d.get("window")
    undecided = []
    for c in conds:
        inside = _present_within(c, window, as_of, sense.event)
        if inside:
            why = "recorded" if not window else "recorded, current" if \
                window["comparator"] == "now" else f"recorded {window_text(window)}" + (
                    " or active" if window["comparator"] == "<=" else "")
            return Result(MET, f"{name} {why}", [_ref(c)])
        if inside is None:
            undecided.append(c)
    if undecided:
        begun = [c for c in undecided if _within(_cond_days(c)[1], window, as_of) is False]
        return Result(UNKNOWN, f"{name} recorded without a date" if all(
            _cond_date(c) is None for c in undecided) else f"{name} recorded, begun before "
            f"the window, with no date it ended: whether it was present "
            f"{window_text(window)} is for a person to confirm" if begun else f"{name} "
            f"recorded on a date that does not say whether it is {window_text(window)}",
            [_ref(c) for c in undecided])
    if named:
        return Result(UNKNOWN, f"{name} recorded, not {window_text(window)}; "
                      f"{condition_label(named[0])!r} also recorded (in words, or not "
                      "confirmed): for a person to confirm",
                      [_ref(c) for c in (*conds, *named)])
    return Result(NOT_MET, f"{name} recorded, not {window_text(window)}"
                  if window is not None else "", [_ref(c) for c in conds])


def _unit_of(q: dict[str, Any]) -> str | None:
    unit = q.get("code") or q.get("unit")
    return unit if isinstance(unit, str) else None


def _obs_value(o: dict[str, Any]) -> tuple[float, str | None] | None:
    q = o.get("valueQuantity")
    if isinstance(q, dict) and (v := finite_number(q.get("value"))) is not None:
        return v, _unit_of(q)
    if (v := finite_number(o.get("valueInteger"))) is not None:
        return v, None
    return None


def _with_components(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Observations, and each component of a panel (a blood pressure Observation holds the
    systolic and diastolic values as components) as an Observation of its own, with the
    panel's id, date and reference range where it has none."""
    out = []
    for o in observations:
        out.append(o)
        for comp in o.get("component") or []:
            if isinstance(comp, dict) and isinstance(comp.get("code"), dict):
                out.append({k: v for k, v in o.items() if k not in ("code", "component")
                            and not k.startswith("value") and k != "referenceRange"} | comp)
    return out


def _class_of(lab: Lab, cc: Any) -> int | None:
    """The class a CodeableConcept holds one of the codes of (NYHA, ASA), or None."""
    codes = _codes(cc)
    return next((n for n, coding in lab.classes
                 if (coding["system"], coding["code"]) in codes), None)


def _class_records(lab: Lab, p: Patient) -> list[tuple[int, date | None, dict[str, Any]]]:
    """(class, date, resource) for every record of the patient's class on a class scale: an
    Observation of the scale whose value is a class's code or number, an Observation (of any
    code) whose coded value or own code is a class's concept, or a Condition coded with one
    (not when its clinical status says it no longer holds)."""
    out: list[tuple[int, date | None, dict[str, Any]]] = []
    numbers = {n for n, _ in lab.classes}
    for o in _with_components(p.observations):
        of_scale = any((s == "http://loinc.org" and c in lab.all_codes())
                       or (s, c) == (lab.code["system"], lab.code["code"])
                       for s, c in _codes(o.get("code")))
        n = _class_of(lab, o.get("valueCodeableConcept"))
        if n is None:
            n = _class_of(lab, o.get("code"))
        if n is None and of_scale and (v := _obs_value(o)) is not None:
            # the class as its number, on the scale's own unit (none, {score}, 1)
            number = v[0] if v[1] is None else lab.to_canonical(v[0], v[1])
            if number is not None and number.is_integer() and int(number) in numbers:
                n = int(number)
        if n is not None:
            out.append((n, _obs_date(o), o))
    for c in p.conditions:
        n = _class_of(lab, c.get("code"))
        if n is not None and _clinical_active(c) is not False:
            out.append((n, _cond_date(c), c))
    return out


def _eval_class(lab: Lab, d: dict[str, Any], p: Patient, as_of: date | None) -> Result:
    """A bound on a class scale: the patient's latest class is one the bound allows."""
    records = _class_records(lab, p)
    if not records:
        return Result(UNKNOWN, f"no {lab.display} recorded")
    window = d.get("window")
    if window is not None and window["comparator"] == "ever":
        # "history of NYHA class III or IV": any record up to the evaluation date
        records.sort(key=lambda x: (x[1] or date.min, x[2].get("id", "")))
        past = [x for x in records if (x[1] or date.min) <= (as_of or date.max)]
        met = [x for x in past if _in_bounds(float(x[0]), d)]
        if met:
            n, _, r = met[-1]
            return Result(MET, f"{class_text(lab, n)} (at any time)", [_ref(r)])
        if not past:
            return Result(UNKNOWN, f"no {lab.display} recorded up to the evaluation date")
        return Result(NOT_MET, f"none of {len(past)} {lab.display} record(s) at any time",
                      [_ref(r) for _, _, r in past])
    n, when, r = max(records, key=lambda x: (x[1] or date.min, x[2].get("id", "")))
    inside = _within(when, window, as_of)
    if not inside:
        why = ("has no date" if inside is None or window is None
               else f"is not {window_text(window)}")
        return Result(UNKNOWN, f"latest {lab.display} record {why}", [_ref(r)])
    return Result(MET if _in_bounds(float(n), d) else NOT_MET, class_text(lab, n), [_ref(r)])


def _lab_observations(lab: Lab, relative: str | None) -> tuple[set[str], bool]:
    """(codes to look for, whether the value must be in %)."""
    if relative == "predicted":
        return set(lab.percent_predicted_codes) | lab.all_codes(), True
    return lab.all_codes(), False


def _eval_lab(d: dict[str, Any], p: Patient, as_of: date | None) -> Result:
    lab = tables().lab(d["test"])
    relative = d.get("relative")
    if lab.classes and not relative:
        return _eval_class(lab, d, p, as_of)
    codes, want_pct = _lab_observations(lab, relative)
    cands = []
    for o in _with_components(p.observations):
        obs_codes = {c for s, c in _codes(o.get("code")) if s == "http://loinc.org"}
        if lab.code["system"] != "http://loinc.org":
            obs_codes |= {c for s, c in _codes(o.get("code")) if s == lab.code["system"]}
        if not obs_codes & codes:
            continue
        v = _obs_value(o)
        if v is None:
            continue
        is_pct = (v[1] or "") == "%" or bool(obs_codes & set(lab.percent_predicted_codes))
        if want_pct != is_pct and lab.unit != "%":
            continue
        cands.append(o)
    if not cands:
        return Result(UNKNOWN, f"no {lab.display} result"
                      + (" (% predicted)" if want_pct else ""))
    cands.sort(key=lambda o: (_obs_date(o) or date.min, o.get("id", "")))
    window = d.get("window")
    if window is not None and window["comparator"] == "ever":
        # "history of QTc > 480 ms": met by any result up to the evaluation date, not met
        # when every result is judged and none meets it
        dated = [o for o in cands if (_obs_date(o) or date.min) <= (as_of or date.max)]
        results = [_lab_result(lab, d, o, relative) for o in dated]
        met = [r for r in results if r.result == MET]
        if met:
            return Result(MET, f"{met[-1].reason} (at any time)", met[-1].evidence)
        unknown = [r for r in results if r.result == UNKNOWN]
        if unknown or not results:
            return unknown[-1] if unknown else Result(
                UNKNOWN, f"no {lab.display} result up to the evaluation date")
        return Result(NOT_MET, f"none of {len(results)} {lab.display} result(s) at any time",
                      [e for r in results for e in r.evidence])
    if d.get("held") and window is None:
        return _held(lab, d, cands, relative, as_of)
    o = cands[-1]
    inside = _within(_obs_date(o), window, as_of)
    if not inside:
        why = ("has no date" if inside is None or window is None
               else f"is not {window_text(window)}")
        return Result(UNKNOWN, f"latest {lab.display} result {why}", [_ref(o)])
    return _lab_result(lab, d, o, relative)


def _held(lab: Lab, d: dict[str, Any], cands: list[dict[str, Any]], relative: str | None,
          as_of: date | None) -> Result:
    """A bound that must have held for a time ("HIV-1 RNA < 50 copies/mL for ≥ 6 months"):
    not met when the latest result, or any since the period began, fails it; met when every
    result since then meets it and so did the last one before the period (the value was in
    bound when the period began and stayed there); otherwise unknown — one result, however
    recent, does not show how long the value has been there."""
    held = d["held"]
    dated = [(dt, o) for o in cands if (dt := _obs_date(o)) is not None and
             (as_of is None or dt <= as_of)]
    if not dated or as_of is None:
        return Result(UNKNOWN, f"no dated {lab.display} result up to the evaluation date",
                      [_ref(o) for o in cands[-1:]])
    latest = _lab_result(lab, d, dated[-1][1], relative)
    if latest.result != MET:
        return latest
    start = as_of - timedelta(days=held["value"] * DAYS[held["unit"]])
    during = [(dt, _lab_result(lab, d, o, relative)) for dt, o in dated if dt > start]
    failed = [(dt, r) for dt, r in during if r.result == NOT_MET]
    if failed:
        dt, r = failed[-1]
        return Result(NOT_MET, f"{r.reason} on {dt.isoformat()}, not {held_text(held)}",
                      r.evidence)
    before = [(dt, o) for dt, o in dated if dt <= start]
    first = _lab_result(lab, d, before[-1][1], relative) if before else None
    evidence = ([] if first is None else first.evidence) + [e for _, r in during
                                                            for e in r.evidence]
    if first is None or first.result != MET or any(r.result != MET for _, r in during):
        return Result(UNKNOWN, f"{latest.reason}; the results do not show it {held_text(held)}",
                      evidence)
    return Result(MET, f"{latest.reason}, in bound since {before[-1][0].isoformat()} or "
                  f"earlier ({held_text(held)})", evidence)


def _lab_result(lab: Lab, d: dict[str, Any], o: dict[str, Any], relative: str | None
                ) -> Result:
    """The answer for one lab bound on one Observation (its code and value already
    checked)."""
    value, unit = _obs_value(o)  # type: ignore[misc]
    if relative in ("ULN", "LLN"):
        ref = next((r for r in o.get("referenceRange") or []
                    if isinstance(r, dict) and isinstance(r.get("high" if relative == "ULN"
                                                                  else "low"), dict)), None)
        if ref is None:
            return Result(UNKNOWN, f"{lab.display} result has no referenceRange "
                          f"{'high' if relative == 'ULN' else 'low'} ({relative})", [_ref(o)])
        limit_q = ref["high" if relative == "ULN" else "low"]
        limit = finite_number(limit_q.get("value"))
        if limit is None:
            return Result(UNKNOWN, f"{lab.display} result's referenceRange "
                          f"{'high' if relative == 'ULN' else 'low'} has no number", [_ref(o)])
        lim_unit = _unit_of(limit_q) or unit
        v_c = lab.to_canonical(value, unit) if unit else value
        l_c = lab.to_canonical(limit, lim_unit) if lim_unit else limit
        if v_c is None or l_c is None or not l_c:
            return Result(UNKNOWN, f"{lab.display} units not comparable", [_ref(o)])
        ratio = v_c / l_c
        return _judged(ratio, d, o, f"{lab.display} {_shown(o, value)} {unit or ''} = "
                       f"{ratio:.2f} × {relative}".replace("  ", " "), [_ref(o)])
    if relative == "predicted":
        return _judged(value, d, o, f"{lab.display} {_shown(o, value)} % of predicted",
                       [_ref(o)])
    v_c = lab.to_canonical(value, unit) if unit else (value if not lab.requires_unit else None)
    f_unit = d.get("unit")
    lo = lab.to_canonical(d["low"], f_unit) if d.get("low") is not None and f_unit else d.get(
        "low")
    hi = lab.to_canonical(d["high"], f_unit) if d.get("high") is not None and f_unit else d.get(
        "high")
    if v_c is None or (d.get("low") is not None and lo is None) or (
            d.get("high") is not None and hi is None):
        return Result(UNKNOWN, f"{lab.display} unit {unit!r} is not one the lab table converts",
                      [_ref(o)])
    return _judged(v_c, d, o, f"{lab.display} {_shown(o, value)} {unit or ''}".rstrip(),
                   [_ref(o)], lo, hi)


def _shown(o: dict[str, Any], value: float) -> str:
    """A result's value as reported ("> 60" where it was reported as beyond 60)."""
    q = o.get("valueQuantity")
    comparator = q.get("comparator") if isinstance(q, dict) else None
    comparator = comparator if isinstance(comparator, str) else None
    return f"{comparator} {value:g}" if comparator in _CENSORED else f"{value:g}"


def evaluate_fact(fact: Fact, patient: Patient, as_of: date | None,
                  exclude: bool = False) -> Result | None:
    """The answer for one fact, or None for facts that are not evaluable on their own. A
    negated fact ("no evidence of QTc > 480 ms") is met when the bound is not, and the
    reverse; unknown stays unknown. ``exclude``: the fact is an exclusion criterion's (see
    :func:`_evaluate_fact` for what that changes)."""
    if fact.data.get("negated"):
        inner = evaluate_fact(Fact(fact.kind, {k: v for k, v in fact.data.items()
                                               if k != "negated"}), patient, as_of, exclude)
        if inner is None or inner.result == UNKNOWN:
            return inner
        flipped = NOT_MET if inner.result == MET else MET
        return Result(flipped, f"not: {inner.reason}", inner.evidence, inner.confirm)
    if fact.data.get("also"):
        # "aged ≥ 18 years with histologically confirmed NSCLC": the line's other requirement
        # in words is a criterion in words — named for a person to confirm, the answer the
        # age's
        inner = evaluate_fact(Fact(fact.kind, {k: v for k, v in fact.data.items()
                                               if k != "also"}), patient, as_of, exclude)
        if inner is None or inner.result != MET:
            return inner
        return Result(MET, f"{inner.reason}; {' and '.join(fact.data['also'])}: text only, "
                           "for a person to confirm", inner.evidence, list(fact.data["also"]))
    if fact.data.get("unless") or fact.data.get("with"):
        # "hemoglobin < 8 g/dL requiring transfusion", "albumin < 2.5 g/dL unless due to
        # nephrotic syndrome": the bound not met says no; met, it holds only with (or
        # without) the words, which are for review
        inner = _evaluate_fact(Fact(fact.kind, {k: v for k, v in fact.data.items()
                                                if k not in ("unless", "with")}), patient, as_of,
                               exclude)
        if inner is None or inner.result != MET:
            return inner
        words = [*(fact.data.get("with") or ()),
                 *(f"not {w}" for w in fact.data.get("unless") or ())]
        return Result(UNKNOWN, f"{inner.reason}; and {' and '.join(words)}: text only",
                      inner.evidence)
    return _evaluate_fact(fact, patient, as_of, exclude)


def _evaluate_fact(fact: Fact, patient: Patient, as_of: date | None,
                   exclude: bool = False) -> Result | None:
    """The answer for one fact (not negated), or None for facts that are not evaluable on
    their own.

    A bound with alternatives ("< 30 or > 69 years") is met when the bound or an either/or
    alternative is met. A conditional alternative ("≤ 2.5 × ULN, or ≤ 5 × ULN with liver
    metastases"; "> 3 × ULN (> 5 × ULN with liver metastases)" in an exclusion) replaces the
    bound when its condition holds; the condition is text only, so where the two answers
    differ the answer is *unknown* — met only if the condition holds, or not met if it does.
    A way in stated in words ("age > 40 or postmenopausal") is unknown: the criterion is met
    when the bound is, and left to review when it is not. In an exclusion (``exclude``) such
    words ("Known HIV, hepatitis B or hepatitis C infection" with no code for the last) are
    another reason to exclude that no data decides: like a criterion in words they are for
    a person to confirm and do not change the answer, which names them."""
    alts = fact.data.get("alternatives")
    if alts:
        base = {k: v for k, v in fact.data.items() if k != "alternatives"}
        first = _for_sex(Fact(fact.kind, base), patient, as_of)
        if first is None:
            return None
        results, conditional, to_confirm = [first], [], []
        for alt in alts:
            if "text" in alt and exclude:
                to_confirm.append(alt["text"])
                continue
            if "text" in alt:  # a way in stated in words: not computable, for review
                results.append(Result(UNKNOWN, f"or {alt['text']}: text only"))
                continue
            data = dict(base, **{k: v for k, v in alt.items() if k != "condition"})
            data["sex"] = alt.get("sex")
            r = _for_sex(Fact(fact.kind, data), patient, as_of)
            if r is None:
                return None
            if alt.get("condition"):
                conditional.append((alt["condition"], r))
            else:
                results.append(r)
        answer = combine([r.result for r in results], "any-of")
        chosen = next((r for r in results if r.result == answer), first)
        out = Result(answer, chosen.reason, chosen.evidence)
        for cond, r in conditional:
            if r.result == out.result or out.result == UNKNOWN:
                continue
            if r.result == MET:
                out = Result(UNKNOWN, f"{r.reason}; met only if {cond}", r.evidence)
            elif out.result == MET and r.result == NOT_MET:
                out = Result(UNKNOWN, f"{out.reason}; not met if {cond}", out.evidence)
            else:
                out = Result(UNKNOWN, r.reason, r.evidence)
        if to_confirm and out.result != MET:
            out = Result(out.result, f"{out.reason}; or {' or '.join(to_confirm)}: text only, "
                                     "for a person to confirm", out.evidence, to_confirm)
        return out
    return _evaluate_bound(fact, patient, as_of, exclude)


def _for_sex(fact: Fact, patient: Patient, as_of: date | None) -> Result | None:
    """A bound that holds for one sex only ("< 11 g/dL in women"): not met for the other sex,
    unknown when the patient's sex is."""
    r = _evaluate_bound(fact, patient, as_of)
    sex = fact.data.get("sex")
    if not sex or r is None:
        return r
    s = _eval_sex({"sex": sex}, patient)
    if s.result == NOT_MET:
        return Result(NOT_MET, f"{s.reason}: the bound for {sex} patients does not apply")
    return Result(combine([s.result, r.result], "all-of"), r.reason, r.evidence)


def _evaluate_bound(fact: Fact, patient: Patient, as_of: date | None,
                    exclude: bool = False) -> Result | None:
    if fact.kind == "age":
        return _eval_age(fact.data, patient, as_of)
    if fact.kind == "sex":
        return _eval_sex(fact.data, patient)
    if fact.kind in ("pregnancy", "lactation"):
        return _eval_state(fact.kind, fact.data, patient)
    if fact.kind == "lab":
        return _eval_lab(fact.data, patient, as_of)
    if fact.kind == "condition":
        return _eval_condition(fact.data, patient, as_of)
    if fact.kind == "healthy-volunteers":
        return Result(UNKNOWN, "whether the patient is a healthy volunteer is for a reviewer")
    if fact.kind in (GROUP, EITHER):
        # all-of: every fact of the group must hold — the first that fails (or cannot be
        # known) is why; any-of: one must — the first met is why, else every one's reason
        results = [r for m in fact.data["facts"]
                   if (r := evaluate_fact(m, patient, as_of, exclude))]
        if not results:
            return None
        answer = combine([r.result for r in results], fact.kind)
        chosen = [r for r in results if r.result == answer]
        joined = (answer == MET) == (fact.kind == GROUP)
        reason = "; ".join(r.reason for r in chosen) if joined else chosen[0].reason
        return Result(answer, reason, [e for r in chosen for e in r.evidence],
                      [w for r in chosen for w in r.confirm])
    if fact.kind == MEASUREMENT:
        # the name is not coded, so no Observation can be found for it
        return Result(UNKNOWN, f"{measurement_name(fact.data['name'])} is not a coded "
                               "measurement: a reviewer compares the patient's value")
    return None


def combine(results: list[str], code: str, threshold: int | None = None) -> str:
    """all-of / any-of / at-least ``threshold`` over met / not-met / unknown (three-valued)."""
    if code == AT_LEAST:
        met, open_ = results.count(MET), results.count(UNKNOWN)
        if met >= threshold:
            return MET
        return NOT_MET if met + open_ < threshold else UNKNOWN
    if code == "any-of":
        if MET in results:
            return MET
        return NOT_MET if all(r == NOT_MET for r in results) else UNKNOWN
    if NOT_MET in results:
        return NOT_MET
    return MET if all(r == MET for r in results) else UNKNOWN


# --- criteria ------------------------------------------------------------------------------

def registry_criteria(elig: Eligibility) -> list[Criterion]:
    """Criteria for the registry's structured fields (minimum/maximum age, sex)."""
    out = []
    for label, value, key in (("Minimum age", elig.minimum_age, "low"),
                              ("Maximum age", elig.maximum_age, "high")):
        if not value:
            continue
        parts = value.split()
        unit = {"year": "a", "month": "mo", "week": "wk", "day": "d"}.get(
            parts[-1].lower().rstrip("s")) if len(parts) == 2 else None
        try:
            n = float(parts[0])
        except (ValueError, IndexError):
            continue
        if unit is None:
            continue
        n = int(n) if n.is_integer() else n
        data = {"low": None, "high": None, "low_inclusive": True, "high_inclusive": True,
                key: n, "unit": unit}
        out.append(Criterion(f"{label}: {value}", False, "Registry", facts=[Fact("age", data)]))
    if elig.sex in ("FEMALE", "MALE"):
        out.append(Criterion(f"Sex: {elig.sex}", False, "Registry",
                             facts=[Fact("sex", {"sex": elig.sex.lower()})]))
    return out


def _evaluate_criterion(c: Criterion, p: Patient, as_of: date | None) -> dict[str, Any]:
    fact_rows = []
    results = []
    for f in c.facts:
        r = evaluate_fact(f, p, as_of, c.exclude)
        if r is None:
            continue
        fact_rows.append({"description": fact_text(f), **_row(r)})
        results.append(r.result)
    kids = [_evaluate_criterion(k, p, as_of) for k in c.children]
    kid_results = [k["result"] for k in kids if k["computable"]]
    computable = bool(results or kid_results)
    if kids:
        code, side = children_combination(c), "any-of" if c.exclude else "all-of"
        if code == side or not kid_results:
            # the side's own way: an item in words is left to the reviewer, as a criterion
            # in words is (it cannot turn a not-met inclusion into met, nor the reverse)
            result = combine(results + kid_results, side)
        else:
            # "aged < 18 who meet one of the following", "at least 2 of the following": an
            # item in words may be the one that counts, so it counts as unknown here
            nested = [k["result"] if k["computable"] else UNKNOWN for k in kids]
            result = combine([*results, combine(nested, code, at_least(c.text))], side)
    elif results:
        result = combine(results, c.combination)
    else:
        result = UNKNOWN
    return {"text": c.text, "exclude": c.exclude, "result": result, "computable": computable,
            "facts": fact_rows, "children": kids}


def _row(r: Result) -> dict[str, Any]:
    return {"result": r.result, "reason": r.reason, "evidence": r.evidence,
            "confirm": r.confirm}


def _verdict(rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    against, undecided = [], []
    for row in rows:
        if not row["computable"]:
            continue
        if (row["exclude"] and row["result"] == MET) or (
                not row["exclude"] and row["result"] == NOT_MET):
            against.append(row["text"])
        elif row["result"] == UNKNOWN:
            undecided.append(row["text"])
    if against:
        return "not-eligible", against
    if undecided:
        return "needs-review", undecided
    return "eligible", []


def _criteria_of(study_or_criteria: Any) -> tuple[str | None, list[Criterion]]:
    if isinstance(study_or_criteria, Study):
        s = study_or_criteria
        return s.nct_id, registry_criteria(s.eligibility) + structure(
            _parse(s.eligibility.criteria))
    if isinstance(study_or_criteria, str):
        return None, structure(_parse(study_or_criteria))
    if isinstance(study_or_criteria, dict) and study_or_criteria.get(
            "resourceType") == "EvidenceVariable":
        return study_or_criteria.get("id"), from_evidence_variable(study_or_criteria)
    if isinstance(study_or_criteria, list):
        return None, study_or_criteria
    raise TypeError("evaluate() takes a Study, eligibility text, criteria or an "
                    "EvidenceVariable")


def _parse(text: str | None) -> list[Criterion]:
    from .criteria import parse_criteria

    return parse_criteria(text)


def from_evidence_variable(ev: dict[str, Any]) -> list[Criterion]:
    """Criteria back from an R5 eligibility EvidenceVariable: each characteristic's
    description (the registry's criterion, verbatim) is read again; nested criteria are the
    combination members that are not one of its facts (``linkId`` ``fact-…``)."""

    def crit(ch: dict[str, Any], exclude: bool) -> Criterion:
        c = Criterion(ch.get("description") or "", exclude)
        if ch.get("linkId") in (PARTICIPANT_GROUP, EITHER_OR):
            c.link_id = ch["linkId"]  # (a holder the reader added: it reads the same)
        c.children = [crit(m, exclude) for m in nested_criteria(ch)]
        return c

    out = [crit(ch, bool(ch.get("exclude", False)))
           for ch in ev.get("characteristic") or [] if isinstance(ch, dict)]
    return structure(out)


def evaluate(study_or_criteria: Any, patient_bundle: dict[str, Any], *,
             as_of: date | str | None = None) -> dict[str, Any]:
    """Pre-screen one patient: a FHIR Parameters resource with the verdict and, per
    criterion, met / not-met / unknown with the evidence used."""
    study_id, criteria = _criteria_of(study_or_criteria)
    patient = read_patient(patient_bundle)
    when = _date(as_of) if isinstance(as_of, str) else as_of
    if isinstance(as_of, str) and when is None:
        raise SourceError(f"as-of date {as_of!r} is not a date (YYYY-MM-DD)")
    when = when or default_as_of(patient)
    rows = [_evaluate_criterion(c, patient, when) for c in criteria]
    verdict, because = _verdict(rows)
    params: list[dict[str, Any]] = [{"name": "verdict", "valueCode": verdict}]
    if study_id:
        params.append({"name": "study", "valueString": study_id})
    if patient.ref:
        params.append({"name": "patient", "valueReference": {"reference": patient.ref}})
    if when:
        params.append({"name": "asOf", "valueDate": when.isoformat()})
    params += [{"name": "decidedBy", "valueString": t} for t in because]
    params += [{"name": "criterion", "part": _criterion_parts(r)} for r in rows]
    return {"resourceType": "Parameters", "parameter": params}


def _criterion_parts(row: dict[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [
        {"name": "text", "valueString": row["text"]},
        {"name": "exclude", "valueBoolean": row["exclude"]},
        {"name": "result", "valueCode": row["result"]},
        {"name": "computable", "valueBoolean": row["computable"]},
    ]
    for f in row["facts"]:
        fp: list[dict[str, Any]] = [{"name": "description", "valueString": f["description"]},
                                    {"name": "result", "valueCode": f["result"]}]
        if f["reason"]:
            fp.append({"name": "reason", "valueString": f["reason"]})
        fp += [{"name": "evidence", "valueReference": {"reference": e}} for e in f["evidence"]]
        fp += [{"name": "toConfirm", "valueString": w} for w in f.get("confirm") or ()]
        parts.append({"name": "fact", "part": fp})
    parts += [{"name": "criterion", "part": _criterion_parts(k)} for k in row["children"]]
    return parts
