"""Push trials to an external FHIR server: idempotent, resumable, safe under faults.

::

    report = push(["fixtures/"], "https://fhir.example.org/r4", fhir_version="auto")
    # GET  /metadata                                 → FHIR version and strategy
    # POST /  (batch of GET ResearchStudy?identifier=http://clinicaltrials.gov|NCT…) → compare
    # POST /  (transaction of PUT Type?identifier=…) → only what is new or changed

Layers: :mod:`.http` (session, retries, typed errors), :mod:`.auth` (bearer, basic, SMART
backend services), :mod:`.units` (Bundle → resources keyed on identifiers),
:mod:`.strategies` (plan, compare, write), :mod:`.journal` (resume), :mod:`.report`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import FhirtrialError, SourceError, describe_json_error
from ..files import InputTooLarge, read_input
from ..sources import MAX_INPUT_BYTES, parse_bytes
from .http import Auth, FhirClient, RetryPolicy
from .journal import Journal
from .report import PushReport
from .strategies import STRATEGIES, Pusher, UnitResult
from .units import Unit, unit_from_bundle

__all__ = ["FhirClient", "PushReport", "RetryPolicy", "capabilities_choice", "load_units",
           "push"]

VERSIONS = {"4.0": "R4", "4.3": "R4", "5.0": "R5"}


def capabilities_choice(cs: dict[str, Any]) -> tuple[str | None, str]:
    """(FHIR version, best strategy) a CapabilityStatement announces."""
    version = VERSIONS.get(".".join(str(cs.get("fhirVersion", "")).split(".")[:2]))
    codes: set[str] = set()
    for rest in cs.get("rest") or []:
        if rest.get("mode", "server") == "server":
            codes |= {i.get("code") for i in rest.get("interaction") or []}
    strategy = next((s for s in ("transaction", "batch") if s in codes), "single")
    return version, strategy


def _expand(inputs: Iterable[str]) -> Iterator[Path]:
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        else:
            yield p


def load_units(inputs: Iterable[str], fhir_version: str) -> Iterator[Unit | UnitResult]:
    """Every study of the inputs as a push unit (a Bundle as it is; a registry record converted
    to ``fhir_version``), or a failed result saying why it cannot be pushed."""
    for path in _expand(inputs):
        name = str(path)
        try:
            if not path.exists():
                raise SourceError(f"{name}: no such file")
            if path.stat().st_size > MAX_INPUT_BYTES:
                raise SourceError(f"{name}: larger than {MAX_INPUT_BYTES} bytes")
            # capped while reading: a device or FIFO has no size to check first
            data = read_input(path)
            if path.suffix == ".ndjson":
                yield from _ndjson_units(data, name)
                continue
            doc = _json_or_none(data)
            if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
                yield unit_from_bundle(doc, name)
                continue
            if isinstance(doc, dict) and isinstance(doc.get("resourceType"), str):
                raise SourceError(f"{name}: a {doc['resourceType']} resource; push takes "
                                  "Bundles or registry records")
            records = list(parse_bytes(data, name))
        except SourceError as e:
            yield UnitResult(name, "failed", name, error=e.message)
            continue
        except OSError as e:
            yield UnitResult(name, "failed", name, error=f"{name}: cannot read: {e.strerror}")
            continue
        except InputTooLarge as e:
            yield UnitResult(name, "failed", name, error=str(e))
            continue
        for rec in records:
            if rec.error is not None or rec.study is None:
                msg = rec.error.message if rec.error else "no study"
                yield UnitResult(rec.name, "failed", rec.name, error=msg)
                continue
            try:
                yield unit_from_bundle(_convert(rec.study, fhir_version), rec.name)
            except FhirtrialError as e:
                yield UnitResult(rec.name, "failed", rec.name, error=e.message)


def _ndjson_units(data: bytes, name: str) -> Iterator[Unit | UnitResult]:
    """One Bundle per line (what ``convert -o x.ndjson`` writes)."""
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name}:{n}"
        try:
            doc = json.loads(line)
            yield unit_from_bundle(doc if isinstance(doc, dict) else {}, where)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            yield UnitResult(where, "failed", where,
                             error=f"{where}: not JSON: {describe_json_error(e)}")
        except SourceError as e:
            yield UnitResult(where, "failed", where, error=e.message)


def _json_or_none(data: bytes) -> Any:
    head = data.lstrip()[:1]
    if head not in (b"{", b"["):
        return None
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return None


def _convert(study: Any, fhir_version: str) -> dict[str, Any]:
    try:
        from ..convert import convert_study  # type: ignore[attr-defined]
    except ImportError:
        raise SourceError("registry records need the converter (fhirtrial.convert."
                          "convert_study), which this installation lacks; push Bundles "
                          "instead") from None
    return convert_study(study, fhir_version=fhir_version,  # type: ignore[no-any-return]
                         bundle_type="transaction").bundle


def push(inputs: Iterable[str], server: str, *, fhir_version: str = "auto",
         strategy: str = "auto", auth: Auth | None = None, dry_run: bool = False,
         journal: Path | None = None, chunk_size: int = 100,
         timeout: tuple[float, float] = (5.0, 60.0), retry: RetryPolicy | None = None,
         deadline: float | None = None, client: FhirClient | None = None,
         progress: Callable[[UnitResult], None] = lambda _r: None,
         log: Callable[[str], None] = lambda _m: None) -> PushReport:
    """Push every study of ``inputs`` to ``server``; the report says what happened to each."""
    client = client or FhirClient(server, auth=auth, timeout=timeout, retry=retry,
                                  deadline=deadline)
    notes: list[str] = []
    if fhir_version == "auto" or strategy == "auto":
        announced_version, announced_strategy = capabilities_choice(client.capabilities())
        if fhir_version == "auto":
            if announced_version is None:
                raise FhirtrialError(f"{server}/metadata names no FHIR version fhirtrial "
                                     "writes (R4, R5); pass --fhir-version")
            fhir_version = announced_version
        if strategy == "auto":
            strategy = announced_strategy
        notes.append(f"server announces FHIR {announced_version or '?'}; "
                     f"strategy {strategy}")
    if strategy not in STRATEGIES:
        raise FhirtrialError(f"unknown strategy {strategy!r}")
    report = PushReport(server, fhir_version, strategy, notes=notes)

    def note(msg: str) -> None:
        report.notes.append(msg)
        log(msg)

    pusher = Pusher(client, strategy=strategy, chunk_size=chunk_size, dry_run=dry_run, log=note)
    jrn = Journal(journal, server=server, fhir_version=fhir_version) if journal else None
    first_seen: dict[str, tuple[str, str]] = {}  # study → (source, digest) of its first record
    try:
        for unit in load_units(inputs, fhir_version):
            if isinstance(unit, UnitResult):
                result = unit
            elif unit.name in first_seen:
                # a study given twice (JSON and XML of one trial, two downloads): pushing both
                # would make each re-run rewrite the study back and forth
                source, digest = first_seen[unit.name]
                result = UnitResult(unit.name, "skipped", unit.source, notes=[
                    f"{unit.name} was already pushed in this run from {source}" + (
                        "" if digest == unit.digest else
                        "; this record differs from it and was not pushed (give one record "
                        "per study)")])
            elif jrn is not None and jrn.confirmed(unit.name, unit.digest):
                first_seen[unit.name] = (unit.source, unit.digest)
                pusher.settle(unit)
                result = UnitResult(unit.name, "skipped", unit.source,
                                    notes=["confirmed by an earlier run (journal)"])
            else:
                result = pusher.push_unit(unit)
                if result.status != "failed":
                    first_seen[unit.name] = (unit.source, unit.digest)
                if jrn is not None and not dry_run and result.status in (
                        "created", "updated", "unchanged"):
                    jrn.record(unit.name, unit.digest, result.status)
            report.results.append(result)
            progress(result)
    finally:
        if jrn is not None:
            jrn.close()
    report.strategy = pusher.strategy
    return report
