"""Structured meaning (facts) read from one criterion's text, only where the text states it.

The rule throughout: a wrong structure is worse than none. Every reader below matches a narrow
phrasing and gives up (leaves the criterion text-only) on anything it does not account for.

Fact kinds and their ``data`` fields:

``age``
    ``low``/``high`` (number or None), ``low_inclusive``/``high_inclusive`` (bool), ``unit``
    (UCUM: ``a``, ``mo``, ``wk``, ``d``). "aged 18-75" → low 18, high 75, both inclusive.
``sex``
    ``sex``: ``female`` or ``male`` — only when the criterion restricts to one sex.
``healthy-volunteers``
    ``value``: True — the criterion asks for healthy volunteers.
``pregnancy`` / ``lactation``
    ``value``: True when the criterion names the state ("Pregnant or lactating women"),
    False when it names its absence ("non-pregnant").
``lab``
    ``test`` (key of the lab table), ``low``/``high``, ``low_inclusive``/``high_inclusive``,
    ``unit`` (UCUM of the bound as written, or None), ``relative``: None, ``ULN``, ``LLN``
    (bounds are multiples of the upper/lower limit of normal) or ``predicted`` (bounds are %
    of the predicted value). ``window`` (optional): the time-window data of the same clause.
``time-window``
    ``comparator`` (``<=`` "within the previous 3 months", ``>=`` "at least 4 weeks before"),
    ``value``, ``unit`` (UCUM ``h``, ``d``, ``wk``, ``mo``, ``a``): how long before the
    screening/enrolment event the thing named happened.
``condition``
    ``key`` (condition table key), ``system``, ``code``, ``display``, ``text`` (the words it
    was read from), ``window`` (optional, as for labs), ``exceptions`` (the text after
    "excluding"/"except", or None).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from .criteria import Criterion, Fact
from .tables import Lab, norm_unit, tables

# --- text normalisation --------------------------------------------------------------------

_FULLWIDTH: dict[int, int | str] = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_FULLWIDTH.update({ord("≦"): "≤", ord("≧"): "≥", ord("⩽"): "≤", ord("⩾"): "≥", ord("–"): "-",
                   ord("—"): "-", ord("−"): "-", ord("\u3000"): " ", ord("≒"): "~",
                   ord("，"): ",", ord("；"): ";", ord("："): ":", ord("（"): "(", ord("）"): ")"})


def normalise(text: str) -> str:
    """Full-width forms to ASCII, dashes to '-', spaced comparators joined, lower case."""
    s = text.translate(_FULLWIDTH).lower()
    s = re.sub(r">\s*/\s*=|>\s*=|=\s*>|≥\s*=", "≥", s)
    s = re.sub(r"<\s*/\s*=|<\s*=|=\s*<|≤\s*=", "≤", s)
    return re.sub(r"\s+", " ", s)


_NUMWORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
             "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+,\d{1,2}(?![\d%])|\d+(?:\.\d+)?"
_NUMW = rf"(?:{_NUM}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
_TIME_UNITS = {"hour": "h", "hours": "h", "hr": "h", "hrs": "h", "h": "h", "day": "d", "days": "d",
               "week": "wk", "weeks": "wk", "wk": "wk", "wks": "wk", "month": "mo", "months": "mo",
               "mo": "mo", "year": "a", "years": "a", "yr": "a", "yrs": "a"}
_TUNIT = r"(?:hours?|hrs?|days?|weeks?|wks?|months?|years?|yrs?)"
_AGE_UNITS = {"year": "a", "years": "a", "yr": "a", "yrs": "a", "y": "a", "month": "mo",
              "months": "mo", "week": "wk", "weeks": "wk", "day": "d", "days": "d", "岁": "a"}
_AUNIT = r"(?:years?|yrs?|y|months?|weeks?|days?|岁)"


def _num(s: str) -> float:  # an int when whole, so 18 prints as 18
    s = s.strip()
    if s in _NUMWORDS:
        return float(_NUMWORDS[s])
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    elif "," in s:  # a decimal comma: "9,0 g/dl"
        s = s.replace(",", ".")
    v = float(s)
    return int(v) if v.is_integer() else v  # type: ignore[return-value]


# comparator phrases → (sense, inclusive); longest first so "less than or equal" wins
_CMP_WORDS: list[tuple[str, str]] = [
    (r"less than or equal to|lower than or equal to|smaller than or equal to|≤|no more than|"
     r"not more than|no greater than|not greater than|not higher than|no higher than|"
     r"not exceeding|not to exceed|not exceed|up to|at most|maximum of|max\.?", "<="),
    (r"greater than or equal to|more than or equal to|higher than or equal to|≥|at least|"
     r"no less than|not less than|not lower than|no lower than|minimum of|min\.?", ">="),
    (r"less than|lower than|below|under|<", "<"),
    (r"greater than|more than|higher than|above|exceeding|over|>", ">"),
]
_CMP = "|".join(f"(?:{p})" for p, _ in _CMP_WORDS)


def _cmp_sense(word: str) -> str:
    for pat, sense in _CMP_WORDS:
        if re.fullmatch(pat, word.strip()):
            return sense
    raise ValueError(word)


def _bounds(sense: str, value: float) -> dict[str, Any]:
    if sense in ("<=", "<"):
        return {"low": None, "high": value, "low_inclusive": True, "high_inclusive": sense == "<="}
    return {"low": value, "high": None, "low_inclusive": sense == ">=", "high_inclusive": True}


# --- time windows --------------------------------------------------------------------------

_STUDY_EVENT = (r"(?:(?:the )?screening|enrol(?:l)?ment|randomi[sz]ation|study entry|registration|"
                r"(?:the )?first dose|(?:cycle 1,? )?day 1|c1d1|baseline|"
                r"(?:signing )?(?:the )?informed consent|study start|inclusion|the study|starting|"
                r"(?:the )?start of (?:the )?study|(?:the )?first administration|"
                r"(?:the )?initiation of)")
# "before the diagnosis" / "after surgery": a window around some other event is not a look-back
# from screening
_OTHER_EVENT = re.compile(r"^\s*(?:and|or) after|^\s*(?:of|from|before|prior to|after) (?:the )?"
                          r"(?:diagnosis|onset|initial|surgery|transplant|death|symptom|viral|"
                          r"the end|ending|completion)")
_FUTURE = re.compile(r"\b(?:anticipat|expected|expect|planned|plan|scheduled|will|during the "
                     r"study|after the last|following the last)")
_WINDOW_PATTERNS = [
    # within the previous 3 months / within the past year / within 2 weeks prior to X
    (re.compile(rf"\bwithin (?:the )?(?:(?:previous|past|last|preceding|prior) )"
                rf"(?P<n>{_NUMW} )?(?P<u>{_TUNIT})\b"), "<="),
    (re.compile(rf"\bwithin (?:the )?(?P<n>{_NUMW}) ?(?P<u>{_TUNIT}) "
                rf"(?:before|prior to|preceding|of|from) {_STUDY_EVENT}"), "<="),
    (re.compile(rf"\bwithin (?:the )?(?P<n>{_NUMW}) ?(?P<u>{_TUNIT})(?: period)? "
                r"(?:before|prior)\b(?! (?:to )?(?:the )?(?:diagnosis|onset|surgery))"), "<="),
    (re.compile(rf"\bin the (?P<n>{_NUMW}) (?P<u>{_TUNIT}) (?:before|prior to|preceding)\b"),
     "<="),
    (re.compile(rf"(?:\bless than|<) ?(?P<n>{_NUMW}) ?(?P<u>{_TUNIT}) (?:before|prior to)\b"),
     "<"),
    (re.compile(rf"(?:≤) ?(?P<n>{_NUMW}) ?(?P<u>{_TUNIT}) (?:before|prior to)\b"), "<="),
    (re.compile(rf"\b(?:in|during|over) the (?:past|last|previous|preceding) "
                rf"(?P<n>{_NUMW} )?(?P<u>{_TUNIT})\b"), "<="),
    (re.compile(rf"\bat least (?P<n>{_NUMW}) ?(?P<u>{_TUNIT}) (?:before|prior to)\b"), ">="),
    # a bare "within 4 weeks" closing a clause looks back from screening, unless the
    # criterion speaks of the future ("anticipated discharge within 72 hours")
    (re.compile(rf"\bwithin (?P<n>{_NUMW}) ?(?P<u>{_TUNIT})(?=\s*(?:$|[.;,)]))"), "bare"),
]


def time_windows(norm: str) -> list[tuple[tuple[int, int], dict]]:
    """(span, data) of every time window the (normalised) text states."""
    out: list[tuple[tuple[int, int], dict]] = []
    taken: list[tuple[int, int]] = []
    for pat, comparator in _WINDOW_PATTERNS:
        for m in pat.finditer(norm):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            if _OTHER_EVENT.match(norm[m.end():]):
                continue
            if comparator == "bare":
                if _FUTURE.search(norm):
                    continue
                comparator = "<="
            n = m.group("n")
            value = _num(n) if n else 1
            out.append((m.span(), {"comparator": comparator, "value": value,
                                   "unit": _TIME_UNITS[m.group("u")]}))
            taken.append(m.span())
    out.sort(key=lambda x: x[0])
    return out


# --- age -----------------------------------------------------------------------------------

_AGE_STOP = re.compile(r"gestation|postmenstrual|bone age|onset|diagnos|\bat birth|"
                       r"weight|cohort|formula|per age|child(?:ren)? (?:of|under)|\bparent|"
                       r"\bmother|caregiver|partner")
_AGE_KW = r"(?:age[ds]?|aged)"
_AGE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # two bounds: "age ≥ 1 years of age and less than 25 years of age"
    (re.compile(rf"(?:\b{_AGE_KW}\s*(?:is|of|:)?\s*)?(?P<c1>{_CMP})\s*(?P<v1>{_NUM})\s*"
                rf"(?P<u1>{_AUNIT})?(?:\s*(?:of age|old))?\s*(?:and|to|,)\s*(?P<c2>{_CMP})\s*"
                rf"(?P<v2>{_NUM})\s*(?P<u>{_AUNIT})(?:\s*(?:of age|old))"), "two"),
    # range with an age word: "aged 18-75", "age between 18 and 65 years", "age from 2 to 70"
    (re.compile(rf"\b{_AGE_KW}\s*(?:is|of|:|was|range:?)?\s*(?:between\s+|from\s+)?"
                rf"(?:the ages of\s+)?"
                rf"(?P<lo>{_NUM})\s*(?P<u1>{_AUNIT})?\s*(?:-|to|and|~|至)\s*(?P<hi>{_NUM})\s*"
                rf"(?P<u>{_AUNIT})?(?:\s*(?:of age|old))?(?P<excl>\s*\(?exclusive)?"), "range"),
    # range without an age word but with "years old"/"years of age"
    (re.compile(rf"(?:between\s+)?(?P<lo>{_NUM})\s*(?P<u1>{_AUNIT})?\s*(?:-|to|and)\s*"
                rf"(?P<hi>{_NUM})\s*(?P<u>{_AUNIT})\s*(?:of age|old|age\b)"), "range"),
    (re.compile(rf"(?P<lo>{_NUM})\s*(?:-|~|至|到)\s*(?P<hi>{_NUM})\s*(?P<u>岁)"), "range"),
    # "age ≥ 18 years", "aged >= 18", "age: > 18"
    (re.compile(rf"\b{_AGE_KW}\s*(?:is|of|:|at screening)?\s*(?P<cmp>{_CMP})\s*"
                rf"(?P<v>{_NUM})\s*(?P<u>{_AUNIT})?"), "cmp"),
    (re.compile(rf"年龄\s*(?P<cmp>≤|≥|<|>)\s*(?P<v>{_NUM})\s*(?P<u>岁)?"), "cmp"),
    # "≥ 18 years of age", "at least 18 years old", "under 19 years old"
    (re.compile(rf"(?P<cmp>{_CMP})\s*(?:the age of\s*)?(?P<v>{_NUM})\s*(?P<u>{_AUNIT})\s*"
                rf"(?:of age|old|\(?inclusive\)?)"), "cmp"),
    # "18 years of age or older", "aged 18 or over", "18 years and above"
    (re.compile(rf"(?:{_AGE_KW}\s*)?(?P<v>{_NUM})\s*(?P<u>{_AUNIT})?\s*(?:of age\s*|old\s*)?"
                r"(?:or|and) (?:older|above|over|greater)"), "ge"),
    # "over the age of 18", "older than 65 years", "younger than 18 years"
    (re.compile(rf"\b(?P<cmpw>older than|younger than|over|above|under|below)\s+(?:the\s+)?"
                rf"age\s+(?:of\s+)?(?P<v>{_NUM})\s*(?P<u>{_AUNIT})?"), "word"),
    (re.compile(rf"\b(?P<cmpw>older than|younger than)\s+(?P<v>{_NUM})\s*(?P<u>{_AUNIT})"),
     "word"),
    # "Age 18+"
    (re.compile(rf"\b{_AGE_KW}\s*(?P<v>{_NUM})\s*\+"), "ge"),
]


def _age_unit(u: str | None, norm: str) -> str | None:
    if u:
        return _AGE_UNITS[u]
    # a bare number is years only when an age word says it is an age
    return "a" if re.search(rf"\b{_AGE_KW}\b|岁|年龄", norm) else None


def age_facts(norm: str) -> list[Fact]:
    """The age range a criterion states (at most one)."""
    if _AGE_STOP.search(norm) or conditional(norm):
        return []
    found: list[Fact] = []
    for pat, form in _AGE_PATTERNS:
        m = pat.search(norm)
        if not m:
            continue
        unit = _age_unit(m.groupdict().get("u"), norm)
        if unit is None:
            continue
        if form == "two":
            u1 = m.group("u1")
            if u1 and _AGE_UNITS[u1] != unit:
                continue
            s1, s2 = _cmp_sense(m.group("c1")), _cmp_sense(m.group("c2"))
            if not (s1.startswith(">") and s2.startswith("<")):
                continue
            lo, hi = _num(m.group("v1")), _num(m.group("v2"))
            if not lo < hi:
                continue
            return [Fact("age", {"low": lo, "high": hi, "low_inclusive": s1 == ">=",
                                 "high_inclusive": s2 == "<=", "unit": unit})]
        if form == "range":
            u1 = m.groupdict().get("u1")
            if u1 and _AGE_UNITS[u1] != unit:
                continue
            lo, hi = _num(m.group("lo")), _num(m.group("hi"))
            if not lo < hi:
                continue
            incl = not m.groupdict().get("excl")
            data: dict[str, Any] = {"low": lo, "high": hi, "low_inclusive": incl,
                                    "high_inclusive": incl}
        elif form == "cmp":
            data = _bounds(_cmp_sense(m.group("cmp")), _num(m.group("v")))
        elif form == "ge":
            data = _bounds(">=", _num(m.group("v")))
        else:
            w = m.group("cmpw")
            data = _bounds(">" if w in ("older than", "over", "above") else "<",
                           _num(m.group("v")))
        data["unit"] = unit
        found.append(Fact("age", data))
        break
    # two separate age statements ("≥ 12 years to < 18 years") are a range only a careful
    # reader assembles; a second one means we did not understand the sentence
    if found and len(re.findall(rf"\b{_AGE_KW}\b|years? (?:of age|old)", norm)) > 2:
        return []
    return found


# --- sex, healthy volunteers, pregnancy, lactation -----------------------------------------

_PEOPLE = (r"(?:patients?|subjects?|participants?|volunteers?|individuals?|adults?|persons?|"
           r"children|people|candidates?)")
_SEX_LEAD = re.compile(rf"^(?:healthy\s+)?(?:adult\s+)?(?P<sex>male|female|men|women|males|females)"
                       rf"(?:\s+{_PEOPLE})?(?:\s+only)?\s*(?:,|$|aged\b|age\b|between\b|"
                       rf"(?:who are\s+)?(?:≥|≤|>|<|\d))")
_SEX_WORDS = {"male": "male", "males": "male", "men": "male", "female": "female",
              "females": "female", "women": "female"}


def sex_facts(norm: str) -> list[Fact]:
    """A one-sex restriction stated at the head of the criterion ("Women aged 40-65")."""
    if norm.rstrip().endswith(":"):  # "Female participants:" heads a list, restricts nothing
        return []
    s = norm.strip(" .;*")
    m = _SEX_LEAD.match(s)
    if not m:
        return []
    if re.search(r"\b(?:or|and|and/or)\s+(?:non-pregnant\s+)?(?:fe)?males?\b|\b(?:men|women)\s+"
                 r"(?:and|or)\b|\bpregnan|childbearing|potential|menopaus|partner", s):
        return []
    return [Fact("sex", {"sex": _SEX_WORDS[m.group("sex")]})]


_HV = re.compile(rf"^(?:be\s+|is\s+|are\s+)?(?:a\s+)?healthy\s+(?:adult\s+)?(?:(?:fe)?male\s+)?"
                 rf"(?:{_PEOPLE})\b")


def healthy_facts(norm: str) -> list[Fact]:
    """'Healthy volunteers' stated as who may take part."""
    s = norm.strip(" .;:*")
    if _HV.match(s) and not re.search(r"\bor\b|\bexcept\b|\bwith\b", s):
        return [Fact("healthy-volunteers", {"value": True})]
    return []


_PREG_WORDS = {"pregnant": ("pregnancy", True), "pregnancy": ("pregnancy", True),
               "non-pregnant": ("pregnancy", False), "nonpregnant": ("pregnancy", False),
               "not pregnant": ("pregnancy", False),
               "lactating": ("lactation", True), "lactation": ("lactation", True),
               "breastfeeding": ("lactation", True), "breast-feeding": ("lactation", True),
               "breast feeding": ("lactation", True), "nursing": ("lactation", True),
               "non-lactating": ("lactation", False), "not breastfeeding": ("lactation", False),
               "not lactating": ("lactation", False), "non-breastfeeding": ("lactation", False),
               "non-nursing": ("lactation", False), "not nursing": ("lactation", False),
               "not breast-feeding": ("lactation", False)}
_PREG_RE = re.compile(r"\b(?:" + "|".join(sorted((re.escape(w) for w in _PREG_WORDS),
                                                   key=len, reverse=True)) + r")\b")
_PREG_FILLER = {"women", "woman", "female", "females", "patients", "patient", "subjects", "subject",
                "participants", "participant", "individuals", "who", "are", "is", "currently",
                "or", "and", "and/or", "the", "a", "mothers", "mother", "state", "status",
                "period", "during", "be", "must", "being", "those", "people", "persons",
                "ladies", "girls", "present", "known", "in", "has", "have", "were", "/", ","}


_PREG_BLOCK_BEFORE = re.compile(r"(?:plan|planning|planned|plans|become|becomes|becoming|get|gets|"
                                r"getting|intend|intending|avoid|prevent|if|risk|unless|partner|"
                                r"partners|confirm|while|during|of|no|not|non|without|a)\W*$")
_PREG_BLOCK_AFTER = re.compile(r"^\W*(?:test|tests|testing|prevention|potential|risk|category|"
                               r"during|after|while|is a)|"
                               r"^\W*(?:(?:or|and)\s+\w+\s+)?(?:(?:women|woman|females?|"
                               r"patients?|subjects?)\W+)?(?:who|that|whose|which)\b")


def pregnancy_facts(norm: str, exclude: bool | None = None) -> list[Fact]:
    """Pregnancy / lactation when the criterion is about nothing else ("Pregnant or lactating
    women", "pregnancy", "Patient is breast feeding") — or, in an exclusion criterion, when it
    names the state plainly among other reasons to exclude ("Pregnancy, lactation, or
    unwillingness to use contraception"), each of which excludes on its own."""
    found = [(m.span(), _PREG_WORDS[m.group(0)]) for m in _PREG_RE.finditer(norm)]
    if not found:
        return []
    rest = norm
    for (a, b), _ in reversed(found):
        rest = rest[:a] + " " + rest[b:]
    words = re.findall(r"[a-z/\-]+|\d+|[^\s\w.;:()]", rest)
    if any(w not in _PREG_FILLER for w in words):
        if not exclude or conditional(norm):
            return []
        found = [((a, b), kv) for (a, b), kv in found if kv[1]
                 and not _PREG_BLOCK_BEFORE.search(norm[max(0, a - 12):a])
                 and not _PREG_BLOCK_AFTER.match(norm[b:])]
    facts: list[Fact] = []
    seen: set[str] = set()
    for _, (kind, value) in found:
        if kind not in seen:
            facts.append(Fact(kind, {"value": value}))
            seen.add(kind)
    return facts


# --- labs ----------------------------------------------------------------------------------

@cache
def _lab_regex() -> tuple[re.Pattern[str], dict[str, Lab]]:
    by_name: dict[str, Lab] = {}
    for lab in tables().labs:
        for n in lab.names:
            by_name.setdefault(n, lab)
    alts = sorted(by_name, key=len, reverse=True)
    pat = re.compile(r"(?<![\w/])(?:" + "|".join(re.escape(a) for a in alts) + r")(?![\w/])")
    return pat, by_name


_ULN = re.compile(r"^\s*(?:[x×*⋅·]|times|fold|folds)?\s*(?:the\s+)?(?:institutional\s+)?"
                  r"(?:(?:as high as|of)\s+(?:the\s+)?)?"
                  r"(?P<ref>uln|"
                  r"upper limits? (?:of )?(?:the )?(?:institutional )?normal(?: range)?|"
                  r"lln|lower limits? (?:of )?(?:the )?normal(?: range)?|upper normal limit|"
                  r"lower normal limit|maximal normal value)")
_PRED = re.compile(r"^\s*(?:%|percent)\s*(?:of\s+)?(?:the\s+)?(?:(?:normal|patient'?s?)\s+)?"
                   r"(?:predicted|predictive|expected|estimated|pred\b|reference|of pred)")
_PCT = re.compile(r"^\s*(?:%|percent)")
_NEXT_WORD = re.compile(r"^\s*([a-zµμ%/²³⁹^*×x0-9.{}\[\]_]+(?:\s*/\s*[a-zµμ0-9²³.^]+)*)")
_GAP_OK = re.compile(r"^[\s:,(]*(?:(?:is|are|was|be|must|should|shall|level|levels|value|values|"
                     r"count|of|the|serum|blood|plasma|concentration|score|status|performance|"
                     r"ps|in|lung|function|tests?|measured|result|results|by|cockcroft-gault|"
                     r"ratio|\(|\)|:|,|-|within|normal|range|absolute|calculated|estimated|"
                     r"corrected|ecog|kps|time|duration|use)\s*)*$")
_SCORE_LIST = re.compile(r"^\s*(?:of\s+|score\s+|status\s+|ps\s+|performance\s+|:\s*)*"
                         r"(?P<a>\d)(?P<rest>(?:\s*(?:,|or|-|to|and)\s*\d)+)(?![\d.%])")
_SCORE_OPEN = re.compile(r"^\s*(?:of\s+|score\s+|status\s+|ps\s+|performance\s+|:\s*)*"
                         r"(?P<a>\d+)\s+or\s+(?P<dir>higher|greater|more|above|lower|less|below)\b")


def _unit_after(lab: Lab, following: str) -> tuple[str | None, bool]:
    """(ucum unit, ok) for the words after a value: ok False when a unit is written but is not
    one the lab table knows (then the bound is not understood)."""
    known = {norm_unit(a): u.ucum for u in lab.units for a in (u.ucum, *u.aliases) if a}
    tokens = following.split()[:5]
    best: str | None = None
    for k in range(1, len(tokens) + 1):
        cand = norm_unit(" ".join(tokens[:k])).rstrip(",.;:)")
        # "1.5 x 10^9/L" and "10^9/L (1500/mm3)": the unit may be cut by a parenthesis
        cand = cand.split("(")[0]
        if cand in known:
            best = known[cand]
    if best:
        return best, True
    m = _NEXT_WORD.match(following)
    word = m.group(1) if m else ""
    if word and (re.match(r"[a-zµμ%/]", word) and word not in ("or", "and", "in", "for", "if",
                                                               "with", "on", "at", "before",
                                                               "after", "of", "is", "are",
                                                               "unless", "except", "when",
                                                               "as", "by", "within")):
        return None, False
    if re.match(r"^\s*[x×*]\s*10", following):
        return None, False
    return None, True


def _value_after(lab: Lab, tail: str) -> dict | None:
    """Bounds stated right after a test name (``tail`` starts after the name)."""
    if lab.kind == "score":
        m = _SCORE_OPEN.match(tail)
        if m:
            up = m.group("dir") in ("higher", "greater", "more", "above")
            return {**_bounds(">=" if up else "<=", int(m.group("a"))), "unit": None,
                    "relative": None}
        m = _SCORE_LIST.match(tail)
        if m:
            nums = [int(m.group("a")), *map(int, re.findall(r"\d", m.group("rest")))]
            first, last = min(nums), max(nums)
            if nums == sorted(nums) and len(set(nums)) == len(nums) and first < last:
                return {"low": first, "high": last, "low_inclusive": True, "high_inclusive": True,
                        "unit": None, "relative": None}
    m = re.search(rf"(?P<cmp>{_CMP})\s*(?P<v>{_NUM})|(?:between\s+|from\s+)?(?P<lo>{_NUM})\s*"
                  rf"(?P<pu>%|percent)?\s*(?:-|to|and)\s*(?P<hi>{_NUM})(?![\d,])|"
                  rf"(?P<cmp2>{_CMP})\s*(?P<uln>uln|lln|upper limit of normal|"
                  r"lower limit of normal|the upper limit of normal)\b", tail)
    if not m or not _GAP_OK.match(tail[:m.start()]):
        return None
    if m.group("cmp2"):
        sense = _cmp_sense(m.group("cmp2"))
        ref = "ULN" if "u" in m.group("uln")[:3] or "upper" in m.group("uln") else "LLN"
        return {**_bounds(sense, 1), "unit": None, "relative": ref}
    if m.group("cmp"):
        if re.match(r"\s*(?:grade|class)\b", tail[m.end():]) or re.search(r"grade\s*$",
                                                                          tail[:m.start()]):
            return None
        data = _bounds(_cmp_sense(m.group("cmp")), _num(m.group("v")))
    else:
        lo, hi = _num(m.group("lo")), _num(m.group("hi"))
        if not lo < hi:
            return None
        data = {"low": lo, "high": hi, "low_inclusive": True, "high_inclusive": True}
    after = tail[m.end():]
    if re.match(r"\s*(?:times|fold|folds|[x×*⋅·])?\s*(?:the\s+)?(?:as high as\s+)?"
                r"(?:uln|lln|upper|lower|institutional|maximal)", after):
        um = _ULN.match(after)
        if not um:
            return None
        ref = um.group("ref")
        data.update(unit=None, relative="LLN" if ref.startswith(("lln", "lower")) else "ULN")
        return data
    if lab.key in ("fev1", "fvc", "dlco") and (_PRED.match(after) or _PCT.match(after)
                                               or m.group("pu")):
        data.update(unit="%", relative="predicted")
        return data
    unit, ok = _unit_after(lab, after)
    if not ok:
        return None
    if unit is None and m.group("pu"):
        unit = "%" if lab.unit_for("%") else None
        if unit is None:
            return None
    if unit is None and lab.requires_unit:
        return None
    data.update(unit=unit or (lab.unit if not lab.requires_unit else None), relative=None)
    if lab.kind == "score" and data["unit"] == "%":
        data["unit"] = lab.unit
    return data


_CONDITIONAL = re.compile(
    r"\bif\b|\bunless\b|\bin case\b|\bmay be (?:enrolled|included|eligible)\b|"
    r"\bare (?:also )?eligible\b|\b(?:is|are) (?:allowed|permitted)\b|"
    r"\bfor (?:patients|participants|subjects|individuals|those|women|men|females|males|"
    r"children|adults|people|persons)\b|"
    r"\bin (?:patients|participants|subjects|those|women|men|children|adults)\b|"
    r"\bfor\s*[<>≤≥]|\bwho are\s*[<>≤≥]")


def conditional(text: str) -> bool:
    """Whether a piece of criterion text makes what it says depend on something else
    ("… if aged ≥ 18", "… in patients with Gilbert's syndrome")."""
    return bool(_CONDITIONAL.search(text))


def _strip_parens(norm: str) -> str:
    # a parenthesis without a number ("(ALT)", "(corrected by Hb)") is a name or a remark,
    # never a bound: blank it (same length, so spans stay valid)
    norm = re.sub(r"\([^()0-9]*\)", lambda m: " " * len(m.group(0)), norm)
    # a parenthesis stating an exception ("(≤ 5 × ULN in patients with liver metastases)")
    # qualifies the bound before it; it is not a bound of its own
    # ("(if aged ≥ 18)" conditions the bound before it instead: kept, so that its clause
    # reads as conditional)
    return re.sub(r"\([^()]*\)", lambda m: " " * len(m.group(0))
                  if conditional(m.group(0)) and not re.match(r"\(\s*(?:if|for|only)\b", m.group(0))
                  else m.group(0), norm)


def lab_facts(norm: str, exclude: bool | None = None) -> list[tuple[int, Fact]]:
    """(position, fact) of every test bound the text states."""
    pat, by_name = _lab_regex()
    text = _strip_parens(norm)
    # blank time windows so "in lung function tests within the previous 3 months is 30% to
    # 80%" reads as name … value
    for (a, b), _ in time_windows(text):
        text = text[:a] + " " * (b - a) + text[b:]
    mentions = list(pat.finditer(text))
    out: list[tuple[int, Fact]] = []
    pending: list[tuple[int, Lab, str]] = []  # "ALT and AST ≤ 3 × ULN": names waiting for a bound
    for i, m in enumerate(mentions):
        lab = by_name[m.group(0)]
        if lab.key == "creatinine" and re.match(r"\s*clearance", text[m.end():]):
            continue
        if lab.key == "hemoglobin" and re.match(r"\s*a1c", text[m.end():]):
            continue
        if lab.key == "bilirubin-total" and re.search(
                r"(?:direct|conjugated|indirect|unconjugated)\s*$", text[:m.start()]):
            continue
        end = mentions[i + 1].start() if i + 1 < len(mentions) else len(text)
        stop = re.search(r"[;]|\.(?:\s|$)", text[m.end():end])
        tail = text[m.end(): m.end() + stop.start()] if stop else text[m.end():end]
        data = _value_after(lab, tail)
        if data is None:
            joint = re.fullmatch(r"[\s,]*(?P<c>and/or|and|or|&|/)?[\s,]*", tail)
            if joint:
                pending.append((m.start(), lab, joint.group("c") or ","))
            else:
                pending = []
            continue
        # "ALT and AST > 2 × ULN" in an exclusion means both at once, "ALT or AST ≤ 3 × ULN"
        # in an inclusion either one: neither is a list of separate facts, so neither is read
        joints = {c for _, _, c in pending}
        clash = (exclude is True and joints & {"and", "&"}) or (
            exclude is False and joints & {"or", "/"})
        if clash:
            pending = []
            continue
        for pos, other, _ in pending:
            if other.kind == lab.kind and (data.get("relative") or other.unit_for(data["unit"])):
                out.append((pos, Fact("lab", {"test": other.key, **data})))
        pending = []
        out.append((m.start(), Fact("lab", {"test": lab.key, **data})))
    # a bound in a clause that makes it conditional ("… for patients who are > 16 years
    # old") is not a requirement on everyone
    clauses = [(a, b) for a, b in _clauses(text) if conditional(text[a:b])]
    return [(p, f) for p, f in out if not any(a <= p < b for a, b in clauses)]


# --- conditions ----------------------------------------------------------------------------

@cache
def _condition_regex() -> tuple[re.Pattern[str], dict[str, dict]]:
    by_name = {n: c for c in tables().conditions for n in c["names"]}
    alts = sorted(by_name, key=len, reverse=True)
    return (re.compile(r"(?<![\w/-])(?:" + "|".join(re.escape(a) for a in alts) + r")(?![\w/-])"),
            by_name)


_COND_FILLER = frozenset([
    "a", "an", "the", "of", "with", "known", "history", "diagnosis", "diagnosed", "clinical",
    "clinically", "confirmed", "documented", "current", "currently", "active", "prior",
    "previous", "previously", "past", "patients", "patient", "subjects", "subject", "individuals",
    "participants", "people", "persons", "have", "has", "had", "having", "who", "are", "is",
    "were", "was", "any", "screening", "for", "that", "occurred", "occurring", "in", "or", "and",
    "evidence", "presence", "concurrent", "established", "suffering", "from", "definite",
    "diagnose", "diagnosed:", ":",
])
_EXCEPT = re.compile(r"\b(?:excluding|except(?: for)?|other than|unless|apart from|"
                     r"with the exception of|but not)\b")
_NEGATION = re.compile(r"\b(?:no|not|without|absence|free of|negative|never|non)\b")


def condition_facts(norm: str) -> list[tuple[int, Fact]]:
    """Coded conditions named in a clause that says nothing else about them."""
    pat, by_name = _condition_regex()
    exc = _EXCEPT.search(norm)
    head = norm[:exc.start()] if exc else norm
    # "any significant condition, such as … malignancy": examples of something broader
    example = re.search(r"\bsuch as\b|\be\.g\.|\bincluding\b|\bfor example\b", head)
    if example:
        head = head[:example.start()]
    exceptions = norm[exc.start():].strip(" ;.,") if exc else None
    out: list[tuple[int, Fact]] = []
    pos = 0
    for clause in re.split(r"[;,]| or | and | and/or ", head):
        start = head.find(clause, pos)
        pos = start + len(clause)
        m = pat.search(clause)
        if not m or _NEGATION.search(clause):
            continue
        windows = time_windows(clause)
        rest = clause[:m.start()] + " " + clause[m.end():]
        for (a, b), _ in time_windows(rest):
            rest = rest[:a] + " " * (b - a) + rest[b:]
        rest = re.sub(r"prior to screening|before screening|\([^)]*\)", " ", rest)
        words = re.findall(r"[^\s.,;:()]+", rest)
        if any(w not in _COND_FILLER for w in words):
            continue
        c = by_name[m.group(0)]
        data = {"key": c["key"], **c["code"], "text": m.group(0), "exceptions": exceptions}
        if windows:
            data["window"] = windows[0][1]
        out.append((start + m.start(), Fact("condition", data)))
    return out


# --- the whole criterion -------------------------------------------------------------------

def _clauses(norm: str) -> Iterator[tuple[int, int]]:
    """Spans of the clauses of a criterion: split at ";" and at sentence ends."""
    pos = 0
    for part in re.split(r"(;|\.\s+(?=[a-z]))", norm):
        if part and not re.fullmatch(r";|\.\s+", part):
            yield pos, pos + len(part)
        pos += len(part)


def facts_for(text: str, exclude: bool | None = None) -> list[Fact]:
    """Every fact the criterion text states, in reading order (possibly none). ``exclude``
    (the criterion's sense, when known) lets an exclusion list of alternatives be read."""
    return _read(text, exclude)[0]


def _read(text: str, exclude: bool | None = None) -> tuple[list[Fact], bool]:
    """(facts, whether the bounds/conditions are alternatives joined only by "or")."""
    norm = normalise(text)
    facts: list[Fact] = []
    facts += sex_facts(norm)
    facts += healthy_facts(norm)
    facts += age_facts(norm)
    facts += pregnancy_facts(norm, exclude)
    positioned = lab_facts(norm, exclude) + condition_facts(norm)
    windows = time_windows(norm)
    # a time window qualifies the labs of its own clause ("DLCO … within the previous 3
    # months is 30-80 %"): give it to them
    for a, b in _clauses(norm):
        ws = [w for (s, _), w in windows if a <= s < b]
        if len(ws) == 1:
            for p, f in positioned:
                if a <= p < b and f.kind == "lab":
                    f.data["window"] = ws[0]
    positioned.sort(key=lambda x: x[0])
    joints = [norm[a:b] for (a, _), (b, _) in itertools.pairwise(positioned)]
    only_or = bool(joints) and all(
        re.search(r"\bor\b", j) and not re.search(r"[,;]|\band\b", j) for j in joints)
    facts += [f for _, f in positioned]
    facts += [Fact("time-window", w) for _, w in windows]
    return facts, only_or


def structure(criteria: list[Criterion]) -> list[Criterion]:
    """Fill ``facts`` (and ``combination``) of every criterion in the tree, in place."""
    for root in criteria:
        for c in root.walk():
            c.facts, only_or = _read(c.text, c.exclude)
            # several things in one exclusion line each exclude ("pregnant or lactating");
            # several bounds in one inclusion line must all hold ("ALT …, AST …") unless they
            # are plain alternatives ("creatinine ≤ 1.5 mg/dL or CrCl ≥ 60 mL/min")
            c.combination = "any-of" if c.exclude or only_or else "all-of"
    return criteria
