"""Invariant layer: the core constraints (``ele-1``, ``dom-*``, ``bdl-*`` …) of the snapshots.

``ele-1`` (every element has a value or children) runs natively: it applies to every element
and a FHIRPath call per element would dominate the run. The others are compiled once with
fhirpathpy and evaluated on each value their element holds. A constraint the engine cannot
evaluate (an unsupported function such as ``htmlChecks()`` or ``conformsTo()``) is skipped and
listed in :data:`Invariants.skipped`, never reported as a failure: no false alarms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property
from typing import Any

from ..finding import Finding, Severity
from . import invfast
from .definitions import Constraint, Node
from .invfast import certainly_holds

#: Enforced natively with a precise location (ele-1 empty elements, bdl-7 fullUrl uniqueness,
#: dom-3 contained resources referenced: its descendants() scans took 90% of the layer's time).
NOT_BY_ENGINE = {"ele-1", "bdl-7", "dom-3"}
#: Quadratic in the number of snapshot elements with fhirpathpy (minutes on a core profile);
#: they check StructureDefinitions, never the clinical resources this project writes.
TOO_SLOW = {"sdf-24": "quadratic over snapshot elements with fhirpathpy",
            "sdf-25": "quadratic over snapshot elements with fhirpathpy"}
#: Functions that need what a single-resource check cannot have (another server's resources,
#: an HTML parser, profile conformance): constraints using them are listed as skipped.
UNSUPPORTED_FUNCTIONS = ("htmlChecks", "conformsTo", "memberOf", "resolve()", "%ucum")


class Invariants:
    """Compiled constraints for one FHIR version (memoised per expression)."""

    def __init__(self, fhir_version: str = "R5") -> None:
        self.fhir_version = fhir_version.upper()
        self._compiled: dict[str, Callable[..., list[Any]] | None] = {}
        self._lock = threading.Lock()
        #: constraint key → why it was not evaluated
        self.skipped: dict[str, str] = {}
        #: id(Elem) → its constraints the engine evaluates, each with its shortcut (Elems live
        #: as long as their Definitions, which outlive this cache's use)
        self._own: dict[int, list[tuple[Constraint, Callable[[Any], bool] | None]]] = {}
        #: the same for a type's root constraints, by id() of their list (kept alive here)
        self._root: dict[int, tuple[list[Constraint],
                                    list[tuple[Constraint, Callable[[Any], bool] | None]]]] = {}

    @cached_property
    def model(self) -> Any:
        """fhirpathpy's model (fhirpathpy is imported when a constraint first needs it: the
        shortcuts settle most, and it costs a seventh of a second to import)."""
        from fhirpathpy.models import models

        return models["r5" if self.fhir_version == "R5" else "r4"]

    def _compile(self, c: Constraint) -> Callable[..., list[Any]] | None:
        fn = self._compiled.get(c.expression, False)
        if fn is not False:
            return fn  # type: ignore[return-value]
        with self._lock:
            if c.key in NOT_BY_ENGINE:
                compiled = None
            elif c.key in TOO_SLOW:
                self.skipped[c.key] = TOO_SLOW[c.key]
                compiled = None
            elif any(u in c.expression for u in UNSUPPORTED_FUNCTIONS):
                self.skipped[c.key] = "uses a function outside a single-resource check"
                compiled = None
            else:
                import fhirpathpy

                try:
                    compiled = fhirpathpy.compile(c.expression, self.model,
                                                  {"traceFn": _quiet,
                                                   "userInvocationTable": FUNCTIONS})
                except Exception as exc:  # the engine's parser raises bare Exceptions
                    self.skipped[c.key] = f"engine cannot parse it: {exc}"[:200]
                    compiled = None
            self._compiled[c.expression] = compiled
            return compiled

    def check(self, nodes: list[Node], root: dict[str, Any]) -> list[Finding]:
        """Findings for the constraints on every walked node, plus the root's own."""
        findings: list[Finding] = []
        own = self._own
        for node in nodes:
            if type(node.value) is not dict:
                continue  # constraints on primitives are out of reach (see _evaluate)
            elem = node.elem
            constraints = own.get(id(elem))
            if constraints is None:
                # the natively enforced ones (ele-1 is on every element) are not looked at;
                # each comes with its shortcut (invfast), looked up once here
                constraints = own[id(elem)] = [(c, invfast.HOLDS.get(c.expression))
                                               for c in elem.constraints
                                               if c.key not in NOT_BY_ENGINE]
            value = node.value
            for c, holds in constraints:
                if holds is not None and holds(value):
                    continue  # what _evaluate's certainly_holds would say first
                f = self._evaluate(c, value, node.base, node.expr, node.resource, root)
                if f is not None:
                    findings.append(f)
        return findings

    def check_root(self, constraints: list[Constraint], resource: dict[str, Any], expr: str,
                   root: dict[str, Any]) -> list[Finding]:
        """Findings for a resource's own constraints (``dom-*``, ``bdl-*`` on the root)."""
        out = []
        plan = self._root.get(id(constraints))
        if plan is None:
            # as in check: the shortcuts looked up once; the natively enforced ones dropped
            # (_evaluate never gives a finding for them)
            plan = self._root[id(constraints)] = (constraints, [
                (c, invfast.HOLDS.get(c.expression)) for c in constraints
                if c.key not in NOT_BY_ENGINE])
        for c, holds in plan[1]:
            if holds is not None and holds(resource):
                continue
            f = self._evaluate(c, resource, resource.get("resourceType", ""), expr, resource, root)
            if f is not None:
                out.append(f)
        return out

    def _evaluate(self, c: Constraint, value: Any, base: str, expr: str,
                  resource: dict[str, Any], root: dict[str, Any]) -> Finding | None:
        if not isinstance(value, dict):
            return None  # constraints on primitives (ext-1 on _x) are out of reach of the walk
        if certainly_holds(c.expression, value):
            return None  # a plain look at the JSON proves it (validate/invfast.py)
        fn = self._compile(c)
        if fn is None:
            return None
        from fhirpathpy.engine.nodes import ResourceNode

        try:
            result = fn(ResourceNode.create_node(value, base),
                        {"resource": resource, "rootResource": root})
        except Exception as exc:  # engine limitation, not the instance's fault
            self.skipped.setdefault(c.key, f"engine error: {type(exc).__name__}: {exc}"[:200])
            return None
        if result == [False]:
            severity: Severity = "error" if c.severity == "error" else (
                "information" if c.severity == "information" else "warning")
            return Finding(severity, "invariant", f"Constraint {c.key} failed: {c.human}", expr)
        return None


def empty_elements(value: Any, expr: str) -> list[Finding]:
    """ele-1 natively: empty objects, arrays, strings and nulls anywhere in a resource."""
    out: list[Finding] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if type(item) is str:
                if not item:
                    out.append(_empty(f"{expr}.{key}", item))
            elif type(item) is list:
                if not item:
                    out.append(_empty(f"{expr}.{key}", item))
                    continue
                for i, x in enumerate(item):
                    if x == "" or x == {}:
                        out.append(_empty(f"{expr}.{key}[{i}]", x))
                    elif isinstance(x, dict):
                        out.extend(empty_elements(x, f"{expr}.{key}[{i}]"))
            elif type(item) is dict:
                # empty, or only an id and no (or empty) extensions
                if not item or (len(item) <= 2 and not item.get("extension")
                                and all(k == "id" or k == "extension" for k in item)):
                    out.append(_empty(f"{expr}.{key}", item))
                else:
                    out.extend(empty_elements(item, f"{expr}.{key}"))
            elif item is None or item == "" or item == [] or item == {}:
                out.append(_empty(f"{expr}.{key}", item))
            elif isinstance(item, dict):
                if set(item) <= {"id"} or (set(item) <= {"id", "extension"}
                                           and not item.get("extension")):
                    out.append(_empty(f"{expr}.{key}", item))
                else:
                    out.extend(empty_elements(item, f"{expr}.{key}"))
            elif isinstance(item, list):
                for i, x in enumerate(item):
                    if x == "" or x == {}:
                        out.append(_empty(f"{expr}.{key}[{i}]", x))
                    elif isinstance(x, dict):
                        out.extend(empty_elements(x, f"{expr}.{key}[{i}]"))
    return out


def _empty(expr: str, value: Any) -> Finding:
    if value is None:
        what = "null"
    elif isinstance(value, str):
        what = "an empty string"
    elif isinstance(value, list):
        what = "an empty array"
    else:
        what = "an object without content"
    return Finding("error", "invariant",
                   f"ele-1: All FHIR elements must have a value or children; found {what}", expr)


def _quiet(label: Any, value: Any) -> None:
    """trace() in a core constraint must not print into the user's output."""


def unreferenced_contained(resource: dict[str, Any], expr: str) -> list[Finding]:
    """dom-3 natively: each contained resource is referenced from the resource (``#id``) or
    refers to its container (``#``)."""
    contained = resource.get("contained")
    if not isinstance(contained, list) or not contained:
        return []
    strings: set[str] = set()
    _strings(resource, strings)
    out = []
    for i, c in enumerate(contained):
        if not isinstance(c, dict) or not isinstance(c.get("id"), str):
            continue
        inner: set[str] = set()
        _strings(c, inner)
        if f"#{c['id']}" not in strings and "#" not in inner:
            out.append(Finding("error", "invariant",
                               "Constraint dom-3 failed: a contained resource must be referenced "
                               f"from elsewhere in the resource (no reference to #{c['id']})",
                               f"{expr}.contained[{i}]"))
    return out


def _strings(value: Any, into: set[str]) -> None:
    if isinstance(value, str):
        if value.startswith("#"):
            into.add(value.split("|", 1)[0])
    elif isinstance(value, dict):
        for v in value.values():
            _strings(v, into)
    elif isinstance(value, list):
        for v in value:
            _strings(v, into)


def _has_value(coll: list[Any]) -> list[bool]:
    """FHIRPath hasValue(), absent from fhirpathpy: a single primitive with a value."""
    if len(coll) != 1:
        return [False]
    data = getattr(coll[0], "data", coll[0])
    return [data is not None and not isinstance(data, dict | list)]


FUNCTIONS = {"hasValue": {"fn": _has_value, "arity": {0: []}}}
