"""Readers: every form a trial record comes in → the source-neutral :class:`~fhirtrial.model.Study`.

``read_inputs`` is the one entry point the CLI, the server loader and push use: it expands
directories, detects each input's format and yields one :class:`Record` per study, carrying
either the Study or the error that stopped that one record (a batch never stops on one record).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError
from ..model import Study
from . import ctgov_json

#: largest single input read into memory (a study record is well under 5 MB)
MAX_INPUT_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class Record:
    """One study read from an input, or the reason it could not be read."""

    name: str
    study: Study | None = None
    error: SourceError | None = None


def parse_bytes(data: bytes, name: str) -> Iterator[Record]:
    """Detect the format of one input's bytes and yield its studies."""
    text = _decode(data, name)
    stripped = text.lstrip()
    if not stripped:
        raise SourceError(f"{name}: empty input")
    if stripped[0] in "[{":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise SourceError(f"{name}: malformed JSON at line {e.lineno} column {e.colno}: "
                              f"{e.msg}") from None
        if not ctgov_json.looks_like_v2(doc):
            raise SourceError(f"{name}: JSON is not a ClinicalTrials.gov v2 study, page or array")
        for i, obj in enumerate(ctgov_json.iter_study_objects(doc, name)):
            single = isinstance(doc, dict) and "protocolSection" in doc
            rec_name = name if single else f"{name}[{i}]"
            try:
                yield Record(rec_name, study=ctgov_json.read_study(obj, rec_name))
            except SourceError as e:
                yield Record(rec_name, error=e)
        return
    raise SourceError(f"{name}: not a recognised trial record format")


def _decode(data: bytes, name: str) -> str:
    if b"\x00" in data[:4096]:
        raise SourceError(f"{name}: binary data, not a trial record")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SourceError(f"{name}: not UTF-8 text (byte {e.start})") from None


def _expand(inputs: Iterable[str]) -> Iterator[str | Path]:
    for item in inputs:
        if item == "-":
            yield "-"
            continue
        p = Path(item)
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        else:
            yield p


def read_inputs(inputs: Iterable[str]) -> Iterator[Record]:
    """Yield a Record for every study in the given files, directories or ``-`` (stdin)."""
    for src in _expand(inputs):
        name = "<stdin>" if src == "-" else str(src)
        try:
            if src == "-":
                data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
            else:
                path = Path(src)
                if not path.exists():
                    raise SourceError(f"{name}: no such file or directory")
                if path.stat().st_size > MAX_INPUT_BYTES:
                    raise SourceError(f"{name}: larger than {MAX_INPUT_BYTES} bytes")
                data = path.read_bytes()
            if len(data) > MAX_INPUT_BYTES:
                raise SourceError(f"{name}: larger than {MAX_INPUT_BYTES} bytes")
            yield from parse_bytes(data, name)
        except SourceError as e:
            yield Record(name, error=e)
        except OSError as e:
            yield Record(name, error=SourceError(f"{name}: cannot read: {e.strerror}"))
