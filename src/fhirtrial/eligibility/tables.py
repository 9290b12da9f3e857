"""The eligibility lexicon (measurable concepts) and condition table
(``mappings/eligibility-labs.json``), loaded once and checked against its schema when it loads."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from ..errors import MappingError

_NAME = "eligibility-labs.json"


@dataclass(frozen=True, slots=True)
class Unit:
    ucum: str
    factor: float
    offset: float = 0.0
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Lab:
    key: str
    display: str
    kind: str
    code: dict[str, str]
    names: tuple[str, ...]
    unit: str
    requires_unit: bool
    units: tuple[Unit, ...]
    alt_codes: tuple[str, ...] = ()
    percent_predicted_codes: tuple[str, ...] = ()
    #: reference-relative bounds that apply: "ULN", "LLN" (multiples), "predicted" (% of)
    relative: tuple[str, ...] = ()
    #: (ucum, min, max): a number written without a unit, inside [min, max], is in ucum
    bare: tuple[tuple[str, float, float], ...] = ()
    #: for a scale of classes (NYHA, ASA): (number, coding) of each class
    classes: tuple[tuple[int, dict[str, str]], ...] = ()
    #: whether the name may follow its bound ("34 weeks of gestation")
    postfix: bool = False
    #: a concept written as two numbers "A/B" (blood pressure): the keys A and B bound
    pair: tuple[str, ...] = ()
    #: the values a score takes where they are not every whole number of its range (CDR)
    levels: tuple[float, ...] = ()
    #: letter classes of a score, each the (letter, min, max) of the scores it stands for
    grades: tuple[tuple[str, float, float], ...] = ()
    #: what a scale measures, shared by the scales that restate each other (ECOG, Karnofsky)
    construct: str | None = None

    def bare_unit(self, value: float) -> str | None:
        """The unit a number written without one is read in, or None (then it stays text)."""
        for ucum, lo, hi in self.bare:
            if lo <= value <= hi:
                return ucum
        return None

    def all_codes(self) -> set[str]:
        """Every LOINC code an Observation of this quantity may carry (not % predicted)."""
        return {self.code["code"], *self.alt_codes}

    def unit_for(self, ucum_or_alias: str | None) -> Unit | None:
        """The table unit an Observation's (UCUM code or written) unit stands for."""
        key = norm_unit(ucum_or_alias or "")
        for u in self.units:
            if key == norm_unit(u.ucum) or key in {norm_unit(a) for a in u.aliases}:
                return u
        return None

    def to_canonical(self, value: float, ucum_or_alias: str | None) -> float | None:
        """``value`` in this lab's canonical unit, or None when the unit is not in the table."""
        u = self.unit_for(ucum_or_alias)
        if u is None:
            return None
        return value * u.factor + u.offset


@dataclass(frozen=True, slots=True)
class Tables:
    labs: tuple[Lab, ...]
    conditions: tuple[dict[str, Any], ...]
    findings: dict[str, Any] = field(default_factory=dict)
    #: units read only on names no entry has (radiation doses, speeds)
    uncoded_units: tuple[Unit, ...] = ()
    #: (last words of a name, UCUM, min, max): what such a name's unitless number is in
    uncoded_heads: tuple[tuple[frozenset[str], str, float, float], ...] = ()
    #: states a bracketed bound may define: (words naming it, concept key → "low"/"high")
    states: tuple[tuple[tuple[str, ...], dict[str, str]], ...] = ()
    #: names of a group of concepts sharing one bound ("transaminases"), each with the list
    #: of its members' names it is read as ("ast/alt")
    groups: tuple[tuple[str, str], ...] = ()
    #: concept key → the function it is one measure of ("creatinine" → "renal function"):
    #: two measures of one function joined by "or" are alternatives, not two requirements
    measure_of: dict[str, str] = field(default_factory=dict)
    #: the pregnancy reader's words (the lexicon's ``state_words``: names of the states,
    #: filler, words that make a name another time's or kind of pregnancy)
    state_words: dict[str, Any] = field(default_factory=dict)
    #: the condition reader's words (the lexicon's ``condition_words``: filler beside a name,
    #: who, nothing, kinds, suspicion, what a name may qualify)
    condition_words: dict[str, Any] = field(default_factory=dict)

    def lab(self, key: str) -> Lab:
        for lab in self.labs:
            if lab.key == key:
                return lab
        raise KeyError(key)

    def condition(self, key: str) -> dict[str, Any]:
        for c in self.conditions:
            if c["key"] == key:
                return c
        raise KeyError(key)


#: days in each UCUM unit of time the reader writes ages, windows and durations in
DAYS = {"a": 365.25, "mo": 30.4375, "wk": 7.0, "d": 1.0, "h": 1 / 24}

_SUPERSCRIPTS = str.maketrans({"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5",
                               "⁶": "6", "⁷": "7", "⁸": "8", "⁹": "9", "μ": "µ", "×": "x"})


_LITRE = re.compile(r"(micro|milli|deci)?lit(?:er|re)s?(?![a-z])")
_LITRE_SYM = {"micro": "µl", "milli": "ml", "deci": "dl", None: "l"}


@lru_cache(maxsize=8192)
def norm_unit(text: str) -> str:
    """A unit as written, reduced to a comparison key (``× 10⁹/L`` → ``10^9/l``,
    ``/microliters`` → ``/µl``)."""
    s = text.translate(_SUPERSCRIPTS).lower().replace(" ", "").replace("**", "^")
    s = s.replace("10*", "10^")
    if s.startswith("x10"):
        s = s[1:]
    if "lit" in s:
        s = _LITRE.sub(lambda m: _LITRE_SYM[m.group(1)], s)
    return s


def _mapping_path() -> Path:
    # the same mappings/ directory every other table comes from (package or checkout)
    from ..tables import mappings_dir

    return mappings_dir() / _NAME


def _schema_path(table: Path) -> Path:
    return table.parent / "schema" / "eligibility-labs.schema.json"


@cache
def tables() -> Tables:
    """The loaded, schema-checked table (cached)."""
    return load(_mapping_path())


def load(path: Path) -> Tables:
    """Load and check one table file; a malformed table is a MappingError naming what is wrong."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        schema = json.loads(_schema_path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise MappingError(f"{path.name}: cannot load eligibility table: {e}") from None
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=str)
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path)
        raise MappingError(f"{path.name}: {errors[0].message} at /{where}")
    keys = [lab["key"] for lab in doc["labs"]]
    if len(keys) != len(set(keys)):
        raise MappingError(f"{path.name}: duplicate lab key")
    labs = tuple(
        Lab(key=lab["key"], display=lab["display"], kind=lab["kind"], code=lab["code"],
            names=tuple(lab["names"]), unit=lab["unit"], requires_unit=lab["requires_unit"],
            units=tuple(Unit(u["ucum"], u["factor"], u.get("offset", 0.0),
                             tuple(u.get("aliases", ()))) for u in lab["units"]),
            alt_codes=tuple(lab.get("alt_codes", ())),
            percent_predicted_codes=tuple(lab.get("percent_predicted_codes", ())),
            relative=tuple(lab.get("relative", ())),
            bare=tuple((b["ucum"], b["min"], b["max"]) for b in lab.get("bare", ())),
            classes=tuple((c["value"], {k: c[k] for k in ("system", "code", "display") if k in c})
                          for c in lab.get("classes", ())),
            postfix=lab.get("postfix", False), pair=tuple(lab.get("pair", ())),
            levels=tuple(lab.get("levels", ())),
            grades=tuple((g["letter"], g["min"], g["max"]) for g in lab.get("grades", ())),
            construct=lab.get("construct"))
        for lab in doc["labs"])
    uncoded = doc.get("uncoded", {"units": [], "heads": []})
    states = []
    for st in doc.get("states", {"entries": []})["entries"]:
        sides = {k: side for side in ("low", "high") for k in st.get(side, ())}
        unknown = sorted(set(sides) - set(keys))
        if unknown:
            raise MappingError(f"{path.name}: state {st['words'][0]!r} names no lab "
                               f"{unknown[0]!r}")
        states.append((tuple(st["words"]), sides))
    groups = []
    by_key = {lab.key: lab for lab in labs}
    for g in doc.get("groups", {"entries": []})["entries"]:
        unknown = sorted(set(g["labs"]) - set(by_key))
        if unknown:
            raise MappingError(f"{path.name}: group {g['names'][0]!r} names no lab "
                               f"{unknown[0]!r}")
        # each member by its shortest name, as a mention list ("ast/alt"): read in the group
        # name's place, so no longer than any of its names (the canonical text keeps every
        # position)
        listed = "/".join(min(by_key[k].names, key=len) for k in g["labs"])
        for name in g["names"]:
            if len(name) < len(listed):
                raise MappingError(f"{path.name}: group name {name!r} is shorter than "
                                   f"{listed!r}, which it is read as")
            groups.append((name, listed))
    measure_of: dict[str, str] = {}
    for m in doc.get("measures", {"entries": []})["entries"]:
        for k in m["labs"]:
            if k not in by_key:
                raise MappingError(f"{path.name}: measures of {m['function']!r} name no lab "
                                   f"{k!r}")
            if k in measure_of:
                raise MappingError(f"{path.name}: {k!r} is a measure of both "
                                   f"{measure_of[k]!r} and {m['function']!r}")
            measure_of[k] = m["function"]
    cw = doc.get("condition_words")
    if cw and not set(cw["shown_filler"]) <= set(cw["filler"]):
        odd = sorted(set(cw["shown_filler"]) - set(cw["filler"]))[0]
        raise MappingError(f"{path.name}: shown filler {odd!r} is no condition filler")
    state_words = doc.get("state_words", {"words": [], "filler": [], "other_before": [],
                                          "other_after": []})
    seen: set[str] = set()
    for w in state_words["words"]:
        if w["text"] in seen:
            raise MappingError(f"{path.name}: state word {w['text']!r} is listed twice")
        seen.add(w["text"])
    keys = {c["key"] for c in doc["conditions"]}
    for c in doc["conditions"]:
        for k in c.get("includes", ()):
            if k not in keys or k == c["key"]:
                what = "itself" if k == c["key"] else f"no condition {k!r}"
                raise MappingError(f"{path.name}: condition {c['key']!r} includes {what}")
    return Tables(labs, tuple(doc["conditions"]), doc["findings"],
                  states=tuple(states), groups=tuple(groups), measure_of=measure_of,
                  state_words=state_words,
                  condition_words=doc.get("condition_words", {k: [] for k in (
                      "filler", "shown_filler", "who", "nothing", "kinds", "suspicion",
                      "modifies", "not_the_condition")}),
                  uncoded_units=tuple(Unit(u["ucum"], 1.0, 0.0, tuple(u["aliases"]))
                                      for u in uncoded["units"]),
                  uncoded_heads=tuple((frozenset(h["words"]), h["ucum"], h["min"], h["max"])
                                      for h in uncoded["heads"]))
