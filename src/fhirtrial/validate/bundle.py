"""Bundle layer: fullUrls, references, transaction requests and reference target types.

Reference resolution follows the Bundle rules of the FHIR spec (bundle.html#references):
``#id`` resolves among the resource's contained resources; an absolute URL or URN against the
entries' fullUrls; a relative ``Type/id`` against the fullUrl base of the entry that holds it,
then against the entries' type and id. A ``urn:`` that resolves nowhere is an error (it can
only mean something inside the Bundle); a relative reference that does not resolve is a
warning (a server may resolve it); an absolute URL outside the Bundle is reported as external.
"""

from __future__ import annotations

import re
from typing import Any

from ..finding import Finding
from .definitions import Node

UUID_URN = re.compile(r"urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                      r"[0-9a-fA-F]{12}")
OID_URN = re.compile(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+")
RESTFUL = re.compile(r"(?P<base>.*/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
                     r"(/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?")
METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}


def check_bundle(bundle: dict[str, Any], expr: str = "Bundle") -> list[Finding]:
    """fullUrl form and uniqueness, and the request of transaction and batch entries."""
    out: list[Finding] = []
    btype = bundle.get("type")
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return out
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        here = f"{expr}.entry[{i}]"
        full = entry.get("fullUrl")
        res = entry.get("resource") if isinstance(entry.get("resource"), dict) else None
        if isinstance(full, str):
            out.extend(_full_url_form(full, res, here))
            version = (res or {}).get("meta", {}).get("versionId") if res else None
            key = f"{full}|{version or ''}"
            if key in seen and btype != "history":
                out.append(Finding("error", "duplicate",
                                   f"fullUrl {full} is already used by entry[{seen[key]}]; "
                                   "fullUrls must be unique in a Bundle", f"{here}.fullUrl"))
            seen.setdefault(key, i)
        if btype in ("transaction", "batch"):
            out.extend(_request(entry.get("request"), res, here, btype))
    return out


def _full_url_form(full: str, res: dict[str, Any] | None, here: str) -> list[Finding]:
    at = f"{here}.fullUrl"
    if full.startswith("urn:uuid:"):
        if not UUID_URN.fullmatch(full):
            return [Finding("error", "value", f"fullUrl {full} is not a valid urn:uuid", at)]
        return []
    if full.startswith("urn:oid:"):
        if not OID_URN.fullmatch(full):
            return [Finding("error", "value", f"fullUrl {full} is not a valid urn:oid", at)]
        return []
    if not re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", full):
        return [Finding("error", "value",
                        f"fullUrl {full} is not absolute (a URL or urn:uuid/urn:oid is needed)",
                        at)]
    if "/_history/" in full:
        return [Finding("error", "value", f"fullUrl {full} must not be version specific", at)]
    m = RESTFUL.fullmatch(full)
    if m and res is not None and isinstance(res.get("id"), str) and m["base"] \
            and m["type"] == res.get("resourceType") and m["id"] != res["id"]:
        # a warning, as in the HL7 validator: official examples carry such mismatches
        return [Finding("warning", "value",
                        f"fullUrl {full} does not end with the resource's id {res['id']}", at)]
    return []


def _request(request: Any, res: dict[str, Any] | None, here: str, btype: str) -> list[Finding]:
    if not isinstance(request, dict):
        return [Finding("error", "required",
                        f"Every entry of a {btype} needs a request (method and url)",
                        f"{here}.request")]
    out = []
    method, url = request.get("method"), request.get("url")
    if method not in METHODS:
        out.append(Finding("error", "code-invalid" if method else "required",
                           f"request.method must be one of {', '.join(sorted(METHODS))}",
                           f"{here}.request.method"))
    if not isinstance(url, str) or not url:
        out.append(Finding("error", "required", "request.url is required", f"{here}.request.url"))
        return out
    rtype = (res or {}).get("resourceType")
    path = url.split("?", 1)[0]
    if method == "PUT" and rtype:
        m = RESTFUL.fullmatch(path)
        if m and (m["type"] != rtype or (res or {}).get("id") not in (None, m["id"])):
            out.append(Finding("error", "value",
                               f"PUT {url} does not match the entry's {rtype}/"
                               f"{(res or {}).get('id')}", f"{here}.request.url"))
    elif method == "POST" and rtype and re.fullmatch(r"[A-Z][A-Za-z]+", path) and path != rtype:
        out.append(Finding("error", "value",
                           f"POST {url} does not match the entry's resource type {rtype}",
                           f"{here}.request.url"))
    return out


class ReferenceIndex:
    """What references in a Bundle can resolve to."""

    def __init__(self, bundle: dict[str, Any] | None) -> None:
        self.by_full_url: dict[str, dict[str, Any]] = {}
        self.by_type_id: dict[tuple[str, str], dict[str, Any]] = {}
        self.full_url_of: dict[int, str] = {}
        self.btype = (bundle or {}).get("type")
        entries = (bundle or {}).get("entry")
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
                continue
            res = entry["resource"]
            full = entry.get("fullUrl")
            if isinstance(full, str):
                self.by_full_url[full] = res
                self.full_url_of[id(res)] = full
            if isinstance(res.get("id"), str) and isinstance(res.get("resourceType"), str):
                self.by_type_id.setdefault((res["resourceType"], res["id"]), res)

    def resolve(self, ref: str, holder: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        """(how, target): how is bundle / contained / external / missing / unresolved."""
        if ref.startswith("#"):
            if ref == "#":
                return "contained", holder
            for c in holder.get("contained", []) or []:
                if isinstance(c, dict) and c.get("id") == ref[1:]:
                    return "contained", c
            return "missing", None
        if ref in self.by_full_url:
            return "bundle", self.by_full_url[ref]
        if ref.startswith("urn:"):
            return "missing", None
        m = RESTFUL.fullmatch(ref)
        if m and not m["base"]:
            base_full = self.full_url_of.get(id(holder), "")
            bm = RESTFUL.fullmatch(base_full)
            if bm and bm["base"] and bm["base"] + f"{m['type']}/{m['id']}" in self.by_full_url:
                return "bundle", self.by_full_url[bm["base"] + f"{m['type']}/{m['id']}"]
            target = self.by_type_id.get((m["type"], m["id"]))
            if target is not None:
                return "bundle", target
            return "unresolved", None
        if m and m["base"]:
            target = self.by_full_url.get(f"{m['base']}{m['type']}/{m['id']}")
            return ("bundle", target) if target is not None else ("external", None)
        return "external", None


def check_references(nodes: list[Node], index: ReferenceIndex, in_bundle: bool) -> list[Finding]:
    """Resolution and target type of every Reference in walked nodes."""
    out: list[Finding] = []
    for node in nodes:
        if node.type != "Reference" or not isinstance(node.value, dict):
            continue
        ref = node.value.get("reference")
        if not isinstance(ref, str) or not ref:
            continue
        at = f"{node.expr}.reference"
        how, target = index.resolve(ref, node.container or node.resource)
        if how == "missing":
            why = "no contained resource has that id" if ref.startswith("#") \
                else "no entry has that fullUrl"
            out.append(Finding("error", "not-found", f"Reference {ref} does not resolve ({why})",
                               at))
            continue
        if how == "unresolved" and in_bundle and index.btype not in ("transaction", "batch",
                                                                   "searchset", "history"):
            out.append(Finding("warning", "not-found",
                               f"Reference {ref} is not in the Bundle (dangling unless the "
                               "receiving server holds it)", at))
        allowed = node.elem.target_types.get("Reference")
        if not allowed or "Resource" in allowed:
            continue
        if target is not None:
            ttype = target.get("resourceType")
        else:
            m = RESTFUL.fullmatch(ref.split("?", 1)[0])
            ttype = m["type"] if m else None
        if isinstance(ttype, str) and ttype not in allowed:
            out.append(Finding("error", "structure",
                               f"Reference {ref} points to a {ttype}; allowed here: "
                               f"{', '.join(allowed)}", at))
    return out
