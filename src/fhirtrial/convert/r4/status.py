"""ClinicalTrials.gov overallStatus → R4 ``ResearchStudy.status`` (required binding, 11 codes).

Data: the ``r4_status`` column of ``mappings/overall-status.json`` (one table for both versions;
each row's code and equivalence is listed in ``mappings/README.md``). R4 ``status`` is 1..1, so
where that column has no code a rule decides, always with a warning:

- ``UNKNOWN`` (not verified for 2+ years): the R4 code of ``lastKnownStatus``, the state the
  registry last confirmed;
- ``WITHHELD``, an ``UNKNOWN`` whose last known status has no R4 code either, or a record with no
  status at all (a field-filtered record): :data:`FALLBACK`, ``in-review``. No R4 code means
  "unknown"; ``in-review`` is chosen because it asserts nothing about recruitment, so the study
  never shows up in a search for open (``active``) or finished studies on a guess.

The exact registry status is never lost: the writer also carries R5 ``progressStatus`` (with the
CT.gov coding) as a cross-version extension.
"""

from __future__ import annotations

from functools import cache

from ...errors import MappingError
from ...model import Finding
from ...tables import Table, Target, table

TABLE = "overall-status"
COLUMN = "r4_status"
#: http://hl7.org/fhir/research-study-status as R4 (4.0.1) defines it: the required value set
R4_CODES = frozenset({
    "active", "administratively-completed", "approved", "closed-to-accrual",
    "closed-to-accrual-and-intervention", "completed", "disapproved", "in-review",
    "temporarily-closed-to-accrual", "temporarily-closed-to-accrual-and-intervention",
    "withdrawn"})
FALLBACK = "in-review"
_LOCATION = "ResearchStudy.status"


def r4_column(t: Table) -> dict[str, Target]:
    """The R4 status of every registry status in ``t``; a code outside R4's value set is a
    MappingError (R5 widened the code system: an R5-only code here would fail every R4 server)."""
    out: dict[str, Target] = {}
    for value in t.doc["map"]:
        target = t.target(value, COLUMN)
        if target is None:
            raise MappingError(f"{t.path.name}: map/{value} has no {COLUMN} entry",
                               location=str(t.path))
        if target.code is not None and target.code not in R4_CODES:
            raise MappingError(f"{t.path.name}: map/{value}/{COLUMN}: {target.code!r} is not an "
                               f"R4 research-study-status code", location=str(t.path))
        out[value] = target
    return out


@cache
def status_table() -> dict[str, Target]:
    """The checked R4 column of mappings/overall-status.json, loaded once."""
    return r4_column(table(TABLE))


def r4_status(overall: str | None, last_known: str | None = None) -> tuple[str, list[Finding]]:
    """The R4 status code for a registry status, and warnings where the table had no code."""
    rows = status_table()
    if overall is None:
        return FALLBACK, [Finding("warning", "incomplete", f"the record states no overall "
                                  f"status; R4 requires one: written as '{FALLBACK}'", _LOCATION)]
    row = rows.get(overall)
    if row is None:
        raise MappingError(f"overall status {overall!r} has no row in mappings/{TABLE}.json",
                           location=_LOCATION)
    if row.code is not None:
        return row.code, []
    if overall == "UNKNOWN":
        known = rows.get(last_known) if last_known else None
        if known is not None and known.code is not None:
            return known.code, [Finding(
                "warning", "informational", f"R4 has no status for UNKNOWN; written as "
                f"'{known.code}' from the last known status {last_known}", _LOCATION)]
        return FALLBACK, [Finding(
            "warning", "informational", f"R4 has no status for UNKNOWN and the last known status "
            f"{last_known or '(none)'} has no R4 code; written as '{FALLBACK}'", _LOCATION)]
    return FALLBACK, [Finding("warning", "informational", f"R4 has no status for {overall}; "
                              f"written as '{FALLBACK}'", _LOCATION)]


def ctgov_status(code: str) -> str | None:
    """The one registry status an R4 code came from 'equivalent'ly, else None (lossy)."""
    rows = [(value, t) for value, t in status_table().items() if t.code == code]
    if len(rows) == 1 and rows[0][1].equivalence == "equivalent":
        return rows[0][0]
    return None
