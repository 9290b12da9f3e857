"""``fhirtrial validate`` and ``fhirtrial packages``: thin commands over fhirtrial.validate."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ..errors import operation_outcome
from ..finding import Finding

SOURCE_EXTENSION = "http://fhirtrial.org/fhir/StructureDefinition/source"
SUFFIXES = (".json", ".ndjson")


def _units(paths: tuple[str, ...]) -> Iterator[tuple[str, bytes | None, str | None]]:
    """(label, text, why unreadable) per resource: one per JSON file, one per NDJSON line.

    Reading goes through the bulk readers, so the 64 MiB input cap holds for every kind of
    input (files, stdin, FIFOs, devices, zip members, NDJSON lines). A directory contributes
    its .json and .ndjson files; the others are named on stderr, never skipped silently."""
    from ..sources.bulk import iter_file, iter_stdin

    for p in paths:
        if p == "-":
            units = iter_stdin()
        else:
            path = Path(p)
            if path.is_dir():
                every = sorted(f for f in path.rglob("*") if f.is_file()
                               and not any(part.startswith(".")
                                           for part in f.relative_to(path).parts))
                files = [f for f in every if f.suffix in SUFFIXES]
                skipped = [f for f in every if f.suffix not in SUFFIXES]
                if skipped:
                    shown = ", ".join(str(f.relative_to(path)) for f in skipped[:5])
                    more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
                    click.echo(f"note: {p}: {len(skipped)} file{'s' if len(skipped) != 1 else ''}"
                               f" not validated (not .json or .ndjson): {shown}{more}", err=True)
                units = (u for f in files for u in iter_file(f))
            else:
                units = iter_file(path)
        for unit in units:
            if unit.error is not None:
                yield unit.name, None, unit.error.message
            else:
                yield unit.name, unit.data, None


@click.command("validate")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, allow_dash=True, dir_okay=True))
@click.option("--fhir-version", type=click.Choice(["R5", "R4"], case_sensitive=False),
              default="R5", show_default=True, help="FHIR version to validate against.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text lines, or OperationOutcome JSON (a Bundle of them "
              "for several inputs).")
@click.option("--fail-on", type=click.Choice(["error", "warning"]), default="error",
              show_default=True, help="Exit 1 when a finding is at or above this severity.")
@click.option("--package", "package", type=click.Path(exists=True, file_okay=False),
              help="Core package folder (default: the FHIR package cache, "
              "~/.fhir/packages or $FHIRTRIAL_FHIR_PACKAGES).")
@click.option("--layer", "layers", multiple=True,
              type=click.Choice(["json", "structure", "schema", "terminology", "invariants",
                                 "bundle"]), help="Run only these layers (repeatable).")
@click.option("--info", "show_info", is_flag=True,
              help="Also print information-level findings (best-practice advice) as text.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
def validate_cmd(paths: tuple[str, ...], fhir_version: str, fmt: str, fail_on: str,
                 package: str | None, layers: tuple[str, ...], show_info: bool,
                 progress: bool | None) -> None:
    """Validate FHIR resources and Bundles (files, directories, NDJSON, or - for stdin).

    Exit 0 when clean, 1 when a finding reaches --fail-on, 2 on usage errors (and when no
    input was found: nothing was checked).
    """
    from ..packages import PackageError
    from ..validate import LAYERS, get_validator, has_errors

    try:
        validator = get_validator(fhir_version.upper(), package)
    except PackageError as exc:  # a folder that is no package, a damaged package cache
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    chosen = layers or LAYERS
    coverage = validator.coverage(chosen)
    show = progress if progress is not None else sys.stderr.isatty()
    results: list[tuple[str, list[Finding]]] = []
    failed = False
    counts = {"fatal": 0, "error": 0, "warning": 0, "information": 0}
    units = _units(paths)
    bar_cm = click.progressbar(units, label="validating", file=sys.stderr, show_pos=True) \
        if show else contextlib.nullcontext(units)
    n = 0
    with bar_cm as bar:
        for label, text, unreadable in bar:
            n += 1
            findings = validator.findings(text, chosen) if unreadable is None else [
                Finding("fatal", "too-costly" if "larger than" in unreadable else "exception",
                        unreadable.removeprefix(label + ": "), None)]
            failed = failed or has_errors(findings, fail_on)
            for f in findings:
                counts[f.severity] = counts.get(f.severity, 0) + 1
            if fmt == "text":
                for f in findings:
                    if f.severity == "information" and not show_info:
                        continue
                    click.echo(f"{label}: {f.location or '-'}: {f.severity}: [{f.code}] "
                               f"{f.message}")
            else:
                results.append((label, findings + coverage))
    if n == 0:
        # nothing read is nothing checked: not "no issues"
        click.echo(f"error: no FHIR JSON found in {', '.join(paths)}", err=True)
        sys.exit(2)
    if fmt == "json":
        click.echo(json.dumps(_json_output(results), indent=2, ensure_ascii=False))
    summary = ", ".join(f"{c} {k}{'s' if c != 1 else ''}" for k, c in counts.items() if c)
    gap = validator.not_checked(chosen)
    click.echo(f"{n} input{'s' if n != 1 else ''} validated: {summary or 'no issues'}"
               + (f"; {gap}" if gap else ""), err=True)
    sys.exit(1 if failed else 0)


def _json_output(results: list[tuple[str, list[Finding]]]) -> dict[str, Any]:
    def oo(label: str, findings: list[Finding]) -> dict[str, Any]:
        out = operation_outcome(findings)
        return {"resourceType": "OperationOutcome",
                "extension": [{"url": SOURCE_EXTENSION, "valueString": label}],
                "issue": out["issue"]}

    if len(results) == 1:
        return oo(*results[0])
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": oo(label, f)} for label, f in results]}


@click.group("packages")
def packages_cmd() -> None:
    """The FHIR package cache (~/.fhir/packages): install core packages for validation."""


@packages_cmd.command("install")
@click.argument("sources", nargs=-1, required=True)
@click.option("--cache", type=click.Path(file_okay=False),
              help="Package cache folder (default ~/.fhir/packages or $FHIRTRIAL_FHIR_PACKAGES).")
def install_cmd(sources: tuple[str, ...], cache: str | None) -> None:
    """Install packages from .tgz files or NAME@VERSION (fetched with `npm pack`).

    Example: fhirtrial packages install hl7.fhir.r5.core@5.0.0
    """
    from ..packages import PackageError, install

    for source in sources:
        try:
            folder = install(source, cache)
        except PackageError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)
        click.echo(str(folder))
