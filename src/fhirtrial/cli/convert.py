"""``fhirtrial convert``: registry records → FHIR Bundles."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from ..errors import FhirtrialError, operation_outcome
from ..model import Finding

FHIR_VERSIONS = ("R5", "R4")
BUNDLE_TYPES = ("collection", "transaction")


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so a reader never sees half of it (temp file in the same dir, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _Sink:
    """Where Bundles go: stdout, one file, one file per study in a directory, or NDJSON."""

    def __init__(self, out: str | None) -> None:
        self.out = out
        self.count = 0
        self._single: bytes | None = None
        self._ndjson: Any = None
        self._ndjson_tmp: Path | None = None
        if out is None or out == "-":
            self.kind = "stdout"
        elif out.endswith(".ndjson"):
            self.kind = "ndjson"
            target = Path(out)
            target.parent.mkdir(parents=True, exist_ok=True)
            self._ndjson_tmp = target.with_name(f".{target.name}.partial")
            self._ndjson = self._ndjson_tmp.open("wb")
        elif out.endswith(".json"):
            self.kind = "file"
        else:
            self.kind = "dir"
            Path(out).mkdir(parents=True, exist_ok=True)

    def add(self, nct_id: str, bundle_bytes: bytes) -> None:
        self.count += 1
        if self.kind == "dir":
            write_atomic(Path(self.out or ".") / f"{nct_id}.json", bundle_bytes + b"\n")
        elif self.kind == "ndjson":
            self._ndjson.write(_one_line(bundle_bytes) + b"\n")
        elif self.kind == "file":
            if self._single is not None:
                raise click.UsageError(f"-o {self.out}: more than one study read; give a "
                                       "directory or a .ndjson file for many studies")
            self._single = bundle_bytes
        else:
            # one study: the Bundle as it is; several: one Bundle per line (NDJSON)
            if self.count == 1:
                self._single = bundle_bytes
            else:
                if self._single is not None:
                    sys.stdout.buffer.write(_one_line(self._single) + b"\n")
                    self._single = None
                sys.stdout.buffer.write(_one_line(bundle_bytes) + b"\n")

    def abort(self) -> None:
        """Stop without publishing a partial single file or NDJSON stream."""
        if self._ndjson is not None:
            self._ndjson.close()
            assert self._ndjson_tmp is not None
            self._ndjson_tmp.unlink(missing_ok=True)
            self._ndjson = None
        self._single = None

    def close(self) -> None:
        if self.kind == "ndjson" and self._ndjson is not None:
            self._ndjson.close()
            assert self._ndjson_tmp is not None
            os.replace(self._ndjson_tmp, Path(self.out or ""))
        elif self.kind == "file" and self._single is not None:
            write_atomic(Path(self.out or ""), self._single + b"\n")
        elif self.kind == "stdout" and self._single is not None:
            sys.stdout.buffer.write(self._single + b"\n")
        sys.stdout.flush()


def _one_line(data: bytes) -> bytes:
    if b"\n" not in data:
        return data
    return json.dumps(json.loads(data), ensure_ascii=False, separators=(",", ":")).encode()


def _report(name: str, findings: list[Finding]) -> None:
    for f in findings:
        where = f" ({f.location})" if f.location else ""
        click.echo(f"{name}: {f.severity}: {f.message}{where}", err=True)


@click.command("convert")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("-o", "--output", "out", metavar="OUT",
              help="A DIR (one DIR/<NCT id>.json per study), FILE.json (one study) or "
                   "FILE.ndjson (one Bundle per line). Default: stdout.")
@click.option("--fhir-version", type=click.Choice(FHIR_VERSIONS, case_sensitive=False),
              default="R5", show_default=True, help="FHIR version to write.")
@click.option("--bundle-type", type=click.Choice(BUNDLE_TYPES), default="collection",
              show_default=True,
              help="transaction: entries carry conditional PUTs keyed on identifiers, so a "
                   "re-push updates instead of duplicating.")
@click.option("--outcome", "outcome_path", type=click.Path(dir_okay=False, writable=True),
              help="Also write every warning and error as one OperationOutcome to this file.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print warnings on stderr.")
def convert_cmd(inputs: tuple[str, ...], out: str | None, fhir_version: str, bundle_type: str,
                outcome_path: str | None, quiet: bool) -> None:
    """Convert trial records into FHIR Bundles.

    INPUT is a file, a directory (every record in it) or - (stdin). Exit 0 when every record
    converted, 1 when some failed (the others are still written), 2 on a usage error.

    \b
    fhirtrial convert fixtures/seed/NCT06534528.json
    fhirtrial convert ../records/ -o bundles/ --fhir-version R4
    """
    from ..convert import convert_study, dumps
    from ..sources import read_inputs

    sink = _Sink(out)
    failed: list[tuple[str, str]] = []
    all_findings: list[Finding] = []
    warned = 0
    try:
        for rec in read_inputs(inputs):
            if rec.error is not None or rec.study is None:
                msg = rec.error.message if rec.error else f"{rec.name}: no study"
                failed.append((rec.name, msg))
                click.echo(f"error: {msg}", err=True)
                all_findings.append(Finding("error", "structure", msg))
                continue
            try:
                conv = convert_study(rec.study, fhir_version=fhir_version.upper(),
                                     bundle_type=bundle_type)
            except FhirtrialError as e:
                msg = f"{rec.name}: {rec.study.nct_id}: {e.message}"
                failed.append((rec.name, msg))
                click.echo(f"error: {msg}", err=True)
                all_findings.append(Finding("error", e.issue_code, msg))
                continue
            sink.add(conv.nct_id, dumps(conv.bundle))
            if conv.findings:
                warned += 1
                if not quiet:
                    _report(conv.nct_id, conv.findings)
                all_findings.extend(
                    Finding(f.severity, f.code, f"{conv.nct_id}: {f.message}", f.location)
                    for f in conv.findings)
    except BaseException:
        sink.abort()
        raise
    sink.close()
    if outcome_path:
        write_atomic(Path(outcome_path), json.dumps(operation_outcome(all_findings),
                                                    ensure_ascii=False, indent=2).encode() + b"\n")
    if len(failed) + sink.count > 1 or failed:
        click.echo(f"converted {sink.count}, with warnings {warned}, failed {len(failed)}",
                   err=True)
    if failed:
        sys.exit(1)
