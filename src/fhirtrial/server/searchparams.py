"""The search parameters the server implements, as data, and the index values they extract.

Each row is ``(name, type, expression)``. Expressions are the R5 (or R4) SearchParameter
FHIRPath expressions restricted to the subset this module evaluates: dotted paths, ``|`` unions
and ``where(field=code|code)`` filters on a CodeableConcept field's codes. Rows whose ``url`` is
not an HL7 one are fhirtrial's own parameters (declared as such in the CapabilityStatement).

Index values are extracted once, at write time, into the store's index tables; searches read
only those tables (see :mod:`fhirtrial.server.search`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..jsonbytes import finite_number

HL7_SP = "http://hl7.org/fhir/SearchParameter/"
OWN_SP = "urn:fhirtrial:SearchParameter:"


@dataclass(frozen=True, slots=True)
class SearchParam:
    name: str
    type: str  # token | string | date | reference | number | quantity | uri | special
    expression: str
    url: str
    targets: tuple[str, ...] = ()  # reference targets, for _include

    @property
    def modifiers(self) -> tuple[str, ...]:
        return MODIFIERS[self.type]


MODIFIERS: dict[str, tuple[str, ...]] = {
    "token": ("missing", "text", "text-advanced", "not"),
    "string": ("missing", "exact", "contains", "text"),
    "date": ("missing",),
    "reference": ("missing",),
    "number": ("missing",),
    "quantity": ("missing",),
    "uri": ("missing",),
    "special": (),
}
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def _p(rtype: str, name: str, ptype: str, expr: str, *, own: bool = False,
       targets: tuple[str, ...] = ()) -> SearchParam:
    url = f"{OWN_SP if own else HL7_SP}{rtype}-{name}"
    return SearchParam(name, ptype, expr, url, targets)


def _common(rtype: str, *, r4: bool = False) -> list[SearchParam]:
    """Parameters every definitional/canonical resource shares."""
    return [
        _p(rtype, "identifier", "token", f"{rtype}.identifier"),
        _p(rtype, "status", "token", f"{rtype}.status"),
        _p(rtype, "url", "uri", f"{rtype}.url"),
        _p(rtype, "name", "string", f"{rtype}.name"),
        _p(rtype, "title", "string", f"{rtype}.title"),
        _p(rtype, "version", "token", f"{rtype}.version"),
        _p(rtype, "date", "date", f"{rtype}.date"),
        _p(rtype, "description", "string", f"{rtype}.description"),
    ]


_SPONSOR_ROLES = "lead-sponsor|sponsor"

R5: dict[str, list[SearchParam]] = {
    "ResearchStudy": [
        _p("ResearchStudy", "identifier", "token", "ResearchStudy.identifier"),
        _p("ResearchStudy", "status", "token", "ResearchStudy.status"),
        _p("ResearchStudy", "progress-status-state", "token",
           "ResearchStudy.progressStatus.state"),
        _p("ResearchStudy", "phase", "token", "ResearchStudy.phase"),
        _p("ResearchStudy", "condition", "token", "ResearchStudy.condition"),
        _p("ResearchStudy", "keyword", "token", "ResearchStudy.keyword"),
        _p("ResearchStudy", "classifier", "token", "ResearchStudy.classifier"),
        _p("ResearchStudy", "study-design", "token", "ResearchStudy.studyDesign"),
        _p("ResearchStudy", "region", "token", "ResearchStudy.region"),
        _p("ResearchStudy", "focus", "token", "ResearchStudy.focus"),
        _p("ResearchStudy", "title", "string", "ResearchStudy.title"),
        _p("ResearchStudy", "name", "string", "ResearchStudy.name"),
        _p("ResearchStudy", "url", "uri", "ResearchStudy.url"),
        _p("ResearchStudy", "date", "date", "ResearchStudy.period"),
        _p("ResearchStudy", "site", "reference", "ResearchStudy.site",
           targets=("Location", "ResearchStudy", "Organization")),
        _p("ResearchStudy", "protocol", "reference", "ResearchStudy.protocol",
           targets=("PlanDefinition",)),
        _p("ResearchStudy", "part-of", "reference", "ResearchStudy.partOf",
           targets=("ResearchStudy",)),
        _p("ResearchStudy", "recruitment-target", "number",
           "ResearchStudy.recruitment.targetNumber"),
        _p("ResearchStudy", "recruitment-actual", "number",
           "ResearchStudy.recruitment.actualNumber"),
        # fhirtrial's own: what hospital integrators ask for and R5 does not define
        _p("ResearchStudy", "eligibility", "reference", "ResearchStudy.recruitment.eligibility",
           own=True, targets=("EvidenceVariable", "Group")),
        _p("ResearchStudy", "intended-exposure", "reference",
           "ResearchStudy.comparisonGroup.intendedExposure", own=True,
           targets=("PlanDefinition", "EvidenceVariable", "ActivityDefinition")),
        _p("ResearchStudy", "sponsor", "reference",
           f"ResearchStudy.associatedParty.where(role={_SPONSOR_ROLES}).party", own=True,
           targets=("Organization", "Practitioner", "PractitionerRole")),
        _p("ResearchStudy", "party", "reference", "ResearchStudy.associatedParty.party",
           own=True, targets=("Organization", "Practitioner", "PractitionerRole")),
        _p("ResearchStudy", "party-name", "string", "ResearchStudy.associatedParty.name",
           own=True),
    ],
    "PlanDefinition": [*_common("PlanDefinition"),
                       _p("PlanDefinition", "type", "token", "PlanDefinition.type"),
                       _p("PlanDefinition", "topic", "token", "PlanDefinition.topic")],
    "ActivityDefinition": [*_common("ActivityDefinition"),
                           _p("ActivityDefinition", "topic", "token",
                              "ActivityDefinition.topic")],
    "EvidenceVariable": [*_common("EvidenceVariable")],
    "Group": [
        _p("Group", "identifier", "token", "Group.identifier"),
        _p("Group", "type", "token", "Group.type"),
        _p("Group", "code", "token", "Group.code"),
        _p("Group", "name", "string", "Group.name"),
        _p("Group", "characteristic", "token", "Group.characteristic.code"),
        _p("Group", "value", "token", "Group.characteristic.valueCodeableConcept"),
        _p("Group", "exclude", "token", "Group.characteristic.exclude"),
    ],
    "Location": [
        _p("Location", "identifier", "token", "Location.identifier"),
        _p("Location", "name", "string", "Location.name | Location.alias"),
        _p("Location", "status", "token", "Location.status"),
        _p("Location", "type", "token", "Location.type"),
        _p("Location", "address", "string", "Location.address"),
        _p("Location", "address-city", "string", "Location.address.city"),
        _p("Location", "address-state", "string", "Location.address.state"),
        _p("Location", "address-country", "string", "Location.address.country"),
        _p("Location", "address-postalcode", "string", "Location.address.postalCode"),
        _p("Location", "organization", "reference", "Location.managingOrganization",
           targets=("Organization",)),
        _p("Location", "partof", "reference", "Location.partOf", targets=("Location",)),
        _p("Location", "near", "special", "Location.position"),
    ],
    "Organization": [
        _p("Organization", "identifier", "token", "Organization.identifier"),
        _p("Organization", "name", "string", "Organization.name | Organization.alias"),
        _p("Organization", "type", "token", "Organization.type"),
        _p("Organization", "active", "token", "Organization.active"),
        _p("Organization", "address", "string", "Organization.contact.address"),
        _p("Organization", "partof", "reference", "Organization.partOf",
           targets=("Organization",)),
    ],
    "Practitioner": [
        _p("Practitioner", "identifier", "token", "Practitioner.identifier"),
        _p("Practitioner", "name", "string", "Practitioner.name"),
        _p("Practitioner", "email", "token", "Practitioner.telecom.where(system=email)"),
    ],
    "Device": [
        _p("Device", "identifier", "token", "Device.identifier"),
        _p("Device", "type", "token", "Device.type"),
        _p("Device", "device-name", "string", "Device.name.value | Device.deviceName.name"),
    ],
    "Provenance": [
        _p("Provenance", "target", "reference", "Provenance.target",
           targets=("ResearchStudy", "PlanDefinition", "EvidenceVariable", "Location")),
        _p("Provenance", "recorded", "date", "Provenance.recorded"),
        _p("Provenance", "agent", "reference", "Provenance.agent.who",
           targets=("Organization", "Practitioner", "Device")),
    ],
    "PractitionerRole": [
        _p("PractitionerRole", "identifier", "token", "PractitionerRole.identifier"),
        _p("PractitionerRole", "role", "token", "PractitionerRole.code"),
        _p("PractitionerRole", "practitioner", "reference", "PractitionerRole.practitioner",
           targets=("Practitioner",)),
        _p("PractitionerRole", "organization", "reference", "PractitionerRole.organization",
           targets=("Organization",)),
    ],
    # patient data, so that a fhirtrial server can stand in for an EHR's FHIR server (the
    # CDS Hooks service reads Patient, Condition and Observation from its fhirServer)
    "Patient": [
        _p("Patient", "identifier", "token", "Patient.identifier"),
        _p("Patient", "name", "string", "Patient.name"),
        _p("Patient", "birthdate", "date", "Patient.birthDate"),
        _p("Patient", "gender", "token", "Patient.gender"),
    ],
    "Condition": [
        _p("Condition", "patient", "reference", "Condition.subject", targets=("Patient",)),
        _p("Condition", "subject", "reference", "Condition.subject", targets=("Patient",)),
        _p("Condition", "code", "token", "Condition.code"),
        _p("Condition", "clinical-status", "token", "Condition.clinicalStatus"),
    ],
    "Observation": [
        _p("Observation", "patient", "reference", "Observation.subject", targets=("Patient",)),
        _p("Observation", "subject", "reference", "Observation.subject", targets=("Patient",)),
        _p("Observation", "code", "token", "Observation.code"),
        _p("Observation", "date", "date", "Observation.effectiveDateTime | "
           "Observation.effectivePeriod | Observation.effectiveInstant"),
    ],
}

R4: dict[str, list[SearchParam]] = {
    **R5,
    "Organization": [p if p.name != "address" else
                     _p("Organization", "address", "string", "Organization.address")
                     for p in R5["Organization"]],
    "ResearchStudy": [
        _p("ResearchStudy", "identifier", "token", "ResearchStudy.identifier"),
        _p("ResearchStudy", "status", "token", "ResearchStudy.status"),
        _p("ResearchStudy", "category", "token", "ResearchStudy.category"),
        _p("ResearchStudy", "focus", "token", "ResearchStudy.focus"),
        _p("ResearchStudy", "keyword", "token", "ResearchStudy.keyword"),
        _p("ResearchStudy", "location", "token", "ResearchStudy.location"),
        _p("ResearchStudy", "phase", "token", "ResearchStudy.phase", own=True),
        _p("ResearchStudy", "condition", "token", "ResearchStudy.condition", own=True),
        _p("ResearchStudy", "title", "string", "ResearchStudy.title"),
        _p("ResearchStudy", "date", "date", "ResearchStudy.period"),
        _p("ResearchStudy", "site", "reference", "ResearchStudy.site", targets=("Location",)),
        _p("ResearchStudy", "protocol", "reference", "ResearchStudy.protocol",
           targets=("PlanDefinition",)),
        _p("ResearchStudy", "partof", "reference", "ResearchStudy.partOf",
           targets=("ResearchStudy",)),
        _p("ResearchStudy", "sponsor", "reference", "ResearchStudy.sponsor",
           targets=("Organization",)),
        _p("ResearchStudy", "principalinvestigator", "reference",
           "ResearchStudy.principalInvestigator", targets=("Practitioner", "PractitionerRole")),
        _p("ResearchStudy", "enrollment", "reference", "ResearchStudy.enrollment",
           own=True, targets=("Group",)),
    ],
    # the R4 writer's home for R5 resources R4 lacks (EvidenceVariables other than eligibility)
    "Basic": [
        _p("Basic", "identifier", "token", "Basic.identifier"),
        _p("Basic", "code", "token", "Basic.code"),
        _p("Basic", "subject", "reference", "Basic.subject", targets=("ResearchStudy",)),
        _p("Basic", "created", "date", "Basic.created"),
        _p("Basic", "author", "reference", "Basic.author",
           targets=("Organization", "Practitioner", "PractitionerRole")),
    ],
    "EvidenceVariable": [_p("EvidenceVariable", n, t, e) for n, t, e in (
        ("identifier", "token", "EvidenceVariable.identifier"),
        ("status", "token", "EvidenceVariable.status"),
        ("name", "string", "EvidenceVariable.name"),
        ("title", "string", "EvidenceVariable.title"),
        ("url", "uri", "EvidenceVariable.url"),
        ("date", "date", "EvidenceVariable.date"),
        ("description", "string", "EvidenceVariable.description"),
    )],
}

#: Search parameters that apply to every resource type (handled by the store directly).
COMMON = ("_id", "_lastUpdated")
#: Result parameters understood by the search engine.
RESULT_PARAMS = ("_count", "_offset", "_sort", "_include", "_revinclude", "_summary",
                 "_elements", "_total", "_format", "_pretty")

REGISTRY: dict[str, dict[str, dict[str, SearchParam]]] = {
    version: {rt: {p.name: p for p in params} for rt, params in table.items()}
    for version, table in (("R5", R5), ("R4", R4))
}


def params_for(fhir_version: str, resource_type: str) -> dict[str, SearchParam]:
    """The search parameters of one resource type in one FHIR version."""
    return REGISTRY[fhir_version].get(resource_type, {})


def resource_types(fhir_version: str) -> list[str]:
    return sorted(REGISTRY[fhir_version])


# ---------------------------------------------------------------- expression evaluation

_WHERE = re.compile(r"^where\((\w+)=([\w|.-]+)\)$")


def _split_path(expr: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    cur = ""
    for ch in expr:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "." and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _has_code(value: Any, codes: frozenset[str] | set[str]) -> bool:
    if isinstance(value, str):
        return value in codes
    if isinstance(value, dict):
        codings = value.get("coding")
        return isinstance(codings, list) and any(
            isinstance(c, dict) and isinstance(c.get("code"), str) and c["code"] in codes
            for c in codings)
    return False


# The where() filters contain '|': a union must not be split inside parentheses.
def _split_union(expression: str) -> list[str]:
    alts, depth, cur = [], 0, ""
    for ch in expression:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "|" and depth == 0:
            alts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    alts.append(cur.strip())
    return alts


#: a compiled path step: a field name, or a where(field=codes) filter
_Step = str | tuple[str, frozenset[str]]


@functools.lru_cache(maxsize=1024)
def _compiled(expression: str) -> tuple[tuple[_Step, ...], ...]:
    """The union's alternatives as step tuples, parsed once per expression (indexing a
    resource evaluates a dozen expressions; parsing them each time cost more than the walk)."""
    alts = []
    for alt in _split_union(expression):
        steps: list[_Step] = []
        for step in _split_path(alt)[1:]:  # drop the resource type
            m = _WHERE.match(step)
            steps.append((m.group(1), frozenset(m.group(2).split("|"))) if m else step)
        alts.append(tuple(steps))
    return tuple(alts)


def evaluate_expr(resource: dict[str, Any], expression: str) -> list[Any]:
    """Evaluate ``a | b`` unions of dotted paths with ``where(field=code|code)`` filters."""
    return _evaluate(resource, _compiled(expression))


def _evaluate(resource: dict[str, Any], alternatives: tuple[tuple[_Step, ...], ...]
              ) -> list[Any]:
    out: list[Any] = []
    for steps in alternatives:
        nodes: list[Any] = [resource]
        for step in steps:
            if isinstance(step, tuple):
                field, codes = step
                nodes = [n for n in nodes if isinstance(n, dict)
                         and _has_code(n.get(field), codes)]
                continue
            nxt: list[Any] = []
            for n in nodes:
                if isinstance(n, dict) and step in n:
                    v = n[step]
                    if isinstance(v, list):
                        nxt.extend(v)
                    else:
                        nxt.append(v)
            nodes = nxt
        out.extend(nodes)
    return out


# ---------------------------------------------------------------- normalisation

def norm_text(value: str) -> str:
    """Case- and accent-insensitive form used for string and :text matching."""
    if value.isascii():  # nothing to decompose or strip (most registry text)
        return re.sub(r"\s+", " ", value.casefold()).strip()
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", stripped.casefold()).strip()


_DATE_RE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?$", re.ASCII)  # ASCII: int() would read "²" or "٢" as digits


def date_range(value: str) -> tuple[str, str] | None:
    """A FHIR date/dateTime/instant (any precision) → its [low, high] instant range in UTC,
    as sortable ``YYYY-MM-DDTHH:MM:SS.ffffff`` strings; None when it is not a date.

    Ranges are clamped to [0001-01-01, 9999-12-31T23:59:59.999999]: year 9999 and
    ``0001-01-01T00:00:00+14:00`` are valid FHIR whose UTC range leaves Python's calendar."""
    m = _DATE_RE.match(value.strip())
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    try:
        if mo is None:
            lo = datetime(int(y), 1, 1)
            step: Any = ("year", 1)
        elif d is None:
            lo = datetime(int(y), int(mo), 1)
            step = ("month", 1)
        elif hh is None:
            lo = datetime(int(y), int(mo), int(d))
            step = timedelta(days=1)
        else:
            lo = datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss or 0),
                          int(frac[1:7].ljust(6, "0")) if frac else 0)
            step = (timedelta(minutes=1) if ss is None else
                    timedelta(seconds=1) if frac is None else timedelta(microseconds=1))
    except ValueError:
        return None
    off = timedelta(0)
    if tz and tz != "Z":
        hours, minutes = int(tz[1:3]), int(tz[4:6])
        if minutes > 59 or hours * 60 + minutes > 14 * 60:  # FHIR: -14:00 … +14:00
            return None
        off = timedelta(hours=hours, minutes=minutes) * (1 if tz[0] == "+" else -1)
    # the range's last instant in local time (never past the calendar's end), then in UTC,
    # clamped where the zone's offset takes it past year 1 or year 9999
    if isinstance(step, tuple):
        nxt = lo.year + 1 if step[0] == "year" or lo.month == 12 else lo.year
        month = 1 if step[0] == "year" or lo.month == 12 else lo.month + 1
        last = (datetime(nxt, month, 1) - _TICK if nxt <= 9999
                else datetime(9999, 12, 31, 23, 59, 59, 999_999))
    else:
        last = lo + (step - _TICK)
    clamp = DATE_MIN if off > timedelta(0) else DATE_MAX
    low, high = _add(lo, -off), _add(last, -off)
    return (_fmt(low) if low else clamp), (_fmt(high) if high else clamp)


_TICK = timedelta(microseconds=1)


def _add(dt: datetime | None, delta: timedelta) -> datetime | None:
    """dt + delta, None when that leaves the calendar (years 1…9999)."""
    if dt is None:
        return None
    try:
        return dt + delta
    except OverflowError:
        return None


def _fmt(dt: datetime) -> str:
    # not strftime: its %Y writes year 1 as "1", which sorts after "2020"
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
            f"{dt.second:02d}.{dt.microsecond:06d}")


DATE_MIN = "0001-01-01T00:00:00.000000"
DATE_MAX = "9999-12-31T23:59:59.999999"


def utc_now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- index extraction

@dataclass(slots=True)
class IndexRows:
    """Everything the store writes into its index tables for one resource version."""

    token: list[tuple[str, str | None, str | None, str | None]]  # param, system, code, text
    string: list[tuple[str, str, str]]  # param, normalised, exact
    date: list[tuple[str, str, str]]  # param, low, high
    reference: list[tuple[str, str | None, str | None, str]]  # param, type, id, raw
    number: list[tuple[str, float, str | None, str | None]]  # param, value, system, code
    geo: list[tuple[float, float]]  # latitude, longitude


@functools.lru_cache(maxsize=256)
def _plan(fhir_version: str, resource_type: str
          ) -> tuple[tuple[SearchParam, tuple[tuple[_Step, ...], ...]], ...]:
    """Each search parameter of a type with its compiled expression, looked up once per type
    rather than once per parameter of every resource written."""
    return tuple((sp, _compiled(sp.expression))
                 for sp in params_for(fhir_version, resource_type).values())


def extract(fhir_version: str, resource: dict[str, Any], *,
            word_rows: bool = True) -> IndexRows:
    """Compute the index rows of every search parameter of the resource's type.
    ``word_rows``: with each token text's word-suffix rows (:func:`word_suffixes`), which the
    PostgreSQL store's ``:text`` reads; the SQLite store matches words with its full-text
    index instead (``idx_text``) and asks for none."""
    rows = IndexRows([], [], [], [], [], [])
    for sp, alternatives in _plan(fhir_version, resource["resourceType"]):
        for value in _evaluate(resource, alternatives):
            _index_value(rows, sp, value, word_rows)
    return rows


#: the values indexing meets again and again (codes' displays, a study's design terms, dates,
#: the transaction's lastUpdated) are normalised once: short strings only, so that the caches
#: stay small whatever a resource holds
_CACHED_LEN = 256


@functools.lru_cache(maxsize=16384)
def _norm_cached(value: str) -> str:
    return norm_text(value)


def _norm(value: str) -> str:
    if type(value) is str and len(value) <= _CACHED_LEN:
        return _norm_cached(value)
    return norm_text(value)  # long, or not a string (failing as it always has)


@functools.lru_cache(maxsize=16384)
def _suffixes_cached(text: str) -> tuple[str, ...]:
    return tuple(word_suffixes(text))


def _suffixes(text: str) -> tuple[str, ...] | list[str]:
    return _suffixes_cached(text) if len(text) <= _CACHED_LEN else word_suffixes(text)


@functools.lru_cache(maxsize=4096)
def _date_cached(value: str) -> tuple[str, str] | None:
    return date_range(value)


def index_date(value: str) -> tuple[str, str] | None:
    """:func:`date_range` for indexing (remembered for short values)."""
    return _date_cached(value) if len(value) <= _CACHED_LEN else date_range(value)


_WORD_START = re.compile(r"(?<![^\W_])[^\W_]")
#: a token text longer than this gets no word rows: it is indexed whole, and ``:text`` finds a
#: phrase at its start only. Its word rows would hold (words × length) characters — a 1 MB
#: text of 200,000 words, 100 GB: one request could take a server's memory. Codes' displays
#: and concept texts are far shorter.
WORD_ROWS_MAX_TEXT = 1024


def word_suffixes(text: str) -> list[str]:
    """The normalised text from each of its words on, but the first ("idiopathic pulmonary
    fibrosis" → "pulmonary fibrosis", "fibrosis"): the rows that let ``:text`` find a phrase
    that starts at any word of the text, with the same index range scan as a prefix. None
    (an empty list) for a text longer than :data:`WORD_ROWS_MAX_TEXT`."""
    if len(text) > WORD_ROWS_MAX_TEXT:
        return []
    return [text[m.start():] for m in _WORD_START.finditer(text) if m.start() > 0]


# ---------------------------------------------------------------- the full-text index (SQLite)

#: a word of a normalised text, for the SQLite store's full-text index: a run of letters and
#: digits (as a word start of :data:`_WORD_START`; ``_`` is not part of a word)
_WORD = re.compile(r"[^\W_]+")
#: what separates two texts of one resource in its full-text document: a token no query
#: asks for (every query word carries a parameter's tag), so no phrase spans two texts
TEXT_BREAK = "_"


@functools.lru_cache(maxsize=1024)
def text_tag(sp_key: str) -> str:
    """The prefix each word of a parameter's texts carries in the full-text index
    (``ResearchStudy.condition`` → ``condition_``): a phrase of one parameter never matches
    another's words, and a short prefix (``condition:text=d``) reads the parameter's own
    terms only. Words hold no ``_``, so the tag's last ``_`` ends it."""
    return re.sub(r"[^0-9a-z]", "_", sp_key.rpartition(".")[2].lower()) + "_"


def text_document(rows: Iterator[tuple[str, str]] | list[tuple[str, str]]) -> str:
    """One resource's full-text document: the words of each of its token texts (``(sp key,
    normalised text)`` pairs), each tagged with its parameter (:func:`text_tag`), the texts
    apart by :data:`TEXT_BREAK`. A text's words past :data:`WORD_ROWS_MAX_TEXT` characters
    are not indexed (as its word rows were not: a 1 MB text stays one request's worth)."""
    parts = []
    for sp_key, text in rows:
        words = _text_words(text)
        if words:
            tag = text_tag(sp_key)
            parts.append(tag + (" " + tag).join(words))
    return f" {TEXT_BREAK} ".join(parts)


@functools.lru_cache(maxsize=1024)
def _phrase(value: str) -> tuple[tuple[str, ...], bool] | None:
    """A ``:text`` value (normalised) → its words and whether the last is a prefix (unless
    the value ends in punctuation); None without a letter or digit."""
    words = tuple(_WORD.findall(value))
    return (words, bool(_WORD.match(value[-1]))) if words else None


def text_query(sp_key: str, value: str) -> str | None:
    """A ``:text`` value (normalised) → the FTS5 query for the texts with a phrase starting at
    one of their words: the value's words tagged with the parameter, as one phrase, the last a
    prefix (``"condition_pulmonary condition_fib" *``) unless the value ends in punctuation.
    Punctuation between words is not compared ("non-small" finds "non small" too). None for a
    value without a letter or digit: it has no word to look up."""
    phrase = _phrase(value)
    if phrase is None:
        return None
    words, prefix = phrase
    tag = text_tag(sp_key)
    query = '"' + tag + (" " + tag).join(words) + '"'
    return query + " *" if prefix else query


def first_word(value: str) -> str:
    """The first word of a ``:text`` value that has one: every text with its phrase holds it
    (the SQLite probe tests that in C before calling :func:`has_phrase`)."""
    phrase = _phrase(value)
    return phrase[0][0] if phrase else value


@functools.lru_cache(maxsize=16384)
def _text_words_cached(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text[:WORD_ROWS_MAX_TEXT]))


def _text_words(text: str) -> tuple[str, ...]:
    """The words of a normalised text that the full-text index holds (remembered for short
    texts: a registry's conditions and keywords repeat across studies)."""
    if len(text) <= _CACHED_LEN:
        return _text_words_cached(text)
    return tuple(_WORD.findall(text[:WORD_ROWS_MAX_TEXT]))


def has_phrase(text: str | None, value: str | None) -> bool:
    """Whether ``text`` (normalised) has the phrase of the ``:text`` value ``value`` starting
    at one of its words: :func:`text_query`'s answer for one text, in Python — the SQLite
    store's probe of one row (a full-text query per row would read a prefix's every match
    each time)."""
    phrase = _phrase(value) if value else None
    if phrase is None or not text:
        return False
    q, prefix = phrase
    words = _text_words(text)
    k, last = len(q) - 1, q[-1]
    for i in range(len(words) - k):
        if words[i:i + k] == q[:k] and (words[i + k].startswith(last) if prefix
                                         else words[i + k] == last):
            return True
    return False


def _index_value(rows: IndexRows, sp: SearchParam, v: Any, word_rows: bool = True) -> None:
    name = sp.name
    if sp.type in ("token", "uri"):
        for s, c, t in _tokens(v):
            rows.token.append((name, s, c, t))
            if t and word_rows and sp.type == "token":
                # no system, no code: only :text / :text-advanced ever read these rows
                rows.token.extend((name, None, None, w) for w in _suffixes(t))
    elif sp.type == "string":
        for s in _strings(v):
            rows.string.append((name, _norm(s), s))
    elif sp.type == "date":
        rng = _date_value(v)
        if rng:
            rows.date.append((name, *rng))
    elif sp.type == "reference":
        ref = v.get("reference") if isinstance(v, dict) else None
        if isinstance(v, dict) and isinstance(v.get("reference"), dict):  # CodeableReference
            ref = v["reference"].get("reference")
        if isinstance(ref, str) and ref:
            rtype, rid = split_reference(ref)
            rows.reference.append((name, rtype, rid, ref))
    elif sp.type in ("number", "quantity"):
        if isinstance(v, bool):
            return
        if (n := finite_number(v)) is not None:
            rows.number.append((name, n, None, None))
        elif isinstance(v, dict) and (n := finite_number(v.get("value"))) is not None:
            rows.number.append((name, n, v.get("system"), v.get("code")))
    elif sp.type == "special" and isinstance(v, dict):
        # only a point on the globe is indexed: one off it (latitude beyond ±90, longitude
        # beyond ±180) is near nothing, and the strip index's integer cast would overflow on it
        lat, lon = finite_number(v.get("latitude")), finite_number(v.get("longitude"))
        if lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180:
            rows.geo.append((lat, lon))




def _str(v: Any) -> str | None:
    """A token's system or code as indexed: a string, or nothing (a list, an object, a
    number out of SQLite's range cannot be a code and cannot be stored as one)."""
    return v if isinstance(v, str) else None


def _tokens(v: Any) -> Iterator[tuple[str | None, str | None, str | None]]:
    if isinstance(v, bool):
        yield None, "true" if v else "false", None
    elif isinstance(v, str):
        yield None, v, None
    elif isinstance(v, dict):
        if "concept" in v or ("reference" in v and "coding" not in v):  # CodeableReference
            if isinstance(v.get("concept"), dict):
                yield from _tokens(v["concept"])
            return
        if "coding" in v or ("text" in v and "value" not in v):  # CodeableConcept
            codings = v.get("coding")
            # (what is not a Coding — a string, a number — in a write the server was not
            # asked to validate is no token: indexing it was a 500)
            for c in codings if isinstance(codings, list) else ():
                if isinstance(c, dict):
                    disp = c.get("display")
                    yield _str(c.get("system")), _str(c.get("code")), \
                        _norm(disp) if isinstance(disp, str) and disp else None
            if isinstance(v.get("text"), str):
                yield None, None, _norm(v["text"])
        elif "value" in v and isinstance(v["value"], str):  # Identifier / ContactPoint
            ttext = (v.get("type") or {}).get("text") if isinstance(v.get("type"), dict) else None
            yield _str(v.get("system")), v["value"], \
                _norm(ttext) if isinstance(ttext, str) and ttext else None
        elif "code" in v:  # Coding
            disp = v.get("display")
            yield _str(v.get("system")), _str(v.get("code")), \
                _norm(disp) if isinstance(disp, str) and disp else None


def _strings(v: Any) -> Iterator[str]:
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):  # HumanName, Address: every string part
        for key, part in v.items():
            if key in ("use", "type", "period", "extension", "id"):
                continue
            if isinstance(part, str):
                yield part
            elif isinstance(part, list):
                yield from (p for p in part if isinstance(p, str))


def _date_value(v: Any) -> tuple[str, str] | None:
    if isinstance(v, str):
        return index_date(v)
    if isinstance(v, dict) and ("start" in v or "end" in v):  # Period; open ends are unbounded
        lo = index_date(v["start"]) if isinstance(v.get("start"), str) else None
        hi = index_date(v["end"]) if isinstance(v.get("end"), str) else None
        return (lo[0] if lo else DATE_MIN, hi[1] if hi else DATE_MAX)
    return None


def split_reference(ref: str) -> tuple[str | None, str | None]:
    """``Type/id``, ``http://base/Type/id`` or ``Type/id/_history/n`` → (Type, id)."""
    if ref.startswith("#") or ref.startswith("urn:"):
        return None, None
    parts = ref.split("?")[0].rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return parts[-2], parts[-1]
    return None, None
