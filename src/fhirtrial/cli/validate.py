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
from ..model import Finding

SOURCE_EXTENSION = "http://fhirtrial.org/fhir/StructureDefinition/source"
SUFFIXES = (".json", ".ndjson")


def _inputs(paths: tuple[str, ...]) -> Iterator[tuple[str, bytes | None, Path | None]]:
    """(label, whole-file bytes or None, path for NDJSON streaming) per input."""
    for p in paths:
        if p == "-":
            yield "<stdin>", sys.stdin.buffer.read(), None
            continue
        path = Path(p)
        files = sorted(f for f in path.rglob("*") if f.suffix in SUFFIXES and f.is_file()) \
            if path.is_dir() else [path]
        for f in files:
            if f.suffix == ".ndjson":
                yield str(f), None, f
            else:
                yield str(f), f.read_bytes(), None


def _units(label: str, data: bytes | None, ndjson: Path | None) -> Iterator[tuple[str, Any]]:
    """(label, text) per resource: one per JSON file, one per NDJSON line."""
    if ndjson is not None:
        with ndjson.open("rb") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    yield f"{label}:{n}", line
        return
    assert data is not None
    if label == "<stdin>":
        lines = [ln for ln in data.splitlines() if ln.strip()]
        if len(lines) > 1 and all(ln.lstrip().startswith(b"{") and ln.rstrip().endswith(b"}")
                                  for ln in lines):
            try:
                json.loads(data)
            except ValueError:  # not one document: NDJSON
                for n, ln in enumerate(data.splitlines(), 1):
                    if ln.strip():
                        yield f"{label}:{n}", ln
                return
    yield label, data


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

    Exit 0 when clean, 1 when a finding reaches --fail-on, 2 on usage errors.
    """
    from ..validate import LAYERS, get_validator, has_errors

    validator = get_validator(fhir_version.upper(), package)
    for layer, why in sorted(validator.unavailable.items()):
        if not layers or layer in layers:
            click.echo(f"note: {layer} layer reduced: {why}", err=True)
    chosen = layers or LAYERS
    show = progress if progress is not None else sys.stderr.isatty()
    results: list[tuple[str, list[Finding]]] = []
    failed = False
    counts = {"fatal": 0, "error": 0, "warning": 0, "information": 0}
    units = (u for item in _inputs(paths) for u in _units(*item))
    bar_cm = click.progressbar(units, label="validating", file=sys.stderr, show_pos=True) \
        if show else contextlib.nullcontext(units)
    n = 0
    with bar_cm as bar:
        for label, text in bar:
            n += 1
            findings = validator.findings(text, chosen)
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
                results.append((label, findings))
    if fmt == "json":
        click.echo(json.dumps(_json_output(results), indent=2, ensure_ascii=False))
    summary = ", ".join(f"{c} {k}{'s' if c != 1 else ''}" for k, c in counts.items() if c)
    click.echo(f"{n} input{'s' if n != 1 else ''} validated: {summary or 'no issues'}",
               err=True)
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
