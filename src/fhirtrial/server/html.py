"""A browsable HTML view: a resource's narrative (in a sandboxed frame, so stored XHTML can
never run script in the server's origin), its JSON with references as links, and Bundles as
linked tables with paging."""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

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
    """One resource, Bundle or OperationOutcome as an HTML page."""
    rtype = doc.get("resourceType", "")
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
    for e in doc.get("entry", []):
        r = e.get("resource") or {}
        label = r.get("title") or r.get("name") or ""
        if isinstance(label, list):
            label = ""
        ref = f"{r.get('resourceType')}/{r.get('id')}"
        rows.append(f"<tr><td><a href='{escape(base)}/{escape(ref)}'>{escape(ref)}</a></td>"
                    f"<td>{escape(str(label))}</td>"
                    f"<td>{escape(str((e.get('search') or {}).get('mode', '')))}</td></tr>")
    links = " · ".join(
        f"<a href='{escape(link['url'])}'>{escape(link['relation'])}</a>"
        for link in doc.get("link", []) if link.get("relation") in ("previous", "next", "first",
                                                                       "last"))
    total = f"<p>{doc['total']} match(es)</p>" if "total" in doc else ""
    body = (f"<h1>{escape(str(doc.get('type', 'Bundle')))}</h1>{total}<p>{links}</p>"
            f"<table><tr><th>resource</th><th>title</th><th>mode</th></tr>{''.join(rows)}"
            "</table>")
    return _page("Bundle", body)


def landing_page(base: str, fv: str, counts: dict[str, int]) -> str:
    """The base URL in a browser: the resource types and how many of each are stored."""
    items = "".join(f"<li><a href='{escape(base)}/{escape(t)}'>{escape(t)}</a> ({n})</li>"
                    for t, n in sorted(counts.items()))
    return _page("fhirtrial", f"<h1>fhirtrial FHIR {escape(fv)} server</h1><ul>{items}</ul>"
                 f"<p><a href='{escape(base)}/metadata'>CapabilityStatement</a></p>")
