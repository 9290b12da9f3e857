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
``all-of`` / ``any-of``
    ``facts``: facts that must all hold ("Female, Haemoglobin < 10 g/dL", one group of
    bounds joined by "or"), or of which one must (one part of a ";"-list that offers its own
    "or": "creatinine ≤ 1.5 mg/dL or CrCl ≥ 50 mL/min").
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from .criteria import (
    ANY_OF_LEAD,
    AT_LEAST_N_LEAD,
    EITHER,
    EITHER_OR,
    EITHER_OR_TEXT,
    GROUP,
    PARTICIPANT_GROUP,
    Criterion,
    Fact,
    at_least,
    children_combination,
)
from .grammar import (
    MEASUREMENT,
    Bound,
    Reading,
    bracketed_semicolons,
    is_uncoded,
    measurement_readings,
    name_of,
    trie_regex,
)
from .grammar import _bounds as grammar_bounds
from .grammar import _names as grammar_names
from .grammar import readings as grammar_readings
from .tables import DAYS, Lab, tables
from .tokens import GLYPHS, NUMWORDS, ROMAN, canonical, glyphs, number

# --- text normalisation --------------------------------------------------------------------

_FULLWIDTH: dict[int, int | str] = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_FULLWIDTH.update({ord("≦"): "≤", ord("≧"): "≥", ord("⩽"): "≤", ord("⩾"): "≥", ord("–"): "-",
                   ord("—"): "-", ord("−"): "-", ord("˂"): "<", ord("˃"): ">",
                   ord("\u3000"): " ", ord("≒"): "~",
                   ord("，"): ",", ord("；"): ";", ord("："): ":", ord("（"): "(", ord("）"): ")",
                   # ornate and CJK brackets ("Stroke Scale ﴾NIHSS﴿ score > 5")
                   ord("﴾"): "(", ord("﴿"): ")", ord("【"): "(", ord("】"): ")",
                   ord("［"): "(", ord("］"): ")", ord("〔"): "(", ord("〕"): ")",
                   # square brackets hold what round ones do: remarks ("FEV1 [forced
                   # expiratory volume in 1 second] / FVC"), sexes ("> 2.5 mg/dL [men]")
                   ord("["): "(", ord("]"): ")",
                   ord("‐"): "-", ord("‑"): "-"})
# a Latin letter with a diacritic to the letter ("Créatinine clearance", "ANC ≥ 1,5 G/l"
# from a French registration): one character for one, so positions stay where they were
_FULLWIDTH.update({c: unicodedata.normalize("NFD", chr(c))[0] for c in range(0xC0, 0x250)
                   if len(unicodedata.normalize("NFD", chr(c))) > 1 and
                   unicodedata.normalize("NFD", chr(c))[0].isascii()})


#: the characters _FULLWIDTH or glyphs() change
_TRANSLATED = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(
    {*_FULLWIDTH, *(ord(k) if isinstance(k, str) else k for k in GLYPHS)})) + "]")
_ONG = re.compile(r"(?<![a-z])ong(?![a-z])")
#: Chinese joints and sexes, spelled as the grammar reads them
_CJK_WORDS = {"或者": " or ", "或": " or ", "和": " and ", "及": " and ", "且": " and ",
              "女性": "female", "男性": "male",
              # "2.5倍ULN", "1.5倍正常值上限": a multiple of the upper limit of normal
              "倍": " × ", "正常值上限": " uln ", "正常上限": " uln ",
              # "年龄在18-75岁之间": age (at) 18-75 years (between); "18岁以上": 18 years or
              # more (以上/以下 include the value); "周岁": full years
              "在": " ", "之间": " ", "以上": " or more ", "以下": " or less ", "周岁": "岁"}
_CJK_WORD = re.compile("|".join(sorted(_CJK_WORDS, key=len, reverse=True)))
_CJK_DIGIT = re.compile(r"(?<=[\u4e00-\u9fff])(?=\d)")


def normalise(text: str) -> str:
    """Full-width forms to ASCII, dashes to '-', spaced comparators joined, lower case."""
    # (str.translate looks up every character of the line in its table: only for a line
    # holding one of the characters it changes, which few do)
    s = glyphs(text.translate(_FULLWIDTH)) if _TRANSLATED.search(text) else text
    s = s.lower()
    if "ong" in s and _ONG.search(s):
        s = _ONG.sub("uln", s)  # "≤ 1,5 x ONG": the German "obere Normgrenze" is the ULN
    if not s.isascii() and _CJK_WORD.search(s):
        # "QTc < 470 ms（女性）或 < 450 ms（男性）": the joints and the sexes a bound is for,
        # in the words the grammar reads (a bound left unread after "或" was no alternative)
        s = _CJK_WORD.sub(lambda m: _CJK_WORDS[m.group(0)], s)
    if not s.isascii() and _CJK_DIGIT.search(s):
        # "年龄18-75岁": no space between the ideographs and the number, so no word boundary
        # for the name before it
        s = _CJK_DIGIT.sub(" ", s)
    # "> or =", "=/>", "≥=", "≥/=" and "> or equal to" are "≥" too
    if "=" in s or "or equal" in s:  # (every spelling below has one)
        s = _GE_SPACED.sub("≥", s)
        s = _LE_SPACED.sub("≤", s)
    s = _NORMAL_N.sub(lambda m: m.group(0)[:-1] + (
        "uln" if m.group(0)[:-1].rstrip()[-1] in "x×*" else "× uln"), s)
    if "(" in s:
        s = _words_and_digits(s)
    # every whitespace character but the space is unprintable: a printable line without a
    # double space has no run to squeeze
    return s if "  " not in s and s.isprintable() else _SPACES.sub(" ", s)


def _words_and_digits(s: str) -> str:
    """"eighteen (18) years" → "18 years": the number in words and in digits is one number
    (sought from the bracketed digits, which are rare, back to the word)."""
    out, last = [], 0
    for m in _BRACKETED_DIGITS.finditer(s):
        w = _WORD_BEFORE.search(s, max(0, m.start() - 12), m.start())
        if w is not None and NUMWORDS.get(w.group(1)) == int(m.group(1)):
            out += [s[last:w.start(1)], m.group(1)]
            last = m.end()
    return "".join(out) + s[last:] if out else s


# "≤ 3 x N", "< 1.5 N", "3N" (French: N, the normal's upper limit) where it ends the bound:
# "200 N" of force is followed by nothing a lab reads in ULN (the pattern opens with a digit,
# which the regex engine seeks fast)
_NORMAL_N = re.compile(r"\d\s?(?:[x×*]\s?)?n"
                       r"(?=\s*(?:$|[,;.)]|\s(?:and|or|et|ou|for|in|if)\b))")
_BRACKETED_DIGITS = re.compile(r"\(\s*(\d{1,4})\s*\)")
_WORD_BEFORE = re.compile(r"(?<![\w-])([a-z]+)\s*$")


_GE_SPACED = re.compile(r">\s*+(?:/|or)?\s*+=|=\s*+/?\s*+>|≥\s*/?\s*=|>\s*+or equal(?: to)?\b")
_LE_SPACED = re.compile(r"<\s*+(?:/|or)?\s*+=|=\s*+/?\s*+<|≤\s*/?\s*=|<\s*+or equal(?: to)?\b")
_SPACES = re.compile(r"\s+")


_NUMWORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
             "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+,\d{1,2}(?![\d%])|\d+(?:\.\d+)?"
_NUMW = rf"(?:{_NUM}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
_TIME_UNITS = {"hour": "h", "hours": "h", "hr": "h", "hrs": "h", "h": "h", "day": "d", "days": "d",
               "week": "wk", "weeks": "wk", "wk": "wk", "wks": "wk", "month": "mo", "months": "mo",
               "mo": "mo", "year": "a", "years": "a", "yr": "a", "yrs": "a"}
_TUNIT = r"(?:hours?|hrs?|h|days?|weeks?|wks?|months?|years?|yrs?)"
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
_OTHER_EVENT = re.compile(r"\s*(?:and|or) after|\s*(?:of|from|before|prior to|after) (?:the )?"
                          r"(?:diagnosis|onset|initial|surgery|transplant|death|symptom|viral|"
                          r"the end|ending|completion)")
_FUTURE = re.compile(r"\b(?:anticipat|expected|expect|planned|plan|scheduled|will|during the "
                     r"study|after the last|following the last)")
#: (pattern, comparator, words one of which the pattern needs: it is tried only where one is)
_WINDOW_PATTERNS = [
    # within the previous 3 months / within the past year / within 2 weeks prior to X
    (re.compile(rf"\bwithin (?:the )?(?:(?:previous|past|last|preceding|prior) )"
                rf"(?P<n>{_NUMW} )?(?P<u>{_TUNIT})\b"), "<=", ("within",)),
    (re.compile(rf"\bwithin (?:the )?(?P<n>{_NUMW}) ?(?P<u>{_TUNIT}) "
                rf"(?:before|prior to|preceding|of|from) {_STUDY_EVENT}"), "<=", ("within",)),
    (re.compile(rf"\bwithin (?:the )?(?P<n>{_NUMW}) ?(?P<u>{_TUNIT})(?: period)? "
                r"(?:before|prior)\b(?! (?:to )?(?:the )?(?:diagnosis|onset|surgery))"), "<=",
     ("within",)),
    (re.compile(rf"\bin the (?P<n>{_NUMW}) (?P<u>{_TUNIT}) (?:before|prior to|preceding)\b"),
     "<=", ("in the ",)),
    # (a window's comparators are "<=" and ">=": an exclusive bound on a time before an event
    # is the inclusive one, a day apart — FHIR's timeFromEvent range cannot exclude its ends,
    # and the matcher read "<" as "at least": a stroke 2 months before "< 6 months prior to
    # screening" was outside it)
    # (and in other words: "fewer than 14 days before", "no more than 6 months ago")
    (re.compile(rf"(?:\b(?:less|fewer|no more|not more) than|<) ?(?P<n>{_NUMW}) ?(?P<u>{_TUNIT}) "
                r"(?:before|prior to|preceding|ago)\b"),
     "<=", ("less than", "<", "fewer", "more than")),
    (re.compile(rf"(?:≤) ?(?P<n>{_NUMW}) ?(?P<u>{_TUNIT}) (?:before|prior to)\b"), "<=", ("≤",)),
    # "4 weeks or less before the first dose"
    (re.compile(rf"\b(?P<n>{_NUMW}) ?(?P<u>{_TUNIT}) or (?:less|fewer) (?:before|prior to|"
                r"preceding)\b"), "<=", ("or less", "or fewer")),
    (re.compile(rf"\b(?:in|during|over) the (?:past|last|previous|preceding) "
                rf"(?P<n>{_NUMW} )?(?P<u>{_TUNIT})\b"), "<=",
     ("the past", "the last", "the previous", "the preceding")),
    (re.compile(rf"\bat least (?P<n>{_NUMW}) ?(?P<u>{_TUNIT}) (?:before|prior to)\b"), ">=",
     ("at least",)),
    # "within 42 days since tumor vaccines": the time since the thing named
    (re.compile(rf"\bwithin (?:the )?(?P<n>{_NUMW}) ?(?P<u>{_TUNIT}) since\b"), "<=",
     ("since",)),
    # a bare "within 4 weeks" closing a clause or an item of an "or" list ("investigational
    # treatment within 2 weeks or immunotherapy within 28 days"; not "within 4 weeks or 5
    # half-lives") looks back from screening, unless the criterion speaks of the future
    # ("anticipated discharge within 72 hours")
    (re.compile(rf"\bwithin (?P<n>{_NUMW}) ?(?P<u>{_TUNIT})"
                r"(?=\s*(?:$|[.;,)]|(?:or|and|and/or)\s+(?![\d(]|" + _NUMW +
                r"\b|(?:fewer|less|more|greater|longer|shorter|twice|whichever)\b)))"), "bare",
     ("within",)),
]


def _without_windows(text: str) -> str:
    """The text with its time windows blanked (same length)."""
    for (a, b), _ in time_windows(text):
        text = text[:a] + " " * (b - a) + text[b:]
    return text


def time_windows(norm: str) -> list[tuple[tuple[int, int], dict]]:
    """(span, data) of every time window the (normalised) text states."""
    if not any(w in norm for w in _WINDOW_HINTS) and _HOURS_H.search(norm) is None:
        return []
    return [(span, dict(data)) for span, data in _time_windows(norm)]


#: one of these is in every time unit a window is written in (substring tests, faster than
#: one regular expression of them)
_WINDOW_HINTS = ("hour", "hr", "day", "week", "wk", "month", "year", "yr")
#: hours written "h" ("within 48 h"): sought only where no other unit's word is
_HOURS_H = re.compile(r"\d ?h\b")


@lru_cache(maxsize=4096)
def _time_windows(norm: str) -> tuple[tuple[tuple[int, int], dict], ...]:
    out: list[tuple[tuple[int, int], dict]] = []
    # (the characters a window already took, one flag each: a line of thousands of windows
    # costs its length, not the square of its windows' number)
    taken = bytearray(len(norm))
    for pat, comparator, needs in _WINDOW_PATTERNS:
        if not any(w in norm for w in needs):
            continue
        for m in pat.finditer(norm):
            if any(taken[m.start():m.end()]):
                continue
            if _OTHER_EVENT.match(norm, m.end()):
                continue
            if comparator == "bare":
                if _FUTURE.search(norm):
                    continue
                comparator = "<="
            n = m.group("n")
            value = _num(n) if n else 1
            out.append((m.span(), {"comparator": comparator, "value": value,
                                   "unit": _TIME_UNITS[m.group("u")]}))
            taken[m.start():m.end()] = b"\x01" * (m.end() - m.start())
    out.sort(key=lambda x: x[0])
    return tuple(out)


# --- sex, healthy volunteers, pregnancy, lactation -----------------------------------------

_PEOPLE = (r"(?:patients?|subjects?|participants?|volunteers?|individuals?|adults?|persons?|"
           r"children|people|candidates?)")
_SEX_LEAD = re.compile(rf"^(?:(?:sex|gender)\s*:\s*)?(?:(?:be|being)\s+)?(?:healthy\s+)?"
                       rf"(?:adult\s+)?(?P<sex>male|female|men|women|males|females|boys|girls)"
                       # ("Female sex", "Sex: female": the sex named as such)
                       rf"(?:\s+(?:sex|gender))?"
                       rf"(?:\s+{_PEOPLE})?(?:\s+only)?\s*(?:,|$|aged\b|age\b|between\b|"
                       rf"(?:who are\s+)?(?:≥|≤|>|<|\d))")
_SEX_WORDS = {"male": "male", "males": "male", "men": "male", "boys": "male", "female": "female",
              "females": "female", "women": "female", "girls": "female"}


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
    sex = _SEX_WORDS[m.group("sex")]
    if (_MALE_WORD if sex == "female" else _FEMALE_WORD).search(s, m.end("sex")):
        return []  # "Men ≥ 40 years and women ≥ 50 years": the other sex has its own terms
    return [Fact("sex", {"sex": sex})]


_HV = re.compile(rf"^(?:be\s+|is\s+|are\s+)?(?:a\s+)?healthy\s+(?:adult\s+)?(?:(?:fe)?male\s+)?"
                 rf"(?:{_PEOPLE})\b")


def healthy_facts(norm: str) -> list[Fact]:
    """'Healthy volunteers' stated as who may take part."""
    s = norm.strip(" .;:*")
    if _HV.match(s) and not re.search(r"\bor\b|\bexcept\b|\bwith\b", s):
        return [Fact("healthy-volunteers", {"value": True})]
    return []


#: one of these is in every state word of the lexicon (a test checks it): a line with none
#: names no such state
_PREG_STEMS = ("pregnan", "lactat", "breast", "nursing")
_STATE_STEMS = re.compile("|".join(_PREG_STEMS))


@dataclass(frozen=True, slots=True)
class _StateWords:
    """The pregnancy reader's lexicon (``state_words`` in mappings/eligibility-labs.json),
    compiled: each state word → (state, affirmed), the words' pattern, the filler, and what
    before or after a name makes it another time's or kind of pregnancy."""
    words: dict[str, tuple[str, bool]]
    pattern: re.Pattern[str]
    filler: frozenset[str]
    block_before: re.Pattern[str]
    block_after: re.Pattern[str]


def _any_of(words: Iterable[str]) -> str:
    """A pattern matching any of a lexicon's words, longest first (``trie_regex``); one that
    matches nothing for an empty list."""
    return trie_regex(sorted(words)) or "(?!)"


@cache
def _pregnancy_words() -> _StateWords:
    lex = tables().state_words
    words = {w["text"]: (w["state"], w["present"]) for w in lex["words"]}

    return _StateWords(
        words,
        re.compile(r"\b(?:" + _any_of(words) + r")\b"),
        frozenset(lex["filler"]),
        # (a pregnancy of another time is no state now: "preterm birth in a previous
        # pregnancy", "prior pregnancy loss"; nor is a kind of pregnancy every pregnancy:
        # "twin pregnancy", "ectopic pregnancy"; nor breastfeeding one agrees to stop)
        re.compile(r"(?:" + _any_of(lex["other_before"]) + r")\W*$"),
        re.compile(r"^\W*(?:" + _any_of(lex["other_after"]) + r"|" + _PREG_TRIMESTER +
                   r")|" + _PREG_WHO_AFTER))


# "pregnant women in the first trimester": some pregnancies only
_PREG_TRIMESTER = (r"(?:women\W+)?(?:in|during)\s+(?:the\s+|their\s+)?(?:first|second|third|"
                   r"1st|2nd|3rd)\s+trimester")
# "lactating women who do not agree to stop breastfeeding": a kind of them only
_PREG_WHO_AFTER = (r"^\W*(?:(?:or|and)\s+\w+\s+)?(?:(?:women|woman|females?|patients?|"
                   r"subjects?)\W+)?(?:who|that|whose|which)\b")
# the words around the states of an inclusion written as a sentence of eligibility: its
# subject and "is eligible … if she is", a reference to where they are defined, and a close
# that leads in to nested items ("and at least one of the following conditions applies:")
_ELIGIBLE_IF = re.compile(
    r"^\W*(?:an?\s+)?(?:female\s+|male\s+)?(?:participant|subject|patient|woman|women)s?\s+"
    r"(?:is|are)\s+eligible\s+(?:to\s+(?:participate|enroll|enrol|take\s+part)\s+)?"
    r"(?:in\s+(?:this|the)\s+(?:study|trial)\s+)?if\s+(?:she|he|they)\s+(?:is|are)\b"
    r"|\(\s*see\s+[^()]{1,40}\)"
    r"|,?\s*and\s+(?:at\s+least\s+)?one\s+of\s+the\s+following\s+(?:conditions?\s+)?"
    r"appl(?:y|ies)\s*:?\s*$")
_PREG_LIST_JOINT = re.compile(r"\s*(?:,\s*)?(?:or|nor|and|and/or|/|,)\s*")
# "any concurrent or prior pregnancy": the present one among them
_PREG_NOW_OR = re.compile(r"\b(?:current|concurrent|ongoing|present)\s+(?:or|and/or)\s+[a-z]+\W*$")


def pregnancy_facts(norm: str, exclude: bool | None = None) -> list[Fact]:
    """Pregnancy / lactation when the criterion is about nothing else ("Pregnant or lactating
    women", "pregnancy", "Patient is breast feeding") — or, in an exclusion criterion, when it
    names the state plainly among other reasons to exclude ("Pregnancy, lactation, or
    unwillingness to use contraception"), each of which excludes on its own."""
    if not any(stem in norm for stem in _PREG_STEMS):
        return []
    lex = _pregnancy_words()
    found = [(m.span(), lex.words[m.group(0)]) for m in lex.pattern.finditer(norm)]
    if not found:
        return []
    # "not pregnant or breastfeeding": the denial is the list's — read as "lactation: yes" the
    # line turned away every woman who is not breastfeeding
    # ("non-pregnant or lactating": the prefix is its word's own)
    for i in range(1, len(found)):
        ((prev_start, prev_end), (_, prev_value)), ((start, end), (kind, value)) = \
            found[i - 1], found[i]
        if value and not prev_value and norm.startswith("not ", prev_start) and \
                _PREG_LIST_JOINT.fullmatch(norm, prev_end, start):
            found[i] = ((start, end), (kind, False))
    rest = norm
    for (a, b), _ in reversed(found):
        rest = rest[:a] + " " * (b - a) + rest[b:]  # same length: clause spans stay valid
    if exclude is not True:
        # "A female participant is eligible to participate if she is not pregnant (see
        # Appendix 3), not breastfeeding, and at least one of the following conditions
        # applies:" (an industry protocol template): the states are the lead-in's own, its
        # nested items the ways to meet the rest
        rest = _ELIGIBLE_IF.sub(lambda m: " " * len(m.group(0)), rest)
    words = re.findall(r"[a-z/\-]+|\d+|[^\s\w.;:()]", rest)
    if exclude is True and any(not value for _, (_, value) in found):
        # "must not be pregnant", "non-pregnant women" among the exclusions: a requirement in
        # the wrong list — read as written it would exclude everyone not pregnant (text, as a
        # denied bound there is)
        return []
    if any(w not in lex.filler for w in words):
        # a sentence of its own that says only the state ("Non-pregnant and non-nursing. The
        # effect of the drug on the fetus is unknown."): the other sentences explain it
        pure = [(a, b) for a, b in _clauses(norm)
                if any(a <= x < b for (x, _), _ in found)
                and not any(w not in lex.filler for w in re.findall(
                    r"[a-z/\-]+|\d+|[^\s\w.;:()]", rest[a:b]))]
        if pure:
            found = [(sp, kv) for sp, kv in found if any(a <= sp[0] < b for a, b in pure)]
            return _preg_list(found)
        if not exclude:
            return []
        found = [((a, b), kv) for (a, b), kv in found if kv[1]
                 and (not lex.block_before.search(norm[max(0, a - 12):a]) or
                      _PREG_NOW_OR.search(norm[max(0, a - 40):a]))
                 and not lex.block_after.match(norm[b:])]
        if found and _states_conditional(norm, found):
            return []
    return _preg_list(found)


def _states_conditional(norm: str, found: list[tuple[tuple[int, int], tuple[str, bool]]]
                        ) -> bool:
    """Whether an exclusion's pregnancy or lactation is said to hold only in some case. A
    clause after a semicolon, or a list item opened by "or"/"and", after the first state and
    naming none, is another reason of its own, and so is its condition ("Pregnancy,
    lactation, or unwillingness to use contraception if pregnancy is a risk": before, the
    whole line was text); an item that opens with its condition (", if they do not agree to
    stop breastfeeding") is the states' own."""
    first = min(a for (a, _), _ in found)
    kept = norm
    for m in re.finditer(r"[^,;]+", norm):
        if m.start() > first and not any(m.start() <= x < m.end() for (x, _), _ in found) and (
                norm[m.start() - 1] == ";" or _ITEM_JOINT.match(norm, m.start())):
            kept = kept[:m.start()] + " " * (m.end() - m.start()) + kept[m.end():]
    return conditional(kept)


_ITEM_JOINT = re.compile(r"\s*(?:or|and|and/or|nor)\s")


def _preg_list(found: list[tuple[tuple[int, int], tuple[str, bool]]]) -> list[Fact]:
    facts: list[Fact] = []
    seen: set[str] = set()
    for _, (kind, value) in found:
        if kind not in seen:
            facts.append(Fact(kind, {"value": value}))
            seen.add(kind)
    return facts


_CONDITIONAL = re.compile(
    r"\bif\b|\bunless\b|\bin case\b|\bmay be (?:enrolled|included|eligible)\b|"
    # "patients with Gilbert's syndrome may have a bilirubin up to 3 × ULN": a permission
    r"\b(?:may|can) have\b|"
    r"\bare (?:also )?eligible\b|\b(?:is|are) (?:allowed|permitted)\b|"
    # "bilirubin ≤ 1.5 × ULN, except subjects with Gilbert's syndrome who must have …": the
    # patients excepted have a bound of their own, so neither is every patient's
    r"\bexcept (?:for |in )?(?:patients?|participants?|subjects?|those|individuals?|people|"
    r"persons|women|men|children)\b|"
    r"\bfor (?:an? )?(?:patients?|participants?|subjects?|individuals?|those|women|men|"
    r"females|males|children|adults|people|persons)\b|"
    r"\bin (?:patients|participants|subjects|those|women|men|children|adults)\b|"
    r"\bin an? (?:patient|participant|subject)\b|"
    # "… ≤ 5 × ULN in the presence of / with liver metastases", "when … are present":
    # the bound holds for some patients only
    r"\bin the (?:presence|setting|context) of\b|\bin cases of\b|"
    # "≥ 15 mm in short axis for lymph nodes": some lesions, not all
    r"\bfor (?:(?:malignant |pathological )?lymph nodes?|nodal lesions?|bone lesions?)\b|"
    r"\bwhen (?:there (?:is|are)\b|(?:[a-z'-]+ ){1,4}(?:is|are) present\b)|"
    r"\bwith (?:known |documented |confirmed )?(?:(?:liver|hepatic|bone|bony|osseous|marrow|"
    r"bone marrow|brain|cns|lung|pulmonary|renal|kidney|skin|nodal|lymph node|leptomeningeal)"
    r"(?: or | and |, | and/or |/)?)+ ?(?:metastas[ie]s|involvement)\b|"
    r"\bfor\s*[<>≤≥]\s*\d+\s*(?:years?|yrs?)\s*(?:old|of age)|"
    # "for Part B, …", "in cohort 2 …": one part of the study
    r"\b(?:for|in) (?:the )?(?:part|cohort|arm|group|stage|module|phase) [a-z0-9]{1,3}\b|"
    r"\bfor (?!(?:all|any|both|every|each)\b)(?:[a-z][a-z-]* ){1,3}"
    r"(?:residents|patients|participants|subjects|women|men|children|cohorts?|groups?|arms?)\b")


def conditional(text: str) -> bool:
    """Whether a piece of criterion text makes what it says depend on something else
    ("… if aged ≥ 18", "… in patients with Gilbert's syndrome", "subjects with Gilbert's
    syndrome must have …")."""
    if any(w in text for w in _REQUIRED_HINTS) and _subgroup_requirement().search(text):
        return True
    stated = False
    for m in _CONDITIONAL.finditer(text):
        if m.group(0) == "if" and (
                _FINDING_IF.match(text, m.end()) or
                _SELF_IF.search(text, max(0, m.start() - 40), m.start()) or (
                    text.rstrip().endswith(":") and
                    _LEAD_IF.search(text, max(0, m.start() - 40), m.start())) or (
                    stated and _OR_IF.search(text, max(0, m.start() - 10), m.start()))):
            # "will be excluded if they are pregnant[, or if …]": the criterion itself;
            # "adults aged ≥ 18, were included if they had:": a lead-in to the list below
            stated = True
            continue
        return True
    return False


#: one of these is in every requirement verb below (substring tests, before the pattern)
_REQUIRED_HINTS = ("must", "should", "shall", "need", "have to", "has to", "required")
#: what a group of the participants is required to have or be
_REQUIRED = (r"(?:must|should|shall|will need to|need to|needs to|have to|has to|"
             r"(?:are|is|will be) required to)\s+(?:also\s+)?(?:have|be|show|demonstrate|"
             r"achieve|maintain)\b")


@cache
def _subgroup_requirement() -> re.Pattern[str]:
    """A requirement of some participants only: the lexicon's words for who takes part with
    what singles them out ("patients with liver metastases must have …", "subjects on
    anticoagulants should have …", "diabetic patients must have …"). A bound that follows is
    theirs, not everyone's (before, "subjects with Gilbert's syndrome must have direct
    bilirubin ≤ 1.5 mg/dL" demanded the direct bilirubin of every patient)."""
    who = _any_of([*tables().condition_words["who"], "those"])
    return re.compile(
        rf"\b(?:{who})\s+(?:with|who|whose|on|taking|receiving|treated with)\b"
        rf"(?:[^;.]|\.(?=\d)){{0,80}}?\b{_REQUIRED}|"
        rf"\b(?:diabetic|hypertensive|cirrhotic|an(?:a)?emic|obese|hiv-(?:positive|infected)|"
        rf"seropositive)\s+(?:{who})\s+{_REQUIRED}", re.IGNORECASE)


def _group_before_requirement(lead: str) -> str | None:
    """The group in a clause's words before its bound that say what a group must have
    ("patients with liver metastases must have" → "patients with liver metastases"), as the
    condition of the group's bound; None for other words."""
    m = re.fullmatch(rf"(.+?)\s+{_REQUIRED}(?:\s+(?:an?|the))?", " ".join(lead.split()),
                     re.IGNORECASE)
    if m is None:
        return None
    if _subgroup_requirement().match(m.group(0)) or \
            re.match(rf"{_who_first().pattern}\s+(?:aged|older|younger|over|under|above|"
                     r"below)\b", m.group(1), re.IGNORECASE):
        return m.group(1)  # (or singled out by age: "patients older than 65 years")
    return None


# "will be excluded if …": the "if" states the exclusion itself. ("Eligible/included if …" is
# left conditional: "those with BMI up to 28 will be included if waist < 96 cm" is a
# permission under a condition.)
_SELF_IF = re.compile(r"\b(?:excluded|ineligible)\s+$")
# "if screening shows that WBC < 3000/µL": the finding is the criterion, not a condition on it
_FINDING_IF = re.compile(r"\s+(?:the\s+)?(?:screening|laboratory|lab|blood|test|tests|"
                         r"examination|results?)(?:\s+(?:tests?|results?|examination))*\s+"
                         r"(?:shows?|reveals?|indicates?|demonstrates?)\b")
_OR_IF = re.compile(r"\b(?:or|and)\s+$")
_LEAD_IF = re.compile(r"\b(?:included|eligible|enrolled|recruited)\s+$")


# --- measurable concepts (the grammar) -----------------------------------------------------

_AGE_STOP = re.compile(r"postmenstrual|bone age|onset|diagnos|\bat birth|formula|\bper age|"
                       r"child(?:ren)? (?:of|under)|"
                       # "at least one child, aged 12-18": someone else the participant has
                       r"(?:(?:\bat least|≥)\s+one|\btheir|\bhis|\bher|\bhas a|\bhave a|"
                       r"\bwith(?: an?| their| her| his)?|\bof a)\s+(?:young\s+)?"
                       r"(?:child|children|infants?|bab(?:y|ies)|sons?|daughters?|"
                       r"grandchild(?:ren)?)\b|"
                       r"\bparent|\bmother|caregiver|partner|sibling|"
                       # "family history of sudden death under 40 years of age": the age of
                       # a relative, at an event
                       r"\bfamily\b|\brelatives?\b|\bdeath\b|\bdied\b|"
                       r"\bspouse|\bage-(?:matched|adjusted|appropriate)|for (?:his|her|their) age|"
                       # "maximum serum creatinine 0.6 mg/dL for age 2 to < 6 years": the row
                       # of a table by age, whose age is the condition of another bound
                       r"\bfor (?:the )?ages?\b")
_FEMALE_WORD = re.compile(r"\b(?:women|woman|females?|girls?)\b")
_MALE_WORD = re.compile(r"\b(?:men|man|males?|boys?)\b")
# a sex word with a number after it in its clause ("…; men ≥ 40 years")
# (an age: a comparator and a number, or a number of years — not "male to female is 3:1")
_AN_AGE = (r"[^;.]{0,30}?(?:[≤≥<>]\s*\d|\b(?:aged?|ages?)\s+\d|"
           r"\d+\s*(?:(?:-|–|to)\s*\d+\s*)?(?:years?|yrs?|y\b))")
_FEMALE_NUMBER = re.compile(_FEMALE_WORD.pattern + _AN_AGE)
_MALE_NUMBER = re.compile(_MALE_WORD.pattern + _AN_AGE)


def _age_of_one_sex(canon: str, r: Reading) -> bool:
    """Whether an age bound is one sex's, the other sex given its own age elsewhere in the
    line ("Women must be ≥ 50 years of age; men ≥ 40 years": ≥ 50 is not every patient's)."""
    start = max(0, r.pos - 30)
    before = canon[start:r.pos]
    rest = canon[:r.pos] + " ; " + canon[max(r.end, r.bound.end):]
    for own, other, other_number in ((_FEMALE_WORD, _MALE_WORD, _MALE_NUMBER),
                                     (_MALE_WORD, _FEMALE_WORD, _FEMALE_NUMBER)):
        if own.search(before) and not other.search(before) and other_number.search(rest):
            return True
    return False


# after the bound, "onset"/"diagnosis" make it an age at an event only when they follow it
# closely ("< 18 years at diagnosis"); "≥ 18 years, with an initial diagnosis of …" is the
# participant's age
#: a second group of patients named with its own age after a first ("adults (≥ 18 years) and
#: adolescents (12 to 17 years)")
_ANOTHER_GROUPS_AGE = re.compile(
    r"(?:\band|\bor|,|;)\s*+(?:the\s+)?(?:adolescents?|children|child|adults?|infants?|elderly|"
    r"teenagers?|neonates?|newborns?|toddlers?|youths?|minors?)\s*+(?:\(\s*+)?(?:aged?\s++|of\s++)?"
    r"(?:between\s++|from\s++)?[≥≤<>]?\s*+\d")
_AGE_STOP_AFTER = re.compile(
    r"^[^,;]{0,12}\b(?:at|of|since|before|after)\s+(?:the\s+)?(?:time\s+of\s+)?(?:first\s+)?"
    r"(?:onset|diagnos)|postmenstrual|bone age|\bat birth|formula|\bper age|"
    r"child(?:ren)? (?:of|under)|\bparent|\bmother|caregiver|partner|sibling|"
    r"\bspouse|\bage-(?:matched|adjusted|appropriate)|for (?:his|her|their) age")
#: a lead that makes the line a table by age ("Creatinine based on age/gender as follows: age 1
#: to < 2 years, maximum 0.6 mg/dL; 2 to < 6 years, 0.8 mg/dL"): its ages are the rows' keys,
#: not the participant's (across lines, :func:`_age_table_rows` finds the same)
_AGE_TABLE_LEAD = re.compile(r"\b(?:based on|by|according to|adjusted (?:for|to)|depending on|"
                             r"varying with|varies with)\s+(?:the\s+)?(?:patient'?s?\s+)?age\b|"
                             r"\bage\s*(?:/|and|&)\s*(?:gender|sex)\b")
# "… at the time of breast cancer diagnosis": an age at an event with the disease named before
# it (beyond the few words _AGE_STOP_AFTER looks at)
_AGE_AT_DIAGNOSIS = re.compile(r"[^,;]{0,12}\bat\s+(?:the\s+)?(?:time\s+of\s+)?"
                               r"(?:(?!(?:and|or|with)\b)[a-z-]+\s+){1,3}?(?:onset|diagnos)")
# an age stated without the word "age": "≥ 18 years old", "Adults 18-65 years", "Men and women
# over 40 years" — a time bound at the head of the criterion, or followed by "of age"/"old"
_AGE_HEAD = re.compile(
    r"^\s*(?:(?:healthy|adult|adults|male|female|males|females|men|women|man|woman|boys?|girls?|"
    r"premenopausal|postmenopausal|perimenopausal|pre-menopausal|post-menopausal|pregnant|"
    r"children|child|infants?|neonates?|newborns?|adolescents?|elderly|older|patients?|subjects?|"
    r"participants?|volunteers?|individuals?|persons?|people|outpatients?|inpatients?|every|"
    r"of|either|both|sex|sexes|gender|genders|and|or|and/or|any|all|who|are|is|be|being|must|aged|"
    r"age|ages|years|year|the|a|an|were|was|inclusion|criteria|criterion|i\.\s?e\.?|,|:|/|-|\(|"
    r"\[)\s*)*$")
_AGE_OF = re.compile(r"\s*+-?\s*+(?:of age|old|aged?\b|y/o|of life|of chronological age)")
_AGE_OF_WITHIN = re.compile(r"\d\s*+[a-z]+\s*+(?:of age|old|of life)\b")
_AGE_AFTER = re.compile(r"\s*+(?:-?\s*+(?:of age|old|aged?\b|y/o|of life|of chronological age|"
                        r"at (?:the time of )?"
                        r"(?:screening|enrol|inclusion|consent|signing|randomi|study entry|"
                        r"registration|the time)))")
#: the words of ``_AGE_AFTER`` wherever they are (a superset: "old" in "threshold" too)
_AGE_AFTER_WORDS = re.compile(r"of age|old|age|y/o|of life|at (?:the time of )?"
                              r"(?:screening|enrol|inclusion|consent|signing|randomi|"
                              r"study entry|registration|the time)")
_AGE_WORDS = re.compile(r"(?:older|younger)\s+than|(?:over|under|above|below)\s+(?:the\s+)?age|"
                        r"[\d.]+\s*(?:(?:years?|yrs?)\s+)?(?:(?:of age|old),?\s+)?(?:or|and)\s+"
                        r"(?:older|younger)\b")
_DURATION = re.compile(r"\s*(?:since|from|after|before|post|of|per|between|prior|in|ago|"
                       r"duration|history|following|until|or more (?:of|since|after)|"
                       r"(?:or|and) (?:more|longer|less|fewer) (?:of|since|after|before|from))\b")
#: a line with an age has one of these words (or "h", "y", a number then "y"): substring tests
#: first, as one regular expression of them all was tried at every position of every line
_AGE_HINT_WORDS = ("year", "yr", "month", "week", "day", "hour", "old", "age", "岁", "patient",
                   "subject", "participant", "adult", "men", "male", "volunteer", "individual",
                   "person", "people")
_AGE_HINT = re.compile(r"\bh\b|\by\b|\d\s*y")


def _age_hint(s: str) -> bool:
    return any(w in s for w in _AGE_HINT_WORDS) or _AGE_HINT.search(s) is not None
_PEOPLE_HEAD = re.compile(r"\b(?:patients?|subjects?|participants?|adults?|men|women|males?|"
                          r"females?|volunteers?|individuals?|persons?|people)\b")
_TO_NEXT = re.compile(r"\s*(?:to|and|,|-)\s*(?=[≤≥<>\d])")
_TIME_UCUM = frozenset(["a", "mo", "wk", "d", "h"])


# the words that put an age at an event: "since 16 years of age", "before age 45"
_EVENT_WORDS = r"since|before|after|by|until|till|when"
_EVENT_BEFORE = re.compile(rf"\b(?:{_EVENT_WORDS}|at|from|during|duration|history|for)\s+"
                           r"(?:the\s+)?(?:age\s+(?:of\s+)?)?$|"
                           r"\b(?:duration|history|course)\s+of\s+$")
# "smoking since age 15 or younger": with the word "age" named, only the words that cannot
# lead the participant's own age ("patients from age 18 to 65" is theirs)
_AGE_EVENT_BEFORE = re.compile(rf"\b(?:{_EVENT_WORDS})\s+(?:the\s+)?$")
_AGE_START = re.compile(r"[≤≥<>]|(?<![\w.,])(?:between\b|from\b|\d)")


def _age_readings(canon: str, norm: str, taken: list[tuple[int, int]]) -> list[Reading]:
    """Ages stated without an age word (see ``_AGE_HEAD``)."""
    out: list[Reading] = []
    if not _age_hint(canon) and not _age_hint(norm):
        return out
    age = tables().lab("age")
    # where the last words that can follow an age ("of age", "old", "at screening") start: a
    # bound after them, neither at the head nor worded, is no age (most numbers of a long
    # line are not, and reading each one's bound cost more than the rest of this reader)
    last_after = max((m.start() for m in _AGE_AFTER_WORDS.finditer(canon)), default=-1)
    for m in _AGE_START.finditer(canon):
        p = m.start()
        if any(a <= p < b for a, b in taken) or (out and p < out[-1].end):
            continue
        if p > 0 and canon[p - 1].isdigit():
            continue
        worded = bool(_AGE_WORDS.match(norm[p:]))
        head = bool(_AGE_HEAD.match(canon[:p]))
        if p > last_after and not worded and not head:
            continue
        found = grammar_bounds(age, canon, p)
        if found is None:
            continue
        bound, alts, either, end = found
        # (the grammar may have read "of age" as part of the bound: "6 months of age or older")
        after = bool(_AGE_AFTER.match(canon[end:]) or
                     _AGE_OF_WITHIN.search(canon, bound.start, end))
        j = _TO_NEXT.match(canon, end)
        if not after and j:
            # "≥ 28 days to < 18 years of age": one side of a range whose other side is an age
            nxt = grammar_bounds(age, canon, j.end())
            after = nxt is not None and nxt[0].unit_written and nxt[0].unit in _TIME_UCUM \
                and bool(_AGE_AFTER.match(canon[nxt[3]:]))
        people = head and bool(_PEOPLE_HEAD.search(canon[:p])) and bound.unit is None and \
            all(12 <= v <= 100 for v in (bound.low, bound.high) if v is not None)
        if not bound.unit_written and not worded and not after and not people:
            continue
        if bound.unit_written and bound.unit not in _TIME_UCUM:
            continue
        if not bound.unit_written and after and not _AGE_OF.match(canon[end:]):
            after = False  # "score ≥ 12 at screening": only "of age"/"old" makes it an age
        if (worded or after or people) and not bound.unit_written:
            bound.unit = "a"
        elif head and not after and (bound.unit != "a" or _DURATION.match(canon[end:])):
            # "> 48 h of treatment", "< 3 months since surgery": a duration, not an age
            head = False
        if not (head or after or worded):
            continue
        if not head and _EVENT_BEFORE.search(canon, max(0, p - 30), p):
            # "smoked since 16 years of age or younger", "a duration of 10 years or more": an
            # age at an event, or a time span, not the participant's age now
            continue
        out.append(Reading(p, age, bound, alts, either, end))
    return out


def _unit_of(lab: Lab, b: Bound, age_word: bool) -> str | bool | None:
    """The UCUM unit a bound is in; False when it cannot be known (then it stays text)."""
    if b.relative in ("ULN", "LLN"):
        ok = b.relative in lab.relative or (lab.kind == "lab" and not lab.relative)
        return None if ok else False
    if b.relative == "predicted":
        return "%" if "predicted" in lab.relative else False
    if b.unit is not None:
        if lab.kind == "score":
            # "points" is the score itself; a scale read off a length (the pain VAS, "≥ 4 cm"
            # = 40 mm) keeps the unit that converts it
            u = lab.unit_for(b.unit)
            return u.ucum if u is not None and (u.factor, u.offset) != (1, 0) else lab.unit
        return b.unit
    values = [v for v in (b.low, b.high) if v is not None]
    bare = {lab.bare_unit(v) for v in values}
    if len(bare) == 1 and None not in bare and (lab.kind != "age" or age_word):
        return bare.pop()
    if not lab.requires_unit and lab.kind not in ("age", "score"):
        return lab.unit
    return False


def _bound_data(lab: Lab, b: Bound, age_word: bool) -> dict[str, Any] | None:
    unit = _unit_of(lab, b, age_word)
    if unit is False:
        return None
    d = b.data()
    d["unit"] = unit
    if lab.kind == "age":
        del d["relative"]
        if unit not in _TIME_UCUM:
            return None
    return d


_SEX_WORDS_RE = re.compile(r"\b(?:(?:in|for|among)\s+(?:the\s+)?)?(?:men|women|males?|females?|"
                           r"boys|girls)\b")
_SEX_PAREN = re.compile(r"\s*(?:in\s+|for\s+)?(?:men|women|males?|females?|boys|girls|"
                        r"(?:f|m|w|females?|males?|women|men)\s*/\s*(?:f|m|females?|males?|women|"
                        r"men))\s*")


_GLUED = re.compile(r"[\w-]*\([^()\s]*\)[\w-]*")


@cache
def _bracket_names() -> frozenset[str]:
    return frozenset(n for lab in tables().labs for n in lab.names if "(" in n)


def _word_start(s: str, i: int) -> int:
    while i > 0 and (s[i - 1].isalnum() or s[i - 1] == "-"):
        i -= 1
    return i


_REF_LIMIT_BOUND = re.compile(r"[≤≥<>]\s*+(?:the\s++)?(?:institutional\s++)?(?:uln|lln|unl|lnl|"
                              r"(?:upper|lower)\s++limit)")


def _strip_parens(norm: str) -> str:
    # a parenthesis without a number is a remark ("(corrected by Hb)"), never a bound: blank
    # it (same length, so spans stay valid) — unless it is only a name the lexicon knows
    # ("Body Mass Index (BMI)"): then only its brackets go
    pat, _ = grammar_names()

    def blank(m: re.Match[str]) -> str:
        inner = m.group(0)[1:-1]
        if m.start() > 0 and norm[m.start() - 1].isalnum():
            # "25(OH)D", "Lp(a)": brackets inside one word of a name the lexicon knows
            w = _GLUED.match(norm, _word_start(norm, m.start()))
            if w and w.group(0) in _bracket_names():
                return m.group(0)
        if m.start() > 1 and norm[m.start() - 1] == " ":
            # "lipoprotein (a)": the bracket is the end of a name
            i = _word_start(norm, m.start() - 1)
            if norm[i:m.start() - 1] + " " + m.group(0) in _bracket_names():
                return m.group(0)
        if _SEX_PAREN.fullmatch(inner):
            # "> 450 ms (men) or > 470 ms (women)": kept, so the grammar reads a bound for each
            # sex (or, for one sex only, leaves it text) instead of a bound for everyone
            return m.group(0)
        if _CLUSIVE_PAREN.fullmatch(inner):
            # "9 to 12 g/dL (exclusive)": part of the range, which the grammar reads
            return m.group(0)
        if _REF_LIMIT_BOUND.search(inner):
            # "LVEF ≥ 50 % (or ≥ LLN)": a bound at a reference limit has no digit, and is no
            # remark — blanked, the bound before it was read as the only way in
            return m.group(0)
        if _acronym_of_name(norm, m.start(), inner.strip()):
            # "FEV1/forced vital capacity (FVC) ratio": the initials of the name before it,
            # not a second mention
            return " " * len(m.group(0))
        if pat.fullmatch(inner.strip()) or _graded_names().search(inner) or (
                _ROMAN_CLASS.search(inner) and pat.search(inner)):
            # "(NYHA class III or IV)", "(Child-Pugh B)": a score in its letter or Roman
            # classes, which the grammar reads without a digit
            return " " + inner + " "
        return " " * len(m.group(0))

    if "(" not in norm:
        return norm
    def digits(m: re.Match[str]) -> str:
        if pat.fullmatch(m.group(1).strip()):
            # "(FEV1)", "(HbA1c)": a name the lexicon knows, digits and all, is not a remark
            return " " + m.group(1) + " "
        if _ABBREVIATION.fullmatch(m.group(1)):
            # another one word with digits is an abbreviation, a remark ("partial pressure
            # of carbon dioxide (CO2) < 32 mmHg")
            return " " * len(m.group(0))
        return m.group(0)

    if "/" in norm or "%" in norm:
        # "≤ 1.5 mg/dL (26 µmol/L) or ≤ 3 mg/dL for Gilbert's": the bound again in another
        # unit, nothing else — blanked, so what follows is read after the bound
        norm = _RESTATED_QUANTITY.sub(lambda m: m.group(1) + " " * (len(m.group(0)) -
                                                                     len(m.group(1))), norm)
    norm = _PAREN_DIGIT.sub(digits, norm)
    norm = _PAREN_NUMBER.sub(lambda m: f" {m.group(1)} ", norm)  # "nineteen (19) years"
    # "(range 0-42)", "(scale 0-10)": the scale a score is on, not a bound on it
    norm = _PAREN_SCALE.sub(lambda m: " " * len(m.group(0)), norm)
    out = _PAREN_WORDS.sub(blank, norm)
    if out != norm and _NESTED_PAREN.search(norm):
        # "(serum glutamic oxaloacetic transaminase [SGOT])": the inner remark blanked, the
        # outer one is a remark too
        out = _PAREN_WORDS.sub(blank, out)
    return out


_PAREN_NUMBER = re.compile(r"\((\d+)\)")
_ROMAN_CLASS = re.compile(r"\b(?:i|ii|iii|iv|v|vi)\b")
_PAREN_DIGIT = re.compile(r"\(([^()]*\d[^()]*)\)")
_QTY = r"[\d.,]+\s*(?:[x×]\s*10\^?\d+\s*)?[a-zµ/%][^\s();,]{0,12}"
#: a bracket holding only a quantity (or two) right after a number and its unit
_RESTATED_QUANTITY = re.compile(r"(\d\s*[a-zµ/%][^\s();,]{0,12})\s*\(\s*(?:=\s*)?" + _QTY +
                                r"(?:\s*[;,]\s*" + _QTY + r")*\s*\)")
_PAREN_SCALE = re.compile(r"\(\s*(?:score\s+|possible\s+)?(?:range|scale|scored)\b[^()]*\)")
_PAREN_WORDS = re.compile(r"\([^()0-9]*\)")
_NESTED_PAREN = re.compile(r"\([^()]*\(")
_ABBREVIATION = re.compile(r"\s*[a-z][a-z0-9-]{0,9}\s*")
_CLUSIVE_PAREN = re.compile(r"\s*(?:both\s+)?(?:ex|in)clusive\s*")


# "NRS (0-10) ≥ 4", "pain NRS 0-10 ≥ 4", "pain (NRS 0-10) ≥ 4", "MMSE (0-30) of 24 or
# more", "MADRS (0-60) total score ≥ 22": a span from 0 or 1 right after a name (the bracket
# holding both may close after it), which a bound inside it follows, is the scale the score
# is on (as "(range 0-42)" is), not a bound of its own; a span a bound outside it follows
# ("ECOG 0-1 > 3 months …") is left to be read
_SCALE_SPAN = re.compile(
    r"(?<=[a-z0-9])(?P<s>\s*\(\s*(?P<a>[01])\s*-\s*(?P<b>\d+)(?:\s*(?:mm|cm|points?))?\s*\)|"
    r"\s+(?P<a2>[01])\s*-\s*(?P<b2>\d+)(?:\s*(?:mm|cm|points?)\b)?)"
    r"(?=\s*+\)?\s*+(?:(?:total|global)\s++)?(?:scores?\s++)?(?:[≥≤<>]\s*+(?P<v>\d++(?:\.\d+)?+)"
    r"(?!\s*(?:years?|months?|weeks?|days?|hours?)\b)|"
    r"of\s+(?P<w>\d+(?:\.\d+)?)\s+or\s+(?:more|greater|higher|above|less|fewer|lower|below)\b|"
    r"between\s+(?P<x>\d+(?:\.\d+)?)\s))")


#: the count of a scale's items right after its name ("HAM-D 17 item total score ≥ 20",
#: "Hamilton Depression Rating Scale (17 items) ≥ 18"): its version, not a value
_ITEMS_SPAN = re.compile(r"(?<=[a-z])\s*+(?:\(\s*+\d+\s*+-?\s*+items?\s*+\)|\d+\s*+-?\s*+items?\b)"
                         r"(?=\s*+(?:(?:total|global)\s++)?(?:scores?\s*+)?[≥≤<>])")


def _without_scale_spans(canon: str) -> str:
    if "item" in canon:
        canon = _ITEMS_SPAN.sub(lambda m: " " * len(m.group(0)), canon)
    if "-" not in canon:
        return canon

    def blank(m: re.Match[str]) -> str:
        lo, hi = int(m.group("a") or m.group("a2")), int(m.group("b") or m.group("b2"))
        v = float(m.group("v") or m.group("w") or m.group("x"))
        return " " * len(m.group(0)) if lo < hi and lo <= v <= hi else m.group(0)

    return _SCALE_SPAN.sub(blank, canon)


def _acronym_of_name(norm: str, bracket: int, inner: str) -> bool:
    """Whether ``inner`` (bracketed at ``bracket``) is the initials of the words right before
    it, and those words a name the lexicon knows."""
    if not inner.isalpha() or not 2 <= len(inner) <= 6:
        return False
    words = norm[max(0, bracket - 80):bracket].replace("/", " ").split()[-len(inner):]
    return len(words) == len(inner) and "".join(w[0] for w in words) == inner and \
        grammar_names()[0].fullmatch(" ".join(words)) is not None


def _conditional_parens(text: str) -> list[tuple[int, int]]:
    # a parenthesis stating an exception ("(≤ 5 × ULN in patients with liver metastases)")
    # qualifies the bound before it: its bounds are not requirements of their own
    if "(" not in text:
        return []
    return [m.span() for m in _PAREN.finditer(text)
            if (conditional(m.group(0)) and not _PAREN_IF.match(m.group(0)))
            or _PAREN_EXCEPT.match(m.group(0))]


_PAREN = re.compile(r"\([^()]*\)")
_PAREN_IF = re.compile(r"\(\s*(?:if|for|only)\b")
# "≥ 10 mm in longest diameter (except lymph nodes, which must have a short axis ≥ 15 mm)":
# what the exception's bracket holds is the excepted's, not everyone's
_PAREN_EXCEPT = re.compile(r"\(\s*(?:except|excepting|excluding|other than|apart from|"
                           r"with the exception of)\b")


def _qualifying_parens(norm: str) -> list[tuple[int, int]]:
    """Spans of the brackets that make the bound before them hold for some patients only, or
    not for some: "≤ 5 × ULN (if liver metastases)", "≤ 1.5 mg/dL (unless Gilbert's
    syndrome)". (The remark blanking drops a bracket without a number, so these are found in
    the text as written.)"""
    if "(" not in norm:
        return []
    return [m.span() for m in _PAREN.finditer(norm)
            if (conditional(m.group(0)) or _EXCEPTION.search(m.group(0)))
            and not _PAREN_REMARK.fullmatch(m.group(0))
            and not _PERMISSION.fullmatch(m.group(0))
            and not _WHICH_VALUE.search(m.group(0))]


_EXCEPTION = re.compile(r"\b(?:unless|except|excepting|excluding|exception|other than|apart from|"
                        r"not (?:required|needed|"
                        r"necessary|applicable))\b")
# "(if available)": about the test, not about whom the bound is for
_PAREN_REMARK = re.compile(r"\(\s*(?:if|when|where) (?:applicable|available|needed|necessary|"
                           r"known|measured|done|performed|tested|(?:clinically )?indicated)"
                           r"\s*\)")
# "(transfusion is allowed)", "(may have been transfused)", "(with or without transfusion)":
# how a patient may reach the bound, which still holds
_PERMISSION = re.compile(r"\(\s*(?:(?:[a-z-]+ ){1,3}(?:is|are) (?:allowed|permitted)|"
                         r"(?:patients? )?(?:may|can) (?:have been|be) (?:transfused|"
                         r"supported with (?:transfusions?|growth factors?))|"
                         r"(?:with or without|after|post-?) ?transfusions?(?: support)?"
                         r"(?: (?:is|are) (?:allowed|permitted|acceptable))?)\s*\)")
# "(if MRI and TRUS have conflicting values, the MRI value will be used)": which of two
# measurements the bound is applied to when they disagree, not whom it is for ("(if
# Gilbert's, the direct bilirubin value will be used)" names patients: still a condition)
_WHICH_VALUE = re.compile(r"\b(?:conflicting|differ\w*|disagree\w*|discrepan\w*|both)\b.*\b"
                          r"(?:values?|measurements?|results?|readings?)\s+(?:will|shall|should|"
                          r"is|are|must)\s+(?:be\s+)?(?:used|utili[sz]ed|taken|preferred|considered)\b")


def _qualified(r: Reading, canon: str, spans: list[tuple[int, int]]) -> bool:
    """Whether a qualifying bracket follows what reading ``r`` read (its own alternative
    aside): the bound it read is then not a requirement for every patient."""
    end = max(r.end, r.bound.end, *(b.end for b, _ in r.alternatives))
    end = len(canon[:end].rstrip(" ,;:"))  # the reading may take in a blanked bracket's room
    return any(a >= end and not canon[end:a].strip(" ,;:") and
               not any(a <= b.start < z for b, _ in r.alternatives) for a, z in spans)


_BRACKET_BOUND = re.compile(r"\d|\b(?:uln|lln)\b")


def _excepted_with_list(r: Reading, rs: list[Reading], norm: str,
                        spans: list[tuple[int, int]]) -> bool:
    """Whether an exception in brackets with no bound of its own closes the list of bounds
    ``r`` is in: "INR ≤ 1.5 and aPTT ≤ 1.5 × ULN (unless on therapeutic anticoagulation)",
    "hemoglobin ≥ 9 g/dL and platelets ≥ 100,000/µL (unless due to marrow involvement)" —
    written after the last bound, it excepts the patients from the list, not from that bound
    alone (which :func:`_qualified` already leaves). The list is the bounds read in the
    bracket's clause before it."""
    for a, z in spans:
        bracket = norm[a:z]
        if a < r.end or _EXCEPTION.search(bracket) is None or _BRACKET_BOUND.search(bracket):
            continue
        clause = next(((c, d) for c, d in _clauses(norm) if c <= a < d), (0, len(norm)))
        if clause[0] <= r.pos and any(q is not r and r.end <= q.pos < a for q in rs):
            return True
    return False


# a bound states a number: in digits, in words, as a class in Roman numerals, or as a
# reference limit alone ("≤ ULN" is 1 × ULN, "above the upper limit of normal"); a criterion
# with none of them has no bound to read (most criteria: conditions, consent, pregnancy)
#: a digit, sought alone first: most lines with a number have one, and this is the fast test
_DIGIT = re.compile(r"[\d³⁶⁹]")
#: what, in a line without a digit, may still state a bound: "× ULN" or "the upper limit of
#: normal", a number in words or a class in Roman numerals as a word of its own
_REF_WORD = re.compile(r"(?<![a-wyz])(?:uln|unl|lln|lnl)(?![a-z])")
_NUMBER_WORDS = frozenset([*NUMWORDS, *ROMAN])
_WORD_RUN = re.compile(r"\w+")


def _may_state_number(norm: str) -> bool:
    """Whether a line may state a bound: a digit, or the words above (substring tests and one
    pass over its words, where one regular expression of them all tried each at every
    position and cost a twentieth of the reader)."""
    if _DIGIT.search(norm) is not None:
        return True
    if "normal" in norm or "upper" in norm or "lower" in norm:
        return True
    if ("uln" in norm or "unl" in norm or "lln" in norm or "lnl" in norm) and \
            _REF_WORD.search(norm):
        return True
    return not _NUMBER_WORDS.isdisjoint(_WORD_RUN.findall(norm))


@cache
def _graded_names() -> re.Pattern[str]:
    """The names of the scores written in letter classes ("Child-Pugh B"): a criterion naming
    one may state a bound without a number."""
    names = [n for lab in tables().labs if lab.grades for n in lab.names]
    return re.compile("|".join(map(re.escape, names)) or "(?!)")


#: the most bounds one criterion line is read for. The registry's lines state a dozen at most
#: (the most in 10,600 lines of the shared records and LCT: 12, a flattened organ-function
#: table); a line with more is a table or list that is not one criterion, and the steps that
#: weigh each bound against the others (restated, contradicting, grouped) would cost time
#: cubic in their number — 800 bounds took two minutes
MOST_BOUNDS = 40


#: a statement that opens by denying a finding (an exclusion line written as a requirement) —
#: not a healthy state ("without normal renal function (eGFR ≥ 60)" is the exclusion's own)
_OPENS_DENIED = re.compile(r"\W*(?:no|never|without|absence of|free of|not)\b"
                           r"(?!\s+(?:[a-z-]+\s+){0,2}?(?:normal|adequate|sufficient|well|"
                           r"controlled|good|acceptable|stable|satisfactory)\b)")
_STATE_BOUND = re.compile(r"\s*[(:,]?\s*(?P<c>[≤≥<>])\s*(?P<n>[\d.,]+)\s*(?:×\s*10\^?\d+\s*)?"
                          r"(?P<u>[^\s;,()]+)?")


@cache
def _state_words() -> tuple[re.Pattern[str], dict[str, dict[str, list[str]]]]:
    by_word: dict[str, dict[str, list[str]]] = {}
    for words, sides in tables().states:
        keys: dict[str, list[str]] = {}
        for key, side in sides.items():
            keys.setdefault(side, []).append(key)
        for w in words:
            by_word[w] = keys
    # (a state's words right before a comparator: the only place one names a concept)
    pat = re.compile(r"(?<![\w-])(?:" + trie_regex(list(by_word)) + r")(?![\w-])"
                     r"(?=\s*[(:,]?\s*[≤≥<>])")
    return pat, by_word


def _states_as_names(canon: str) -> str:
    """"Thrombocytopenia < 100,000/mm³", "tachycardia > 100 bpm", "hypoglycemia < 70 mg/dL":
    a state the lexicon's ``states`` know, right before a bound in its own direction, names
    the concept the bound is on — written in the canonical text as that concept's name (same
    length), for the grammar to read. Only where one concept on that side takes the bound's
    unit ("anemia < 10 g/dL": hemoglobin, not hematocrit); a bound against the state's
    direction, or one no single concept takes ("depression > 10", "hypocalcemia < 8"), is
    left as it was."""
    pat, by_word = _state_words()
    out = canon
    for m in pat.finditer(canon):
        b = _STATE_BOUND.match(canon, m.end())
        if b is None:
            continue
        keys = by_word[m.group(0)].get("low" if b.group("c") in "≤<" else "high", [])
        unit = (b.group("u") or "").rstrip(".")
        if len(keys) > 1:
            keys = [k for k in keys if unit and tables().lab(k).unit_for(unit) is not None]
        if len(keys) != 1:
            continue
        names = [n for n in tables().lab(keys[0]).names if len(n) <= len(m.group(0))]
        if not names:
            continue
        name = max(names, key=len)
        out = out[:m.start()] + name.ljust(len(m.group(0))) + out[m.end():]
    return out


#: a word that joins, left alone as an alternative's condition when what it joins is read
_BARE_JOINTS = frozenset(["with", "and", "if", "plus", "when", "where", "given", "in", "for",
                          "along with", "together with", "combined with"])


# what makes a bound hold for some patients only, right after it ("… with at least one
# weight-related comorbidity", "… if liver metastases", "… in patients with …")
# (the words a bound "comes with", shared with _WITH_WORDS_AFTER: "with or without" adds nothing;
# "with at least one …" is "with ≥ one …" in canonical text)
_COMES_WITH_WORDS = r"(?:with(?!\s+or\s+without\b|\s+the\s+exception\b)|who\s+(?:have|has)|having)"
_WORDS_FOLLOW = r"\s+(?:[≤≥]\s*)?[a-z\d]"
_CONDITION_AFTER = re.compile(r"\s*+,?\s*+\(?(?:" + _COMES_WITH_WORDS + r"|if|"
                              r"in\s+(?:patients?|subjects?|participants?|those|case)|for\s+"
                              r"(?:patients?|subjects?|participants?|those))" + _WORDS_FOLLOW)
_OR_BETWEEN = re.compile(r"\s*,?\s*or\s+")


def _renamed_alternatives(canon: str, rs: list[Reading]) -> str | None:
    """"BMI ≥ 30 kg/m² or BMI ≥ 27 kg/m² with at least one weight-related comorbidity": the
    second bound, its concept named again after "or", is the first one's alternative under
    the words after it — as "BMI ≥ 30 kg/m² or ≥ 27 kg/m² with …" is read. (Read as two
    bounds, the second let in everyone over 27.) The canonical text with the repeated name
    blanked, or None when no bound is so written."""
    out = canon
    for q, r in itertools.pairwise(rs):
        if r.lab.key == q.lab.key and r.lab.kind != "age" and not q.alternatives and \
                not r.alternatives and q.pos < r.pos < r.bound.start and \
                _OR_BETWEEN.fullmatch(canon, max(q.end, q.bound.end), r.pos) and \
                _CONDITION_AFTER.match(canon, max(r.end, r.bound.end)):
            out = out[:r.pos] + " " * (r.bound.start - r.pos) + out[r.bound.start:]
    return out if out != canon else None


def measure_facts(norm: str, exclude: bool | None = None) -> list[tuple[int, Fact]]:
    """(position, fact) of every bound on a measurable concept (age included) the text
    states, read by the grammar (:mod:`.grammar`)."""
    if not _may_state_number(norm) and \
            not _graded_names().search(norm):
        return []
    if "stratif" in norm:
        return []  # "randomisation will be stratified by ECOG": strata, not requirements
    text = _strip_parens(norm)
    # blank time windows so "DLCO within the previous 3 months is 30% to 80%" reads as
    # name … value
    text = _without_windows(text)
    canon = _without_scale_spans(canonical(text))
    rs = grammar_readings(canon)
    if not rs and _state_words()[0].search(canon):
        # ("thrombocytopenia < 100,000/mm³": no name the grammar knows, a state it may name)
        canon = _states_as_names(canon)
        rs = grammar_readings(canon)
    if len(rs) > 1 and " or " in canon and (named := _renamed_alternatives(canon, rs)):
        canon = named
        rs = grammar_readings(canon)
    rs += _age_readings(canon, norm, [(r.pos, r.end) for r in rs])
    # what the lexicon's readings hold (names, bounds, alternatives) is not read again
    taken = [(min(r.pos, r.bound.start), max(r.end, r.bound.end)) for r in rs]
    taken += [(b.start, b.end) for r in rs for b, _ in r.alternatives]
    rs += measurement_readings(canon, taken)
    rs.sort(key=lambda r: r.pos)
    if any(r.lab.kind == "age" for r in rs) and \
            (other := _ANOTHER_GROUPS_AGE.search(canon)) is not None and \
            any(r.lab.kind == "age" and r.end <= other.start() for r in rs):
        # "Adults (≥ 18 years) and adolescents (12 to 17 years) weighing ≥ 40 kg": groups of
        # patients, each with its own age and maybe its own bounds — not one patient's
        return []
    # a bound another reading took as its alternative is not a statement of its own ("≥ 18
    # years of age (≥ 20 years of age in Japan)": the second "age" names the alternative)
    alt_spans = [(id(r), b.start, b.end) for r in rs for b, _ in r.alternatives]
    rs = [r for r in rs
          if not any(o != id(r) and a <= r.bound.start < z for o, a, z in alt_spans)]
    if not rs:
        return []  # (most lines with a number state no bound: nothing below to do)
    if any(r.lab.kind == "age" for r in rs) and _unread_age_number(canon, rs):
        # "Age ≥ 18 years, upper age limit 65 years": another age the grammar did not read
        # may be the read one's other side — the read side alone would meet an 80-year-old
        rs = [r for r in rs if r.lab.kind != "age"]
        if not rs:
            return []
    if len(rs) > MOST_BOUNDS:
        return []  # a table flattened into one line, or not a criterion: text
    read_spans = [(r.bound.start, r.bound.end) for r in rs] + \
        [(b.start, b.end) for r in rs for b, _ in r.alternatives]
    for r in rs:  # conditions in the words as written ("with at least one …", not "with ≥")
        r.alternatives = [(b, _written(_whole_condition(cond, canon, b.end), canon, text,
                                       b.end)) for b, cond in r.alternatives]
        if any(cond and cond.strip(" ,;").lower() in _BARE_JOINTS and
               any(q.pos >= b.end for q in rs if q is not r) for b, cond in r.alternatives):
            # "ferritin < 100 µg/L or < 300 µg/L with transferrin saturation < 20 %": the
            # alternative's condition is the next bound, read as a statement of its own (the
            # line would be met by the saturation alone); which bounds go together is not
            # stated by facts read one by one: text
            return []
    # what is left conditional once the conditions of alternatives are accounted for (read
    # in the words as written: canonical "for ≥" may be "for at least 6 weeks")
    blank = text
    for r in rs:
        for _, cond in r.alternatives:
            if cond:
                i = blank.find(cond, r.pos)
                if i >= 0:
                    blank = blank[:i] + " " * len(cond) + blank[i + len(cond):]
        if r.bound.sex:
            # "… in women and … in men": the sex each bound holds for is part of the reading,
            # not a condition that leaves the clause text-only
            blank = blank[:r.pos] + _SEX_WORDS_RE.sub(
                lambda m: " " * len(m.group(0)), blank[r.pos:r.end]) + blank[r.end:]
    waivers = _waivers(norm, canon, rs) if exclude is not None else _Waivers()
    for a, b in waivers.spans:
        blank = blank[:a] + " " * (b - a) + blank[b:]
    cparens = _conditional_parens(blank)
    qualifying = _qualifying_parens(norm)
    for a, b in cparens:
        blank = blank[:a] + " " * (b - a) + blank[b:]
    # "creatinine ≤ 1.5 × ULN or CrCl ≥ 60 mL/min for patients with creatinine > 1.5 × ULN":
    # a condition that only says the first bound failed adds nothing to "or" — drop it
    redundant = _redundant_conditions(canon, rs)
    for a, b in redundant:
        blank = blank[:a] + " " * (b - a) + blank[b:]
    all_rs = rs
    rs = [r for r in rs if not any(a <= r.pos < b for a, b in redundant)]
    clauses = [(a, b) for a, b in _clauses(blank) if conditional(blank[a:b])]
    # "ALT and AST > 2 × ULN" in an exclusion means both at once, "ALT or AST ≤ 3 × ULN" in an
    # inclusion either one: neither is a list of separate facts, so neither is read ("AST/ALT"
    # and "AST and/or ALT" share their bound either way)
    clash_ends = {r.end for r in rs if r.joint and (
        (exclude is True and r.joint in ("and", "&")) or
        (exclude is False and r.joint == "or"))}
    out: list[tuple[int, Fact]] = []
    # a concept given another bound under a condition elsewhere in the line ("BMI 18-25
    # kg/m2; those with BMI up to 28 kg/m2 will be included if waist circumference is < 96
    # cm"): the unconditional bound is not everyone's; the other is its alternative, the
    # clause that holds it its condition
    conditioned: dict[str, list[dict[str, Any] | None]] = {}
    #: the clause of each group's bound, by concept (for a stricter one, see _stricter_only)
    group_words: dict[str, list[str]] = {}
    # (position, concept, bound) of a bound a group of participants must meet ("patients with
    # HIV must have CD4 ≥ 200 cells/µL"), its condition the group
    groups_bounds: list[tuple[int, str, dict[str, Any]]] = []
    subject_spans: list[tuple[int, int]] = []
    for r in rs:
        # (a bound inside a conditional bracket after the name is the bracket's: "longest
        # diameter (≥ 15 mm in short axis for lymph nodes)")
        where = next(((a, b) for a, b in clauses + cparens if a <= r.pos < b), None) or \
            next(((a, b) for a, b in cparens if a <= r.bound.start < b), None)
        if r.pos in waivers.unsure:
            continue
        if r.end in clash_ends or where is not None or \
                (qualifying and r.pos not in waivers.words and
                 (_qualified(r, canon, qualifying) or
                  _excepted_with_list(r, rs, norm, qualifying))):
            if r.lab.kind != "age" and r.end not in clash_ends:
                alt = _bound_data(r.lab, r.bound, False) if where and not r.alternatives \
                    and where[0] <= r.pos else None
                if alt is not None:
                    # "if liver metastasis, ALT and AST ≤ 5 × ULN": the words that lead the
                    # clause are the condition; else the clause is ("those with BMI up to 28
                    # kg/m2 will be included if waist circumference is < 96 cm")
                    first = min(q.pos for q in rs if where[0] <= q.pos < where[1])
                    lead = re.sub(r"^(?:or|and|and/or)\s+", "",
                                  text[where[0]:first].strip(" ;,.:"))
                    group = None if _CONDITION_LEAD.match(lead) and \
                        re.search(r"[a-z]{3,}\s+[a-z]", lead) else _group_before_requirement(lead)
                    clause = group or (lead if _CONDITION_LEAD.match(lead) and
                                       re.search(r"[a-z]{3,}\s+[a-z]", lead) else
                                       text[where[0]:where[1]])
                    alt["condition"] = re.sub(r"^(?:or|and|and/or)\s+", "", " ".join(
                        clause.split()).strip(" ;,."))
                    if group is not None:
                        groups_bounds.append((r.pos, r.lab.key, alt))
                    group_words.setdefault(r.lab.key, []).append(
                        " ".join(text[where[0]:where[1]].split()).strip(" ;,."))
                conditioned.setdefault(r.lab.key, []).append(alt)
            elif r.lab.kind == "age" and where is not None and \
                    _AGE_IN_CLAUSE.search(canon, where[0], where[1]):
                # "Adults aged 18 years and older; for Part B, 12 years and older": another
                # age for some patients, so the one stated alone is not everyone's
                conditioned.setdefault("age", []).append(None)
            continue
        if _TRIGGER_AFTER.match(canon, r.end) or (r.lab.kind != "age" and ((
                _COUNT_BEFORE.search(canon, max(0, r.pos - 40), r.pos)
                and _COUNT_NOUN.match(canon, r.pos)) or
                _EXTREME_BEFORE.search(canon, max(0, r.pos - 30), r.pos) or
                _count_of_results(norm, canon, r) or
                _occasions_after(norm, canon, bound_end := _bound_end(canon, r)) or
                (exclude is not False and _HELD_FOR_AFTER.match(norm, bound_end)) or
                _OTHER_TIME_AFTER.match(canon, bound_end) or
                _OTHER_TIME_BEFORE.search(canon, max(0, r.pos - 30), r.pos) or
                _other_specimen(canon, r))):
            # "Fib-4 1.45 - 3.25 requires Medical Monitor consultation": what a value sets off,
            # not a requirement; "more than 1 HIV-1 RNA measurement 50 to < 200 c/mL": a count
            # of measurements in a range, not a bound on the current value; "lowest recorded
            # platelet count below 50 × 10⁹/L during prior treatment": an extreme of a
            # period, which no one result states; "urine sodium < 20 mmol/L": another
            # specimen than the concept's (serum sodium); "at least one HbA1c ≥ 6.5 % in the
            # past 12 months", "two fasting glucose values ≥ 126 mg/dL", "ISI ≥ 15 on two
            # occasions": a count of results, which the latest one does not tell; "SpO2 < 80 %
            # for > 10 % of sleep time" in an exclusion: a value held over a time, which the
            # latest result alone would exclude too many on (in an inclusion the latest result
            # meeting it is necessary, and read so)
            continue
        if not r.alternatives and _other_bound_in_bracket(canon, r, read_spans):
            # "aged ≥ 20 years (Japan: ≥ 20 years; other countries: ≥ 18 years)": the bracket
            # gives others another bound of the same kind, which was not read
            continue
        # "history of QTc > 480 ms", "LVEF ≤ 40 % at any time": a value at any time in the
        # past, not the latest one; read as such (the window EVER), or text when the bound
        # has alternatives (which would each need their own time)
        past = r.lab.kind != "age" and (
            _PAST_BEFORE.search(canon, max(0, r.pos - 40), r.pos) is not None or
            _PAST_AFTER.match(canon, max(r.end, r.bound.end)) is not None or
            _past_by_lead(norm, r.pos))
        if past and r.alternatives:
            continue
        # the words of an alternative's own condition are about the condition ("… or 18-20 if
        # living with a parent"), not about whose age it is
        if r.lab.kind == "age" and (conditional(_without_own_conditions(_clause_of(norm, r.pos),
                                                                    r)) or
                                    _AGE_STOP.search(_without_own_conditions(
                                        canon[max(0, r.pos - 30):r.end], r)) or
                                    _AGE_STOP_AFTER.search(canon[r.end:r.end + 25]) or
                                    _AGE_AT_DIAGNOSIS.match(canon, r.end) or
                                    _AGE_TABLE_LEAD.search(canon, 0, r.pos) or
                                    _AGE_EVENT_BEFORE.search(canon, max(0, r.pos - 12), r.pos)
                                    or _age_of_one_sex(canon, r)):
            continue
        # "BMI ≥ 35 kg/m² with comorbidities", "hemoglobin < 8 g/dL requiring transfusion",
        # "patients older than 80 years with frailty": among the exclusions a bound that holds
        # only with the words beside it — excluded are those who are past it *and* what the
        # words say; the words go with the bound (``with``), or the line is text when they
        # cannot be told apart. Among the inclusions ("LVEF ≥ 50 % with normal wall motion")
        # the bound is necessary, not sufficient: the words go with it too (an age's words
        # there are mostly the line's other requirements, read or not, and are left alone)
        with_words = _with_words(canon, norm, rs, r) if exclude is True or (
            exclude is False and r.lab.kind != "age") else None
        if with_words == "":
            continue
        # "aged ≥ 18 years with histologically confirmed NSCLC": among the inclusions the
        # words are the line's other requirement, in words — a criterion in words beside the
        # age (``also``: named for a person to confirm), not the age's qualifier. Before, the
        # line was *met* on the age alone, and nothing said the rest was unchecked
        also = _with_words(canon, norm, rs, r, whole=True) if exclude is False and \
            r.lab.kind == "age" else None
        if also and _NO_AGE_LIMIT.match(also):
            also = None  # ("≥ 18 years with no upper age limit": the age's own)
        if also is None and exclude is False and r.lab.kind == "age":
            # "Patients with confirmed NSCLC aged ≥ 18 years", "Postmenopausal women aged
            # 50-75": the words before the age are the line's other requirement, as those
            # after it are (before, the age alone met the line)
            also = _words_before_age(canon, norm, rs, r)
        if r.lab.kind == "age" and _GROUP_VERB.match(canon, max(r.end, r.bound.end)):
            a, b = next(((a, b) for a, b in _clauses(canon) if a <= r.pos < b),
                        (r.pos, len(canon)))
            if any((q.lab.kind == "age" and not a <= q.pos < b) or q.pos < a for q in rs):
                # "Age ≥ 18 years. Patients aged ≥ 70 years must have a creatinine clearance
                # ≥ 50 mL/min": beside everyone's age, an age that names whose bound follows;
                # neither is every patient's (text, to the end of the clause); so after
                # another clause's bound ("ECOG 0-1; patients older than 70 must have ECOG
                # 0": before, everyone had to be older than 70). Alone at the head of the
                # line the age is the patients' own ("Patients aged 18-75 years must have
                # ECOG 0-1 and …")
                subject_spans.append((r.pos, b))
                continue
        age_word = r.lab.kind == "age"
        data = _bound_data(r.lab, r.bound, age_word)
        if data is None:
            continue
        alts: list[dict[str, Any]] | None = []
        for alt_bound, cond in r.alternatives:
            d = _bound_data(r.lab, alt_bound, age_word)
            if d is None:
                alts = None
                break
            d["condition"] = cond
            alts.append(d)  # type: ignore[union-attr]
        if alts is None:
            continue
        if alts:
            data["alternatives"] = alts
        if past:
            data["window"] = dict(EVER)
        if exclude is False and r.lab.kind != "age" and not past and not alts and \
                (held := _held_for(norm, _bound_end(canon, r))) is not None:
            # "HIV-1 RNA < 50 copies/mL for ≥ 6 months": the bound held that long, which the
            # latest result alone does not show
            data["held"] = held
        if r.lab.kind == "age":
            fact = _age_fact(data, r.bound)
        elif r.bound.normal_range:
            if alts or past or exclude is not False:
                continue  # (outside the range, or another way, is not stated by it: text)
            fact = _normal_range_fact(r.lab.key)
        elif is_uncoded(r.lab):
            fact = Fact(MEASUREMENT, {"name": r.lab.display, **data})
        else:
            fact = Fact("lab", {"test": r.lab.key, **data})
        negation = _negation(norm, canon, min(r.pos, r.bound.start), fact)
        if negation is None and out and out[-1][1].data.get("negated") and (
                prev := next((q for q in rs if q.pos == out[-1][0]), None)) is not None and \
                _NEG_LIST_JOINT.fullmatch(canon, _bound_end(canon, prev),
                                          min(r.pos, r.bound.start)):
            # "no QTc > 450 ms or LVEF < 50 %": the denial is the list's, each bound's
            negation = "negated"
        if negation == "unsure" or (negation and r.bound.outside):
            continue
        if negation == "negated" and exclude is True and _OPENS_DENIED.match(norm):
            # "No ECOG > 2", "Never had platelets < 50,000" among the exclusions: a requirement
            # written in the wrong list — read as written it would exclude every patient the
            # trial wants; which one the registry meant is for a person (text)
            continue
        if with_words and (negation or r.bound.outside or fact.kind == GROUP):
            continue
        if with_words:
            fact.data["with"] = [with_words]
        if also and not negation and not r.bound.outside and fact.kind != GROUP:
            fact.data["also"] = [also]
        if r.bound.outside:
            # "hematocrit outside the normal range (35-50 %)": the range must not hold
            negation = "negated"
        if negation == "negated":
            # "no evidence of QTc > 480 ms", "must not be older than 75", "absence of anemia
            # (hemoglobin < 10 g/dL)", "are not between 18 and 50 years of age": the bound is
            # what must not hold
            fact.data["negated"] = True
        out.append((r.pos, fact))
    if exclude is not None:
        _share_with_words(out, rs, canon)
    if subject_spans:
        for p, f in out:
            span = next(((a, b) for a, b in subject_spans if a <= p < b), None)
            if span is not None and f.kind == "lab":
                # the group's own bound on a concept the line bounds for everyone too: an
                # alternative if it lets more in, else the line is text (see _extends)
                a = max((c for c, _ in _clauses(canon) if c <= span[0]), default=0)
                alt = {k: f.data.get(k) for k in _BOUND_KEYS} \
                    if set(f.data) <= {*_BOUND_KEYS, "test"} else None
                if alt is not None:
                    # (an age group's own bound on another concept is not kept with "not among
                    # …" in words: the age says it, which _with_unread_clauses names beside
                    # everyone's age)
                    alt["condition"] = _group_before_requirement(text[a:p].strip(" ;,.:")) or \
                        " ".join(text[a:span[1]].split()).strip(" ;,.")
                conditioned.setdefault(f.data["test"], []).append(alt)
                b = next((d for c, d in _clauses(canon) if c <= span[0] < d), len(canon))
                group_words.setdefault(f.data["test"], []).append(
                    " ".join(text[a:b].split()).strip(" ;,."))
        out = [(p, f) for p, f in out if not any(a <= p < b for a, b in subject_spans)]
    if conditioned:
        # (the concepts the line bounds for everyone, before a group's bound decides whether
        # that bound stands)
        everyone = {f.data.get("test") for _, f in out if f.kind == "lab"}
        kept = []
        for p, f in out:
            if "age" in conditioned and is_age(f):
                continue
            if f.kind == "lab" and f.data["test"] in conditioned:
                alts = conditioned[f.data["test"]]
                if exclude is False and group_words.get(f.data["test"]) and \
                        _stricter_only(f, alts):
                    # "ECOG 0-1; patients older than 70 must have ECOG 0": everyone's bound
                    # stands, the group's stricter one is a further demand in words
                    for words in group_words[f.data["test"]]:
                        if words not in f.data.get("also", ()):
                            f.data.setdefault("also", []).append(words)
                    kept.append((p, f))
                    continue
                if not _can_take(f, alts):
                    continue
                f.data.setdefault("alternatives", []).extend(alts)  # type: ignore[arg-type]
            kept.append((p, f))
        out = kept
        if exclude is False:
            out = sorted(out + _groups_own_bounds(out, groups_bounds, everyone),
                         key=lambda x: x[0])
    if exclude is not True:
        out = _without_unread_alternatives(out, all_rs, canon)
    out = _add_word_alternatives(out, rs, canon, all_rs, exclude is True)
    out = _without_excepted(out, all_rs, canon, waivers.words)
    if exclude is True and waivers.words:
        # "albumin < 2.5 g/dL unless due to nephrotic syndrome" excludes those below the bound
        # but for the words: the bound alone, "unless" the words (a bound the exception
        # cannot be stated with — alternatives, a time, a denial — stays text, as before)
        out = [(p, f) for p, f in out if p not in waivers.words or not any(
            f.data.get(k) for k in ("alternatives", "window", "held", "negated", "sex"))]
    for p, fact in out:
        if p in waivers.words:
            words = waivers.words[p]
            if exclude is True:
                fact.data.setdefault("unless", []).append(words)
            else:  # ("… or if due to marrow involvement")
                _add_text(fact, f"if {words}" if _WAIVER_CAUSE.match(words) else words)
    out = _dedupe(_merge_sides(_respectively(out, canon), canon), canon)
    if exclude is not None and "(" in canon:
        _with_unread_brackets(out, all_rs, canon, norm, exclude)
    # (the clause's words from the text before its remarks were blanked: "total bilirubin ≤
    # 1.5 × ULN (ULN; unless known Gilbert's syndrome)" keeps its exception)
    return _with_unread_clauses(out, all_rs, canon, norm, exclude) \
        if exclude is not None else out


def _groups_own_bounds(out: list[tuple[int, Fact]],
                       groups_bounds: list[tuple[int, str, dict[str, Any]]],
                       everyone: set[str | None]) -> list[tuple[int, Fact]]:
    """Among the inclusions, the bound a group must meet on a concept no other fact of the
    line bounds, nor another measure of its function: "if in the group then the bound", which
    is the bound or not being in the group — the bound with the words "not among <group>" as
    its way in ("Diabetic patients must have HbA1c < 8 %": met at 7 %, for review at 9 %,
    where the patient may not be diabetic). Before, such a bound was dropped; a bound beside
    one of its own concept or function is that fact's alternative (or leaves the line text)."""
    measure_of = tables().measure_of
    bounded = everyone | {f.data.get("test") for _, f in out if f.kind == "lab"}
    functions = {measure_of.get(t) for t in bounded} - {None}
    found: list[tuple[int, Fact]] = []
    for pos, key, alt in groups_bounds:
        if key in bounded or measure_of.get(key) in functions or key == "age":
            continue
        # (the group's words as the line writes them: the facts' words are put back in the
        # line's case after reading)
        data = {"test": key, **{k: alt[k] for k in _BOUND_KEYS},
                "alternatives": [{"text": f"not among {alt['condition']}"}]}
        found.append((pos, Fact("lab", data)))
        bounded.add(key)
    return found


def _with_unread_brackets(out: list[tuple[int, Fact]], rs: list[Reading], canon: str,
                          text: str, exclude: bool) -> None:
    """A bracket under a condition right after a bound, holding a comparison no reading took
    ("ALT ≤ 2.5 times the upper limit of normal value (≤ 5 times for liver metastasis)": the
    other bound's "times" names no reference). Before, it was dropped with the bracket and the
    bound stood alone — a patient with liver metastases at 4 × ULN failed the line. Among the
    inclusions the bracket is now the bound's alternative in words (for review when the bound
    is not met); among the exclusions its exception (``unless``: for review when it is)."""
    spans = [(min(r.pos, r.bound.start), max(r.end, r.bound.end)) for r in rs]
    spans += [(b.start, b.end) for r in rs for b, _ in r.alternatives]
    at = {r.pos: r for r in rs}
    for a, b in (m.span() for m in _PAREN.finditer(canon)):
        if not any(not any(x <= m.start() < y for x, y in spans)
                   for m in _CMP_NUM.finditer(canon, a, b)) or \
                not (conditional(canon[a:b]) or _BRACKET_CONDITION.search(canon, a, b)):
            continue
        words = " ".join(text[a + 1:b - 1].split()).strip(" ,;")
        # (every bound the bracket follows: "ALT and AST ≤ 2.5 × ULN (…)" is both names')
        for owner in [f for p, f in out if p in at and f.kind == "lab" and
                      canon[max(at[p].end, at[p].bound.end):a].strip() == ""]:
            if exclude:
                if words not in owner.data.get("unless", ()):
                    owner.data.setdefault("unless", []).append(words)
            else:
                _add_text(owner, words)


#: words that put a bracket's bound under a condition ("(≤ 5 times for liver metastasis)")
_BRACKET_CONDITION = re.compile(r"\b(?:for|if|in case of|in the case of|when|with)\b")


#: a treatment or an assignment a value sets off, in any form ("… receive a reduced dose")
_RECEIVES = re.compile(r"\breceives?\b|\bdose (?:reduction|adjustment|modification)|\breduced dose")


def _with_unread_clauses(out: list[tuple[int, Fact]], rs: list[Reading], canon: str,
                         text: str, exclude: bool) -> list[tuple[int, Fact]]:
    """A clause whose bounds gave no fact is something the line asks that nothing checks. In
    an exclusion it is another way out ("eGFR ≤ 30 mL/min; AST and ALT ≥ 3 × ULN": two bounds
    joined by "and" in an exclusion are not read): before, the facts of the other clauses
    decided the line alone, and a patient meeting none of them was cleared of it — AST and
    ALT at 5 × ULN included. The clause is now the last fact's alternative in words, for a
    person to confirm when the facts read are not met. In an inclusion it is another
    requirement ("hemoglobin ≥ 9 g/dL; ALT or AST ≤ 3 × ULN"): the line was met on the
    hemoglobin alone; the clause is now said beside the last fact (``also``), for a person to
    confirm when the facts are met. A fact that cannot take it (a denial, a time, one sex's
    bound) leaves the line text."""
    if not out:
        return out
    kept = {p for p, _ in out}
    stated = {(f.data.get("test", f.kind), f.data.get("low"), f.data.get("high"))
              for _, f in out if f.kind in _CHECKED}
    taken = {f.data["test"] for _, f in out if f.kind == "lab" and any(
        "low" in alt for alt in f.data.get("alternatives") or ())}
    for a, b in _clauses(canon):
        mine = [r for r in rs if a <= r.pos < b]
        if any(a <= p < b for p in kept) or not mine or \
                not (_CMP_NUM.search(canon, a, b) or _NUM_CMP.search(canon, a, b)) or \
                _SAYS_ALLOWED.search(canon, a, b) or \
                _TRIGGER_AFTER.search(canon, a, b) or _RECEIVES.search(canon, a, b):
            # (what a value sets off — "patients with hemoglobin < 9 g/dL may receive a
            # transfusion", "… aged ≥ 65 years will be assigned to the elderly cohort" — asks
            # nothing of the patient)
            continue
        if all((r.lab.key if r.lab.kind != "age" else "age", r.bound.low, r.bound.high)
               in stated for r in mine):
            continue  # the bounds again ("… may receive a transfusion to have ≥ 9 g/dL")
        if any(r.lab.key in taken for r in mine):
            continue  # a bound the facts state as an alternative, under this clause's words
        said = " ".join(text[a:b].split()).strip(" ,;:.")
        if any(said == w.strip(" ,;:.") for _, f in out for w in f.data.get("also", ())):
            continue  # a group's stricter demand, said beside everyone's bound already
        under_condition = conditional(canon[a:b])
        able = [f for _, f in out if f.kind in _CHECKED and not any(
            f.data.get(k) for k in ("negated", "window", "held", "sex", "unless"))]
        if not able:
            return []
        measure_of = tables().measure_of
        functions = {measure_of.get(r.lab.key) for r in mine} - {None}
        kin = [f for f in able if measure_of.get(f.data.get("test", "")) in functions]
        target = (kin or able)[-1]
        if exclude or (under_condition and kin):
            # (a clause under a condition on another measure of the same function is another
            # way in for some patients: "total bilirubin ≤ 1.5 mg/dL; subjects with Gilbert's
            # syndrome must have direct bilirubin ≤ 1.5 mg/dL" — a Gilbert's patient at 2.5
            # mg/dL is for review; on anything else it is those patients' further
            # requirement: "age ≥ 18 years; patients with HIV must have CD4 ≥ 200", below)
            _add_text(target, text[a:b])
        else:
            words = " ".join(text[a:b].split()).strip(" ,;:.")
            if words not in target.data.get("also", ()):
                target.data.setdefault("also", []).append(words)
    return out


# "INR ≤ 1.5 unless receiving anticoagulants", "hemoglobin ≥ 9 g/dL (unless due to marrow
# involvement)", "bilirubin ≤ 1.5 × ULN except for patients with Gilbert's syndrome": the
# bound holds unless something said in words, with no bound of its own
_WAIVER_WORDS = (r"(?P<x>(?:[^()≤≥<>=;:\d]|(?:[≤≥<>]\s*+)?\d+(?:\.\d+)?\s*+(?:days?|weeks?|"
                 r"months?|years?|hours?)\b){3,200}?)")  # (a duration: "for ≥ 2 weeks")
_WAIVER_LEAD = (r"(?:unless|except(?:\s++(?:for|if|(?P<prep>in|when|where))(?!\s++(?:the\s++)?"
                r"cases?\s++of))?(?:\s++(?:in\s++)?(?:the\s++)?cases?\s++of)?|excepting|excluding|"
                r"other than|apart from|with the exception of)\s++")
# (a comma ends the words unless a list of words joined by "or"/"and" runs from it to the
# clause's end: "unless due to Gilbert's syndrome, hemolysis, or hepatic infiltration")
_WAIVER = re.compile(r"\s*+,?\s*+" + _WAIVER_LEAD + _WAIVER_WORDS +
                     r"\s*+(?=$|[;.]|,\s(?![^;.()≤≥<>=\d]*\b(?:or|and)\b[^;.()≤≥<>=\d]*(?:$|[;.])))")
#: … the same in brackets of its own ("(unless on therapeutic anticoagulation)")
_WAIVER_PAREN = re.compile(r"\(\s*+" + _WAIVER_LEAD + _WAIVER_WORDS + r"\s*+\)")
# "unless otherwise specified", "except as noted below": the exception is another criterion's
_WAIVER_ELSEWHERE = re.compile(r"\b(?:otherwise|as (?:noted|specified|stated|described|"
                               r"outlined|defined|indicated|listed|detailed|permitted|allowed)|"
                               r"below|above|following|protocol|section|uln|lln|upper limit|"
                               r"lower limit|in which case|then)\b")
# "unless due to …": a cause, said "if due to …" after "or"
_WAIVER_CAUSE = re.compile(r"(?:due|related|attributable|secondary)\s+to\b|caused\s+by\b")


@dataclass
class _Waivers:
    """What exceptions in words do to a line's bounds (:func:`_waivers`)."""

    #: the way in an exception states, by the reading position of each bound it waives
    words: dict[int, str] = field(default_factory=dict)
    #: the exceptions' spans (not conditions of the clause they are in)
    spans: list[tuple[int, int]] = field(default_factory=list)
    #: bounds earlier in a list an exception closes: whether it waives them is not said
    unsure: set[int] = field(default_factory=set)


_LIST_COMMA = re.compile(r",(?!\d)|;")


def _waivers(norm: str, canon: str, rs: list[Reading]) -> _Waivers:
    """The bounds an exception in words waives. "INR ≤ 1.5 and aPTT ≤ 1.5 × ULN unless
    receiving anticoagulants" holds for the anticoagulated too, whatever their INR: in an
    inclusion the words are each bound's alternative way in (``{"text": …}``), so the matcher
    says *met* when the bound is met and leaves the rest to review; in an exclusion ("albumin
    < 2.5 g/dL unless due to nephrotic syndrome") they are what the bound holds without
    (``unless``): *not met* when the bound is not, for review when it is. Before, the line
    was text. The
    exception waives the bound before it and those joined to it without a comma ("INR … and
    aPTT …"); bounds earlier in a comma list it closes ("ANC …, platelets …, bilirubin ≤ 1.5
    mg/dL (unless Gilbert's)") may or may not be waived, and are text as before
    (:func:`_excepted_with_list`). Left as before when one of them is an age (whose exception
    it is, is not said), when the exception refers to other criteria ("unless otherwise
    specified") or carries a bound of its own ("except Gilbert's syndrome (≤ 3 × ULN)", read
    elsewhere)."""
    out = _Waivers()
    if not any(w in norm for w in ("unless", "except", "excluding", "other than", "apart from")):
        return out
    parens = [m.span() for m in _PAREN.finditer(norm)] if "(" in norm else []
    for i, r in enumerate(rs):
        end = max(r.end, r.bound.end, *(b.end for b, _ in r.alternatives))
        end = len(canon[:end].rstrip(" ,;:"))  # (a reading may take in a blanked bracket)
        # (the canonical text has the bracket blanked: the words are found in ``norm``)
        m = _WAIVER.match(canon, end) or next(
            (_WAIVER_PAREN.fullmatch(norm, a, z) for a, z in parens
             if a >= end and not canon[end:a].strip(" ,")), None)
        if m is None or _WAIVER_ELSEWHERE.search(m.group("x")) or \
                not re.search(r"[a-z]{3}", m.group("x")) or \
                any(q.pos > r.pos and q.pos < m.end() for q in rs):
            continue
        clause = next(((a, b) for a, b in _clauses(norm) if a <= r.pos < b), (0, len(norm)))
        before = [q for q in rs[:i] if q.pos >= clause[0]]
        scope = [r]
        opened = canon.rfind("(", clause[0], r.pos)
        if canon[:m.start()].rstrip().endswith(")") and opened >= 0 and \
                ")" not in canon[opened:r.pos]:
            # "(ANC ≥ 1.5 × 10⁹/L, platelets ≥ 100 × 10⁹/L) except for patients with marrow
            # infiltration": the exception after a bracket is the bracket's whole list
            scope = [q for q in rs[:i + 1] if q.pos > opened]
            before = [q for q in before if q.pos < opened]
        # (a reading's span takes in the comma after it; "1,500" is one number)
        while before and not _LIST_COMMA.search(canon, before[-1].bound.start, scope[0].pos):
            scope.insert(0, before.pop())
        if any(q.lab.kind == "age" for q in scope + before):
            continue
        # (the words as written: "for at least 2 weeks" is "for ≥ 2 weeks" in ``canon``;
        # "except in patients with …" keeps its "in")
        words = " ".join(norm[m.start("x"):m.end("x")].split()).strip(" ,")
        if m.group("prep"):
            words = f"{m.group('prep')} {words}"
        out.words.update((q.pos, words) for q in scope)
        out.spans.append(m.span())
        out.unsure.update(q.pos for q in before)
    return out


_EXCEPT_WORD = re.compile(r"\b(?:except|excepting|excluding|unless|other than|apart from|"
                          r"with the exception of)\b")
# an exception right after the bound, with or without a comparison of its own ("total
# bilirubin ≤ 1.5 × ULN except for Gilbert's syndrome"): the bound is not the excepted
# patients', as with "unless" or the exception in brackets
_EXCEPT_RIGHT_AFTER = re.compile(r"\s*,?\s*(?:except|excepting|excluding|other than|apart from|"
                                 r"with the exception of)\b")
# the exception's own bound: in its comma-free stretch, or the next one when that says so
_EXCEPT_BOUND = re.compile(r"[^,;]*?(?:,\s*(?:in which case|in that case|then|where)\b[^,;]*?)?"
                           r"[≤≥<>]\s*-?\d")


def _without_excepted(out: list[tuple[int, Fact]], rs: list[Reading], canon: str,
                      waived: dict[int, str]) -> list[tuple[int, Fact]]:
    """Drop a bound that an exception after it gives a bound of its own ("total bilirubin >
    ULN except Gilbert's syndrome (> 3 × ULN)", "ALT ≤ 2.5 × ULN unless liver metastases, in
    which case ≤ 5 × ULN"), or that an exception follows right away ("≤ 1.5 × ULN except for
    Gilbert's syndrome"): it is not every patient's, on either side. An exception further on
    with no comparison leaves the bound ("… unless on anticoagulants" is read elsewhere, or
    text)."""
    if not out or _EXCEPT_WORD.search(canon) is None:
        return out
    ends = {r.pos: max(r.end, r.bound.end) for r in rs}
    drop = set()
    for p, _ in out:
        end = ends.get(p)
        if end is None or p in waived:
            continue
        stop = min((i for i in (canon.find(",", end), canon.find(";", end)) if i >= 0),
                   default=len(canon))
        m = _EXCEPT_WORD.search(canon, end, stop)  # in the bound's own stretch
        if (m is not None and _EXCEPT_BOUND.match(canon, m.end())) or \
                _EXCEPT_RIGHT_AFTER.match(canon, end):
            drop.add(p)
    return [(p, f) for p, f in out if p not in drop]


def _can_take(fact: Fact, alts: list[dict[str, Any] | None]) -> bool:
    """Whether ``fact`` can state the bounds its concept has under a condition elsewhere in
    the line as its alternatives; not when one of them could not be read, or is stated in
    another unit or reference than the fact (the fact, not everyone's, is then dropped)."""
    return not fact.data.get("sex") and all(
        _stated_alike(fact, a) and _extends(a, fact.data) for a in alts)


def _stated_alike(fact: Fact, alt: dict[str, Any] | None) -> bool:
    """Whether a group's bound was read and is stated as ``fact`` is: no sex of its own, the
    same unit and reference (ULN, % predicted)."""
    return alt is not None and not alt.get("sex") and \
        (alt["unit"], alt["relative"]) == (fact.data["unit"], fact.data["relative"])


def _stricter_only(fact: Fact, alts: list[dict[str, Any] | None]) -> bool:
    """Whether every bound a group has on ``fact``'s concept could be read, is stated as the
    fact is, and lets in nothing the fact does not: a further demand on some patients, which
    leaves everyone's bound standing (a patient failing it fails the line whoever they are)."""
    return bool(alts) and not fact.data.get("sex") and all(
        _stated_alike(fact, a) and not _extends(a, fact.data) for a in alts)


_RESPECTIVELY = re.compile(r"\brespectively\b")


def _respectively(out: list[tuple[int, Fact]], canon: str) -> list[tuple[int, Fact]]:
    """A bound and its alternative "… for women and men, respectively": each is one sex's
    (before, "hemoglobin ≥ 12 g/dL and ≥ 13 g/dL for women and men, respectively" was either
    bound for anyone: a man at 12.5 g/dL met it). Any other bound with alternatives in a
    clause that pairs things "respectively" is paired in a way the facts do not state
    ("creatinine ≤ 1.2 mg/dL and 1.0 mg/dL, respectively" read ≤ 1.2 alone): text."""
    if not _RESPECTIVELY.search(canon):
        return out
    kept = []
    for p, f in out:
        a, b = next(((a, b) for a, b in _clauses(canon) if a <= p < b), (0, len(canon)))
        alts = f.data.get("alternatives") if f.kind == "lab" else None
        if not _RESPECTIVELY.search(canon, a, b):
            kept.append((p, f))
            continue
        if not alts:
            continue
        m = _SEXES_IN_ORDER.search(canon, p, b)
        sexes = ["female" if w in _FEMALE_NOUNS else "male" for w in m.group("a", "b")] \
            if m else []
        if len(alts) != 1 or "low" not in alts[0] or f.data.get("sex") or \
                len(set(sexes)) != 2:
            continue
        f.data["sex"] = sexes[0]
        alts[0]["sex"], alts[0]["condition"] = sexes[1], None
        kept.append((p, f))
    return kept


#: the keys of a bound's data (``_bound_data``) an alternative carries
_BOUND_KEYS = ("low", "high", "low_inclusive", "high_inclusive", "unit", "relative")


def _extends(alt: dict[str, Any], main: dict[str, Any]) -> bool:
    """Whether a bound under a condition lets in a value the unconditional one does not. One
    that does not is a stricter demand on some patients ("hemoglobin ≥ 9 g/dL; patients with
    a prior transfusion must have hemoglobin ≥ 10 g/dL"), which an alternative (any of the
    bounds) cannot state: everyone meeting the first would meet the line."""
    def below(x: dict[str, Any], y: dict[str, Any]) -> bool:  # x's low lets in more than y's
        if x["low"] is None or y["low"] is None:
            return x["low"] is None and y["low"] is not None
        return x["low"] < y["low"] or (x["low"] == y["low"] and x["low_inclusive"] and
                                       not y["low_inclusive"])

    def above(x: dict[str, Any], y: dict[str, Any]) -> bool:
        if x["high"] is None or y["high"] is None:
            return x["high"] is None and y["high"] is not None
        return x["high"] > y["high"] or (x["high"] == y["high"] and x["high_inclusive"] and
                                         not y["high_inclusive"])
    return below(alt, main) or above(alt, main)


_UNLESS_WHICH_CASE = re.compile(r"(?P<lead>unless|except(?:\s+(?:for|in|if))?)\s+(?P<x>.*?)"
                                r"(?:\s*,?\s*(?:in which case|in that case|then|"
                                r"who\s+(?:can|may|must|should|shall|will)\s.*))?",
                                re.DOTALL | re.IGNORECASE)


@cache
def _who_first() -> re.Pattern[str]:
    """A clause opening with the lexicon's words for who takes part (or "those")."""
    return re.compile(rf"(?:{_any_of([*tables().condition_words['who'], 'those'])})\b",
                      re.IGNORECASE)


def _as_if(cond: str) -> str:
    """The condition of an alternative as the alternative's own: "unless liver metastases,
    in which case" (the words the grammar read, which blank it from the clause) → "if liver
    metastases"; "except for patients with Gilbert's syndrome" → "for patients with …"."""
    m = _UNLESS_WHICH_CASE.fullmatch(cond)
    if m:
        lead = m.group("lead").split()
        if len(lead) > 1 and lead[1] != "if":
            return f"{lead[1]} {m.group('x')}"
        # "except subjects with Gilbert's syndrome" → "for subjects with …"
        return f"{'for' if _who_first().match(m.group('x')) else 'if'} {m.group('x')}"
    # (a joint the condition ran into before an unread statement is not the condition's:
    # "if lung is the only organ dysfunction or [SaO2:FiO2 150]")
    return _TRAILING_JOINT.sub("", cond)


_TRAILING_JOINT = re.compile(r"[\s,;]+(?:or|and|and/or)$", re.IGNORECASE)


def _whole_condition(cond: str | None, canon: str, start: int) -> str | None:
    """A condition in brackets to the bracket's end: the grammar stops it at the next name
    it knows ("(≥ 3 for patients aged ≥ 70)": "for patients", then the age)."""
    if not cond:
        return cond
    i = canon.find(cond, start)
    if i < 0 or canon.rfind("(", 0, i) < canon.rfind(")", 0, i):
        return cond
    close = canon.find(")", i)
    if close < 0 or ";" in canon[i:close]:
        return cond
    return canon[i:close].rstrip(" ,.")


def _written(cond: str | None, canon: str, text: str, start: int) -> str | None:
    """A condition the grammar read in the canonical text, in the words of the text (the
    two are the same length, position for position)."""
    if not cond:
        return cond
    i = canon.find(cond, start)
    return " ".join(text[i:i + len(cond)].split()) if i >= 0 else cond


def _age_fact(data: dict[str, Any], bound: Bound) -> Fact:
    """An age bound; one whose sides were written in different units ("6 months to 17 years")
    is an all-of of the two sides, each in its own unit: an age is counted in completed units,
    so "≤ 17 years" (met at 17 years 6 months) is not "≤ 204 months" (not met then)."""
    if bound.sides is None or data.get("alternatives") or data["low"] is None or \
            data["high"] is None:
        return Fact("age", data)
    (lo, lo_unit), (hi, hi_unit) = bound.sides
    return Fact(GROUP, {"facts": [
        Fact("age", {"low": lo, "high": None, "low_inclusive": data["low_inclusive"],
                     "high_inclusive": True, "unit": lo_unit}),
        Fact("age", {"low": None, "high": hi, "low_inclusive": True,
                     "high_inclusive": data["high_inclusive"], "unit": hi_unit})]})


def _normal_range_fact(key: str) -> Fact:
    """"Potassium within normal limits": ≥ 1 × LLN and ≤ 1 × ULN, each against the result's
    own reference range."""
    side = {"unit": None, "relative": None, "low_inclusive": True, "high_inclusive": True}
    return Fact(GROUP, {"facts": [
        Fact("lab", {"test": key, **side, "low": 1, "high": None, "relative": "LLN"}),
        Fact("lab", {"test": key, **side, "low": None, "high": 1, "relative": "ULN"})]})


def is_age(f: Fact) -> bool:
    """An age bound, or an all-of of age bounds."""
    return f.kind == "age" or (f.kind == GROUP and all(is_age(m) for m in f.data["facts"]))


_CMP_NUM = re.compile(r"[≤≥<>]\s*-?\d")
# a value with its comparator after it ("27 kg/m² or greater")
_NUM_CMP = re.compile(r"\d[\d.,]*\s*(?:[^\s\d,;()]+\s+)?(?:or|and)\s+(?:more|greater|higher|"
                      r"above|older|less|lower|below|younger|fewer|smaller)\b")
_COND_OPEN = re.compile(r"\b(?:for|in)\s+(?:(?:an?\s+)?(?:patient|participant|subject|individual|"
                        r"person)s?|those|people)\s+(?:with|whose|who\s+ha(?:ve|s))\s+"
                        r"(?:an?\s+|the\s+)?"
                        r"(?:serum\s+|blood\s+|plasma\s+)?$")


def _words_before_age(canon: str, norm: str, rs: list[Reading], r: Reading) -> str | None:
    """The words of an age's clause before it that say more than who the participants are
    ("with confirmed NSCLC", "Postmenopausal women"), from the first such word, brackets
    included (``norm``: the canonical text before brackets were blanked); None when they only
    say who ("male or female patients", "older adults", "subjects must be"), when they label
    a group or lead in ("Cohort 1:"), or when another reading is there."""
    a = next((a for a, b in _clauses(canon) if a <= r.pos < b), 0)
    if any(a <= q.pos < r.pos or a <= q.bound.start < r.pos for q in rs if q is not r):
        return None
    # (the age's other side written before its name is the age: "18 years ≤ age ≤ 75 years")
    head = _SIDE_BEFORE_NAME.sub("", canon[a:min(r.pos, r.bound.start)])
    who_lead, who_only = _who_patterns()
    if ":" in head or "criteri" in head or "eligib" in head or \
            not re.search(r"[a-z]{4}", who_only.sub(" ", head)):
        return None  # ("Additional inclusion criteria are …": a lead-in, not a requirement)
    written = " ".join(norm[a:a + len(head)].split())
    lead = who_lead.match(written)
    if lead and re.search(r"\bor\W*$", lead.group(0)):
        return None  # ("Male or non-pregnant female adult": another way in, not a requirement)
    words = written[lead.end() if lead else 0:].strip(" ,;(")
    return words or None


_SIDE_BEFORE_NAME = re.compile(r"\d[\d.,]*\s*(?:(?:years?|yrs?|y|months?|weeks?|days?)\s*"
                               r"(?:(?:old|of age)\s*)?)?[≤≥<>]\s*$")
#: grammar around the lexicon's words for who takes part (``condition_words.who``) before an
#: age: articles, quantifiers, "or", the verb and "aged", the sex said as a word
_WHO_GRAMMAR = ("both", "either", "any", "all", "every", "each", "only", "the", "a", "an", "or",
                "and", "older", "younger", "elderly", "being", "who", "that", "are", "is", "must",
                "be", "should", "will", "gender", "genders", "sex", "sexes", "unlimited", "age",
                "aged", "ages")


@cache
def _who_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(the words at a clause's start that only say who takes part, or mark a list item;
    every such word anywhere, with the grammar of an age and what is not a word)."""
    who = _any_of([*tables().condition_words["who"], *_WHO_GRAMMAR])
    return (re.compile(rf"^(?:(?:\(?[0-9a-z]{{1,3}}[.)]|[-•*]|(?:{who})\b)[\s,/]*)+",
                       re.IGNORECASE),
            re.compile(rf"\b(?:{who}|healthy|with|their|of|between|from|at|least|than|over|"
                       r"under|above|below)\b|\(?\b[0-9a-z]{1,3}[.)]|[^a-z]+"))


_NO_AGE_LIMIT = re.compile(r"(?:with\s+)?no\s+(?:upper\s+)?(?:age\s+)?limit")
_CLAUSE_END = re.compile(r"[\s.,;)]*(?:$|[;.]\s)")


def _complement(a: Bound, b: Bound) -> bool:
    """Whether every value that fails ``a`` meets ``b`` ("≤ 1.5 × ULN" and "> 1.5 × ULN";
    "≤ 1.5 × ULN" and "above ULN"; "below ULN" and "above ULN", the limit itself aside)."""
    if a.relative != b.relative or a.unit != b.unit:
        return False
    if a.down and b.up:
        return b.low <= a.high
    if a.up and b.down:
        return b.high >= a.low
    return False


def _redundant_conditions(canon: str, rs: list[Reading]) -> list[tuple[int, int]]:
    """Spans of "for patients with <X beyond a limit that every value failing its bound is
    beyond>" closing a clause whose first alternative is that bound on X ("creatinine ≤ 1.5
    × ULN or creatinine clearance ≥ 60 mL/min for patients with creatinine levels above
    institutional normal": whoever fails the first has creatinine above normal)."""
    out: list[tuple[int, int]] = []
    if len(rs) < 2 or " with " not in canon:
        return out
    for i, r3 in enumerate(rs):
        o = _COND_OPEN.search(canon, max(0, r3.pos - 60), r3.pos)
        if o is None or not _CLAUSE_END.match(canon, r3.end):
            continue
        if any(r1.lab.key == r3.lab.key and _complement(r1.bound, r3.bound)
               and _OR.search(canon, r1.end, o.start()) for r1 in rs[:i]):
            out.append((o.start(), r3.end))
    return out
_CONNECTIVE = re.compile(r"\b(?:and/or|and|or)\b|[,;]")


# a verb after an age that makes the age a group's subject ("patients aged ≥ 70 years must
# have …")
_GROUP_VERB = re.compile(r"\s*+(?:of age|old)?\s*+(?:must|should|will need to|need to|needs to|"
                         r"are required to|is required to|shall)\s+(?:also\s+)?(?:have|show)\b")
# an age stated as the clause's subject ("for Part B, 12 years and older"), not a condition
# on age that names another bound's patients ("for patients aged ≥ 16, Karnofsky ≥ 60")
_AGE_IN_CLAUSE = re.compile(r"(?:^|[,:;]\s*|\b(?:or|and)\s+)(?:aged?\s+)?(?:[≤≥<>]\s*)?\d+\s*"
                            r"(?:-\s*\d+\s*)?(?:years?|yrs?)\b(?:\s+(?:and|or)\s+(?:older|over|"
                            r"above|younger))?\s*+(?:of age|old)?\s*+[,;.]?\s*$")
# a clause that opens with a condition ("for patients with …", "if …", "in case of …")
_CONDITION_LEAD = re.compile(r"(?:or\s+|and\s+)?(?:if|for|in case of|in patients|in subjects|"
                             r"in those|when|where|unless|except)\b")


def _without_unread_alternatives(out: list[tuple[int, Fact]], rs: list[Reading],
                                 canon: str) -> list[tuple[int, Fact]]:
    """Drop the bounds of a clause that offers, after "or", a comparison the grammar did not
    read ("handgrip < 26 kg or gait speed < 1 m/s" without a gait-speed concept): outside an
    exclusion the bound read alone would demand what the text only offers as one way in.
    So does a clause that is only another bound under a condition ("AST and ALT ≤ 3 × ULN;
    ≤ 5 × ULN if hepatic metastases are present"): the clause before it holds for the
    patients without the condition only."""
    if not out or (_OR.search(canon) is None and ";" not in canon):
        return out
    # (an uncoded reading that gave no fact — "bone marrow involvement ≥ 0.5 × 10^9/L" in a
    # clause under a condition — is a comparison no fact states; a lexicon reading that gave
    # none was merged into another's alternatives or is a condition already accounted for)
    kept = {p for p, _ in out}
    rs = [r for r in rs if r.pos in kept or not is_uncoded(r.lab)]
    spans = [(min(r.pos, r.bound.start), max(r.end, r.bound.end)) for r in rs]
    for r in rs:
        spans += [(b.start, b.end) for b, _ in r.alternatives]
    unread = [m.start() for m in (*_CMP_NUM.finditer(canon), *_NUM_CMP.finditer(canon))
              if not any(a <= m.start() < b for a, b in spans)]
    # an age offered after "or" is an alternative even when read: two age facts would
    # demand both ("≥ 60 years or 18-59 years with comorbidities")
    ages = [r for r in rs if r.lab.kind == "age"]
    for r, q in itertools.pairwise(ages):
        if _OR.search(canon, r.end, q.bound.start + 1):
            unread += [r.bound.start, q.bound.start]
    if not unread:
        return out
    drop: list[tuple[int, int]] = []
    clauses = list(_clauses(canon))
    for before, (a, b) in itertools.pairwise(clauses):
        head = len(canon[a:b]) - len(canon[a:b].lstrip(" ;,:"))
        if any(u == a + head for u in unread) and (
                conditional(canon[a:b]) or _EXCEPTION.search(canon[a:b])):
            drop.append(before)
        elif _CONDITION_LEAD.match(canon, a + head) and any(a <= u < b for u in unread):
            # "bilirubin < 2 mg/dL; for Gilbert's < 3 mg/dL", "CrCl ≥ 50 mL/min; if < 50,
            # GFR ≥ 50 mL/min by 24-hour urine": a condition, then a comparison not read
            drop.append(before)
    for a, b in clauses:
        mine = [sp for sp in spans if a <= sp[0] < b]
        for u in (u for u in unread if a <= u < b):
            for x, y in mine:
                lo, hi = (y, u) if y <= u else (u, x)
                between = canon[lo:hi]
                # the joint next to the comparison decides: "… burn or scar, and < 6 months
                # since …" adds a requirement, "… or gait speed < 1 m/s" an alternative, and
                # so does "≥ 25 follicles … and/or ovarian volume > 10 mL" (either suffices)
                joints = _CONNECTIVE.findall(between)
                if joints and joints[-1 if y <= u else 0] in ("or", "and/or") and \
                        _OR.search(canon, lo, hi + 1):  # (it sees what follows the "or")
                    drop.append((a, b))
    return [(p, f) for p, f in out if not any(a <= p < b for a, b in drop)]


# the words after "or" that continue a bound ("18 or older", "0 or more"), not another one
_COMPARATIVES = ("more|less|greater|higher|lower|above|below|older|younger|equal|fewer|over|"
                 "under")
# "or" and a way in stated in words right after a bound, up to the clause's next comma or
# bracket, with no comparison in it: not "or older", not "or equivalent"
_OR_WORDS_AFTER = re.compile(r"(?:\s*+\b(?:at|on)\s++[a-z]+(?:\s++[a-z]+)?(?=\s*+,?\s*+or\b)|"
                             r"\s*+(?:old|of age)\b)?"  # "≥ 60 years old, or 50-59 with …"
                             r"\s*+,?\s*+\bor\s+(?!(?:" + _COMPARATIVES + r"|longer|shorter|"
                             r"equivalent|both|either)\b)"
                             r"(?P<alt>[a-z\d][^,;:()≤≥<>=]*?)\s*(?=$|[,;:)]|\.(?!\d))")
# the same right before a bound, back to the clause's previous comma or bracket
_OR_WORDS_BEFORE = re.compile(r"(?:^|[,;:(]|\d[.)]\s)\s*(?P<alt>[a-z][^,;:.()≤≥<>=]*?)\s*,?\s+"
                              r"or\s+$")
# "or" and an age within three words after a bound ("or adolescents 12-17 years …"), words
# of its own clause between ("… at the time of consent, or 16-17 years with …")
_OR_NUMBER_AFTER = re.compile(r"[^\d;.≤≥<>]{0,60}?,?\s*\bor\s+(?:[a-z][a-z'-]*\s+){0,3}"
                              r"(?P<n>\d[\d.,]*\s*(?:(?:-|–|to)\s*\d[\d.,]*\s*)?"
                              r"(?:years?|yrs?|months?|weeks?|days?)\b)")
# … and after an age, a range of ages written without their unit ("≥ 60 years old, or 50-59
# with at least one risk factor")
_OR_AGE_RANGE_AFTER = re.compile(_OR_NUMBER_AFTER.pattern.split("(?P<n>")[0] +
                                 r"(?:between\s+|from\s+)?(?P<n>\d{1,3}\s*(?:-|–|to|and)\s*"
                                 r"\d{1,3})(?![\d.,%/])(?!\s*(?:[a-zµ]+/|%|kg|cm|mm|mg|ml|g\b|"
                                 r"lbs?\b|units?\b|points?\b))")
# "or" and a value or range with its unit right after a bound ("…, or 100-300 ng/mL …"), or
# after the time it is measured at ("≥ 300 cells/µL at screening or ≥ 150 cells/µL with …")
_OR_VALUE_AFTER = re.compile(r"\s*+(?:(?:at|on|in|during|by)\s++[a-z]+(?:\s++[a-z]+){0,2}\s*+)?"
                             # "… or 1-h ≥ 180 mg/dL": a few words may name the other value
                             r",?\s*+\bor\s++(?:(?:[a-z0-9][\w-]*\s++){1,3}[≤≥<>]\s*+|(?:[≤≥<>]\s*+)?)"
                             r"(?P<n>\d[\d.,]*(?:\s*(?:-|–|to)\s*\d[\d.,]*)?)\s*"
                             r"(?P<u>[^\s\d,;()]+)")
_UNIT_TAIL = re.compile(r"\d\s*(?P<u>[^\s\d,;()]+)[\s,;]*$")
# "or" and a comparison the grammar did not read right after a bound ("WBC > 12,000/mm³ or
# < 4,000/mm³ or > 10% immature forms"): a way in of its own, kept as words
_OR_COMPARISON_AFTER = re.compile(r"\s*+,?\s*+\bor\s++(?P<alt>[≤≥<>]\s*+(?P<n>\d)"
                                  r"[^,;:≤≥<>=]*?)\s*(?=$|[,;:]|\.(?!\d))")
# a comparison that is only a number and its unit: the same bound in another unit
_RESTATED_BOUND = re.compile(r"[≤≥<>]\s*[\d.,]+\s*[^\s\d]*")


def _unit_text(canon: str, bound: Bound) -> str | None:
    """The unit a bound was written in, as written ("ng/ml"), or None."""
    m = _UNIT_TAIL.search(canon, bound.start, bound.end)
    return m.group("u") if m else None


# the same bound in another unit ("≥ 9 g/dL or 5.6 mmol/L"), not another way in
_RESTATED = re.compile(r"[\d.,]+\s*[^\s\d]*")


def _add_word_alternatives(out: list[tuple[int, Fact]], rs: list[Reading], canon: str,
                           read: list[Reading], exclude: bool = False
                           ) -> list[tuple[int, Fact]]:
    """A bound offered beside a way in stated in words ("age > 40 or postmenopausal",
    "hemoglobin ≥ 9 g/dL or transfusion-dependent", "current diagnosis of MDD or HDRS ≥ 12")
    is one way in, not a requirement: the words become an alternative of their own, text
    only (``{"text": …}``), so the bound is an any-of member that a patient may meet or
    leave to review. (Before, the bound stood alone and failed every patient who came in by
    the words.) Words holding a bound the grammar read and kept are that bound, not words (a
    bound read but not kept is a way the reader cannot state); words with a number the
    grammar did not read, before a comparison
    ("≥ 18 years or adolescents 12-17 years weighing ≥ 40 kg"), are an alternative it cannot
    state: the bound is dropped, and so are the bounds of that alternative (the weight is the
    adolescents' only), up to the end of its clause.

    In an exclusion (``exclude``) each way in excludes by itself: the words are the bound's
    alternative too ("eGFR < 30 mL/min/1.73 m² or requiring dialysis"), which the matcher,
    as for a criterion in words, names for a person to confirm without changing the answer
    (before, they were dropped and nothing said the line was partly read). Only the bounds
    that are one part of an unread way are dropped ("age ≥ 18 years, or ≥ 12 years and
    weighing ≥ 40 kg": the weight alone is no reason to exclude)."""
    if "or " not in canon:
        return out
    facts = dict(out)
    # (a bound read but not kept — "urine protein < 2+", no unit it can state — is a way in
    # the line offers as much as words are)
    spans = [(min(r.pos, r.bound.start), max(r.end, r.bound.end)) for r in read
             if r.pos in facts]
    dropped = set()
    others: list[tuple[int, int]] = []  # alternatives whose bounds are theirs only
    for r in rs:
        fact = facts.get(r.pos)
        if fact is None or fact.kind == GROUP:
            continue
        end = max(r.end, r.bound.end, *(b.end for b, _ in r.alternatives))
        start = min(r.pos, r.bound.start)
        if _OR_WORDS_AFTER.match(canon, end) is None and (
                (m := _OR_NUMBER_AFTER.match(canon, end) or (
                    _OR_AGE_RANGE_AFTER.match(canon, end) if r.lab.kind == "age" else None))
                is not None and not any(a <= m.start("n") < b for a, b in spans)):
            stop = canon.find(";", m.end())
            others.append((m.start(), len(canon) if stop < 0 else stop))
            if not exclude:
                dropped.add(r.pos)
            continue
        if (m := _OR_VALUE_AFTER.match(canon, end)) is not None and \
                not any(a <= m.start("n") < b for a, b in spans) and \
                _unit_text(canon, r.bound) == m.group("u"):
            # "ferritin < 100 ng/mL, or 100-300 ng/mL with transferrin saturation < 20 %": a
            # second way in, in the same unit (not the bound restated in another), unread
            stop = canon.find(";", m.end())
            others.append((m.start(), len(canon) if stop < 0 else stop))
            if not exclude:
                dropped.add(r.pos)
            continue
        if (or_at := _unread_before_or(canon, start, spans)) is not None:
            # ("age ≥ 18 years, or ≥ 12 years and weighing ≥ 40 kg"); in an exclusion a bound
            # that is a way of its own stays ("sodium < 130 or potassium > 5.5 mmol/L")
            if not exclude or _unread_between(canon, or_at, start, spans):
                dropped.add(r.pos)
            continue
        words = []
        if (m := _OR_COMPARISON_AFTER.match(canon, end)) is not None and \
                not any(a <= m.start("n") < b for a, b in spans) and \
                not _RESTATED_BOUND.fullmatch(" ".join(m.group("alt").split())):
            words.append(m.group("alt"))
        for m in (_OR_WORDS_AFTER.match(canon, end),
                  _OR_WORDS_BEFORE.search(canon, max(0, start - 120), start)):
            if m and not any(a < m.end("alt") and m.start("alt") < b for a, b in spans):
                words.append(m.group("alt"))
        if exclude and not words and len(facts) == 1 and \
                (items := _list_after(canon, end)) is not None and \
                not _HOW_MEASURED.match(items[2]) and \
                not _condition_regex()[0].search(items[2]) and \
                not any(a < items[1] and items[0] < b for a, b in spans):
            # "eGFR < 30 mL/min/1.73 m², dialysis, or kidney transplant": a serial list, each
            # item a way to be excluded, as "… or requiring dialysis" is — the list whole, as
            # written (an item may hold an "or" of its own); a coded condition among them is
            # the condition reader's, with the other items its words
            words.append(items[2])
        for w in words:
            w = " ".join(w.split())
            if w and not _RESTATED.fullmatch(w) and not _names_only(w) and \
                    not _WHEN_ONLY.fullmatch(w):
                _add_text(fact, w)
    return [(p, f) for p, f in out
            if p not in dropped and not any(a <= p < b for a, b in others)]


def _list_after(canon: str, end: int) -> tuple[int, int, str] | None:
    """(start, end, words) of a serial list of words after an exclusion bound ("…, active
    bleeding, or known coagulopathy") to the end of its statement, or None. (Scanned, not
    matched by one pattern of repeated items: an "or" chain in a hostile line made that one
    take seconds.)"""
    stop = min((i for i in (canon.find(";", end), canon.find(". ", end)) if i >= 0),
               default=len(canon))
    tail = canon[end:stop]
    lead = len(tail) - len(tail.lstrip(" ,"))
    if "," not in tail[:lead] and not canon[:end].rstrip().endswith(","):
        return None
    words = tail[lead:].rstrip(" .")
    if not words[:1].isalpha() or _NOT_LIST_WORDS.search(words) or \
            not _LIST_OR.search(words):
        return None
    return end + lead, end + lead + len(words), words


_NOT_LIST_WORDS = re.compile(r"[:()≤≥<>=\d]")
_LIST_OR = re.compile(r"\sor\s+[a-z]")


# (words that say how or where a bound was measured open no list: "…, as determined by MUGA
# or echocardiogram")
_HOW_MEASURED = re.compile(r"(?:as |measured |assessed |determined |confirmed |by |per |using |"
                           r"on |at |in |according |based )")


#: words beside a bound that say when, not what ("HbA1c > 10 % at screening or at any time
#: in the previous 6 months", the window read): no other way
_WHEN_ONLY = re.compile(r"(?:at any time|any time|ever|at screening|at baseline|currently|"
                        r"previously)[\s,;.]*")


def _add_text(fact: Fact, words: str) -> None:
    """Add a way in stated only in words to a fact's alternatives (once)."""
    words = _LEADING_OR.sub("", " ".join(words.split()).strip(" ,;:"))
    alts = fact.data.setdefault("alternatives", [])
    if words and {"text": words} not in alts:
        alts.append({"text": words})


_LEADING_OR = re.compile(r"^[\s,]*(?:or|and/or)\s+")


# a comparison the grammar may not have read: a comparator before a number, or an age
_COMPARISON = re.compile(r"[≤≥<>]\s*\d|\d\s*(?:years?|yrs?|months?)\b")
_TOP_OR = re.compile(r"\bor\b")


def _unread_before_or(canon: str, start: int, spans: list[tuple[int, int]]) -> int | None:
    """Where the "or" is that the bound at ``start`` follows in its clause, when the way in
    before it holds a comparison no reading took ("age ≥ 18 years, or ≥ 12 years and weighing
    ≥ 40 kg": the weight is the second way in's, and the first was not read); else None."""
    clause = canon.rfind(";", 0, start) + 1
    ors = [m.start() for m in _TOP_OR.finditer(canon, clause, start)
           if not any(a <= m.start() < b for a, b in spans)]
    if ors and _unread_between(canon, clause, ors[-1], spans):
        return ors[-1]
    return None


def _unread_between(canon: str, a: int, b: int, spans: list[tuple[int, int]]) -> bool:
    """Whether a comparison no reading took lies between ``a`` and ``b``."""
    return any(not any(x <= m.start() < y for x, y in spans)
               for m in _COMPARISON.finditer(canon, a, b))


def _names_only(words: str) -> bool:
    """Whether the words only name concepts of the lexicon ("ALT or AST > 3 × ULN" read from
    "AST" on): a shared bound, not a way in of its own."""
    pat, _ = grammar_names()
    return pat.sub("", words).strip(" /-") == ""


def _clause_of(norm: str, pos: int) -> str:
    """The clause of the text ``pos`` is in (:func:`_clauses`: split at ";" and sentence
    ends): a condition in another clause is another clause's ("Age ≥ 18 years; patients with
    HIV must have CD4 ≥ 200 cells/µL" — before, the whole line's condition left the age text)."""
    return next((norm[a:b] for a, b in _clauses(norm) if a <= pos < b), norm)


def _without_own_conditions(norm: str, r: Reading) -> str:
    """The text less the conditions the reading's own alternatives carry ("13-17 years or
    18-20 if living at home": the "if" is the second range's, kept with it as text)."""
    for _, cond in r.alternatives:
        if cond:
            norm = norm.replace(cond, " ")
    return norm


def _concept(f: Fact) -> str | None:
    """What a bound is on: the lexicon key, or an uncoded measurement's name."""
    return f.data.get("test") or f.data.get("name")


def _dedupe(found: list[tuple[int, Fact]], canon: str) -> list[tuple[int, Fact]]:
    """Drop a fact that restates one already read ("hemoglobin (Hb) < 12 g/dL", "ASA 1 or 2
    (ASA 1 meaning … ASA 2 meaning …)"); the same bound again after an "or" that begins
    another group of bounds is that group's own ("… and 2-h glucose < 7.8, OR fasting glucose
    < 6.1 and 2-h glucose < 7.8")."""
    out: list[tuple[int, Fact]] = []
    for pos, f in found:
        d = f.data
        same = [g.data for p, g in out if g.kind == f.kind and _concept(g) == _concept(f)
                and not (out[-1][0] > p and _GROUP_OR.search(canon, p, pos))]
        if any(g == d for g in same):
            continue
        if "also" in d and (twin := next((g for g in same if "also" not in g and g == {
                k: v for k, v in d.items() if k != "also"}), None)) is not None:
            twin["also"] = d["also"]  # ("adults over age 18 with …": read twice, the words
            continue  #                  the second's)
        if any("also" in g and {k: v for k, v in g.items() if k != "also"} == d for g in same):
            continue
        if d.get("low") is not None and d.get("low") == d.get("high") and any(
                g.get("low") is not None and g.get("high") is not None
                and g["low"] <= d["low"] <= g["high"] and g.get("unit") == d.get("unit")
                and g.get("negated") == d.get("negated") for g in same):
            continue
        out.append((pos, f))
    return out


def _merge_sides(found: list[tuple[int, Fact]], canon: str) -> list[tuple[int, Fact]]:
    """"age ≥ 18 years and age ≤ 80 years": two one-sided bounds of one concept joined by
    "and" (or a comma) are one range."""
    out: list[tuple[int, Fact]] = []
    for pos, f in found:
        if out:
            ppos, prev = out[-1]
            same = prev.kind == f.kind != GROUP and _concept(prev) == _concept(f) and \
                prev.data.get("unit") == f.data.get("unit") and \
                prev.data.get("relative") == f.data.get("relative") and \
                not prev.data.get("alternatives") and not f.data.get("alternatives") and \
                not prev.data.get("negated") and not f.data.get("negated") and \
                not prev.data.get("unless") and not f.data.get("unless") and \
                not prev.data.get("with") and not f.data.get("with")
            joint = canon[ppos:pos]
            if same and re.search(r"(?:\band\b|,|\bto\b)\s*(?:(?:age|aged)\s*)?$", joint) and \
                    not re.search(r"\bor\b|;", joint):
                a, b = prev.data, f.data
                lo = a if a["low"] is not None and a["high"] is None else b
                hi = b if lo is a else a
                if lo["low"] is not None and lo["high"] is None and hi["high"] is not None and \
                        hi["low"] is None and lo["low"] < hi["high"]:
                    merged = dict(a, low=lo["low"], low_inclusive=lo["low_inclusive"],
                                  high=hi["high"], high_inclusive=hi["high_inclusive"])
                    if b.get("also"):  # ("≥ 18 and ≤ 65 years with …": the range's words)
                        merged["also"] = b["also"]
                    out[-1] = (ppos, Fact(f.kind, merged))
                    continue
        out.append((pos, f))
    return out



# --- conditions ----------------------------------------------------------------------------

@cache
def _condition_regex() -> tuple[re.Pattern[str], dict[str, dict]]:
    by_name = {n: c for c in tables().conditions for n in c["names"]}
    # (a trie, not an alternation tried name by name at every position: the same match, the
    # longest name at the leftmost place)
    return re.compile(r"(?<![\w/-])(?:" + trie_regex(list(by_name)) + r")(?![\w/-])"), by_name


@dataclass(frozen=True, slots=True)
class _ConditionWords:
    """The condition reader's lexicon (``condition_words`` in mappings/eligibility-labs.json),
    compiled."""
    #: words a clause may hold beside a name and still name only it
    filler: frozenset[str]
    #: words that say who, or nothing of what: a clause of them alone names no condition
    nothing: frozenset[str]
    #: words that alone name a kind of the condition before them ("episodic", "chronic")
    kinds: frozenset[str]
    #: words that make a condition one suspected, not one recorded
    suspicion: frozenset[str]
    #: a word right after a name that the name qualifies ("cancer screening")
    modifies: re.Pattern[str]
    #: what leads a clause and says nothing of it, dropped when its words are shown (not the
    #: filler that qualifies the condition: "a positive test", "active pneumonitis")
    lead: re.Pattern[str]


@cache
def _condition_words() -> _ConditionWords:
    cw = tables().condition_words

    filler, who = frozenset(cw["filler"]), frozenset(cw["who"])
    return _ConditionWords(
        filler, who | frozenset(cw["nothing"]), frozenset(cw["kinds"]),
        frozenset(cw["suspicion"]),
        re.compile(r"\s*(?:" + _any_of(cw["modifies"]) + r")\b"),
        re.compile(r"^(?:(?:" + _any_of((filler | who) - frozenset(cw["shown_filler"])) +
                   r")(?:\s+|$))+"))


_EXCEPT = re.compile(r"\b(?:excluding|except(?: for)?|other than|unless|apart from|"
                     r"with the exception of|but not)\b")
_NEGATION = re.compile(r"\b(?:no|not|without|absence|free of|negative|never|non)\b")


_EXAMPLE = re.compile(r"\bsuch as\b|\be\.g\.|\bincluding\b|\bfor example\b")
# (not the "or" of a comparison: "6 months or less before screening")
_COND_SPLIT = re.compile(r"[;,]| and ?/ ?or | or (?!(?:less|fewer|more|longer|shorter)\b)| and ")
# ("history of asthma before randomisation", "… prior to the first dose of study drug": any
# time before the study, which the problem list is)
# (the event a time window ran up to, "in the 2 years prior to | registration", is left
# after the window's blanked span)
_COND_REST = re.compile(r"(?:(?:prior to|before) |(?<=  ))" + _STUDY_EVENT +
                        r"(?: of (?:the )?(?:study|investigational|trial) (?:drugs?|treatment|"
                        r"medications?|products?|interventions?|therapy))?|\([^)]*\)")
# how the diagnosis was made, which says nothing else about the condition: "according to
# ACR/EULAR 2010 criteria", "as defined by DSM-5 criteria", "per GOLD guidelines"
_DIAGNOSED_BY = re.compile(r"\b(?:according to|as defined by|defined by|as per|per|based on|"
                           r"using|by|meeting|fulfilling|that meets?|who meets?|satisfying)\s+"
                           r"[^,;()]{0,60}?\b(?:diagnostic )?(?:criteria|classification "
                           r"criteria|guidelines?)\b")
_NOT_THE_PATIENTS = re.compile(r"\b(?:due to|secondary to|caused by|because of|resulting from|"
                               r"consent\w*|agree\w*|willing\w*|tests?|testing|information)\b")
# "with or without X" adds nothing (and split at its "or" it would seem two clauses)
_WITH_OR_WITHOUT = re.compile(r"\b(?:with or without|without or with)\b[^,;]*")
# "lifetime or current diagnosis of …", "past or present …": any time, as a name alone is
# read (and split at its "or", the first time word would seem a clause of its own)
_TIME_OR_TIME = re.compile(r"\b(?:lifetime|past|previous|prior|current|present|ongoing)"
                           r"\s+(?:or|and/or)\s+"
                           r"(?:lifetime|past|previous|prior|current|present|ongoing)\b")
_COND_WORDS = re.compile(r"[^\s.,;:()]+")
#: filler words that ask for the condition now, and words that ask for it at any time
_CURRENT_WORDS = frozenset({"active", "current", "currently", "ongoing", "concurrent",
                            "concomitant"})
_EVER_WORDS = frozenset({"history", "past", "previous", "previously", "prior", "lifetime",
                         "ever", "had", "former"})
_BRACKET = re.compile(r"\([^)]*\)")
#: words in a bracket that say which participants a criterion is for
_SUBGROUP = re.compile(r"\b(?:groups?|cohorts?|arms?|part [a-z0-9]|controls?)\b")


# how long a condition named right before it has lasted: "for at least 6 months", "for ≥ 1
# year", "of at least 1 year's duration" (not a time before or after something else)
# ("for more than 1 year", "T1D > 6 months": a day apart from "at least", as a window's
# comparators are inclusive)
_LASTED = re.compile(rf"\s*(?:(?P<lead>for|of) (?:at least|a minimum of|more than|over|longer "
                     rf"than|≥|>)|[≥>]) ?(?P<n>{_NUMW}) ?"
                     rf"(?P<u>{_TUNIT})(?:'s|’s|s'|s’)?(?P<d> duration)?\b"
                     r"(?!\s*(?:before|prior|after|following|from|since|post|ago))")


# … or said by when it was diagnosed: "diagnosed at least 1 year ago", "diagnosed ≥ 3 months
# before screening", "diagnosed more than 6 months prior to enrollment" (a day apart from "at
# least": a window's comparators are inclusive)
_DIAGNOSED_AGO = re.compile(rf"\s*(?:diagnosed|(?:with )?(?:a |the )?diagnosis (?:made )?)\s+"
                            rf"(?:at least|a minimum of|≥|more than|>) ?(?P<n>{_NUMW}) ?"
                            rf"(?P<u>{_TUNIT})\s+(?:ago|(?:before|prior to) {_STUDY_EVENT})\b")


def _lasted(clause: str, pos: int) -> tuple[tuple[int, int], dict] | None:
    """The span and ``>=`` window of a duration right after a condition's name, or of the
    time since its diagnosis."""
    h = _DIAGNOSED_AGO.match(clause, pos)
    if h is not None:
        return (h.start(), h.end()), {"comparator": ">=", "value": _num(h.group("n")),
                                      "unit": _TIME_UNITS[h.group("u")]}
    h = _LASTED.match(clause, pos)
    if h is None or (h.group("lead") == "of") != bool(h.group("d")):
        return None
    return (h.start(), h.end()), {"comparator": ">=", "value": _num(h.group("n")),
                                  "unit": _TIME_UNITS[h.group("u")]}


def condition_facts(norm: str, exclude: bool | None = None,
                    read_at: Iterable[int] = (), states: bool = False
                    ) -> list[tuple[int, Fact]]:
    """Coded conditions named in a clause that says nothing else about them.

    Other conditions the list names in words no code states ("Known HIV, hepatitis B or
    hepatitis C infection", "mechanical ventilation or concurrent infectious pneumonia or
    asthma") are the coded one's alternatives in words (``{"text": …}``, see
    :func:`_other_conditions`); ``read_at`` (where the line's other facts start) and ``states``
    (the line's pregnancy or lactation was read) say which clauses hold what else was read."""
    pat, by_name = _condition_regex()
    if not pat.search(norm):
        # (most criteria name no coded condition; a name found in none of the text is in none
        # of its clauses: they split it at "," ";" and spaced words, outside the names' edges)
        return []
    exc = _EXCEPT.search(norm)
    head = norm[:exc.start()] if exc else norm
    # "any significant condition, such as … malignancy": examples of something broader
    example = _EXAMPLE.search(head)
    if example:
        head = head[:example.start()]
    exceptions = norm[exc.start():].strip(" ;.,") if exc else None
    first = pat.search(head)
    if first is None or _NOT_THE_PATIENTS.search(
            head, _statement_start(head, first.start()), first.start()):
        # ("hemiplegic due to trauma, cancer …", "consented to serological tests HIV, HCV,
        # HBV": a cause of something else, or what is tested or done — no condition the line
        # asks of the patient)
        return []
    head = _WITH_OR_WITHOUT.sub(lambda w: " " * len(w.group(0)), head)
    any_time = [w.start() for w in _TIME_OR_TIME.finditer(head)]
    head = _TIME_OR_TIME.sub(lambda w: " " * len(w.group(0)), head)
    out: list[tuple[int, Fact]] = []
    # clauses that name something no fact reads (and, for one named by a letter, the name)
    unread: list[tuple[int, int, str | None]] = []
    pos = 0
    prev_start = start = 0  # where the clause before this one started
    suspected: tuple[int, int, str] | None = None  # a suspicion of the condition named next
    suspicions = 0
    named_in: list[tuple[int, int]] = []  # the clauses the conditions read were named in
    state_led: set[int] = set()  # statements whose list a state word opens
    for clause in _COND_SPLIT.split(head):
        prev_start, start = start, head.find(clause, pos)
        pos = start + len(clause)
        m = pat.search(clause)
        if m and _condition_words().modifies.match(clause, m.end()):
            m = None
        said = _statement_start(head, start)
        if not head[said:start].strip() and _opens_with_a_state(clause):
            state_led.add(said)
        elif m and said in state_led:
            # "poorly controlled diabetes or hypertension", "uncontrolled asthma, COPD …": the
            # state opening the list is each name's (read alone, the name turns away every
            # patient with it, controlled or not)
            unread.append((start, pos, None))
            continue
        whole = _elliptic(clause, out[-1][1].data["text"]) if not m and out else None
        now = False
        if whole and (m := pat.match(whole)):
            clause = whole  # ("hepatitis B or C infection": hepatitis C)
            # (and "active hepatitis B or C": the one asked for now is the other too)
            now = out[-1][1].data.get("window") == NOW
        if not m and out and out[-1][0] >= prev_start and head.startswith(",", start - 1) and \
                _qualifies(clause) and not any(start <= p < pos for p in read_at):
            # "History of asthma, requiring hospitalization", "type 2 diabetes, treated with
            # metformin": the condition holds only with the words (``with``, as for a bound),
            # not another condition beside it
            out[-1][1].data.setdefault("with", []).append(" ".join(clause.split()))
            start = prev_start  # (a second qualifier qualifies the same condition)
            continue
        if not m:
            if _only_suspicion(clause):
                suspected = (start, pos, clause)  # ("suspected or confirmed COPD": below)
            elif _names_more(clause, start, read_at, states):
                unread.append((start, pos, whole))  # ("hepatitis B, C or D": hepatitis D)
            continue
        # ("without asthma or COPD": the denial before the list is each name's; a window's
        # own "no more than 6 months ago" denies nothing)
        if (_NEGATION.search(clause) and _NEGATION.search(_without_windows(clause))) or \
                _NEGATION.search(
                head, _statement_start(head, start), start):
            continue
        if _NOT_THE_PATIENTS.search(head, _statement_start(head, start), start):
            # (as above, in a later statement of the line: "… Additional information on
            # participants should include … history of cirrhosis")
            continue
        if any(start + br.start() <= p < start + br.end() for br in _BRACKET.finditer(
                clause, m.end()) for p in read_at):
            # "congestive heart failure (NYHA class ≥ II)", "heart failure (EF < 40%)": the
            # bound the bracket holds is what the condition is here — read alone, the name
            # would turn away every patient with it
            continue
        if any(_SUBGROUP.search(br.group(0)) for br in _BRACKET.finditer(clause)):
            # "Rheumatoid arthritis (healthy control group)", "asthma (cohort B only)": the
            # criterion of some participants, which read alone would be everyone's
            unread.append((start, pos, None))
            continue
        windows = time_windows(clause)
        if not windows and (lasted := _lasted(clause, m.end())) is not None:
            # "type 2 diabetes for at least 6 months", "of at least 1 year's duration": begun
            # that long ago or more (the words are the window's, not more than the name)
            (a, b), w = lasted
            windows = [((a, b), w)]
            clause = clause[:a] + " " * (b - a) + clause[b:]
        lead = clause.rfind(":", 0, m.start())
        if lead >= 0 and "following" in clause[:lead]:
            # ("any of the following within 6 months: myocardial infarction, …"): the list's
            # lead-in is no word of its first name's (its window, if any, is the list's)
            rest = clause[lead + 1:m.start()] + " " + clause[m.end():]
        else:
            rest = clause[:m.start()] + " " + clause[m.end():]
        rest = _without_windows(rest)
        rest = _DIAGNOSED_BY.sub(" ", _COND_REST.sub(" ", rest))
        words = _COND_WORDS.findall(rest)
        if _only_suspicion(rest):
            # "known or suspected HIV infection": the recorded condition, and a suspicion of
            # it, which no record states (its words, for a person)
            suspected = (start, pos, rest)
            words = []
        if suspected is not None and suspected[1] <= pos:
            a, b, said = suspected
            word = next(w for w in _COND_WORDS.findall(said)
                        if w in _condition_words().suspicion)
            unread.append((a, b, f"{word} {m.group(0)}"))
            suspicions += 1
            suspected = None
        c = by_name[m.group(0)]
        if c.get("event"):
            # "acute myocardial infarction", "acute stroke": an event is acute (of any other
            # condition "acute" names a kind — acute renal failure is no chronic one)
            words = [w for w in words if w != "acute"]
        if windows:
            # "recent (within 3 months) myocardial infarction": how recent, the window says
            words = [w for w in words if w != "recent"]
        bound_at = _with_a_bound(clause, m, start, read_at)
        if any(w not in _condition_words().filler for w in words) and bound_at is None:
            # ("hepatitis C with cirrhosis", "HIV antibody positive"): more than the name —
            # a condition no code states
            if not any(start <= p < pos for p in read_at):
                unread.append((start, pos, None))
            continue
        data = {"key": c["key"], **c["code"], "text": m.group(0), "exceptions": exceptions}
        if windows:
            data["window"] = windows[0][1]
        elif now or (_CURRENT_WORDS & set(words) and not _EVER_WORDS & set(words) and
                     not any(start <= a < pos for a in any_time)):
            # "active tuberculosis", "currently diagnosed with asthma": the condition now, not
            # one resolved (a tuberculosis treated in 2015 is no active one; before, it
            # excluded the patient as "history of tuberculosis" would)
            data["window"] = dict(NOW)
        if bound_at is not None and exclude is True and any(
                w not in _condition_words().filler for w in words):
            # (among the exclusions "heart failure with LVEF < 40 %" excludes with both:
            # the line's reader makes the two one all-of)
            data[WITH_BOUND_AT] = bound_at
        out.append((start + m.start(), Fact("condition", data)))
        named_in.append((start, pos))
    if out and not _list_window(out, head, named_in):
        return []
    if out and len(head) < len(norm) and \
            not any(f.data.get("window") not in (None, NOW) for _, f in out) and \
            any(a >= len(head) for (a, _), _ in time_windows(norm)):
        # "History of malignancy other than breast cancer within 2 years prior to screening",
        # "any prior cancer diagnosis, with any treatment (e.g., …) within prior six months":
        # a window cut off with the exception or the examples may be the condition's or
        # theirs — read without it, the condition would exclude at any time (text)
        return []
    if out and unread:
        _other_conditions(out, unread, head, exclude, suspicions == len(unread))
    return out


#: a span of time the window grammar does not read ("for 6 months prior to screening")
_TIME_SPAN = re.compile(r"\b(?:\d+(?:\.\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|"
                       r"eleven|twelve)[\s-]*(?:days?|weeks?|months?|years?|yrs?)\b")


def _statement_start(head: str, at: int) -> int:
    """Where the statement (after the last ";" or ". " before ``at``) holding ``at`` starts."""
    return max(head.rfind(";", 0, at), head.rfind(". ", 0, at)) + 1


def _list_window(out: list[tuple[int, Fact]], head: str,
                 named_in: list[tuple[int, int]]) -> bool:
    """A time said once for a whole condition list: "myocardial infarction, stroke or TIA
    within 6 months" and "any of the following within the 6 months prior to entry: …" date
    each condition of the list that has no window of its own (set here). False when the
    list holds a time that cannot be placed — a window between the names, two different
    ones, one that is no "within", or a span of time the window grammar does not read
    ("stroke or TIA for 6 months prior to screening") — where a condition read without it
    would exclude at any time. A list is the statement (between ";" and ". ") its names
    are in."""
    undated: dict[tuple[int, int], list[tuple[int, Fact]]] = {}
    for at, f in out:
        # (a name asked for now takes the list's time if it has one: "any of the following
        # within 6 months: active tuberculosis, …" is present in those months)
        if not f.data.get("window") or f.data["window"] == NOW:
            a = _statement_start(head, at)
            ends = [i for i in (head.find(";", at), head.find(". ", at)) if i >= 0]
            undated.setdefault((a, min(ends, default=len(head))), []).append((at, f))
    for (a, b), facts in undated.items():
        said = head[a:b]
        windows = time_windows(said)
        blank = said
        for (x, y), _ in windows:
            blank = blank[:x] + " " * (y - x) + blank[y:]
        if _TIME_SPAN.search(blank):
            return False
        first = min(at for at, _ in facts)
        colon = said.find(":")
        lead_in = colon if 0 <= colon < first - a and "following" in said[:colon] else -1
        last = max(at for at, _ in out if a <= at < b)
        tail = next((e for s, e in named_in if s <= last < e), last)
        loose = [(a + x, w) for (x, y), w in windows
                 if y <= lead_in or not any(s <= a + x < e for s, e in named_in) or
                 (len(windows) == 1 and last < a + x < tail and
                  not _COND_SPLIT.search(said, y))]
        # (a window in the list's lead-in, "any of the following within 6 months: …", is the
        # list's even where the first name's clause holds it; else one in no name's clause,
        # or the only one, after the list's last name and closing the statement: "stroke or
        # TIA within 3 months")
        if not loose:
            continue
        if len({(w["comparator"], w["value"], w["unit"]) for _, w in loose}) > 1 or any(
                w["comparator"] != "<=" or first <= x <= last for x, w in loose):
            return False  # (two times, one between the names, or no "within": whose?)
        for _, f in facts:
            f.data["window"] = dict(loose[0][1])
    return True


def _only_suspicion(clause: str) -> bool:
    """Whether a clause's words are a suspicion and filler only ("suspected", "known or
    suspected"): a suspicion of the condition the list names next or beside it."""
    cw = _condition_words()
    words = [w for w in _COND_WORDS.findall(clause) if w not in cw.filler]
    return bool(words) and all(w in cw.suspicion for w in words)


#: a clause that qualifies the condition before it rather than naming another
_QUALIFIES = re.compile(r"\s*(?:requiring|required|requires|needing|that|which|with|treated|"
                        r"controlled|uncontrolled|poorly|well|receiving|resulting|causing|"
                        r"associated|complicated|despite|refractory|on (?:treatment|therapy)|"
                        r"not (?:controlled|responding))\b")
#: a qualifier that is a state of the condition, not an action on it: a whole clause of its
#: own ("type 2 diabetes, poorly controlled"), else the next item of a list ("myocardial
#: infarction, uncontrolled/unstable angina")
_STATES = r"(?:controlled|uncontrolled|refractory|complicated)"
_STATE_QUALIFIER = re.compile(rf"\s*(?:(?:poorly|well|not)\s+)?{_STATES}\s*$")
_STATE_OPENER = re.compile(rf"\s*(?:poorly|well|{_STATES})\b")


#: (a condition's data, while the line is read: where the bound it goes with starts)
WITH_BOUND_AT = "_with_bound_at"


def _with_a_bound(clause: str, m: re.Match[str], start: int, read_at: Iterable[int]
                  ) -> int | None:
    """Where the bound the line reads starts, when the rest of a condition's clause is that
    bound joined by filler ("type 2 diabetes with HbA1c 7-10 %", "heart failure with LVEF ≤
    40 %"); else None. Among the inclusions the condition is then a requirement beside the
    bound; among the exclusions the two together exclude (an all-of). Before, the name was
    dropped and the bound alone decided: it let in a type 1 diabetic with an HbA1c of 8 %,
    and turned away a patient with an LVEF of 35 % and no heart failure."""
    after = [p - start for p in read_at if start + m.end() <= p < start + len(clause)]
    if not after or (clause[:m.start()].strip(" ,") and any(
            w not in _condition_words().filler for w in _COND_WORDS.findall(clause[:m.start()]))):
        return None
    between = _COND_WORDS.findall(clause[m.end():min(after)])
    if between and all(w in _condition_words().filler for w in between):
        return start + min(after)
    return None


def _conditions_with_bounds(positioned: list[tuple[int, Fact]]) -> list[tuple[int, Fact]]:
    """An excluded condition that goes with a bound ("heart failure with LVEF < 40 %") and
    that bound, as one all-of; a condition whose bound is no longer there is not read."""
    flagged = [(p, f) for p, f in positioned if WITH_BOUND_AT in f.data]
    if not flagged:
        return positioned
    bounds = {p: f for p, f in positioned if f.kind != "condition"}
    out = [(p, f) for p, f in positioned if WITH_BOUND_AT not in f.data]
    for p, cond in flagged:
        at = cond.data.pop(WITH_BOUND_AT)
        bound = bounds.get(at)
        if bound is None or cond.data.get("alternatives"):
            continue
        out = [(q, g) for q, g in out if g is not bound]
        out.append((p, Fact(GROUP, {"facts": [cond, bound]})))
    return out


def _opens_with_a_state(clause: str) -> bool:
    """Whether a clause opens, after filler ("history of", "known"), with a state word and
    names something after it ("poorly controlled diabetes", "uncontrolled hypertension")."""
    filler = _condition_words().filler
    words = _COND_WORDS.findall(clause)
    i = next((k for k, w in enumerate(words) if w not in filler), len(words))
    rest = " ".join(words[i:])
    m = _STATE_OPENER.match(rest)
    return bool(m) and not _STATE_QUALIFIER.match(rest) and bool(rest[m.end():].strip())


def _qualifies(clause: str) -> bool:
    """Whether a clause after a comma qualifies the condition before it."""
    if not _QUALIFIES.match(clause):
        return False
    return not _STATE_OPENER.match(clause) or bool(_STATE_QUALIFIER.match(clause))


#: the words of a condition list in words too long to repeat
OTHER_CONDITIONS = "other conditions the criterion names"
_ELLIPTIC = re.compile(r"\s*(?P<x>[b-hj-z])(?![\w/-])")


def _elliptic(clause: str, named: str) -> str | None:
    """A clause that names a condition by the letter that tells it from the one before it
    ("hepatitis B or C infection", "hepatitis B, C or D"): the clause with the whole name,
    or None."""
    e = _ELLIPTIC.match(clause)
    head, _, letter = named.rpartition(" ")
    if e is None or not head or len(letter) != 1 or letter == e.group("x"):
        return None
    return f"{head} {clause.strip()}"


def _also_read(age: Fact, norm: str, positioned: list[tuple[int, Fact]], states: bool) -> None:
    """An inclusion age's words that another fact of the line reads ("aged ≥ 18 years, with a
    diagnosis of type 2 diabetes", "women aged 18-45 who are not pregnant") are no words to
    confirm; words that name a coded condition and nothing else ("children 6-12 years with
    asthma", where the age kept the condition's clause from being read) are that condition,
    another requirement of the line."""
    words = age.data["also"][0].lower()
    named = [f.data["text"] for _, f in positioned if f.kind == "condition"]
    if any(n in words for n in named) or (states and _STATE_STEMS.search(words)):
        del age.data["also"]
        return
    cond = _only_a_condition(words)
    if cond is not None and (at := norm.find(cond.data["text"])) >= 0:
        positioned.append((at, cond))
        del age.data["also"]


def _only_a_condition(words: str) -> Fact | None:
    """The coded condition words name and nothing else ("with asthma", "who have type 2
    diabetes"), or None."""
    plain = normalise(words.lower())
    found = condition_facts(plain) if len(_COND_SPLIT.split(plain)) == 1 else []
    if len(found) != 1 or found[0][1].data.get("alternatives") or found[0][1].data.get("with"):
        return None
    return found[0][1]


def _age_with_a_condition(age: Fact) -> Fact:
    """"Patients older than 75 years with COPD" among the exclusions: the age and the coded
    condition together (an all-of: excluded when both hold), not the age with words for
    review; the age as it was when its words are more than a condition."""
    if age.kind == GROUP:  # ("women older than 75 years with COPD": the sex's age)
        members = [_age_with_a_condition(m) for m in age.data["facts"]]
        if members == age.data["facts"]:
            return age
        flat = [x for m in members for x in (m.data["facts"] if m.kind == GROUP else [m])]
        return Fact(GROUP, {"facts": flat})
    words = age.data.get("with") or []
    cond = _only_a_condition(words[0]) if age.kind == "age" and len(words) == 1 else None
    if cond is None or age.data.get("negated"):
        return age
    plain = Fact(age.kind, {k: v for k, v in age.data.items() if k != "with"})
    return Fact(GROUP, {"facts": [plain, cond]})


def _names_more(clause: str, start: int, read_at: Iterable[int], states: bool) -> bool:
    """Whether a clause of a condition list with no coded name in it names something the
    line's facts do not read: words that are not filler, and no other fact (a bound, an age,
    the pregnancy) read in it."""
    end = start + len(clause)
    if any(start <= p < end for p in read_at) or (states and _STATE_STEMS.search(clause)):
        return False
    rest = _COND_REST.sub(" ", clause)
    cw = _condition_words()
    for _ in range(2):
        if not any(w not in cw.filler and w not in cw.nothing and not w.isdigit()
                   for w in _COND_WORDS.findall(rest)):
            return False
        # (then without its time windows: "within the previous month" names nothing)
        rest = _without_windows(rest)
    return True


def _other_conditions(out: list[tuple[int, Fact]], unread: list[tuple[int, int, str | None]],
                      head: str, exclude: bool | None, suspicions: bool = False) -> None:
    """Conditions a list names in words beside its coded ones. Before, the coded ones stood
    alone: "Known HIV, hepatitis B or hepatitis C infection" read HIV and hepatitis B, and an
    exclusion was *not met* for a patient with hepatitis C — cleared on what nobody checked.
    Now the words are the first coded condition's alternative in words, so the line's
    characteristic is an any-of with a text-only member. In an exclusion every such clause is
    another reason to exclude (registries write "and" and commas for "or" there); in an
    inclusion only a list of ways in — joined by "or", or by commas and a last "or" ("type 2
    diabetes or prediabetes", "asthma, bronchiectasis or COPD") — offers them as ways in, and
    the line is then any of its conditions (before, "asthma, bronchiectasis or COPD" required
    asthma *and* COPD); other joints ("and", ";": another requirement) leave the line as it
    was read. (A qualifier list, "cluster headache, episodic or chronic", reads so too: a
    patient without the coded condition is then for review, not turned away.)"""
    if exclude is not True and not suspicions:
        # (a suspicion, "confirmed or probable COPD", is a way in whatever joins it)
        first = min([a for a, _, _ in unread] + [p for p, _ in out])
        last = max([b for _, b, _ in unread] + [p for p, _ in out])
        joints = [j.group(0).strip() for j in _COND_SPLIT.finditer(head, first, last)]
        if not joints or joints[-1] not in ("or", "and/or") or \
                any(j not in ("or", "and/or", ",") for j in joints):
            return
    words = []
    for a, b, whole in unread:
        said = whole or head[a:b]
        if ":" in said:  # ("any of the following within 3 months: unstable angina"): the item
            said = said[said.rindex(":") + 1:]
        # (a bracket whole is an aside; one the list's commas split is only punctuation)
        w = re.sub(r"[()]|\b(?:i\.e|e\.g)\b\.?", " ", _COND_REST.sub(" ", said))
        w = _condition_words().lead.sub("", " ".join(_COND_WORDS.findall(w)))
        if w:
            words.append(w)
    if not words or (exclude is not True and
                     all(w.lower() in _condition_words().kinds for w in words)):
        return  # ("cluster headache, episodic or chronic": kinds of the condition, not others)
    # (a long list, or a clause run on past its condition, is not worth repeating: the
    # criterion's own text says it)
    text = ", ".join(words) if len(words) <= 4 and all(len(w.split()) <= 10 for w in words) \
        else OTHER_CONDITIONS
    fact = min(out, key=lambda x: x[0])[1]
    fact.data["alternatives"] = [{"text": text}]


# --- the whole criterion -------------------------------------------------------------------

_CLAUSE_SPLIT = re.compile(r"(;|\.\s+(?=[a-z]))")


def _clauses(norm: str) -> Iterator[tuple[int, int]]:
    """Spans of the clauses of a criterion: split at ";" (not one inside brackets) and at
    sentence ends."""
    inner = bracketed_semicolons(norm)
    start = 0
    for m in _CLAUSE_SPLIT.finditer(norm):
        if m.start() in inner:
            continue
        if m.start() > start:
            yield start, m.start()
        start = m.end()
    if start < len(norm):
        yield start, len(norm)


def _as_written(name: str, text: str) -> str:
    """A name read from the lower-cased text, in the case the criterion wrote it ("IOP",
    "Cobb angle"); as read when the text does not hold it word for word."""
    return _written_whole(name, text) or name


def _written_whole(words: str, text: str) -> str | None:
    """The words as the text holds them word for word, in its case; None if it does not."""
    m = _written_pattern(words).search(text)
    return m.group(0) if m and len(m.group(0)) == len(words) else None


@lru_cache(maxsize=2048)
def _written_pattern(name: str) -> re.Pattern[str]:
    """The words of a name as a case-blind pattern (names recur: compiled once each)."""
    return re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, name.split())) + r"(?!\w)",
                      re.IGNORECASE)


def _words_as_written(words: str, text: str) -> str:
    """Words read from the lower-cased text in the case the criterion wrote them: whole when
    it holds them so, else word by word ("suspected COPD" from "Suspected or confirmed
    COPD")."""
    return _written_whole(words, text) or " ".join(_as_written(w, text) for w in words.split())


def facts_for(text: str, exclude: bool | None = None) -> list[Fact]:
    """Every fact the criterion text states, in reading order (possibly none). ``exclude``
    (the criterion's sense, when known) lets an exclusion list of alternatives be read."""
    return _read(text, exclude)[0]


# "Patients > 75 years are excluded" among the inclusion criteria states an exclusion: its
# bounds read as requirements would include only the patients it excludes ("not eligible
# for surgery" names a condition and does not end the line)
_SAYS_EXCLUDED = re.compile(r"\b(?:are|is|will be|shall be|must be|to be)\s+(?:excluded|"
                            r"ineligible|not eligible|not included|not enrolled|not allowed|"
                            r"not permitted|not accepted|not acceptable|exclusionary)\s*\W*$|"
                            r"\bwill not be (?:eligible|included|enrolled|allowed|permitted|"
                            r"accepted)\s*\W*$|\b(?:leads?|will lead) to exclusion\s*\W*$")
#: one of these is in every statement ``_SAYS_EXCLUDED`` matches (a test checks it)
_SAYS_EXCLUDED_STEMS = ("exclu", "eligib", "enrol", "includ", "allow", "permit", "accept")


#: a clause about a minor's assent: an age in it says who assents (see _read_line)
_ASSENT = re.compile(r"\bassent(?:s|ed|ing)?\b")
# "Patients with QTc ≤ 470 ms can participate" among the exclusion criteria says whom the
# trial takes: its bounds read as reasons to exclude would turn those very patients away
_SAYS_ALLOWED = re.compile(
    r"\b(?:may|can|could) (?:also )?(?:be )?(?:enrolled|enrol+|included|participate|take part|"
    r"join)\b|\b(?:is|are) (?:also )?(?:acceptable|accepted|allowed|permitted|eligible)\b|"
    r"\bwill (?:also )?be (?:eligible|allowed|permitted|accepted|included|enrolled)\b")


# the bounds of the line may be waived
_WAIVED = re.compile(
    r"\bexceptions?\s+(?:(?:to|for)\s+(?:this|these|the|any)(?:\s+\w+)?\s+)?(?:may|can|could|"
    r"will|might)\s+be\s+(?:made|granted|considered|allowed|permitted)\b|"
    r"\b(?:may|can|could)\s+(?:have|be\s+granted|be\s+given)\s+(?:an?\s+)?exceptions?\b|"
    r"\b(?:may|can|could)\s+(?:still\s+)?remain\s+eligible\b")


_SEX_NOUN = r"(?:wom[ae]n|m[ae]n|(?:fe)?males?|girls?|boys?)"
_SEX_NOUN_RE = re.compile(rf"\b{_SEX_NOUN}\b")
# both sexes named together ("male or female", "men and non-pregnant women"): no restriction
_BOTH_SEXES = re.compile(rf"\b{_SEX_NOUN}\s*(?:,\s*(?:and/or|and|or)?|/|&|and/or|and|or|to|vs\.?|"
                         rf"versus)\s*"
                         rf"(?:non-?pregnant\s+|non-?lactating\s+)?{_SEX_NOUN}\b")
_FEMALE_NOUNS = frozenset(["woman", "women", "female", "females", "girl", "girls"])
#: the two sexes named in order after the bounds ("… for women and men, respectively")
_SEXES_IN_ORDER = re.compile(rf"\b(?P<a>{_SEX_NOUN})\s*(?:and|or|/|,)\s*(?P<b>{_SEX_NOUN})\b"
                             r"[^;]*\brespectively\b")


# the last word of an age as written ("… years", "aged …", "18 yo"): a sex named after it is
# not whose age it is ("Age < 18 years, … pregnant women")
_AGE_WORD = re.compile(r"\b(?:aged?|years?|yrs?|yo|y/o|months?)\b(?!-)")


def _sexes_named(norm: str) -> set[str]:
    """The sexes a line names apart before its last age word ("Males aged 40-75 and females
    aged 50-75 years": both; "Men older than 65": male); a pair naming both at once ("male or
    female") names none."""
    def sex(w: str) -> str:
        return "female" if w in _FEMALE_NOUNS else "male"

    starts = [m.start() for m in _AGE_WORD.finditer(norm)]
    norm = norm[:starts[-1]] if starts else norm

    for m in _BOTH_SEXES.finditer(norm):
        words = _SEX_NOUN_RE.findall(m.group(0))
        if sex(words[0]) != sex(words[-1]):
            norm = norm[:m.start()] + " " * (m.end() - m.start()) + norm[m.end():]
    return {sex(w) for w in _SEX_NOUN_RE.findall(norm)}


def _ages_for_one_sex(facts: list[Fact], norm: str, exclude: bool | None) -> list[Fact]:
    """An age the line gives one sex is not everyone's: with both sexes named apart ("Males
    aged 40-75 and females aged 50-75 years") the ages stay text; among the exclusion
    criteria one sex's age ("Men older than 65", "Women aged ≥ 50 years") excludes that sex
    at that age — the sex and the age together (all-of), not each alone."""
    ages = [f for f in facts if f.kind == "age" or (
        f.kind == GROUP and all(m.kind == "age" for m in f.data["facts"]))]
    if not ages or not _names_a_sex(norm):
        return facts
    sexes = _sexes_named(norm)
    if not sexes or (len(sexes) == 1 and exclude is not True):
        return facts  # (an inclusion naming one sex describes who takes part)
    rest = [f for f in facts if f not in ages and f.kind != "sex"]
    if len(sexes) > 1 or len(ages) > 1 or any(f.kind != "time-window" for f in rest):
        return [f for f in facts if f not in ages and (len(sexes) > 1 or f.kind != "sex")]
    return [Fact(GROUP, {"facts": [Fact("sex", {"sex": sexes.pop()}), ages[0]]}), *rest]


#: a count of one opening a list: "one or more of the following:", "at least one risk factor
#: [" (not "at least one lesion ≥ 10 mm": a list opener must follow the few words)
_ONE_OR_MORE_LEAD = re.compile(r"\b(?:one or more|at least one|1 or more)\s+(?:of\s+(?:the\s+)?)?"
                               r"(?:[a-z-]+\s+){0,4}?(?:[a-z-]+)?\s*[:\[(]")


def _serial_or(joints: list[str]) -> bool:
    """Whether the words between bounds are a list closed by "or": a comma alone between the
    first ones, "or" (no "and", no semicolon) before the last."""
    *head, last = joints
    return bool(_OR_WORD.search(last)) and not _AND_OR_SEMI.search(last.replace(" or ", " ")) \
        and all("," in j and not _AND_OR_SEMI.search(j) for j in head)


_OR_WORD = re.compile(r"\bor\b")
_LIST_JOINT = re.compile(r"[,;]|\band\b")


def _bare_or(joint: str) -> bool:
    """Whether the words between two readings join them by "or" alone (no comma, semicolon
    or "and": a list's joint)."""
    return _OR_WORD.search(joint) is not None and _LIST_JOINT.search(joint) is None
_LIST_LEAD = re.compile(r"[:：]|\bfollowing\b|\bas follows\b|\bmust\b|\brequire|\badequate\b|"
                        r"\bfunction\b|\bcriteri|\bdefined\b")
_AND_OR_SEMI = re.compile(r"\b(?:and|or)\b|;")


#: a score's tally line: points for what it names ("2 points each: …", "+1 point: …")
_TALLY = re.compile(r"\W*[+-]?\d+(?:\.\d+)?\s*points?\b(?:\s*each)?\s*(?::|for\b|if\b)")


def _read(text: str, exclude: bool | None = None) -> tuple[list[Fact], bool]:
    """(facts, whether the bounds/conditions are alternatives joined only by "or")."""
    norm = normalise(text)
    if "point" in norm and _TALLY.match(norm):
        # "1 point each: age > 67, female sex …", "3 points: heart failure": what a score
        # counts, not a criterion — each named thing alone decides nothing (the criterion
        # is the score's total, in the line the tally belongs to)
        return [], False
    facts, only_or = _read_line(text, norm, exclude)
    if facts:
        facts = _ages_for_one_sex(facts, norm, exclude)
    if facts and _names_a_sex(norm):
        facts = _bounds_for_one_sex(facts, norm, exclude)
    if exclude is True and facts:
        facts = [_age_with_a_condition(f) for f in facts]
    return facts, only_or


# the words between a sex and the name of the concept it has a bound on ("Females with
# hemoglobin < 10 g/dL", "men who have a PSA > 4 ng/mL")
_SEX_TO_NAME = re.compile(r"(?:\s+(?:patients?|subjects?|participants?|individuals?|with|who|"
                          r"whose|having|have|has|had|a|an|the|known|documented|baseline|"
                          r"screening|serum|plasma|blood|of|level|levels)\b)*\s+")


def _opened_by_sex(bounded: list[Fact], norm: str,
                   at_pos: dict[int, int] | None = None) -> dict[int, str]:
    """id(fact) → the sex whose noun opens the fact's statement ("women with hemoglobin …");
    with ``at_pos`` (id(fact) → where its reading starts) only the name at that place."""
    opened: dict[int, str] = {}
    apart = _BOTH_SEXES.sub(lambda b: " " * len(b.group(0)), norm)  # "male or female": none
    for m in _SEX_NOUN_RE.finditer(apart):
        gap = _SEX_TO_NAME.match(norm, m.end())
        at = gap.end() if gap else m.end()
        for f in bounded:
            if at_pos is not None and at_pos.get(id(f)) != at:
                continue
            names = [f.data["name"].lower()] if f.kind == MEASUREMENT else \
                tables().lab(f.data["test"]).names
            if any(norm.startswith(n, at) and not norm[at + len(n):at + len(n) + 1].isalnum()
                   for n in names):
                opened.setdefault(id(f), "female" if m.group(0) in _FEMALE_NOUNS else "male")
    return opened


def _sex_pairs(measured: list[tuple[int, Fact]], norm: str) -> list[tuple[int, Fact]]:
    """"Males with hemoglobin ≥ 13 g/dL and females with hemoglobin ≥ 12 g/dL": one bound for
    each sex, as "≥ 13 g/dL (males) and ≥ 12 g/dL (females)" is read — before the two plain
    bounds are taken for two requirements on one concept."""
    labs = [(p, f) for p, f in measured if f.kind == "lab" and not f.data.get("sex") and
            not f.data.get("alternatives") and not f.data.get("negated") and
            not f.data.get("window")]
    if len(labs) != 2 or labs[0][1].data["test"] != labs[1][1].data["test"]:
        return measured
    opened = _opened_by_sex([f for _, f in labs], norm, {id(f): p for p, f in labs})
    (_, first), (_, second) = labs
    if len(opened) != 2 or opened[id(first)] == opened[id(second)]:
        return measured
    merged = Fact("lab", dict(first.data, sex=opened[id(first)], alternatives=[
        {**{k: v for k, v in second.data.items() if k != "test"},
         "sex": opened[id(second)], "condition": None}]))
    return [(p, merged if f is first else f) for p, f in measured if f is not second]


def _names_a_sex(norm: str) -> bool:
    """Whether the line may name a sex ("men", "women", "male", "girls", …): a cheap test before
    the sex words are looked for."""
    return any(w in norm for w in ("men", "man", "male", "girl", "boy"))


def _bounds_for_one_sex(facts: list[Fact], norm: str, exclude: bool | None) -> list[Fact]:
    """A bound a sex opens ("Females with hemoglobin < 10 g/dL", "men who have a PSA > 4
    ng/mL") is that sex's. Among the exclusion criteria one sex's bound excludes that sex at
    that bound — the sex and the bound together (all-of, as for an age), not the bound alone,
    which would exclude the other sex too. Bounds each sex opens apart ("women with hemoglobin
    < 10 g/dL and men with hemoglobin < 12 g/dL") stay text on either side: read as two plain
    bounds, each would hold for both sexes."""
    bounded = [f for f in facts if f.kind in _BOUNDED and not f.data.get("sex") and
               not any(a.get("sex") for a in f.data.get("alternatives") or ())]
    if not bounded:
        return facts
    opened = _opened_by_sex(bounded, norm)
    if not opened:
        return facts
    if len(set(opened.values())) > 1 or len(_sexes_named(norm + " age")) > 1:
        return [f for f in facts if id(f) not in opened]
    if exclude is not True or len(bounded) != 1 or \
            any(f.kind in ("age", "sex", GROUP) for f in facts):
        return facts  # (an inclusion naming one sex describes who takes part)
    f = bounded[0]
    group = Fact(GROUP, {"facts": [Fact("sex", {"sex": opened[id(f)]}), f]})
    return [group if x is f else x for x in facts]


def _read_line(text: str, norm: str, exclude: bool | None) -> tuple[list[Fact], bool]:
    if exclude is not True and any(stem in norm for stem in _SAYS_EXCLUDED_STEMS) and \
            _SAYS_EXCLUDED.search(norm):
        return [], False  # an exclusion written among inclusion criteria: what, not whom
    facts: list[Fact] = []
    facts += sex_facts(norm)
    facts += healthy_facts(norm)
    by_age = None if facts else _age_groups(norm, exclude)
    if by_age is not None:
        return by_age, True
    measured = measure_facts(_without_rationale(norm), exclude)
    if exclude is True and any(f.kind == "sex" for f in facts) and \
            not any(is_age(f) for _, f in measured) and _AGE_WITH_WORDS.search(norm):
        # "women aged ≥ 50 years with a history of fracture": the age was left text (it holds
        # only with the words after it), and the sex alone would exclude every woman
        facts = [f for f in facts if f.kind != "sex"]
    if len(measured) == 2 and _names_a_sex(norm):
        measured = _sex_pairs(measured, norm)
    if len(measured) > 1 and AT_LEAST_N_LEAD.search(norm):
        measured = []  # "at least 2 of: A, B, C": a count of the bounds met, not all of them
    if exclude is True and measured and _SAYS_ALLOWED.search(norm):
        # an allowance among the exclusion criteria: the bounds of its clause say whom the
        # trial takes, not whom it turns away ("Patients with QTc ≤ 470 ms can participate")
        allowed = [(a, b) for a, b in _clauses(norm) if _SAYS_ALLOWED.search(norm, a, b)]
        measured = [(p, f) for p, f in measured if not any(a <= p < b for a, b in allowed)]
        for a, b in allowed:
            # "creatinine > 1.5 mg/dL. Patients with creatinine clearance ≥ 60 mL/min are
            # eligible", "bilirubin > 1.5 × ULN; patients with Gilbert's syndrome are
            # eligible": the allowance lets back in some the bounds before it exclude — they
            # exclude unless it holds, which a person confirms (before, a patient at 1.8
            # mg/dL with a clearance of 70 was excluded)
            # (an age so excepted leaves the line text, as an exception in words after an
            # age does)
            words = " ".join(norm[a:b].split()).strip(" ;,.")
            measured = [(p, f) for p, f in measured if not (p < a and is_age(f))]
            for p, f in measured:
                if p < a and f.kind in _BOUNDED and words not in f.data.get("unless", ()):
                    f.data.setdefault("unless", []).append(words)
        for _, f in measured:
            # nor is a bound the allowance gives as another's alternative ("platelets < 50;
            # patients with platelets 50-100 may be enrolled after discussion")
            alts = f.data.get("alternatives")
            if alts and any(_SAYS_ALLOWED.search(a.get("condition") or "") for a in alts):
                kept = [a for a in alts if not _SAYS_ALLOWED.search(a.get("condition") or "")]
                if kept:
                    f.data["alternatives"] = kept
                else:
                    del f.data["alternatives"]
    if measured and ("exception" in norm or "remain eligible" in norm) and \
            _WAIVED.search(norm):
        # "creatinine ≤ 1.5 mg/dL; exceptions may be made after discussion with the principal
        # investigator", "patients who do not meet the above … may have exception made … and
        # remain eligible": the bounds are not firm — a patient who fails them may still take
        # part, and one who meets them is not thereby in (text)
        measured = []
    # where the words a bound holds only with are ("BMI ≥ 35 kg/m² with comorbidities
    # (diabetes or hypertension)"): a condition they name is theirs, not one of its own
    with_spans = [(i, i + len(w)) for p, top in measured
                  for f in (top.data["facts"] if top.kind == GROUP else [top])
                  for w in f.data.get("with") or () if (i := norm.find(w, p)) >= 0]
    for _, top in measured:
        for f in top.data["facts"] if top.kind == GROUP else [top]:
            if f.kind == MEASUREMENT:
                f.data["name"] = _as_written(f.data["name"], text)
            for alt in f.data.get("alternatives") or ():
                for key in ("condition", "text"):  # "in Japan", not the normalised "in japan"
                    if alt.get(key):
                        alt[key] = _as_if(" ".join(_words_as_written(alt[key], text).split()))
            for key in ("unless", "with", "also"):
                if f.data.get(key):
                    f.data[key] = [" ".join(_as_written(w, text).split()) for w in f.data[key]]
    if "assent" in norm:
        # "children 7 and older provide assent", "subjects aged 7 to 17 willing to sign
        # assent": the age says who must assent (the consent procedure for minors), not who
        # takes part — read as a bound it would turn away the adults and younger children
        # the trial enrols
        assenting = [(a, b) for a, b in _clauses(norm) if _ASSENT.search(norm, a, b)]
        measured = [(p, f) for p, f in measured
                    if not (is_age(f) and any(a <= p < b for a, b in assenting))]
    ages = [(p, f) for p, f in measured if is_age(f)]
    facts += [f for _, f in (_without_contradictions(ages) if exclude is not True else ages)]
    states = pregnancy_facts(norm, exclude)
    facts += states
    positioned = [(p, f) for p, f in measured if not is_age(f)] + [
        (p, f) for p, f in condition_facts(norm, exclude, [p for p, _ in measured], bool(states))
        if not any(a <= p < b for a, b in with_spans)]
    for f in facts:
        if f.data.get("also"):
            _also_read(f, norm, positioned, bool(states))

    for _, f in positioned:
        if f.kind == "condition" and f.data.get("alternatives"):
            for alt in f.data["alternatives"]:  # ("seropositivity for HIV", as written)
                if alt["text"] != OTHER_CONDITIONS:
                    alt["text"] = ", ".join(_words_as_written(w, text)
                                            for w in alt["text"].split(", "))
        if f.kind == "condition" and f.data.get("with"):
            f.data["with"] = [_as_written(w, text) for w in f.data["with"]]
    windows = time_windows(norm)
    # a time window qualifies the labs of its own clause ("DLCO … within the previous 3
    # months is 30-80 %"): give it to them
    past_in_window = set()
    for a, b in _clauses(norm) if windows else ():
        ws = [(s, e, w) for (s, e), w in windows if a <= s < b]
        if len(ws) == 1:
            s, e, w = ws[0]
            for p, f in positioned:
                if a <= p < b and f.kind in _BOUNDED and \
                        not _window_of_other(norm, a, s, e, p):
                    if f.data.get("window") == EVER:
                        # "history of SBP > 180 mmHg within the last year": any result of
                        # the window, which a window (the latest result in it) does not say
                        past_in_window.add(p)
                    else:
                        f.data["window"] = w
    if past_in_window:
        positioned = [(p, f) for p, f in positioned if p not in past_in_window]
    positioned = _conditions_with_bounds(positioned)
    positioned.sort(key=lambda x: x[0])
    # "and/or" is an inclusive or: either bound met meets the line; what a bracket holds is
    # the bound's own ("handgrip (< 26 kg in men; < 18 kg in women) or gait speed < 1 m/s")
    joints = [_BRACKETED.sub(" ", norm[a:b]).replace("and/or", "or")
              for (a, _), (b, _) in itertools.pairwise(positioned)]
    only_or = bool(joints) and all(
        _bare_or(j) or
        _restated(fa, fb, j, norm[b:])
        for j, ((_, fa), (b, fb)) in zip(joints, itertools.pairwise(positioned), strict=True))
    if not only_or and len(joints) == 1 and _OR_WORD.search(joints[0]) and \
            not _AND_OR_SEMI.search(joints[0].replace(" or ", " ")) and \
            _one_function([f for _, f in positioned]):
        # "serum creatinine ≤ 1.5 × ULN, or creatinine clearance ≥ 60 mL/min": two measures
        # of one function, either one met — the comma before "or" ends no list of two (read
        # as all of them, a patient with a clearance of 70 and creatinine 1.6 × ULN failed)
        only_or = True
    if not only_or and exclude is not True and positioned and all(
            f.kind == "condition" for _, f in positioned) and any(
            f.data.get("alternatives") for _, f in positioned):
        only_or = True  # ("asthma, bronchiectasis or COPD": a list of ways in, see
        #                  _other_conditions)
    if only_or and all(f.data.get("negated") for _, f in positioned):
        only_or = False  # ("no QTc > 450 ms or LVEF < 50 %": neither, so both denials hold)
    if len(joints) > 1 and not only_or and _serial_or(joints) and \
            not _LIST_LEAD.search(norm, 0, positioned[0][0]) and \
            not _measures_pair(joints[-1], [f for _, f in positioned[-2:]]):
        # "hemoglobin < 10 g/dL, platelets < 100 × 10^9/L, or ANC < 1.5 × 10^9/L": commas, then
        # "or" before the last — one of them, as "A or B" is (read as all of them, a patient
        # with one was turned away). Not after a lead-in to requirements ("blood biochemistry
        # tests must meet the following criteria: ALT …, AST …, or Cr …", the seed trial),
        # where registries write "or" for "and"
        only_or = True
    if joints and not only_or and (lead := ANY_OF_LEAD.search(norm, 0, positioned[0][0])) and \
            not re.search(r"\band\b", norm[lead.end():]):
        # "one of the following: hemoglobin < 10 g/dL, platelets < 100 × 10^9/L": a list of
        # ways in, the bounds joined by commas alone
        only_or = True
    if joints and not only_or and exclude is not True and \
            (lead := _ONE_OR_MORE_LEAD.search(norm, 0, positioned[0][0])):
        # "one or more CV risk factors [BMI ≥ 25 kg/m², waist ≥ 88 cm, …]": the list a count of
        # one opens is of ways in, whatever joins its items (among the exclusions "and" may
        # still join two that exclude together)
        only_or = lead.end() <= positioned[0][0]
    groups = None if only_or or facts else _or_groups(norm, positioned)
    if groups is not None:
        # "fasting glucose < 7.0 and 2-h glucose 7.8-11.1, or fasting glucose 6.1-7.0 and
        # 2-h glucose < 7.8": any one group of bounds, each group whole
        for g in groups:
            members = _without_contradictions(g) if exclude is not True else g
            if len(members) != len(g):
                groups = None  # a group that contradicts itself was not read right
                break
    if groups is not None:
        facts += [g[0][1] if len(g) == 1 else Fact(GROUP, {"facts": [f for _, f in g]})
                  for g in groups]
        facts += [Fact("time-window", w) for _, w in windows]
        return facts, True
    # "ALT > 3 × ULN and total bilirubin > 2 × ULN", "age > 75 years with a Charlson index
    # ≥ 3": excluded when both hold, not either (the ages, when they are all the line has
    # besides, join the bounds; ages alone are not joined)
    together = positioned if not facts else sorted([*ages, *positioned], key=lambda x: x[0]) \
        if len(facts) == len(ages) and any(f.kind in _BOUNDED for _, f in positioned) else []
    if exclude is True and not only_or and len(together) > 1 and \
            (both := _excluded_together(norm, together)) is not None:
        return [*both, *(Fact("time-window", w) for _, w in windows)], True
    if exclude is not True and not only_or and len(positioned) > 2 and ". " in norm and \
            (parted := _either_within_parts(norm, positioned)) != positioned:
        # bounds in sentences of their own, one offering its own "or": read per sentence
        # (across the line, the two bounds on one concept would contradict and go)
        positioned = _without_contradictions(parted)
    elif exclude is not True and not only_or:
        kept = _without_contradictions(positioned)
        if len(kept) < len(positioned) and _OR.search(norm) and \
                any(f.kind in _CHECKED for _, f in kept):
            # "ferritin < 100 ng/mL or ferritin 100-300 ng/mL with TSAT < 20 %": the second
            # bound on one concept is another way in, and the bounds read beside it may be
            # part of that way (the TSAT is only the second way's): none is everyone's
            kept = [(p, f) for p, f in kept if f.kind not in _CHECKED]
        positioned = kept
        # "ANC ≥ 1500/µL; creatinine ≤ 1.5 × ULN or CrCl ≥ 50 mL/min; bilirubin …": a part
        # between semicolons that offers its own "or" is met by either bound of it
        if len(positioned) > 2 and (";" in norm or "," in norm):
            positioned = _either_within_parts(norm, positioned)
    if only_or and exclude is not True and facts and len(positioned) > 1 and \
            not _in_the_or_list(norm, facts, ages, positioned):
        # "Age ≥ 18 years; hemoglobin ≥ 10 g/dL or hematocrit ≥ 30 %": the age (or sex, or
        # state) is a requirement of its own beside the bounds' "or" — before, any one of the
        # three met the line, and an adult with neither value was let in
        facts.append(Fact(EITHER, {"facts": [f for _, f in positioned]}))
        facts += [Fact("time-window", w) for _, w in windows]
        return facts, False
    facts += [f for _, f in positioned]
    facts += [Fact("time-window", w) for _, w in windows]
    return facts, only_or


def _in_the_or_list(norm: str, facts: list[Fact], ages: list[tuple[int, Fact]],
                    positioned: list[tuple[int, Fact]]) -> bool:
    """Whether the facts read apart from the bounds (ages) are items of the bounds' "or" list
    themselves ("age > 65 or BMI > 30 or diabetes"): each an age joined to the nearest bound
    by a bare "or"."""
    if len(ages) != len(facts):
        return False  # (a sex or a state is who takes part, not one of the ways)
    starts = [p for p, _ in positioned]
    for at, _ in ages:
        after = [p for p in starts if p > at]
        joint = norm[at:after[0]] if after else norm[max(starts):at]
        if not _bare_or(joint) or ". " in joint:
            return False
    return True


#: a joint of two bounds that offers either: "or" (a few words before the next name) and no
#: punctuation or "and" that would make it part of a list
_EITHER_JOINT = re.compile(r"^[^,;]*\bor\s+(?:[a-z-]+\s+){0,3}$")


def _either_within_parts(norm: str, positioned: list[tuple[int, Fact]]
                         ) -> list[tuple[int, Fact]]:
    """The bounds of a list of parts joined by ";", where a part offers its own "or" ("…;
    creatinine ≤ 1.5 × ULN or CrCl ≥ 50 mL/min; …"), with that part one any-of fact (the
    others all required, as before). Unchanged unless every part is either bounds joined by
    such an "or" or bounds with no "or" at all: "A, B or C" in one part could be "(A and B) or
    C" or a list of three ways (not read so)."""
    if len(positioned) < 3 or not _TOP_OR.search(norm):
        return positioned
    # parts between semicolons; where there are none, between commas — but then a part with
    # its own "or" must not be the last: "A, B or C" ends a list with "or" (one of the three,
    # or all of them, as the registry meant), "A, B or C, D" joins B and C alone — and so
    # does "A, B, creatinine ≤ 1.5 × ULN or CrCl ≥ 60 mL/min": two measures of one function
    # (where the bounds are in different sentences, the sentences and ";" parts are the parts:
    # "Diagnosed diabetes and CI-DME. CI-DME is defined as CST > 300 µm or CST > 250 µm with
    # …", the second sentence's "or" is its own)
    sentences = any(". " in norm[a:b] for (a, _), (b, _) in itertools.pairwise(positioned))
    sep = ";" if ";" in norm or sentences else ","
    parts: list[list[tuple[int, Fact]]] = [[positioned[0]]]
    kinds: list[set[str]] = [set()]
    for (a, _), (b, fb) in itertools.pairwise(positioned):
        joint = _BRACKETED.sub(" ", norm[a:b])
        if sep in joint or (sentences and ". " in joint):
            parts.append([(b, fb)])
            kinds.append(set())
            continue
        parts[-1].append((b, fb))
        kinds[-1].add("or" if _EITHER_JOINT.match(joint) else
                      "and" if not _TOP_OR.search(joint) else "?")
    if len(parts) < 2 or not any(k == {"or"} for k in kinds) or \
            any(len(k) > 1 or "?" in k for k in kinds) or \
            (sep == "," and kinds[-1] == {"or"} and not _measures_pair(
                _BRACKETED.sub(" ", norm[parts[-1][0][0]:parts[-1][-1][0]]),
                [f for _, f in parts[-1]])):
        return positioned
    out: list[tuple[int, Fact]] = []
    for part, k in zip(parts, kinds, strict=True):
        if k == {"or"}:
            out.append((part[0][0], Fact(EITHER, {"facts": [f for _, f in part]})))
        else:
            out += part
    return out


def _measures_pair(joint: str, facts: list[Fact]) -> bool:
    """Whether two bounds joined by a bare "or" (no comma before it) are two measures of one
    function ("creatinine ≤ 1.5 × ULN or creatinine clearance ≥ 60 mL/min": the lexicon's
    ``measures``): at the end of a list they are its last item's alternatives, not the list's
    ("ANC ≥ 1.5 × 10⁹/L, platelets ≥ 100 × 10⁹/L, creatinine … or CrCl …" needs the counts and
    either renal bound)."""
    if len(facts) != 2 or _OXFORD_OR.search(joint) or not _TOP_OR.search(joint):
        return False
    measure_of = tables().measure_of
    a, b = (measure_of.get(f.data.get("test", "")) if f.kind == "lab" else None for f in facts)
    return a is not None and a == b


def _one_function(facts: list[Fact]) -> bool:
    """Whether the facts are bounds on two measures of one function (the lexicon's
    ``measures``: creatinine and creatinine clearance)."""
    measure_of = tables().measure_of
    ms = [measure_of.get(f.data.get("test", "")) if f.kind == "lab" else None for f in facts]
    return len(ms) == 2 and ms[0] is not None and ms[0] == ms[1] and \
        facts[0].data["test"] != facts[1].data["test"]


#: a comma before the "or" that closes a list ("A, B, or C"): the list's joint
_OXFORD_OR = re.compile(r",\s*(?:or|and/or)\b")


#: the joint of two statements one exclusion requires together: "and" or "with" right before
#: the next name (a qualifier or two between), nothing set off by punctuation
_TOGETHER = re.compile(r"\b(?:and|with)\s+(?:[a-z-]+\s+){0,2}$")
_EITHER = re.compile(r"\bor\s+(?:[a-z-]+\s+){0,2}$")
_LIST_MARK = re.compile(r"[,;]|\band/or\b")


def _excluded_together(norm: str, positioned: list[tuple[int, Fact]]) -> list[Fact] | None:
    """An exclusion of bounds that must hold together ("ALT or AST > 3 × ULN and total
    bilirubin > 2 × ULN", "oxygen saturation < 92 % with FiO2 ≥ 0.3"), as the ways it is met:
    one all-of per choice of one bound from each side of "and" (names joined by "or" before
    one bound being either). None unless every joint is a bare "and"/"with" or such an "or",
    with at least one "and"/"with": a list set off by commas ("Hb < 8, platelets < 50 and
    ANC < 1.0") is the registry's list of findings, each of which excludes."""
    if len(positioned) < 2 or any(f.kind not in _CHECKED or f.data.get("negated")
                                  for _, f in positioned):
        # (a denied bound's statement is "not (A and B)": either one failing excludes)
        return None
    sides: list[list[Fact]] = [[positioned[0][1]]]
    for (a, _), (b, fb) in itertools.pairwise(positioned):
        joint = norm[a:b]
        if _LIST_MARK.search(joint):
            return None
        if _TOGETHER.search(joint):
            sides.append([fb])
        elif _EITHER.search(joint) and not _DIGIT.search(joint):
            # "ALT or AST > 3 × ULN": names sharing one bound ("A ≥ 9 and B ≥ 100 or C ≥
            # 1.5" could be "(A and B) or C": not read so)
            sides[-1].append(fb)
        else:
            return None
    if len(sides) < 2:
        return None
    ways = list(itertools.product(*sides))
    if len(ways) > 4:
        return None
    return [Fact(GROUP, {"facts": list(w)}) for w in ways]


_BRACKETED = re.compile(r"\([^()]*\)")
_BRACKET_OPENS = re.compile(r"\(\s*(?:i\.e\.,?\s*|equivalent to\s+|or\s+)?$")
_BRACKET_CLOSES = re.compile(r"[^()]*\)\s*[.;,]?\s*$")


def _restated(a: Fact, b: Fact, joint: str, rest: str) -> bool:
    """Whether bound ``b`` restates ``a`` on another scale of one construct, alone in a
    bracket right after it ("ECOG 0-1 (Karnofsky ≥ 70%)"): either one meets the line."""
    if a.kind != "lab" or b.kind != "lab" or a.data["test"] == b.data["test"]:
        return False
    ca, cb = tables().lab(a.data["test"]).construct, tables().lab(b.data["test"]).construct
    return ca is not None and ca == cb and _BRACKET_OPENS.search(joint) is not None and \
        _BRACKET_CLOSES.match(rest) is not None


# the reason for a criterion, which it may restate ("Age ≥ 18 years. Because no dosing or
# adverse event data are currently available on the use of olaparib in patients < 18 years of
# age, children are excluded"): why, not whom, so its bounds are none (to the clause's end)
_RATIONALE = re.compile(r"\b(?:because(?!\s+of\b)|given that)\b[^,;.]*")


def _without_rationale(norm: str) -> str:
    if "because" not in norm and "given that" not in norm:
        return norm
    return _RATIONALE.sub(lambda m: " " * len(m.group(0)), norm)


# an "or" between alternatives, not inside a bound ("0 or 1", "18 or older")
_OR = re.compile(r"\bor\s+(?!" + _COMPARATIVES + r")(?=[a-z]|\d+-[a-z])")
# "or" between two groups of bounds, and whether punctuation sets it off (see _or_groups)
_GROUP_OR = re.compile(r"(?P<p>[,;)]\s*)?" + _OR.pattern)
_GROUP_AND = re.compile(r"\band\b(?!/)")


def _or_groups(norm: str, positioned: list[tuple[int, Fact]]
               ) -> list[list[tuple[int, Fact]]] | None:
    """The bounds of a criterion as groups joined by "or", each group's bounds joined by
    "and"; None unless that reading is clear: at least two groups, one with two bounds or
    more, every "or" either set off by punctuation or between groups that all have two bounds
    or more ("A and B or C" alone could be "A and (B or C)"), and no bound joined by a comma
    alone (a list)."""
    if len(positioned) < 3:
        return None
    groups = [[positioned[0]]]
    marked = []
    for (a, _), (b, fb) in itertools.pairwise(positioned):
        if ". " in norm[a:b]:
            return None  # (sentences are not a group's parts: each says its own)
        m = _GROUP_OR.search(norm, a, b + 1)  # the next name is what follows "or"
        if m is not None:
            groups.append([(b, fb)])
            marked.append(m.group("p") is not None)
        elif _GROUP_AND.search(norm, a, b):
            groups[-1].append((b, fb))
        else:
            # "A, B, or C": a list whose commas take its last joint — alternatives all, or a
            # list the registry meant as "and"; either way not groups
            return None
    if len(groups) < 2 or all(len(g) == 1 for g in groups):
        return None
    if not (all(len(g) >= 2 for g in groups) or all(marked)):
        return None
    return groups


_INCLUDING = re.compile(r"\b(?:including|includ(?:es|ing)|such as|e\.g\.|i\.e\.|defined as|"
                        r"namely|especially|in particular)\b")


_TRIGGER_AFTER = re.compile(r"\s*+\)?\s*+(?:requires?|required|will require|needs?|warrants?|"
                            r"(?:must|should|will|is to) be (?:discussed|reviewed|approved)|"
                            # "patients with CrCl 30-50 mL/min will receive a reduced dose":
                            # whose treatment differs, not who may enter
                            r"(?:(?:who|that)\s+)?(?:will|shall|should|would|may|can)\s+"
                            r"(?:(?:then|also|only)\s+)?(?:receive|be\s+(?:given|treated|dosed|"
                            r"started|assigned|allocated|randomi[sz]ed|stratified|switched)))\b")
#: the window of a value at any time before the assessment ("history of QTc > 480 ms")
EVER: dict[str, Any] = {"comparator": "ever"}
#: the window of a condition present at the assessment ("active tuberculosis", "current
#: diagnosis of bipolar disorder"): not one resolved before it
NOW: dict[str, Any] = {"comparator": "now"}
# a negation whose scope is the bound that follows: the cue, then only words that carry it
# to the bound ("no evidence of", "must not have", "not having a"), or a condition named
# and defined by the bound in brackets ("absence of anemia (hemoglobin < 10 g/dL)")
_NEGATION_WORDS = r"no|not|without|absence of|free of|free from|never|lack of|lacking"
_NEGATION_CUE = rf"\b(?:{_NEGATION_WORDS})\s+"
# "cannot have", "doesn't have", "neither … nor" scope the bound that follows as plainly; not a
# bracket after them ("blood pressure cannot be controlled (SBP ≥ 150 mmHg)" defines the state
# they name)
_NEGATION_CUE_PLAIN = rf"(?:\b(?:{_NEGATION_WORDS}|cannot|neither|nor)|\b[a-z]+n['’]t)\s+"
_NEGATED_BEFORE = re.compile(
    _NEGATION_CUE_PLAIN + r"(?:(?:evidence|history|signs?|symptoms?|presence|of|a|an|any|have|has|"
    r"having|had|be|being|been|known|documented|clinical|clinically|significant|severe|"
    r"uncontrolled|active|current|currently|the|show|showing|exhibit|exhibiting|demonstrate|"
    r"demonstrating|do|does|did|aged?)\s+)*$")
# … or right after a bracket the words open ("absence of anemia (hemoglobin < 10 g/dL)")
_NEGATED_BRACKET_BEFORE = re.compile(
    _NEGATION_CUE + r"(?P<words>(?:[a-z][a-z0-9'-]*\s+){0,4})\(\s*(?:defined as\s+|i\.e\.,?\s+|"
    r"e\.g\.,?\s+|as\s+)?$")


# (a word may hold digits: "no vitamin B12 deficiency (B12 < 200 pg/mL)")
_NEGATED_PHRASE = re.compile(_NEGATION_CUE + r"(?:[a-z][a-z0-9'-]*\s+){0,4}[a-z][a-z0-9'-]*\s*$")
# a negation earlier in the clause, its scope not plain: no punctuation and no word that
# starts something else ("and", "with", "or", "but", "who") between it and the bound
_NEGATION_AHEAD = re.compile(_NEGATION_CUE_PLAIN + r"(?:(?!(?:and|with|or|but|who|which|unless|"
                             r"except|if)\b)[a-z][a-z0-9'/-]*\s+){1,8}$")


# requirements a patient does not meet, listed after the words ("patients who do not meet the
# following laboratory criteria: hemoglobin ≥ 9 g/dL, platelets ≥ 100,000/µL", "failing to
# meet hemoglobin ≥ 9 g/dL"): each bound is one the patient fails. (Read as written, the
# exclusion turned away the patients who meet them.)
_UNMET_LEAD = re.compile(
    r"\b(?:(?:do|does|did|would|could|will)\s+not|don['’]t|doesn['’]t|didn['’]t|not|cannot|"
    r"can['’]t|fail(?:s|ed|ing)?\s+to|failure\s+to|unable\s+to|inability\s+to)\s+"
    r"(?:meet|meeting|fulfil+|fulfil+ing|satisfy|satisfying)\b"
    # then the requirements: a list after a colon, or one named right after the words
    r"(?:[^;:.]{0,60}:.*|(?:\s+(?:the|all|any|each|of|following|these|those|laboratory|lab|"
    r"criteria|criterion|requirements?|values?|parameters?|thresholds?|a|an))*\s*)$")
# "inadequate organ function (hemoglobin ≥ 9 g/dL, platelets ≥ 100,000/µL)": a healthy state
# denied, the bracket right after it (which side it defines, _bracket_negation tells)
_DENIED_STATE_BRACKET = re.compile(
    r"\b(?:inadequate|insufficient)\s+(?:[a-z][a-z0-9'-]*\s+){0,4}\(\s*"
    r"(?:defined as\s+|i\.e\.,?\s+|e\.g\.,?\s+|as\s+)?(?:[^()]*[,;]\s*)?$")


#: the joint of a list a denial before it scopes whole ("no A or B", "without A, B or C")
_NEG_LIST_JOINT = re.compile(r"\s*(?:,\s*)?(?:or|nor|/|,)\s*")


def _negation(norm: str, canon: str, start: int, fact: Fact) -> str | None:
    """How a negation bears on the bound read from ``start`` (its name, or the bound itself
    when it has none): "negated" when it plainly scopes it ("no evidence of QTc > 480 ms";
    "absence of anemia (hemoglobin < 10 g/dL)"; "blood pressure is not well controlled
    (…, systolic blood pressure is 150 mmHg or less …)": the bracket defines what the words
    before it deny — see :func:`_bracket_negation`), "unsure" when a negation earlier in the
    clause may ("no competing illness that would limit the life expectancy to less than 6
    months"), else None."""
    if _NEGATED_BEFORE.search(canon, max(0, start - 60), start):
        return "negated"
    if m := _NEGATED_BRACKET_BEFORE.search(canon, max(0, start - 60), start):
        return _bracket_negation(m.group(0), fact)
    # (substring tests first: the two searches run for every bound of every line)
    if ("meet" in canon or "fulfil" in canon or "satisf" in canon) and \
            _UNMET_LEAD.search(canon, 0, start):
        return "negated"
    if ("inadequate" in canon or "insufficient" in canon) and \
            _DENIED_STATE_BRACKET.search(canon, max(0, start - 160), start):
        # the bracket defines the failure the words name ("inadequate bowel preparation (BBPS
        # ≤ 2)") unless its bound is on the concept's healthy side
        return "negated" if _bracket_negation("not adequate", fact) == "negated" else None
    opening = norm.rfind("(", 0, start)
    if opening >= 0 and norm.find(")", opening, start) == -1 and \
            (m := _NEGATED_PHRASE.search(norm, max(0, opening - 60), opening)):
        return _bracket_negation(m.group(0), fact)  # (the bound in the bracket the words open)
    if _NEGATION_AHEAD.search(canon, max(0, start - 90), start):
        return "unsure"
    return None


# a healthy state a negation denies ("not well controlled (SBP ≤ 150 mmHg)", "without adequate
# renal function (creatinine > 2 mg/dL)"): the bracket may define the healthy state (its bound
# must not hold) or the failure the words name (its bound holds): which, the side of the bound
# tells — see _bracket_negation
_HEALTHY_STATE = re.compile(r"\b(?:controlled|control|adequate|adequately|normal|sufficient|"
                            r"well|stable|acceptable|appropriate|compensated)\b")
_CONTROL = re.compile(r"\bcontrol(?:led)?\b")


def _bracket_negation(words: str, fact: Fact) -> str | None:
    """A negation before a bracket holding a bound: the bracket defines either the state the
    words deny ("absence of anemia (hemoglobin < 10 g/dL)": negated) or its healthy side
    ("free of hypertension (BP < 140/90)", "absence of proteinuria (UPCR < 0.5 g/g)": the
    bound holds as written — read as denied it would demand the disorder). Which one, the
    lexicon's ``states`` tell: the side each concept takes in the state, against the bound's
    side. A healthy state denied ("not well controlled", "without adequate renal function")
    is read the other way round: a bound on the disorder's side is the failure the words name
    (holds as written), one on the healthy side defines the state denied (negated); the
    disorder's side is the concept's only one in ``states``, or, for a concept with two
    (blood pressure, glucose), the high one where the words speak of control. A state the
    lexicon does not know, a concept it does not list, or a range leaves the bound unsure
    (text): "without adequate control of seizures (score < 3)" says nothing of which way the
    score goes."""
    d = fact.data
    side = "low" if d.get("low") is None and d.get("high") is not None else \
        "high" if d.get("high") is None and d.get("low") is not None else None
    test = d.get("test") if fact.kind == "lab" else None
    if _HEALTHY_STATE.search(words):
        sides = {s[test] for _, s in tables().states if test in s}
        if len(sides) > 1 and _CONTROL.search(words):
            sides = {"high"}
        if side is None or len(sides) != 1:
            return "unsure"
        return None if sides == {side} else "negated"
    for names, sides in tables().states:
        if test in sides and side is not None and \
                any(re.search(rf"\b{re.escape(w)}\b", words) for w in names):
            return "negated" if sides[test] == side else None
    return "unsure"


# a specimen named before a concept ("urine sodium", "CSF glucose", "sweat chloride")
_SPECIMEN_BEFORE = re.compile(
    r"\b(?P<sp>urine|urinary|csf|cerebrospinal fluid|spinal fluid|pleural|ascitic|ascites|"
    r"peritoneal|synovial|joint fluid|sweat|saliva|salivary|stool|fecal|faecal|cord|"
    r"umbilical(?: cord)?|amniotic|bronchoalveolar|bal|balf|semen|seminal|vitreous|aqueous|"
    r"dialysate|breast milk|tears?|sputum|gastric|drain|drainage|wound)\s+"
    r"(?:(?:fluid|blood|lavage|humou?r|sample|specimen|spot|random|total|free|level|levels|"
    r"concentration|24[- ]?(?:h|hr|hour)s?)\s+)*$")


def _other_specimen(canon: str, r: Reading) -> bool:
    """Whether the concept read is measured in another specimen than the text names: "urine
    sodium < 20 mmol/L" is not serum sodium. A concept whose own names carry the specimen
    ("urine protein-to-creatinine ratio") is that specimen's."""
    m = _SPECIMEN_BEFORE.search(canon, max(0, r.pos - 40), r.pos)
    if m is None:
        return False
    stem = m.group("sp")[:4]
    return not any(stem in n.lower() for n in (*r.lab.names, r.lab.display))


_EXTREME_BEFORE = re.compile(r"\b(?:lowest|highest|nadir|peak|worst)\s+(?:(?:recorded|measured|"
                             r"observed|documented|reported)\s+)?$")
_PAST_BEFORE = re.compile(r"\b(?:history of|previous|prior|past)\s+(?:(?:an?|any|the|known|"
                          r"documented|recorded|medical|history of)\s+)*$")
# what a "history of" gives its time to: the condition a bracket defines ("history of
# congestive heart failure (NYHA class III or IV)"), or a list it leads ("known history of the
# following cardiovascular comorbidities: …, severe congestive heart failure (NYHA class IV)")
_PAST_BRACKET = re.compile(r"\bhistory of\s+[^(),;:.]*\($")
_PAST_LIST = re.compile(r"\bhistory of (?:any of |one of |one or more of )?the following\b"
                        r"[^;:.]*:[^;:.]*$")


def _past_by_lead(norm: str, pos: int) -> bool:
    if "history of" not in norm:
        return False
    start = max(norm.rfind(";", 0, pos), norm.rfind(". ", 0, pos), pos - 200, 0)
    before = norm[start:pos]
    return _PAST_BRACKET.search(before) is not None or _PAST_LIST.search(before) is not None


_PAST_AFTER = re.compile(r"\s*+,?\s*+(?:at any (?:time|point)|ever\b|in the past\b|"
                         r"historically\b|in (?:his|her|their|the patient's) history\b)")
# a number of results before the concept ("at least one HbA1c …", "two fasting glucose
# values …"): with a noun of results after it, or "at least one" / "one or more" and a
# period ("in the past 12 months") — not "at least one lesion ≥ 1.5 cm", a count of lesions
_COUNT_WORD = re.compile(r"(?:^|\s)(?P<least>(?:≥|at least|a minimum of)\s*)?"
                         r"(?:one|two|three|four|[2-4])\s+(?P<more>or more\s+)?"
                         r"(?:(?:separate|consecutive|documented|prior|previous|recent|measured|"
                         r"confirmed|abnormal)\s+)*$")
_RESULTS_NOUN = re.compile(r"\b(?:values?|measurements?|readings?|results?|levels?|"
                           r"determinations?|tests?)\b")
_PERIOD_AFTER = re.compile(r"[^;]{0,40}?\b(?:in the (?:past|last|previous)|within|during)\b")


# after a bound: a number of results ("on two occasions"), or a time or share of time it is
# held for ("for > 10 % of sleep time", "for at least 12 months"); read in the text as written
# (the canonical text has time windows blanked)
_OCCASIONS = (
    r"(?:on|at|in) (?:(?:at least|≥)\s*one|one or more|(?:(?:at least |≥ ?)?(?:two|"
    r"three|four|[2-4]|several|multiple|repeated)(?: or more)?)) "
    r"(?:(?:out )?of (?:the )?(?:two|three|four|five|[2-6]) )?"
    r"(?:separate |consecutive |different |first |morning |urine )*(?:occasions?|measurements?|"
    r"readings?|visits?|determinations?|tests?|samples?|specimens?|collections?|time ?points?|"
    r"ecgs?|electrocardiograms?)\b")
_OCCASIONS_AFTER = re.compile(r"\s*+,?\s*+" + _OCCASIONS)
_OCCASIONS_ANYWHERE = re.compile(r"\s" + _OCCASIONS)


def _occasions_after(norm: str, canon: str, end: int) -> bool:
    """Whether several results are asked for right after a bound, or at the end of its
    stretch of bounds ("SBP > 180 mmHg or DBP > 110 mmHg on two consecutive measurements":
    the count is both bounds')."""
    if _OCCASIONS_AFTER.match(norm, end) or _OCCASIONS_AFTER.match(canon, end):
        return True
    stop = _STRETCH_END.search(canon, end)
    return _OCCASIONS_ANYWHERE.search(canon, end, stop.start() if stop else len(canon)) \
        is not None


_STRETCH_END = re.compile(r"[,;(.](?!\d)")
# in an exclusion, "lipase > 2 × ULN with clinical signs of pancreatitis": the bound and a
# finding together; the bound alone would exclude more than the line
#: what an age is said to come with, right after it ("… years with frailty", "… who have
#: diabetes"); and an age so followed anywhere in a line
_COMES_WITH = (r"\s*+(?:of age\s*+|old\s*+)?,?\s*+(?:with|who\s+(?:have|has|are)|having|"
               r"and\s+(?:have|having|with))\b")
_WITH_AFTER_AGE = re.compile(_COMES_WITH)
_AGE_WITH_WORDS = re.compile(r"\d\s*(?:years?|yrs?)" + _COMES_WITH)
_WITH_FINDING_AFTER = re.compile(r"\s*+,?\s*+(?:with|and|accompanied by|associated with)\s+"
                                 r"(?:(?:any|clinical|clinically|significant|concurrent)\s+)*"
                                 r"(?:signs?|symptoms?|evidence|manifestations?)\b")
# "BMI ≥ 35 kg/m² with comorbidities", "QTc > 450 ms with bundle branch block": in an
# exclusion the bound excludes only with what the words add (as an age does, see
# _WITH_AFTER_AGE); "with or without" adds nothing
_WITH_WORDS_AFTER = re.compile(r"\s*+,?\s*+" + _COMES_WITH_WORDS + _WORDS_FOLLOW)


def _share_with_words(out: list[tuple[int, Fact]], rs: list[Reading], canon: str) -> None:
    """Words a bound holds only with, closing bounds joined to it without a comma, are theirs
    too: "SBP > 160 mmHg or DBP > 100 mmHg despite medication" excludes the treated only, on
    either pressure (as an exception closing such a list excepts from each, see
    :func:`_waivers`)."""
    facts = dict(out)
    ordered = [r for r in rs if r.pos in facts]
    for i in range(len(ordered) - 1, 0, -1):
        words = facts[ordered[i].pos].data.get("with")
        if not words:
            continue
        for q, nxt in zip(reversed(ordered[:i]), reversed(ordered[1:i + 1]), strict=True):
            f = facts[q.pos]
            # (joined by a bare "or"/"and" only, and another concept: "CST > 300 µm on OCT or
            # CST > 250 µm with cystic fluid" gives the second way its words, not the first)
            if not _BARE_JOINT.fullmatch(canon, _bound_end(canon, q), nxt.pos) or \
                    f.kind not in _BOUNDED or f.data.get("with") or f.data.get("negated") or \
                    _concept(f) == _concept(facts[nxt.pos]):
                break
            f.data["with"] = list(words)


_BARE_JOINT = re.compile(r"\s*+(?:or|and|and/or|/)\s*+")


# … and words after the bound that add a requirement of another kind: "requiring
# transfusion", "that cannot be corrected", "despite treatment", "while on a statin"
_QUALIFIER_AFTER = re.compile(r"\s*+,?\s*+(?:(?:requiring|(?:that|which)\s+(?:requires?|required|"
                              r"needs?|needed)|needing|despite|refractory\s+to|while\s+(?:on|"
                              r"receiving|taking))\s+[a-z]|(?:(?:that|which)\s+(?:cannot|can\s*not|"
                              r"could\s+not)\s+be|not|is\s+not)\s+correct(?:ed|able)\b)")
_LEAD_IN_WORDS = re.compile(r"\b(?:following|below|exceptions?)\b")
_OF_AGE_LEAD = re.compile(r"(?:of age|old)\b\s*+,?\s*+")
#: where the words a bound goes with end: the clause's next comma, semicolon, colon, "or" or
#: bracket
_WORDS_END = re.compile(r"\s*(?:$|[;,():]|(?<!/)\bor\b|\.(?:\s|$))")


def _with_words(canon: str, text: str, rs: list[Reading], r: Reading,
                whole: bool = False) -> str | None:
    """The words a bound among the exclusions holds only with ("with comorbidities",
    "requiring transfusion"), as written; None when nothing after the bound says so, "" when
    something does but not in words of their own (another bound in the clause: "SBP > 160 with
    DBP > 100 mmHg" is two bounds, read as such — or no words to the clause's end)."""
    if any(cond for _, cond in r.alternatives):
        return None  # ("> 3 × ULN (> 5 × ULN with liver metastases)": the alternative's own)
    # (after the last alternative: "potassium < 3.0 or > 5.5 mmol/L that cannot be corrected")
    end = max(r.end, r.bound.end) if r.lab.kind == "age" else max(
        [_bound_end(canon, r), *(b.end for b, _ in r.alternatives)])
    if (close := _CLOSE_PAREN.match(canon, end)) is not None:
        end = close.end()  # ("bradycardia (HR < 50) requiring pacing")
    m = _WITH_FINDING_AFTER.match(canon, end) or _WITH_WORDS_AFTER.match(canon, end) or \
        _QUALIFIER_AFTER.match(canon, end) or (
            _WITH_AFTER_AGE.match(canon, end) if r.lab.kind == "age" else None)
    if m is None:
        return None
    start = end + len(canon[end:m.end()]) - len(canon[end:m.end()].lstrip(" ,"))
    if (of := _OF_AGE_LEAD.match(canon, start)) is not None:
        start = of.end()  # ("older than 80 years of age with frailty": "with frailty")
    stop = next((start + k.start() for k in _WORDS_END.finditer(canon[start:])
                 if k.start() > 0), len(canon))
    stop = _past_remark(canon, text, stop)
    if (more := _OR_MORE_WORDS.match(canon, stop)) is not None:
        # "with hypertension or diabetes": the words' own list, to the clause's end (no
        # number in it: "… or QRS > 120 ms" is another way in)
        stop = _past_remark(canon, text, more.end())
    if r.lab.kind == "age" and any(q.pos > r.pos for q in rs):
        return None  # ("aged > 65 years with an eGFR < 60": the age and the bound, both read)
    if any(end <= q.pos < stop for q in rs if q is not r):
        return None if not _QUALIFIER_AFTER.match(canon, end) and \
            _WITH_FINDING_AFTER.match(canon, end) is None else ""
    if canon.startswith("(", stop):
        return ""  # ("with translocations t(9;22) …": words the bracket cuts short)
    if canon.startswith(":", stop) or _LEAD_IN_WORDS.search(canon, start, stop):
        return None  # ("… with the following exception:": the criteria under the line say)
    words = " ".join(text[start:stop].split()).strip(" ,.")
    if not (re.search(r"[a-z]{3}.*\s", words) or re.search(r"[a-z]{4}", words)):
        return ""
    if whole and not _CLAUSE_END.match(canon, stop):
        # (words cut short at a comma, an "or", a bracket: "with CD, UC, or non-IBD controls"
        # — the clause's rest, whatever it says, is the requirement)
        return REST_IN_WORDS
    return re.sub(r"\s+(?:and/or|or|and)$", "", words) if whole else words


_CLAUSE_END = re.compile(r"\s*(?:$|;|\.(?:\s|$))")
_REMARK_AFTER = re.compile(r"\s*\([^()]*\)")
_OR_MORE_WORDS = re.compile(r"\s+(?:or|and/or)\s+[^\d≤≥<>;,():.]*?(?=\s*(?:$|[;,():]|\.(?:\s|$)))")


def _past_remark(canon: str, text: str, stop: int) -> int:
    """Where words cut at a bracket end when the bracket is a remark the canonical text
    blanked ("with comorbidities (diabetes or hypertension)"): after it, when ``text`` is
    the text as written."""
    m = _REMARK_AFTER.match(text, stop)
    if m is None or canon[stop:m.end()].strip():
        return stop
    return m.end()


#: the words beside a bound when they cannot be cut out of the criterion whole
REST_IN_WORDS = "and the rest of the criterion (in words)"


# "mRS ≤ 1 before the stroke", "premorbid mRS ≤ 2": the value at an earlier time than now,
# which the latest result does not state
# (not "prior to treatment", "before surgery", "before randomisation": the screening value)
_EVENTS = (r"(?:stroke|onset|event|illness|injury|hospitali[sz]ation|diagnosis|infection|"
           r"pregnancy|symptoms?)")
_OTHER_TIME_AFTER = re.compile(r"\s*+\)?\s*+,?\s*+(?:(?:before|prior to|preceding)\s+(?:the\s+|"
                               r"their\s+|his\s+|her\s+)?(?:index\s+|current\s+|qualifying\s+)?"
                               + _EVENTS + r"|at (?:the time of )?(?:diagnosis|onset)|"
                               # "BMI ≥ 25 kg/m² at age 18": a value at another age
                               r"at (?:the )?age (?:of )?\d+|at \d+ years? (?:of age|old))\b")
_OTHER_TIME_BEFORE = re.compile(r"\b(?:pre[- ]?(?:stroke|morbid|injury|illness|event|pregnancy|"
                                r"gravid|conception)|premorbid)"
                                r"\s+(?:[a-z-]+\s+){0,3}$")
_HELD_FOR_AFTER = re.compile(
    r"\s*+,?\s*+(?:for|over) (?:at least |more than |≥ ?|> ?|a (?:minimum|period) of )?"
    r"(?:\d+(?:[.,]\d+)?|one|two|three|four|six|twelve) ?(?:%|percent|hours?|hrs?|h|minutes?|"
    r"mins?|days?|nights?|weeks?|months?|years?)(?![\w])(?! (?:prior|before|preceding))")


# the same, read: how long, in a unit of time ("over 7 days" may be the time an average is
# taken over: not read)
_HELD_FOR = re.compile(
    r"\s*+,?\s*+for (?P<q>at least |more than |≥ ?|> ?|a (?:minimum|period) of )?"
    r"(?P<n>\d+(?:[.,]\d+)?|one|two|three|four|six|twelve) ?(?P<u>hours?|hrs?|h|days?|weeks?|"
    r"months?|years?)(?![\w])(?! (?:prior|before|preceding))")
_TIME_UNIT = {"h": "h", "d": "d", "w": "wk", "m": "mo", "y": "a"}


def _held_for(norm: str, at: int) -> dict[str, Any] | None:
    """The time a bound must have held for, written right after it ("… for at least 6
    months": value 6, comparator ≥, unit mo), or None."""
    m = _HELD_FOR.match(norm, at)
    if m is None:
        return None
    q = (m.group("q") or "").strip()
    return {"value": number(m.group("n")), "comparator": ">" if q in ("more than", ">") else ">=",
            "unit": _TIME_UNIT[m.group("u")[0]]}


_BRACKET_AFTER = re.compile(r"\s*\(([^()]*)\)")


def _other_bound_in_bracket(canon: str, r: Reading, read: list[tuple[int, int]]) -> bool:
    """Whether the bracket right after a bound holds another, unread bound in the bound's
    own unit as written ("≥ 20 years (Japan: ≥ 20 years; other countries: ≥ 18 years)"; not
    "≤ 1.5 mg/dL (≤ 133 µmol/L)", the bound restated in another unit)."""
    m = _BRACKET_AFTER.match(canon, _bound_end(canon, r))
    if m is None:
        return False
    unit = _unit_text(canon, r.bound)
    if unit:
        units = re.escape(unit)
    elif r.bound.unit_written and (u := r.lab.unit_for(r.bound.unit)) is not None:
        # ("18 years or older (≤ 75 years)": the unit is not where the bound's text ends)
        units = "|".join(re.escape(a) for a in sorted(u.aliases, key=len, reverse=True))
    else:
        return False
    other = re.compile(r"[≤≥<>]\s*\d[\d.,]*\s*(?:" + units + r")(?![a-z])")
    return any(not any(a <= b.start() < z for a, z in read)
               for b in other.finditer(canon, m.start(1), m.end(1)))


_NUMBER_IN_CLAUSE = re.compile(r"[^;.≤≥<>]{0,20}?\d")


def _unread_age_number(canon: str, rs: list[Reading]) -> bool:
    """Whether the text names age again outside every reading, a number after the name in
    its clause ("…, upper age limit 65 years")."""
    pat, by_name = grammar_names()
    spans = [(min(r.pos, r.bound.start), max(r.end, r.bound.end)) for r in rs] + \
        [(b.start, b.end) for r in rs for b, _ in r.alternatives]
    return any(by_name[name_of(m.group(0))].kind == "age" and
               not any(a <= m.start() < z for a, z in spans) and
               _NUMBER_IN_CLAUSE.match(canon, m.end()) is not None
               for m in pat.finditer(canon))


def _bound_end(canon: str, r: Reading) -> int:
    """Where a reading's bound ends in the text (trailing blanks left out)."""
    return r.bound.start + len(canon[r.bound.start:r.bound.end].rstrip())


def _count_of_results(norm: str, canon: str, r: Reading) -> bool:
    """Whether a number of results comes before the concept, which the latest result (what a
    matcher reads) does not tell."""
    m = _COUNT_WORD.search(canon, max(0, r.pos - 30), r.pos)
    if m is None:
        return False
    if _RESULTS_NOUN.search(canon, r.pos, r.bound.start):
        return True
    # (the period is read in the text as written: the canonical text has it blanked)
    return bool(m.group("least") or m.group("more")) and \
        _PERIOD_AFTER.match(norm, _bound_end(canon, r)) is not None
_COUNT_BEFORE = re.compile(r"[≤≥<>]\s*\d+\s+(?:[a-z-]+\s+){0,2}$")
_COUNT_NOUN = re.compile(r"[^≤≥<>;,.]{0,40}?\b(?:measurements|readings|occasions|"
                         r"determinations|results|values|tests|episodes|measurement|reading)\b")


# a bracket that opens with an event of its own ("(without transfusion …", "(no G-CSF …")
# support that raises a count, whose own period a window may be ("without transfusion …")
_SUPPORT = r"(?:transfus\w*|growth factors?|g-csf|gm-csf|erythropoie\w*)"
_EVENT_IN_BRACKET = re.compile(r"\s*(?:without|no|not|after|since|following|off)\s+[a-z]|"
                               # "(transfusion independent, defined as not receiving platelet
                               # transfusions for at least 7 days …)"
                               r"[^()]*\b" + _SUPPORT + r"\b")


_EVENT_BEFORE_WINDOW = re.compile(r"\b(?:without|no|off|free of|independent of)\s+(?:[a-z-]+\s+)"
                                  r"{0,4}?(?:" + _SUPPORT + r"|support|therapy|treatment)\b")


_A_COMPARATOR = re.compile("[≤≥<>]")


def _window_of_other(norm: str, clause: int, start: int, end: int, lab: int) -> bool:
    """Whether a window stated before a lab, after words of its own and a comma, qualifies
    those words rather than the lab ("myocardial infarction within 6 months, … heart failure
    (NYHA class > 2)"); a window leading its clause ("within 14 days before registration,
    haemoglobin ≥ 9 g/dL") qualifies what follows. One stated after the lab and an "or"
    qualifies the alternative ("NYHA class > 2 or myocardial infarction within 6 months"). One
    inside a bracket after words of its own qualifies those words, not a lab outside it
    ("hemoglobin ≥ 9 g/dL (without transfusion within 7 days)"); a bracket that opens with
    the window ("(within 14 days of enrollment)") is the lab's."""
    opening = norm.rfind("(", 0, start)
    if opening >= 0 and ")" not in norm[opening:start] and not opening < lab < start and \
            _EVENT_IN_BRACKET.match(norm, opening + 1, start):
        return True
    if lab < start:
        # "ANC ≥ 1,500/µL without growth factor support in the past 14 days": the window of
        # the event named after the lab. An "or" before the bound joins names that share
        # it and the window ("ALT or AST > 3 × ULN within 28 days"); only one after the
        # bound names another alternative
        between = canonical(norm[lab:start])
        bound = _A_COMPARATOR.search(between)
        return bool(_OR.search(between, bound.start() if bound else 0) or
                    _EVENT_BEFORE_WINDOW.search(norm, lab, start))
    if lab < end or "," not in norm[end:lab] or _INCLUDING.search(norm, end, lab):
        # "cardiovascular disease within 12 months, including NYHA class III or IV": the
        # window qualifies what the lab is an instance of
        return False
    colon = norm.find(":", end, lab)
    if colon >= 0 and "," not in norm[end:colon]:
        # "any of the following within the 6 months prior to study entry: myocardial
        # infarction, …, heart failure (NYHA class ≥ II)": the window leads the whole list
        return False
    return bool(re.search(r"[a-z]{3,}", norm[clause:start]))


def _bounds_of(d: dict[str, Any]) -> tuple:
    return tuple(d.get(k) for k in ("low", "high", "low_inclusive", "high_inclusive"))


def _without_contradictions(positioned: list[tuple[int, Fact]]) -> list[tuple[int, Fact]]:
    """Bounds of one criterion that must all hold give each concept one bound: a second,
    different bound on the same concept is for other patients, another time or another way
    in, which the reader did not see, so every bound on that concept stays text. "Cobb angle
    10-40 degrees. (Cobb angle above 40 degrees and …)": the two exclude each other; "at
    least one lesion ≥ 10 mm (≥ 15 mm short axis for lymph nodes)": the second is for some
    lesions (read together, ≥ 15 mm for all); "CrCl ≥ 30 mL/min; patients with CrCl 30-50
    mL/min will receive a reduced dose": the second names whose dose is reduced (read
    together, no one above 50 would be eligible); "Age 1 to < 2 years: maximum 0.6 mg/dL;
    Age 2 to < 6 years: …": rows of a table, whose ages no one has at once. (Two sides of one
    concept stated apart were joined into one bound before this.)"""
    def key(f: Fact) -> tuple:
        return ("age" if f.kind == "age" else _concept(f), f.data.get("unit"),
                f.data.get("relative"), bool(f.data.get("negated")))

    bounded = [f for _, f in positioned if f.kind in _CHECKED and not f.data.get("alternatives")]
    # "Minimum age: 18 years Maximum age: 99 years" read as 18-99 and as its two sides: one
    # bound, the sides dropped
    parts = set()
    for f in bounded:
        lo, hi = _side(f, "low"), _side(f, "high")
        if f.data.get("low") is not None and f.data.get("high") is not None and \
                any(_side(g, "low") == lo and g.data.get("high") is None and key(g) == key(f)
                    for g in bounded) and \
                any(_side(g, "high") == hi and g.data.get("low") is None and key(g) == key(f)
                    for g in bounded):
            parts |= {id(g) for g in bounded if g is not f and _side(g, "low") in (lo, None)
                      and _side(g, "high") in (hi, None) and key(g) == key(f)}
    bounded = [f for f in bounded if id(f) not in parts]
    bad = {key(a) for a, b in itertools.combinations(bounded, 2)
           if key(a) == key(b) and _bounds_of(a.data) != _bounds_of(b.data)}
    return [(p, f) for p, f in positioned if id(f) not in parts and
            (f.kind not in _CHECKED or key(f) not in bad)]


def _side(f: Fact, side: str) -> tuple | None:
    """One side of a bound (value and whether it is included), or None when it is open."""
    v = f.data.get(side)
    return None if v is None else (v, f.data.get(side + "_inclusive", True))


# "Lansky ≥ 50 for patients ≤ 16 years and Karnofsky ≥ 50 % for patients > 16 years": a
# bound, then the ages it is for
_FOR_AGES = re.compile(r"\s*+[,(]?\s*+(?:(?:for|in|if|among)\s+(?:(?:patients|participants|"
                       r"subjects|children|those|people|persons)\s+)?(?:who\s+are\s+|aged?\s+|"
                       r"ages\s+)?|(?P<age>aged?)\s*+(?=[≤≥<>]))")
_FOR_IF = re.compile(r"[ (](?:for|if) |\(\s*aged?\s*[≤≥<>]")
_AGE_GROUP_JOINT = re.compile(r"[\s,;:)]*(?:and|or|and/or)?[\s,;:]*$")


def _age_groups(norm: str, exclude: bool | None = None) -> list[Fact] | None:
    """The bounds of a line that gives each age group its own bound ("Lansky ≥ 50 for
    patients ≤ 16 years and Karnofsky ≥ 50 % for patients > 16 years"; "ECOG ≤ 2 (if aged ≥
    18 years); Karnofsky ≥ 50 (if aged ≥ 16 and < 18 years); Lansky ≥ 50 (if aged < 16
    years)"; "Patients > 16 years of age must have a Karnofsky ≥ 50 %") as one all-of per
    group — the age and its bound — any one of which meets the line, and nothing else in the
    line a bound; None otherwise, and the line is read as before (its bounds, being
    conditional, text).

    Ages the groups leave out: on an inclusion line they meet it as they are ("Karnofsky ≥
    50 for patients > 16 years" sets nothing for a child: any of age ≥ 17 with Karnofsky ≥
    50, or age ≤ 16), so each gap is one more member, the age alone. An exclusion line
    excludes its groups only ("Karnofsky < 50 for patients > 16 years": age ≥ 17 with
    Karnofsky < 50), which needs no such member; a line whose side is not known is read only
    when it has two groups or more and they cover every age exactly once."""
    if "year" not in norm and "(age" not in norm:
        return None
    subject = exclude is not None and _AGE_SUBJECT.match(norm) is not None
    if not subject:
        found = _FOR_IF.finditer(norm)
        if next(found, None) is None or (exclude is None and next(found, None) is None) or \
                sum(map(norm.count, "≤≥<>")) + len(_CMP_WORDS.findall(norm)) < \
                (3 if exclude is None else 2):
            return None
    text = _strip_parens_keep_if(norm)
    canon = canonical(text)  # (comparators in words counted too: "younger than 65 years")
    if not subject and sum(map(canon.count, "≤≥<>")) < (3 if exclude is None else 2):
        return None
    rs = []
    for r in grammar_readings(canon):  # (two names of one scale share one bound: once)
        if r.lab.kind != "age" and not (rs and (rs[-1].bound.start, rs[-1].lab.key) == (
                r.bound.start, r.lab.key)):
            rs.append(r)
    if subject:
        groups = _subject_group(canon, rs)
        if groups is None:
            return None
    else:
        if not rs or (len(rs) < 2 and exclude is None) or \
                any(c.isdigit() for c in canon[:rs[0].pos]):
            return None  # ("age ≥ 12, Lansky ≥ 50 for …": a bound before the groups)
        groups = []
        prev_end = 0
        for r in rs:
            if r.alternatives or (prev_end and
                                  not _AGE_GROUP_JOINT.match(canon[prev_end:r.pos])):
                return None
            if _held_for(norm, max(r.end, r.bound.end)) is not None:
                return None  # "CD4 > 200/µL for at least 1 year": how long, not whose
            m = _FOR_AGES.match(canon, max(r.end, r.bound.end))
            # ("Karnofsky ≥ 70 % (age ≥ 16)": an age with no unit, after "age", in years)
            group = _age_group(canon, m.end(), r, years=bool(m.group("age"))) if m else None
            if group is None:
                return None
            groups.append(group[0])
            close = _CLOSE_PAREN.match(canon, group[1])
            prev_end = close.end() if close else group[1]
        if canon[prev_end:].strip(" .;,)"):
            return None
    # "≤ 16" then "> 16"; "< 16", "≥ 16 and < 18", "≥ 18": no age in two groups, and the
    # ages in none (completed years) are the gaps
    spans = sorted((lo, hi) for lo, hi, _, _ in groups)
    if any(b_lo <= a_hi for (_, a_hi), (b_lo, _) in itertools.pairwise(spans)):
        return None
    gaps = [(a_hi + 1, b_lo - 1) for (_, a_hi), (b_lo, _) in
            itertools.pairwise([(-1, -1), *spans, (math.inf, math.inf)]) if b_lo > a_hi + 1]
    if gaps and exclude is None:
        return None
    facts = [Fact(GROUP, {"facts": [a, f]}) for _, _, a, f in groups]
    return facts + [Fact("age", _age_span(lo, hi)) for lo, hi in gaps if exclude is False]


# comparators in words, for a first count before the canonical text is made
_CMP_WORDS = re.compile(r"\b(?:than|least|most|under|over|up to|between|above|below)\b")
# "Patients > 16 years of age must have …", "For patients ≥ 70 years: …": an age group named
# first, its one bound after
_AGE_SUBJECT = re.compile(r"\W*(?:(?:for|in)\s+)?(?:all\s+)?(?:patients|participants|subjects|"
                          r"children|adolescents|adults|individuals|those)\s+(?:who\s+are\s+|"
                          r"aged?\s+)?(?=[<>≤≥\d]|older|younger|over|under|at least|more|less)")
# (the verb may be the concept's own: "Patients < 18 years of age must weigh at least 20 kg")
_SUBJECT_VERB = re.compile(r"[\s,:]*(?:(?P<verb>must|should|will need to|need to|are required "
                           r"to)\s+(?:(?:have|be|show)\s+)?)?(?:an?\s+|the\s+)?")


def _subject_group(canon: str, rs: list[Reading]) -> list[tuple[int, float, Fact, Fact]] | None:
    """The groups of "Patients > 16 years of age must have a Karnofsky ≥ 50 %", "For
    patients ≥ 70 years: creatinine clearance ≥ 50 mL/min" — one per clause ("For patients
    ≥ 16 years: Karnofsky ≥ 60 %; for patients < 16 years: Lansky ≥ 60"); None unless the
    line is that and nothing more."""
    groups = []
    for a, b in _clauses(canon):
        mine = [r for r in rs if a <= r.pos < b]
        group = _one_subject_group(canon[:b], a, mine)
        if group is None:
            return None
        groups.append(group)
    return groups or None


def _one_subject_group(canon: str, start: int, rs: list[Reading]
                       ) -> tuple[int, float, Fact, Fact] | None:
    lead = _AGE_SUBJECT.match(canon, start)
    if lead is None or len(rs) != 1 or rs[0].alternatives:
        return None
    group = _age_group(canon, lead.end(), rs[0])
    if group is None:
        return None
    verb = _SUBJECT_VERB.fullmatch(canon, group[1], rs[0].pos)
    if verb is None or not (verb.group("verb") or canon[lead.start():lead.end()].lstrip(
            " -*•").startswith(("for ", "in "))):
        return None  # ("Patients > 18 years, ECOG 0-1": the age is required too)
    if canon[max(rs[0].end, rs[0].bound.end):].strip(" .;,)"):
        return None
    return group[0]


def _age_group(canon: str, start: int, r: Reading, years: bool = False
               ) -> tuple[tuple[int, float, Fact, Fact], int] | None:
    """The group of bound ``r`` whose ages are written at ``start`` ("≤ 16 years"): its
    first and last age in completed years, the age fact, the bound's fact; and where the
    ages end."""
    age = tables().lab("age")
    found = grammar_bounds(age, canon, start)
    if found is None or found[1]:
        return None
    b, _, _, end = found
    if (of := _AGE_OF.match(canon, end)) is not None:
        b.unit, b.unit_written, end = b.unit if b.unit_written else "a", True, of.end()
    elif years and not b.unit_written:
        b.unit, b.unit_written = "a", True
    if b.unit != "a" or b.sides is not None:
        return None
    data = _bound_data(r.lab, r.bound, False)
    age_data = _bound_data(age, b, True)
    if data is None or age_data is None:
        return None
    if any(v is not None and (not math.isfinite(v) or v != int(v)) for v in (b.low, b.high)):
        return None
    # ages in completed years: "> 16" is "≥ 17", "< 16" is "≤ 15"
    lo = 0 if b.low is None else int(b.low) + (0 if b.low_inclusive else 1)
    hi = math.inf if b.high is None else int(b.high) - (0 if b.high_inclusive else 1)
    fact = Fact(MEASUREMENT, {"name": r.lab.display, **data}) if is_uncoded(r.lab) else \
        Fact("lab", {"test": r.lab.key, **data})
    return (lo, hi, Fact("age", age_data), fact), end


def _age_span(lo: float, hi: float) -> dict[str, Any]:
    """The age fact of the completed years ``lo`` to ``hi`` (0 and ∞: no side)."""
    return {"low": lo or None, "high": None if hi == math.inf else hi,
            "low_inclusive": True, "high_inclusive": True, "unit": "a"}


_CLOSE_PAREN = re.compile(r"\s*\)")


def _strip_parens_keep_if(norm: str) -> str:
    """The text with its brackets' words kept (the remark blanking would drop "(if aged < 16
    years)" whole) but the brackets themselves blanked."""
    return norm.replace("(", " ").replace(")", " ") if "(if " in norm else _strip_parens(norm)


#: the fact kinds that bound a measured value (age aside)
_BOUNDED = frozenset(["lab", MEASUREMENT])
_CHECKED = _BOUNDED | {"age"}


def structure(criteria: list[Criterion]) -> list[Criterion]:
    """Fill ``facts`` (and ``combination``) of every criterion in the tree, in place."""
    for root in criteria:
        for c in root.walk():
            c.facts, only_or = _read(c.text, c.exclude)
            # several things in one exclusion line each exclude ("pregnant or lactating");
            # several bounds in one inclusion line must all hold ("ALT …, AST …") unless they
            # are plain alternatives ("creatinine ≤ 1.5 mg/dL or CrCl ≥ 60 mL/min")
            c.combination = "any-of" if c.exclude or only_or else "all-of"
    for root in criteria:
        for c in root.walk():
            _under_a_named_heading(c)
    # nested items under "at least 2 of the following:" keep their facts: they combine as
    # at-least (criteria.children_combination), each one of the ways to count
    memo: dict[str, str | None] = {}
    criteria[:] = _by_group(criteria, memo)
    for c in _for_one_group(criteria, memo):
        c.facts, c.combination = [], "all-of"
    criteria[:] = _either_or(criteria)
    for root in criteria:
        for c in root.walk():
            if c.children and not c.exclude and children_combination(c) == "all-of":
                c.children = _either_or(c.children)
    _age_table_rows(criteria)
    return criteria


#: a sub-heading that names what its items bound ("Age:", "Life expectancy:", "Performance
#: status:"), as the National Cancer Institute's PDQ records write their patient
#: characteristics
_NAMED_HEADING = re.compile(r"([A-Za-z][A-Za-z0-9 ,'/-]{0,40}):")


def _under_a_named_heading(c: Criterion) -> None:
    """The items of a sub-heading that names a measure, read with its name: "Age:" over "18
    and over", "Life expectancy:" over "At least 12 weeks" (before, each item alone was a
    number of nothing, text). Only an item that says nothing read alone, and only when the
    two together give ages or bounds (a heading such as "Other:" or "Hepatic:" names no
    measure, and its items' own words are read as they are)."""
    if not c.children or c.facts:
        return
    m = _NAMED_HEADING.fullmatch(c.text.strip())
    if m is None:
        return
    for item in c.children:
        if item.facts or item.children:
            continue
        facts, only_or = _read(f"{m.group(1)}: {item.text}", item.exclude)
        if facts and all(f.kind in ("age", "lab") for f in facts):
            item.facts = facts
            item.combination = "any-of" if item.exclude or only_or else "all-of"


# a criterion the registry joins to the next with "or" ("… 7.0 mmol/L or,"), one the previous
# is joined to ("or HbA1c …"), and a line that is only the joint ("OR")
_OR_END = re.compile(r"(?:\b(?:or|and/or)|/or)\s*[,;:.]?\s*$", re.IGNORECASE)
_OR_START = re.compile(r"\s*(?:or|and/or)\b", re.IGNORECASE)


def _either_or(siblings: list[Criterion]) -> list[Criterion]:
    """Inclusion criteria the registry joins with "or" are alternatives: "fasting blood
    glucose from 6.1 to 7.0 mmol/L or," / "impaired glucose tolerance of 7.8 to 11.1 mmol/L
    or," / "HbA1c 5.7-6.4 %" (three definitions of prediabetes) required all three bounds
    when read as three inclusion criteria. Each run of joined criteria goes under one holder
    (linkId :data:`EITHER_OR`, its text a lead-in that says one of them is met). A line that is
    only the joint stays in the run as a criterion in words. Exclusion criteria exclude on any
    one already."""
    out: list[Criterion] = []
    i, n = 0, len(siblings)
    while i < n:
        j = i
        while j + 1 < n and not siblings[j].exclude and not siblings[j + 1].exclude and \
                siblings[j].link_id != EITHER_OR and siblings[j + 1].link_id != EITHER_OR and \
                (_OR_END.search(siblings[j].text) or _OR_START.match(siblings[j + 1].text)):
            j += 1
        if j > i:
            run = siblings[i:j + 1]
            out.append(Criterion(EITHER_OR_TEXT, False, section=run[0].section, children=run,
                                 link_id=EITHER_OR))
        else:
            out.append(siblings[i])
        i = j + 1
    return out


def _age_interval(f: Fact) -> tuple[float, bool, float, bool] | None:
    """(low, inclusive, high, inclusive) of a plain age fact, in days; None for others."""
    d = f.data
    if f.kind != "age" or d.get("alternatives") or d.get("negated") or d.get("unit") not in DAYS:
        return None
    k = DAYS[d["unit"]]
    lo = d["low"] * k if d.get("low") is not None else float("-inf")
    hi = d["high"] * k if d.get("high") is not None else float("inf")
    return lo, bool(d.get("low_inclusive", True)), hi, bool(d.get("high_inclusive", True))


def _disjoint(a: tuple[float, bool, float, bool], b: tuple[float, bool, float, bool]) -> bool:
    """Whether no age is in both intervals."""
    def before(x: tuple[float, bool, float, bool], y: tuple[float, bool, float, bool]) -> bool:
        return x[2] < y[0] or (x[2] == y[0] and not (x[3] and y[1]))
    return before(a, b) or before(b, a)


def _disjoint_from_another(ivs: list[tuple[float, bool, float, bool]]) -> set[int]:
    """Indices of the intervals that share no age with at least one other. (An interval lies
    wholly after another only if it lies after the one that ends first, and wholly before
    another only if it lies before the one that starts last: two candidates each, not every
    pair — a hostile list of ten thousand ages costs a sort, not fifty million tests.)"""
    if len(ivs) < 2:
        return set()
    # (the latest start, an exclusive one later on a tie; the earliest end, exclusive first)
    last_start = sorted(range(len(ivs)), key=lambda i: (ivs[i][0], not ivs[i][1]))[-2:]
    first_end = sorted(range(len(ivs)), key=lambda i: (ivs[i][2], ivs[i][3]))[:2]
    out = set()
    for i, iv in enumerate(ivs):
        after = last_start[-1] if last_start[-1] != i else last_start[0]
        before = first_end[0] if first_end[0] != i else first_end[1]
        if _disjoint(iv, ivs[after]) or _disjoint(iv, ivs[before]):
            out.add(i)
    return out


def _age_table_rows(criteria: list[Criterion]) -> None:
    """Ages no one has at once, stated by sibling criteria that must all hold, are the keys
    of a table's rows, not the participant's age: "A serum creatinine based on age/gender as
    follows:" over "Age 1 to < 2 years: 0.6 mg/dL (male), 0.6 mg/dL (female)", "Age 2 to < 6
    years: 0.8 …" (the children's oncology template) required every age at once, so no one
    was eligible. Those ages stay text. (Ages that overlap — "Age ≥ 18" and "Age ≤ 75" on two
    lines — are sides of one requirement and stay; among exclusions, or alternatives under a
    lead-in, disjoint ages are ways in or out, read as they are.)"""
    def rows(siblings: list[Criterion]) -> None:
        ages = [(c, f, iv) for c in siblings for f in c.facts
                if (iv := _age_interval(f)) is not None]
        for i in _disjoint_from_another([iv for _, _, iv in ages]):
            c, f, _ = ages[i]
            c.facts = [x for x in c.facts if x is not f]

    rows([c for c in criteria if not c.exclude])
    for root in criteria:
        for c in root.walk():
            if c.children and not c.exclude and children_combination(c) == "all-of":
                rows(c.children)


#: a group of participants a trial enrols apart ("Part B", "Cohort 1", "Cohorts 2-4", "Arm A",
#: "the dose expansion", "Phase 1b"), as a label of its own
_GROUP = (r"(?:the\s+)?(?:(?:part|cohort|arm|group|substudy|sub-study|module)s?\s+"
          r"(?:[a-z]|\d+[a-z]?|[ivx]+)(?:\s*(?:-|to|and|,|&)\s*(?:[a-z]|\d+[a-z]?|[ivx]+))*|"
          r"dose[- ](?:escalation|expansion)(?:\s+(?:part|phase|cohorts?|stage))?|"
          r"(?:escalation|expansion)\s+(?:part|phase|cohorts?|stage)|"
          r"phase\s+(?:1|2|i|ii)[ab]?)(?:\s+(?:only|patients|participants|subjects))?")
#: a criterion that is only a group's label ("Part A:", "Cohort 2 (adolescents)")
_GROUP_LABEL = re.compile(rf"\s*(?:for\s+)?{_GROUP}\s*(?:\([^()]*\))?\s*:?\s*$")
#: a criterion opening with a group's label ("Part B: age 12 to 17 years", "(Part B) …") or
#: naming it in brackets ("Age 12-17 years (Part B)")
_GROUP_HEAD = re.compile(rf"\s*(?:[a-z]\)\s*)?(?:for\s+)?(?:{_GROUP}\s*(?:\([^()]*\)\s*)?:|"
                         rf"\(\s*(?:for\s+)?{_GROUP}\s*\))")
_GROUP_BRACKET = re.compile(rf"\(\s*(?:for\s+|in\s+)?{_GROUP}\s*\)")
#: a section heading for one group ("Inclusion Criteria (Part A):", "… for Part B:")
_GROUP_WORDS = re.compile(_GROUP)
_GROUP_SECTION = re.compile(rf"criteria\b.*?(?:\bfor\s+|\bin\s+|\(\s*){_GROUP}\b")


#: words every group's name has one of (see _GROUP): a text without one names no group
_GROUP_HINTS = ("cohort", "group", "substud", "sub-stud", "module", "escalation", "expansion",
                "phase")
_PART_OR_ARM = re.compile(r"\b(?:parts?|arms?)\b")


def _group_norm(text: str | None, memo: dict[str, str | None]) -> str | None:
    """The normalised text where it may name a participant group, else None (most criteria:
    substring tests, before the normalising and the patterns every criterion would pay;
    ``memo`` keeps the answer for a text asked again in one reading)."""
    if not text:
        return None
    if text in memo:
        return memo[text]
    # (normalise() changes no letters of these words but full-width and accented forms)
    low = text.lower() if _TRANSLATED.search(text) is None else normalise(text)
    hint = any(w in low for w in _GROUP_HINTS) or (
        ("part" in low or "arm" in low) and _PART_OR_ARM.search(low) is not None)
    memo[text] = found = normalise(text) if hint else None
    return found


def _names_group(norm: str | None) -> bool:
    return norm is not None and bool(
        _GROUP_LABEL.match(norm) or _GROUP_HEAD.match(norm) or _GROUP_BRACKET.search(norm))


def _group_of(c: Criterion, memo: dict[str, str | None]) -> str | None:
    """The participant group a criterion is for, as written at its head, in brackets or as
    its whole text ("part b"), or None."""
    norm = _group_norm(c.text, memo)
    if norm is not None and _names_group(norm):
        m = _GROUP_WORDS.search(norm)
        return " ".join(m.group(0).split()) if m else None
    return None


#: a line that only names whom the criteria below it are for ("Adolescents", "Parents:",
#: "For caregivers:", "Healthy controls")
_POPULATION_LABEL = re.compile(
    r"\s*(?:for\s+)?(?:the\s+)?(?P<who>(?:healthy\s+)?(?:adolescents?|parents?|caregivers?|"
    r"carers?|children|child|mothers?|fathers?|families|family members?|spouses?|partners?|"
    r"patients?|participants?|volunteers?|controls?|control group|adults?|infants?|"
    r"neonates?|newborns?|donors?|recipients?|staff|residents?|clinicians?|physicians?|"
    r"nurses?|providers?|students?|teachers?|dyads?))\s*:?\s*$", re.IGNORECASE)


def _population_labels(criteria: list[Criterion]) -> dict[int, str]:
    """id(criterion) → the population a label line names ("Adolescents" then its criteria,
    "Parents" then theirs) — only where one side of the criteria names two populations or
    more: each population's criteria are then one group's, as "Part A"/"Part B" are (a single
    "Patients:" over the list names everyone)."""
    found: dict[int, str] = {}
    for side in (False, True):
        labels = [(c, m.group("who")) for c in criteria if bool(c.exclude) == side and
                  (m := _POPULATION_LABEL.fullmatch(c.text)) is not None]
        if len({" ".join(who.lower().split()) for _, who in labels}) >= 2:
            found.update((id(c), " ".join(who.lower().split())) for c, who in labels)
    return found


def _label_text(label: str) -> str:
    """"part a" → "Part A", "cohort 1a and 1b" → "Cohort 1a and 1b"."""
    words = [w.upper() if len(w) == 1 or re.fullmatch(r"[ivx]+", w) else w
             for w in label.split()]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _by_group(criteria: list[Criterion],
              memo: dict[str, str | None]) -> list[Criterion]:
    """The criteria with each participant group's gathered under one criterion, so that whom
    they are for survives into the EvidenceVariable (and its reading back):

    - a label line with nothing below it ("Part A") takes the criteria after it on its side,
      up to the next label;
    - the criteria under a group's section heading ("Inclusion Criteria (Part A):") go under
      a criterion naming the group ("Part A", linkId :data:`PARTICIPANT_GROUP`);
    - with two groups or more among the inclusion criteria, the groups go under one criterion
      "One of these participant groups: …" (linkId :data:`PARTICIPANT_GROUP`) whose nested
      criteria are alternatives: a patient meets the inclusion criteria common to all, and
      those of one group. (A group's exclusions, or a single group's inclusions, stay text:
      see :func:`_for_one_group`.)"""
    out: list[Criterion] = []
    open_label: dict[bool, Criterion | None] = {False: None, True: None}
    sections: dict[str | None, re.Match[str] | None] = {}
    populations = _population_labels(criteria)
    for root in criteria:
        side = bool(root.exclude)
        norm = _group_norm(root.text, memo)
        if (id(root) in populations or (norm is not None and _GROUP_LABEL.match(norm))) and \
                not root.children:
            open_label[side] = root
            out.append(root)
            continue
        label_root = open_label[side]
        if label_root is not None:
            label_root.children.append(root)
            continue
        if root.section not in sections:  # (one heading over many criteria)
            section = _group_norm(root.section, memo)
            sections[root.section] = \
                _GROUP_SECTION.search(section) if section is not None else None
        m = sections[root.section]
        if m is not None:
            last = out[-1] if out else None
            if last is not None and last.link_id == PARTICIPANT_GROUP and \
                    bool(last.exclude) == side and last.section == root.section:
                last.children.append(root)
                continue
            label = _GROUP_WORDS.search(m.group(0))
            out.append(Criterion(_label_text(label.group(0) if label else m.group(0)),
                                 root.exclude, section=root.section, children=[root],
                                 link_id=PARTICIPANT_GROUP))
            continue
        out.append(root)
    groups: dict[str, list[Criterion]] = {}
    at = []
    for i, c in enumerate(out):
        if not c.exclude and (g := populations.get(id(c)) or _group_of(c, memo)) is not None:
            groups.setdefault(g, []).append(c)
            at.append(i)
    if len(groups) < 2 or at[-1] - at[0] + 1 != len(at):
        # (groups with other criteria between them are not gathered: the criteria keep the
        # registry's order, and which of those between are common is not known — text)
        return out
    members = []
    for label, cs in groups.items():
        if len(cs) == 1:
            members.append(cs[0])
        else:  # lines naming one group each ("Cohort 1: …", "Cohort 1: …"): one holder
            members.append(Criterion(_label_text(label), False, section=cs[0].section,
                                     children=cs, link_id=PARTICIPANT_GROUP))
    holder = Criterion("One of these participant groups: " +
                       "; ".join(_label_text(g) for g in groups), False,
                       section=out[at[0]].section, children=members,
                       link_id=PARTICIPANT_GROUP)
    return [*out[:at[0]], holder, *out[at[-1] + 1:]]


def _for_one_group(criteria: list[Criterion],
                   memo: dict[str, str | None]) -> list[Criterion]:
    """The criteria (with everything below them) that state the terms of one group of
    participants where no alternative group is read beside them: under a group's label,
    opening with it, or naming it in brackets — unless they are alternatives under a lead-in
    ("meet one of the following", and the groups :func:`_by_group` gathered).

    A trial enrolling adults in Part A and adolescents in Part B lists "Age ≥ 18 years" under
    one and "Age 12 to 17 years" under the other: read as everyone's, the two contradict and
    no one is eligible. A single group's inclusions, and any group's exclusions (which exclude
    only that group's patients, whom the criteria do not name), stay text, for a person to
    confirm, rather than bind everyone."""
    scoped: list[Criterion] = []

    def visit(c: Criterion, inherited: bool, alternative: bool = False) -> None:
        # (``alternative``: the criterion and all below it are one way in of several, under
        # a lead-in — their group is one alternative's, not a restriction on everyone)
        own = not alternative and (
            inherited or _names_group(_group_norm(c.text, memo)) or
            (c.link_id == PARTICIPANT_GROUP and ANY_OF_LEAD.search(c.text) is None))
        if own:
            scoped.append(c)
        if not c.children:
            return
        # alternatives under a lead-in ("one of the following", "at least 2 of"), whatever
        # group each names
        either = alternative or ANY_OF_LEAD.search(c.text) is not None or \
            at_least(c.text) is not None
        for ch in c.children:
            visit(ch, own, either)

    for root in criteria:
        visit(root, False)
    return scoped
