"""``create_app``: the Flask application, its cross-cutting concerns (auth, CORS, formats,
size limit) as app-level hooks, and error handlers that turn every failure — routing 404/405
included — into an OperationOutcome."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from ..errors import FhirtrialError, operation_outcome
from ..model import Finding
from . import http
from .config import load_config
from .service import HttpError
from .stores import open_store

log = logging.getLogger("fhirtrial.server")

_ISSUE_FOR_STATUS = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
                     405: "not-supported", 406: "not-supported", 409: "conflict",
                     410: "deleted", 412: "conflict", 413: "too-costly", 415: "not-supported",
                     422: "processable"}


class TypeConverter(BaseConverter):
    """A resource type name: keeps ``metadata``, ``_search``, ``R4`` out of type routes."""

    regex = r"[A-Z][A-Za-z]+"


class IdConverter(BaseConverter):
    regex = r"[A-Za-z0-9\-.]{1,64}"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the FHIR server app: ``/fhir`` (default version), ``/fhir/R4``, ``/fhir/R5``."""
    from . import cdshooks, findtrials, html, metadata, operations, resources, system

    cfg = load_config(config)
    app = Flask(__name__)
    app.config["FHIRTRIAL"] = cfg
    app.config["MAX_CONTENT_LENGTH"] = cfg["MAX_BODY_BYTES"]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.converters["ftype"] = TypeConverter
    app.url_map.converters["fid"] = IdConverter
    app.url_map.strict_slashes = False
    app.extensions["fhirtrial.store"] = cfg.get("STORE") or open_store(
        cfg["DB"], pool_min=cfg["DB_POOL_MIN"], pool_max=cfg["DB_POOL_MAX"],
        pool_timeout=cfg["DB_POOL_TIMEOUT"], check=bool(cfg.get("CHECK_STORE")))
    mounts = {"fhir": ("/fhir", cfg["FHIR_VERSION"]), "r4": ("/fhir/R4", "R4"),
              "r5": ("/fhir/R5", "R5")}
    app.extensions["fhirtrial.mounts"] = mounts
    for tag, (prefix, fv) in mounts.items():
        for bp in (metadata.bp, system.bp, findtrials.bp, operations.bp, resources.bp):
            app.register_blueprint(bp, url_prefix=prefix, name=f"{tag}_{bp.name}",
                                   url_defaults={"fv": fv})
    app.register_blueprint(cdshooks.bp)  # CDS Hooks: /cds-services at the server root
    app.register_blueprint(html.bp)  # the pages for people, at the server root
    app.before_request(_before)
    app.after_request(_cors)
    app.register_error_handler(FhirtrialError, _fhirtrial_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def _before() -> Response | None:
    cfg = http.cfg()
    g.fmt = "json"
    if request.method == "OPTIONS":
        return None  # CORS preflight: answered by Flask, decorated by _cors, never authenticated
    if request.blueprint == "pages":
        g.fmt = "html"  # the pages for people: HTML whatever the Accept, forms as forms
        _authenticate(cfg)
        return None
    g.fmt = http.negotiate()
    _authenticate(cfg)
    if request.method in ("POST", "PUT", "PATCH") and not request.path.endswith("/_search"):
        # $match and the writes take a FHIR JSON body; POST _search takes a form
        mimetype = request.mimetype
        if mimetype not in ("application/fhir+json", "application/json"):
            raise HttpError(415, "not-supported",
                            f"Content-Type {request.content_type or '(none)'!r} is not supported;"
                            " send application/fhir+json")
    return None


def _is_write() -> bool:
    """A request that changes the store: POST _search, $match and CDS Hooks calls only read,
    whatever the verb."""
    from .cdshooks import PREFIX as CDS
    from .operations import READ_ONLY_SUFFIXES

    if request.blueprint == "pages":
        return False  # the pages only read (the pre-screening form runs $match)
    return request.method in ("POST", "PUT", "PATCH", "DELETE") and not (
        request.path.endswith(("/_search", *READ_ONLY_SUFFIXES))
        or request.path.startswith(f"{CDS}/"))


def _authenticate(cfg: dict[str, Any]) -> None:
    write = _is_write()
    if not write and not cfg["READ_AUTH"]:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    tokens: dict[str, str] = cfg["TOKENS"]
    if scheme.lower() != "bearer" or not token.strip():
        why = ("this server has no write tokens configured (FHIRTRIAL_TOKENS), so it is "
               "read-only") if write and not tokens else "a bearer token is required"
        raise HttpError(401, "login", why)
    scope = tokens.get(token.strip())
    if scope is None:
        raise HttpError(401, "login", "the bearer token is not valid")
    if write and scope != "write":
        raise HttpError(403, "forbidden", "this token may read but not write")


def _cors(resp: Response) -> Response:
    origins = http.cfg()["CORS_ORIGINS"]
    if origins:
        origin = request.headers.get("Origin")
        allowed = origins == "*" or (origin and origin in origins.split(","))
        if allowed:
            resp.headers["Access-Control-Allow-Origin"] = "*" if origins == "*" else str(origin)
            resp.headers["Vary"] = "Origin"
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, OPTIONS"
            resp.headers["Access-Control-Allow-Headers"] = (
                "Authorization, Content-Type, Accept, If-Match, If-None-Match, If-None-Exist, "
                "If-Modified-Since, Prefer")
            resp.headers["Access-Control-Expose-Headers"] = (
                "ETag, Location, Last-Modified, Content-Location")
            resp.headers["Access-Control-Max-Age"] = "600"
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    return resp


def _outcome(status: int, oo: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    fmt = getattr(g, "fmt", "json") if g else "json"
    if fmt == "html":
        from .html import render

        resp = Response(render(oo, http.base_url()), status=status,
                        content_type="text/html; charset=utf-8")
    else:
        resp = Response(json.dumps(oo, ensure_ascii=False), status=status,
                        content_type="application/fhir+json; charset=utf-8")
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _fhirtrial_error(e: FhirtrialError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="fhirtrial"'} if e.http_status == 401 else None
    return _outcome(e.http_status, e.to_operation_outcome(), headers)


def _http_error(e: HTTPException) -> Response:
    status = e.code or 500
    if status == 404:
        msg = f"No FHIR endpoint at {request.path}"
    elif status == 405:
        msg = f"{request.method} is not allowed on {request.path}"
    elif status == 413:
        msg = f"The request body is larger than {http.cfg()['MAX_BODY_BYTES']} bytes"
    else:
        msg = e.description or e.name
    code = _ISSUE_FOR_STATUS.get(status, "processing")
    headers = {}
    if status == 405 and e.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(e.valid_methods)  # type: ignore[attr-defined]
    return _outcome(status, operation_outcome([Finding("error", code, msg)]), headers)


def _unexpected(e: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _outcome(500, operation_outcome([Finding(
        "fatal", "exception", f"Internal server error ({type(e).__name__})")]))
