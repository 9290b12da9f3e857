"""Layered FHIR validation → OperationOutcome.

``validate(resource)`` checks a resource or Bundle (dict, JSON text, or fhir.resources model)
with every layer available: JSON, structure, the official JSON schema, terminology, invariants
and Bundle rules. Types, cardinality, narrative rules and Bundle references need no package
(the fhir.resources models give the element definitions); the core package (``fhirtrial
packages install``) adds the JSON schema, the FHIRPath invariants and the full terminology.
It is found in the FHIR package cache and loaded once per process.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Sequence
from typing import Any

from ..errors import operation_outcome
from ..finding import Finding
from .validator import LAYERS, SEVERITY_RANK, Validator, get_validator


def validate_findings(resource: Any, *, fhir_version: str = "R5",
                      package: str | os.PathLike[str] | None = None,
                      layers: Sequence[str] = LAYERS) -> list[Finding]:
    """The findings for one resource or Bundle (empty when it is valid)."""
    return get_validator(fhir_version, package).findings(resource, layers)


def validate(resource: Any, *, fhir_version: str = "R5",
             package: str | os.PathLike[str] | None = None,
             layers: Sequence[str] = LAYERS) -> dict[str, Any]:
    """Validate a resource or Bundle → an OperationOutcome (dict).

    Without the core package, an information issue names what was not checked."""
    validator = get_validator(fhir_version, package)
    return operation_outcome(validator.findings(resource, layers) + validator.coverage(layers))


def coverage_line(fhir_versions: Sequence[str] = ("R5", "R4")) -> str:
    """One line saying what write validation covers with this set-up (``serve`` prints it)."""
    said: dict[str, list[str]] = {}
    for version in fhir_versions:
        v = get_validator(version)
        if v.package is None:
            what = ("types, cardinality, narrative, references and the project's required "
                    "codes; no core package, so no JSON schema, FHIRPath invariants or full "
                    "terminology (`fhirtrial packages install` adds them)")
        elif v.unavailable:
            what = f"all layers but the JSON schema ({v.package.label})"
        else:
            what = f"all layers ({v.package.label})"
        said.setdefault(what, []).append(version)
    return "write validation: " + "; ".join(f"{' and '.join(vs)}: {what}"
                                             for what, vs in said.items())


def has_errors(findings: Sequence[Finding], at_least: str = "error") -> bool:
    """Whether any finding is at or above a severity."""
    floor = SEVERITY_RANK[at_least]
    return any(SEVERITY_RANK.get(f.severity, 0) >= floor for f in findings)


__all__ = ["LAYERS", "Validator", "coverage_line", "get_validator", "has_errors", "validate",
           "validate_findings"]


class _CallableModule(types.ModuleType):
    """``fhirtrial.validate(resource)`` works even once this subpackage is imported, which
    makes ``fhirtrial.validate`` the module rather than the function."""

    def __call__(self, resource: Any, **kw: Any) -> dict[str, Any]:
        return validate(resource, **kw)


sys.modules[__name__].__class__ = _CallableModule
