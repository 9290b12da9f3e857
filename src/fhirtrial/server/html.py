"""HTML for people, by content negotiation (a browser's ``Accept: text/html``) and at the
server root:

- the pages of :data:`bp` (Jinja2 templates under ``templates/``, CSS under ``static/``, no
  script at all): the front page with the trial search form (``/``, and ``/fhir`` for a
  browser), a study's page in sections (``/study/<id>``, and ``/fhir/ResearchStudy/<id>``), and
  its pre-screening page (``/study/<id>/prescreen``), which runs the instance ``$match``;
- :func:`render`, the developer's view of any other resource, Bundle or OperationOutcome: the
  narrative in a sandboxed frame (stored XHTML can never run script in the server's origin),
  the JSON with references as links, Bundles as linked tables with paging.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from markupsafe import Markup

from ..errors import FhirtrialError, SourceError
from . import http, views
from .service import BadRequest

_STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
          "pre{background:#f6f8fa;padding:1em;overflow:auto}"
          "iframe{width:100%;min-height:20em;border:1px solid #ddd}"
          "td,th{padding:.2em .6em;text-align:left;border-bottom:1px solid #eee}")
_REF = re.compile(r"(&quot;reference&quot;: &quot;)([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})"
                  r"(&quot;)")
CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'"


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")


def _json_block(doc: dict[str, Any], base: str) -> str:
    text = escape(json.dumps(doc, ensure_ascii=False, indent=2))
    return "<pre>" + _REF.sub(
        lambda m: f'{m.group(1)}<a href="{escape(base)}/{m.group(2)}">{m.group(2)}</a>'
                  f'{m.group(3)}', text) + "</pre>"


def render(doc: dict[str, Any], base: str) -> str:
    """One resource, Bundle or OperationOutcome as an HTML page (an R5 ResearchStudy read by a
    browser: its study page)."""
    rtype = doc.get("resourceType", "")
    if wants_page(doc):
        return study_html(str(doc.get("id")))
    if rtype == "Bundle":
        return _bundle(doc, base)
    title = f"{rtype}/{doc.get('id', '')}"
    head = f"<h1>{escape(str(doc.get('title') or doc.get('name') or title))}</h1>"
    head += f"<p><a href='{escape(base)}'>home</a> · <a href='{escape(base)}/{escape(rtype)}'>" \
            f"all {escape(rtype)}</a> · {escape(title)}</p>"
    div = (doc.get("text") or {}).get("div")
    narrative = ""
    if isinstance(div, str):
        narrative = ("<h2>Narrative</h2><iframe sandbox='' srcdoc=\""
                     f"{escape(div, quote=True)}\"></iframe>")
    if rtype == "OperationOutcome":
        rows = "".join(f"<li><b>{escape(str(i.get('severity')))}</b> "
                       f"{escape(str(i.get('diagnostics', '')))}</li>"
                       for i in doc.get("issue", []))
        return _page("OperationOutcome", f"<h1>OperationOutcome</h1><ul>{rows}</ul>")
    return _page(title, head + narrative + "<h2>Resource</h2>" + _json_block(doc, base))


def _bundle(doc: dict[str, Any], base: str) -> str:
    rows = []
    notes = []
    for e in doc.get("entry", []):
        r = e.get("resource") or {}
        if (e.get("search") or {}).get("mode") == "outcome":
            notes += [f"<li><b>{escape(str(i.get('severity')))}</b>: "
                      f"{escape(str(i.get('diagnostics', '')))}</li>" for i in r.get("issue", [])]
            continue
        label = r.get("title") or r.get("name") or ""
        if isinstance(label, list):
            label = ""
        ref = f"{r.get('resourceType')}/{r.get('id')}"
        extra = ""
        if r.get("resourceType") == "ResearchStudy":
            from .views import status_of, text_of

            extra = (f" <small>({escape(status_of(r)[1] or 'status not stated')}"
                     f"{'; ' + escape(text_of(r.get('phase'))) if r.get('phase') else ''})"
                     "</small>")
        included = " <small>(included)</small>" if (e.get("search") or {}).get(
            "mode") == "include" else ""
        rows.append(f"<tr><td><a href='{escape(base)}/{escape(ref)}'>{escape(ref)}</a>"
                    f"{included}</td><td>{escape(str(label))}{extra}</td></tr>")
    links = " · ".join(
        f"<a href='{escape(link['url'])}'>{escape(link['relation'])}</a>"
        for link in doc.get("link", []) if link.get("relation") in ("previous", "next", "first",
                                                                       "last"))
    total = f"<p>{doc['total']} match(es)</p>" if "total" in doc else ""
    warn = f"<ul>{''.join(notes)}</ul>" if notes else ""
    body = (f"<h1>{escape(str(doc.get('type', 'Bundle')))}</h1>{total}{warn}<p>{links}</p>"
            f"<table><tr><th>resource</th><th>title</th></tr>{''.join(rows)}</table>")
    return _page("Bundle", body)


def landing_page(base: str, fv: str, counts: dict[str, int]) -> str:
    """The base URL in a browser: the resource types and how many of each are stored."""
    items = "".join(f"<li><a href='{escape(base)}/{escape(t)}'>{escape(t)}</a> ({n})</li>"
                    for t, n in sorted(counts.items()))
    return _page("fhirtrial", f"<h1>fhirtrial FHIR {escape(fv)} server</h1><ul>{items}</ul>"
                 f"<p><a href='{escape(base)}/metadata'>CapabilityStatement</a></p>")


# ---------------------------------------------------------------- pages for people

bp = Blueprint("pages", __name__)


@bp.app_template_filter("dose")
def _dose_filter(text: str) -> Markup:
    """A dose as written, with ``6.0*10^6`` as 6.0×10<sup>6</sup> (escaped like any text)."""
    from ..convert.narrative import dose_html

    return Markup(dose_html(text or ""))

#: the pages run no script, load nothing from elsewhere and post only to this server
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            "base-uri 'none'; frame-ancestors 'none'")
#: the largest patient Bundle the pre-screening form takes (the API's body limit applies too)
MAX_PATIENT_BYTES = 2 * 1024 * 1024


def _mount() -> tuple[str, str]:
    """(FHIR version, base URL) the pages read: the R5 endpoint (studies state eligibility as
    EvidenceVariables there, which is what the pages and $match read)."""
    mounts = current_app.extensions["fhirtrial.mounts"]
    prefix, fv = mounts["fhir"]
    if fv != "R5":
        prefix = mounts["r5"][0]
    root = http.cfg()["BASE_URL"] or request.host_url
    return "R5", root.rstrip("/") + prefix


def _html(template: str, **context: Any) -> str:
    fv, base = _mount()
    return render_template(template, base=base, fv=fv, csp=PAGE_CSP, **context)


def _respond(template: str, status: int = 200, **context: Any) -> Response:
    return _respond_html(_html(template, **context), status)


def front_page() -> Response:
    """The front page: the search form and, once searched, the matching studies."""
    fv, _ = _mount()
    form = views.Form.from_args(request.args)
    results = views.find_studies(http.store(), fv, form) if form.submitted else None
    counts = http.store().counts(fv)
    return _respond("front.html", 400 if form.errors else 200, form=form, results=results,
                    statuses=views.STATUSES, phases=views.PHASES, sexes=views.SEXES,
                    n_studies=counts.get("ResearchStudy", 0))


def study_html(rid: str) -> str:
    fv, _ = _mount()
    stored = http.store().read(fv, "ResearchStudy", rid)  # 404 / 410 as OperationOutcome pages
    return _html("study.html", study=views.study_view(http.store(), fv, stored))


@bp.get("/")
def front() -> Response:
    return front_page()


@bp.get("/study/<fid:rid>")
def study(rid: str) -> Response:
    return _respond_html(study_html(rid))


def _respond_html(html: str, status: int = 200) -> Response:
    resp = Response(html, status=status, content_type="text/html; charset=utf-8")
    resp.headers["Content-Security-Policy"] = PAGE_CSP
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/study/<fid:rid>/prescreen", methods=["GET", "POST"])
def prescreen(rid: str) -> Response:
    """Upload or paste a patient Bundle; see the per-criterion answers of ``$match``."""
    from ..eligibility.match import evaluate
    from .operations import eligibility_of, parse_input

    fv, _ = _mount()
    stored = http.store().read(fv, "ResearchStudy", rid)
    rs = stored.resource()
    ev = eligibility_of(fv, rs)  # 422 when the study states no criteria
    pasted = request.form.get("bundle", "") if request.method == "POST" else ""
    as_of = request.form.get("as-of", "").strip() if request.method == "POST" else ""
    result, error = None, None
    if request.method == "POST":
        upload = request.files.get("file")
        data = upload.read(MAX_PATIENT_BYTES + 1) if upload and upload.filename else b""
        try:
            if len(data) > MAX_PATIENT_BYTES or len(pasted) > MAX_PATIENT_BYTES:
                raise BadRequest(f"The patient data is larger than {MAX_PATIENT_BYTES} bytes")
            raw = data.decode("utf-8") if data else pasted
            if not raw.strip():
                raise BadRequest("Choose a file or paste a patient Bundle (FHIR JSON).")
            try:
                body = json.loads(raw)
            except json.JSONDecodeError as e:
                raise BadRequest(f"The patient data is not valid JSON (line {e.lineno}, column "
                                 f"{e.colno}).") from None
            except RecursionError:
                raise BadRequest("The patient data is nested too deeply.") from None
            bundle, when = parse_input(body, [("as-of", as_of)] if as_of else [])
            try:
                result = evaluate(ev, bundle, as_of=when)
            except SourceError as e:
                raise BadRequest(f"patient-bundle: {e.message}") from None
        except UnicodeDecodeError:
            error = "The file is not UTF-8 text; upload the patient Bundle as FHIR JSON."
        except FhirtrialError as e:
            error = e.message
    return _respond("prescreen.html", 400 if error else 200, study=views.study_view(
        http.store(), fv, stored), result=_verdicts(result) if result else None, error=error,
        pasted=pasted, as_of=as_of)


def _verdicts(params: dict[str, Any]) -> dict[str, Any]:
    """The $match Parameters → the verdict and per-criterion rows the page shows."""
    def value(p: dict[str, Any]) -> Any:
        return next((v for k, v in p.items() if k.startswith("value")), None)

    def crit(parts: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"facts": [], "children": []}
        for p in parts:
            if p["name"] == "fact":
                fact: dict[str, Any] = {"evidence": [], "confirm": []}
                for q in p.get("part", []):
                    if q["name"] == "evidence":
                        fact["evidence"].append((value(q) or {}).get("reference"))
                    elif q["name"] == "toConfirm":
                        fact["confirm"].append(value(q))
                    else:
                        fact[q["name"]] = value(q)
                out["facts"].append(fact)
            elif p["name"] == "criterion":
                out["children"].append(crit(p.get("part", [])))
            else:
                out[p["name"]] = value(p)
        return out

    top = params.get("parameter", [])
    rows = [crit(p.get("part", [])) for p in top if p["name"] == "criterion"]
    single = {p["name"]: value(p) for p in top if p["name"] not in ("criterion", "decidedBy")}
    patient = single.get("patient") or {}
    return {"verdict": single.get("verdict"), "as_of": single.get("asOf"),
            "patient": patient.get("reference") if isinstance(patient, dict) else None,
            "decided_by": [value(p) for p in top if p["name"] == "decidedBy"],
            "inclusion": [r for r in rows if not r.get("exclude")],
            "exclusion": [r for r in rows if r.get("exclude")],
            "counts": {**{k: sum(1 for r in rows if r.get("computable") and r.get("result") == k)
                          for k in ("met", "not-met", "unknown")},
                       "by-hand": sum(1 for r in rows if not r.get("computable")),
                       # computable criteria with words beside their facts to confirm
                       "partly": sum(1 for r in rows if r.get("computable") and
                                     any(f["confirm"] for f in r["facts"]))}}


def wants_page(doc: dict[str, Any]) -> bool:
    """Is this FHIR answer one a person gets as a page (a read of an R5 ResearchStudy)?"""
    return (request.method == "GET" and doc.get("resourceType") == "ResearchStudy"
            and (request.view_args or {}).get("fv") == "R5" and "rid" in (request.view_args or {})
            and "vid" not in (request.view_args or {}))
