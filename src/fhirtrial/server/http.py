"""Request and response plumbing shared by the views: configuration, store, content
negotiation, Prefer, bodies, and FHIR responses (ETag, Last-Modified, _pretty, HTML)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from flask import Response, current_app, g, request

from ..errors import operation_outcome
from ..model import Finding
from .service import BadRequest, HttpError, Result
from .store import Store, Stored

JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
_FORMAT_ALIASES = {"json": "json", "application/fhir+json": "json", "application/json": "json",
                   "application/json+fhir": "json", "html": "html", "text/html": "html"}


def cfg() -> dict[str, Any]:
    return current_app.config["FHIRTRIAL"]


def store() -> Store:
    return current_app.extensions["fhirtrial.store"]


def base_url() -> str:
    """The base URL of the mount this request came in on (``…/fhir``, ``…/fhir/R4``)."""
    mounts = current_app.extensions["fhirtrial.mounts"]
    tag = (request.blueprint or "fhir").split("_")[0]
    prefix = mounts.get(tag, mounts["fhir"])[0]
    root = cfg()["BASE_URL"] or request.host_url.rstrip("/")
    return root.rstrip("/") + prefix


def negotiate() -> str:
    """``_format`` wins over Accept; json or html, else 406."""
    fmt = request.args.get("_format")
    if fmt is not None:
        chosen = _FORMAT_ALIASES.get(fmt.split(";")[0].strip())
        if chosen is None:
            raise HttpError(406, "not-supported",
                            f"_format={fmt!r} is not supported (json, html)")
        return chosen
    accept = request.accept_mimetypes
    if not accept or accept.provided is False:
        return "json"
    best = accept.best_match([*JSON_TYPES, "text/html"])
    if best is None:
        raise HttpError(406, "not-supported",
                        f"Accept {request.headers.get('Accept')!r}: this server speaks "
                        "application/fhir+json (and text/html for browsers)")
    # a browser asks for text/html first; a client sending */* gets JSON
    if best == "text/html" and accept["text/html"] > accept["application/fhir+json"]:
        return "html"
    return "json"


def prefer(key: str) -> str | None:
    for part in request.headers.get("Prefer", "").split(";"):
        for item in part.split(","):
            k, _, v = item.strip().partition("=")
            if k.strip() == key:
                return v.strip().strip('"')
    return None


def json_body() -> Any:
    data = request.get_data(cache=True)
    limit = cfg()["MAX_BODY_BYTES"]
    if request.content_length is None and len(data) >= limit:
        # a chunked body is cut at the limit (werkzeug raises only on a later read): refuse
        # it as too large instead of parsing a truncated document
        raise HttpError(413, "too-costly", f"The request body is larger than {limit} bytes")
    if not data:
        raise BadRequest("The request has no body", location="Resource")
    try:
        doc = loads_strict(data)
    except _NumberError as e:
        raise BadRequest(f"The body holds {e}", location="Resource") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        where = f" at line {e.lineno} column {e.colno}" if isinstance(e, json.JSONDecodeError) \
            else ""
        raise BadRequest(f"The body is not valid JSON{where}", location="Resource") from None
    except RecursionError:
        doc = None  # deeper than the parser goes: refused below with the same message
    if doc is None or _depth_over(doc, MAX_JSON_DEPTH):
        raise BadRequest(f"The body is nested more than {MAX_JSON_DEPTH} levels deep; no FHIR "
                         "resource is", location="Resource")
    if _SURROGATE_ESCAPE.search(data):
        # json.loads pairs valid \uD83D\uDE00 escapes; a lone one stays in the string and
        # could never be stored or served as UTF-8
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("The body holds an escaped lone surrogate (\\uD800-\\uDFFF), "
                             "which is not a Unicode character", location="Resource") from None
    return doc


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

#: digits of the longest integer a body may hold: FHIR's widest, integer64, has 19; Python's
#: int() refuses more than 4300 (a ValueError that used to surface as a 500)
MAX_INT_DIGITS = 1000


class _NumberError(ValueError):
    """A JSON number no FHIR element can hold (the message completes "The body holds …")."""


def loads_strict(data: bytes | str) -> Any:
    """``json.loads`` refusing what no FHIR element can hold and no JSON writer can write
    back: NaN, Infinity, numbers beyond a float, integers of more than MAX_INT_DIGITS."""
    return json.loads(data, parse_int=_json_int, parse_float=_json_float,
                      parse_constant=_json_constant)


def _json_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise _NumberError(f"an integer of {len(text.lstrip('-'))} digits (at most "
                           f"{MAX_INT_DIGITS})")
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NumberError(f"the number {text[:40]}, beyond the range of a decimal")
    return value


def _json_constant(name: str) -> Any:
    # json.loads takes NaN and Infinity, which are not JSON and could not be served back
    raise _NumberError(f"{name}, which is not a JSON number")


#: deeper than any FHIR resource or Bundle nests, and shallow enough that validation, index
#: extraction and serialisation (all recursive) stay far from Python's recursion limit
MAX_JSON_DEPTH = 100


def _depth_over(doc: Any, limit: int) -> bool:
    """Is a parsed JSON document nested deeper than ``limit``? (iterative)"""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return False


def http_date(instant: str) -> str:
    dt = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    return format_datetime(dt, usegmt=True)


def _pretty() -> bool:
    return request.args.get("_pretty") == "true"


def body_response(body: bytes | dict[str, Any], status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    if g.get("fmt") == "html":
        from .html import render

        doc = json.loads(body) if isinstance(body, bytes) else body
        resp = Response(render(doc, base_url()), status=status,
                        content_type="text/html; charset=utf-8")
    else:
        if isinstance(body, dict):
            raw = json.dumps(body, ensure_ascii=False, indent=2 if _pretty() else None,
                             separators=None if _pretty() else (",", ":")).encode()
        elif _pretty():
            raw = json.dumps(json.loads(body), ensure_ascii=False, indent=2).encode()
        else:
            raw = body
        resp = Response(raw, status=status, content_type="application/fhir+json; charset=utf-8")
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def stored_headers(s: Stored, *, location: bool = False) -> dict[str, str]:
    h = {"ETag": f'W/"{s.vid}"', "Last-Modified": http_date(s.last_updated)}
    if location:
        h["Location"] = f"{base_url()}/{s.type}/{s.id}/_history/{s.vid}"
        h["Content-Location"] = h["Location"]
    return h


def write_response(r: Result) -> Response:
    """A create/update answer shaped by ``Prefer: return=``."""
    s = r.stored
    assert s is not None
    headers = stored_headers(s, location=True)
    mode = prefer("return") or "representation"
    if mode == "minimal":
        resp = Response(b"", status=r.status)
        for k, v in headers.items():
            resp.headers[k] = v
        return resp
    if mode == "OperationOutcome":
        verb = "created" if r.status == 201 else "updated" if r.status == 200 else "stored"
        oo = operation_outcome([Finding("information", "informational",
                                        f"{s.type}/{s.id} {verb} (version {s.vid})")])
        return body_response(oo, r.status, headers)
    assert s.body is not None
    return body_response(s.body, r.status, headers)
