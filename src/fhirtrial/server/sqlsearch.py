"""Criterion list → a SQLite WHERE clause over ``current c``, reading only index tables.

Every fragment is a fixed string from this module; every value (parameter keys, codes, dates,
numbers) travels as a bound parameter. Nothing from a request is ever spliced into SQL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .search import Criterion

_TABLE = {"token": "idx_token", "uri": "idx_token", "string": "idx_string",
          "date": "idx_date", "reference": "idx_ref", "number": "idx_number",
          "quantity": "idx_number"}
_TOP = "\U0010ffff"

# date prefixes over a target range [t.lo, t.hi] and a search range [lo, hi] (FHIR R5 §3.2.1.5.6)
_DATE = {
    "eq": ("(lo >= ? AND hi <= ?)", ("lo", "hi")),
    "gt": ("hi > ?", ("hi",)),
    "lt": ("lo < ?", ("lo",)),
    "ge": ("(hi > ? OR (lo >= ? AND hi <= ?))", ("hi", "lo", "hi")),
    "le": ("(lo < ? OR (lo >= ? AND hi <= ?))", ("lo", "lo", "hi")),
    "sa": ("lo > ?", ("hi",)),
    "eb": ("hi < ?", ("lo",)),
    "ap": ("(lo <= ? AND hi >= ?)", ("hi", "lo")),
}


def compile_search(fv: str, rtype: str, criteria: Sequence[Criterion]) -> tuple[str, list[Any]]:
    """The WHERE clause (over alias ``c``) and its parameters."""
    where = ["c.fv=?", "c.type=?", "c.body IS NOT NULL"]
    args: list[Any] = [fv, rtype]
    for cr in criteria:
        frag, fargs = _criterion(rtype, cr)
        where.append(frag)
        args.extend(fargs)
    return " AND ".join(where), args


def _criterion(rtype: str, cr: Criterion) -> tuple[str, list[Any]]:
    key = f"{rtype}.{cr.name}"
    if cr.type == "id":
        if cr.modifier == "missing":  # every resource has an id
            return ("0" if cr.values[0] else "1"), []
        return f"c.id IN ({','.join('?' * len(cr.values))})", list(cr.values)
    if cr.modifier == "missing":
        table = "idx_geo" if cr.type == "special" else _TABLE[cr.type]
        sp_cond = "" if cr.type == "special" else " AND sp=?"
        sp_args = [] if cr.type == "special" else [key]
        neg = "NOT " if cr.values[0] else ""
        return (f"{neg}EXISTS (SELECT 1 FROM {table} WHERE rid=c.rid{sp_cond})", sp_args)
    if cr.type == "special":
        return _near(cr)
    ors: list[str] = []
    args: list[Any] = []
    for v in cr.values:
        frag, a = _value(cr, v)
        ors.append(frag)
        args.extend(a)
    table = _TABLE[cr.type]
    inner = f"SELECT rid FROM {table} WHERE sp=? AND ({' OR '.join(ors)})"
    if cr.modifier == "not" or (cr.type in ("date", "number") and _all_ne(cr)):
        return f"c.rid NOT IN ({inner})", [key, *args]
    return f"c.rid IN ({inner})", [key, *args]


def _all_ne(cr: Criterion) -> bool:
    return all(v[0] == "ne" for v in cr.values)


def _value(cr: Criterion, v: Any) -> tuple[str, list[Any]]:
    t = cr.type
    if t in ("token", "uri"):
        if cr.modifier == "text":
            return "(text >= ? AND text < ?)", [v, v + _TOP]
        system, code, system_given = v
        if not system_given:
            return "code=?", [code]
        if code is None:
            return "system=?", [system]
        if system == "":
            return "(code=? AND system IS NULL)", [code]
        return "(code=? AND system=?)", [code, system]
    if t == "string":
        if cr.modifier == "exact":
            return "exact=?", [v]
        if cr.modifier == "contains":
            esc = v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return "norm LIKE ? ESCAPE '\\'", [f"%{esc}%"]
        return "(norm >= ? AND norm < ?)", [v, v + _TOP]
    if t == "date":
        prefix, lo, hi = v
        if prefix == "ne":  # the NOT IN wrapper turns "eq" into "ne"
            prefix = "eq"
        sql, which = _DATE[prefix]
        return sql, [lo if w == "lo" else hi for w in which]
    if t in ("number", "quantity"):
        prefix, value, lo, hi = v
        if prefix in ("eq", "ne"):
            return "(value >= ? AND value < ?)", [lo, hi]
        if prefix == "ap":
            d = abs(value) * 0.1
            return "(value >= ? AND value <= ?)", [value - d, value + d]
        op = {"gt": ">", "sa": ">", "lt": "<", "eb": "<", "ge": ">=", "le": "<="}[prefix]
        return f"value {op} ?", [value]
    if t == "reference":
        rtype, rid = v
        if rtype is None:
            return "tid=?", [rid]
        return "(tid=? AND ttype=?)", [rid, rtype]
    raise AssertionError(t)  # pragma: no cover


def _near(cr: Criterion) -> tuple[str, list[Any]]:
    ors, args = [], []
    for lat, lon, km in cr.values:
        dlat = km / 111.0
        coslat = max(math.cos(math.radians(lat)), 1e-6)
        dlon = min(180.0, km / (111.320 * coslat))
        # the bounding box uses the (lat, lon) index; the exact distance then filters the box
        ors.append("(lat BETWEEN ? AND ? AND lon BETWEEN ? AND ? "
                   "AND fhirtrial_km(lat, lon, ?, ?) <= ?)")
        args.extend([lat - dlat, lat + dlat, lon - dlon, lon + dlon, lat, lon, km])
    return f"c.rid IN (SELECT rid FROM idx_geo WHERE {' OR '.join(ors)})", args
