"""The schema layer's fast path: the FHIR JSON schema compiled, once per definition, into
Python closures that answer one question — is this resource valid? — without building errors.

Valid is the common case (a converter's output, a partner's bulk upload), and ``jsonschema``
spends most of its time there resolving ``$ref``s and building the machinery to describe
errors that never come. When the compiled check says *valid*, the layer has nothing to report;
when it says *invalid* (or cannot decide), ``jsonschema`` runs as before and its findings are
reported unchanged. So the findings are ``jsonschema``'s exactly, provided the compiled check
never calls an instance valid that ``jsonschema`` rejects: it implements Draft 6 for exactly
the keywords the FHIR schema uses (``$ref`` — whose siblings Draft 6 ignores — ``type``,
``properties``, ``additionalProperties: false``, ``required``, ``items``, ``pattern``, string
``const`` and ``enum``; ``description`` is an annotation); a definition using anything else is
not compiled (:class:`Unsupported`) and always goes to ``jsonschema``.
``tests/test_validate_fast.py`` compares the two verdicts on the official examples and their
mutations.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

#: keywords that only annotate
_ANNOTATIONS = frozenset({"description", "$schema", "id", "$id", "title", "$comment"})
_TYPES: dict[str, Check] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    # JSON numbers: bool is not one; Draft 6 counts 1.0 as an integer
    "number": lambda x: isinstance(x, int | float) and not isinstance(x, bool),
    "integer": lambda x: (isinstance(x, int) and not isinstance(x, bool))
    or (isinstance(x, float) and x.is_integer()),
}


class Unsupported(Exception):
    """A schema construct the compiler does not implement: that definition uses jsonschema."""


class CompiledSchema:
    """Validity checks for the definitions of one FHIR JSON schema, compiled on first use."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        self._defs = definitions
        self._compiled: dict[str, Check | None] = {}
        self._lock = threading.RLock()

    def check(self, name: str) -> Check | None:
        """The validity check of ``#/definitions/<name>``, or None when it cannot be compiled."""
        if name in self._compiled:
            return self._compiled[name]
        with self._lock:
            return self._check_locked(name)

    def _check_locked(self, name: str) -> Check | None:
        if name in self._compiled:
            return self._compiled[name]
        if name not in self._defs:
            self._compiled[name] = None
            return None
        # placeholder first: definitions refer to themselves (Extension.extension …)
        cell: list[Check] = []
        self._compiled[name] = lambda x: cell[0](x) if cell else _undecided()
        try:
            fn = self._compile(self._defs[name])
        except Unsupported:
            self._compiled[name] = None
            return None
        cell.append(fn)
        self._compiled[name] = fn
        return fn

    def _ref(self, ref: str) -> Check:
        if not ref.startswith("#/definitions/") or "/" in ref[len("#/definitions/"):]:
            raise Unsupported(ref)
        name = ref[len("#/definitions/"):]
        if name not in self._defs:
            raise Unsupported(ref)
        compiled = self._compiled.get(name)
        if compiled is not None:
            return compiled
        if name in self._compiled:  # known not to compile
            raise Unsupported(ref)
        # resolve lazily: compiling every reachable definition up front would compile most
        # of the schema for one resource type
        cache = self._compiled

        def deferred(x: Any) -> bool:
            fn = cache.get(name) or self.check(name)
            if fn is None:
                raise _Undecided
            return fn(x)

        return deferred

    def _compile(self, schema: Any) -> Check:
        if schema is True or schema == {}:
            return lambda x: True
        if not isinstance(schema, dict):
            raise Unsupported(repr(schema)[:40])
        if "$ref" in schema:  # Draft 6: the siblings of $ref are ignored
            return self._ref(schema["$ref"])
        checks: list[Check] = []
        for key, value in schema.items():
            if key in _ANNOTATIONS or key in ("properties", "additionalProperties"):
                continue
            if key == "type":
                if not isinstance(value, str) or value not in _TYPES:
                    raise Unsupported(f"type {value!r}")
                checks.append(_TYPES[value])
            elif key == "required":
                names = tuple(value)
                checks.append(lambda x, names=names: not isinstance(x, dict)
                              or all(n in x for n in names))
            elif key == "items":
                if not isinstance(value, dict):
                    raise Unsupported("items as a list")
                item = self._compile(value)
                checks.append(lambda x, item=item: not isinstance(x, list)
                              or all(item(v) for v in x))
            elif key == "pattern":
                rx = re.compile(value)  # jsonschema: re.search, no flags
                checks.append(lambda x, rx=rx: not isinstance(x, str)
                              or rx.search(x) is not None)
            elif key == "const":
                if not isinstance(value, str):
                    raise Unsupported("non-string const")
                checks.append(lambda x, c=value: isinstance(x, str) and x == c)
            elif key == "enum":
                if not all(isinstance(v, str) for v in value):
                    raise Unsupported("non-string enum")
                allowed = frozenset(value)
                checks.append(lambda x, allowed=allowed: isinstance(x, str) and x in allowed)
            else:
                raise Unsupported(key)
        if "properties" in schema or "additionalProperties" in schema:
            checks.append(self._object(schema.get("properties", {}),
                                       schema.get("additionalProperties", True)))
        if not checks:
            return lambda x: True
        if len(checks) == 1:
            return checks[0]
        return lambda x: all(c(x) for c in checks)

    def _object(self, properties: dict[str, Any], additional: Any) -> Check:
        if additional not in (True, False):
            raise Unsupported("additionalProperties as a schema")
        props = {k: self._compile(v) for k, v in properties.items()}
        closed = additional is False

        def check(x: Any) -> bool:
            if not isinstance(x, dict):
                return True
            for k, v in x.items():
                fn = props.get(k)
                if fn is None:
                    if closed:
                        return False
                elif not fn(v):
                    return False
            return True

        return check


class _Undecided(Exception):
    """Raised inside a check that reached a definition which could not be compiled."""


def _undecided() -> bool:
    raise _Undecided


def is_valid(compiled: CompiledSchema, name: str, instance: Any) -> bool | None:
    """True / False when the compiled schema can decide; None when only jsonschema can."""
    fn = compiled.check(name)
    if fn is None:
        return None
    try:
        return fn(instance)
    except _Undecided:
        return None
    except RecursionError:
        return None
