"""The parameters of type-level ``ResearchStudy/$match`` → a checked :class:`MatchRequest`.

The names are those of the CodeX ``ClinicalTrialMatchService`` OperationDefinition
(``trialMatchClinicalData``, ``zipCode``, ``travelRadius``, ``phase``, ``recruitmentStatus``)
plus fhirtrial's own (``latitude``/``longitude``, ``place``, ``_count``, ``includeRuledOut``,
``as-of``). They come in a ``Parameters`` body, or — when the body is the patient Bundle itself —
in the URL. Every mistake is a :class:`~fhirtrial.errors.SourceError` naming the parameter.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from ..eligibility.match import check_patient_bundle
from ..errors import SourceError
from ..tables import table
from .engine import DEFAULT_COUNT, MAX_COUNT, OPEN_STATUSES, MatchRequest
from .geo import KM_PER_MILE, Place, from_place, from_zip

#: every research-study-status code a study or site may carry
R5_STATUSES = ("active", "active-but-not-recruiting", "administratively-completed", "approved",
               "closed-to-accrual", "closed-to-accrual-and-intervention", "completed",
               "disapproved", "enrolling-by-invitation", "in-review", "not-yet-recruiting",
               "recruiting", "temporarily-closed-to-accrual",
               "temporarily-closed-to-accrual-and-intervention", "terminated", "withdrawn")
PHASES = ("n-a", "not-applicable", "early-phase-1", "phase-1", "phase-1-phase-2", "phase-2",
          "phase-2-phase-3", "phase-3", "phase-4")
PARAMS = ("trialMatchClinicalData", "zipCode", "travelRadius", "phase", "recruitmentStatus",
          "latitude", "longitude", "place", "_count", "includeRuledOut", "as-of")
_SCALARS = {"zipCode", "travelRadius", "latitude", "longitude", "place", "_count",
            "includeRuledOut", "as-of"}
_URL_IGNORED = ("_format", "_pretty")
_RADIUS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mi|miles?|km)?\s*$", re.IGNORECASE)


def _value(p: dict[str, Any]) -> Any:
    for k, v in p.items():
        if k.startswith("value"):
            return v
    return None


def collect(body: Any, query: list[tuple[str, str]]) -> dict[str, list[Any]]:
    """Body + URL → {parameter name: values}; unknown names are refused."""
    out: dict[str, list[Any]] = {}
    for key, value in query:
        if key in _URL_IGNORED:
            continue
        if key not in PARAMS or key == "trialMatchClinicalData":
            raise SourceError(f"{key!r} is not a URL parameter of ResearchStudy/$match "
                              f"({', '.join(p for p in PARAMS if p != 'trialMatchClinicalData')})",
                              location=key)
        out.setdefault(key, []).append(value)
    if not isinstance(body, dict):
        raise SourceError("The body is not a JSON object", location="Resource")
    rtype = body.get("resourceType")
    if rtype == "Bundle":
        out.setdefault("trialMatchClinicalData", []).append(body)
        return out
    if rtype != "Parameters":
        raise SourceError(f"ResearchStudy/$match takes a Parameters resource (or the patient's "
                          f"Bundle itself), not {rtype!r}", location="resourceType")
    params = body.get("parameter")
    if not isinstance(params, list):
        raise SourceError("Parameters.parameter is missing or not a list",
                          location="Parameters.parameter")
    for i, p in enumerate(params):
        where = f"Parameters.parameter[{i}]"
        name = p.get("name") if isinstance(p, dict) else None
        if name not in PARAMS:
            raise SourceError(f"{name!r} is not a parameter of ResearchStudy/$match "
                              f"({', '.join(PARAMS)})", location=f"{where}.name")
        if name == "trialMatchClinicalData":
            res = p.get("resource")
            if not isinstance(res, dict) or res.get("resourceType") != "Bundle":
                raise SourceError("trialMatchClinicalData must carry a Bundle in 'resource'",
                                  location=f"{where}.resource")
            out.setdefault(name, []).append(res)
            continue
        v = _value(p)
        if v is None:
            raise SourceError(f"{name} has no value[x]", location=where)
        out.setdefault(name, []).append(v)
    return out


def parse(values: dict[str, list[Any]]) -> MatchRequest:
    """Checked parameters → a MatchRequest (SourceError naming the parameter otherwise)."""
    for name in (*_SCALARS, "trialMatchClinicalData"):
        if len(values.get(name, [])) > 1:
            raise SourceError(f"{name} is given more than once", location=name)
    bundles = values.get("trialMatchClinicalData")
    if not bundles:
        raise SourceError("trialMatchClinicalData (the patient's Bundle) is required",
                          location="trialMatchClinicalData")
    check_patient_bundle(bundles[0])
    req = MatchRequest(patient_bundle=bundles[0])
    one = {k: v[0] for k, v in values.items() if k in _SCALARS}
    req.place = _place(one)
    if "travelRadius" in one:
        if req.place is None:
            raise SourceError("travelRadius needs a zipCode, place or latitude/longitude",
                              location="travelRadius")
        req.radius_miles = radius_miles(one["travelRadius"])
    if "recruitmentStatus" in values:
        req.statuses = statuses(values["recruitmentStatus"])
    if "phase" in values:
        req.phases = phases(values["phase"])
    if "_count" in one:
        req.count = count(one["_count"])
    if "includeRuledOut" in one:
        v = one["includeRuledOut"]
        if isinstance(v, str) and v in ("true", "false"):
            v = v == "true"
        if not isinstance(v, bool):
            raise SourceError("includeRuledOut must be true or false", location="includeRuledOut")
        req.include_ruled_out = v
    if "as-of" in one:
        v = one["as-of"]
        try:
            if not isinstance(v, str) or len(v) != 10:
                raise ValueError
            date.fromisoformat(v)
        except ValueError:
            raise SourceError(f"as-of {v!r} is not a date (YYYY-MM-DD)",
                              location="as-of") from None
        req.as_of = v
    return req


def _place(one: dict[str, Any]) -> Place | None:
    given = [k for k in ("zipCode", "place") if k in one]
    has_coords = "latitude" in one or "longitude" in one
    if len(given) + has_coords > 1:
        raise SourceError("give one of zipCode, place or latitude+longitude",
                          location=given[0] if given else "latitude")
    if "zipCode" in one:
        return from_zip(str(one["zipCode"]))
    if "place" in one:
        return from_place(str(one["place"]))
    if has_coords:
        if "latitude" not in one or "longitude" not in one:
            raise SourceError("latitude and longitude go together", location="latitude")
        lat, lon = _number(one["latitude"], "latitude"), _number(one["longitude"], "longitude")
        if not -90 <= lat <= 90:
            raise SourceError(f"latitude {lat} is not within -90..90", location="latitude")
        if not -180 <= lon <= 180:
            raise SourceError(f"longitude {lon} is not within -180..180", location="longitude")
        return Place(lat, lon, f"{lat:.4f}, {lon:.4f}")
    return None


def _number(v: Any, name: str) -> float:
    if isinstance(v, bool):
        raise SourceError(f"{name} must be a number", location=name)
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise SourceError(f"{name} {v!r} is not a number", location=name) from None
    if f != f or f in (float("inf"), float("-inf")):
        raise SourceError(f"{name} {v!r} is not a number", location=name)
    return f


def radius_miles(v: Any) -> float:
    """``travelRadius``: miles (CodeX); a string may say ``mi`` or ``km``."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        r = float(v)
    else:
        m = _RADIUS.match(str(v))
        if not m:
            raise SourceError(f"travelRadius {v!r} is not a distance (miles, e.g. 50 or "
                              "'80 km')", location="travelRadius")
        r = float(m.group(1))
        if (m.group(2) or "").lower() == "km":
            r /= KM_PER_MILE
    if not 0 < r <= 25000:
        raise SourceError(f"travelRadius {v!r} must be above 0 and at most 25,000 miles",
                          location="travelRadius")
    return r


def _split(values: list[Any], name: str) -> list[str]:
    out = []
    for v in values:
        if not isinstance(v, str):
            raise SourceError(f"{name} must be a string (codes, comma-separated)", location=name)
        out += [p.strip() for p in v.split(",") if p.strip()]
    if not out:
        raise SourceError(f"{name} is empty", location=name)
    return out


def statuses(values: list[Any]) -> tuple[str, ...] | None:
    """research-study-status codes or CT.gov names (RECRUITING …); ``all`` for any status,
    ``open`` for the default (recruiting, not-yet-recruiting, enrolling-by-invitation)."""
    ctgov = {k: (v.get("r5_state") or {}).get("code")
             for k, v in table("overall-status").doc["map"].items()}
    out: list[str] = []
    for s in _split(values, "recruitmentStatus"):
        if s.lower() in ("all", "any", "*"):
            return None
        if s.lower() == "open":
            out += OPEN_STATUSES
        elif s in R5_STATUSES:
            out.append(s)
        elif s.upper() in ctgov and ctgov[s.upper()]:
            out.append(ctgov[s.upper()])  # type: ignore[arg-type]
        else:
            raise SourceError(f"recruitmentStatus {s!r} is not a research-study-status code "
                              "or a ClinicalTrials.gov status (or 'all', 'open')",
                              location="recruitmentStatus")
    return tuple(dict.fromkeys(out))


def phases(values: list[Any]) -> tuple[str, ...]:
    """research-study-phase codes or CT.gov names (PHASE2, EARLY_PHASE1, NA)."""
    ctgov = {k: (v.get("r5") or {}).get("code") for k, v in table("phase").doc["map"].items()}
    out: list[str] = []
    for p in _split(values, "phase"):
        if p in PHASES:
            out.append(p)
        elif p.upper().replace("-", "_") in ctgov and ctgov[p.upper().replace("-", "_")]:
            out.append(ctgov[p.upper().replace("-", "_")])  # type: ignore[arg-type]
        else:
            raise SourceError(f"phase {p!r} is not a research-study-phase code (phase-1 …) "
                              "or a ClinicalTrials.gov phase (PHASE1 …)", location="phase")
    if "not-applicable" in out or "n-a" in out:
        out += ["not-applicable", "n-a"]
    return tuple(dict.fromkeys(out))


def count(v: Any) -> int:
    try:
        n = int(v) if not isinstance(v, bool) and (isinstance(v, int) or str(v).isdigit()) \
            else None
    except ValueError:
        n = None
    if n is None or not 1 <= n <= MAX_COUNT:
        raise SourceError(f"_count {v!r} must be a whole number from 1 to {MAX_COUNT}",
                          location="_count")
    return n


__all__ = ["DEFAULT_COUNT", "PARAMS", "collect", "parse"]
