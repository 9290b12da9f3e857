"""``fhirtrial convert``: registry records → FHIR Bundles."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import operation_outcome
from ..files import write_atomic
from ..jsonbytes import dumps_compact, loads
from ..model import Finding

FHIR_VERSIONS = ("R5", "R4")
BUNDLE_TYPES = ("collection", "transaction")


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
            return
        target = Path(out)
        in_the_way = next((p for p in (target.parent, *target.parent.parents)
                           if p.exists() and not p.is_dir()), None)
        if in_the_way is not None:
            raise click.UsageError(f"-o {out}: {in_the_way} is a file, not a directory")
        try:
            if out.endswith(".ndjson"):
                self.kind = "ndjson"
                if target.is_dir():
                    raise click.UsageError(f"-o {out}: is a directory, not a .ndjson file")
                target.parent.mkdir(parents=True, exist_ok=True)
                self._ndjson_tmp = target.with_name(f".{target.name}.partial")
                self._ndjson = self._ndjson_tmp.open("wb")
            elif out.endswith(".json"):
                self.kind = "file"
                if target.is_dir():
                    raise click.UsageError(f"-o {out}: is a directory, not a .json file")
            else:
                self.kind = "dir"
                if target.exists() and not target.is_dir():
                    raise click.UsageError(f"-o {out}: exists and is not a directory; give a "
                                           "DIR, FILE.json or FILE.ndjson")
                if not target.exists() and target.suffix and not out.endswith(("/", os.sep)):
                    # "-o single.txt" means a file: making it a directory would surprise
                    raise click.UsageError(
                        f"-o {out}: not a directory, .json or .ndjson name; give a DIR "
                        "(one DIR/<NCT id>.json per study, end it with / to create a "
                        "dotted name), FILE.json (one study) or FILE.ndjson")
                target.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise click.UsageError(f"-o {out}: cannot create: {e.strerror or e}") from None

    @property
    def compact(self) -> bool:
        """Whether Bundles come as one line (NDJSON): workers then write them so."""
        return self.kind == "ndjson"

    def add(self, nct_id: str, bundle_bytes: bytes) -> None:
        self.count += 1
        if self.kind == "dir":
            write_atomic(Path(self.out or ".") / f"{nct_id}.json", bundle_bytes + b"\n")
        elif self.kind == "ndjson":
            self._ndjson.write(bundle_bytes + b"\n")  # one line already (compact)
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
    return dumps_compact(loads(data))


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
@click.option("--validate", "validate", is_flag=True,
              help="Validate each Bundle with the layered validator (fhirtrial validate): a "
                   "Bundle with errors is not written and its record fails.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print warnings on stderr.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=os.cpu_count() or 1,
              show_default="the number of cores",
              help="Worker processes converting records in parallel (output order is kept).")
def convert_cmd(inputs: tuple[str, ...], out: str | None, fhir_version: str, bundle_type: str,
                outcome_path: str | None, validate: bool, quiet: bool, jobs: int) -> None:
    """Convert trial records into FHIR Bundles.

    INPUT is a file (v2 JSON, legacy XML, registry page text, NDJSON), a zip of those, a
    directory (every record in it), an NCT id (fetched from ClinicalTrials.gov, cached) or -
    (stdin). Records stream through --jobs worker processes; a progress line shows on a
    terminal. Exit 0 when every record converted, 1 when some failed (the others are still
    written), 2 on a usage error or when no record was found.

    \b
    fhirtrial convert fixtures/seed/NCT06534528.json
    fhirtrial convert NCT06534528
    fhirtrial convert AllPublicXML.zip -o bundles/ --jobs 4
    fhirtrial convert ../records/ -o bundles/ --fhir-version R4
    """
    from functools import partial

    from ..sources import registry_fetch
    from ..sources.bulk import (
        Progress,
        Summary,
        convert_unit,
        estimate_units,
        iter_units,
        ordered_map,
    )

    cores = os.cpu_count() or 1
    if jobs > 2 * cores:
        # a worker per core is all the work can use; thousands of forks would only exhaust
        # the machine (each process holds the lexicon and code tables)
        click.echo(f"note: --jobs {jobs} is more than this machine's {cores} cores can use; "
                   f"running {2 * cores}", err=True)
        jobs = 2 * cores
    sink = _Sink(out)
    summary = Summary()
    all_findings: list[Finding] = []
    progress = Progress()
    if progress.enabled:  # the total (for the ETA) costs a directory walk: only on a terminal
        progress.total = estimate_units(inputs)
    work = partial(convert_unit, fhir_version=fhir_version.upper(), bundle_type=bundle_type,
                   validate=validate, compact=sink.compact)
    try:
        for results in ordered_map(work, iter_units(inputs, fetch=registry_fetch,
                                                           lazy_zip=jobs > 1), jobs):
            for res in results:
                progress.step(failed=res.bundle is None)
                if res.bundle is None or res.nct_id is None:
                    msg = res.error or f"{res.name}: no study"
                    summary.failed.append((res.name, msg))
                    click.echo(f"error: {msg}", err=True)
                    all_findings.append(Finding("error", res.issue_code, msg))
                    continue
                sink.add(res.nct_id, res.bundle)
                summary.converted += 1
                if res.findings:
                    summary.with_warnings += 1
                    if not quiet:
                        _report(res.nct_id, res.findings)
                    all_findings.extend(
                        Finding(f.severity, f.code, f"{res.nct_id}: {f.message}", f.location)
                        for f in res.findings)
    except BaseException:
        progress.close()
        sink.abort()
        raise
    progress.close()
    if summary.converted == 0 and not summary.failed:
        sink.abort()
        click.echo(f"error: no trial records found in {', '.join(inputs)}", err=True)
        sys.exit(2)
    sink.close()
    if outcome_path:
        write_atomic(Path(outcome_path), json.dumps(operation_outcome(all_findings),
                                                    ensure_ascii=False, indent=2).encode() + b"\n")
    if summary.converted + len(summary.failed) > 1 or summary.failed:
        click.echo(summary.line(), err=True)
        for name, why in summary.failed if len(summary.failed) > 1 else []:
            click.echo(f"  failed: {name}: {why.removeprefix(name + ': ')}", err=True)
    if summary.failed:
        sys.exit(1)
