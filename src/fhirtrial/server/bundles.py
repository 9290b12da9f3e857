"""``POST [base]`` with a transaction (all-or-nothing, ``urn:uuid`` references rewritten) or a
batch Bundle (each entry on its own)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson

from ..errors import (
    ConflictError,
    FhirtrialError,
    NotFoundError,
    PreconditionFailedError,
    operation_outcome,
)
from ..model import Finding
from . import service
from .service import BadRequest, Result
from .store import Store, Stored, Transaction

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content"}
log = logging.getLogger("fhirtrial.server")


def process(store: Store, fv: str, bundle: Any, *, base: str, validate: bool,
            supported: Callable[[str], bool], default_count: int,
            representation: bool) -> dict[str, Any]:
    """Run a transaction or batch Bundle; returns the response Bundle."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BadRequest("POST to the base URL takes a Bundle", location="resourceType")
    btype = bundle.get("type")
    if btype not in ("transaction", "batch"):
        raise BadRequest(f"Bundle.type {btype!r}: expected transaction or batch",
                         location="Bundle.type")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise BadRequest("Bundle.entry is not a list", location="Bundle.entry")
    for i, e in enumerate(entries):
        _check_entry(e, i)
    ctx = _Ctx(store, fv, base, validate, supported, default_count, representation)
    if btype == "transaction":
        with store.transaction() as tx:
            responses = _transaction(ctx, tx, entries)
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": responses}
    out = []
    for e in entries:
        try:
            if e["request"]["method"] in ("GET", "HEAD"):
                out.append(_response(ctx, _get(ctx, e["request"]["url"])))
            else:
                with store.transaction() as tx:
                    out.append(_response(ctx, _write(ctx, tx, e)))
        except FhirtrialError as err:
            out.append({"response": {"status": f"{err.http_status}",
                                     "outcome": err.to_operation_outcome()}})
        except Exception as err:  # the last resort: the entries before it have committed
            # each entry is its own unit: one that fails unexpectedly is answered in its
            # place (its own writes rolled back), never as a 500 for the whole Bundle
            log.exception("unhandled error in Bundle.entry[%d] of a batch", len(out))
            out.append({"response": {"status": "500", "outcome": operation_outcome([Finding(
                "fatal", "exception", f"Internal server error ({type(err).__name__}); this "
                "entry was not applied")])}})
    return {"resourceType": "Bundle", "type": "batch-response", "entry": out}


class _Ctx:
    def __init__(self, store: Store, fv: str, base: str, validate: bool,
                 supported: Callable[[str], bool], default_count: int,
                 representation: bool) -> None:
        self.store, self.fv, self.base = store, fv, base
        self.validate, self.supported = validate, supported
        self.default_count, self.representation = default_count, representation


def _check_entry(e: Any, i: int) -> None:
    loc = f"Bundle.entry[{i}]"
    if not isinstance(e, dict) or not isinstance(e.get("request"), dict):
        raise BadRequest(f"{loc} has no request", location=f"{loc}.request")
    method, url = e["request"].get("method"), e["request"].get("url")
    # isinstance first: a list or object as the method is unhashable in the _ORDER lookup
    if not isinstance(method, str) or method not in _ORDER or not isinstance(url, str) \
            or not url:
        raise BadRequest(f"{loc}.request needs a method (GET, POST, PUT, DELETE) and a url",
                         location=f"{loc}.request")
    if method in ("POST", "PUT") and not isinstance(e.get("resource"), dict):
        raise BadRequest(f"{loc}: {method} needs a resource", location=f"{loc}.resource")
    if method == "PATCH":
        raise service.HttpError(422, "not-supported", f"{loc}: PATCH is not supported",
                                location=f"{loc}.request.method")


def _split_url(url: str) -> tuple[str, str | None, str | None]:
    """``Type/id`` / ``Type?query`` / ``Type`` → (type, id, query)."""
    path, _, query = url.partition("?")
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise BadRequest(f"entry url {url!r} names no resource type", location=url)
    return parts[0], parts[1] if len(parts) > 1 else None, query or None


def _transaction(ctx: _Ctx, tx: Transaction, entries: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    # 1. decide every entry's logical id first, so references can be rewritten before writing
    idmap: dict[str, str] = {}
    targets: list[tuple[str, str | None]] = []
    for e in entries:
        req = e["request"]
        rtype, rid, query = _split_url(req["url"])
        service.check_type(ctx.fv, rtype, ctx.supported)
        if req["method"] == "POST":
            rid = None
            cond = req.get("ifNoneExist")
            if cond:
                found = tx.search_ids(ctx.fv, rtype, service._criteria(ctx.fv, rtype, cond))
                if len(found) > 1:
                    raise PreconditionFailedError(f"ifNoneExist {cond!r} matches several")
                rid = found[0] if found else None
            rid = rid or tx.next_id(ctx.fv, rtype)
        elif req["method"] == "PUT" and query:
            found = tx.search_ids(ctx.fv, rtype, service._criteria(ctx.fv, rtype, query))
            if len(found) > 1:
                raise PreconditionFailedError(f"{req['url']} matches more than one resource")
            rid = found[0] if found else (e["resource"].get("id") or tx.next_id(ctx.fv, rtype))
        targets.append((rtype, rid))
        full = e.get("fullUrl")
        if isinstance(full, str) and rid:
            idmap[full] = f"{rtype}/{rid}"
    # 2. rewrite urn:uuid references to the ids just decided
    resources = [_resolved(e["resource"], idmap) if "resource" in e else None
                 for e in entries]
    # 3. run DELETE, POST, PUT, GET in that order; answer in the Bundle's order
    results: list[Result | None] = [None] * len(entries)
    order = sorted(range(len(entries)), key=lambda i: _ORDER[entries[i]["request"]["method"]])
    for i in order:
        e, (rtype, rid) = entries[i], targets[i]
        method = e["request"]["method"]
        try:
            if method == "GET":
                results[i] = _get(ctx, e["request"]["url"], tx)
            elif method == "DELETE":
                if rid is None:
                    raise BadRequest("conditional delete is not supported",
                                     location=f"Bundle.entry[{i}].request.url")
                results[i] = service.delete(tx, ctx.fv, rtype, rid)
            elif method == "POST":
                res = resources[i]
                assert res is not None
                assert rid is not None
                if e["request"].get("ifNoneExist") and _exists(tx, ctx.fv, rtype, rid):
                    results[i] = Result(200, tx.read(ctx.fv, rtype, rid))
                else:
                    results[i] = service.create(tx, ctx.fv, rtype, res, if_none_exist=None,
                                                validate=ctx.validate, rid=rid)
            else:  # PUT
                res = resources[i]
                assert res is not None
                assert rid is not None
                if "id" not in res:
                    res["id"] = rid
                results[i] = service.update(
                    tx, ctx.fv, rtype, rid, res, validate=ctx.validate,
                    if_match=service.parse_if_match(e["request"].get("ifMatch")))
        except FhirtrialError as err:
            err.message = f"Bundle.entry[{i}] ({method} {e['request']['url']}): {err.message}"
            err.args = (err.message,)
            raise
    _check_conditions_unique(ctx, tx, entries, targets)
    return [_response(ctx, r) for r in results if r is not None]


class DuplicateError(ConflictError):
    issue_code = "duplicate"


def _check_conditions_unique(ctx: _Ctx, tx: Transaction, entries: list[dict[str, Any]],
                             targets: list[tuple[str, str | None]]) -> None:
    """Every conditional entry's criteria must still select one resource once all the
    transaction's writes are made: two conditional creates of one identifier would otherwise
    both create, and every later conditional write of it fail with "matches more than one".
    Refused (409), so the whole transaction rolls back."""
    for i, e in enumerate(entries):
        req = e["request"]
        rtype, _, query = _split_url(req["url"])
        cond = req.get("ifNoneExist") if req["method"] == "POST" else \
            query if req["method"] == "PUT" else None
        if not cond:
            continue
        found = tx.search_ids(ctx.fv, rtype, service._criteria(ctx.fv, rtype, cond))
        if len(found) > 1:
            others = [j for j, t in enumerate(targets) if j != i and t[0] == rtype
                      and t[1] in found]
            raise DuplicateError(
                f"Bundle.entry[{i}] ({req['method']} {req['url']}"
                + (f", ifNoneExist {cond}" if req["method"] == "POST" else "")
                + f"): after this transaction its criteria would match more than one {rtype}"
                + (f" (also written by Bundle.entry[{others[0]}])" if others else "")
                + "; two entries of one transaction may not create the same resource. "
                "Nothing was stored", location=f"Bundle.entry[{i}].request")


def _exists(tx: Transaction, fv: str, rtype: str, rid: str) -> bool:
    try:
        tx.read(fv, rtype, rid)
    except FhirtrialError:
        return False
    return True


#: every ``"reference":"…"`` member in orjson's compact output (no spaces; a quote inside a
#: string is always escaped, so this cannot match inside a string value)
_REFERENCE = re.compile(rb'"reference":"((?:[^"\\]|\\.)*)"')
_LOCAL_REF = ("urn:uuid:", "urn:oid:")


class _Escaped(Exception):
    """A reference with a JSON escape in it: left to :func:`_rewritten`."""


def _resolved(resource: Any, idmap: dict[str, str]) -> Any:
    """What :func:`_rewritten` gives, done on the resource's bytes (orjson, C speed): a
    resource none of whose references names an entry of the transaction (nor a ``urn:``)
    is a shallow copy, and one that has such references is its bytes with them replaced,
    parsed again. Walking a registry study's few hundred nodes in Python to copy them cost
    more than the study's whole store write. Anything orjson would not write back as it
    was given (a big int, a lone surrogate, NaN written as ``null``, an escape inside a
    reference) takes the walk."""
    if not isinstance(resource, dict):
        return _rewritten(resource, idmap)
    try:
        raw = orjson.dumps(resource)
    except TypeError:
        return _rewritten(resource, idmap)
    if not idmap and b'"reference":"urn:uuid:' not in raw \
            and b'"reference":"urn:oid:' not in raw:
        # nothing to rewrite, nothing to refuse (orjson never escapes the letters and ':'
        # of a urn: prefix, so the bytes show every reference that has one)
        return dict(resource)

    def local(value: bytes) -> str | None:
        if b"\\" in value:
            raise _Escaped
        ref = value.decode("utf-8")
        return ref if ref in idmap or ref.startswith(_LOCAL_REF) else None

    try:
        if not any(local(m.group(1)) for m in _REFERENCE.finditer(raw)):
            return dict(resource)
        if b"null" in raw:
            return _rewritten(resource, idmap)

        def replace(m: re.Match[bytes]) -> bytes:
            ref = local(m.group(1))
            if ref is None:
                return m.group(0)
            if ref not in idmap:
                raise BadRequest(f"reference {ref!r} names no entry of this transaction",
                                 location="Bundle.entry.resource")
            return b'"reference":' + orjson.dumps(idmap[ref])

        return orjson.loads(_REFERENCE.sub(replace, raw))
    except _Escaped:
        return _rewritten(resource, idmap)


def _rewritten(node: Any, idmap: dict[str, str]) -> Any:
    """A copy of a JSON resource with its references rewritten (one pass: copying with
    ``copy.deepcopy`` first cost more than the whole store write)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "reference" and isinstance(v, str):
                if v in idmap:
                    v = idmap[v]
                elif v.startswith(("urn:uuid:", "urn:oid:")):
                    raise BadRequest(f"reference {v!r} names no entry of this transaction",
                                     location="Bundle.entry.resource")
                out[k] = v
            else:
                out[k] = _rewritten(v, idmap)
        return out
    if isinstance(node, list):
        return [_rewritten(v, idmap) for v in node]
    return node


def _get(ctx: _Ctx, url: str, tx: Transaction | None = None) -> Result:
    rtype, rid, query = _split_url(url)
    service.check_type(ctx.fv, rtype, ctx.supported)
    if rid is None:
        items = parse_qsl(query or "", keep_blank_values=True)
        return service.search(ctx.store, ctx.fv, rtype, items, base=ctx.base, strict=False,
                              default_count=ctx.default_count)
    parts = [p for p in url.split("?")[0].split("/") if p]
    if len(parts) == 4 and parts[2] == "_history":
        vid = service.parse_version(parts[3])
        if vid is None:
            raise NotFoundError(f"{rtype}/{rid} has no version {parts[3][:40]!r}",
                                location=url)
        s = ctx.store.vread(ctx.fv, rtype, rid, vid)
    else:
        s = ctx.store.read(ctx.fv, rtype, rid)
    return Result(200, s, body=s.resource())  # a read's answer carries the resource


def _write(ctx: _Ctx, tx: Transaction, e: dict[str, Any]) -> Result:
    req = e["request"]
    rtype, rid, query = _split_url(req["url"])
    service.check_type(ctx.fv, rtype, ctx.supported)
    if req["method"] == "POST":
        return service.create(tx, ctx.fv, rtype, e["resource"],
                              if_none_exist=req.get("ifNoneExist"), validate=ctx.validate)
    if req["method"] == "DELETE":
        if rid is None:
            raise BadRequest("conditional delete is not supported", location=req["url"])
        return service.delete(tx, ctx.fv, rtype, rid)
    if_match = service.parse_if_match(req.get("ifMatch"))
    if query:
        return service.conditional_update(tx, ctx.fv, rtype, query, e["resource"],
                                          if_match=if_match, validate=ctx.validate)
    if rid is None:
        raise BadRequest("PUT needs Type/id or Type?criteria", location=req["url"])
    return service.update(tx, ctx.fv, rtype, rid, e["resource"], if_match=if_match,
                          validate=ctx.validate)


def _response(ctx: _Ctx, r: Result) -> dict[str, Any]:
    import json

    resp: dict[str, Any] = {"status": _STATUS_TEXT.get(r.status, str(r.status))}
    entry: dict[str, Any] = {}
    s: Stored | None = r.stored
    if s is not None:
        entry["fullUrl"] = f"{ctx.base}/{s.type}/{s.id}"
        resp["location"] = f"{s.type}/{s.id}/_history/{s.vid}"
        resp["etag"] = f'W/"{s.vid}"'
        resp["lastModified"] = s.last_updated
        if s.body is not None and (ctx.representation or r.body is not None):
            entry["resource"] = s.resource()
    elif r.raw is not None:
        entry["resource"] = json.loads(r.raw)
    elif r.body is not None:
        entry["resource"] = r.body
    entry["response"] = resp
    return entry
