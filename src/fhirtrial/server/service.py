"""The FHIR interactions, independent of Flask: the REST views and the batch/transaction
processor both call these, so a Bundle entry behaves exactly like the same request alone."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from ..errors import FhirtrialError, GoneError, PreconditionFailedError, ValidationError
from . import search as search_mod
from .store import Store, Stored, Transaction, dumps
from .validation import known_type, validate_resource

ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_PLACEHOLDER = re.compile(rb'"@@res-(\d+)@@"')


class BadRequest(FhirtrialError):
    issue_code = "invalid"
    http_status = 400


class HttpError(FhirtrialError):
    """An error whose HTTP status is chosen where it is raised (401, 403, 405, 406, 413…)."""

    def __init__(self, status: int, code: str, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.http_status = status
        self.issue_code = code


@dataclass(slots=True)
class Result:
    """What one interaction produced: a stored version and/or a body, and its status."""

    status: int
    stored: Stored | None = None
    body: dict[str, Any] | None = None
    raw: bytes | None = None  # a pre-serialised body (search bundles)


def check_type(fv: str, rtype: str, supported: Callable[[str], bool]) -> None:
    if not supported(rtype):
        if known_type(fv, rtype):
            raise HttpError(404, "not-supported",
                            f"Resource type {rtype} is not supported by this server")
        raise HttpError(404, "not-found", f"Unknown resource type {rtype!r}")


def check_body(fv: str, rtype: str, resource: Any, rid: str | None, *, validate: bool) -> None:
    """The checks every write runs before touching the store (400 / 422)."""
    if not isinstance(resource, dict):
        raise BadRequest("The body is not a JSON object", location="Resource")
    if resource.get("resourceType") != rtype:
        raise BadRequest(f"resourceType {resource.get('resourceType')!r} in the body does not "
                         f"match {rtype} in the URL", location="resourceType")
    if rid is not None:
        if "id" not in resource:
            raise BadRequest("An update must carry the resource's id", location=f"{rtype}.id")
        if resource["id"] != rid:
            raise BadRequest(f"id {resource['id']!r} in the body does not match {rid!r} in the "
                             "URL", location=f"{rtype}.id")
    if "id" in resource and (not isinstance(resource["id"], str) or
                             not ID_RE.match(resource["id"])):
        raise BadRequest(f"id {resource['id']!r} is not a valid FHIR id", location=f"{rtype}.id")
    if validate:
        findings = validate_resource(fv, resource)
        if findings:
            raise ValidationError(f"{rtype} failed validation ({len(findings)} issue(s))",
                                  findings=findings)


def _criteria(fv: str, rtype: str, query: str) -> list[search_mod.Criterion]:
    items = parse_qsl(query, keep_blank_values=True)
    q = search_mod.parse(fv, rtype, items, strict=True)
    if not q.criteria:
        raise BadRequest(f"Conditional criteria {query!r} select nothing", location=query)
    return q.criteria


def create(tx: Transaction, fv: str, rtype: str, resource: dict[str, Any], *,
           if_none_exist: str | None, validate: bool, rid: str | None = None) -> Result:
    """POST: a new resource with a server id (200 and the match when If-None-Exist matches)."""
    check_body(fv, rtype, resource, None, validate=validate)
    if if_none_exist:
        found = tx.search_ids(fv, rtype, _criteria(fv, rtype, if_none_exist))
        if len(found) > 1:
            raise PreconditionFailedError(
                f"If-None-Exist {if_none_exist!r} matches more than one {rtype}")
        if found:
            return Result(200, tx.read(fv, rtype, found[0]))
    body = {k: v for k, v in resource.items() if k != "id"}
    return Result(201, tx.create(fv, body, rid))


def update(tx: Transaction, fv: str, rtype: str, rid: str, resource: dict[str, Any], *,
           if_match: int | None, validate: bool) -> Result:
    """PUT Type/id: update, or create with the client's id (201)."""
    check_body(fv, rtype, resource, rid, validate=validate)
    stored, created = tx.update(fv, resource, if_match=if_match)
    return Result(201 if created else 200, stored)


def conditional_update(tx: Transaction, fv: str, rtype: str, query: str,
                       resource: dict[str, Any], *, if_match: int | None,
                       validate: bool) -> Result:
    """PUT Type?criteria: update the one match, create when none, 412 when several."""
    found = tx.search_ids(fv, rtype, _criteria(fv, rtype, query))
    if len(found) > 1:
        raise PreconditionFailedError(f"{rtype}?{query} matches more than one resource")
    if found:
        if "id" in resource and resource["id"] != found[0]:
            raise BadRequest(f"id {resource['id']!r} in the body does not match the resource "
                             f"{rtype}/{found[0]} the criteria select", location=f"{rtype}.id")
        return update(tx, fv, rtype, found[0], {**resource, "id": found[0]},
                      if_match=if_match, validate=validate)
    if "id" in resource:
        return update(tx, fv, rtype, resource["id"], resource, if_match=if_match,
                      validate=validate)
    return create(tx, fv, rtype, resource, if_none_exist=None, validate=validate)


def delete(tx: Transaction, fv: str, rtype: str, rid: str) -> Result:
    stored = tx.delete(fv, rtype, rid)
    return Result(200 if stored else 204, stored)


# ---------------------------------------------------------------- search and history bundles

def search(store: Store, fv: str, rtype: str, items: list[tuple[str, str]], *, base: str,
           strict: bool, default_count: int) -> Result:
    """Run a search and build its searchset Bundle (bytes, built around the stored bytes)."""
    if not any(k == "_count" for k, _ in items):
        items = [*items, ("_count", str(default_count))]
    q = search_mod.parse(fv, rtype, items, strict=strict)
    rows, total = store.search(fv, rtype, q.criteria, sort=q.sort, offset=q.offset,
                               count=q.count, total=q.total != "none" or q.summary == "count")
    included: list[Stored] = []
    seen = {(rtype, r.id) for r in rows}
    for inc in q.includes:
        found = (store.revinclude(fv, rows, inc.source, inc.param) if inc.reverse
                 else store.include(fv, rows, rtype, inc.param, inc.target))
        for s in found:
            if (s.type, s.id) not in seen:
                seen.add((s.type, s.id))
                included.append(s)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = _links(base, rtype, q, total, len(rows))
    entries: list[dict[str, Any]] = []
    raws: list[bytes] = []
    for s, mode in [*((r, "match") for r in rows), *((r, "include") for r in included)]:
        assert s.body is not None
        if q.summary not in (None, "false") or q.elements:
            raw = dumps(search_mod.shape(s.resource(), q.summary, q.elements))
        else:
            raw = s.body
        entries.append({"fullUrl": f"{base}/{s.type}/{s.id}", "resource": f"@@res-{len(raws)}@@",
                        "search": {"mode": mode}})
        raws.append(raw)
    issues: list[dict[str, Any]] = [{"severity": "warning", "code": "not-supported",
               "diagnostics": f"Search parameter {n!r} is not supported and was ignored"}
              for n in q.ignored]
    issues += [{"severity": "warning", "code": "value", "diagnostics": message,
                "expression": [name]} for name, message in q.warnings]
    if issues:
        entries.append({"resource": {"resourceType": "OperationOutcome", "issue": issues},
                        "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    # splice the stored bytes in, in one pass, instead of re-parsing every resource
    out = _PLACEHOLDER.sub(lambda m: raws[int(m.group(1))], dumps(bundle))
    return Result(200, raw=out)


def _links(base: str, rtype: str, q: search_mod.SearchQuery, total: int | None,
           page_len: int) -> list[dict[str, str]]:
    kept = [(k, v) for k, v in q.used if k not in ("_count", "_offset")]

    def url(offset: int) -> str:
        params = [*kept, ("_count", str(q.count))]
        if offset:
            params.append(("_offset", str(offset)))
        return f"{base}/{rtype}?{urlencode(params)}"

    links = [{"relation": "self", "url": url(q.offset)}]
    if q.count == 0:
        return links
    links.append({"relation": "first", "url": url(0)})
    more = (q.offset + page_len < total) if total is not None else page_len == q.count
    if more:
        links.append({"relation": "next", "url": url(q.offset + q.count)})
    if q.offset > 0:
        links.append({"relation": "previous", "url": url(max(0, q.offset - q.count))})
    if total is not None and total > 0:
        links.append({"relation": "last", "url": url(((total - 1) // q.count) * q.count)})
    return links


def history(store: Store, fv: str, rtype: str, rid: str | None, items: list[tuple[str, str]],
            *, base: str, default_count: int) -> Result:
    args = dict(items)
    count = search_mod.parse_count("_count", args["_count"], search_mod.MAX_COUNT, clamp=True) \
        if "_count" in args else default_count
    offset = search_mod.parse_count("_offset", args["_offset"], search_mod.MAX_OFFSET,
                                    clamp=False) if "_offset" in args else 0
    since = None
    if "_since" in args:
        from .searchparams import date_range

        rng = date_range(args["_since"])
        if rng is None:
            raise BadRequest(f"_since={args['_since']!r}: not a FHIR instant", location="_since")
        since = rng[0][:23] + "Z"
    if rid is not None:
        # a deleted resource still has a history; an unknown one is a 404
        with contextlib.suppress(GoneError):
            store.read(fv, rtype, rid)
    entries, total = store.history(fv, rtype, rid, since=since, count=count, offset=offset)
    path = f"{base}/{rtype}" + (f"/{rid}" if rid else "") + "/_history"
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history", "total": total,
                              "link": [{"relation": "self",
                                        "url": f"{path}?_count={count}&_offset={offset}"}]}
    if offset + len(entries) < total:
        bundle["link"].append({"relation": "next",
                               "url": f"{path}?_count={count}&_offset={offset + count}"})
    if offset:
        bundle["link"].append({"relation": "previous",
                               "url": f"{path}?_count={count}&_offset={max(0, offset - count)}"})
    out = []
    for e in entries:
        s = e.stored
        entry: dict[str, Any] = {"fullUrl": f"{base}/{s.type}/{s.id}"}
        if s.body is not None:
            entry["resource"] = s.resource()
        entry["request"] = {"method": e.method,
                            "url": f"{s.type}/{s.id}" if e.method != "POST" else s.type}
        entry["response"] = {"status": "410 Gone" if s.body is None else
                             ("201 Created" if s.vid == 1 else "200 OK"),
                             "etag": f'W/"{s.vid}"', "lastModified": s.last_updated}
        out.append(entry)
    if out:
        bundle["entry"] = out
    return Result(200, body=bundle)


#: the largest version id a store can hold (SQLite INTEGER); larger ones name no version
MAX_VERSION = 2**63 - 1
_VERSION = re.compile(r"[0-9]{1,19}", re.ASCII)  # ASCII: int() also reads "²" and "٣"


def parse_version(text: str) -> int | None:
    """A version id written in ASCII digits → int; None when it is not one or could not be
    stored (beyond 2^63-1)."""
    if not _VERSION.fullmatch(text):
        return None
    n = int(text)
    return n if n <= MAX_VERSION else None


def parse_if_match(value: str | None) -> int | None:
    """``W/"3"`` → 3; a malformed ETag is a 412, never a silent unconditional write."""
    if value is None:
        return None
    v = value.strip()
    if v.startswith("W/"):
        v = v[2:]
    v = v.strip('"')
    n = parse_version(v)
    if n is None:
        raise PreconditionFailedError(
            f"If-Match {value[:40]!r} is not a version ETag (W/\"n\", n in digits 0-9 below "
            "2^63)")
    return n
