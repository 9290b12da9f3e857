"""Element types of both FHIR versions, and R5 elements as R4 cross-version extensions.

The element knowledge comes from the fhir.resources models (R5 default package, R4B package for
R4: the resources fhirtrial writes in R4 are structurally identical in R4 and R4B), so no element
table is hand-written here. An R5 element with no R4 home travels as the official cross-version
extension ``http://hl7.org/fhir/5.0/StructureDefinition/extension-<Type>.<path>``: a value whose
datatype R4 also has (and whose content R4 accepts) is its ``value[x]``; anything else (a backbone
element, an R5-only datatype such as CodeableReference) is nested extensions, one per child, with
the child's name as relative url — the representation the FHIR cross-version rules define.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from fhir.resources import get_fhir_model_class as r5_class
from fhir.resources.R4B import get_fhir_model_class as r4_class

XVER_PREFIX = "http://hl7.org/fhir/5.0/StructureDefinition/extension-"

#: datatypes R4B has but R4 (4.0.1) does not: never written as R4 value[x]
_R4B_ONLY = frozenset({"CodeableReference", "RatioRange"})
#: required bindings R5 widened: a value using a code R4's value set lacks is not an R4 value
#: (the models check structure, not codes)
_R4_REQUIRED_CODES: dict[str, dict[str, frozenset[str]]] = {
    "RelatedArtifact": {"type": frozenset({
        "documentation", "justification", "citation", "predecessor", "successor",
        "derived-from", "depends-on", "composed-of"})},
}


@dataclass(frozen=True, slots=True)
class ElementType:
    """The type of one element of a model: FHIR type name, repetition, backbone-ness."""

    name: str  # "string", "CodeableConcept", "ResearchStudyArm" …
    is_list: bool
    is_primitive: bool
    is_backbone: bool


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    is_list = False
    while True:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is typing.Union or origin is types.UnionType:
            annotation = next(a for a in args if a is not type(None))
        elif origin in (list, typing.List):  # noqa: UP006 (fhir.resources uses typing.List)
            is_list = True
            annotation = args[0]
        else:
            return annotation, is_list


@cache
def element_type(version: str, model: str, key: str) -> ElementType | None:
    """The type of ``model.key`` in R5 (``version="R5"``) or R4 (``"R4"``), None if absent."""
    getter = r5_class if version == "R5" else r4_class
    try:
        cls = getter(model)
    except (KeyError, ValueError, AttributeError):
        return None
    field = cls.model_fields.get(key)
    if field is None or key.endswith("__ext") or key == "fhir_comments":
        return None
    inner, is_list = _unwrap(field.annotation)
    if typing.get_origin(inner) is typing.Annotated:
        marker = typing.get_args(inner)[1]
        name = type(marker).__name__
        return ElementType(name[0].lower() + name[1:], is_list, True, False)
    if inner is bool:  # fhir.resources types FHIR boolean as a plain bool
        return ElementType("boolean", is_list, True, False)
    klass = inner.get_model_klass() if hasattr(inner, "get_model_klass") else inner
    if getattr(klass, "__name__", "") in ("Resource", "DomainResource") or not hasattr(
        klass, "__mro__"
    ):
        return ElementType("Resource", is_list, False, False)
    bases = {b.__name__ for b in klass.__mro__}
    return ElementType(klass.__name__, is_list, False, "BackboneElement" in bases)


def fits_r4(type_name: str, value: Any) -> bool:
    """True when R4 has datatype ``type_name`` and accepts ``value`` as one."""
    if type_name in _R4B_ONLY:
        return False
    for key, allowed in _R4_REQUIRED_CODES.get(type_name, {}).items():
        if isinstance(value, dict) and key in value and value[key] not in allowed:
            return False
    # the same codings, addresses and references recur across a Bundle and a batch: validating
    # each distinct value once keeps the R4 writer's cost near the R5 build's
    return _fits(type_name, json.dumps(value, sort_keys=True, ensure_ascii=False))


@lru_cache(maxsize=65536)
def _fits(type_name: str, value_json: str) -> bool:
    try:
        cls = r4_class(type_name)
    except (KeyError, ValueError, AttributeError):
        return False
    try:
        cls.model_validate_json(value_json)
    except Exception:  # pydantic's ValidationError and fhir.resources' own errors alike
        return False
    return True


def _value_key(type_name: str) -> str:
    return "value" + type_name[0].upper() + type_name[1:]


def encode(resource_type: str, path: str, model: str, key: str, value: Any,
           *, nested: bool = False) -> list[dict[str, Any]]:
    """R5 element ``model.key`` (at ``resource_type.path``) → cross-version extensions."""
    et = element_type("R5", model, key)
    if et is None:
        raise KeyError(f"{model}.{key} is not an R5 element")
    url = key if nested else f"{XVER_PREFIX}{resource_type}.{path}"
    items = value if isinstance(value, list) else [value]
    return [_encode_one(resource_type, path, et, url, item) for item in items]


def _encode_one(resource_type: str, path: str, et: ElementType, url: str,
                value: Any) -> dict[str, Any]:
    if et.is_primitive:
        name = "string" if et.name == "integer64" else et.name
        return {"url": url, _value_key(name): value}
    if not et.is_backbone and et.name != "Resource" and fits_r4(et.name, value):
        return {"url": url, _value_key(et.name): value}
    children: list[dict[str, Any]] = []
    own: list[dict[str, Any]] = []
    for k, v in value.items():
        if k in ("extension", "modifierExtension"):
            own.extend(v)
        elif k == "id" or k.startswith("_"):
            continue
        else:
            children.extend(encode(resource_type, f"{path}.{k}", et.name, k, v, nested=True))
    return {"url": url, "extension": own + children}


def decode(resource_type: str, path: str, extensions: list[dict[str, Any]]) -> Any:
    """The R5 value of the cross-version extensions for ``resource_type.path`` (or None)."""
    url = f"{XVER_PREFIX}{resource_type}.{path}"
    found = [e for e in extensions if e.get("url") == url]
    if not found:
        return None
    model, _, key = _split(resource_type, path)
    et = element_type("R5", model, key)
    values = [_decode_one(et, e) for e in found]
    return values if et is None or et.is_list else values[0]


def _split(resource_type: str, path: str) -> tuple[str, str, str]:
    """``ResearchStudy``, ``recruitment.targetNumber`` → (``ResearchStudyRecruitment``, …)."""
    parts = path.split(".")
    model = resource_type
    for part in parts[:-1]:
        et = element_type("R5", model, part)
        model = et.name if et else model
    return model, ".".join(parts[:-1]), parts[-1]


def _decode_one(et: ElementType | None, ext: dict[str, Any]) -> Any:
    for k, v in ext.items():
        if k.startswith("value"):
            return v
    out: dict[str, Any] = {}
    for child in ext.get("extension", []):
        name = child.get("url", "")
        if "://" in name or et is None:
            out.setdefault("extension", []).append(child)
            continue
        cet = element_type("R5", et.name, name)
        val = _decode_one(cet, child)
        if cet is not None and cet.is_list:
            out.setdefault(name, []).append(val)
        else:
            out[name] = val
    return out
