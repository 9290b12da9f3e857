"""Criterion list → a SQLite WHERE clause over ``current c``, reading only index tables.

Every fragment is a fixed string from this module; every value (parameter keys, codes, dates,
numbers) travels as a bound parameter. Nothing from a request is ever spliced into SQL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from .search import Criterion
from .searchparams import first_word, text_query

_TABLE = {"token": "idx_token", "uri": "idx_token", "string": "idx_string",
          "date": "idx_date", "reference": "idx_ref", "number": "idx_number",
          "quantity": "idx_number"}
_TOP = "\U0010ffff"
_WORD_PATTERNS = ("{}%", "% {}%", "%-{}%", "%({}%", "%/{}%", "%,{}%")

# date prefixes over a target range [t.lo, t.hi] and a search range [lo, hi] (FHIR R5 §3.2.1.5.6),
# each as OR-ed conjunctions: every conjunction is one range scan of a covering index, where an
# OR inside one WHERE would make SQLite fetch every candidate's table row
_DATE: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "eq": [("lo >= ? AND hi <= ?", ("lo", "hi"))],
    "gt": [("hi > ?", ("hi",))],
    "lt": [("lo < ?", ("lo",))],
    "ge": [("hi > ?", ("hi",)), ("lo >= ? AND hi <= ?", ("lo", "hi"))],
    "le": [("lo < ?", ("lo",)), ("lo >= ? AND hi <= ?", ("lo", "hi"))],
    "sa": [("lo > ?", ("hi",))],
    "eb": [("hi < ?", ("lo",))],
    "ap": [("lo <= ? AND hi >= ?", ("hi", "lo"))],
}


def compile_search(fv: str, rtype: str, criteria: Sequence[Criterion], *,
                   probe: bool = False, probe_tail: str = "",
                   fts: bool = True) -> tuple[str, list[Any]]:
    """The WHERE clause (over alias ``c``) and its parameters.

    Two equivalent shapes: by default each criterion is ``c.rid IN (matching rows)``, which
    suits a search driven by its matches (few matches, a count, a sort); with ``probe`` each
    is ``EXISTS (does row c match)``, one covering-index seek per row, which suits walking
    ``current`` in id order and stopping at the page's end when matches are dense;
    ``probe_tail`` ends each probe's subquery (the dialect's way to keep it a per-row probe).
    ``fts``: token ``:text`` reads the full-text index ``idx_text`` (SQLite; see
    :func:`_text_criterion`), else the word-suffix rows of idx_token (PostgreSQL)."""
    where = ["c.fv=?", "c.type=?", "c.body IS NOT NULL"]
    args: list[Any] = [fv, rtype]
    for cr in criteria:
        frag, fargs = _criterion(rtype, cr, probe, probe_tail, fts)
        where.append(frag)
        args.extend(fargs)
    return " AND ".join(where), args


def _criterion(rtype: str, cr: Criterion, probe: bool,
               probe_tail: str = "", fts: bool = True) -> tuple[str, list[Any]]:
    key = f"{rtype}.{cr.name}"
    if cr.type == "id":
        if cr.modifier == "missing":  # every resource has an id
            return ("1=0" if cr.values[0] else "1=1"), []
        return f"c.id IN ({','.join('?' * len(cr.values))})", list(cr.values)
    if cr.modifier == "missing":
        table = "idx_geo" if cr.type == "special" else _TABLE[cr.type]
        sp_cond = "" if cr.type == "special" else " AND sp=?"
        sp_args = [] if cr.type == "special" else [key]
        neg = "NOT " if cr.values[0] else ""
        tail = probe_tail if probe else ""
        return (f"{neg}EXISTS (SELECT 1 FROM {table} WHERE rid=c.rid{sp_cond}{tail})", sp_args)
    if fts and cr.type == "token" and cr.modifier == "text":
        return _text_criterion(rtype, cr, probe, probe_tail)
    conds: list[tuple[str, list[Any]]] = []
    if cr.type == "special":
        table, sp_cond, sp_args = "idx_geo", "", []
        for v in cr.values:
            conds.extend(_near(v))
    else:
        table, sp_cond, sp_args = _TABLE[cr.type], "sp=? AND ", [key]
        for v in cr.values:
            conds.extend(_value(cr, v))
    negate = cr.modifier == "not" or (cr.type in ("date", "number") and _all_ne(cr))
    if probe:
        ors = " OR ".join(f"({c})" for c, _ in conds)
        args = [*sp_args, *(a for _, ca in conds for a in ca)]
        neg = "NOT " if negate else ""
        return (f"{neg}EXISTS (SELECT 1 FROM {table} WHERE rid=c.rid AND {sp_cond}({ors})"
                f"{probe_tail})", args)
    selects, args = [], []
    for c, ca in conds:
        selects.append(f"SELECT rid FROM {table} WHERE {sp_cond}{c}")
        args.extend([*sp_args, *ca])
    neg = "NOT " if negate else ""
    return f"c.rid {neg}IN ({' UNION ALL '.join(selects)})", args


def _text_criterion(rtype: str, cr: Criterion, probe: bool,
                    probe_tail: str) -> tuple[str, list[Any]]:
    """Token ``:text`` over the full-text index (SQLite): the values with a word are one FTS5
    query (their phrases OR-ed, see ``searchparams.text_query``) on the resources' documents;
    a value without one (``:text=-``) matches the texts that start with it, on idx_token."""
    key = f"{rtype}.{cr.name}"
    queries = [(v, text_query(key, v)) for v in cr.values]
    values = [v for v, q in queries if q is not None]
    rest = [v for v, q in queries if q is None]
    parts: list[tuple[str, list[Any]]] = []
    if values and probe:
        # a row probed (a page walk) is matched on its texts in Python (has_phrase, the
        # connection's fhirtrial_phrase): a full-text query run per row would read a
        # prefix's every match each time (``keyword:text=s``: 170 µs a row at 2,000
        # studies), and the matches read into a list once cost as many (1.5 ms for
        # ``diab`` at 50,000 studies, where a walk probes ~230 rows in 0.2 ms)
        ors = " OR ".join("(instr(text, ?) AND fhirtrial_phrase(text, ?))" for _ in values)
        parts.append((f"EXISTS (SELECT 1 FROM idx_token WHERE rid=c.rid AND sp=? "
                       f"AND text IS NOT NULL AND ({ors}){probe_tail})",
                      [key, *(a for v in values for a in (first_word(v), v))]))
    elif values:
        parts.append(("c.rid IN (SELECT rowid FROM idx_text WHERE idx_text MATCH ?)",
                      [" OR ".join(q for _, q in queries if q is not None)]))
    if rest:
        parts.append(_criterion(rtype, replace(cr, values=tuple(rest)), probe, probe_tail,
                                fts=False))
    if len(parts) == 1:
        return parts[0]
    return "(" + " OR ".join(f"({c})" for c, _ in parts) + ")", [a for _, ca in parts for a in ca]


def near_page(fv: str, rtype: str, criteria: Sequence[Criterion]) -> tuple[str, list[Any]] | None:
    """The page of a search that is one ``near`` alone, in the order of the geo index
    (latitude strip, longitude, latitude, row): ``FROM … ORDER BY …`` over alias ``c`` and its
    parameters, or None for any other search. Ordered by id, a page had to compute the
    distance of every match in the box and sort them (a dense city at registry size: thousands
    of matches for 20 rows); in index order the distance is computed for the rows the page
    walks past, and the page stops at its end. The order is stable as long as the locations
    are, as id order is."""
    if len(criteria) != 1:
        return None
    cr = criteria[0]
    if cr.type != "special" or cr.modifier is not None or len(cr.values) != 1:
        return None
    conds = _near(cr.values[0])
    if len(conds) != 1 or not conds[0][0].startswith("CAST(lat + 90 AS INTEGER) IN"):
        return None  # across the antimeridian, or a band too wide for strips: by id
    cond, args = conds[0]
    return (f"FROM idx_geo g JOIN current c ON c.rid = g.rid WHERE {cond} AND c.fv=? AND "
            "c.type=? AND c.body IS NOT NULL "
            "ORDER BY CAST(g.lat + 90 AS INTEGER), g.lon, g.lat, g.rid",
            [*args, fv, rtype])


#: above this many matches a single reference search is paged by id as any other (a walk in
#: id order stops at the page's end; collecting this many row ids first would not)
REF_PAGE_MAX = 5000


def ref_page(fv: str, rtype: str, criteria: Sequence[Criterion],
             n: int | None) -> tuple[str, list[Any]] | None:
    """The page of a search that is one reference value alone (``sponsor=Organization/x``)
    with at most :data:`REF_PAGE_MAX` matches, in row order: ``FROM … ORDER BY c.rid`` and its
    parameters, or None. By id, each of the matches' rows was read to sort them (a sponsor of
    a thousand studies: a thousand rows, most from disk at registry size); in row order the
    matching row ids come from the reference index alone and only the page's rows are read.
    Row order is the order resources were first stored, stable as id order is."""
    if n is None or n > REF_PAGE_MAX or len(criteria) != 1:
        return None
    cr = criteria[0]
    if cr.type != "reference" or cr.modifier is not None or len(cr.values) != 1:
        return None
    [(cond, cargs)] = _value(cr, cr.values[0])
    return (f"FROM current c WHERE c.rid IN (SELECT rid FROM idx_ref WHERE sp=? AND {cond}) "
            "AND c.fv=? AND c.type=? AND c.body IS NOT NULL ORDER BY c.rid",
            [f"{rtype}.{cr.name}", *cargs, fv, rtype])


def _all_ne(cr: Criterion) -> bool:
    return all(v[0] == "ne" for v in cr.values)


def _value(cr: Criterion, v: Any) -> list[tuple[str, list[Any]]]:
    """One search value → the OR-ed conjunctions an index row matches it by."""
    t = cr.type
    if t in ("token", "uri"):
        if cr.modifier == "text":
            return [("text >= ? AND text < ?", [v, v + _TOP])]
        system, code, system_given = v
        if not system_given:
            return [("code=?", [code])]
        if code is None:  # each half on its own index (see dialect.TOKEN_CODE_PARTIAL)
            return [("code IS NOT NULL AND system=?", [system]),
                    ("code IS NULL AND system=?", [system])]
        if system == "":
            return [("code=? AND system IS NULL", [code])]
        return [("code=? AND system=?", [code, system])]
    if t == "string":
        if cr.modifier == "text":
            # a word of the text starts with the value: at the start, or after a space or
            # punctuation (the string index holds whole values, so this is a scan of them)
            esc = v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return [("norm LIKE ? ESCAPE '\\'", [pattern.format(esc)])
                    for pattern in _WORD_PATTERNS]
        if cr.modifier == "exact":
            return [("exact=?", [v])]
        if cr.modifier == "contains":
            esc = v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return [("norm LIKE ? ESCAPE '\\'", [f"%{esc}%"])]
        return [("norm >= ? AND norm < ?", [v, v + _TOP])]
    if t == "date":
        prefix, lo, hi = v
        if prefix == "ne":  # the NOT IN wrapper turns "eq" into "ne"
            prefix = "eq"
        return [(sql, [lo if w == "lo" else hi for w in which]) for sql, which in _DATE[prefix]]
    if t in ("number", "quantity"):
        prefix, value, lo, hi = v
        if prefix in ("eq", "ne"):
            return [("value >= ? AND value < ?", [lo, hi])]
        if prefix == "ap":
            d = abs(value) * 0.1
            return [("value >= ? AND value <= ?", [value - d, value + d])]
        op = {"gt": ">", "sa": ">", "lt": "<", "eb": "<", "ge": ">=", "le": "<="}[prefix]
        return [(f"value {op} ?", [value])]
    if t == "reference":
        rtype, rid = v
        if rtype is None:
            return [("tid=?", [rid])]
        return [("tid=? AND ttype=?", [rid, rtype])]
    raise AssertionError(t)  # pragma: no cover


#: at most this many 1-degree latitude strips are sought one by one (a radius up to ~2,400 km);
#: a wider box reads its latitude band from the (lat, lon) index
_MAX_STRIPS = 45


def _near(v: tuple[float, float, float]) -> list[tuple[str, list[Any]]]:
    """The box around a point (its latitude strips, then longitudes) and the exact distance
    within it. A box that reaches a pole spans every longitude (the shortest way may cross
    the pole); one that crosses the antimeridian is two longitude ranges."""
    lat, lon, km = v
    dlat = km / 111.0
    coslat = max(math.cos(math.radians(lat)), 1e-6)
    dlon = km / (111.320 * coslat)
    lo_lat, hi_lat = lat - dlat, lat + dlat
    if lo_lat <= -90 or hi_lat >= 90 or dlon >= 180:
        lons: list[tuple[float, float] | None] = [None]
    elif lon - dlon < -180:
        lons = [(lon - dlon + 360, 180.0), (-180.0, lon + dlon)]
    elif lon + dlon > 180:
        lons = [(lon - dlon, 180.0), (-180.0, lon + dlon - 360)]
    else:
        lons = [(lon - dlon, lon + dlon)]
    # the box's 1-degree latitude strips (dialect.GEO_CELL_INDEX: CAST(lat + 90 AS INTEGER),
    # which truncates in SQLite and rounds in PostgreSQL, so the strips of both are listed),
    # each sought for the box's longitudes; the exact distance then filters the box
    first = math.floor(max(lo_lat, -90.0) + 90)
    last = math.floor(min(hi_lat, 90.0) + 90) + 1
    strips = list(range(first, last + 1))
    by_strip = len(strips) <= _MAX_STRIPS
    out = []
    for span in lons:
        conds = [f"CAST(lat + 90 AS INTEGER) IN ({','.join('?' * len(strips))})"] \
            if by_strip else []
        args: list[Any] = list(strips) if by_strip else []
        conds.append("lat BETWEEN ? AND ?")
        args += [lo_lat, hi_lat]
        if span is not None:
            conds.append("lon BETWEEN ? AND ?")
            args += list(span)
        conds.append("fhirtrial_km(lat, lon, ?, ?) <= ?")
        args += [lat, lon, km]
        out.append((" AND ".join(conds), args))
    return out
