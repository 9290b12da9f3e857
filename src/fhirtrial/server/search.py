"""Search requests → a backend-neutral query: :class:`Criterion` list, sort keys, paging,
includes and result shaping. Knows FHIR search syntax, knows no SQL."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import FhirtrialError
from . import searchparams as spm
from .searchparams import SearchParam


class SearchError(FhirtrialError):
    """A search parameter or value the server cannot process."""

    issue_code = "invalid"
    http_status = 400


@dataclass(frozen=True, slots=True)
class Criterion:
    """One ``name[:modifier]=v1,v2`` parameter: values are OR-ed, criteria AND-ed."""

    name: str  # parameter name, or _id / _lastUpdated
    type: str
    modifier: str | None
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class SortKey:
    name: str
    type: str
    descending: bool


@dataclass(frozen=True, slots=True)
class Include:
    source: str
    param: str
    target: str | None
    reverse: bool


@dataclass(slots=True)
class SearchQuery:
    criteria: list[Criterion] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count: int = 20
    offset: int = 0
    includes: list[Include] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] = field(default_factory=list)
    total: str = "accurate"
    ignored: list[str] = field(default_factory=list)
    used: list[tuple[str, str]] = field(default_factory=list)  # for the self link
    #: hints about values that parse but probably do not mean what was meant (a recruitment
    #: state given to R5 ``status``, a phase code that does not exist): OperationOutcome
    #: warnings in the searchset, the search itself unchanged
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (parameter, message)


MAX_COUNT = 1000
DEFAULT_COUNT = 20
#: deeper than any store holds; keeps offset + count inside SQLite's 64-bit integers
MAX_OFFSET = 10**12
#: Limits on one search, documented in the README ("Search limits"): beyond them a search is
#: refused with a 400 naming the limit, instead of reaching SQLite's own limits (500 terms in
#: a compound SELECT, expression trees 1000 deep, bound parameters) as a 500.
MAX_VALUES_PER_PARAM = 100  # OR-ed values of one parameter (identifier=a,b,c…)
MAX_CRITERIA = 50  # parameters AND-ed in one search (repeated ones included)
MAX_VALUES = 500  # OR-ed values over the whole search
MAX_SORT_KEYS = 10
MAX_INCLUDES = 20  # _include + _revinclude
_ASCII_INT = re.compile(r"[0-9]+", re.ASCII)
_PREFIX = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)(?=[-+\d.])")
_UNITS_KM = {"km": 1.0, "m": 0.001, "mi": 1.609344, "[mi_i]": 1.609344, "": 1.0}
_IGNORED_ALWAYS = {"_format", "_pretty"}
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)


def parse(fhir_version: str, rtype: str, items: list[tuple[str, str]], *,
          strict: bool) -> SearchQuery:
    """Parse a search's (name, value) pairs. Unknown parameters raise when ``strict``
    (``Prefer: handling=strict``), else are listed in ``ignored``."""
    q = SearchQuery()
    params = spm.params_for(fhir_version, rtype)
    for raw_name, value in items:
        name, _, modifier = raw_name.partition(":")
        if raw_name in _IGNORED_ALWAYS:
            continue
        if name in ("_count", "_offset"):
            n = _int(raw_name, value)
            if name == "_count":
                q.count = n
            else:
                q.offset = n
        elif name == "_sort":
            keys = [s for s in value.split(",") if s]
            if len(keys) > MAX_SORT_KEYS:
                raise SearchError(f"_sort: {len(keys)} keys; at most {MAX_SORT_KEYS}",
                                  location="_sort")
            q.sort = [_sort_key(params, s) for s in keys]
        elif name in ("_include", "_revinclude"):
            q.includes.append(_include(fhir_version, rtype, value, name == "_revinclude"))
        elif name == "_summary":
            if value not in ("true", "false", "text", "data", "count"):
                raise SearchError(f"_summary={value!r}: expected true, false, text, data "
                                  "or count", location="_summary")
            q.summary = value
        elif name == "_elements":
            q.elements = [e.strip() for e in value.split(",") if e.strip()]
        elif name == "_total":
            if value not in ("none", "estimate", "accurate"):
                raise SearchError(f"_total={value!r}: expected none, estimate or accurate",
                                  location="_total")
            q.total = value
        elif name == "_id" and modifier == "missing":  # true or false, as for any parameter
            q.criteria.append(_criterion(SearchParam("_id", "id", "", ""), "missing", value))
        elif name == "_id":
            q.criteria.append(Criterion("_id", "id", _mod(raw_name, modifier, ("missing",)),
                                        tuple(v for v in _split(value))))
        elif name == "_lastUpdated":
            q.criteria.append(_criterion(SearchParam("_lastUpdated", "date", "", ""),
                                         modifier or None, value))
        elif name in params:
            q.criteria.extend(_criteria(params[name], modifier or None, value))
            q.warnings.extend(_hints(fhir_version, rtype, raw_name, modifier, value))
        else:
            if strict:
                raise SearchError(f"Unknown search parameter {raw_name!r} for {rtype}",
                                  location=raw_name)
            q.ignored.append(raw_name)
            continue
        q.used.append((raw_name, value))
    if q.summary == "count":
        q.count = 0
    _check_limits(q)
    return q


def _check_limits(q: SearchQuery) -> None:
    if len(q.criteria) > MAX_CRITERIA:
        raise SearchError(f"{len(q.criteria)} search parameters: at most {MAX_CRITERIA} in one "
                          "search", location="query")
    for cr in q.criteria:
        if len(cr.values) > MAX_VALUES_PER_PARAM:
            raise SearchError(f"{cr.name}: {len(cr.values)} values; at most "
                              f"{MAX_VALUES_PER_PARAM} OR-ed values per parameter",
                              location=cr.name)
    total = sum(len(cr.values) for cr in q.criteria)
    if total > MAX_VALUES:
        raise SearchError(f"{total} search values in all: at most {MAX_VALUES} in one search",
                          location="query")
    if len(q.sort) > MAX_SORT_KEYS:
        raise SearchError(f"_sort: {len(q.sort)} keys; at most {MAX_SORT_KEYS}",
                          location="_sort")
    if len(q.includes) > MAX_INCLUDES:
        raise SearchError(f"{len(q.includes)} _include/_revinclude: at most {MAX_INCLUDES}",
                          location="_include")


def parse_count(name: str, value: str, limit: int, *, clamp: bool) -> int:
    """A non-negative integer parameter written in ASCII digits (``int()`` and
    ``str.isdigit()`` also take "²" or "٣"). Above ``limit`` it is clamped to it
    (``_count``) or refused (``_offset``); neither ever reaches SQL or ``int()`` of 5000
    digits."""
    if not _ASCII_INT.fullmatch(value):
        raise SearchError(f"{name}={value!r}: expected a non-negative integer (digits 0-9)",
                          location=name)
    digits = value.lstrip("0") or "0"
    if len(digits) > len(str(limit)) or int(digits) > limit:
        if clamp:
            return limit
        raise SearchError(f"{name}={value[:30]!r}: at most {limit}", location=name)
    return int(digits)


def _int(name: str, value: str) -> int:
    if name.partition(":")[0] == "_count":
        return parse_count(name, value, MAX_COUNT, clamp=True)
    return parse_count(name, value, MAX_OFFSET, clamp=False)


def _mod(raw: str, modifier: str, allowed: tuple[str, ...]) -> str | None:
    if modifier and modifier not in allowed:
        raise SearchError(f"Modifier :{modifier} is not supported on {raw.split(':')[0]}",
                          location=raw)
    return modifier or None


def _split(value: str) -> list[str]:
    """Split on commas not escaped with a backslash; unescape ``\\,`` ``\\|`` ``\\$`` ``\\\\``."""
    parts, cur, esc = [], "", False
    for ch in value:
        if esc:
            cur += ch
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _criteria(sp: SearchParam, modifier: str | None, value: str) -> list[Criterion]:
    """One parameter → its criteria. Word matching (token ``:text-advanced``, string ``:text``)
    with one value of several words is one criterion per word, all of which must hold; each of
    several comma-separated values is matched as a phrase."""
    if (sp.type, modifier) in (("token", "text-advanced"), ("string", "text")):
        loc = f"{sp.name}:{modifier}"
        values = _split(value)
        if not values or any(not spm.norm_text(v) for v in values):
            raise SearchError(f"{loc}: empty value", location=loc)
        if len(values) == 1:
            return [Criterion(sp.name, sp.type, "text", (w,))
                    for w in spm.norm_text(values[0]).split(" ")]
        return [Criterion(sp.name, sp.type, "text", tuple(spm.norm_text(v) for v in values))]
    return [_criterion(sp, modifier, value)]


#: R5 ResearchStudy.status is the record's publication status; these are recruitment states
_RECRUITMENT_STATES = ("active-but-not-recruiting", "administratively-completed", "approved",
                       "closed-to-accrual", "closed-to-accrual-and-intervention", "completed",
                       "disapproved", "enrolling-by-invitation", "in-review", "not-yet-recruiting",
                       "recruiting", "temporarily-closed-to-accrual",
                       "temporarily-closed-to-accrual-and-intervention", "terminated",
                       "withdrawn", "overall-study")
_PUBLICATION_STATUS = ("draft", "active", "retired", "unknown")
_PHASE_SYSTEMS = ("http://hl7.org/fhir/research-study-phase",
                  "http://terminology.hl7.org/CodeSystem/research-study-phase")
PHASE_CODES = ("n-a", "early-phase-1", "phase-1", "phase-1-phase-2", "phase-2",
               "phase-2-phase-3", "phase-3", "phase-4")


def _hints(fv: str, rtype: str, raw_name: str, modifier: str, value: str
           ) -> list[tuple[str, str]]:
    """Warnings for ResearchStudy searches that are valid FHIR but almost surely a mistake."""
    if rtype != "ResearchStudy" or modifier not in ("", "not"):
        return []
    name = raw_name.partition(":")[0]
    codes = [(_token(v)[0], _token(v)[1]) for v in _split(value)]
    out = []
    if name == "status" and fv == "R5":
        states = [c for sys_, c in codes if c in _RECRUITMENT_STATES and sys_ in (
            None, "http://hl7.org/fhir/research-study-status")]
        if states:
            out.append((raw_name, f"{raw_name}={value}: on an R5 ResearchStudy, status is the "
                        f"record's publication status ({', '.join(_PUBLICATION_STATUS)}); "
                        f"{', '.join(states)} is a recruitment state: search "
                        f"progress-status-state={','.join(states)}"))
    if name == "phase":
        unknown = [c for sys_, c in codes if c and c not in PHASE_CODES
                   and sys_ in (None, "", *_PHASE_SYSTEMS)]
        if unknown:
            out.append((raw_name, f"{raw_name}={value}: {', '.join(unknown)} is not a "
                        f"research-study-phase code; the codes are {', '.join(PHASE_CODES)}"))
    return out


def _criterion(sp: SearchParam, modifier: str | None, value: str) -> Criterion:
    loc = f"{sp.name}:{modifier}" if modifier else sp.name
    if modifier == "missing":
        if value not in ("true", "false"):
            raise SearchError(f"{loc}={value!r}: expected true or false", location=loc)
        return Criterion(sp.name, sp.type, "missing", (value == "true",))
    if sp.type == "reference" and modifier and modifier[:1].isupper():
        # ResearchStudy?site:Location=123 is site=Location/123
        return Criterion(sp.name, sp.type, None,
                         tuple(_reference(f"{modifier}/{v}", loc) for v in _split(value)))
    if modifier and modifier not in sp.modifiers:
        raise SearchError(f"Modifier :{modifier} is not supported on {sp.type} parameter "
                          f"{sp.name}", location=loc)
    values = [v for v in _split(value)]
    if not values or any(v == "" for v in values):
        raise SearchError(f"{loc}: empty value", location=loc)
    if sp.type in ("token", "uri"):
        if modifier == "text":
            parsed: tuple[Any, ...] = tuple(spm.norm_text(v) for v in values)
        else:
            parsed = tuple(_token(v) if sp.type == "token" else (None, v, False) for v in values)
    elif sp.type == "string":
        parsed = tuple(v if modifier == "exact" else spm.norm_text(v) for v in values)
    elif sp.type == "date":
        parsed = tuple(_date(v, loc) for v in values)
    elif sp.type in ("number", "quantity"):
        parsed = tuple(_number(v, loc) for v in values)
    elif sp.type == "reference":
        parsed = tuple(_reference(v, loc) for v in values)
    elif sp.type == "special":
        parsed = tuple(_near(v, loc) for v in values)
    else:  # pragma: no cover - the table only uses the types above
        raise SearchError(f"{sp.type} parameters are not supported", location=loc)
    return Criterion(sp.name, sp.type, modifier, parsed)


def _token(v: str) -> tuple[str | None, str | None, bool]:
    """→ (system, code, system_given); ``|code`` means "no system"."""
    if "|" in v:
        system, _, code = v.partition("|")
        return system, code or None, True
    return None, v, False


def _date(v: str, loc: str) -> tuple[str, str, str]:
    m = _PREFIX.match(v)
    prefix = m.group(1) if m else "eq"
    rng = spm.date_range(v[2:] if m else v)
    if rng is None:
        raise SearchError(f"{loc}={v!r}: not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or a "
                          "dateTime)", location=loc)
    return prefix, *rng


def _number(v: str, loc: str) -> tuple[str, float, float, float]:
    m = _PREFIX.match(v)
    prefix = m.group(1) if m else "eq"
    text = (v[2:] if m else v).split("|")[0]
    if not _NUMBER.fullmatch(text):  # float() also reads "٣", "1_0", " 1 ", "nan", "inf"
        raise SearchError(f"{loc}={v!r}: not a number", location=loc)
    try:
        value = float(text)
    except ValueError:
        raise SearchError(f"{loc}={v!r}: not a number", location=loc) from None
    if not math_finite(value):
        raise SearchError(f"{loc}={v!r}: not a finite number", location=loc)
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text.lower() else 0
    half = 0.5 * 10 ** -decimals  # implicit precision: 100 means [99.5, 100.5)
    return prefix, value, value - half, value + half


def math_finite(x: float) -> bool:
    return x == x and x not in (float("inf"), float("-inf"))


def _reference(v: str, loc: str) -> tuple[str | None, str]:
    if v.startswith(("http://", "https://")):
        rtype, rid = spm.split_reference(v)
        if rid is None:
            raise SearchError(f"{loc}={v!r}: not a resource reference", location=loc)
        return rtype, rid
    if "/" in v:
        rtype, _, rid = v.partition("/")
        if not rtype[:1].isupper() or not rid:
            raise SearchError(f"{loc}={v!r}: expected Type/id or id", location=loc)
        return rtype, rid
    return None, v


def _near(v: str, loc: str) -> tuple[float, float, float]:
    parts = v.split("|")
    try:
        if not all(_NUMBER.fullmatch(p) for p in parts[:2]) or (
                len(parts) > 2 and parts[2] and not _NUMBER.fullmatch(parts[2])):
            raise ValueError(v)
        lat, lon = float(parts[0]), float(parts[1])
        dist = float(parts[2]) if len(parts) > 2 and parts[2] else 50.0
        if not math_finite(dist * 1.7):
            raise ValueError(v)
    except (ValueError, IndexError):
        raise SearchError(f"{loc}={v!r}: expected latitude|longitude|distance|unit",
                          location=loc) from None
    unit = parts[3] if len(parts) > 3 else "km"
    if unit not in _UNITS_KM:
        raise SearchError(f"{loc}: unit {unit!r} not supported (km, m, mi, [mi_i])", location=loc)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or dist < 0:
        raise SearchError(f"{loc}={v!r}: coordinates or distance out of range", location=loc)
    return lat, lon, dist * _UNITS_KM[unit]


def _sort_key(params: dict[str, SearchParam], s: str) -> SortKey:
    desc = s.startswith("-")
    name = s.lstrip("-")
    if name in ("_id", "_lastUpdated"):
        return SortKey(name, "id" if name == "_id" else "date", desc)
    sp = params.get(name)
    if sp is None or sp.type == "special":
        raise SearchError(f"_sort: cannot sort by {name!r}", location="_sort")
    return SortKey(name, sp.type, desc)


def _include(fhir_version: str, rtype: str, value: str, reverse: bool) -> Include:
    pname = "_revinclude" if reverse else "_include"
    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise SearchError(f"{pname}={value!r}: expected Type:param[:TargetType]", location=pname)
    source, param = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    sp = spm.params_for(fhir_version, source).get(param)
    if sp is None or sp.type != "reference":
        raise SearchError(f"{pname}={value!r}: {source} has no reference parameter {param!r}",
                          location=pname)
    if not reverse and source != rtype:
        raise SearchError(f"{pname}={value!r}: source type must be {rtype}", location=pname)
    return Include(source, param, target, reverse)


# ---------------------------------------------------------------- result shaping

#: summary elements (isSummary in the spec) beyond id/meta/resourceType, per type
SUMMARY: dict[str, tuple[str, ...]] = {
    "ResearchStudy": ("url", "identifier", "version", "name", "title", "protocol", "partOf",
                      "date", "status", "phase", "focus", "condition", "keyword", "region",
                      "period", "site", "classifier", "progressStatus", "recruitment",
                      "category", "sponsor", "principalInvestigator", "location", "enrollment"),
    "PlanDefinition": ("url", "identifier", "version", "name", "title", "type", "status",
                       "date", "publisher", "description", "useContext", "jurisdiction"),
    "ActivityDefinition": ("url", "identifier", "version", "name", "title", "status", "date",
                           "publisher", "description", "kind", "code"),
    "EvidenceVariable": ("url", "identifier", "version", "name", "title", "status", "date",
                         "publisher", "description", "actual", "characteristic"),
    "Group": ("identifier", "active", "type", "membership", "actual", "code", "name",
              "quantity", "characteristic"),
    "Location": ("identifier", "status", "name", "alias", "mode", "type", "address",
                 "managingOrganization", "partOf", "position"),
    "Organization": ("identifier", "active", "type", "name", "alias", "partOf"),
    "Practitioner": ("identifier", "active", "name", "telecom", "gender"),
}
MANDATORY: dict[str, tuple[str, ...]] = {
    "ResearchStudy": ("status",), "PlanDefinition": ("status",),
    "ActivityDefinition": ("status",), "EvidenceVariable": ("status", "characteristic"),
    "Group": ("type", "membership", "actual"), "Location": (), "Organization": (),
    "Practitioner": (),
}
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED"}


def shape(resource: dict[str, Any], summary: str | None, elements: list[str]) -> dict[str, Any]:
    """Apply ``_summary`` / ``_elements`` to one resource (tagging it SUBSETTED)."""
    if summary in (None, "false") and not elements:
        return resource
    rtype = resource["resourceType"]
    base = {"resourceType", "id", "meta"}
    if summary == "true":
        keep = base | set(SUMMARY.get(rtype, ())) | set(MANDATORY.get(rtype, ()))
    elif summary == "text":
        keep = base | {"text"} | set(MANDATORY.get(rtype, ()))
    elif summary == "data":
        keep = set(resource) - {"text"}
    else:
        keep = base | set(elements) | set(MANDATORY.get(rtype, ()))
    out = {k: v for k, v in resource.items() if k in keep}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    out["meta"] = meta
    return out
