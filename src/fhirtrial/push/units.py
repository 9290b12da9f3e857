"""A study's Bundle → a push unit: resources keyed on identifiers, references made explicit.

Every resource is pushed with a conditional update on a business identifier
(``PUT ResearchStudy?identifier=http://clinicaltrials.gov|NCT…``), so the server keeps its own
ids and a re-run finds what it wrote. References inside the unit are rewritten to ``urn:uuid``
fullUrls, which transactions resolve; batches and single requests get server ids instead.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..convert.ids import CTGOV_SYSTEM, IDENTIFIER_SYSTEM
from ..errors import SourceError

_NS = uuid.UUID("0b6c7f1e-3f0a-5d8e-9b1c-2a4d6e8f0a1c")
CTGOV_SYSTEMS = (CTGOV_SYSTEM, "https://clinicaltrials.gov", "http://clinicaltrials.gov/nctid")


@dataclass(slots=True)
class Item:
    """One resource to put on the server."""

    full_url: str  # urn:uuid:… (bundle-local name)
    resource: dict[str, Any]  # references to unit members are full_urls
    key: tuple[str, str] | None  # (system, value) of the identifier a conditional PUT uses
    deps: set[str] = field(default_factory=set)  # full_urls this resource references

    @property
    def type(self) -> str:
        return str(self.resource["resourceType"])

    @property
    def label(self) -> str:
        return f"{self.type}/{self.resource.get('id') or (self.key[1] if self.key else '?')}"

    def search_url(self) -> str:
        """``Type?identifier=system|value`` (or ``Type/id`` for a resource with no identifier)."""
        if self.key:
            return f"{self.type}?identifier={quote(self.key[0] + '|' + self.key[1], safe=':/|')}"
        return f"{self.type}/{self.resource['id']}"


@dataclass(slots=True)
class Unit:
    """The resources of one study: pushed, reported and journalled together."""

    name: str
    items: list[Item]
    digest: str
    source: str = ""


def _identifier_key(resource: dict[str, Any]) -> tuple[str, str] | None:
    idents = [i for i in resource.get("identifier") or []
              if isinstance(i, dict) and i.get("system") and i.get("value")]
    if resource.get("resourceType") == "ResearchStudy":
        for i in idents:
            if i["system"] in CTGOV_SYSTEMS:
                return (i["system"], i["value"])
    for i in idents:
        if i["system"] == IDENTIFIER_SYSTEM:
            return (i["system"], i["value"])
    # any other system|value pair is still a business key the server can search on
    return (idents[0]["system"], idents[0]["value"]) if idents else None


def json_copy(node: Any) -> Any:
    """A deep copy of a JSON tree (dicts, lists, scalars): several times faster than
    ``copy.deepcopy``, which a push would otherwise spend most of its CPU in."""
    if isinstance(node, dict):
        return {k: json_copy(v) if isinstance(v, (dict, list)) else v for k, v in node.items()}
    if isinstance(node, list):
        return [json_copy(v) if isinstance(v, (dict, list)) else v for v in node]
    return node


def iter_references(node: Any) -> Iterator[dict[str, Any]]:
    """Every Reference-shaped object (a dict with a string ``reference``) in a resource."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for v in node.values():
            yield from iter_references(v)
    elif isinstance(node, list):
        for v in node:
            yield from iter_references(v)


def unit_from_bundle(bundle: dict[str, Any], source: str) -> Unit:
    """One Bundle (any type) → one push unit; raises SourceError when it cannot be pushed."""
    if bundle.get("resourceType") != "Bundle":
        raise SourceError(f"{source}: not a Bundle")
    entries = [e for e in bundle.get("entry") or [] if isinstance(e.get("resource"), dict)]
    if not entries:
        raise SourceError(f"{source}: Bundle has no resources")
    items: list[Item] = []
    # what references may say → this unit's urn:uuid name for the target
    names: dict[str, str] = {}
    for n, entry in enumerate(entries):
        res = json_copy(entry["resource"])
        rtype, rid = res.get("resourceType"), res.get("id")
        if not isinstance(rtype, str):
            raise SourceError(f"{source}: entry[{n}] resource has no resourceType")
        key = _identifier_key(res)
        if key is None and not rid:
            raise SourceError(f"{source}: entry[{n}] {rtype} has neither an identifier nor an "
                              "id to update it by")
        full = entry.get("fullUrl") or ""
        if not full.startswith("urn:uuid:"):
            full = f"urn:uuid:{uuid.uuid5(_NS, f'{rtype}/{rid or key}')}"
        for alias in (entry.get("fullUrl"), f"{rtype}/{rid}" if rid else None, full):
            if alias:
                names[alias] = full
        items.append(Item(full, res, key))
    seen: set[str] = set()
    for item in items:
        if item.full_url in seen:
            raise SourceError(f"{source}: {item.label} appears twice in the Bundle")
        seen.add(item.full_url)
        for ref in iter_references(item.resource):
            target = names.get(ref["reference"])
            if target:
                ref["reference"] = target
                if target != item.full_url:
                    item.deps.add(target)
    digest = hashlib.sha256(json.dumps([i.resource for i in items], sort_keys=True,
                                       separators=(",", ":")).encode()).hexdigest()
    return Unit(_unit_name(items, source), items, digest, source)


def _unit_name(items: list[Item], source: str) -> str:
    for item in items:
        if item.type == "ResearchStudy":
            if item.key and item.key[0] in CTGOV_SYSTEMS:
                return item.key[1]
            return str(item.resource.get("id") or source)
    return source


def dependency_order(items: list[Item]) -> list[Item]:
    """Referenced resources before the resources that reference them (stable; cycles kept
    together in input order, since only a transaction can write them)."""
    by_url = {i.full_url: i for i in items}
    order: list[Item] = []
    state: dict[str, int] = {}

    def visit(item: Item) -> None:
        mark = state.get(item.full_url)
        if mark is not None:  # done, or on the stack (a cycle): nothing more to do here
            return
        state[item.full_url] = 1
        for dep in sorted(item.deps):
            if dep in by_url:
                visit(by_url[dep])
        state[item.full_url] = 2
        order.append(item)

    for item in items:
        visit(item)
    return order
