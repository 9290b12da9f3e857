"""The eligibility grammar: measurable-concept mentions and the bounds stated on them.

It reads the canonical text of :mod:`.tokens` (comparators as ``≤ ≥ < >``, reference multiples
as ``×uln``/``×lln``, "% of predicted" as ``%pred``), with one mechanism for every concept of the
lexicon (``mappings/eligibility-labs.json``), age included:

    mentions   := NAME ( JOINT NAME )*            JOINT: "/", ",", "and", "or", "and/or", "&"
    statement  := mentions GAP bounds             GAP: filler words ("level", "of", "is", ":")
    bounds     := atom ( ("and" | "," | "but") atom )      two sides of one range
                | atom "or" atom                           either/or ("< 30 or > 69")
                | atom [","|"("|";"] ["or"] atom CONDITION conditional alternative
    atom       := CMP value | [between|from] value ("-"|"to"|"and"|"~") value
                | value ("or more" | "or less" | "and over" | "+" …) | value (scores only)
    value      := NUMBER [UNIT | ×uln | ×lln | %pred]

A unit is one the concept's lexicon entry lists (its conversions make it comparable); a number
without a unit is read only where the lexicon says which unit bare numbers of that size are in
(a score, a BMI, a cell count written in thousands). A bound followed by a word that looks like
a unit the lexicon does not know, a bound inside a conditional clause, and a list of names
whose joint ("and" in an exclusion, "or" in an inclusion) would make the bound mean something
else all stay text-only: a wrong number is worse than none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from typing import Any

from .tables import Lab, Unit, norm_unit, tables
from .tokens import NUM, NUMWORDS, ROMAN, number

_CMPS = {"≤": ("<=", True), "≥": (">=", True), "<": ("<=", False), ">": (">=", False)}


@dataclass(slots=True)
class Bound:
    """One side or both sides of a bound on a concept."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    unit: str | None = None  # UCUM (from the lexicon), or None
    relative: str | None = None  # ULN, LLN, predicted
    unit_written: bool = False
    start: int = 0
    end: int = 0
    #: the one sex the bound holds for ("< 11 g/dL in women and < 12 g/dL in men")
    sex: str | None = None
    #: ((low, unit), (high, unit)) as written when the two sides were in different units
    #: ("6 months to 17 years", read as months): an age in completed units is not the same
    #: bound in a smaller unit ("≤ 17 years" holds at 17 years 6 months, "≤ 204 months" not)
    sides: tuple[tuple[float, str], tuple[float, str]] | None = None
    #: the range is what the value lies outside of ("hematocrit outside the normal range
    #: (35-50 %)"): the structuring step reads the fact as negated
    outside: bool = False
    #: "within normal limits" of a concept with both limits: between its lower and upper
    #: limits of normal, which one multiple does not state (the structuring step reads the
    #: bound as an all-of of ≥ 1 × LLN and ≤ 1 × ULN)
    normal_range: bool = False

    def data(self) -> dict[str, Any]:
        out = {"low": self.low, "high": self.high, "low_inclusive": self.low_inclusive,
               "high_inclusive": self.high_inclusive, "unit": self.unit,
               "relative": self.relative}
        if self.sex:
            out["sex"] = self.sex
        return out

    @property
    def up(self) -> bool:
        return self.low is not None and self.high is None

    @property
    def down(self) -> bool:
        return self.high is not None and self.low is None


@dataclass(slots=True)
class Reading:
    """A concept with its bound (and alternatives) found at ``pos`` in the text."""

    pos: int
    lab: Lab
    bound: Bound
    alternatives: list[tuple[Bound, str | None]] = field(default_factory=list)
    either: bool = False  # alternatives are "either/or" bounds, not conditional ones
    end: int = 0
    #: for a name that shares the bound of a later name ("AST/ALT ≤ 3 × ULN"): the joint
    joint: str | None = None


# --- mentions ------------------------------------------------------------------------------

@cache
def _names() -> tuple[re.Pattern[str], dict[str, Lab]]:
    by_name: dict[str, Lab] = {}
    for lab in tables().labs:
        for n in lab.names:
            by_name.setdefault(n, lab)
    # a space inside a name matches any run of spaces: a remark in brackets is blanked before
    # the grammar reads ("hepatitis B virus (HBV) DNA" → "hepatitis b virus       dna")
    pat = re.compile(r"(?<![\w+-])(?:" + trie_regex(list(by_name)).replace("\\ ", r"\s+")
                     + r")(?![\w+])")
    return pat, by_name


_SPACE_RUN = re.compile(r"\s{2,}")


def _names_lab(words: str, lab: Lab) -> bool:
    """Whether ``words`` are one of the lexicon's names for ``lab`` (a level or value of it
    too: "total bilirubin level", "the serum creatinine value")."""
    words = re.sub(r"^(?:the|a|an|their|his|her)\s+|\s+(?:levels?|values?|of)$", "",
                   _SPACE_RUN.sub(" ", words.strip()))
    return _names()[1].get(words) is lab


def name_of(found: str) -> str:
    """The lexicon name a match of the names pattern stands for (spaces collapsed)."""
    return _SPACE_RUN.sub(" ", found) if "  " in found else found


def trie_regex(words: list[str]) -> str:
    """One regular expression matching any of ``words``, longest first, shared prefixes
    factored out (a plain alternation of a thousand names is tried name by name)."""
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = True

    def build(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + build(sub) for ch, sub in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


_UNIT_CACHE: dict[str, tuple[dict[str, str], int]] = {}


def _units(lab: Lab) -> tuple[dict[str, str], int]:
    got = _UNIT_CACHE.get(lab.key)
    if got is not None:
        return got
    known = {norm_unit(a): u.ucum for u in lab.units for a in (u.ucum, *u.aliases) if a}
    got = _UNIT_CACHE[lab.key] = (known, max((len(k) for k in known), default=0))
    return got


_NOT_UNIT = frozenset(["or", "and", "in", "for", "if", "with", "on", "at", "before", "after", "of",
                       "is", "are", "unless", "except", "when", "as", "by", "within", "to",
                       "but", "without", "who", "that", "and/or", "from", "during", "while",
                       "was", "were", "be", "the", "a", "an", "all", "both", "either", "any",
                       "per", "than", "measured", "using", "according", "assessed", "calculated",
                       "not", "no", "also", "more", "less", "higher", "lower", "greater",
                       "older", "younger", "above", "below", "over", "under", "inclusive",
                       "exclusive", "respectively", "should", "must", "will", "can", "may",
                       "has", "have", "had", "does", "do", "estimated", "based", "via", "each",
                       "between", "documented", "confirmed", "which", "where", "whichever",
                       "plus", "i.e.", "e.g.", "ie", "eg", "only", "so", "then", "prior",
                       "since", "until", "up", "till", "range", "ranging", "score", "points",
                       "point", "consecutive", "times", "time", "predicted", "pred", "value",
                       "values", "level", "levels", "at", "x", "×", "old", "age", "aged", "yet",
                       "nor", "its", "his", "her", "any", "one", "two", "due", "off", "out",
                       "men", "man", "are", "see", "may"])
# a word after a number that may be a unit: short, or with a unit character, or a unit word
_UNITISH = re.compile(
    r"[a-zµ°%']{1,4}\d?|.*[/%µ°^\d].*|(?:grams?|kilograms?|milligrams?|micrograms?|liters?|"
    r"litres?|meters?|metres?|centimet(?:er|re)s?|millimet(?:er|re)s?|pounds?|inches|copies|"
    r"cells|units?|seconds?|minutes?|hours?|days?|weeks?|months?|years?|percent|points?|"
    r"beats|breaths|degrees?|celsius|fahrenheit|kilos?|mmol|umol|µmol|nmol|pmol|mmhg|"
    r"ml|mg|dl|kg|times|folds?)")
_AGE_TAIL = re.compile(r"\s*(?:of age|old|-old|years? old|of life|of chronological age|"
                       r"in age|age\b|\(age\)|at (?:the time of )?(?:screening|enrol|inclusion|"
                       r"consent|signing|randomi|diagnosis))")


def _unit_at(lab: Lab, s: str, pos: int) -> tuple[str | None, int, bool]:
    """(ucum, end, ok) for a unit written at ``pos``: ok is False when a word that looks like
    a unit is written there but is not one the concept's lexicon entry knows."""
    known, longest = _units(lab)
    p = _SPACES.match(s, pos).end()  # type: ignore[union-attr]
    best: tuple[str, int] | None = None
    # candidate ends: every whitespace/punctuation boundary within reach
    stop = min(len(s), p + longest + 8)
    for end in range(p + 1, stop + 1):
        if end < len(s) and (s[end - 1].isalnum() or s[end - 1] in "^*") and (
                s[end].isalnum() or s[end] in "^²³"):
            continue
        cand = norm_unit(s[p:end]).rstrip(",.;:)")
        if cand in known and (end == len(s) or not s[end].isalnum()
                              or not s[end - 1].isalnum()):
            best = (known[cand], end)
    if best:
        if _UNIT_CONTINUES.match(s, best[1]):
            # "40 kg/m2" for body weight, "100 mg/dL" for 24-hour urine protein: the unit
            # written goes on past the one the concept knows, so it is another unit
            return None, pos, False
        return best[0], best[1], True
    w = _UNIT_WORD.match(s, p)
    if lab.kind == "score":
        # "NYHA for 1 year": a duration, not a class; "IgA < 0.07 g/L", "ECOG ≥ 2 mg/dL": a
        # unit of measure, so not this score (immunoglobulin A is no Investigator's Global
        # Assessment)
        word = re.sub(r"['’]s$", "", w.group(0).rstrip(".,;:")) if w else ""
        return None, pos, not (word and (_TIME_WORD.fullmatch(word) or (
            word not in _NOT_UNIT and _PER_VOLUME.search(word) and
            not _CLASS_LIST.fullmatch(word))))
    word = w.group(0).rstrip(".,;:") if w else ""
    if word and word not in _NOT_UNIT and _UNITISH.fullmatch(word) and \
            not word.startswith("×10"):
        return None, pos, False
    if s.startswith("×10", p):
        return None, pos, False
    return None, pos, True


# --- atoms ---------------------------------------------------------------------------------

_SPACES = re.compile(r"\s*")
#: a unit continuing with "/" and more of it right after a known unit ends (not the body
#: surface a clearance is given per, "/1.73 m²": the lexicon reads those as the clearance)
_UNIT_CONTINUES = re.compile(r"/(?!1[.,]73)[a-zµ\d]")
_TIME_WORD = re.compile(r"years?|yrs?|months?|weeks?|wks?|days?|hours?|hrs?|minutes?|mins?|"
                        r"seconds?|times")
_UNIT_WORD = re.compile(r"[a-zµ%/°º'][\w/%.^²³µ°'-]*")
# a unit per something ("mg/dL", "g/L", "/µL"), which no score's number is written in (not a
# score out of its maximum, "7/10", nor a list of classes, "III/IV")
_PER_VOLUME = re.compile(r"/[a-zµ]")
_CLASS_LIST = re.compile(r"/?[ivx]+(?:/[ivx]+)*")
_INT_VAL = re.compile(r"\s*(?P<num>\d+)")
_MULT = re.compile(r"\s*+×?\s*+(uln|lln)(?![\w])")
_PCT_PRED = re.compile(r"\s*%pred(?![\w])")
_PCT = re.compile(r"\s*(?:%|percent)(?![\w])")
_CMP_AT = re.compile(r"\s*+(?:between\s++|from\s++)?(?P<c>[≤≥<>])\s*+"
                     r"(?:the age of\s++|ages?\s*+:?\s*+(?:of\s++)?)?")
_TO_CMP = re.compile(r"\s*(?:-|–|to)\s*(?P<c>[≤<])")
#: "between 15 and < 60": after "between", "and" joins the sides as "to" does
_AND_CMP = re.compile(r"\s*and\s*(?P<c>[≤<])")
_AND = re.compile(r"\s*and\b")
_CLUSIVE = re.compile(r"\s*+\(?\s*+(?:both\s++)?(?P<w>in|ex)clusive\b\s*\)?")
_LIST_NEXT = re.compile(r"(?:\s*+(?:,\s*+(?:or|and)?|or|and|/)\s*+(?P<n>\d{1,2}|iv|vi|v|i{1,3})"
                        r"(?![\w]|[.,]\d))")
_DIGIT = re.compile(r"\d|\.\d")
_LEVEL_NEXT = re.compile(_LIST_NEXT.pattern.replace(r"\d{1,2}", r"\d{1,2}(?:\.\d)?"))
_LIST_DECIMAL = re.compile(r"\s*(?:,\s*(?:or|and)?|or|and|/)\s*\d+[.,]\d")
_VAL = re.compile(rf"\s*(?P<num>[-+]?{NUM})(?![\d])")
_ROMAN_VAL = re.compile(r"\s*(?P<num>iv|vi|v|i{1,3})(?![\w])")
_POST_GAP = r"\s*+(?:(?:of age|old|of life)\s*+,?\s*+)?"
_UP_POST = re.compile(_POST_GAP + r"(?:or|and|&)\s+(?:more|greater|higher|above|older|"
                      r"over|upwards?|beyond)(?![\w])|\s*\+(?!\s*\d)|\s*and\s+up(?![\w])|"
                      r"\s*or\s+(?:≥|>)(?!\s*\d)")
_DOWN_POST = re.compile(_POST_GAP + r"(?:or|and)\s+(?:less|lower|below|younger|fewer|under|smaller)"
                        r"(?![\w])|\s*or\s+(?:≤|<)(?!\s*\d)")
_RANGE_SEP = re.compile(r"\s*(?:(?:old|of age|of life)\s+)?(?:-|–|to|and|~|through|thru|至|到)\s*"
                        r"(?![≤≥<>])")
_BETWEEN = re.compile(r"\s*(?:(?:(?:range[sd]?|ranging)\s+)?(?:between|from)|range[sd]?|ranging|"
                      r"of)\s+")


#: a number whose dot may separate thousands: "100.000", "1.500" (not "0.125", "12.5")
_DOT_THOUSANDS = re.compile(r"[1-9]\d{0,2}\.\d{3}")
#: a multiple written after the limit ("≤ ULN × 2.5", "ULN x 3")
_MULT_AFTER = re.compile(r"\s*[x×*]\s*(\d+(?:[.,]\d+)?)(?![\d.,])(?!\s*(?:[a-zµ]+/|/|%|10\^))")
_WORD_MULT = re.compile(r"\s*(one|two|three|four|five|ten|twice)\s*×\s*(uln|lln)(?![\w])")
_MULT_WORDS = {**NUMWORDS, "twice": 2}


_VERSUS = re.compile(r"\s*(?:vs\.?|versus)(?![\w])")
#: "23 0/7 weeks", and as much of Europe writes it, "23+0 weeks": weeks and days
_SEVENTHS = re.compile(r"\s+([0-6])\s*/\s*7(?![\d/])|\+([0-6])(?![\d.,/])")
_COMPOUND = {
    "wk": ("d", 7, re.compile(r"\s*+,?\s*+(?:and\s++|\+\s*+)?(\d{1,2})\s*(?:days?|d)(?![\w])")),
    "a": ("mo", 12, re.compile(r"\s*+,?\s*+(?:and\s++)?(\d{1,2})\s*(?:months?|mos?)(?![\w])")),
}


def _in_unit(value: float, unit: str | None, target: str | None) -> float | None:
    """``value`` (in ``unit``) in ``target`` when that is exact (weeks → days, years →
    months), else None."""
    if unit == target:
        return value
    c = _COMPOUND.get(unit or "")
    if c is not None and c[0] == target:
        return value * c[1]
    f = _EXACT.get((unit or "", target or ""))
    return value * f if f is not None else None


#: a time unit's length in days, only to tell which side of an age range is the lower
_AGE_DAYS = {"h": 1 / 24, "d": 1, "wk": 7, "mo": 30.44, "a": 365.25}
# time units that convert exactly ("24 hours to 28 days" → hours)
_EXACT = {("d", "h"): 24, ("wk", "h"): 168, ("wk", "d"): 7, ("a", "mo"): 12}


def _written_sides(a: _Val, b: _Val | None) -> tuple[tuple[float, str], tuple[float, str]] | None:
    """The two sides as written, when both wrote a unit and the units differ."""
    if b is None or not (a.written and b.written) or a.unit == b.unit or \
            a.unit is None or b.unit is None:
        return None
    return (a.value, a.unit), (b.value, b.unit)


def _same_unit(a: _Val, b: _Val) -> bool:
    """Both values in one unit ("14 weeks to 23 weeks 6 days" → days), or False."""
    if not (a.written and b.written) or a.unit == b.unit:
        return True
    for x, y in ((a, b), (b, a)):
        v = _in_unit(x.value, x.unit, y.unit)
        if v is not None:
            x.value, x.unit = v, y.unit
            return True
    return False


@dataclass(slots=True)
class _Val:
    value: float
    unit: str | None
    relative: str | None
    end: int
    written: bool  # a unit (or reference) was written


def _value(lab: Lab, s: str, pos: int, score_roman: bool = False) -> _Val | None:
    w = _WORD_MULT.match(s, pos)
    if w:  # "three times the upper limit of normal"
        return _Val(_MULT_WORDS[w.group(1)], None, w.group(2).upper(), w.end(), True)
    m = _VAL.match(s, pos)
    if m and lab.kind == "score" and "," in m.group("num"):
        m = _INT_VAL.match(s, pos)  # "ASA 1,2" is a list
    if not m and (r := _MULT.match(s, pos)):
        # "≤ ULN": one times the limit; "≤ ULN × 2.5": the multiple written after it
        if r.group(1).upper() not in lab.relative:
            return None
        after = _MULT_AFTER.match(s, r.end())
        if after is not None:
            return _Val(number(after.group(1)), None, r.group(1).upper(), after.end(), True)
        return _Val(1, None, r.group(1).upper(), r.end(), True)
    if m and _VERSUS.match(s, m.end()):
        return None  # "stratified by ECOG (0 vs 1)": strata compared, not a bound
    if m:
        v = number(m.group("num"))
    elif score_roman and (m := _ROMAN_VAL.match(s, pos)):
        v = ROMAN[m.group("num")]
    else:
        return None
    end = m.end()
    if (sev := _SEVENTHS.match(s, end)) is not None:
        # "23 0/7 to 28 6/7 weeks": weeks and days of gestation, in days
        if lab.unit_for("d") is None or not float(v).is_integer():
            return None
        unit, uend, ok = _unit_at(lab, s, sev.end())
        if ok and unit in ("wk", None):
            return _Val(int(v) * 7 + int(sev.group(1) or sev.group(2)), "d", None,
                        uend if unit else sev.end(), True)
        return None
    r = _MULT.match(s, end)
    if r:
        # a multiple of a limit the concept does not have ("creatinine clearance ≤ 1.5 ×
        # ULN"): the bound is another concept's
        if r.group(1).upper() not in lab.relative:
            return None
        return _Val(v, None, r.group(1).upper(), r.end(), True)
    r = _PCT_PRED.match(s, end)
    if r:
        return _Val(v, "%", "predicted", r.end(), True)
    r = _PCT.match(s, end)
    if r and "predicted" in lab.relative and lab.unit_for("%") is None:
        # a lung function test in % is % of its predicted value
        return _Val(v, "%", "predicted", r.end(), True)
    unit, uend, ok = _unit_at(lab, s, end)
    if not ok:
        return None
    if _DOT_THOUSANDS.fullmatch(m.group("num")):
        # "100.000/mm3", "1.500/µL": a dot before three digits separates thousands where
        # much of Europe and Latin America write, and is a decimal point elsewhere. A count
        # per volume is never a fraction of a cell: thousands. Otherwise, ending in zeros (a
        # decimal would not be written so), there is no telling which: text
        if unit is not None and unit.startswith("/"):
            v = number(m.group("num").replace(".", ""))
        elif m.group("num").endswith("00"):
            return None
    if unit in _COMPOUND:
        # "23 weeks 6 days", "2 years and 6 months": one value in the smaller unit, when the
        # concept has it
        small, factor, pat = _COMPOUND[unit]
        c = pat.match(s, uend)
        if c is not None and any(u.ucum == small for u in lab.units):
            return _Val(v * factor + number(c.group(1)), small, None, c.end(), True)
    return _Val(v, unit, None, uend, unit is not None)


# "within normal institutional limits", "within the normal range", "WNL"
_WNL_TAIL = (r"(?:the\s+)?(?:(?:institutional|laboratory|local|reference)\s+)?normal\s+"
             r"(?:(?:institutional|laboratory|local|reference)\s+)?(?:limits?|range|values?)")
_WNL = re.compile(r"\s*(?:(?:is|are|must be|should be)\s+)?(?:within\s+" + _WNL_TAIL +
                  r"|wnl)(?![\w])")
# … and after "within", which the grammar skips as a gap word
_WNL_AFTER_WITHIN = re.compile(r"\s*" + _WNL_TAIL + r"(?![\w])")
_WITHIN_BEFORE = re.compile(r"\bwithin\s*$")


def _within_normal(lab: Lab, s: str, pos: int) -> Bound | None:
    """The "within normal limits" of a concept whose lexicon entry has an upper limit only
    (bilirubin, creatinine, AST, ALT: what lies below the lower limit is not a fault) as ≤ 1 ×
    ULN; of one with both limits (potassium, magnesium, TSH) as the range between them
    (``normal_range``: read as ≥ 1 × LLN and ≤ 1 × ULN); none for other concepts
    (hemoglobin, platelets, whose entries state a lower limit only: the line stays text)."""
    m = _WNL.match(s, pos)
    if m is None and _WITHIN_BEFORE.search(s, max(0, pos - 8), pos):
        m = _WNL_AFTER_WITHIN.match(s, pos)
    if m is None:
        return None
    start = m.start() + len(m.group(0)) - len(m.group(0).lstrip())
    if tuple(lab.relative) == ("ULN",):
        return Bound(high=1, relative="ULN", unit_written=True, start=start, end=m.end())
    if set(lab.relative) == {"ULN", "LLN"} and not _NORMAL_RANGE_STOP.match(s, m.end()):
        return Bound(low=1, high=1, relative="ULN", unit_written=True, start=start,
                     end=m.end(), normal_range=True)
    return None


# "within normal limits (3.5-5.0 mmol/L)": the range the trial states, which the reference
# range of a result may not be; "… or correctable with supplements": another way in — both
# leave the line text
_NORMAL_RANGE_STOP = re.compile(r"\s*(?:\(\s*[\d≤≥<>]|,?\s*(?:or|unless|except)\b)")


def _atom(lab: Lab, s: str, pos: int) -> Bound | None:
    """One bound at ``pos`` (after optional spaces)."""
    m = _CMP_AT.match(s, pos)
    roman = lab.kind == "score"
    if m is None and (w := _within_normal(lab, s, pos)) is not None:
        return w
    if m:
        v = _value(lab, s, m.end(), roman)
        if v is None:
            return None
        sense, incl = _CMPS[m.group("c")]
        if sense == ">=" and (to := _UP_TO.match(s, v.end)) is not None:
            ranged = _range_after_lower(lab, s, m.start("c"), v, incl, to.end(), roman)
            if ranged is not None:
                return ranged
        b = Bound(unit=v.unit, relative=v.relative, unit_written=v.written, start=m.start("c"),
                  end=v.end)
        if sense == "<=":
            b.high, b.high_inclusive = v.value, incl
        else:
            b.low, b.low_inclusive = v.value, incl
        return b
    bm = _BETWEEN.match(s, pos)
    p = bm.end() if bm else pos
    v1 = _value(lab, s, p, roman)
    if v1 is None:
        return None
    to_cmp = _TO_CMP.match(s, v1.end) or (_AND_CMP.match(s, v1.end) if bm else None)
    if to_cmp:
        # "0 days to < 14 days": the upper side carries its own comparator
        v2 = _value(lab, s, to_cmp.end(), roman)
        sides = _written_sides(v1, v2)
        if v2 is not None and v1.relative == v2.relative and _same_unit(v1, v2) and \
                v1.value < v2.value:
            return Bound(low=v1.value, high=v2.value, high_inclusive=to_cmp.group("c") == "≤",
                         unit=v2.unit or v1.unit, relative=v2.relative,
                         unit_written=v1.written or v2.written, start=p, end=v2.end,
                         sides=sides)
    # "between 50 kg (inclusive) and 90 kg (exclusive)": each side says its own
    own = _CLUSIVE.match(s, v1.end)
    sep = _RANGE_SEP.match(s, own.end() if own else v1.end)
    if sep and not (bm is None and lab.kind not in ("age", "score")
                    and _AND.match(s, v1.end)):
        v2 = _value(lab, s, sep.end(), roman)
        sides = _written_sides(v1, v2)
        after = _CLUSIVE.match(s, v2.end) if v2 is not None else None
        hi_in = after is None or after.group("w") == "in"
        # … and a word after the range alone is both sides' ("9 to 12 g/dL (exclusive)")
        lo_in = own.group("w") == "in" if own is not None else hi_in
        if v2 is not None and not _same_unit(v1, v2):
            return _age_in_two_units(lab, v1, v2, lo_in, hi_in, p)
        if v2 is not None and v1.value > v2.value and v1.value <= 0 and \
                v1.relative == v2.relative:
            # "T-score between -1.0 and -2.5": negative values, written from nearer zero
            v1, v2, lo_in, hi_in = v2, v1, hi_in, lo_in
        if v2 is not None and v1.value < v2.value and (
                v1.relative == v2.relative or not v1.written):
            return Bound(low=v1.value, high=v2.value, low_inclusive=lo_in,
                         high_inclusive=hi_in, unit=v2.unit or v1.unit,
                         relative=v2.relative or v1.relative,
                         unit_written=v1.written or v2.written, start=p, end=v2.end,
                         sides=sides)
        if v2 is None and bm is not None:
            return None
    if bm is not None and bm.group(0).split()[-1] in ("between", "from"):
        return None
    up = _UP_POST.match(s, v1.end)
    if up:
        return Bound(low=v1.value, unit=v1.unit, relative=v1.relative, unit_written=v1.written,
                     start=p, end=up.end())
    down = _DOWN_POST.match(s, v1.end)
    if down:
        return Bound(high=v1.value, unit=v1.unit, relative=v1.relative,
                     unit_written=v1.written, start=p, end=down.end())
    if lab.kind == "score":
        # "ECOG 0, 1 or 2", "ECOG 0 or 1": a list of consecutive grades is a range
        # … or of adjacent levels of a scale with fractional ones ("CDR 0.5 or 1")
        lst = (_LEVEL_NEXT if lab.levels else _LIST_NEXT).match
        nums = [v1.value]
        end = v1.end
        while (x := lst(s, end)) is not None:
            n = x.group("n")
            nums.append(ROMAN[n] if n in ROMAN else number(n))
            end = x.end()
        if _DIGIT.match(s, end) or _LIST_DECIMAL.match(s, end):
            return None  # "0, 1 or 2.5": not a list of grades
        if len(nums) > 1:
            levels = list(lab.levels) or list(range(int(nums[0]), int(nums[0]) + len(nums)))
            if nums[0] in levels and nums == levels[levels.index(nums[0]):][:len(nums)]:
                return Bound(low=nums[0], high=nums[-1], start=p, end=end)
            return None
        return Bound(low=v1.value, high=v1.value, start=p, end=v1.end)
    return None


def _age_in_two_units(lab: Lab, v1: _Val, v2: _Val, lo_in: bool, hi_in: bool,
                      start: int) -> Bound | None:
    """An age from a value in one unit to one in another ("3 weeks to 5 months"): no exact
    conversion, but an age keeps each side's unit (``Bound.sides``, which is what is read);
    the range itself is in days, roughly. None for anything but an age that grows from one
    written side to the other."""
    sides = _written_sides(v1, v2)
    if lab.kind != "age" or sides is None or \
            _AGE_DAYS[v1.unit or ""] * v1.value >= _AGE_DAYS[v2.unit or ""] * v2.value:
        return None
    return Bound(low=_AGE_DAYS[v1.unit or ""] * v1.value,
                 high=_AGE_DAYS[v2.unit or ""] * v2.value, low_inclusive=lo_in,
                 high_inclusive=hi_in, unit="d", unit_written=True, start=start, end=v2.end,
                 sides=sides)


#: "to" after a lower bound, then a bare number: "≥ 18 to 65 years" is "from 18 to 65"
_UP_TO = re.compile(r"\s*(?:(?:years?|yrs?)\s+)?(?:to|through|-|–)\s*(?![≤≥<>\s])")


def _range_after_lower(lab: Lab, s: str, start: int, v1: _Val, incl: bool, at: int,
                       roman: bool) -> Bound | None:
    """The range of a lower bound whose comparator also leads a range ("Age ≥ 18 to 65
    years", "BMI ≥ 18.5 to 30 kg/m²", "age ≥ 2 weeks to 4 months"): before, the lower side
    alone was read and a 70-year-old met "≥ 18 to 65". None when the number after "to" is no
    upper side of it (a smaller number, another reference, a unit that does not convert)."""
    v2 = _value(lab, s, at, roman)
    if v2 is None or v1.relative != v2.relative:
        return None
    after = _CLUSIVE.match(s, v2.end)
    hi_in = after is None or after.group("w") == "in"
    if not _same_unit(v1, v2):
        return _age_in_two_units(lab, v1, v2, incl, hi_in, start)
    if v1.value >= v2.value:
        return None
    return Bound(low=v1.value, high=v2.value, low_inclusive=incl, high_inclusive=hi_in,
                 unit=v2.unit or v1.unit, relative=v2.relative,
                 unit_written=v1.written or v2.written, start=start, end=v2.end)


# --- letter classes of a score ("Child-Pugh A or B7") ---------------------------------------

_GRADE_GAP = re.compile(r"(?:\s*(?:class(?:ification)?|score|grade|stage|status|of|:)(?![\w]))*"
                        r"\s*(?:(?P<c>[≤≥<>])\s*)?")
_GRADE = re.compile(r"(?P<l>[a-z])(?P<n>\d{1,2})?(?![\w])")
_GRADE_OPEN = re.compile(r"\s*(?:or|and)\s+(?:worse|better|higher|lower|more|less|above|below|"
                         r"greater|over|under|up)(?![\w])|\s*\+|\s*+(?:or|o)?\s*+[≤≥<>](?!\s*\d)")
_NUMBER_NEXT = re.compile(r"\s+(?:[a-z]+\s+){0,3}[≤≥<>]?\s*\d")
_GRADE_NEXT = re.compile(r"\s*(?:,\s*or|,|or|and|-|–|to|/)\s*")


def _grade_bounds(lab: Lab, s: str, pos: int) -> tuple[Bound, list[tuple[Bound, str | None]],
                                                       bool, int] | None:
    """The bound a score written in its letter classes states, as the range of scores the
    classes stand for (the lexicon's ``grades``): "class A" 5-6, "A or B7" 5-7, "≤ B7" ≤ 7,
    "< C" < 10. Classes listed must be adjacent; anything else is left to the other readers."""
    g = _GRADE_GAP.match(s, pos)
    if g is None:
        return None
    spans = {letter: (lo, hi) for letter, lo, hi in lab.grades}

    def grade(at: int) -> tuple[float, float, int] | None:
        m = _GRADE.match(s, at)
        if m is None or m.group("l") not in spans:
            return None
        lo, hi = spans[m.group("l")]
        if m.group("n") is None:
            return lo, hi, m.end()
        n = int(m.group("n"))
        return (n, n, m.end()) if lo <= n <= hi else None

    first = grade(g.end())
    if first is None:
        return None
    lo, hi, end = first
    cmp = g.group("c")
    if cmp:
        b = Bound(start=g.start("c"), end=end)
        if cmp in "≤<":
            b.high, b.high_inclusive = (hi, True) if cmp == "≤" else (lo, False)
        else:
            b.low, b.low_inclusive = (lo, True) if cmp == "≥" else (hi, False)
        return b, [], False, end
    while (j := _GRADE_NEXT.match(s, end)) is not None and (nxt := grade(j.end())) is not None:
        if nxt[0] != hi + 1:  # "A or C": not one range
            return None
        hi, end = nxt[1], nxt[2]
    if _GRADE_OPEN.match(s, end):
        return None  # "B8 or worse": which way is worse is the scale's, not read here
    if _NUMBER_NEXT.match(s, end):
        return None  # "Child-Pugh a score of 7 or less": an article, and a number to read
    return Bound(low=lo, high=hi, start=g.end(), end=end), [], False, end


# --- bounds after a mention ----------------------------------------------------------------

_GAP_WORDS = frozenset([
    "is", "are", "was", "be", "must", "should", "shall", "of", "the", "a", "an", "level", "levels",
    "value", "values", "count", "counts", "concentration", "concentrations", "score", "scores",
    "status", "performance", "ps", "in", "serum", "blood", "plasma", "measured", "result",
    "results", "by", "ratio", "absolute", "calculated", "estimated", "corrected", "total",
    "index", "class", "classification", "rate", "range", "at", "screening", "baseline", "rest",
    "resting", "fasting", "has", "have", "having", "with", "within", "reading", "readings",
    "group", "physical", "category", "scale", "functional", "global", "test", "tests",
    "capacity", "volume", "pressure", "grade", "documented", "confirmed", "subjects",
    "patients", "participants", "aged", "age", "years", "year", "equal", "to", "ratio",
    "mean", "average", "systolic", "diastolic", "arterial", "random", "function", "lung",
    "use", "using", "formula", "equation", "cockcroft-gault", "mdrd", "ckd-epi", "cockcroft",
    "gault", "time", "duration", "any", "both", "either", "current", "currently", "rating",
    "measurement", "measurements", "determined", "assessed", "according", "as", "per",
    "and/or", "who", "whose", "excretion",
    "inclusive", "dose", "point", "points", "body", "weight", "height", "total", "kg", "ecog",
    "kps", "who", "zubrod", "karnofsky", "lansky", "on", "initial", "assessment", "bp", "hr",
    "visit", "day", "qtcf", "interval", "nyha", "level:", "levels:", "value:", "within",
    "admission", "arrival", "entry", "enrollment", "enrolment", "randomization",
    "randomisation", "inclusion", "study", "eye", "eyes", "fellow",
    # the method a value is measured by ("LVEF assessed by preoperative echocardiography ≥
    # 50%", "cervical length on transvaginal examination ≤ 20 mm")
    "echocardiography", "echocardiogram", "echo", "transthoracic", "transvaginal",
    "ultrasound", "ultrasonography", "sonography", "examination", "exam", "mri", "muga",
    "spirometry", "scan", "preoperative", "pre-operative", "post-bronchodilator",
    "pre-bronchodilator", "bronchodilator", "post", "pre", "ecg", "electrocardiogram",
    "cut-off", "cutoff", "threshold", "reported", "recorded",
    # the verb that gives a size ("at least one lesion measuring ≥ 10 mm")
    "measuring",
    # a lack the bound defines ("vitamin D deficiency by serum level < 50 nmol/L")
    "deficiency", "insufficiency",
])
_GAP = re.compile(r"[\s:,=(\[\-]*")
# "outside the normal range of", "out of the reference range", "outside": the bound after it
# is a range the value is not in
_OUTSIDE = re.compile(r"(?:outside|out\s+of)(?:\s+of)?(?:\s+the)?(?:\s+(?:normal|reference|"
                      r"institutional|laboratory))*(?:\s+(?:range|limits?|interval))?"
                      r"(?:\s+of)?(?![\w])")
_WORD = re.compile(r"[a-z/'’-]+:?|[()\[\]]|\d+(?=\s*[a-z])")


def _skip_gap(s: str, pos: int, limit: int = 7) -> int:
    """Skip the filler between a name and its bound (at most ``limit`` words)."""
    n = 0
    while True:
        m = _GAP.match(s, pos)
        pos = m.end() if m else pos
        w = _WORD.match(s, pos)
        if not w or n >= limit:
            return pos
        word = w.group(0).rstrip(":")
        if word in ("(", ")", "[", "]"):
            pos = w.end()
            continue
        if word not in _GAP_WORDS:
            return pos
        pos = w.end()
        n += 1


#: the words that open a bound's condition ("if liver metastases", "for patients with …")
_COND_OPENERS = r"if|in|for|with|when|among|where|in case of|in the presence of"
_COND = re.compile(r"\s*+(?:\)?\s*+[,;]?\s*+)(?:(?:of age|old|of life)\s++)?"
                   rf"(?P<c>(?:{_COND_OPENERS}|unless|due to|because of|caused by|"
                   r"in (?:patients|subjects|participants|those|cases?)|"
                   r"for (?:patients|subjects|participants|those))\b[^;)]*)")


# where a value is measured, not for whom: "in at least one eye", "in the study eye"
_SITE = re.compile(r"in\s+(?:(?:at least|≥)\s+one|one|the study|the fellow|the affected|"
                   r"the treated|the target|both|each|either)\s+eyes?\b")


def _condition_after(s: str, pos: int) -> tuple[str, int] | None:
    m = _COND.match(s, pos)
    if not m or _SITE.match(m.group("c")):
        return None
    text = m.group("c").strip(" ,.")
    if len(text) < 4:
        return None
    words = text.split()
    if len(words) > 8:  # no punctuation closes it: keep the head, not the next heading
        text = " ".join(words[:8])
    end = m.end()
    if end < len(s) and s[end] == ")":
        end += 1
    return text, end


# "≥ 18 years of age (≥ 20 … in Japan)", "≥ 18 years old, ≤ 75 years": the age words after
# the first bound are skipped to read what joins it to the next
_OLD = r"(?:\s*+(?:of age|old)(?![\w]))?"
_JOIN_RANGE = re.compile(_OLD + r"\s*+(?:,\s*+)?(?:and|but|;|&|to)?\s*+(?:(?:age|aged)\s++)?"
                         r"(?=[≤≥<>])")
_JOIN_OR = re.compile(r"\s*+,?\s*+(?:or|and/or)(?:\s+|(?=[≤≥<>]))(?:(?:age|aged)\s+)?(?=[≤≥<>\d])")
_OR_RANGE = re.compile(r"\s*+,?\s*+or\s+(?:between\s+|from\s+)?(?=\d)")
_OR_VALUE = re.compile(r"\s*+,?\s*+or\s++(?=\d)")
_OR_NEXT = re.compile(r"\s*+(?:\(|,|;)?\s*+or\b")
# a condition between a bound and its alternative: "; for patients with Gilbert's syndrome ≤",
# ", or in patients with liver metastases ≤", ", if liver metastases ≤"
_COND_LEAD = rf"(?:{_COND_OPENERS})\b[^;≤≥<>():]{{3,80}}?"
_COND_THEN_ALT = re.compile(_OLD + r"\s*+(?:[,;]|(?<=[,;]\s)|(?<=[,;]))\s*+(?:or\s++)?(?P<c>" +
                            _COND_LEAD +
                            r")\s*+[:,]?\s*+(?=[≤≥<>])")
# what may follow such an alternative: the end of its clause
_ALT_ENDS = re.compile(r"\s*+(?:$|[;.,)])")
#: a clause after ";" that is only the bound's alternative (its condition before or after it)
_ALT_CLAUSE = re.compile(r"\s*+(?:or\s++)?(?:" + _COND_LEAD + r"\s*+[:,]?\s*+)?[≤≥<>]")
# (a unit read with the "," or ";" after it leaves the join empty: "≤ 1.5 mg/dl; ≤ 2 …")
_JOIN_ALT = re.compile(_OLD + r"(?:\s++(?:[(,;]\s*+)?|[(,;]\s*+|(?=or\s|and\s)|"
                       r"(?<=[,;]\s)|(?<=[,;]))(?:or\s++|and\s++)?(?=[≤≥<>])")


def _restated(lab: Lab, a: Bound, b: Bound) -> bool:
    """Whether two ranges in two written units are one range (within 5 %)."""
    if not (a.unit_written and b.unit_written) or a.unit == b.unit or a.relative or b.relative \
            or None in (a.low, a.high, b.low, b.high):
        return False
    sides = [(lab.to_canonical(x, a.unit), lab.to_canonical(y, b.unit))
             for x, y in ((a.low, b.low), (a.high, b.high)) if x is not None and y is not None]
    return all(x is not None and y is not None and abs(x - y) <= 0.05 * max(abs(x), abs(y))
               for x, y in sides)


def _combine_units(a: Bound, b: Bound, lab: Lab) -> bool:
    """Give each side the other's unit when only one wrote it; False when they differ."""
    if a.relative != b.relative:
        return False
    if a.unit_written and b.unit_written:
        if a.unit == b.unit:
            return True
        for x, y in ((a, b), (b, a)):  # "≥ 14 weeks and < 23 weeks 6 days": in days
            lo, hi = (_in_unit(v, x.unit, y.unit) if v is not None else None
                      for v in (x.low, x.high))
            if (lo is not None or x.low is None) and (hi is not None or x.high is None):
                x.low, x.high, x.unit = lo, hi, y.unit
                return True
        return False
    if a.unit_written:
        b.unit, b.unit_written = a.unit, True
    elif b.unit_written:
        a.unit, a.unit_written = b.unit, True
    return True


def _bounds(lab: Lab, s: str, pos: int) -> tuple[Bound, list[tuple[Bound, str | None]], bool,
                                                 int] | None:
    """(bound, alternatives, either, end) of the bounds at ``pos``."""
    a = _atom(lab, s, pos)
    if a is None:
        return _sex_pair(lab, s, pos)
    end = a.end
    # two sides of one range: "≥ 18 and ≤ 65 years", "> 18 years, < 65 years"
    j = _JOIN_RANGE.match(s, end)
    if j and (a.up or a.down):
        b = _atom(lab, s, j.end())
        sides = None
        if b is not None and a.unit_written and b.unit_written and a.unit != b.unit and \
                a.unit is not None and b.unit is not None:
            lo_w, hi_w = (a, b) if a.up else (b, a)
            # as written: _combine_units below puts both in one unit
            sides = (lo_w.low, lo_w.unit), (hi_w.high, hi_w.unit)
        if b is not None and ((a.up and b.down) or (a.down and b.up)) and \
                a.relative != b.relative:
            # "≥ LLN and ≤ ULN", "≥ 3.5 mmol/L and ≤ ULN": two sides against different
            # references, which one bound cannot state — the first side alone dropped the
            # other, and a potassium of 7 mmol/L met "≥ LLN and ≤ ULN" (text)
            return None
        if b is not None and ((a.up and b.down) or (a.down and b.up)) and \
                _combine_units(a, b, lab):
            lo, hi = (a, b) if a.up else (b, a)
            if lo.low is not None and hi.high is not None and lo.low < hi.high:
                if _condition_after(s, b.end) is not None:
                    # "≥ 1.5 and ≤ 3 × ULN in patients with …": the range under a condition;
                    # its first side alone would drop the other (text)
                    return None
                return (Bound(low=lo.low, high=hi.high, low_inclusive=lo.low_inclusive,
                              high_inclusive=hi.high_inclusive, unit=a.unit,
                              relative=a.relative, unit_written=a.unit_written,
                              start=a.start, end=b.end, sides=sides), [], False, b.end)
            if lo.low is not None and hi.high is not None and sides is None and \
                    not re.search(r"\bto\b|-", j.group(0)) and _condition_after(s, b.end) is None:
                # "BMI < 18.5 and > 35 kg/m²": no value is both; the sides apart, in one unit,
                # are either one (the first alone dropped the second; "from ≤ 5 mm to ≥ 6 mm"
                # is a change)
                return a, [(b, None)], True, b.end
            if lo.low is not None and hi.high is not None and re.search(r"\bto\b", j.group(0)):
                # "probing depth from ≤ 5 mm to ≥ 6 mm", "from < 8 g/dL to > 10 g/dL": a
                # change from one state to the other, which no one value states (the first
                # side alone was read as the requirement)
                return None
    # two ranges as alternatives: "13-17 years or 18-20 years", "40-50 or 60-70 kg" — either
    # one holds, or the second only under a condition ("… or 18-20 if living at home")
    j = _OR_RANGE.match(s, end)
    if j and a.low is not None and a.high is not None:
        b = _atom(lab, s, j.end())
        if b is not None and b.low is not None and b.high is not None:
            if _restated(lab, a, b):
                return a, [], False, b.end  # "10-12 g/dL or 6.2-7.4 mmol/L": one range twice
            if not (_combine_units(a, b, lab) and (a.high < b.low or b.high < a.low)):
                # overlapping or on other scales: keeping the first alone would narrow it
                return None
            cond = _condition_after(s, b.end)
            if cond is not None:
                return a, [(b, cond[0])], False, cond[1]
            return a, [(b, None)], True, b.end
    # either/or: "< 30 or > 69 years"
    j = _JOIN_OR.match(s, end)
    if j and (a.up or a.down):
        b = _atom(lab, s, j.end())
        if b is not None and ((a.up and b.down) or (a.down and b.up)) and \
                _condition_after(s, b.end) is None and _combine_units(a, b, lab):
            lo, hi = (a, b) if a.down else (b, a)
            if lo.high is not None and hi.low is not None and lo.high <= hi.low:
                return a, [(b, None)], True, b.end
            return None
    # the bound for one sex in brackets: "≥ 13 g/dL (≥ 12 g/dL for women)", "55 kg or more
    # (female: 50 kg or more)" — the first bound is then the other sex's
    if a.up or a.down:
        sexed = _sex_in_brackets(lab, s, a)
        if sexed is not None:
            return sexed
    bracketed = _bracket_alternative(lab, s, a)
    if bracketed is not None:
        return bracketed
    # "≤ 1.5 × ULN; for patients with Gilbert's syndrome ≤ 3 × ULN", "≤ 2.5 × ULN, or in
    # patients with liver metastases ≤ 5 × ULN": the alternative after its condition, the
    # clause ending with it
    c = _COND_THEN_ALT.match(s, end) if a.up or a.down else None
    if c is not None:
        b = _atom(lab, s, c.end())
        if b is not None and b.up == a.up and b.down == a.down and _ALT_ENDS.match(s, b.end):
            if not b.unit_written and b.relative is None:
                b.unit, b.unit_written = a.unit, a.unit_written
            if b.relative == a.relative and _combine_units(a, b, lab):
                return a, [(b, c.group("c").strip())], False, b.end
    # "30 kg/m² or greater, or 27 kg/m² or greater with a comorbidity": the alternative's
    # comparator after its value
    j = _OR_VALUE.match(s, end)
    if j and (a.up or a.down):
        b = _atom(lab, s, j.end())
        cond = _condition_after(s, b.end) if b is not None else None
        if b is not None and cond is not None and b.up == a.up and b.down == a.down and \
                b.relative == a.relative and _combine_units(a, b, lab):
            return a, [(b, cond[0])], False, cond[1]
    # conditional alternative: "≤ 2.5 × ULN (≤ 5 × ULN with liver metastases)"
    j = _JOIN_ALT.match(s, end)
    if j:
        b = _atom(lab, s, j.end())
        cond = _condition_after(s, b.end) if b is not None else None
        if b is not None and cond is not None and (b.up == a.up and b.down == a.down):
            if not b.unit_written and b.relative is None:
                b.unit, b.unit_written = a.unit, a.unit_written
            # (in units that cannot be compared the second is another measure, not the
            # first's alternative: "reversibility ≥ 12 % and ≥ 200 mL in FEV1")
            if b.relative == a.relative and _combine_units(a, b, lab):
                return a, [(b, cond[0])], False, cond[1]
        if b is not None and cond is None and (b.up == a.up and b.down == a.down) and \
                _OR_NEXT.match(s, end):
            if a.relative != b.relative or (a.unit_written and b.unit_written
                                            and a.unit != b.unit):
                # "≤ 1.5 mg/dL or ≤ 2 × ULN", "FEV1 ≥ 1.2 L or > 40% predicted": one limit in
                # two measures — either one met meets it
                return a, [(b, None)], True, b.end
            # "≤ 2.5 or ≤ 5" with nothing to tell them apart: leave it to a person
            return None
        if b is not None and cond is None and (b.up == a.up and b.down == a.down) and (
                re.search(r"\band\b|[,;]", j.group(0)) or s[:end].rstrip().endswith((",", ";"))):
            # "≤ 1.5 mg/dL and ≤ 1.5 × ULN": both limits hold, which one bound cannot state
            # (the first alone dropped the second); "≤ 2.5 × ULN; ≤ 5 × ULN": a second limit
            # without what it is for — text
            return None
    # "≤ 2.5 × ULN unless liver metastases are present, in which case ≤ 5 × ULN": the
    # alternative's condition written between the two bounds
    u = _UNLESS_WHICH.match(s, end) if (a.up or a.down) and \
        ("unless" in s or "except" in s) else None
    if u:
        if u.group("name") and not _names_lab(u.group("name"), lab):
            return None  # "… who can have direct bilirubin ≤ …": another measure's bound
        b = _atom(lab, s, u.end())
        if b is None or b.up != a.up or b.down != a.down:
            return None
        if not b.unit_written and b.relative is None:
            b.unit, b.unit_written = a.unit, a.unit_written
        if b.relative != a.relative or not _combine_units(a, b, lab):
            return None
        return a, [(b, u.group("c"))], False, b.end
    # "≤ 5 × ULN in case of bone metastases, otherwise ≤ 2.5 × ULN": the bound under a
    # condition first, everyone else's after "otherwise" — the second is the bound, the
    # first its conditional alternative
    if (a.up or a.down) and "otherwise" in s and \
            (w := _OTHERWISE.search(s, end)) is not None and \
            (cond := _condition_after(s[:w.start()], end)) and cond[1] == w.start() and \
            (o := _OTHERWISE.match(s, cond[1])) is not None:
        b = _atom(lab, s, o.end())
        if b is None or b.up != a.up or b.down != a.down or b.relative != a.relative or \
                not _combine_units(b, a, lab):
            return None
        return b, [(a, cond[0])], False, b.end
    if _ITEM_COUNT.match(s, a.end):
        # "HAM-D 17 item total score ≥ 20", "(17 items)": the number of the scale's items (its
        # version), not a score
        return None
    if _CHANGE.match(s, end):
        # "≥ 2 points above baseline", "23 weeks 6 days": a change or a compound value the
        # bound does not state alone
        return None
    if _SEX_COND.match(s, end):
        # "Hb < 11 g/dL in women and < 12 g/dL in men": a bound for each sex, alternatives
        # each restricted to its sex; a bound for one sex only stays text
        return _sex_alternatives(lab, s, a)
    return a, [], False, end


def _named_in_its_exception(canon: str, before: re.Match[str], m: re.Match[str],
                            by_name: dict[str, Lab]) -> bool:
    """Whether mention ``m`` names ``before``'s concept again inside the exception that
    follows it, in one clause ("≤ 1.5 × ULN, except … who can have total bilirubin")."""
    between = canon[before.end():m.start()]
    return by_name[name_of(before.group(0))] is by_name[name_of(m.group(0))] and \
        ";" not in between and _EXCEPT_IN.search(between) is not None


_EXCEPT_IN = re.compile(r"\b(?:except|unless)\b")
_OTHERWISE = re.compile(r"\s*+[,;]?\s*+(?:and\s++|or\s++)?(?:otherwise|else)\s*+[,:]?\s*+"
                        r"(?=[≤≥<>])")
#: the words before a measure named again in its exception ("…, who can have total bilirubin")
_WHO_HAVE = re.compile(r"\bwho\s++(?:can|may|must|should|shall|will)\s++(?:only\s++)?"
                       r"(?:have|be)\s++(?:(?:a|an|the)\s++)?$")
_UNLESS_WHICH = re.compile(
    # "unless X, in which case ≤ 5", "(unless X, then ≤ 3)", "unless X (≤ 3 × ULN)", "except
    # for patients with X (≤ 3 mg/dL)", "(except X: ≤ 3 mg/dL)", "(except X, > 3 × ULN)";
    # "except subjects with Gilbert's syndrome, who can have total bilirubin < 3.0 mg/dL", the
    # measure named again (``name``, which must be the bound's own)
    r"\s*+,?\s*+\(?\s*+(?P<c>(?:unless|except(?:\s++(?:for|in|if))?)\s++[^()≤≥<>:;,]{3,80}?"
    r"(?:\s*+,?\s*+(?:in which case|in that case|then)\b|"
    r"\s*+,?\s*+who\s++(?:can|may|must|should|shall|will)\s++(?:only\s++)?(?:have|be)\s++"
    r"(?:(?:a|an|the)\s++)?(?P<name>[a-z][^≤≥<>,;()]{0,40}?)(?=\s*+[≤≥<>])|"
    r"(?=\s*+[(:,])))\s*+[(:,]?\s*+"
    r"(?:(?:it|they|the value|values?|levels?)\s++)?(?:(?:must|should|shall|can|may)\s++be\s++|"
    r"(?:is|are)\s++)?(?=[≤≥<>])")
# "(in patients with liver metastases: ≤ 5 × ULN)": the condition before the bound
_COND_FIRST = re.compile(_OLD + r"\s*\(\s*(?P<c>(?:if|in|for|with|when|among|where)\b"
                         r"[^()≤≥<>:;,]{3,80}?)"
                         r"\s*(?:[:,]\s*(?=[≤≥<>\d])|(?=[≤≥<>]))")
_CLOSE = re.compile(r"\s*\)")
_BARE_OPEN = re.compile(_OLD + r"\s*\(\s*(?:or\s+)?(?=\d)")


def _bracket_alternative(lab: Lab, s: str, a: Bound) -> tuple[
        Bound, list[tuple[Bound, str | None]], bool, int] | None:
    """A conditional alternative in brackets written with its condition first, or without
    its comparator (the bound's own): "≤ 2.5 × ULN (in patients with liver metastases: ≤ 5 ×
    ULN)", "≥ 50,000/µL (if marrow involvement, ≥ 30,000/µL)", "≤ 2.5 × ULN (5 × ULN if liver
    metastases)"."""
    if not (a.up or a.down):
        return None
    m = _COND_FIRST.match(s, a.end)
    if m is not None:
        b = _atom(lab, s, m.end()) or _bare(lab, s, m.end(), a)
        if b is None:
            return None
        cond = m.group("c").strip()
        close = _CLOSE.match(s, b.end - 1 if s[b.end - 1] == ")" else b.end)  # unit took it
    else:
        m = _BARE_OPEN.match(s, a.end)
        b = _bare(lab, s, m.end(), a) if m is not None else None
        if b is not None and (post := (_UP_POST if a.up else _DOWN_POST).match(s, b.end)):
            # "18 years or older (20 years or older in Japan)": the direction in words, the
            # bound's own
            b.end = post.end()
        after = _condition_after(s, b.end) if b is not None else None
        if after is None or not s.startswith(")", after[1] - 1):
            return None
        cond, close = after[0], _CLOSE.match(s, after[1] - 1)
    if close is None or b.up != a.up or b.down != a.down:
        return None
    if not b.unit_written and b.relative is None:
        b.unit, b.unit_written = a.unit, a.unit_written
    if b.relative != a.relative or (b.unit != a.unit and not _combine_units(a, b, lab)):
        return None
    return a, [(b, cond)], False, close.end()


def _bare(lab: Lab, s: str, pos: int, a: Bound) -> Bound | None:
    """A value without a comparator, taking the direction of bound ``a``."""
    v = _value(lab, s, pos)
    if v is None:
        return None
    b = Bound(unit=v.unit, relative=v.relative, unit_written=v.written, start=pos, end=v.end)
    if a.up:
        b.low, b.low_inclusive = v.value, a.low_inclusive
    else:
        b.high, b.high_inclusive = v.value, a.high_inclusive
    return b


_ITEM_COUNT = re.compile(r"\s*+-?\s*+items?\b")
_CHANGE = re.compile(r"\s*(?:points?\s+)?(?:above|below|from|over|under|increase|decrease|"
                     r"reduction|rise|change|drop|improvement)\s+(?:from\s+|in\s+|over\s+)?"
                     r"(?:the\s+|their\s+|its\s+)?(?:baseline|normal|pre|nadir|lowest|"
                     r"prior|previous)|"
                     # "creatinine ≥ 0.3 mg/dL increase", "≥ 20 % decline": a change
                     r"\s*(?:increase|decrease|reduction|rise|drop|decline|fall|improvement|"
                     r"worsening|change|loss|gain)s?\b|"
                     r"\s*(?:and\s+)?\d+\s*(?:days?|d)\b|"
                     # "≤ 12 cm from the anal verge": a distance from something, not a size
                     r"\s*(?:away\s+)?from\b|\s*(?:distal|proximal|lateral|medial)\s+to\b|"
                     # "a wheal ≥ 3 mm greater than the negative control": a difference from a
                     # control, not a size
                     r"\s*(?:[<>]|above|below|over|under|larger than|smaller than|more than|"
                     r"less than)\s*(?:that of\s+)?(?:the\s+|a\s+)?(?:(?:negative|positive|saline|"
                     r"histamine|diluent)\s+)?controls?\b")
_SEX_COND = re.compile(r"\s*+(?:[\[(]\s*+(?:in\s++|for\s++)?|"
                       r",?\s*+(?:in|for|among)\s++(?:the\s++)?)"
                       r"(?P<sex>men|women|males?|females?|boys|girls)\b(?:\s*(?:patients|"
                       r"subjects|participants))?\s*[\])]?")
_SEX_OF = {"men": "male", "male": "male", "males": "male", "boys": "male", "women": "female",
           "female": "female", "females": "female", "girls": "female"}
_SEX_JOINT = re.compile(r"\s*+(?:[,;/]\s*+)?(?:(?:and|or|and/or|but)\s++)?(?:(?:and|or)\s++)?")


def _sex_alternatives(lab: Lab, s: str, a: Bound) -> tuple[
        Bound, list[tuple[Bound, str | None]], bool, int] | None:
    """"< 11 g/dL in women and < 12 g/dL in men", "> 450 ms (men) or > 470 ms (women)",
    "≥ 2 for male and ≥ 3 for female": one bound for each sex, in the same direction."""
    sx = _SEX_COND.match(s, a.end)
    if sx is None:
        return None
    j = _SEX_JOINT.match(s, sx.end())
    b = _atom(lab, s, j.end()) if j else None
    sx2 = _SEX_COND.match(s, b.end) if b is not None else None
    if b is None or sx2 is None:
        return None
    sex_a, sex_b = _SEX_OF[sx.group("sex")], _SEX_OF[sx2.group("sex")]
    if sex_a == sex_b or b.up != a.up or b.down != a.down or not _combine_units(a, b, lab):
        return None
    if _DIGIT.match(s, _SPACES.match(s, sx2.end()).end()):  # type: ignore[union-attr]
        return None
    a.sex, b.sex = sex_a, sex_b
    return a, [(b, None)], False, sx2.end()


_SEX_WORD = r"(?:f|m|females?|males?|women|men|w)"
_SEMI_SEXES = re.compile(rf";(?=\s*{_SEX_WORD}\s*/\s*{_SEX_WORD}\b\s*(?:$|[;.,]))")
_PAIR_SEXES = re.compile(rf"\s*+[;,]?\s*+[(\[]?\s*+(?:in\s++)?(?P<x>{_SEX_WORD})\s*+/\s*+"
                         rf"(?P<y>{_SEX_WORD})\b\s*[)\]]?")
_PAIR_SEX_OF = {"f": "female", "w": "female", "m": "male", **{k: v for k, v in (
    ("female", "female"), ("females", "female"), ("women", "female"), ("male", "male"),
    ("males", "male"), ("men", "male"))}}


def _sex_pair(lab: Lab, s: str, pos: int) -> tuple[
        Bound, list[tuple[Bound, str | None]], bool, int] | None:
    """"HDL-C < 50/40 mg/dL; F/M", "waist > 88/102 cm (women/men)": one comparator, a value
    for each sex in the order the sex pair after it gives; without that pair, not read."""
    m = _PAIR.match(s, pos)
    if m is None or m.group("c") is None:
        return None
    unit, end, ok = _unit_at(lab, s, m.end())
    if not ok:
        return None
    sx = _PAIR_SEXES.match(s, end)
    if sx is None:
        return None
    x, y = _PAIR_SEX_OF[sx.group("x")], _PAIR_SEX_OF[sx.group("y")]
    if x == y:
        return None
    sense, incl = _CMPS[m.group("c")]
    bounds = []
    for v, sex in ((number(m.group("a")), x), (number(m.group("b")), y)):
        b = Bound(unit=unit, unit_written=unit is not None, start=m.start("c"), end=sx.end(),
                  sex=sex)
        if sense == "<=":
            b.high, b.high_inclusive = v, incl
        else:
            b.low, b.low_inclusive = v, incl
        bounds.append(b)
    return bounds[0], [(bounds[1], None)], False, sx.end()


_SEX_OPEN = re.compile(r"\s*+[\[(]\s*+(?:(?:in|for)\s++)?(?P<sex>men|women|males?|females?)"
                       r"\s*[:,]?\s*")
_SEX_CLOSE = re.compile(r"\s*+(?:(?:in|for)\s++(?:the\s++)?)?(?P<sex>men|women|males?|females?)?"
                        r"\s*+[\])]")
_OTHER_SEX = {"male": "female", "female": "male"}


def _sex_in_brackets(lab: Lab, s: str, a: Bound) -> tuple[
        Bound, list[tuple[Bound, str | None]], bool, int] | None:
    """"≥ 13 g/dL (≥ 12 g/dL for women)", "≥ 13 g/dL (women: ≥ 12)", "≥ 13 (12 in women)": the
    bracket holds the one sex's bound, the bound before it the other sex's. The bracket must
    hold nothing else, and its bound go the same way (a bare value takes the first's sense)."""
    o = _SEX_OPEN.match(s, a.end)
    start = o.end() if o else _SPACES.match(s, a.end).end()  # type: ignore[union-attr]
    if not o and (start >= len(s) or s[start] not in "(["):
        return None
    if not o:
        start += 1
    b = _atom(lab, s, start)
    if b is None:
        v = _value(lab, s, start, lab.kind == "score")
        if v is None or not (v.written or not a.unit_written):
            return None
        b = Bound(unit=v.unit, relative=v.relative, unit_written=v.written, start=start,
                  end=v.end)
        if a.up:
            b.low, b.low_inclusive = v.value, a.low_inclusive
        else:
            b.high, b.high_inclusive = v.value, a.high_inclusive
    if b.up != a.up or b.down != a.down:
        return None
    c = _SEX_CLOSE.match(s, b.end)
    if c is None and o is not None and s[b.start:b.end].rstrip(" ,;").endswith((")", "]")):
        end, said = b.end, o  # the unit reader took the closing bracket
    elif c is None or (o is None) == (c.group("sex") is None):
        return None  # the sex said once, either before or after the bound
    else:
        end, said = c.end(), o or c
    sex = _SEX_OF[said.group("sex")]
    if not _combine_units(a, b, lab):
        return None
    a.sex, b.sex = _OTHER_SEX[sex], sex
    return a, [(b, None)], False, end


_COMPARATIVE = re.compile(r"(?:than|equal to|or equal|worse|better|least|most|beyond|"
                          r"within)\s*$")
_FOR_SCORE = re.compile(r"\s+for\s+(?:[a-z0-9/'-]+\s+){0,5}?(?:total\s+)?scores?\b")
_OTHER_SUBJECT = re.compile(r"\b(?:maternal|paternal|donor'?s?|fetal|foetal|ideal|dry|graft|"
                            r"mother'?s?|father'?s?|partner'?s?|spouse'?s?|parental|"
                            r"caregiver'?s?|carer'?s?|sibling'?s?|informant'?s?|"
                            # "infants born to mothers with HbA1c > 6.5 %", "caregiver with
                            # MMSE ≥ 24" (of a dementia trial: not the patient's score)
                            r"(?:mothers?|fathers?|parents?|partners?|spouses?|donors?|"
                            r"caregivers?|carers?|siblings?|informants?|(?:household\s+)?"
                            r"contacts?)\s+"
                            r"(?:with|who have|whose|having)(?:\s+an?)?|"
                            # "itch NRS", "fatigue VAS": another symptom's rating than the
                            # scale's usual one (pain)
                            r"(?:itch|itching|pruritus|nausea|fatigue|dyspn(?:o)?ea|"
                            r"breathlessness|anxiety|craving|sleepiness)"
                            r"(?:\s+(?:intensity|severity))?|"
                            # "2h postprandial blood glucose", "1-hour glucose": a value at a
                            # time after a load, another concept than the name's own (the
                            # lexicon names those it has, "2-hour glucose")
                            r"\d+\s*-?\s*(?:h|hr|hrs|hours?)\s*-?\s*(?:post\s*-?\s*(?:prandial|load|"
                            r"meal|dose|challenge|ogtt)\s+)?|"
                            # "vasopressors to maintain MAP ≥ 65 mmHg": a treatment's target
                            r"to (?:maintain|keep|achieve|reach|obtain)(?:\s+(?:an?|the))?|"
                            # "daytime ambulatory SBP": a mean over a monitored period, not a
                            # reading
                            r"(?:ambulatory|daytime|day-time|nighttime|night-time|nocturnal)"
                            r"(?:\s+(?:mean|average|ambulatory))?|"
                            # "drop in SBP ≥ 20 mmHg": a change, not a level
                            r"(?:drops?|falls?|decreases?|declines?|reductions?|increases?|rises?|"
                            r"changes?|variations?|fluctuations?)\s+(?:in|of)(?:\s+the)?)\s*-?\s*$")
# "target weight", "target INR": a goal, not the patient's value — but a RECIST "target
# lesion" is the patient's lesion
_TARGET = re.compile(r"\btarget\s*-?\s*$")
_NEGATED = re.compile(r"\b(?:not|no|non|without)\s*-?\s*$")
# "non-HDL cholesterol", "non-fasting glucose": another concept than the name after it;
# "CD8+ T lymphocyte count", "CD34+ cells": a marker before a cell count names a subset of
# the cells, not all of them
_NON = re.compile(r"\bnon\s*-?\s*(?:[a-z]+[\s-]+)?$|\bcd\d+[+-]?\s*(?:[tb]\s*-?\s*)?$")
_MEASURED = frozenset(["lab", "vital", "physiology"])
_NOT_LEVEL_AFTER = re.compile(
    r"[\s-]*(?:loss|lost|gain|gained|change|changes|drop|decrease|decline|increase|rise|fall|"
    r"reduction|fluctuations?|variation|variability|difference|improvement|deterioration|"
    r"dose|doses|infusion|supplement|supplementation|intake|diet|load|excess|limit|"
    r"target|goal|per)\b")
_QUALIFIED = re.compile(r"\s*(?:expressing|positive|negative|with|that|which|of|in\s+the\s+"
                        r"(?:blood|urine))\b")
# (the number starts a token: in "18.5 kg/m2 ≤ BMI" it is not the "2" of the unit; the unit may
# hold digits and superscripts after its first letter)
_PRE_CMP = re.compile(rf"(?:(?<![\w./^²³])(?P<a>{NUM})\s*(?P<u>[a-zµ%][a-zµ%/\[\]²³\d^]*\s*)?"
                      rf"(?:old\s*)?)?(?P<c>[≤≥<>])\s*$")
_OPENS = re.compile(r"(?:^|[,;(]|\band\b|\bwith\b)\s*$")
_PAIR = re.compile(rf"\s*(?:(?P<c>[≤≥<>])\s*)?(?P<a>{NUM})\s*/\s*(?P<b>{NUM})(?![\d])")


def _pair(lab: Lab, s: str, pos: int) -> list[tuple[str, Bound]] | None:
    """"> 140/90 mmHg", "160/110 mmHg or more": one comparator, two numbers."""
    m = _PAIR.match(s, pos)
    if not m:
        return None
    unit, end, ok = _unit_at(lab, s, m.end())
    if not ok:
        return None
    if m.group("c"):
        sense, incl = _CMPS[m.group("c")]
    elif (post := _UP_POST.match(s, end)) is not None:
        sense, incl, end = ">=", True, post.end()
    elif (post := _DOWN_POST.match(s, end)) is not None:
        sense, incl, end = "<=", True, post.end()
    else:
        return None
    out = []
    for key, v in zip(lab.pair, (m.group("a"), m.group("b")), strict=True):
        b = Bound(unit=unit or lab.unit, unit_written=unit is not None, start=m.start(), end=end)
        if sense == "<=":
            b.high, b.high_inclusive = number(v), incl
        else:
            b.low, b.low_inclusive = number(v), incl
        out.append((key, b))
    return out


_BEFORE_NAME = re.compile(r"\s*(?:of\s+|'\s*|’\s*)?(?:the\s+)?$")


_BEFORE_START = re.compile(r"(?<![\w.,])(?:[≤≥<>]|between\b|from\b|\d)")
_SCORE_START = re.compile(r"(?<![\w.,/])(?:[≤≥<>]|between\b|-?\d)")


def _bounds_before(lab: Lab, canon: str, start: int, floor: int) -> tuple[
        Bound, list[tuple[Bound, str | None]], bool, int] | None:
    """Bounds written before a name that may follow them ("≥ 37 weeks of gestation")."""
    lo = max(floor, start - 40)
    head = canon[:start]
    for c in _BEFORE_START.finditer(canon, lo, start):
        found = _bounds(lab, head, c.start())
        if found is not None and found[0].unit_written and _BEFORE_NAME.match(
                head, found[3]) and not found[1]:
            return found
    return None


_ON_SCALE = re.compile(r"(?:\s*/\s*\d+)?\s*(?:points?\s+)?on\s+(?:the\s+|a\s+|an\s+)?"
                       r"(?:\d+\s*-?\s*points?\s+|\d+\s*(?:-|to)\s*\d+\s+)?$")
_CHANGE_BEFORE = re.compile(r"(?:decrease|increase|improvement|improve|reduction|reduce|change|"
                            r"drop|worsening|worsen|rise|difference|fall|gain|loss)\w*\s+"
                            r"(?:of\s+|by\s+|in\s+)?[^.;]{0,12}$")


def _score_before(lab: Lab, canon: str, start: int, floor: int) -> tuple[
        Bound, list[tuple[Bound, str | None]], bool, int] | None:
    """A score stated before the scale it is on: "≥ 5 on the 10-point numerical rating scale",
    "a score of 3 or 4 on the …", "2/10 on the numeric pain rating scale" — unless the number
    is a change on the scale ("an improvement of ≥ 2 points on …")."""
    lo = max(floor, start - 60)
    head = canon[:start]
    taken = lo
    for c in _SCORE_START.finditer(canon, lo, start):
        p = c.start()
        if p < taken:  # inside a bound already read
            continue
        found = _bounds(lab, head, p)
        if found is None:
            continue
        taken = found[3]
        if _ON_SCALE.match(head, found[3]):
            # either/or bounds are one reading; a conditional alternative is not read here
            if (found[1] and not found[2]) or _CHANGE_BEFORE.search(head, max(0, p - 30), p):
                return None
            return found
    return None


_STOP = re.compile(r"[;]|\.(?:\s|$)(?<!\d\.)")


def bracketed_semicolons(s: str) -> frozenset[int]:
    """Positions of the ";" inside a closed bracket: "(< 26 kg in men; < 18 kg in women)"
    separates two sides of one statement, not two clauses."""
    if ";" not in s or ("(" not in s and "[" not in s):
        return frozenset()
    return _bracketed(s)


_BRACKET_OR_SEMI = re.compile(r"[()\[\];]")


@lru_cache(maxsize=4096)
def _bracketed(s: str) -> frozenset[int]:
    out: set[int] = set()
    opened: list[list[int]] = []
    for m in _BRACKET_OR_SEMI.finditer(s):
        ch = m.group(0)
        if ch in "([":
            opened.append([])
        elif ch in ")]":
            if opened:
                out.update(opened.pop())
        elif opened:
            opened[-1].append(m.start())
    return frozenset(out)
_BOUND_AHEAD = re.compile(r"[≤≥<>]|\d")
# after the joint, the qualifiers the first name had may be repeated ("serum AST and serum ALT",
# "PPO FEV1 and PPO DLCO")
# (and the French and German "et", "ou", "und", "oder": "ASAT et ALAT ≤ 2,5 × LSN")
_JOINT = re.compile(r"[\s,]*(?P<c>and/or|and|or|&|/|,|et|und|ou|oder|nor)?[\s,]*"
                    r"(?:(?:the|serum|plasma|blood|total|fasting|absolute|corrected|estimated|ppo|"
                    r"predicted|postoperative|post-bronchodilator|baseline)\s+)*")


#: joints read as another: the French and German ones, and "nor" — "neither ALT nor AST > 2 ×
#: ULN" is each of the two denied ("and", negated by "neither")
_JOINT_WORDS = {"et": "and", "und": "and", "ou": "or", "oder": "or", "nor": "and"}
_RATIO_WORD = re.compile(r"\bratio\b")
_JOINT_WORD = re.compile(r"\b(?:and|or|and/or)\b|[,;/&]")


def _ratio_at(pending: list[tuple[int, Lab, str]], lab: Lab) -> tuple[int, Lab] | None:
    """(where it starts, the ratio) when the names before ``lab`` are a ratio's numerator then
    "/" (each name perhaps restated: "FEV1 (forced expiratory volume …) / FVC (forced vital
    capacity)"), or the ratio's own name with ``lab`` one of its parts, else None."""
    last = pending[-1][1]
    if any(lab.key in pair and ratio.key == last.key for pair, ratio in _ratio_pairs().items()):
        # "FEV1/FVC (forced vital capacity) < 70 %": one part of the ratio named again
        return pending[-1][0], last
    i = len(pending)
    while i and pending[i - 1][1].key == lab.key:
        i -= 1  # the denominator's own name, restated
    if not i or pending[i - 1][2] != "/":
        return None
    top = pending[i - 1][1]
    ratio = _ratio_pairs().get((top.key, lab.key))
    if ratio is None:
        return None
    j = i - 1
    while j and pending[j - 1][1].key == top.key:
        j -= 1
    return pending[j][0], ratio


@cache
def _ratio_pairs() -> dict[tuple[str, str], Lab]:
    """(numerator key, denominator key) → the ratio concept whose name joins a name of each by
    "/" ("fev1/fvc", "pao2/fio2"): data of the lexicon, no list of ratios here."""
    _, by_name = _names()
    pairs: dict[tuple[str, str], Lab] = {}
    for lab in tables().labs:
        if lab.pair:
            continue  # "SBP/DBP > 140/90": a bound on each, read as a pair
        for n in lab.names:
            top, _, bottom = n.partition("/")
            a, b = by_name.get(top.strip()), by_name.get(bottom.strip())
            if a is not None and b is not None and a.key != b.key and lab.key not in (a.key,
                                                                                   b.key):
                pairs.setdefault((a.key, b.key), lab)
    return pairs


def _is_ratio(lab: Lab) -> bool:
    """Whether a concept is itself a ratio ("PaO2/FiO2", "albumin/creatinine ratio", INR)."""
    return lab.key in _ratio_keys()


@cache
def _ratio_keys() -> frozenset[str]:
    return frozenset(lab.key for lab in tables().labs
                     if any("ratio" in n or "/" in n or ":" in n for n in lab.names)
                     or lab.unit in ("1", "{INR}"))


_UNIT_BEFORE = re.compile(r"\d\s*[a-zµ]{1,5}/$")


def readings(canon: str) -> list[Reading]:
    """Every concept bound the canonical text states, in reading order (before any sense- or
    condition-dependent filtering)."""
    pat, by_name = _names()
    # "28 mm/hr" is a unit, not a mention of heart rate (HR)
    mentions = list(pat.finditer(canon))
    if "/" in canon:
        mentions = [m for m in mentions
                    if not (m.start() and canon[m.start() - 1] == "/" and
                            _UNIT_BEFORE.search(canon, max(0, m.start() - 12), m.start()))]
    if " who " in canon and ("except" in canon or "unless" in canon):
        # "… except subjects with Gilbert's syndrome, who can have total bilirubin < 3 mg/dL":
        # the name said again inside its own exception is the first statement's
        mentions = [m for i, m in enumerate(mentions)
                    if not (i and _WHO_HAVE.search(canon, max(0, m.start() - 40), m.start())
                            and _named_in_its_exception(canon, mentions[i - 1], m, by_name))]
    # "HDL-C < 50/40 mg/dL; F/M": the sexes the pair is in, not a new statement
    bracketed = bracketed_semicolons(canon) | {m.start() for m in _SEMI_SEXES.finditer(canon)}
    out: list[Reading] = []
    pending: list[tuple[int, Lab, str]] = []
    modified = False
    for i, m in enumerate(mentions):
        lab = by_name[name_of(m.group(0))]
        nxt = mentions[i + 1].start() if i + 1 < len(mentions) else len(canon)
        if modified:
            # "VAS pain score ≥ 4": one concept's name qualifies the next one's, one space
            # between them (brackets blanked leave more) — one noun phrase naming neither
            # for sure, not a list of two
            modified = bool(pending := [])
            continue
        if _NON.search(canon, max(0, m.start() - 16), m.start()) or \
                _OTHER_SUBJECT.search(canon, max(0, m.start() - 30), m.start()) or (
                    lab.key != "lesion-size" and _TARGET.search(canon, max(0, m.start() - 8),
                                                                m.start())):
            # "non-HDL cholesterol": another concept ("no NYHA III", "not ASA I" are read,
            # and marked negated by the structuring step); "fetal weight", "maternal
            # haemoglobin", "ideal body weight": not the participant's measurement
            pending = []
            continue
        # (a ";" before the bound's own alternative does not end its statement: "≤ 1.5 ×
        # ULN; ≤ 3 × ULN for patients with Gilbert's syndrome")
        stop = next((x for x in _STOP.finditer(canon, m.end(), nxt)
                     if x.start() not in bracketed and
                     not (x.group(0) == ";" and _ALT_CLAUSE.match(canon, x.end()))), None)
        limit = stop.start() if stop else nxt
        seg = canon[:limit]
        p = _skip_gap(seg, m.end())
        if 0 < p < len(seg) and seg[p - 1] == "-" and seg[p].isdigit() and \
                any(lo < 0 for _, lo, _ in lab.bare):
            p -= 1  # "RASS -2 to +1": on a scale with negative values the "-" is a sign
        if (o := _OUTSIDE.match(seg, p)) is not None:
            # "hematocrit outside the normal range (35-50 %)": a range, and the value is not
            # in it; anything else after "outside" is not read
            found = _bounds(lab, seg, _skip_gap(seg, o.end()))
            if found is not None and not found[1] and not found[2] and \
                    found[0].low is not None and found[0].high is not None:
                found[0].outside = True
                out.append(Reading(m.start(), lab, found[0], [], False, found[3]))
            pending = []
            continue
        if lab.kind == "score" and p == _GAP.match(seg, m.end()).end():  # type: ignore[union-attr]
            # "PHQ-9 for depression score ≥ 15": what the scale screens for, then its score
            fs = _FOR_SCORE.match(seg, m.end())
            if fs:
                p = _skip_gap(seg, fs.end())
        if lab.kind == "score" and (form := _SCORE_FORM.match(seg, p)) is not None and \
                (q := _skip_gap(seg, form.end())) < len(seg) and seg[q] in "≤≥<>":
            # "HAM-D 17 score ≥ 18", "HAM-A 14 ≥ 20": the number of items names the form of
            # the scale; the bound is the comparison after it
            p = q
        found = _grade_bounds(lab, seg, m.end()) if lab.grades else None
        if found is None:
            found = _bounds(lab, seg, p) if p < limit else None
        if found is not None and nxt < len(canon) and not canon[found[3]:nxt].strip() and \
                _JOINT_WORD.search(canon, m.end(), found[0].start):
            # "≥ 140 mmHg SBP and/or ≥ 90 mmHg DBP": past the joint, the bound is the next
            # name's, written before it — not this name's
            found = None
        if lab.pair:
            # "blood pressure > 140/90 mmHg": a bound on each of two concepts
            pairs = _pair(lab, seg, p) if p < limit else None
            if pairs:
                out += [Reading(m.start(), tables().lab(key), b, [], False, b.end)
                        for key, b in pairs]
            pending = []
            continue
        pre = _PRE_CMP.search(canon, max(0, m.start() - 30), m.start())
        if found is None and pre and p < limit:
            # "minimum age: 18 years", "greater than NYHA 2": the comparator before the name
            v = _value(lab, seg, p, lab.kind == "score")
            if v is not None and (v.written or lab.kind in ("age", "score")):
                sense, incl = _CMPS[pre.group("c")]
                b = Bound(unit=v.unit, relative=v.relative, unit_written=v.written,
                          start=pre.start(), end=v.end)
                if sense == "<=":
                    b.high, b.high_inclusive = v.value, incl
                else:
                    b.low, b.low_inclusive = v.value, incl
                found = (b, [], False, v.end)
        if found is not None and found[0].low is not None and found[0].low == found[0].high \
                and not pre and _COMPARATIVE.search(canon, max(0, m.start() - 25), m.start()):
            # "worse than NYHA 3": a comparison the grammar does not read, not an exact value
            found = None
        elif found is not None and pre and not pre.group("a") and not found[1] and \
                found[0].low is not None and found[0].low == found[0].high:
            # "heart failure greater than NYHA 2"
            sense, incl = _CMPS[pre.group("c")]
            if sense == "<=":
                found[0].low, found[0].high_inclusive = None, incl
            else:
                found[0].high, found[0].low_inclusive = None, incl
        elif found is not None and pre and pre.group("a") and found[0].down and not found[1]:
            # "18 < age < 80": a lower side written before the name
            sense, incl = _CMPS[pre.group("c")]
            pre_unit = pre.group("u") and lab.unit_for(pre.group("u").strip())
            # with its unit ("145 mmHg ≤ msSBP"), only where the number opens a statement: in
            # "minimum age: 18 years maximum age: 99" the 18 is the previous statement's
            if sense == "<=" and found[0].high is not None and \
                    (not pre.group("u") or (pre_unit and pre_unit.ucum == found[0].unit
                                            and _OPENS.search(canon, 0, pre.start()))) and \
                    number(pre.group("a")) < found[0].high:
                found[0].low, found[0].low_inclusive = number(pre.group("a")), incl
        if found is None and lab.postfix and not _QUALIFIED.match(canon, m.end()):
            found = _bounds_before(lab, canon, m.start(), out[-1].end if out else 0)
        elif found is None and lab.kind in _MEASURED and not _QUALIFIED.match(canon, m.end()) \
                and not _NOT_LEVEL_AFTER.match(canon, m.end()):
            # "≥ 140 mmHg SBP", "> 5 ppm carbon monoxide": a comparator and a unit the concept
            # has, right before its name, are its bound whatever the concept ("≥ 5 kg weight
            # loss" is a change, not a level: not read)
            before = _bounds_before(lab, canon, m.start(), out[-1].end if out else 0)
            if before is not None and canon[before[0].start] in "≤≥<>":
                found = before
        if found is None and lab.kind == "score":
            found = _score_before(lab, canon, m.start(), out[-1].end if out else 0)
        if found is not None and pending and (ratio_at := _ratio_at(pending, lab)) is not None:
            # "FEV1 (forced expiratory volume in 1 second) / FVC < 70 %": the ratio the lexicon
            # names "FEV1/FVC", its names apart — its bound, not a bound on each part
            start, ratio = ratio_at
            found = _bounds(ratio, seg, p) if p < limit else None
            if found is not None:
                out.append(Reading(start, ratio, *found))
            pending = []
            continue
        if found is not None and any(j == "/" for _, _, j in pending) and \
                _RATIO_WORD.search(canon, m.end(), found[0].start):
            # "FEV1/FVC ratio < 0.7": a ratio of the two, not a bound on each
            pending = []
            continue
        if found is not None and not _is_ratio(lab) and \
                _RATIO_WORD.search(canon, m.end(), found[0].start):
            # "FEV1/forced vital capacity (FVC) ratio < 70%": the bound is on a ratio the name
            # is one part of, not on the name
            pending = []
            continue
        if found is None:
            joint = _JOINT.fullmatch(canon, m.end(), nxt)
            if joint and joint.group(0) == " " and i + 1 < len(mentions) and \
                    by_name[name_of(mentions[i + 1].group(0))].key != lab.key:
                modified = True
            elif joint and lab.kind != "age" and not (
                    joint.group("c") == "nor" and "neither" not in canon[:m.start()]):
                # ("nor" joins only after "neither", which denies both names)
                c = (joint.group("c") or ",").strip()
                pending.append((m.start(), lab, _JOINT_WORDS.get(c, c)))
            else:
                pending = []
            continue
        bound, alts, either, end = found
        if alts and alts[-1][1] and not stop and end == nxt < len(canon):
            # the condition of an alternative ran into the next name ("≤ 3 if due to bone
            # pain"): it goes on to the end of its clause
            clause = _STOP.search(canon, nxt)
            clause_end = clause.start() if clause else len(canon)
            # … unless a bound follows the name: then it begins a statement of its own
            longer = None if _BOUND_AHEAD.search(canon, nxt, clause_end) else \
                _condition_after(canon[:clause_end], alts[-1][0].end)
            if longer is not None:
                alts = [*alts[:-1], (alts[-1][0], longer[0])]
                end = longer[1]
        if lab.kind != "age" and (at := _AT_TIME_AFTER.match(canon, end)) is not None:
            # "Apgar score ≥ 7 at 5 minutes": the time is part of the name ("Apgar score at 5
            # minutes", the 5-minute score); a time no name has ("glucose ≥ 140 mg/dL at 1
            # hour", "Apgar ≥ 7 at 1 and 5 minutes") is another measurement than the current
            # one: not read
            when = " ".join(at.group("t").split())
            timed = next((by_name[f"{n} {when}"] for n in (name_of(m.group(0)), *lab.names)
                          if f"{n} {when}" in by_name), None)
            if when == "at birth" and timed is None and not pending:
                pass  # "gestational age ≥ 35 weeks at birth": when the concept is measured
            elif timed is None or pending:
                pending = []
                continue
            else:
                lab = timed  # ("infants weighing < 1500 g at birth": the weight at birth)
        shared = [(pos, other, joint, _shared_bound(other, lab, canon, bound, end))
                  for pos, other, joint in pending]
        if any(b is None for *_, b in shared):
            pending = []  # ("creatinine clearance/GFR ≥ 60 mL/min/1.73 m²": a unit one of
            continue  # the names cannot be in — the shared bound is not stated for both)
        out += [Reading(pos, other, b, alts, either, end, joint)
                for pos, other, joint, b in shared]
        pending = []
        out.append(Reading(m.start(), lab, bound, alts, either, end))
    return _named_bracket_alternatives(canon, out)


def _shared_bound(other: Lab, lab: Lab, canon: str, bound: Bound, end: int) -> Bound | None:
    """The bound a name shares with the name after it ("creatinine clearance/GFR ≥ 60
    mL/min"), its written unit read in the name's own table: "mL/min" is a clearance's
    mL/min and an eGFR's mL/min/1.73 m² (before, the clearance took the eGFR's). None when
    the name cannot read the bound as written."""
    if other is lab or not bound.unit_written or bound.relative:
        return bound
    again = _bounds(other, canon[:end], bound.start)
    if again is None or again[1] or again[3] != end:
        return None
    b = again[0]
    return b if (b.low, b.high) == (bound.low, bound.high) else None


#: a time of measurement after a bound ("… at 5 minutes", "…, at 1 and 5 min", "at 24 hours",
#: "at day 1")
_AT_TIME_AFTER = re.compile(r"\s*+,?\s*+(?P<t>at\s++birth\b|at\s++(?:the\s++)?\d[\d\s,.and-]*?\s*+"
                            r"(?:minutes?|mins?|hours?|hrs?|h|days?|weeks?|months?|years?)\b|"
                            r"at\s++(?:day|week|month)\s*+\d+)")


# "(in patients with Gilbert's syndrome, total bilirubin ≤ 3 × ULN)": the condition, then the
# concept named again before its bound (each name is read up to the next, so the two bounds
# are two readings until joined here)
_COND_FIRST_NAMED = re.compile(r"\s*\(\s*(?P<c>(?:if|in|for|with|when|among|where)\b"
                               r"[^()≤≥<>:;,]{3,80}?)\s*[:,]\s*(?:the\s+|serum\s+)*$")


def _named_bracket_alternatives(canon: str, rs: list[Reading]) -> list[Reading]:
    """Join a reading whose bracket restates its concept under a condition ("total bilirubin
    ≤ 1.5 × ULN (in patients with Gilbert's syndrome, total bilirubin ≤ 3 × ULN)") into one
    reading with a conditional alternative."""
    if len(rs) < 2 or "(" not in canon:
        return rs
    out: list[Reading] = []
    for r in rs:
        prev = out[-1] if out else None
        if prev is not None and prev.lab is r.lab and not prev.alternatives and \
                not r.alternatives and prev.bound.up == r.bound.up and \
                prev.bound.down == r.bound.down and (prev.bound.up or prev.bound.down) and \
                prev.bound.relative == r.bound.relative and \
                (prev.bound.unit == r.bound.unit or not r.bound.unit_written) and \
                (m := _COND_FIRST_NAMED.match(canon, prev.end, r.pos)) is not None and \
                (close := _CLOSE.match(canon, r.end)) is not None:
            prev.alternatives = [(r.bound, m.group("c").strip())]
            prev.end = close.end()
            continue
        out.append(r)
    return out


# --- measurements the lexicon does not have ------------------------------------------------
#
# "Pupil > 4 mm", "Cobb angle between 10 and 40 degrees": a bound with a written unit, on a
# name the lexicon does not know. The number, comparator and unit are read by the same atoms
# as every concept's; the name is kept as written, uncoded (a matcher cannot look it up, a
# reviewer can). Read only where nothing is in doubt: a unit of measure (not a time, a count
# of classes or a bare ratio), no reference multiple, a short noun phrase right before the
# bound that no lexicon name is part of.

#: units never read for an uncoded name: times are durations and windows ("> 6 months"), and
#: the unitless codes (scores, ratios, INR) need a concept to mean anything
_UNCODED_NOT_UNITS = frozenset(["a", "mo", "wk", "d", "h", "h/d", "1", "{score}", "{INR}",
                                "{letters}", "[pH]", "g", "g/(24.h)", "mg/(24.h)",
                                # standard deviations: from what, a concept says ("1.5 SD
                                # outside the age norm" is no level)
                                "{SD}",
                                # "150 G/L" (giga per litre, a count) reads as "g/l" once the
                                # text is lower case
                                "g/L"])
#: aliases that are also words ("in", "c") or counts ("copies"), not units, without a concept;
#: "g/l" is grams per litre as much as the count "G/L" (giga per litre) once lower-cased:
#: "haptoglobin > 0.3 g/L" read as 0.3 × 10⁹/L, so without a concept it is neither
_UNCODED_NOT_ALIASES = frozenset(["", "in", "c", "f", "copies", "kilo", "g/l"])
#: an alias two units share goes to this one: without a concept, "15°" is an angle (a body
#: temperature is the lexicon's)
_UNCODED_PREFERRED = frozenset(["deg"])
MEASUREMENT = "measurement"


@cache
def measurement_lab() -> Lab:
    """The stand-in concept of an uncoded measurement: every unit of the lexicon but the
    ones above; an alias two units share is left out (it could be either)."""
    owner: dict[str, set[str]] = {}
    for lab in tables().labs:
        for u in lab.units:
            if u.ucum in _UNCODED_NOT_UNITS:
                continue
            for a in (u.ucum, *u.aliases):
                if norm_unit(a) not in _UNCODED_NOT_ALIASES:
                    owner.setdefault(norm_unit(a), set()).add(u.ucum)
    aliases: dict[str, list[str]] = {}
    for alias, ucums in owner.items():
        if len(ucums) > 1:
            ucums = ucums & _UNCODED_PREFERRED
        if len(ucums) == 1:
            aliases.setdefault(next(iter(ucums)), []).append(alias)
    # the UCUM code itself is matched as an alias too (grammar._units): the code goes in only
    # where it is not a word above ("[in_i]" is kept, through its aliases)
    units = tuple(Unit(ucum, 1.0, 0.0, tuple(sorted(a))) for ucum, a in sorted(aliases.items()))
    units += tables().uncoded_units
    return Lab(key=MEASUREMENT, display="", kind=MEASUREMENT, code={}, names=(), unit="",
               requires_unit=True, units=units)


#: the stand-in for a name the lexicon does not have whose last word says what a number
#: written without a unit is in ("Dubois 5 words test ≥ 9" a score, "saliva pH 6.75-7.25" a
#: pH; the head words are data, ``uncoded.heads`` of the lexicon): read only without a unit
MEASUREMENT_SCORE = "measurement-score"
# a number right after a scale's name that counts its items ("HAM-D 17 score ≥ 18", "HAM-D
# 17 item total score of ≥ 18"): the scale's form, then its bound
_SCORE_FORM = re.compile(r"\d{1,2}(?:\s*-?\s*items?)?(?![\d.,])")
# what may follow a score's bound: points, then the end of the clause or a joint
_SCORE_END = re.compile(r"\s*+(?:points?|pts?\.?)?\s*+(?:$|[,.;:)\]]|(?:and|or|at|on|in|for|"
                        r"during|with|as|to|from|by|before|after)\b)")


@cache
def _head_labs() -> dict[str, Lab]:
    """The stand-in concept of each head word: a score's levels are read as lists ("… ladder
    score of 9 or 10"), a pH's are not."""
    out: dict[str, Lab] = {}
    for words, ucum, lo, hi in tables().uncoded_heads:
        lab = Lab(key=MEASUREMENT_SCORE, display="", kind="score" if ucum == "{score}" else "lab",
                  code={}, names=(), unit=ucum, requires_unit=False, units=(Unit(ucum, 1.0),),
                  bare=((ucum, lo, hi),))
        out.update((w, lab) for w in words)
    return out


@cache
def _head_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(a head word anywhere; a head word, then at most a few filler words, right before a
    number)."""
    head = r"\b(?:" + "|".join(sorted(map(re.escape, _head_labs()))) + r")\b"
    return re.compile(head), re.compile(head + r"[^\w≤≥<>]*(?:[a-z]+[^\w≤≥<>]+){0,2}$")


def is_uncoded(lab: Lab) -> bool:
    """Whether a reading's concept is a stand-in for a name the lexicon does not have."""
    return lab.key in (MEASUREMENT, MEASUREMENT_SCORE)


# a name is a run of words: each starts with a letter ("fev1", "pao2", "t-score")
_NAME_TOKEN = re.compile(r"[a-z][a-z0-9'’-]*|\S")
#: words a name never contains (they join, qualify or open a clause) — where a name stops
_NAME_STOP = frozenset([
    "and", "or", "and/or", "with", "of", "in", "for", "if", "the", "a", "an", "who", "whose",
    "has", "have", "had", "having", "by", "at", "on", "to", "as", "than", "from", "no", "not",
    "non", "any", "all", "is", "are", "was", "were", "be", "been", "being", "must", "should",
    "will", "would", "can", "could", "may", "might", "shall", "either", "both", "each", "per",
    "over", "under", "above", "below", "more", "less", "greater", "lower", "higher", "least",
    "most", "within", "without", "during", "after", "before", "since", "until", "when",
    "while", "where", "which", "that", "this", "these", "those", "their", "his", "her", "its",
    "our", "your", "defined", "including", "such", "known", "prior", "previous", "only",
    "also", "there", "e.g", "i.e", "eg", "ie", "patients", "patient", "subjects", "subject",
    "participants", "participant", "people", "persons", "women", "men", "male", "female",
    "males", "females", "children", "adults", "infants", "boys", "girls", "volunteers",
    "individuals", "cases", "case", "require", "requires", "required", "need",
    "needs", "needed", "show", "shows", "showing", "demonstrate", "demonstrating", "undergo",
    "undergoing", "receive", "receiving", "received", "taking", "take", "use", "using",
    "used", "measured", "determined", "assessed", "documented", "confirmed",
    "diagnosed", "evidence", "presence", "absence", "history", "level", "levels", "value",
    "values", "equal", "equals", "exceeding", "exceeds", "exceed", "reaching", "then",
    "like", "about", "approximately", "around", "nearly", "almost", "but", "yet", "nor",
    "so", "via", "because", "due", "except", "unless", "whichever", "respectively", "i",
    "ii", "iii", "iv", "v", "x", "×", "plus", "minus", "up", "down", "out", "off", "into",
    "onto", "upon", "between", "among", "it", "they", "he", "she", "we", "you",
    "one", "two", "three", "four", "five", "ten", "other", "another", "same", "new", "old",
])
#: filler between a name and its bound ("Cobb angle is between …", "lipid content of < 2 %")
_NAME_GAP = frozenset(["is", "are", "was", "were", "be", "of", "level", "levels", "value",
                       "values", "must", "should", "the", "a", "an", "=", ":", "equal",
                       "measuring", "measured", "reading", "readings", "result", "results"])
#: the last word of a name that is not a measured level: doses, durations, counts, changes
#: words that name nothing measured on their own
_GENERIC_ALONE = frozenset(["range", "level", "levels", "value", "values", "result", "results",
                            "count", "rate", "ratio", "amount", "total", "score", "index"])
#: a word written twice in a row, as a blanked remark leaves it ("score (NSS) score")
_REPEATED_WORD = re.compile(r"\b(\w+)(?: \1\b)+")
#: a specimen and generic words name nothing measured on their own ("serum level")
_SPECIMEN_OR_GENERIC = _GENERIC_ALONE | frozenset([
    "serum", "plasma", "blood", "urine", "urinary", "whole", "venous", "arterial", "capillary",
    "fasting", "random", "measured", "concentration", "concentrations"])
#: verbs that give the size of what the name before them names
_SIZE_VERBS = frozenset(["measuring", "extending", "spanning"])

_NOT_A_LEVEL = frozenset([
    "dose", "doses", "dosage", "dosing", "treatment", "treatments", "therapy", "therapies",
    "intake", "consumption", "exposure", "usage", "duration", "time", "times", "period",
    "interval", "intervals", "days", "day", "weeks", "week", "months", "month", "years",
    "year", "hours", "hour", "minutes", "age", "aged", "number", "numbers", "episodes",
    "episode", "change", "changes", "increase", "increases", "decrease", "decreases",
    "reduction", "difference", "improvement", "decline", "drop", "rise", "gain", "stage",
    "shrinkage", "loss", "growth", "fall", "reductions", "declines",
    "grade", "class", "type", "cigarettes", "drinks", "units",
    "smoking", "pack-years", "injections", "visits", "sessions", "infusions", "cycles",
    "lines", "regimens", "attacks", "seizures", "falls", "admissions", "hospitalizations",
    "hospitalisations", "exacerbations", "relapses", "tablets", "pills", "target",
    "goal", "limit", "cutoff", "cut-off", "threshold", "criteria", "criterion",
    "diagnosis", "onset", "surgery", "procedure", "injury", "delivery", "birth", "study",
    "trial", "screening", "baseline", "randomization", "randomisation", "enrollment",
    "enrolment", "visit", "follow-up", "distance", "away", "size", "weight", "dilution",
])
#: words before a name that judge the value the bound states ("increased", "slow")
_JUDGEMENTS = frozenset(["increased", "decreased", "elevated", "reduced", "raised", "abnormal",
                         "enlarged", "prolonged", "impaired", "poor", "slow", "slowly",
                         "acidic"])
_PREPOSITIONS = frozenset(["for", "of", "to", "in", "on", "at", "by", "from", "with",
                           "without", "into", "than"])
_NAME_GOES_ON_AFTER = re.compile(r"(?!(?:" + "|".join(map(re.escape, _NAME_STOP)) +
                                 r")\b)[a-z]")
_MAX_NAME_WORDS = 4
_LIST_JOINTS = frozenset(["or", "and", "and/or", ",", "/", "&"])
# a word that ends a verb's phrase, so the name goes on through the joint ("Timed Up and Go
# test > 12 seconds": not a "Go test")
_PARTICLES = frozenset(["up", "down", "out", "off", "in", "on", "over", "back"])
_NAME_GOES_ON = frozenset(["of", "in", "on", "at", "into", "to", "lower", "higher", "greater",
                           "less", "more", "least", "most", "over", "under", "above", "below",
                           "upper"])
_MODALS = frozenset(["must", "should", "shall", "will", "would", "can", "could", "may", "might",
                     "to", "cannot", "does", "do", "did"])
#: a disorder named by its defining measurement ("thrombocytopenia < 100", "pulmonary
#: hypertension > 50 mmHg"): the bound is on a measurement the name does not say
_DISORDER = re.compile(r"(?:penia|cytosis|emia|itis|pathy|trophy|tension|insufficiency|"
                       r"failure|disease|syndrome|disorder)$")
#: the unit goes on past what was read ("3.4 m/s" read as "3.4 m")
_UNIT_GOES_ON = re.compile(r"\s*(?:/|per\b|\^|\*)")


def _uncoded_name(canon: str, pos: int, floor: int, bound_end: int = -1
                  ) -> tuple[int, int, bool] | None:
    """(start, end, in brackets) of the uncoded name whose bound starts at ``pos`` (no
    earlier than ``floor``), or None when the words before the bound are not a plain name.
    The bound may open a bracket right after the name ("ovarian volume (> 10 mL)"): then the
    bracket must hold the bound alone (see measurement_readings)."""
    toks = [(m.start(), m.end(), m.group(0))
            for m in _NAME_TOKEN.finditer(canon, max(floor, pos - 80), pos)]
    i = len(toks) - 1
    bracket = i >= 0 and toks[i][2] == "("
    if bracket:
        i -= 1
    while i >= 0 and toks[i][2].rstrip(":") in _NAME_GAP:
        i -= 1
    words: list[tuple[int, int, str]] = []
    while i >= 0 and len(words) <= _MAX_NAME_WORDS:
        a, b, w = toks[i]
        if not w[0].isalpha() or w in _NAME_STOP or w.endswith(("'s", "’s")):
            break  # … or a possessor: "the participant's knee flexion contracture"
        words.append((a, b, w))
        i -= 1
    if not words or len(words) > _MAX_NAME_WORDS:
        return None
    words.reverse()
    if words[-1][2] in _NOT_A_LEVEL or len("".join(w for _, _, w in words)) < 3 or \
            _DISORDER.search(words[-1][2]):
        return None
    if len(words) == 1 and (words[0][2].endswith("ing") or words[0][2] in _GENERIC_ALONE):
        # "patients losing > 10 % of body weight": a verb, not a name; "time in range < 50 %":
        # the end of a name the stop word cut
        return None
    if all(w in _SPECIMEN_OR_GENERIC for _, _, w in words):
        return None  # "by serum level < 50 nmol/L": of what?
    if len(words) > 1 and words[-1][2] in _SIZE_VERBS:
        words = words[:-1]  # "calcifications extending > 20 mm", "a lesion measuring ≥ 1 cm"
    def starts_after(k: int) -> bool:
        """Whether a name may start right after token ``k`` (none before it: -1)."""
        if k < 0:
            return True
        w = toks[k][2]
        if w[0].isdigit() or w in NUMWORDS:
            return False  # "Dubois 5 words test": the name goes on past a number
        if w in _MODALS:
            return False  # "rash must cover < 10 % of …": a verb, not a name
        if w in _NAME_GOES_ON or (w in ("the", "a", "an") and k >= 1 and
                                  toks[k - 1][2] in _NAME_GOES_ON):
            # "axial deformity of the lower limbs ≤ 5°", "monoclonal plasma cells in bone
            # marrow ≥ 10 %", "dose of radiation to the lung > 20 Gy": the words read are the
            # end of a longer name ("limbs", "bone marrow", "lung" are not what is measured)
            return False
        # "varus angle or valgus ≥ 15°", "superior, or inferior rim < 5 mm": the bound may be
        # every listed name's, or either's
        if k >= 2 and w in _LIST_JOINTS and toks[k - 1][2] == ",":
            k -= 1
        if w in _LIST_JOINTS and 0 <= bound_end <= toks[k][0] and \
                not _LIST_SEP.search(canon, bound_end, toks[k][0]):
            # "handgrip (< 26 kg …) using dynamometer or slow gait speed (< 1 m/s)": the
            # words before "or" close a statement with its own bound, not a list of names
            return True
        return not (k >= 1 and w in _LIST_JOINTS and toks[k - 1][2][0].isalpha() and
                    (toks[k - 1][2] not in _NAME_STOP or toks[k - 1][2] in _PARTICLES))

    if i >= 1 and toks[i][2] == "-" and toks[i][1] == words[0][0] and \
            toks[i - 1][2].isdigit() and toks[i - 1][1] == toks[i][0]:
        # "24-hour urine volume", "2-hour OGTT": a number joined to the name's first word
        # is part of the name (cut there, "hour urine volume" names nothing)
        j = i - 1
        while j >= 1 and toks[j - 1][2].isdigit() and toks[j - 1][1] == toks[j][0]:
            j -= 1
        if j >= 1 and (canon[toks[j - 1][1]:toks[j][0]] == "" or (
                not toks[j - 1][2][0].isalpha() and toks[j - 1][2] not in ",;:(")):
            return None  # "10-20-hour …", "≥ 2-fold …": a number of something else
        if starts_after(j - 1):
            words.insert(0, (toks[j][0], toks[i][1], canon[toks[j][0]:toks[i][1]]))
            i = j - 1
        # (else the name is the words after the hyphen: "combined 2- to 3-wall intraosseous
        # defect ≥ 3 mm" — "to 3-wall" goes on past what a name holds)
    if not starts_after(i):
        return None
    before = canon[max(floor, words[0][0] - 12):words[0][0]]
    if _NEGATED.search(before) or _OTHER_SUBJECT.search(before) or _TARGET.search(before):
        return None  # "no pupil > 4 mm", "fetal heart rate": not the participant's level
    if bracket and ((i >= 0 and toks[i][2] in _PREPOSITIONS) or
                    _NAME_GOES_ON_AFTER.match(canon, _after_bracket(canon, pos))):
        # "too large for closure (> 38 mm)", "high (> 90 %) cure rate": what the bracket
        # measures is not the words right before it
        return None
    while len(words) > 1 and words[0][2] in _JUDGEMENTS:
        words.pop(0)  # "increased ovarian volume (> 10 mL)": what is measured is the volume
    if len(words) == 1 and words[0][2] in _JUDGEMENTS | {"high", "low"}:
        return None
    return words[0][0], words[-1][1], bracket


def measurement_readings(canon: str, taken: list[tuple[int, int]]) -> list[Reading]:
    """Bounds on measurements the lexicon does not have (see above), outside ``taken`` (the
    spans the lexicon's readings hold) and away from any name the lexicon knows."""
    # where a bound may start: a comparator or "between", or a number right after a score's
    # name ("… ladder score of 9 or 10"); none inside what the lexicon read (the common case)
    # … or a number with the comparison after it ("100 mL or less")
    head_word, head_before = _head_patterns()
    heads = head_word.search(canon) is not None
    post = _POST_CMP_BEFORE.search(canon) is not None
    starts = []
    for m in (_UNCODED_START if heads or post else _UNCODED_CMP).finditer(canon):
        p = m.start()
        if not any(a <= p < b for a, b in taken) and (
                not canon[p].isdigit() or (heads and head_before.search(canon, max(0, p - 40), p))
                or (post and _POST_CMP_BEFORE.search(canon, p, p + 30))):
            starts.append(p)
    if not starts:
        return []
    known: list[tuple[int, int]] | None = None  # the lexicon's names, found when first needed
    bracketed = bracketed_semicolons(canon)
    stops = [x.end() for x in _STOP.finditer(canon) if x.start() not in bracketed]
    out: list[Reading] = []
    for p in starts:
        if out and p < out[-1].end:
            continue
        bound_end = max([b for a, b in taken if b <= p] + [out[-1].end if out else -1])
        floor = max([bound_end, 0] + [e for e in stops if e <= p])
        span = _uncoded_name(canon, p, floor, bound_end)
        if span is not None and known is None:
            known = [(m.start(), m.end()) for m in _names()[0].finditer(canon)]
        if span is None or any(a < p and b > span[0] - 3 for a, b in known or ()):
            # a name the lexicon knows stands between, or ends right where this one starts
            # ("UPDRS-III score"): its reading decided (even to leave the bound as text, as for
            # a bound that holds for one sex only)
            continue
        # ("neurological severity score (NSS) score": the remark blanked, one "score")
        name = _REPEATED_WORD.sub(r"\1", _SPACE_RUN.sub(" ", canon[span[0]:span[1]]))
        found = _uncoded_bounds(canon, p, name)
        if found is None or (span[2] and not _closes(canon, p, found[1][3])):
            continue  # … "(≥ 2.3 ng/mL if …)": the bracket says more than the bound
        stand_in, (bound, alts, either, end) = found
        if (where := _IN_SPECIMEN.match(canon, end)) is not None:
            # "blasts ≥ 20 % in bone marrow": the specimen after the bound completes the name
            # ("blasts in bone marrow"), when the lexicon knows the whole
            by_name = _names()[1]
            spec = " ".join(where.group("s").split())
            lab = by_name.get(f"{name.lower()} in {spec}") or by_name.get(f"{spec} {name.lower()}")
            coded = _bounds(lab, canon, p) if lab is not None else None
            if coded is not None and coded[3] == end:
                out.append(Reading(span[0], lab, coded[0], coded[1], coded[2], where.end()))
                continue
        out.append(Reading(span[0], replace(stand_in, display=name), bound, alts, either, end))
    return out


#: a specimen right after a bound ("… ≥ 20 % in bone marrow", "in the peripheral blood")
_IN_SPECIMEN = re.compile(r"\s*+,?\s*+in\s++(?:the\s++)?(?P<s>bone\s++marrow|peripheral\s++blood|"
                          r"blood|serum|plasma|urine)\b(?!\s*+(?:,\s*+)?(?:or|and|and/or)\s++(?:in\s++)?"
                          r"(?:the\s++)?(?:bone|peripheral|blood|serum|plasma|urine))")


#: words that do not say which score ("total", "global"): a name of only these and a head
#: names no scale
_GENERIC_MODIFIERS = frozenset(["total", "overall", "global", "mean", "average", "baseline",
                                "composite", "summary", "sum", "raw", "final", "current"])
_BRACKET_CLOSE = re.compile(r"\s*\)")


def _after_bracket(canon: str, pos: int) -> int:
    """Where the text goes on after the bracket opened right before ``pos`` closes (the end
    when it does not close within a bound's length: it cannot hold the bound alone)."""
    depth = 1
    for i in range(pos, min(len(canon), pos + 200)):
        depth += {"(": 1, ")": -1}.get(canon[i], 0)
        if depth == 0:
            return len(canon) - len(canon[i + 1:].lstrip())
    return len(canon)


def _closes(canon: str, p: int, end: int) -> bool:
    """Whether the bracket opened right before ``p`` closes where the bound read up to
    ``end`` does (the reading may have taken the ")" already)."""
    depth = 1 + canon.count("(", p, end) - canon.count(")", p, end)
    return depth == 0 or (depth == 1 and _BRACKET_CLOSE.match(canon, end) is not None)


_LIST_SEP = re.compile(r"[,;]")
_RELATIVE_AFTER = re.compile(r"\s*[≤≥<>]\s*×")
_SHARE_OF_OWN = re.compile(r"\s*of\s+(?:the\s+|their\s+|his\s+|her\s+)?(?:personal|patient'?s|"
                           r"individual|predicted|baseline|normal|reference|maximum|maximal|max|"
                           r"best|expected|ideal|usual|previous|prior|pre-?treatment)\b")
_UNCODED_CMP = re.compile(r"[≤≥<>]|\bbetween\s+(?=\d)")
_POST_CMP_BEFORE = re.compile(r"\bor\s+(?:above|more|greater|higher|over|below|less|lower|"
                              r"under|fewer)\b")
_UNCODED_START = re.compile(_UNCODED_CMP.pattern + r"|(?<![\w.,/:-])(?=\d)")


def _uncoded_bounds(canon: str, p: int, name: str) -> tuple[
        Lab, tuple[Bound, list[tuple[Bound, str | None]], bool, int]] | None:
    """The stand-in concept and the bounds at ``p`` for the uncoded ``name``: a measurement
    with a written unit after a comparator or "between", or else — for a name that says it is
    a score — a unitless score bound ("≥ 9", "of 9 or 10", "18 to 24 points"; a number alone
    is not read as an exact score)."""
    comparison = not canon[p].isdigit()
    head = name.rsplit(None, 1)[-1]
    lab = measurement_lab()
    found = _bounds(lab, canon, p)
    if found is not None and (_RELATIVE_AFTER.match(canon, found[3]) or
                              _SHARE_OF_OWN.match(canon, found[3])):
        # "proptosis ≥ 3 mm above normal": a difference from a limit; "peak expiratory flow ≤
        # 80 % of personal best": a share of another value, not a level
        return None
    if found is not None and not _UNIT_GOES_ON.match(canon, found[3]) and all(
            b.unit_written and b.unit is not None and not b.relative
            for b in (found[0], *(x for x, _ in found[1]))) and (
            comparison or (not found[1] and (found[0].up or found[0].down) and
                           _POST_CMP_BEFORE.search(canon, p, found[3]) is not None)):
        # … or a number, its unit and the comparison after them ("Framingham risk score
        # 10 % or above"; a number and a unit alone, or a range, is no bound on the name)
        return lab, found
    lab = _head_labs().get(head)
    if lab is None or not set(name.split()[:-1]) - _GENERIC_MODIFIERS:
        return None  # "score ≥ 20", "total score ≥ 20", "pH < 7" alone: of what?
    found = _bounds(lab, canon, p)
    if found is None or not _SCORE_END.match(canon, found[3]):
        return None
    bound = found[0]
    if any(b.unit_written or b.relative for b in (bound, *(x for x, _ in found[1]))) or (
            not comparison and bound.low == bound.high and not found[1]):
        return None
    return lab, found
