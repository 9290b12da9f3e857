"""``fhirtrial find-trials``: the studies of a store a patient could join, ranked."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import FhirtrialError, describe_json_error
from .serve import DB_HELP


def _fail(message: str) -> None:
    click.echo(f"fhirtrial find-trials: {message}", err=True)
    sys.exit(2)


def _bundle(path: str) -> Any:
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as e:
        _fail(f"{path}: cannot read: {e.strerror}")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        _fail(f"{path}: not JSON: {describe_json_error(e)}")


@click.command("find-trials")
@click.argument("patient_bundle", metavar="PATIENT-BUNDLE")
@click.option("--db", "db", default=None, help=DB_HELP)
@click.option("--fhir-version", type=click.Choice(["R5", "R4"]), default="R5", show_default=True,
              help="Which of the store's versions to search.")
@click.option("--zip", "zip_code", metavar="ZIP", help="The patient's US ZIP code.")
@click.option("--place", metavar="TEXT", help="The patient's city ('Lyon, France').")
@click.option("--lat", type=float, help="The patient's latitude (with --lon).")
@click.option("--lon", type=float, help="The patient's longitude (with --lat).")
@click.option("--radius", metavar="MILES",
              help="Only studies with a fitting site within this distance (miles; '80 km').")
@click.option("--status", "statuses", multiple=True, metavar="CODE",
              help="Recruitment status(es) (research-study-status or CT.gov names; 'all'). "
                   "Default: recruiting, not-yet-recruiting, enrolling-by-invitation.")
@click.option("--phase", "phases", multiple=True, metavar="CODE",
              help="Phase(s) (phase-2, PHASE2 …).")
@click.option("--count", "count", type=int, default=10, show_default=True,
              help="How many studies (1-100).")
@click.option("--include-ruled-out", is_flag=True,
              help="Also list studies a criterion rules out (naming it).")
@click.option("--as-of", metavar="YYYY-MM-DD",
              help="Evaluation date (default: the latest clinical date in the bundle).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def find_trials_cmd(patient_bundle: str, db: str | None, fhir_version: str,
                    zip_code: str | None, place: str | None, lat: float | None,
                    lon: float | None, radius: str | None, statuses: tuple[str, ...],
                    phases: tuple[str, ...], count: int, include_ruled_out: bool,
                    as_of: str | None, fmt: str) -> None:
    """Rank the studies stored in --db for PATIENT-BUNDLE (a FHIR Bundle with the Patient,
    their Conditions and Observations; '-' for stdin): the same engine as the server's
    type-level ResearchStudy/$match.

    Prints rank, NCT id, title, verdict, distance and the criteria still unknown (or JSON).
    Exit 0 with matches, 1 with none, 2 bad input.
    """
    from ..matching import find_trials, summary_rows
    from ..matching.request import parse
    from ..server.config import load_config
    from ..server.storeopen import open_sqlite_store

    bundle = _bundle(patient_bundle)
    values: dict[str, list[Any]] = {"trialMatchClinicalData": [bundle]}
    for name, v in (("zipCode", zip_code), ("place", place), ("latitude", lat),
                    ("longitude", lon), ("travelRadius", radius), ("as-of", as_of)):
        if v is not None:
            values[name] = [v]
    if statuses:
        values["recruitmentStatus"] = list(statuses)
    if phases:
        values["phase"] = list(phases)
    values["_count"] = [count]
    values["includeRuledOut"] = [include_ruled_out]
    cfg = load_config({"DB": db} if db else None)
    if not Path(cfg["DB"]).is_file():
        _fail(f"{cfg['DB']}: no such store (fhirtrial load … --db {cfg['DB']} first)")
    try:
        req = parse(values)
        result = find_trials(open_sqlite_store(cfg["DB"]), fhir_version, req)
    except FhirtrialError as e:
        where = f"{e.location}: " if e.location and e.location not in e.message else ""
        _fail(f"{where}{e.message}")
    rows = summary_rows(result)
    if fmt == "json":
        click.echo(json.dumps({"matches": rows, "candidates": result.candidates,
                               "evaluated": result.evaluated}, ensure_ascii=False, indent=2))
    else:
        click.echo(_table(rows))
    click.echo(f"{len(rows)} stud{'y' if len(rows) == 1 else 'ies'} shown; "
               f"{result.candidates} candidate(s), {result.evaluated} evaluated", err=True)
    sys.exit(0 if rows else 1)


def _table(rows: list[dict[str, Any]]) -> str:
    head = ("rank", "NCT id", "title", "verdict", "distance", "still unknown")
    body = []
    for r in rows:
        title = r["title"] if len(r["title"]) <= 48 else r["title"][:47] + "…"
        dist = f"{r['distance_miles']:g} mi" if r["distance_miles"] is not None else "-"
        unknown = "; ".join(u if len(u) <= 40 else u[:39] + "…" for u in r["unknown"][:3])
        if len(r["unknown"]) > 3:
            unknown += f" (+{len(r['unknown']) - 3})"
        if r["ruled_out_by"]:
            unknown = "ruled out by: " + "; ".join(r["ruled_out_by"])[:80]
        body.append((str(r["rank"]), r["id"], title, r["verdict"], dist, unknown or "-"))
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [head, *body]]
    return "\n".join(lines)
