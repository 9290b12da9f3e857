"""The lossy ClinicalTrials.gov overallStatus → R4 ResearchStudy.status table.

Data: mappings/r4-status.json (schema: mappings/schema/r4-status.schema.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from ...errors import MappingError
from ...model import Finding

_REPO_MAPPINGS = Path(__file__).resolve().parents[4] / "mappings"


@dataclass(frozen=True, slots=True)
class StatusRow:
    ctgov: str | None
    code: str
    equivalence: str
    comment: str
    use_last_known: bool = False


def _read(name: str) -> Any:
    # Installed: shipped as package data fhirtrial/mappings; from a checkout: <repo>/mappings.
    try:
        text = resources.files("fhirtrial.mappings").joinpath(name).read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        text = (_REPO_MAPPINGS / name).read_text("utf-8")
    return json.loads(text)


@cache
def status_table() -> dict[str | None, StatusRow]:
    """The table, checked against its schema once; key None is the row for an absent status."""
    return parse_status_table(_read("r4-status.json"))


def parse_status_table(doc: Any) -> dict[str | None, StatusRow]:
    """Check a status table document against its schema and index its rows."""
    try:
        jsonschema.validate(doc, _read("schema/r4-status.schema.json"))
    except jsonschema.ValidationError as e:
        raise MappingError(f"mappings/r4-status.json: {e.message}",
                           location="/".join(map(str, e.absolute_path))) from None
    rows: dict[str | None, StatusRow] = {}
    for r in doc["rows"]:
        if r["ctgov"] in rows:
            raise MappingError(f"mappings/r4-status.json: {r['ctgov']} listed twice")
        rows[r["ctgov"]] = StatusRow(r["ctgov"], r["code"], r["equivalence"], r["comment"],
                                     r.get("use_last_known", False))
    a = doc["absent"]
    rows[None] = StatusRow(None, a["code"], a["equivalence"], a["comment"])
    return rows


def r4_status(overall: str | None, last_known: str | None = None) -> tuple[str, list[Finding]]:
    """The R4 status code for a registry status, and warnings where the table had to approximate."""
    table = status_table()
    loc = "ResearchStudy.status"
    if overall is None:
        row = table[None]
        return row.code, [Finding("warning", "incomplete",
                                  f"the record states no overall status; R4 requires one, "
                                  f"written as '{row.code}'", loc)]
    row_or_none = table.get(overall)
    if row_or_none is None:
        raise MappingError(f"overall status {overall!r} has no row in mappings/r4-status.json",
                           location=loc)
    row = row_or_none
    if row.use_last_known:
        known = table.get(last_known) if last_known else None
        code = known.code if known and not known.use_last_known else row.code
        return code, [Finding("warning", "informational",
                              f"R4 has no status for {overall}; written as '{code}' from the last "
                              f"known status {last_known or '(none)'}", loc)]
    if row.equivalence == "unmatched":
        return row.code, [Finding("warning", "informational",
                                  f"R4 has no status for {overall}; written as '{row.code}'", loc)]
    return row.code, []


def ctgov_status(code: str) -> str | None:
    """Inverse where it is lossless: the one registry status an R4 code came from 'equivalent'ly."""
    rows = [r for r in status_table().values() if r.code == code]
    # lossless only when one registry status alone gives this code, and gives it exactly
    if len(rows) == 1 and rows[0].equivalence == "equivalent":
        return rows[0].ctgov
    return None
