"""Structure layer: elements, cardinality and types, by the fhir.resources models (R5 / R4B).

The models coerce where FHIR JSON does not (``"true"`` or ``"yes"`` for a boolean, ``"3"`` for
an integer), so every primitive value is also checked strictly against its JSON type and its
datatype's regex: the StructureDefinition's with the core package, the spec's table in
:mod:`.models` without it (the walk then takes the types from the models themselves).
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Any, ClassVar

from ..finding import Finding
from .definitions import Definitions, Node

#: pydantic error type → FHIR issue type (http://hl7.org/fhir/issue-type)
ISSUE_TYPES = {
    "missing": "required",
    "extra_forbidden": "structure",
    "list_type": "structure",
    "model_type": "structure",
    "dict_type": "structure",
    "too_long": "structure",
    "too_short": "required",
    "string_pattern_mismatch": "value",
    "string_too_short": "value",
    "value_error": "value",
}

_R4B_MODULE = "fhir.resources.R4B"


@functools.cache
def _model_class(fhir_version: str, resource_type: str) -> type[Any] | None:
    if fhir_version == "R4":
        from fhir.resources.R4B import get_fhir_model_class as get_r4b
        getter = get_r4b
    else:
        from fhir.resources import get_fhir_model_class as get_r5
        getter = get_r5
    try:
        return getter(resource_type)
    except (KeyError, ValueError):
        return None


def check_model(resource: dict[str, Any], fhir_version: str, expr: str) -> list[Finding]:
    """fhir.resources' verdict on one resource, as findings located by FHIRPath."""
    rtype = resource.get("resourceType")
    cls = _model_class(fhir_version, rtype) if isinstance(rtype, str) else None
    if cls is None:
        return [Finding("error", "not-supported",
                        f"Unknown resource type {rtype!r} for FHIR {fhir_version}", expr)]
    import pydantic  # here: a resource the proofs settle never needs it (0.1 s to import)

    try:
        cls.model_validate(resource)
    except pydantic.ValidationError as exc:
        return [_finding(err, resource, expr) for err in exc.errors()
                if not _model_false_alarm(err, resource)]
    except (ValueError, TypeError, KeyError) as exc:  # model validators raise these directly
        return [Finding("error", "structure", str(exc), expr)]
    return []


INT64_MIN = -(2**63)


def _model_false_alarm(err: Any, resource: dict[str, Any]) -> bool:
    """Errors of fhir.resources itself, where the instance is valid FHIR JSON."""
    kind, loc = err["type"], err["loc"]
    if kind == "greater_than_equal" and str(err.get("input")) == str(INT64_MIN):
        return True  # integer64 bound off by one in the models
    if kind == "extra_forbidden" and loc and isinstance(loc[-1], str) and loc[-1][:1] == "_":
        # primitive extensions of choice elements (Extension._valueCode) are unknown to them
        parent: Any = resource
        for part in loc[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                return False
        return isinstance(parent, dict) and loc[-1][1:] in parent
    return False


def _finding(err: Any, resource: dict[str, Any], expr: str) -> Finding:
    where = _loc_expr(err["loc"], resource, expr)
    kind = err["type"]
    code = ISSUE_TYPES.get(kind, "value")
    msg = err["msg"]
    if kind == "extra_forbidden":
        msg = f"Unknown element '{where.rsplit('.', 1)[-1]}' (not defined for this type)"
    elif kind == "missing" or kind.endswith(".missing"):
        msg = f"Missing required element '{where.rsplit('.', 1)[-1]}' (minimum cardinality 1)"
        code = "required"
    elif kind == "value_error" and "is required" in msg:
        code = "required"
    elif kind == "list_type":
        msg = "Expected an array: this element repeats"
    elif isinstance(err.get("input"), list) and (kind.endswith("_type")
                                                 or kind.endswith("_parsing")):
        code = "structure"
        msg = "This element does not repeat: one value expected, got an array"
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        # a value of the wrong kind: "value", as the server's model table has it
        code = "value"
        value = err.get("input")
        msg = f"{msg} (got {value!r:.60})"
    return Finding("error", code, msg, where)


def _loc_expr(loc: tuple[Any, ...], data: Any, expr: str) -> str:
    """A pydantic error location → a FHIRPath-like expression (``Bundle.entry[0].resource.x``)."""
    out = expr
    cur = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            cur = cur[part] if isinstance(cur, list) and part < len(cur) else None
        else:
            if part.startswith("function-after") or part.startswith("function-"):
                continue
            out += f".{part}"
            cur = cur.get(part) if isinstance(cur, dict) else None
    return out


class PrimitiveChecker:
    """Strict JSON types and the regexes of the primitive StructureDefinitions."""

    JSON_TYPES: ClassVar[dict[str, tuple[type, ...]]] = {
        "boolean": (bool,), "integer": (int,), "positiveInt": (int,), "unsignedInt": (int,),
        "decimal": (int, float),
    }

    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions
        self._regex: dict[str, re.Pattern[str] | None] = {}
        self._lock = threading.Lock()

    def regex(self, tcode: str) -> re.Pattern[str] | None:
        if tcode in self._regex:
            return self._regex[tcode]
        with self._lock:
            pattern: re.Pattern[str] | None = None
            found = False
            info = self.definitions.type_info(tcode)
            if info is not None and info.kind == "primitive-type" and info.regex is not None:
                # the package's regex for the type (definitions._value_regex)
                pattern = re.compile(info.regex, re.DOTALL)
                found = True
            if not found and tcode != "xhtml":  # (the table has none for xhtml either)
                # the spec's regexes, when no package is there to give them (imported here:
                # with a package they are rarely needed)
                from .models import COMPILED_REGEX

                pattern = COMPILED_REGEX.get(tcode)
            self._regex[tcode] = pattern
            return pattern

    def check(self, nodes: list[Node]) -> list[Finding]:
        out: list[Finding] = []
        for node in nodes:
            v = node.value
            if v is None or type(v) is dict or type(v) is list:
                continue
            t = node.type
            if not t:
                continue
            if not t[0].islower():
                out.append(self.not_an_object(v, t, node.expr))
                continue
            found = self.check_value(v, t, node.expr)
            if found is not None:
                out.append(found)
        return out

    @staticmethod
    def not_an_object(v: Any, t: str, expr: str) -> Finding:
        """The finding for a value that is not an object where a complex type ``t`` (a
        Coding, a backbone element) belongs: a string, a number, a boolean. The models would
        read a string holding JSON as the object it spells (``"{\"code\": \"x\"}"`` for a
        Coding), which FHIR JSON never does."""
        return Finding("error", "value", f"Wrong JSON type for {t}: expected an object, got "
                                         f"{v!r:.60}", expr)

    def check_value(self, v: Any, t: str, expr: str) -> Finding | None:
        """The finding for one primitive value ``v`` of type ``t`` (a type code starting in
        lower case; not None, an object or an array), or None when it is right."""
        if type(v) is str and t not in self.JSON_TYPES:
            # the common case: a string where a string belongs
            rx = self._regex[t] if t in self._regex else self.regex(t)
            if rx is not None and not rx.fullmatch(v):
                return Finding("error", "value", f"'{v:.80}' is not a valid {t}", expr)
            if not v.strip() and v != "":
                return Finding("error", "value", f"A {t} cannot be blank", expr)
            return None
        if isinstance(v, dict | list):
            return None
        want = self.JSON_TYPES.get(t, (str,))
        if (isinstance(v, bool) and bool not in want) or not isinstance(v, want):
            return Finding("error", "value",
                           f"Wrong JSON type for {t}: expected "
                           f"{' or '.join(w.__name__ for w in want)}, got {v!r:.60}", expr)
        if isinstance(v, str):
            rx = self.regex(t)
            if rx is not None and not rx.fullmatch(v):
                return Finding("error", "value", f"'{v:.80}' is not a valid {t}", expr)
            if not v.strip() and v != "":
                return Finding("error", "value", f"A {t} cannot be blank", expr)
        elif isinstance(v, int) and ((t == "positiveInt" and v < 1)
                                     or (t == "unsignedInt" and v < 0)):
            return Finding("error", "value", f"{v} is not a valid {t}", expr)
        return None


def check_required(definitions: Definitions, resource: dict[str, Any], expr: str,
                   nodes: list[Node]) -> list[Finding]:
    """Elements with a minimum cardinality of 1 that are absent, in every object of the walk.

    The models report a missing required element only once every field has a value of the
    right type (their model validator runs last), so one wrong type elsewhere would hide it."""
    out: list[Finding] = []
    objects: list[tuple[Any, Any, str]] = [(resource, resource.get("resourceType"), expr)]
    for n in nodes:
        if not isinstance(n.value, dict):
            continue
        inner = n.value.get("resourceType")
        nested = isinstance(inner, str) and (n.type in ("Resource", "DomainResource")
                                             or definitions.is_resource(n.type))
        # a nested resource's elements hang under its type; others under their type path
        objects.append((n.value, inner if nested else n.base, n.expr))
    for value, base, where in objects:
        definitions.required_findings(value, base, where, out)
    return out
