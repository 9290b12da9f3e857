"""Element definitions read from the fhir.resources models, for validation without a package.

The models (R5, and R4B for R4) carry, per element, its JSON name, its FHIR type (the primitive
metadata's ``__visit_name__``, the datatype or backbone class), whether it repeats, whether it
is required, the choice group it belongs to and the resource types a Reference may target.
:class:`ModelDefinitions` compiles that into the same :class:`TypeInfo` tables the core
package's StructureDefinitions give, so the one walk (and the layers built on it: strict
primitive types, narrative rules, Bundle reference resolution) runs on a fresh install too.
What the models do not carry (bindings, FHIRPath constraints) stays with the package.
"""

from __future__ import annotations

import importlib
import re
import types
import typing
from typing import Any

from .definitions import Definitions, Elem, TypeInfo

#: Abstract base types: a field typed with one of them holds any resource.
ABSTRACT_RESOURCES = {"Resource", "DomainResource", "CanonicalResource", "MetadataResource"}

#: The regexes of the FHIR primitive datatypes, as the R5 core package gives them (R4's are
#: the same where both define the type); a test checks them against the package.
PRIMITIVE_REGEX: dict[str, str] = {
    "integer": r"[0]|[-+]?[1-9][0-9]*",
    "integer64": r"[0]|[-+]?[1-9][0-9]*",
    "string": r"^[\s\S]+$",
    "decimal": r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,17})?([eE][+-]?[0-9]{1,9}})?",
    "uri": r"\S*",
    "url": r"\S*",
    "canonical": r"\S*",
    "base64Binary": r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?",
    "instant": r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-"
               r"(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)"
               r"(\.[0-9]{1,9})?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))",
    "date": r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])"
            r"(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?",
    "dateTime": r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])"
                r"(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)"
                r"(\.[0-9]{1,9})?)?)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)?)?)?",
    "time": r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?",
    "code": r"[^\s]+( [^\s]+)*",
    "oid": r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+",
    "id": r"[A-Za-z0-9\-\.]{1,64}",
    "markdown": r"^[\s\S]+$",
    "unsignedInt": r"[0]|([1-9][0-9]*)",
    "positiveInt": r"[1-9][0-9]*",
    "uuid": r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
}
COMPILED_REGEX = {k: re.compile(v, re.DOTALL) for k, v in PRIMITIVE_REGEX.items()}


class _NoPackage:
    """Stands in for a package: ModelDefinitions reads no StructureDefinition."""

    label = "fhir.resources models"
    structure_definitions: typing.ClassVar[dict[str, Any]] = {}


class ModelDefinitions(Definitions):
    """Definitions compiled from the fhir.resources model classes of one FHIR version."""

    def __init__(self, fhir_version: str = "R5") -> None:
        super().__init__(_NoPackage())  # type: ignore[arg-type]
        self.fhir_version = fhir_version.upper()
        module = "fhir.resources.R4B" if self.fhir_version == "R4" else "fhir.resources"
        self._get_class = importlib.import_module(module).get_fhir_model_class
        self._resource_base = importlib.import_module(module + ".resource").Resource

    def _class(self, name: str) -> type[Any] | None:
        try:
            return self._get_class(name)  # type: ignore[no-any-return]
        except (KeyError, ValueError):
            return None

    def _compile(self, name: str) -> TypeInfo | None:
        cls = self._class(name)
        if cls is None or _type_code(cls) != name:
            return None
        resource = issubclass(cls, self._resource_base)
        kind = "resource" if resource else "complex-type"
        root = Elem(path=name, name=name, min=0, max="*", types=[], choice=False)
        children: dict[str, dict[str, Elem]] = {}
        self._fields(cls, name, children, {cls: name})
        return TypeInfo(name, kind, name in ABSTRACT_RESOURCES, root, children)

    def _fields(self, cls: type[Any], path: str, children: dict[str, dict[str, Elem]],
                seen: dict[type[Any], str]) -> None:
        kids: dict[str, Elem] = {}
        children[path] = kids
        for fname, field in cls.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            if not extra.get("element_property"):
                continue  # fhir_comments, the _x primitive-extension twins
            json_name = field.alias or fname
            repeats, target = _unwrap(field.annotation)
            tcode, backbone = _field_type(target)
            if not tcode:
                continue
            group = extra.get("one_of_many")
            if isinstance(group, str) and json_name.startswith(group) and json_name != group:
                elem = kids.get(group)
                if elem is None:
                    elem = Elem(path=f"{path}.{group}[x]", name=group,
                                min=1 if extra.get("one_of_many_required") else 0,
                                max="*" if repeats else "1", types=[], choice=True)
                    kids[group] = elem
                elem.types.append(tcode)
                _targets(elem, tcode, extra)
                continue
            elem = Elem(path=f"{path}.{json_name}", name=json_name,
                        min=1 if extra.get("element_required") or field.is_required() else 0,
                        max="*" if repeats else "1",
                        types=["BackboneElement" if backbone is not None else tcode],
                        choice=False)
            _targets(elem, tcode, extra)
            kids[json_name] = elem
            if backbone is not None:
                if backbone in seen:  # a recursive backbone (EvidenceVariable.characteristic)
                    elem.content_reference = "#" + seen[backbone]
                else:
                    self._fields(backbone, elem.path, children, {**seen, backbone: elem.path})


def _targets(elem: Elem, tcode: str, extra: dict[str, Any]) -> None:
    refs = extra.get("enum_reference_types")
    if tcode == "Reference" and isinstance(refs, list) and refs:
        elem.target_types["Reference"] = [str(r) for r in refs]


def _unwrap(annotation: Any) -> tuple[bool, Any]:
    """(repeats, the item type) of a field annotation: Optional/List/Union peeled off."""
    repeats = False
    t = annotation
    while True:
        origin = typing.get_origin(t)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(t) if a is not type(None)]
            if len(args) != 1:
                return repeats, None
            t = args[0]
        elif origin in (list, typing.List):  # noqa: UP006 - the models use typing.List
            repeats = True
            t = typing.get_args(t)[0]
        else:
            return repeats, t


def _field_type(t: Any) -> tuple[str, type[Any] | None]:
    """(FHIR type code, backbone class or None) of a model field's item type."""
    if t is None:
        return "", None
    if typing.get_origin(t) is typing.Annotated:
        base, *meta = typing.get_args(t)
        for m in meta:
            name = getattr(m, "__visit_name__", None) or getattr(type(m), "__visit_name__", None)
            if isinstance(name, str):
                return name, None
        t = base
    if t is bool:
        return "boolean", None
    if t is str:
        return "string", None
    name = getattr(t, "__visit_name__", None)
    if isinstance(name, str) and typing.get_origin(t) is None and not hasattr(t, "_model_klass"):
        return name, None
    klass = t.__dict__.get("_model_klass") if hasattr(t, "__dict__") else None
    if isinstance(klass, str):
        module, _, cname = klass.rpartition(".")
        cls = getattr(importlib.import_module(module), cname)
        code = _type_code(cls)
        return (code, None) if code else ("BackboneElement", cls)
    return "", None


def _type_code(cls: type[Any]) -> str:
    """A datatype or resource class's FHIR name; "" for a backbone element's class (those live
    in their resource's module: ``patient.PatientContact``)."""
    module = cls.__module__.rsplit(".", 1)[-1]
    return cls.__name__ if module == cls.__name__.lower() else ""
