"""StructureDefinition snapshots compiled into lookup tables, and one walk over an instance.

The walk pairs every JSON value of a resource with its ElementDefinition and a FHIRPath
expression (``ResearchStudy.label[0].type``, ``Observation.value.ofType(Quantity)``), so the
terminology, invariant and Bundle layers look at nodes and never re-parse paths themselves.
Types are compiled on first use: validating a Group never reads the ResearchStudy snapshot.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import jsonbytes
from ..finding import Finding
from ..packages import FhirPackage

SD_BASE = "http://hl7.org/fhir/StructureDefinition/"
FHIRPATH_STRING = "http://hl7.org/fhirpath/System.String"


@dataclass(slots=True)
class Constraint:
    key: str
    severity: str
    human: str
    expression: str


@dataclass(slots=True)
class Elem:
    """What the walk needs from one ElementDefinition."""

    path: str
    name: str                      # the JSON name without [x]
    min: int
    max: str
    types: list[str]
    choice: bool
    binding_strength: str | None = None
    binding_value_set: str | None = None
    constraints: list[Constraint] = field(default_factory=list)
    content_reference: str | None = None
    target_types: dict[str, list[str]] = field(default_factory=dict)  # type code → resource types

    @property
    def repeats(self) -> bool:
        return self.max != "1" and self.max != "0"


@dataclass(slots=True)
class TypeInfo:
    name: str
    kind: str                      # resource | complex-type | primitive-type | logical
    abstract: bool
    root: Elem
    children: dict[str, dict[str, Elem]]   # parent path → JSON name → Elem
    #: a primitive type's value regex, from the package (None: it gives none)
    regex: str | None = None


@dataclass(slots=True)
class Node:
    """One value of an instance, located."""

    elem: Elem
    type: str                      # the concrete type code (resolved for choices)
    value: Any
    expr: str                      # FHIRPath to the value, with [i] for repeating elements
    base: str                      # type-relative path ("Bundle.entry", "Quantity") for FHIRPath
    resource: dict[str, Any]       # the resource the value belongs to
    resource_expr: str
    container: dict[str, Any] | None = None   # for a contained resource's values: its container


#: bump when what _compile_sd keeps changes: copies of another format are compiled anew
COMPILED_FORMAT = 1
#: and, so that a change to the compiler made without a bump cannot bring back copies an
#: older compiler wrote, the digest of this module's own source (read once, at import)
try:
    _SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
except OSError:  # pragma: no cover - no source beside the module: never trust a kept copy
    _SOURCE_DIGEST = os.urandom(8).hex()
#: the folder, in the package folder, of the compiled types (one JSON file per type)
COMPILED_DIR = ".fhirtrial-compiled"
_TYPE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,99}")
_MISSING = object()


def _value_regex(sd: dict[str, Any], name: str) -> str | None:
    """The regex extension on a primitive type's ``value`` element (the last one given)."""
    pattern = None
    for ed in sd.get("snapshot", {}).get("element", []):
        if ed.get("path") == f"{name}.value":
            for t in ed.get("type", []):
                for ext in t.get("extension", []):
                    if ext.get("url", "").endswith("/regex"):
                        pattern = ext["valueString"]
    return pattern


def _elem_row(e: Elem) -> list[Any]:
    return [e.path, e.name, e.min, e.max, e.types, e.choice, e.binding_strength,
            e.binding_value_set, [[c.key, c.severity, c.human, c.expression]
                                  for c in e.constraints],
            e.content_reference, e.target_types]


def _row_elem(r: list[Any]) -> Elem:
    return Elem(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
                [Constraint(*c) for c in r[8]], r[9], r[10])


def _read_compiled(path: Path, stamp: list[Any]) -> Any:
    """The TypeInfo (or None) kept at ``path`` when made from ``stamp``, else _MISSING (no
    copy, another format or source, or unreadable: the type is compiled anew)."""
    try:
        doc = jsonbytes.loads(path.read_bytes())
        if doc["stamp"] != stamp:
            return _MISSING
        t = doc["type"]
        if t is None:
            return None
        return TypeInfo(t[0], t[1], t[2], _row_elem(t[3]),
                        {parent: {k: _row_elem(r) for k, r in kids.items()}
                         for parent, kids in t[4].items()}, t[5])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return _MISSING


def _write_compiled(path: Path, stamp: list[Any], info: TypeInfo | None) -> None:
    """Keep the compiled type for the next process (atomically; nothing when the package
    folder is not writable: the next process compiles it again)."""
    t = None if info is None else [
        info.name, info.kind, info.abstract, _elem_row(info.root),
        {parent: {k: _elem_row(e) for k, e in kids.items()}
         for parent, kids in info.children.items()}, info.regex]
    try:
        path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".type-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(jsonbytes.dumps_compact({"stamp": stamp, "type": t}))
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass


def _upper_first(s: str) -> str:
    return s[:1].upper() + s[1:]


class Definitions:
    """The StructureDefinitions of one core package, compiled type by type on demand."""

    def __init__(self, package: FhirPackage) -> None:
        self.package = package
        self._types: dict[str, TypeInfo | None] = {}
        self._keys: dict[tuple[str, str], dict[str, list[Any]] | None] = {}
        self._required: dict[str, tuple[Elem, ...]] = {}
        self._lock = threading.Lock()

    def type_info(self, name: str) -> TypeInfo | None:
        """The compiled type, or None when the package does not define it."""
        if not isinstance(name, str):
            return None  # a mutated/wrong resourceType: the structure layer reports it
        try:
            return self._types[name]
        except KeyError:
            pass
        with self._lock:
            if name not in self._types:
                self._types[name] = self._compile(name)
            return self._types[name]

    def is_resource(self, name: str) -> bool:
        info = self.type_info(name)
        return info is not None and info.kind == "resource" and not info.abstract

    def _compile(self, name: str) -> TypeInfo | None:
        """The type compiled from its StructureDefinition, or from the compiled copy a
        previous process left beside the package (see _stamp)."""
        stamp, path = self._stamp(name)
        if stamp is not None:
            found = _read_compiled(path, stamp)
            if found is not _MISSING:
                return found  # type: ignore[return-value]
        info = self._compile_sd(name)
        if stamp is not None:
            _write_compiled(path, stamp, info)
        return info

    def _stamp(self, name: str) -> tuple[list[Any] | None, Path]:
        """What a compiled copy of ``name`` must have been made from (this module's format and
        source, the StructureDefinition's file, size and modification time) and where it is kept:
        ``.fhirtrial-compiled/`` in the package folder. (None, …) for a type the package's
        index does not list, or a name that is not a plain type name."""
        root = getattr(self.package, "root", None)
        if root is None or not _TYPE_NAME.fullmatch(name):
            return None, Path()
        try:
            files = self.package.index["kinds"].get("StructureDefinition", {})
            file = files.get(SD_BASE + name)
            if not isinstance(file, str):
                return None, Path()
            st = os.stat(root / file)
        except (OSError, KeyError, TypeError, AttributeError):
            return None, Path()
        return ([COMPILED_FORMAT, _SOURCE_DIGEST, file, st.st_size, st.st_mtime_ns],
                root / COMPILED_DIR / f"{name}.json")

    def _compile_sd(self, name: str) -> TypeInfo | None:
        sd = self.package.structure_definitions.get(SD_BASE + name)
        if sd is None or "snapshot" not in sd:
            return None
        children: dict[str, dict[str, Elem]] = {}
        root: Elem | None = None
        for ed in sd["snapshot"]["element"]:
            path: str = ed["path"]
            if ":" in ed.get("id", "") or ed.get("sliceName"):
                continue  # core types are not sliced; profiles' slices are out of scope
            elem = _elem(ed)
            if root is None:
                root = elem
                continue
            parent, _, _ = path.rpartition(".")
            children.setdefault(parent, {})[elem.name] = elem
        if root is None:
            return None
        return TypeInfo(name, sd.get("kind", ""), bool(sd.get("abstract")), root, children,
                        _value_regex(sd, name))

    def child(self, type_name: str, parent: str, key: str) -> tuple[Elem, str] | None:
        """The element for JSON property ``key`` under ``parent`` and its concrete type."""
        info = self.type_info(type_name)
        if info is None:
            return None
        kids = info.children.get(parent)
        if kids is None:
            return None
        elem = kids.get(key)
        if elem is not None and not elem.choice:
            return elem, (elem.types[0] if elem.types else "")
        for e in kids.values():
            if e.choice and key.startswith(e.name):
                suffix = key[len(e.name):]
                for t in e.types:
                    if _upper_first(t) == suffix:
                        return e, t
        return None

    def has_children(self, type_name: str, path: str) -> bool:
        info = self.type_info(type_name)
        return info is not None and path in info.children

    def keys(self, type_name: str, parent: str) -> dict[str, list[Any]] | None:
        """JSON property → [element, concrete type, FHIRPath step, base path, how a dict value
        is walked (filled on first use); for :meth:`scan`: whether a primitive value gets a
        node, how it is checked (filled on first use), the required elements of an object
        value (filled with the mode), whether an object value gets a node] for every property
        :meth:`child` resolves under ``parent``: the walk's one lookup per value instead of a
        scan of the choice elements."""
        cache_key = (type_name, parent)
        table = self._keys.get(cache_key, False)
        if table is not False:
            return table  # type: ignore[return-value]
        info = self.type_info(type_name)
        kids = info.children.get(parent) if info is not None else None
        out: dict[str, list[Any]] | None = None
        if kids is not None:
            out = {}
            for elem in kids.values():  # choices first: a plain element of the name wins
                if elem.choice:
                    for t in elem.types:
                        out.setdefault(elem.name + _upper_first(t),
                                       [elem, t, f"{elem.name}.ofType({t})", _base(elem), None,
                                        _keep(elem, t), _UNPLANNED, (),
                                        _keep_object(elem, t)])
            for elem in kids.values():
                if not elem.choice:
                    tcode = elem.types[0] if elem.types else ""
                    out[elem.name] = [elem, tcode, elem.name, _base(elem), None,
                                      _keep(elem, tcode), _UNPLANNED, (),
                                      _keep_object(elem, tcode)]
        with self._lock:
            self._keys[cache_key] = out
        return out

    def required(self, base: str) -> tuple[Elem, ...]:
        """The elements of minimum cardinality 1 under a type path (``Bundle.entry``)."""
        found = self._required.get(base)
        if found is None:
            info = self.type_info(base.split(".", 1)[0])
            kids = info.children.get(base) if info is not None else None
            found = tuple(e for e in (kids or {}).values() if e.min >= 1)
            self._required[base] = found
        return found

    def walk(self, resource: dict[str, Any], expr: str | None = None) -> Iterator[Node]:
        """Every located value of ``resource`` (contained and Bundle entry resources included)."""
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or self.type_info(rtype) is None:
            return
        out: list[Node] = []
        self._walk_object(resource, rtype, rtype, expr or rtype, resource, expr or rtype,
                          None, out)
        yield from out

    def scan(self, resource: dict[str, Any], expr: str, primitives: Any = None) -> Scan:
        """:meth:`walk` in one pass that builds a node only where a later layer reads one
        (narrative ``xhtml``, bound codes, References, resources, objects with a constraint
        the invariant engine evaluates: see _keep, _keep_object), checking each primitive
        against its type and each object for its required elements as it goes when a
        :class:`~.structure.PrimitiveChecker` is given. ``tests/test_validate_scan.py`` compares
        it with :meth:`walk` and the separate checks over the mutation corpora."""
        scan = Scan(primitives)
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or self.type_info(rtype) is None:
            return scan
        if primitives is not None:
            self.required_findings(resource, rtype, expr, scan.required)
        self._scan_object(resource, rtype, rtype, expr, resource, expr, None, scan)
        return scan

    def required_findings(self, value: dict[str, Any], base: Any, where: str,
                       out: list[Any]) -> None:
        """A finding per required element of ``base`` missing from the object ``value`` at
        ``where`` (structure.check_required's, and the one-pass scan's, for each object)."""
        if not isinstance(base, str):
            return
        for elem in self.required(base):
            if elem.choice:
                present = any(k.startswith(elem.name) and k[len(elem.name):][:1].isupper()
                              for k in value)
            else:
                present = elem.name in value or f"_{elem.name}" in value
            if not present:
                out.append(Finding("error", "required",
                                   f"Missing required element '{elem.name}' (minimum "
                                   f"cardinality {elem.min})", f"{where}.{elem.name}"))

    def _scan_object(self, obj: dict[str, Any], tname: str, path: str, expr: str,
                     resource: dict[str, Any], resource_expr: str,
                     container: dict[str, Any] | None, scan: Scan) -> None:
        table = self.keys(tname, path)
        if table is None:
            return
        prims = scan.primitives
        nodes = scan.nodes
        for key, value in obj.items():
            entry = table.get(key)
            if entry is None:
                continue  # as in _walk_object
            elem, tcode, step, base, mode, keep, rx, required, keep_object = entry
            if type(value) is str and not keep and prims is not None \
                    and (rx is None or (rx is not _UNPLANNED and rx is not _GENERAL
                                        and rx is not _OBJECT
                                        and rx.fullmatch(value) and not value.isspace())):
                continue  # the common case: a right string, no node
            many = isinstance(value, list)
            for i, item in enumerate(value if many else (value,)):
                if not isinstance(item, dict):
                    if prims is not None and item is not None and type(item) is not list:
                        # PrimitiveChecker.check, with the plain string case inline
                        if rx is _UNPLANNED:
                            rx = self._prim_plan(entry, prims)
                        if rx is _OBJECT:
                            here = f"{expr}.{step}[{i}]" if many else f"{expr}.{step}"
                            scan.primitive.append(prims.not_an_object(item, tcode, here))
                        elif rx is not None and (rx is _GENERAL or type(item) is not str
                                                 or not rx.fullmatch(item) or item.isspace()):
                            here = f"{expr}.{step}[{i}]" if many else f"{expr}.{step}"
                            found = prims.check_value(item, tcode, here)
                            if found is not None:
                                scan.primitive.append(found)
                    if keep:
                        here = f"{expr}.{step}[{i}]" if many else f"{expr}.{step}"
                        nodes.append(Node(elem, tcode, item, here, base, resource,
                                          resource_expr, container))
                    continue
                here = f"{expr}.{step}[{i}]" if many else f"{expr}.{step}"
                if mode is None:
                    mode = entry[4] = (0 if tcode in ("Resource", "DomainResource") else
                                       1 if self.has_children(tname, base) else
                                       2 if self.type_info(tcode) is not None else 3)
                    # the required elements of an object of this element (not a resource)
                    required = entry[7] = self.required(base if mode == 1 else tcode)
                if mode == 0 or ("resourceType" in item and self.is_resource(tcode)):
                    # a contained or Bundle entry resource: a new root
                    nodes.append(Node(elem, tcode, item, here, base, resource, resource_expr,
                                      container))
                    inner = item.get("resourceType")
                    if prims is not None:
                        self.required_findings(item, inner if isinstance(inner, str) else base,
                                            here, scan.required)
                    if isinstance(inner, str) and self.type_info(inner) is not None:
                        outer = resource if elem.name == "contained" else None
                        self._scan_object(item, inner, inner, here, item, here, outer, scan)
                    continue
                if keep_object:
                    nodes.append(Node(elem, tcode, item, here, base if mode == 1 else tcode,
                                      resource, resource_expr, container))
                if prims is not None and required:
                    self.required_findings(item, base if mode == 1 else tcode, here,
                                        scan.required)
                if mode == 1:
                    self._scan_object(item, tname, base, here, resource, resource_expr,
                                      container, scan)
                elif mode == 2:
                    self._scan_object(item, tcode, tcode, here, resource, resource_expr,
                                      container, scan)

    @staticmethod
    def _prim_plan(entry: list[Any], prims: Any) -> Any:
        """How a non-object value of this element is checked: None (never: no type), _OBJECT
        (a complex type: any non-object value is wrong), _GENERAL (PrimitiveChecker decides),
        or the type's regex (a str value that matches it and is not blank passes; anything
        else goes to PrimitiveChecker)."""
        tcode = entry[1]
        if not tcode:
            plan: Any = None
        elif not tcode[0].islower():
            plan = _OBJECT
        elif tcode in prims.JSON_TYPES:
            plan = _GENERAL
        else:
            rx = prims.regex(tcode)
            plan = _ANY if rx is None else rx
        entry[6] = plan
        return plan

    def _walk_object(self, obj: dict[str, Any], tname: str, path: str, expr: str,
                     resource: dict[str, Any], resource_expr: str,
                     container: dict[str, Any] | None, out: list[Node]) -> None:
        table = self.keys(tname, path)
        if table is None:
            return
        add = out.append
        for key, value in obj.items():
            entry = table.get(key)
            if entry is None:
                continue  # resourceType, a _x twin, or an unknown element (the structure
                # layer reports it)
            elem, tcode, step, base, mode = entry[:5]
            many = isinstance(value, list)
            for i, item in enumerate(value if many else (value,)):
                here = f"{expr}.{step}[{i}]" if many else f"{expr}.{step}"
                if not isinstance(item, dict):
                    add(Node(elem, tcode, item, here, base, resource, resource_expr, container))
                    continue
                if mode is None:
                    # 0: the type holds any resource; 1: a backbone element (children under
                    # its path in this type); 2: a datatype with a definition; 3: neither
                    mode = entry[4] = (0 if tcode in ("Resource", "DomainResource") else
                                       1 if self.has_children(tname, base) else
                                       2 if self.type_info(tcode) is not None else 3)
                if mode == 0 or ("resourceType" in item and self.is_resource(tcode)):
                    # a contained or Bundle entry resource: a new root
                    add(Node(elem, tcode, item, here, base, resource, resource_expr, container))
                    inner = item.get("resourceType")
                    if isinstance(inner, str) and self.type_info(inner) is not None:
                        # contained resources resolve #refs against their container
                        outer = resource if elem.name == "contained" else None
                        self._walk_object(item, inner, inner, here, item, here, outer, out)
                    continue
                if mode == 1:
                    add(Node(elem, tcode, item, here, base, resource, resource_expr, container))
                    self._walk_object(item, tname, base, here, resource, resource_expr,
                                      container, out)
                else:
                    add(Node(elem, tcode, item, here, tcode, resource, resource_expr, container))
                    if mode == 2:
                        self._walk_object(item, tcode, tcode, here, resource, resource_expr,
                                          container, out)


class Scan:
    """What :meth:`Definitions.scan` gathers in its one pass: the nodes the later layers read,
    and the structure layer's required-element and primitive findings, in the order the
    separate passes over :meth:`Definitions.walk`'s nodes gave them."""

    __slots__ = ("nodes", "primitive", "primitives", "required")

    def __init__(self, primitives: Any) -> None:
        self.nodes: list[Node] = []
        self.required: list[Any] = []
        self.primitive: list[Any] = []
        #: the PrimitiveChecker (None: neither primitive nor required checks, only the nodes)
        self.primitives = primitives


_UNPLANNED = object()
#: a complex type (a Coding, a backbone element): only an object is right
_OBJECT = object()
#: a primitive value whose JSON type is not the plain-string case: PrimitiveChecker decides
_GENERAL = object()
#: the regex of a string type that has none: only the blank check applies
_ANY = re.compile(r".*", re.DOTALL)


def _keep(elem: Elem, tcode: str) -> bool:
    """Whether a primitive value of this element is a node of :meth:`Definitions.scan`: the
    narrative layer reads xhtml, the terminology layer bound codes; no other layer reads a
    primitive node."""
    from .terminology import CODED  # (it imports this module)

    return tcode == "xhtml" or (elem.binding_value_set is not None and tcode in CODED)


def _keep_object(elem: Elem, tcode: str) -> bool:
    """Whether an object value of this element (not a resource) is a node of
    :meth:`Definitions.scan`: the terminology layer reads bound values, the Bundle layer
    References, the invariant layer objects whose element has a constraint the engine evaluates
    (ele-1, on every element, is checked natively over the whole resource); no other layer reads
    an object node (resources are always nodes)."""
    from .invariants import NOT_BY_ENGINE  # (it imports this module)

    return elem.binding_value_set is not None or tcode == "Reference" \
        or any(c.key not in NOT_BY_ENGINE for c in elem.constraints)


def _base(elem: Elem) -> str:
    """The path an element's children hang under (its content reference's, when it has one)."""
    if elem.content_reference:
        return elem.content_reference.lstrip("#").split("#")[-1]
    return elem.path


def _elem(ed: dict[str, Any]) -> Elem:
    path = ed["path"]
    last = path.rsplit(".", 1)[-1]
    choice = last.endswith("[x]")
    types: list[str] = []
    targets: dict[str, list[str]] = {}
    for t in ed.get("type", []):
        code = t.get("code", "")
        if code == FHIRPATH_STRING:
            code = "string"
        elif code.startswith("http://hl7.org/fhirpath/System."):
            code = code.rsplit(".", 1)[-1].lower()
        types.append(code)
        if t.get("targetProfile"):
            targets[code] = [p.rsplit("/", 1)[-1] for p in t["targetProfile"]]
    binding = ed.get("binding") or {}
    vs = binding.get("valueSet")
    constraints = [Constraint(c["key"], "information" if _best_practice(c)
                              else c.get("severity", "error"), c.get("human", ""),
                              c["expression"])
                   for c in ed.get("constraint", []) if c.get("expression")]
    return Elem(
        path=path, name=last[:-3] if choice else last, min=int(ed.get("min", 0)),
        max=str(ed.get("max", "*")), types=types, choice=choice,
        binding_strength=binding.get("strength"),
        binding_value_set=vs.split("|", 1)[0] if vs else None,
        constraints=constraints, content_reference=ed.get("contentReference"),
        target_types=targets,
    )


def _best_practice(constraint: dict[str, Any]) -> bool:
    """Best-practice constraints (dom-6 "should have narrative") are advice, not defects."""
    return any(e.get("url", "").endswith("elementdefinition-bestpractice") and e.get("valueBoolean")
               for e in constraint.get("extension", []))
