"""Write validation behind one function: fhirtrial's own validator when it is installed
(``fhirtrial.validate.validate``), else fhir.resources model validation (structure and types)."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from ..model import Finding

_PYDANTIC_TO_ISSUE = {
    "extra_forbidden": "structure",
    "missing": "required",
    "string_type": "value",
    "int_type": "value",
    "bool_type": "value",
    "value_error": "value",
    "string_pattern_mismatch": "value",
}


@cache
def _model_class(fhir_version: str, rtype: str) -> Any:
    mod = importlib.import_module("fhir.resources.R4B" if fhir_version == "R4"
                                  else "fhir.resources")
    try:
        return mod.get_fhir_model_class(rtype)
    except (KeyError, ValueError, AttributeError, ImportError, LookupError):
        return None


def _project_validator() -> Any:
    try:
        mod = importlib.import_module("fhirtrial.validate")
    except ImportError:
        return None
    fn = getattr(mod, "validate", None)
    return fn if callable(fn) else None


def known_type(fhir_version: str, rtype: str) -> bool:
    """Is ``rtype`` a resource type of that FHIR version?"""
    return _model_class(fhir_version, rtype) is not None


def validate_resource(fhir_version: str, resource: dict[str, Any]) -> list[Finding]:
    """Error findings for one resource about to be written ([] = acceptable)."""
    rtype = resource.get("resourceType")
    project = _project_validator()
    if project is not None:
        try:
            outcome = project(resource, fhir_version=fhir_version)
        except TypeError:  # a validator without the version keyword
            outcome = project(resource)
        return [Finding(i.get("severity", "error"), i.get("code", "invalid"),
                        i.get("diagnostics", ""), (i.get("expression") or [None])[0])
                for i in (outcome or {}).get("issue", [])
                if i.get("severity") in ("error", "fatal")]
    model = _model_class(fhir_version, str(rtype))
    if model is None:
        return [Finding("error", "not-supported", f"Unknown resource type {rtype!r}",
                        "resourceType")]
    try:
        model.model_validate(resource)
    except Exception as e:  # pydantic.ValidationError, or a model's own ValueError
        errors = getattr(e, "errors", None)
        if not callable(errors):
            return [Finding("error", "invalid", str(e), rtype)]
        out = []
        for err in errors()[:50]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
            out.append(Finding("error", _PYDANTIC_TO_ISSUE.get(err.get("type", ""), "invalid"),
                               f"{err.get('msg')}", f"{rtype}.{loc}" if loc else rtype))
        return out
    return []
