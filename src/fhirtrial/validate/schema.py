"""JSON-schema layer: the official FHIR JSON schema (``openapi/fhir.schema.json``), per resource.

The schema's top-level ``oneOf`` over every resource type is slow and its errors unreadable, so
each resource is checked against ``#/definitions/<resourceType>`` alone, and nested resources
(Bundle entries, contained, Parameters) are taken out and checked one by one in their turn.
"""

from __future__ import annotations

import copy
import threading
from typing import TYPE_CHECKING, Any

from ..finding import Finding
from .schemafast import CompiledSchema, is_valid

if TYPE_CHECKING:  # jsonschema (0.4 s to import) only once a resource needs describing
    from jsonschema import Draft6Validator
    from jsonschema.exceptions import ValidationError as SchemaError

_VALIDATOR_KINDS = {
    "required": "required", "additionalProperties": "structure", "type": "value",
    "pattern": "value", "enum": "code-invalid", "const": "value", "minItems": "required",
}


class SchemaLayer:
    """One compiled Draft-6 validator per resource type over a shared definitions table."""

    def __init__(self, schema: dict[str, Any]) -> None:
        defs = copy.deepcopy(schema["definitions"])
        # nested resources are validated separately: here they only need to be objects
        defs["ResourceList"] = {"type": "object"}
        self._defs = defs
        # valid resources are proved so by compiled checks; jsonschema describes the others
        self._fast = CompiledSchema(defs)
        self._validators: dict[str, Draft6Validator] = {}
        self._lock = threading.Lock()

    def _validator(self, rtype: str) -> Draft6Validator | None:
        v = self._validators.get(rtype)
        if v is None:
            if rtype not in self._defs:
                return None
            from jsonschema import Draft6Validator

            with self._lock:
                v = Draft6Validator({"$ref": f"#/definitions/{rtype}", "definitions": self._defs})
                self._validators[rtype] = v
        return v

    def proves_valid(self, resource: dict[str, Any], expr: str = "") -> bool:
        """Whether the compiled checks prove ``resource`` and every resource in it valid by the
        schema (then :meth:`check` finds nothing)."""
        for res, _ in nested_resources(resource, expr):
            rtype = res.get("resourceType")
            if not (isinstance(rtype, str) and is_valid(self._fast, rtype, res)):
                return False
        return True

    def check(self, resource: dict[str, Any], expr: str) -> list[Finding]:
        """Schema findings for ``resource`` and every resource nested in it."""
        out: list[Finding] = []
        for res, where in nested_resources(resource, expr):
            rtype = res.get("resourceType")
            if isinstance(rtype, str) and is_valid(self._fast, rtype, res):
                continue  # proved valid: jsonschema would find nothing
            validator = self._validator(rtype) if isinstance(rtype, str) else None
            if validator is None:
                out.append(Finding("error", "not-supported",
                                   f"No schema definition for resource type {rtype!r}", where))
                continue
            for err in validator.iter_errors(res):
                if err.instance is None and err.path and isinstance(err.path[-1], int):
                    # null keeps primitive arrays and their _x arrays aligned (json.html);
                    # the schema does not allow it, FHIR JSON does
                    continue
                out.extend(_findings(err, where))
        return out


def nested_resources(resource: dict[str, Any], expr: str) -> list[tuple[dict[str, Any], str]]:
    """The resource and every resource inside it (depth first), with their expressions."""
    found = [(resource, expr)]

    def visit(value: Any, here: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, list):
                    for i, x in enumerate(item):
                        at = f"{here}.{key}[{i}]"
                        if isinstance(x, dict) and "resourceType" in x:
                            found.append((x, at))
                        visit(x, at)
                elif isinstance(item, dict):
                    at = f"{here}.{key}"
                    if "resourceType" in item:
                        found.append((item, at))
                    visit(item, at)

    visit(resource, expr)
    return found


def _findings(err: SchemaError, expr: str) -> list[Finding]:
    if err.validator in ("oneOf", "anyOf") and err.context:
        # report the branch that got furthest: the others are noise
        best = max(err.context, key=lambda e: len(e.absolute_path))
        return _findings(best, expr)
    where = expr + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                           for p in err.absolute_path)
    kind = str(err.validator)
    code = _VALIDATOR_KINDS.get(kind, "structure")
    msg = err.message
    if kind == "additionalProperties" and isinstance(err.instance, dict):
        # one finding per unknown element, at the element itself, so it lines up with (and is
        # deduplicated against) the structure layer's finding for the same element
        known = err.schema.get("properties", {}) if isinstance(err.schema, dict) else {}
        extras = sorted(k for k in err.instance if k not in known)
        if extras:
            return [Finding("error", code, f"JSON schema: Unknown element {k!r}", f"{where}.{k}")
                    for k in extras]
    if kind == "additionalProperties":
        msg = f"Unknown element(s): {msg.split('(')[-1].rstrip(')')}"
    return [Finding("error", code, f"JSON schema: {msg:.300}", where)]
