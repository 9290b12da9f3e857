"""The structure layer's fast path for R4: prove a resource valid by the fhir.resources models
without building them.

R4 packages carry no JSON schema, so no compiled schema check can spare the models there (see
:mod:`.schemafast` for R5), and importing and running the R4B models is most of what ``fhirtrial
validate --fhir-version R4`` costs. The models' element tables (JSON name, type, repeats,
required, choice group, whether a ``_x`` primitive extension twin exists) are generated from
the installed fhir.resources into ``model_tables_r4.json`` at build time; :class:`ModelProof`
walks an instance against them and answers one question — would the models accept it? — with
True only when it is certain, by being stricter than the models everywhere:

- every key must be an element of the model (unknown keys, ``fhir_comments``, a ``_x`` twin
  of a choice or repeating element: not proved);
- repeating elements are non-empty arrays without null, others are not arrays;
- required elements and one-of-many choice groups have their value itself (not only an
  extension of it), and at most one member of a choice group is present;
- primitives pass a check narrower than the models' own (ASCII codes, ids of at most 64
  characters, real calendar dates, date-times with a time zone and at most microseconds …);
  url only as a plain http(s) URL; types the proof does not model (uuid, time,
  base64Binary) are never proved.

When it says False the models run as before, so findings are theirs exactly; the tables are
used only with the fhir.resources and fhir.core versions they were generated from (else the
models always run). ``tests/test_validate_modelproof.py`` compares findings with and without
the proof over the R4 mutation corpus. Regenerate: ``python -m fhirtrial.validate.modelproof``.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import jsonbytes

TABLE = "model_tables_r4.json"
#: the distributions whose behaviour the tables stand for
DISTRIBUTIONS = ("fhir.resources", "fhir.core")

_CODE = re.compile(r"[!-~]+( [!-~]+)*")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_URI = re.compile(r"\S+")
_OID = re.compile(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
# the models' own patterns (fhir_core.types Date, DateTime, Instant)
_DATE = re.compile(r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
                   r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?")
_INSTANT = re.compile(r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-"
                      r"(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
                      r"(\.[0-9]{1,6})?(Z|([+\-])((0[0-9]|1[0-3]):[0-5][0-9]|14:00))")
#: http(s) URLs the models' URL parser (WHATWG, via pydantic) takes: DNS names whose last label
#: starts with a letter (a numeric one is parsed as IPv4 and may fail), no punycode labels (they
#: may not decode), a port under 10000, then printable ASCII
_LABEL = r"(?!xn--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_URL = re.compile(rf"https?://(?:{_LABEL}\.)*(?![Xx][Nn]--)[A-Za-z][A-Za-z0-9-]{{0,62}}"
                  r"(?<!-)(?::[0-9]{1,4})?(?:[/?#][!-~]*)?", re.IGNORECASE)
_INT32 = 2**31
_MAX_STRING = 1_000_000


def _text(v: Any) -> bool:
    """A str the models' string type takes: not empty, not only whitespace, valid UTF-8."""
    if type(v) is not str or not v or len(v) > _MAX_STRING or v.isspace():
        return False
    return v.isascii() or _utf8(v)


def _utf8(v: str) -> bool:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _date(v: Any) -> bool:
    if type(v) is not str or not _DATE.fullmatch(v):
        return False
    if len(v) == 10:
        try:
            datetime.date(int(v[:4]), int(v[5:7]), int(v[8:10]))
        except ValueError:
            return False
    return True


def _instant(v: Any) -> bool:
    if type(v) is not str or not _INSTANT.fullmatch(v):
        return False
    try:
        datetime.datetime.fromisoformat(v[:-1] + "+00:00" if v.endswith("Z") else v)
    except ValueError:
        return False
    return True


def _decimal(v: Any) -> bool:
    return (type(v) is int or (type(v) is float and math.isfinite(v))) \
        and _DECIMAL.fullmatch(str(v)) is not None


def _matches(rx: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda v: type(v) is str and rx.fullmatch(v) is not None and (v.isascii()
                                                                         or _utf8(v))


#: primitive type code → a check never more lenient than the models' own
PRIMITIVES: dict[str, Callable[[Any], bool]] = {
    "boolean": lambda v: v is True or v is False,
    "integer": lambda v: type(v) is int and -_INT32 <= v < _INT32,
    "unsignedInt": lambda v: type(v) is int and 0 <= v < _INT32,
    "positiveInt": lambda v: type(v) is int and 1 <= v < _INT32,
    "decimal": _decimal,
    "string": _text,
    "markdown": _text,
    "xhtml": _text,
    "code": _matches(_CODE),
    "id": _matches(_ID),
    "uri": _matches(_URI),
    "canonical": _matches(_URI),
    "oid": _matches(_OID),
    "url": _matches(_URL),
    "date": _date,
    "dateTime": lambda v: _date(v) if type(v) is str and "T" not in v else _instant(v),
    "instant": _instant,
}
#: abstract types whose fields hold any resource
ANY_RESOURCE = ("Resource", "DomainResource")

# an element: (type code, repeats, required, choice group or "", has a _x twin, children path)
Element = tuple[str, bool, bool, str, bool, str]


class ModelProof:
    """Proves instances valid by the R4B models' element tables (see the module docstring)."""

    def __init__(self, tables: dict[str, Any]) -> None:
        self._types: dict[str, Any] = tables["types"]
        #: (type, path) → its compiled elements (see _compiled)
        self._plans: dict[tuple[int, str], tuple[Any, ...]] = {}

    @classmethod
    def load(cls) -> ModelProof | None:
        """The proof for the installed models, or None when the shipped tables were generated
        from other versions (or are missing): then the models always run."""
        try:
            tables = jsonbytes.loads(Path(__file__).with_name(TABLE).read_bytes())
            for dist in DISTRIBUTIONS:
                if tables["versions"].get(dist) != installed_version(dist):
                    return None
        except (OSError, ValueError, KeyError, ImportError):  # ImportError: not installed
            return None
        return cls(tables)

    def proves(self, resource: Any) -> bool:
        """True only when the models would accept ``resource`` (every resource in it too)."""
        try:
            return self._resource(resource, "")
        except RecursionError:
            return False

    def _resource(self, obj: Any, want: str) -> bool:
        if type(obj) is not dict:
            return False
        rtype = obj.get("resourceType")
        info = self._types.get(rtype) if type(rtype) is str else None
        if info is None or info["kind"] != "resource" or info["abstract"]:
            return False
        if want and want not in ANY_RESOURCE and want != rtype:
            return False
        return self._object(obj, info, rtype, True)

    def _compiled(self, info: dict[str, Any], path: str) -> tuple[Any, ...]:
        """A type path's elements as the walk uses them: key → (how, what, repeats, group,
        cell) (how: 0 a primitive check, 1 a backbone element and 2 a datatype, what then
        (type info, path) and cell the compiled plan of that path once used, 3 a resource,
        4 never), then the required keys and required choice groups."""
        key = (id(info), path)
        found = self._plans.get(key)
        if found is not None:
            return found
        kids: dict[str, Element] = info["children"][path]
        table: dict[str, tuple[int, Any, bool, str, list[Any]]] = {}
        for name, (tcode, repeats, _required, group, _twin, sub) in kids.items():
            check = PRIMITIVES.get(tcode)
            target = self._types.get(tcode)
            if check is not None:
                how, what = 0, check
            elif sub:
                how, what = 1, (info, sub)
            elif target is None:
                how, what = 4, None  # a primitive the proof does not model (uuid, time …)
            elif target["kind"] == "resource" or tcode in ANY_RESOURCE:
                how, what = 3, tcode
            else:
                how, what = 2, (target, tcode)
            table[name] = (how, what, repeats, group, [None])
        found = (table, kids,
                 tuple(k for k, e in kids.items() if e[2] and not e[3]),
                 tuple(g for g, required in info["groups"].get(path, {}).items() if required))
        self._plans[key] = found
        return found

    def _object(self, obj: dict[str, Any], info: dict[str, Any], path: str,
                is_resource: bool) -> bool:
        if not obj:
            return False
        return self._run(obj, self._compiled(info, path), is_resource)

    def _run(self, obj: dict[str, Any], compiled: tuple[Any, ...], is_resource: bool) -> bool:
        """_object with the path's plan in hand (``obj`` not empty)."""
        table, kids, keys, groups = compiled
        seen_groups: list[str] | None = None
        for key, value in obj.items():
            plan = table.get(key)
            if plan is None:
                if key == "resourceType" and is_resource:
                    continue
                if key[:1] == "_" and self._twin(kids.get(key[1:]), value, key[1:] in obj):
                    continue
                return False
            how, what, repeats, group, cell = plan
            if group:
                if seen_groups is None:
                    seen_groups = [group]
                elif group in seen_groups:
                    return False
                else:
                    seen_groups.append(group)
            if repeats:
                if type(value) is not list or not value:
                    return False
                if how == 0:
                    for item in value:
                        if not what(item):
                            return False
                else:
                    for item in value:
                        if not self._complex(item, how, what, cell):
                            return False
            elif how == 0:
                if not what(value):
                    return False
            elif not self._complex(value, how, what, cell):
                return False
        for key in keys:
            if key not in obj:
                return False
        return not groups or (seen_groups is not None
                              and all(group in seen_groups for group in groups))

    def _twin(self, elem: Element | None, value: Any, has_value: bool) -> bool:
        """A ``_x`` primitive extension: only for a single, non-choice primitive with its
        value beside it, holding an id and/or extensions."""
        if elem is None or not elem[4] or elem[1] or elem[3] or not has_value \
                or type(value) is not dict or not value or not set(value) <= {"id", "extension"}:
            return False
        if "id" in value and not _text(value["id"]):
            return False
        ext = value.get("extension")
        if "extension" in value and (type(ext) is not list or not ext):
            return False
        info = self._types.get("Extension")
        return info is not None and all(type(e) is dict and self._object(e, info, "Extension",
                                                                         False)
                                        for e in ext or ())

    def _complex(self, value: Any, how: int, what: Any, cell: list[Any]) -> bool:
        if type(value) is not dict:
            return False
        if how == 1 or how == 2:
            # a backbone element (its children under its path in this type) or a datatype
            if not value or "resourceType" in value:
                return False
            compiled = cell[0]
            if compiled is None:
                compiled = cell[0] = self._compiled(*what)
            return self._run(value, compiled, False)
        if how == 3:
            return self._resource(value, what)
        return False


#: distribution → its top-level module, where its .dist-info folder sits beside it
_MODULES = {"fhir.resources": "fhir.resources", "fhir.core": "fhir_core"}


def installed_version(dist: str) -> str:
    """The installed version of ``dist``: from its ``.dist-info`` folder's name beside the
    module (a directory listing), else importlib.metadata (a tenth of a second to import and
    look up, paid by every validating process otherwise)."""
    import importlib.util
    import os

    try:
        module = _MODULES[dist]
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            site = Path(spec.origin).parents[module.count(".") + 1]
            prefix = dist.replace("-", "_").replace(".", "_").lower() + "-"
            found = [n[len(prefix):-len(".dist-info")] for n in os.listdir(site)
                     if n.lower().startswith(prefix) and n.endswith(".dist-info")]
            if len(found) == 1:
                return found[0]
    except (KeyError, ImportError, OSError, ValueError, IndexError):
        pass
    from importlib import metadata

    return metadata.version(dist)


def build_tables() -> dict[str, Any]:
    """The element tables of every R4B model (imports and builds them all: minutes)."""
    import importlib
    from importlib import metadata

    from fhir.resources.R4B import fhirtypes, get_fhir_model_class

    from .models import ABSTRACT_RESOURCES, _field_type, _type_code, _unwrap

    resource_base = importlib.import_module("fhir.resources.R4B.resource").Resource
    types: dict[str, Any] = {}
    for tname in sorted(n[:-4] for n in fhirtypes.__all__ if n.endswith("Type")):
        try:
            cls = get_fhir_model_class(tname)
        except (KeyError, ValueError):
            continue
        if _type_code(cls) != tname:
            continue  # a backbone element's class: listed under its resource
        info: dict[str, Any] = {
            "kind": "resource" if issubclass(cls, resource_base) else "complex-type",
            "abstract": tname in ABSTRACT_RESOURCES, "children": {}, "groups": {}}
        _fields(cls, tname, info, {cls: tname}, _unwrap, _field_type)
        types[tname] = info
    return {"versions": {d: metadata.version(d) for d in DISTRIBUTIONS}, "types": types}


def _fields(cls: Any, path: str, info: dict[str, Any], seen: dict[Any, str],
            unwrap: Any, field_type: Any) -> None:
    kids: dict[str, list[Any]] = {}
    info["children"][path] = kids
    aliases = {f.alias or n for n, f in cls.model_fields.items()}
    for fname, field in cls.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if not extra.get("element_property"):
            continue
        json_name = field.alias or fname
        repeats, target = unwrap(field.annotation)
        tcode, backbone = field_type(target)
        if not tcode:
            tcode = "?"  # a type the models do not name (uuid): never proved
        group = extra.get("one_of_many")
        if not (isinstance(group, str) and json_name.startswith(group) and json_name != group):
            group = ""
        else:
            info["groups"].setdefault(path, {})[group] = bool(extra.get("one_of_many_required"))
        required = bool(extra.get("element_required") or field.is_required())
        sub = ""
        if backbone is not None:
            if backbone in seen:  # recursive (EvidenceVariable.characteristic …)
                sub = seen[backbone]
            else:
                sub = f"{path}.{json_name}"
                _fields(backbone, sub, info, {**seen, backbone: sub}, unwrap, field_type)
        kids[json_name] = [tcode if backbone is None else "BackboneElement", repeats,
                           required, group, "_" + json_name in aliases, sub]


if __name__ == "__main__":
    out = Path(__file__).with_name(TABLE)
    tables = build_tables()
    out.write_text(json.dumps(tables, separators=(",", ":"), sort_keys=True) + "\n",
                   encoding="utf-8")
    print(out, len(tables["types"]), "types", tables["versions"])
