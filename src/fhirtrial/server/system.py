"""The base URL: ``POST`` a transaction or batch Bundle; ``GET`` a landing page for browsers."""

from __future__ import annotations

from flask import Blueprint, Response, g

from . import bundles, http
from .searchparams import REGISTRY
from .service import HttpError

bp = Blueprint("system", __name__)


@bp.post("")
def transaction(fv: str) -> Response:
    out = bundles.process(
        http.store(), fv, http.json_body(), base=http.base_url(),
        validate=http.cfg()["VALIDATE"], supported=lambda t: t in REGISTRY[fv],
        default_count=http.cfg()["DEFAULT_COUNT"],
        representation=http.prefer("return") == "representation")
    return http.body_response(out)


@bp.get("")
def landing(fv: str) -> Response:
    if g.get("fmt") != "html":
        raise HttpError(400, "not-supported", "System-level search is not supported; search a "
                        "resource type (see /metadata)")
    from .html import front_page, landing_page

    if fv == "R5":
        return front_page()  # the trial search people came for
    return Response(landing_page(http.base_url(), fv, http.store().counts(fv)),
                    content_type="text/html; charset=utf-8")
