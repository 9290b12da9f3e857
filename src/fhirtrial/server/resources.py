"""Type and instance interactions: search, create, read, vread, update, delete, history."""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import Blueprint, Response, request

from ..errors import NotFoundError, operation_outcome
from ..model import Finding
from . import http, service
from .searchparams import REGISTRY

bp = Blueprint("resources", __name__)


def _check(fv: str, rtype: str) -> None:
    service.check_type(fv, rtype, lambda t: t in REGISTRY[fv])


def _search(fv: str, rtype: str, items: list[tuple[str, str]]) -> Response:
    _check(fv, rtype)
    r = service.search(http.store(), fv, rtype, items, base=http.base_url(),
                       strict=http.prefer("handling") == "strict",
                       default_count=http.cfg()["DEFAULT_COUNT"])
    assert r.raw is not None
    return http.body_response(r.raw)


@bp.get("/<ftype:rtype>")
def search_get(fv: str, rtype: str) -> Response:
    return _search(fv, rtype, list(request.args.items(multi=True)))


@bp.post("/<ftype:rtype>/_search")
def search_post(fv: str, rtype: str) -> Response:
    items = list(request.args.items(multi=True))
    if request.mimetype == "application/x-www-form-urlencoded":
        items += parse_qsl(request.get_data(as_text=True), keep_blank_values=True)
    elif request.get_data():
        raise service.HttpError(415, "not-supported",
                                "POST _search takes application/x-www-form-urlencoded")
    return _search(fv, rtype, items)


@bp.post("/<ftype:rtype>")
def create(fv: str, rtype: str) -> Response:
    _check(fv, rtype)
    body = http.json_body()
    with http.store().transaction() as tx:
        r = service.create(tx, fv, rtype, body,
                           if_none_exist=request.headers.get("If-None-Exist"),
                           validate=http.cfg()["VALIDATE"])
    return http.write_response(r)


@bp.put("/<ftype:rtype>")
def conditional_update(fv: str, rtype: str) -> Response:
    _check(fv, rtype)
    query = request.query_string.decode()
    if not query:
        raise service.BadRequest("PUT on a type needs search criteria (conditional update)")
    body = http.json_body()
    if not isinstance(body, dict):
        raise service.BadRequest("The body is not a JSON object", location="Resource")
    with http.store().transaction() as tx:
        service.check_body(fv, rtype, body, None, validate=False)
        r = service.conditional_update(
            tx, fv, rtype, query, body,
            if_match=service.parse_if_match(request.headers.get("If-Match")),
            validate=http.cfg()["VALIDATE"])
    return http.write_response(r)


@bp.get("/<ftype:rtype>/<fid:rid>")
def read(fv: str, rtype: str, rid: str) -> Response:
    _check(fv, rtype)
    s = http.store().read(fv, rtype, rid)
    inm = request.headers.get("If-None-Match")
    if inm and inm.strip() in (f'W/"{s.vid}"', f'"{s.vid}"', "*"):
        resp = Response(status=304)
        for k, v in http.stored_headers(s).items():
            resp.headers[k] = v
        return resp
    assert s.body is not None
    return http.body_response(s.body, 200, http.stored_headers(s))


@bp.put("/<ftype:rtype>/<fid:rid>")
def update(fv: str, rtype: str, rid: str) -> Response:
    _check(fv, rtype)
    body = http.json_body()
    with http.store().transaction() as tx:
        r = service.update(tx, fv, rtype, rid, body,
                           if_match=service.parse_if_match(request.headers.get("If-Match")),
                           validate=http.cfg()["VALIDATE"])
    return http.write_response(r)


@bp.delete("/<ftype:rtype>/<fid:rid>")
def delete(fv: str, rtype: str, rid: str) -> Response:
    _check(fv, rtype)
    with http.store().transaction() as tx:
        r = service.delete(tx, fv, rtype, rid)
    msg = (f"{rtype}/{rid} deleted" if r.stored else f"{rtype}/{rid} did not exist; nothing "
           "to delete")
    headers = {"ETag": f'W/"{r.stored.vid}"'} if r.stored else {}
    return http.body_response(operation_outcome([Finding("information", "informational", msg)]),
                              200, headers)


@bp.get("/<ftype:rtype>/<fid:rid>/_history")
def history_instance(fv: str, rtype: str, rid: str) -> Response:
    _check(fv, rtype)
    r = service.history(http.store(), fv, rtype, rid, list(request.args.items()),
                        base=http.base_url(), default_count=http.cfg()["DEFAULT_COUNT"])
    assert r.body is not None
    return http.body_response(r.body)


@bp.get("/<ftype:rtype>/_history")
def history_type(fv: str, rtype: str) -> Response:
    _check(fv, rtype)
    r = service.history(http.store(), fv, rtype, None, list(request.args.items()),
                        base=http.base_url(), default_count=http.cfg()["DEFAULT_COUNT"])
    assert r.body is not None
    return http.body_response(r.body)


@bp.get("/<ftype:rtype>/<fid:rid>/_history/<vid_text>")
def vread(fv: str, rtype: str, rid: str, vid_text: str) -> Response:
    _check(fv, rtype)
    # not werkzeug's <int:>: its int() reads "²" and raises on 4301 digits (a 500)
    vid = service.parse_version(vid_text)
    if vid is None:  # not digits 0-9, or beyond what any store can hold
        raise NotFoundError(f"{rtype}/{rid} has no version {vid_text[:40]!r}",
                            location=f"{rtype}/{rid}/_history/{vid_text[:40]}")
    s = http.store().vread(fv, rtype, rid, vid)
    assert s.body is not None
    return http.body_response(s.body, 200, http.stored_headers(s))
