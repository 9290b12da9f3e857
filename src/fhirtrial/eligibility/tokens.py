"""The eligibility grammar's lexical layer: criterion text → a canonical text of the same length.

Every notation the registry uses for one thing is rewritten to one spelling, padded with spaces
to the length it had, so that positions found in the canonical text are positions in the
original (normalised) text too:

- comparators in words ("no more than", "equal to or greater than", "at least", "older than")
  → ``≤ ≥ < >``;
- reference multiples ("× the upper limit of normal", "times the upper normal limit", "UNL")
  → ``×uln`` / ``×lln``; "% of predicted" → ``%pred``;
- powers of ten in counts ("x 10^9/L", "×10⁹/L", "x 109/L" with the superscript lost,
  "10e9/L") → ``×10^9/l``; CJK unit glyphs (㎎/㎗) → ``mg/dl``; "1•73 m2" → ``1.73 m2``.

Numbers are read by :func:`number` (thousands separators, decimal commas, number words).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from .tables import norm_unit, tables

NUM = (r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])|"
       # "100 000/µL": thousands set apart by a space
       r"\d{1,3}(?: \d{3})+(?![\d,.])|"
       r"\d+,\d{1,2}(?![\d,]|\s*(?:,|or|and|-|to)\s*\d)|\d+(?:\.\d+)?|\.\d+)")
NUMWORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
            "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
            "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
            "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
            "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6}


_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def number(s: str) -> float:
    """A number as written ("1,500" → 1500, "9,0" → 9, "1.5" → 1.5, "two" → 2); whole
    numbers come back as int so that 18 prints as 18."""
    s = s.strip()
    if s in NUMWORDS:
        return NUMWORDS[s]
    if " " in s:
        s = s.replace(" ", "")
    if "," in s and _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    elif "," in s:
        s = s.replace(",", ".")
    v = float(s)
    return int(v) if v.is_integer() else v  # type: ignore[return-value]


# phrase → canonical symbol; longest phrases first inside each alternation
_LE = (r"less than or equal to|less than or equal|lower than or equal to|smaller than or equal to|"
       r"equal to or less than|equal or less than|equal to or lower than|equal or lower than|"
       r"equal to or smaller than|equal to or below|equal or below|"
       r"younger than or equal to|equal to or younger than|"
       r"no more than|not more than|no greater than|not greater than|not higher than|"
       # "the ALT level should not be higher than twice the ULN"
       r"not be (?:more|greater|higher) than|"
       r"no higher than|no older than|not older than|not exceeding|not to exceed|"
       r"does not exceed|not exceed|not above|up to(?! date)|at most|maximum of|maximum|"
       r"max\.?(?=\s*\d)|"
       r"under or equal to|below or equal to|less or equal(?: to)?|lower or equal(?: to)?|"
       r"inferior or equal to|at or (?:below|under|before)(?=\s*\d)|"
       # "bilirubin within 1.5 times the ULN": at most that multiple (read after the multiple
       # is, so "× ULN" follows)
       r"within(?=\s*\d[\d.,]*\s*×(?:uln|lln)\b)|≤|=<|⩽")
_GE = (r"greater than or equal to|greater than or equal|more than or equal to|"
       r"higher than or equal to|older than or equal to|equal to or greater than|"
       r"equal or greater than|equal to or more than|equal or more than|equal to or higher than|"
       r"equal or higher than|equal to or older than|equal or older than|equal to or above|"
       r"equal or above|above or equal to|over or equal to|at least|no less than|"
       r"more or equal(?: to)?|greater or equal(?: to)?|higher or equal(?: to)?|"
       r"not less than|not lower than|no lower than|not below|no younger than|"
       r"not be (?:less|lower) than|"
       r"not younger than|no fewer than|not fewer than|minimum of|minimum|min\.?(?=\s*\d)|"
       r"superior or equal to|at or (?:above|over|after|beyond)(?=\s*\d)|"
       r"≥|=>|⩾")
# a bare word ("over", "above", "under") is a comparator only before a number: "18 and over",
# "and above" are read by the grammar as postfix bounds
_BEFORE_NUM = r"(?=\s*(?:the\s+)?(?:ages?\s+(?:of\s+)?)?(?:\d|\.\d|×))"
_LT = (rf"less than|lower than|fewer than|smaller than|younger than|(?:below|under){_BEFORE_NUM}|"
       rf"inferior to{_BEFORE_NUM}|<")
_GT = (rf"greater than|more than|higher than|older than|in excess of|superior to{_BEFORE_NUM}|"
       rf"(?:exceeding|exceeds|above|over){_BEFORE_NUM}|>")

_CMP_FIRST = (r"(?=less|lower|smaller|equal|younger|no|not|does|up|at|max|under|below|greater|"
              r"inferior|superior|within|"
              r"more|higher|older|above|over|min|in|fewer|exceed)")
_CMP_RE = re.compile(rf"(?<![\w]){_CMP_FIRST}"
                     rf"(?:(?P<le>{_LE})|(?P<ge>{_GE})|(?P<lt>{_LT})|(?P<gt>{_GT}))"
                     r"(?![a-z])|(?P<sym>[≤≥<>])")
_SYM = {"le": "≤", "ge": "≥", "lt": "<", "gt": ">"}

# (the spaces before the name are taken from the first of a run only: tried from each space of
# a long run, as blanked brackets leave, they cost time quadratic in the run's length — 4 ms
# on one line of a shared record — and a match from inside a run is one from its first space)
_REF = re.compile(
    r"(?:(?:(?<=[\d\s])(?:[x×*⋅·]|-?times|-?fold|folds)\s*|(?<=\d)x)\s*|(?<!\s)\s*)"
    r"(?:the\s+)?"
    r"(?:(?:as high as|of)\s+(?:the\s+)?)?(?:institutional\s+|laboratory\s+|local\s+)?"
    # ("LSN", the French and Spanish "limite supérieure de la normale" / "límite superior
    # normal", and the German "obere Normgrenze" — "ONG", read as ULN in normalise — are the
    # upper limit)
    r"(?P<ref>uln|unl|lsn|obere normgrenze|lln|lnl|"
    r"upper limits? (?:of |for )?(?:the )?(?:institutional |laboratory |local |reference )?"
    r"normal(?: limits?| range| values?)?(?: \(uln\))?|"
    r"lower limits? (?:of |for )?(?:the )?(?:institutional |laboratory |local |reference )?"
    r"normal(?: limits?| range| values?)?(?: \(lln\))?|"
    r"upper normal limits?|lower normal limits?|upper limit normal|lower limit normal|"
    r"maximal normal values?|upper (?:limit of )?(?:the )?reference range|"
    r"lower (?:limit of )?(?:the )?reference range|"
    r"normal upper limit|normal lower limit|upper level of normal|"
    # "2 times the upper normal value", "3 × the upper value of normal", "the upper reference
    # limit"
    r"upper normal values?|lower normal values?|upper values? of (?:the )?normal(?: range)?|"
    r"lower values? of (?:the )?normal(?: range)?|upper reference limit|lower reference limit|"
    r"upper limits? of normal range|(?<=times )(?:the )?upper limit|(?<=x )(?:the )?upper limit|"
    # "> 2x normal", "3 times normal": a multiple of normal is one of its upper limit
    r"(?:(?<=times )|(?<=x )|(?<=× )|(?<=\dx)|(?<=\d×))(?:the )?normal(?! range| lower| limits? of)"
    r"(?: values?)?)"
    r"(?![\w])")
_PRED = re.compile(r"(?<=[\d\s])(?:%|percent|per cent)\s*(?:of\s+)?(?:the\s+)?"
                   r"(?:(?:normal|patient'?s?)\s+)?(?:predicted|predictive|expected|of pred\b|"
                   r"pred\b|theoretical)(?: values?| normal)?|"
                   r"(?<=[\d\s])(?:%|percent)\s*(?=pred\b)")
_POW = re.compile(r"(?:[x×*⋅·]\s*)?10\s*(?:\^|\*\*|\*|e|exp)\s*(?P<p>\d{1,2})\s*(?=/|cells|\s*/)|"
                  r"(?:[x×*⋅·]\s*)10(?P<q>[369])\s*(?=/)|"
                  r"(?:[x×*⋅·]\s*)?10(?P<s>[³⁴⁶⁹])")
_BEYOND_NORMAL = re.compile(r"(?<![\w])(?P<d>above|below|greater than|less than|higher than|"
                            r"lower than|over|under)\s+(?:the\s+)?(?:institutional\s+)?normal"
                            r"(?:\s+(?:range|limits?|values?))?(?![\w])")
_REF_HINT = re.compile(r"uln|unl|lsn|normgrenze|lln|lnl|normal|upper|lower")
_SUP = {"³": "3", "⁴": "4", "⁶": "6", "⁹": "9"}
GLYPHS = str.maketrans({"㎎": "mg", "㎗": "dl", "㎖": "ml", "㎍": "µg", "㎕": "µl", "㎜": "mm",
                         "㎝": "cm", "㎏": "kg", "℃": "°c", "㏄": "cc", "㎡": "m2", "μ": "µ",
                         "ℓ": "l"})


_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_UNITS = "one|two|three|four|five|six|seven|eight|nine"
#: a number in words: "eighteen", "twenty-one", "sixty five"
_NUM_WORD = (rf"(?:(?:{_TENS})[\s-](?:{_UNITS})|"
             + "|".join(sorted(NUMWORDS, key=len, reverse=True)) + ")")
_TIME_WORD_NUM = re.compile(
    rf"(?<![\w-])({_NUM_WORD})"
    r"(?=\s*+-?\s*+(?:years?|months?|weeks?|days?|hours?)(?![\w]))")
_TIME_WORD_NUM_HINT = re.compile(r"year|month|week|day|hour")
# "age twenty-one or older", "aged sixty-five and over": a number in words after the word age
_AGE_WORD_NUM = re.compile(rf"(?:(?<=\bage )|(?<=\bage of )|(?<=\baged ))({_NUM_WORD})(?![\w-])")


def word_number(words: str) -> int:
    """The value of a number in words ("eighteen" 18, "twenty-one" 21)."""
    parts = re.split(r"[\s-]+", words)
    return sum(NUMWORDS[p] for p in parts)


def glyphs(text: str) -> str:
    """CJK unit glyphs and look-alike characters spelled out (㎎/㎗ → mg/dl, μ → µ)."""
    return text.translate(GLYPHS)


def _pad(m: re.Match[str], new: str, left: bool = False) -> str:
    old = m.group(0)
    if len(new) > len(old):
        return old
    pad = " " * (len(old) - len(new))
    return pad + new if left else new + pad


def _sub(pat: re.Pattern[str], fn: Callable[[re.Match[str]], str], s: str,
         left: bool = False) -> str:
    return pat.sub(lambda m: _pad(m, fn(m), left), s)


_EQUAL_TO = re.compile(r"(?<![\w])(?:equal to|equals|is equal)(?![\w])(?=\s*\d)")
_GEST_WEEKS = re.compile(r"(?<=\d)(\s*)(gestational weeks?)(?![\w])")
_YEAR_OLD = re.compile(r"(?<=\d)-(?=(?:years?|months?|weeks?|days?)[- ]old)")
_BSA_173 = re.compile(r"(?<=\d)[.,•∙·](?=73\s*m)")


# "1.5 mg per dL", "9 grams per deciliter", "350 cells per cubic millimeter": a unit in words
# after a number, written as its symbols
_UNIT_IN_WORDS = re.compile(
    r"(?<=\d)\s*+(?P<n>(?:milli|micro|nano|pico|kilo)?(?:grams?|moles?)|mg|gm?|µg|mcg|ng|pg|mmol|µmol|"
    r"umol|mol|i?u|units?|cells|copies)\s+per\s+(?P<d>(?:deci|milli|micro)?lit(?:er|re)|"
    r"[dmµu]?l|cubic millimet(?:er|re)|mm3|mm³)(?![\w])")
_MASS = {"milligram": "mg", "microgram": "µg", "nanogram": "ng", "picogram": "pg",
         "kilogram": "kg", "gram": "g", "millimole": "mmol", "micromole": "µmol",
         "nanomole": "nmol", "picomole": "pmol", "mole": "mol", "units": "u", "unit": "u"}


def _unit_in_words(m: re.Match[str]) -> str:
    n, d = m.group("n"), m.group("d")
    # (a litre in words is spelled by the lexicon's own unit key: "deciliter" → "dl")
    den = "mm3" if d.startswith("cubic") else norm_unit(d)
    return _MASS.get(n[:-1] if n.endswith(("grams", "moles")) else n, n) + "/" + den


_DOUBLE_CMP = re.compile(r"([≤≥<>])(\s*)\1")
_INSTRUMENT_SIZE = re.compile(r"(?<![\w.,-])\d{1,3}-(?:items?|points?|questions?|domains?)"
                              r"(?![\w-])")


@dataclass(frozen=True, slots=True)
class _GroupNames:
    """The lexicon's group names ("transaminases") as one pattern, what each is read as
    ("ast/alt"), the concepts' names holding each ("alanine transaminases" would), and the
    names' last words (one of which a text naming a group holds: a substring test first)."""
    pattern: re.Pattern[str]
    listed: dict[str, str]
    holders: dict[str, tuple[str, ...]]
    hints: frozenset[str]

    def read(self, m: re.Match[str]) -> str:
        """What a group's name is read as — unless it is part of a concept's own name there."""
        name = m.group(0)
        for n in self.holders[name]:
            at = n.index(name.removesuffix("s"))
            if at and m.string.startswith(n[:at], m.start() - at):
                return name
        return self.listed[name]


@cache
def _groups() -> _GroupNames | None:
    listed = dict(tables().groups)
    if not listed:
        return None
    names = sorted(listed, key=len, reverse=True)
    # (by the name's singular: "alanine aminotransferases" is one concept's name, plural)
    holders = {g: tuple(n for lab in tables().labs for n in lab.names
                        if g.removesuffix("s") in n and n != g) for g in listed}
    return _GroupNames(
        re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, names)) + r")(?![\w-])"),
        listed, holders, frozenset(n.split()[-1] for n in names))


def canonical(norm: str) -> str:
    """The canonical text of a normalised criterion (same length, see the module doc)."""
    s = norm
    # "transaminases ≤ 2.5 × ULN": a group's name is the list of its members' ("ast/alt")
    if (groups := _groups()) is not None and any(w in s for w in groups.hints):
        s = _sub(groups.pattern, groups.read, s)
    # "over one month of age", "twelve weeks": a number word before a time unit is its number
    # (first: "over"/"under" are comparators only before a number)
    # (padded on the left when a hyphen joins it to its unit, so "two-hour glucose" reads as
    # "2-hour glucose")
    if _TIME_WORD_NUM_HINT.search(s):
        s = _TIME_WORD_NUM.sub(lambda m: _pad(m, str(word_number(m.group(1))),
                                              m.string.startswith("-", m.end())), s)
    if "age" in s:
        s = _AGE_WORD_NUM.sub(lambda m: _pad(m, str(word_number(m.group(1)))), s)
    if "73" in s:
        s = _BSA_173.sub(".", s)  # 1•73 m2, 1,73 m2
    if "10" in s:
        # padded on the left, so the power stays joined to its unit ("×10^9/l")
        s = _sub(_POW, lambda m: "×10^" + (m.group("p") or m.group("q") or _SUP[m.group("s")]),
                 s, left=True)
    if "normal" in s:
        # "above the normal range": above its upper limit; "below normal": below the lower
        s = _sub(_BEYOND_NORMAL, lambda m: m.group("d") + " ×" + (
            "lln" if m.group("d").startswith(("below", "less", "lower", "under")) else "uln"), s)
    if _REF_HINT.search(s):
        s = _sub(_REF, lambda m: "×" + ("lln" if m.group("ref").startswith(
            ("lln", "lnl", "lower", "normal lower")) else "uln"), s)
    if " per " in s:
        s = _sub(_UNIT_IN_WORDS, lambda m: " " + _unit_in_words(m), s, left=True)
    if "%" in s or "percent" in s:
        s = _sub(_PRED, lambda m: "%pred", s)
    s = _sub(_CMP_RE, lambda m: m.group("sym") or _SYM[m.lastgroup or "le"], s)
    # "up to ≤ 3 × ULN", "at least ≥ 18": a comparator in words and the same one in symbols
    # say it once
    s = _DOUBLE_CMP.sub(lambda m: m.group(1) + m.group(2) + " ", s)
    # "equal to" alone between a name and a number is "=": drop it
    if "equal" in s:
        s = _sub(_EQUAL_TO, lambda m: "", s)
    # "32 gestational weeks" → "32 weeks gestation": the unit after the number, the name after
    # the unit, as "32 weeks of gestation" is read
    if "gestational" in s:
        s = _GEST_WEEKS.sub(lambda m: m.group(1) + "weeks gestation".ljust(len(m.group(2))),
                            s)
    # "HAM-D 17-item total score", "an 11-point scale": a number that sizes an instrument
    # names its version, never a value — blanked
    if "-item" in s or "-point" in s or "-question" in s or "-domain" in s:
        s = _sub(_INSTRUMENT_SIZE, lambda m: "", s)
    # "50-year-old" → "50 year old"
    if "old" in s:
        s = _YEAR_OLD.sub(" ", s)
    return s
