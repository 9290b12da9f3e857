"""``fhirtrial match``: pre-screen one patient against one study's eligibility criteria."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..errors import FhirtrialError, SourceError, describe_json_error, operation_outcome
from ..files import InputTooLarge, read_input
from ..model import Finding

#: exit codes: the verdict is the answer a script branches on
EXIT = {"eligible": 0, "not-eligible": 1, "needs-review": 3}


def _fail(message: str) -> None:
    click.echo(json.dumps(operation_outcome([Finding("error", "invalid", message)]),
                          ensure_ascii=False), err=True)
    sys.exit(2)


def _study(source: str) -> Any:
    from ..sources import read_inputs

    records = list(read_inputs([source]))
    if len(records) != 1:
        _fail(f"{source}: holds {len(records)} studies; give exactly one")
    rec = records[0]
    if rec.error is not None:
        _fail(rec.error.message)
    return rec.study


def _bundle(path: str) -> Any:
    try:
        raw = read_input(path)
    except OSError as e:
        _fail(f"{path}: cannot read: {e.strerror}")
    except InputTooLarge as e:
        _fail(str(e))
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        _fail(f"{path}: not JSON: {describe_json_error(e)}")


@click.command("match")
@click.argument("study")
@click.argument("patient_bundle", metavar="PATIENT-BUNDLE")
@click.option("--as-of", metavar="YYYY-MM-DD",
              help="Evaluation date (default: the latest clinical date in the bundle).")
@click.option("--compact", is_flag=True, help="One-line JSON.")
def match_cmd(study: str, patient_bundle: str, as_of: str | None, compact: bool) -> None:
    """Pre-screen PATIENT-BUNDLE (a FHIR Bundle with a Patient, Observations, Conditions)
    against the eligibility criteria of STUDY (any record `convert` reads).

    Prints a FHIR Parameters resource: the verdict and, per criterion, met / not-met /
    unknown with the evidence used. Exit 0 eligible, 1 not eligible, 3 needs review,
    2 bad input.
    """
    from ..eligibility.match import evaluate

    s = _study(study)
    bundle = _bundle(patient_bundle)
    try:
        out = evaluate(s, bundle, as_of=as_of)
    except SourceError as e:
        _fail(f"{patient_bundle}: {e.message}" if "as-of" not in e.message else e.message)
    except FhirtrialError as e:  # a broken lab table: say so, no traceback
        click.echo(json.dumps(e.to_operation_outcome(), ensure_ascii=False), err=True)
        sys.exit(2)
    text = json.dumps(out, ensure_ascii=False, indent=None if compact else 2)
    click.echo(text)
    verdict = out["parameter"][0]["valueCode"]
    click.echo(f"{s.nct_id}: {verdict}", err=True)
    sys.exit(EXIT[verdict])
