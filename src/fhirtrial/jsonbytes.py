"""Fast JSON bytes, identical to the standard library's: orjson where its output is the same,
``json`` where it might not be.

fhirtrial's output format is ``json.dumps(doc, ensure_ascii=False, indent=2)`` (compact:
``separators=(",", ":")``) encoded as UTF-8, and goldens, push change detection and users'
diffs depend on those exact bytes. orjson writes the same bytes for the same document
(insertion key order, the same string escapes, ``[]``/``{}`` for empty containers, no final
newline) except where it cannot or writes differently:

- floats: orjson writes ``0.00001`` and ``1e16`` where Python's ``repr`` writes ``1e-05`` and
  ``1e+16``. The two agree on the digits (both shortest round-trip) and differ only in
  notation, so orjson's output with an exponent or a fixed-point number under 1e-4 in it
  goes to ``json``;
- NaN and infinities: orjson writes ``null``; any ``null`` value in the output sends it to
  ``json`` (FHIR has no nulls, so this never costs anything on real output);
- integers beyond 64 bits, non-string keys, lone surrogates, nesting deeper than 255: orjson
  raises, and ``json`` gives its own answer (or its own error).

Reading: ``loads`` is orjson's parser with ``json.loads`` as the fallback for anything orjson
refuses (a BOM, UTF-16, ``NaN``, lone surrogate escapes) or reads differently (integers
beyond 64 bits, which orjson makes floats: any run of 19 digits goes to ``json``), so a caller sees
exactly what ``json.loads`` would give, errors included. Both give equal values for every
document both accept (correctly rounded floats, last duplicate key wins).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

#: refuse what json.dumps refuses rather than letting orjson serialise it
_OPTS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
ORJSON_OPTS = _OPTS
#: where orjson's bytes may differ from json's, as a token ends (before ``,``, a newline,
#: ``]`` or ``}``): an exponent (orjson ``1e16``, ``1e-7``; repr ``1e+16``, ``1e-07``), a
#: fixed-point float under 1e-4 (orjson ``0.00001``; repr ``1e-05``) and ``null`` (which
#: orjson also writes for NaN and infinities). The same bytes inside a string only cost a
#: needless fall-back.
#:
#: The three patterns are searched in one pass, over a copy of the bytes with every token end
#: made ``\x00`` and every digit but ``0`` made ``1`` (orjson escapes a NUL in a string, so a
#: ``\x00`` is a token end and nothing else), reversed: each pattern then starts with the
#: token end, which is much rarer than the ``e`` or ``0`` they start with forwards, so the
#: regular expression engine tries a match only at token ends instead of at every ``e`` of
#: the text (a Bundle's hex ids put a digit before an ``e`` in every one, so the old
#: digit-then-``e`` prefilter never spared the search): half the time of the three scans.
#: Forwards these are ``e[-+]?[0-9]+$``, ``0\.0000[0-9]*$`` and ``null$`` ($: a token end).
_ENDS = bytes.maketrans(b"0123456789,\n]}", b"0111111111\x00\x00\x00\x00")
_DIFFERS_REVERSED = re.compile(rb"\x00(?:[01]+[-+]?e|[01]*0000\.0|llun)")
#: every ASCII digit to ``0``: a pattern over digits becomes a literal that ``bytes.__contains__``
#: finds at memory speed, where a regular expression ``\d{19}`` (no literal to skip ahead by)
#: tries a match at every position
_DIGITS_TO_0 = bytes.maketrans(b"0123456789", b"0" * 10)


def _same_as_json(out: bytes) -> bool:
    """Whether orjson's ``out`` is certainly what ``json.dumps`` writes for the same value."""
    if out[:1] not in (b"{", b"["):
        return False  # a bare scalar: let json spell it
    return _DIFFERS_REVERSED.search(out.translate(_ENDS)[::-1]) is None


def dumps_indented(doc: Any, *, orjson_bytes: bytes | None = None) -> bytes:
    """``json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")``, faster.

    ``orjson_bytes``: ``orjson.dumps(doc, option=ORJSON_OPTS)`` when the caller has it already
    (the converter's size check writes them). Whether orjson spells every number as json does
    is then read on those compact bytes, a third shorter than the indented ones: the two
    forms spell every scalar alike and differ only in whitespace."""
    if orjson_bytes is not None:
        if _same_as_json(orjson_bytes):
            return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | _OPTS)
        return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")
    try:
        out = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | _OPTS)
    except TypeError:  # orjson.JSONEncodeError: big int, non-str key, surrogate, depth
        out = None
    if out is None or not _same_as_json(out):
        return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")
    return out


def dumps_compact(doc: Any, *, orjson_bytes: bytes | None = None) -> bytes:
    """``json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")``, faster.

    ``orjson_bytes``: ``orjson.dumps(doc, option=ORJSON_OPTS)`` when the caller has it
    already (the converter's size check writes them), so the document is not walked twice."""
    out = orjson_bytes
    if out is None:
        try:
            out = orjson.dumps(doc, option=_OPTS)
        except TypeError:
            out = None
    if out is None or not _same_as_json(out):
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return out


def loads(data: bytes | str) -> Any:
    """``json.loads(data)``, faster: the same value, or the same ``JSONDecodeError``."""
    # A JSON number is ASCII digits, so a run of 19 ASCII digits is what to look for (the
    # Unicode digits a str pattern's \d also takes can only be inside strings); found at
    # memory speed in the bytes with every digit folded to 0 (see _DIGITS_TO_0). A str is
    # encoded for it (surrogatepass: a lone surrogate escape is json's to judge).
    if isinstance(data, str):
        raw: bytes | bytearray = data.encode("utf-8", "surrogatepass")
    elif isinstance(data, (bytes, bytearray)):
        raw = data
    else:  # memoryview and the like
        raw = bytes(data)
    long_digits = b"0" * 19 in raw.translate(_DIGITS_TO_0)
    if not long_digits:
        try:
            return orjson.loads(raw)  # what it would encode a str to itself
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


__all__ = ["dumps_compact", "dumps_indented", "loads"]


def finite_number(v: Any) -> float | None:
    """A JSON number as a finite float; None for what is not one (a bool, NaN, ±inf, an
    integer beyond the float range, which float() refuses with OverflowError)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None
