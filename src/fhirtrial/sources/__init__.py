"""Readers: every form a trial record comes in → the source-neutral :class:`~fhirtrial.model.Study`.

``read_inputs`` is the one entry point the CLI, the server loader and push use: it expands
directories, zips and NDJSON streams, fetches NCT ids from the registry, detects each record's
format and yields one :class:`Record` per study, carrying either the Study or the error that
stopped that one record (a batch never stops on one record).

Formats detected from the bytes (never from the file name alone):

=====================  ====================================================================
ClinicalTrials.gov v2   a JSON study object, an API page ``{"studies": […]}`` or an array
legacy XML              a ``<clinical_study>`` document (parsed safely: no DTD, no entities)
registry page text      text with an ``NCT ID: NCT…`` line near the top
zip                     every member is a unit (as the registry's bulk download ships)
NDJSON                  one study object per line (``.ndjson``/``.jsonl`` or sniffed)
NCT id                  ``NCT06534528`` where no file of that name exists: fetched (cached)
=====================  ====================================================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import jsonbytes
from ..errors import SourceError, describe_json_error
from .bulk import MAX_INPUT_BYTES, Unit, iter_units

if TYPE_CHECKING:  # the Study model only once a reader runs
    from ..model import Study

__all__ = ["MAX_INPUT_BYTES", "Record", "parse_bytes", "parse_unit", "read_inputs"]

#: the readers, imported on first use: ``fhirtrial validate`` reads its inputs through
#: :mod:`.bulk` and never needs them (the XML reader and its tables: a third of a second)
_READERS = ("ctgov_json", "ctgov_xml", "pagetext")


def __getattr__(name: str) -> Any:
    if name in _READERS:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

FORMATS_HINT = ("expected ClinicalTrials.gov v2 JSON, legacy <clinical_study> XML, registry "
                "page text, a zip or NDJSON of those, or an NCT id")


@dataclass(slots=True)
class Record:
    """One study read from an input, or the reason it could not be read."""

    name: str
    study: Study | None = None
    error: SourceError | None = None


def parse_bytes(data: bytes, name: str) -> Iterator[Record]:
    """Detect the format of one input's bytes and yield its studies.

    Raises SourceError when the input as a whole cannot be read; a bad study inside a
    readable array or page is yielded as a Record carrying its error.
    """
    from . import ctgov_xml, pagetext

    if data.startswith(b"PK\x03\x04"):
        raise SourceError(f"{name}: a zip archive; give it as a file path so its members "
                          "can be read one by one")
    text = _decode(data, name)
    stripped = text.lstrip()
    if not stripped:
        raise SourceError(f"{name}: empty input")
    if stripped[0] in "[{":
        # orjson reads the bytes as they came (valid UTF-8: _decode said so) rather than
        # the text encoded back; with a BOM, the text (json reads it without the BOM)
        yield from _parse_json(text, name, text if data.startswith(b"\xef\xbb\xbf") else data)
        return
    if stripped[0] == "<":
        yield Record(name, study=ctgov_xml.read_xml(data, name))
        return
    if pagetext.looks_like_page_text(text):
        yield Record(name, study=pagetext.read_page_text(text, name))
        return
    raise SourceError(f"{name}: not a recognised trial record format ({FORMATS_HINT})")


def _parse_json(text: str, name: str, raw: bytes | str | None = None) -> Iterator[Record]:
    from . import ctgov_json

    try:
        doc = jsonbytes.loads(text if raw is None else raw)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":
            # several JSON values: NDJSON given where one record was expected (stdin, -)
            yield from _parse_ndjson_text(text, name)
            return
        raise SourceError(f"{name}: malformed JSON: {describe_json_error(e)}") from None
    except RecursionError:
        raise SourceError(f"{name}: JSON nested too deeply to be a trial record") from None
    if not ctgov_json.looks_like_v2(doc):
        raise SourceError(f"{name}: JSON is not a ClinicalTrials.gov v2 study, page or array "
                          "(no protocolSection)")
    single = isinstance(doc, dict) and "protocolSection" in doc
    escapes = _SURROGATE_ESCAPE.search(text) is not None  # once, not once per study
    for i, obj in enumerate(ctgov_json.iter_study_objects(doc, name)):
        rec_name = name if single else f"{name}[{i}]"
        replaced = 0
        if escapes:
            obj, replaced = _replace_lone_surrogates(obj)
        try:
            study = ctgov_json.read_study(obj, rec_name)
        except SourceError as e:
            yield Record(rec_name, error=e)
            continue
        if replaced:
            study.warn("value", f"{rec_name}: {replaced} text value(s) held an escaped lone "
                                "surrogate (\\uD800-\\uDFFF), which is not a character; "
                                "it was replaced by U+FFFD")
        yield Record(rec_name, study=study)


#: JSON's \uD800-\uDFFF escapes: json.loads pairs valid ones and leaves a lone one in the
#: string, where it cannot be written as UTF-8 (or validated as FHIR) later
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_lone_surrogates(doc: Any) -> tuple[Any, int]:
    """A copy of a parsed JSON document with lone surrogates replaced by U+FFFD, and how
    many strings changed (iterative: the document may be deeply nested)."""
    count = 0

    def fix(value: object) -> object:
        nonlocal count
        if isinstance(value, str) and _LONE_SURROGATE.search(value):
            count += 1
            return _LONE_SURROGATE.sub("\ufffd", value)
        return value

    root: list[Any] = [doc]
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for k, v in items:
            if isinstance(v, dict):
                v = {fix(kk): vv for kk, vv in v.items()}
                stack.append(v)
            elif isinstance(v, list):
                v = list(v)
                stack.append(v)
            node[k] = fix(v)
    return root[0], count


def _parse_ndjson_text(text: str, name: str) -> Iterator[Record]:
    for no, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield from parse_unit(Unit(f"{name}:{no}", line.encode()))


def parse_unit(unit: Unit) -> Iterator[Record]:
    """The Records of one unit (its read error, a detection error, or its studies)."""
    if unit.error is not None or unit.data is None:
        yield Record(unit.name, error=unit.error or SourceError(f"{unit.name}: no data"))
        return
    try:
        yield from parse_bytes(unit.data, unit.name)
    except SourceError as e:
        yield Record(unit.name, error=e)


def _decode(data: bytes, name: str) -> str:
    if b"\x00" in data[:4096]:
        raise SourceError(f"{name}: binary data, not a trial record")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SourceError(f"{name}: not UTF-8 text (byte {e.start})") from None


def registry_fetch(nct_id: str) -> bytes:
    """The study's v2 JSON bytes from the on-disk cache, or fetched from the registry."""
    from .registry import Registry

    return json.dumps(Registry().get_study(nct_id), ensure_ascii=False).encode()


def read_inputs(inputs: Iterable[str], *,
                fetch: Callable[[str], bytes] | None = registry_fetch) -> Iterator[Record]:
    """Yield a Record for every study in the given files, directories, zips, NDJSON files,
    ``-`` (stdin) or NCT ids (fetched through the registry cache)."""
    for unit in iter_units(inputs, fetch=fetch):
        yield from parse_unit(unit)
