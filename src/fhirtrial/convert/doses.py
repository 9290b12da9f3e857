"""Dose levels stated in arm / intervention text → structured :class:`~fhirtrial.model.DoseLevel`.

Deliberately conservative: a wrong structured dose is worse than none, so the text is only
structured when it states its amounts plainly — one amount, or one list of amounts sharing a
unit ("6.0*10^6, 3.0*10^7 and 9.0*10^7 cells / person", the dose-escalation form). Anything
else (two different amounts such as a loading and a maintenance dose, a range, "up to",
a concentration such as "200 mg/mL", contradicting routes) gives no structure; the text is
always kept by the builder either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..eligibility import unescape
from ..model import DoseLevel
from ..tables import Target, table

_NUM = r"\d+(?:\.\d+)?(?:\s*[x×*]\s*10\s*\^?\s*[-−]?\d+)?"
_UNITS = {
    "mg": "mg", "g": "g", "mcg": "ug", "µg": "ug", "μg": "ug", "ug": "ug", "ml": "mL",
    "iu": "[iU]", "cells": "{cells}", "gy": "Gy", "mmol": "mmol", "ng": "ng",
}
_UNIT = r"(?:mg|mcg|µg|μg|ug|ng|g|ml|iu|cells|gy|mmol|units?|u)"
_PERS = {"kg": "kg", "m2": "m2", "m^2": "m2", "m²": "m2", "person": "person", "day": "d",
         "d": "d", "dose": "dose"}
_PER = r"(?:kg|m\^?2|m²|person|day|d|dose|ml|l)"
_AMOUNT = re.compile(
    rf"(?P<range>{_NUM}\s*(?:-|–|to|±|\+/-)\s*)?(?P<num>{_NUM})\s*(?P<unit>{_UNIT})\b"
    rf"(?:\s*/\s*(?P<per>{_PER})\b)?", re.IGNORECASE)
_LIST = re.compile(
    rf"(?P<nums>{_NUM}(?:(?:\s*,\s*(?:and\s+|or\s+)?|\s*,?\s*(?:and|or)\s+){_NUM})+)"
    rf"\s*(?P<unit>{_UNIT})\b(?:\s*/\s*(?P<per>{_PER})\b)?", re.IGNORECASE)
_NUM_RE = re.compile(_NUM)
_UNCERTAIN = re.compile(r"\b(?:up to|maximum|max\.?|at most|not exceed|titrat\w*|adjusted|"
                        r"escalat\w* to|approximately|about|~|starting (?:from|at)|"
                        r"initial(?: dose)?(?: of)?|starting dose(?: of)?)"
                        r"\s*(?:a\s+)?(?:dose\s+of\s+)?$",
                        re.IGNORECASE)
# a strength or content statement ("1 ml contains 100 units") is not a dose
_STRENGTH = re.compile(r"\bcontain(?:s|ing)?\b|\bconcentration\b|\bstrength\b", re.IGNORECASE)

_FREQUENCIES = [
    (re.compile(r"\bsingle[\s-]+(?:dose|administration|infusion|injection)\b|"
                r"\bonce\b(?!\s+(?:a\s+|per\s+)?(?:daily|day|week|weekly|every|month))",
                re.IGNORECASE), "single dose"),
    (re.compile(r"\b(?:once\s+(?:a\s+|per\s+)?(?:daily|day)|q\.?d\.?|"
                r"(?<!twice )(?<!times )daily|every\s+day|"
                r"once-daily)\b", re.IGNORECASE), "once daily"),
    (re.compile(r"\b(?:twice\s+(?:a\s+|per\s+)?(?:daily|day)|b\.?i\.?d\.?|two\s+times\s+"
                r"(?:a|per)\s+day)\b", re.IGNORECASE), "twice daily"),
    (re.compile(r"\b(?:three\s+times\s+(?:a\s+|per\s+)?(?:daily|day)|t\.?i\.?d\.?)\b",
                re.IGNORECASE), "3 times daily"),
    (re.compile(r"\b(?:once\s+(?:a\s+|per\s+)?week|weekly)\b", re.IGNORECASE), "once weekly"),
]
_EVERY = re.compile(r"\b(?:every|q)\s*(?P<n>\d+)\s*(?P<u>hours?|h|days?|d|weeks?|w|wk)\b",
                    re.IGNORECASE)
_TIMING_UNIT = {"h": "h", "hour": "h", "hours": "h", "d": "d", "day": "d", "days": "d",
                "w": "wk", "wk": "wk", "week": "wk", "weeks": "wk"}


@dataclass(frozen=True, slots=True)
class Timing:
    """A dose's schedule in FHIR Timing.repeat terms."""

    count: int | None = None
    frequency: int | None = None
    period: int | None = None
    period_unit: str | None = None


def _value(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(?:\s*[x×*]\s*10\s*\^?\s*([-−]?\d+))?", text.strip())
    if not m:
        raise ValueError(text)
    base = float(m.group(1))
    return base * 10 ** int(m.group(2).replace("−", "-")) if m.group(2) else base


def _unit(unit: str, per: str | None) -> tuple[str, str | None] | None:
    """(UCUM-ish unit, per) or None for a concentration (a strength, not a dose)."""
    u = _UNITS.get(unit.lower())
    if u is None:
        # "units" / "U": insulin units, enzyme units, international units: which is unsaid
        return None
    if per is None:
        return u, None
    p = per.lower()
    if p in ("ml", "l"):
        return None
    return u, _PERS[p]


def route_of(text: str) -> str | None:
    """The one administration route the text names (the route table's display), else None."""
    found = [e["display"] for e in table("route").doc["map"].values()
             if re.search(e["pattern"], text, re.IGNORECASE)]
    return found[0] if len(found) == 1 else None


def route_target(route: str | None) -> Target | None:
    """The route table's coding for a route display written by :func:`route_of`."""
    t = table("route")
    for key, e in t.doc["map"].items():
        if e["display"] == route:
            return t.target(key, "snomed")
    return None


def frequency_of(text: str) -> str | None:
    """The one schedule the text names, normalised (``once daily``, ``every 3 weeks`` …)."""
    found = {label for rx, label in _FREQUENCIES if rx.search(text)}
    for m in _EVERY.finditer(text):
        n, u = int(m.group("n")), _TIMING_UNIT[m.group("u").lower()]
        found.add(f"every {n} {dict(h='hours', d='days', wk='weeks')[u]}")
    return found.pop() if len(found) == 1 else None


def timing_of(frequency: str | None) -> Timing | None:
    """The Timing for a normalised frequency from :func:`frequency_of`."""
    fixed = {"single dose": Timing(count=1), "once daily": Timing(None, 1, 1, "d"),
             "twice daily": Timing(None, 2, 1, "d"), "3 times daily": Timing(None, 3, 1, "d"),
             "once weekly": Timing(None, 1, 1, "wk")}
    if frequency in fixed:
        return fixed[frequency]
    m = re.fullmatch(r"every (\d+) (hours|days|weeks)", frequency or "")
    if m:
        return Timing(None, 1, int(m.group(1)), {"hours": "h", "days": "d", "weeks": "wk"}[
            m.group(2)])
    return None


def extract_dose_levels(text: str | None, *, route_text: str | None = None) -> list[DoseLevel]:
    """The dose levels a text states plainly; [] when it states none or is ambiguous.

    ``route_text`` is where to look for the route when ``text`` names none (the arm's
    description often says how the intervention is given).
    """
    if not text:
        return []
    plain = unescape(text)
    amounts = list(_AMOUNT.finditer(plain))
    if not amounts or _STRENGTH.search(plain):
        return []
    for m in amounts:
        if m.group("range") or _UNCERTAIN.search(plain[:m.start()]):
            return []
    route = route_of(plain) or (route_of(unescape(route_text)) if route_text else None)
    frequency = frequency_of(plain)
    count = 1 if frequency == "single dose" else None
    lst = _LIST.search(plain)
    if lst:
        # every amount in the text must belong to the one list
        if any(m.start() < lst.start() or m.end() > lst.end() for m in amounts):
            return []
        unit = _unit(lst.group("unit"), lst.group("per"))
        if unit is None:
            return []
        suffix = lst.group(0)[lst.end("nums") - lst.start():].strip()
        return [DoseLevel(text=f"{n.group(0)} {suffix}", value=_value(n.group(0)), unit=unit[0],
                          per=unit[1], frequency=frequency, route=route, count=count)
                for n in _NUM_RE.finditer(lst.group("nums"))]
    values = {(_value(m.group("num")), m.group("unit").lower(), (m.group("per") or "").lower())
              for m in amounts}
    if len(values) != 1:
        return []
    m = amounts[0]
    unit = _unit(m.group("unit"), m.group("per"))
    if unit is None:
        return []
    return [DoseLevel(text=m.group(0), value=_value(m.group("num")), unit=unit[0], per=unit[1],
                      frequency=frequency, route=route, count=count)]
