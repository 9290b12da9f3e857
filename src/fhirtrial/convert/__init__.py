"""Conversion of a Study to FHIR: the public API.

``convert_study`` is the one call the CLI, the server and push make; the FHIR version switch
lives here and nowhere else. Output is deterministic: the same Study gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import FhirtrialError, ValidationError
from ..jsonbytes import ORJSON_OPTS, dumps_compact, dumps_indented
from ..model import Finding, Study
from . import bundle as _bundle

SUPPORTED_VERSIONS = ("R5", "R4")


@dataclass(slots=True)
class Conversion:
    """A converted study: its Bundle and every finding (reading + conversion)."""

    nct_id: str
    bundle: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    #: orjson's compact bytes of ``bundle``, written for the size check (None when orjson
    #: refused it): :meth:`compact` reuses them rather than serialising the Bundle again
    orjson_bytes: bytes | None = field(default=None, repr=False)

    def compact(self) -> bytes:
        """The Bundle as one line, exactly ``jsonbytes.dumps_compact(self.bundle)``."""
        return dumps_compact(self.bundle, orjson_bytes=self.orjson_bytes)

    def indented(self) -> bytes:
        """The Bundle indented, exactly :func:`dumps` of it (checked on the compact bytes)."""
        return dumps_indented(self.bundle, orjson_bytes=self.orjson_bytes)


def convert_study(study: Study, *, fhir_version: str = "R5",
                  bundle_type: str = "collection") -> Conversion:
    """Convert one Study to a FHIR Bundle (``collection`` or ``transaction``)."""
    version = fhir_version.upper()
    if version not in SUPPORTED_VERSIONS:
        raise FhirtrialError(f"FHIR version {fhir_version!r} is not supported (supported: "
                             f"{', '.join(SUPPORTED_VERSIONS)})")
    from .r5 import build

    # The builders write R5 once; R4 is a writer over that Bundle (convert/r4), so every fact
    # the R5 Bundle holds reaches R4 as an element or a cross-version extension.
    resources, findings = build(study)
    bundle = _bundle.assemble(study.nct_id, resources, bundle_type)
    if version == "R4":
        from .r4 import to_r4

        bundle, more = to_r4(bundle, study=study)
        findings = [*findings, *more]
    raw = _check_string_sizes(study.nct_id, bundle)
    return Conversion(study.nct_id, bundle, [*study.findings, *findings], raw)


#: FHIR string.value maxLength (markdown inherits it); the narrative's xhtml has no limit
MAX_STRING = 1024 * 1024


def _check_string_sizes(nct_id: str, bundle: dict[str, Any]) -> bytes | None:
    """Refuse a Bundle carrying a string FHIR forbids (over 1 MB): no registry field is
    anywhere near that, so such a value is damage, and a Bundle holding it is invalid.
    Returns orjson's compact bytes of the Bundle (None where orjson refuses it)."""
    try:
        # only the length counts, so orjson's own bytes (not dumps_compact's check that they
        # are json's bytes, a scan of the whole document): they differ from json's only in
        # how a float is spelt, never in a string
        raw: bytes | None = orjson.dumps(bundle, option=ORJSON_OPTS)
    except TypeError:  # orjson refuses (big int, surrogate, depth): walk
        raw = None
    if raw is not None and len(raw) <= MAX_STRING:
        # no string can be longer (in characters) than the whole document is in UTF-8 bytes,
        # and orjson writes the whole document ten times faster than this walk visits it
        return raw
    stack: list[tuple[str, Any]] = [("Bundle", bundle)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            stack.extend((f"{path}.{k}", v) for k, v in node.items() if k != "div")
        elif isinstance(node, list):
            stack.extend((path, v) for v in node)
        elif isinstance(node, str) and len(node) > MAX_STRING:
            raise ValidationError(f"{nct_id}: {path} would be a string of {len(node)} "
                                  f"characters; FHIR strings may not exceed {MAX_STRING}",
                                  location=path)
    return raw


def dumps(resource: dict[str, Any]) -> bytes:
    """Deterministic JSON bytes: keys in FHIR order as built, 2-space indent, UTF-8, no final
    newline (the writer adds one); identical input → identical bytes. Exactly
    ``json.dumps(resource, ensure_ascii=False, indent=2)``, written by orjson
    (:mod:`fhirtrial.jsonbytes`, proven byte-identical in tests/test_jsonbytes.py)."""
    return dumps_indented(resource)


__all__ = ["SUPPORTED_VERSIONS", "Conversion", "convert_study", "dumps"]
