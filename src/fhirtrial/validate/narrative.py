"""Narrative XHTML by FHIR's rules (narrative.html, constraints txt-1 and txt-2).

txt-1: only the basic HTML formatting elements and attributes (HTML 4.0 chapters 7-11 and 15,
``<a>`` with ``name``/``href``, images, inline ``style``) — so no ``<script>``, no forms,
frames, objects or ``<head>``/``<body>``, and no event attributes (``onclick`` …). txt-2: some
non-whitespace content. The root is a ``<div>`` in the XHTML namespace. The element and
attribute lists are the HL7 Java validator's (InstanceValidator.checkInnerNames), which the
FHIR build uses on every narrative. These rules need no package and run in every set-up.
"""

from __future__ import annotations

import html.entities
import re
from typing import Any
from xml.etree.ElementTree import Element, ParseError
from xml.etree.ElementTree import fromstring as _c_fromstring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from ..finding import Finding

XHTML_NS = "http://www.w3.org/1999/xhtml"
XML_NS = "http://www.w3.org/XML/1998/namespace"

ELEMENTS = frozenset({
    "p", "br", "div", "h1", "h2", "h3", "h4", "h5", "h6", "a", "span", "b", "em", "i", "strong",
    "small", "big", "tt", "dfn", "q", "var", "abbr", "acronym", "cite", "blockquote", "hr",
    "address", "bdo", "kbd", "sub", "sup", "ul", "ol", "li", "dl", "dt", "dd", "pre", "table",
    "caption", "colgroup", "col", "thead", "tr", "tfoot", "tbody", "th", "td", "code", "samp",
    "img", "map", "area",
})
#: attributes allowed on every element
ATTRIBUTES = frozenset({
    "title", "style", "class", "id", "lang", "xml:lang", "dir", "accesskey", "tabindex",
    "span", "width", "align", "valign", "char", "charoff", "abbr", "axis", "headers", "scope",
    "rowspan", "colspan",
})
#: attributes allowed on one element only
ELEMENT_ATTRIBUTES = frozenset({
    "a.href", "a.name", "a.charset", "a.type", "a.hreflang", "a.rel", "a.rev", "a.shape",
    "a.coords", "img.src", "img.border", "img.alt", "img.longdesc", "img.height", "img.width",
    "img.usemap", "img.ismap", "map.name", "area.shape", "area.coords", "area.href",
    "area.nohref", "area.alt", "blockquote.cite", "q.cite", "table.summary", "table.width",
    "table.border", "table.frame", "table.rules", "table.cellspacing", "table.cellpadding",
    "pre.space", "td.nowrap", "ol.start", "ol.type", "ul.type", "li.value", "li.type",
})
#: URL schemes that run code when followed or loaded
ACTIVE_SCHEME = re.compile(r"\s*(javascript|vbscript|data\s*:\s*text/html)\s*:?", re.IGNORECASE)
_XML_ENTITIES = {"lt", "gt", "amp", "quot", "apos"}
_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")


def _html_entities(text: str) -> str:
    """HTML named entities (``&nbsp;``) → character references, which XML parsers know."""
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in _XML_ENTITIES or name not in html.entities.name2codepoint:
            return m.group(0)
        return f"&#{html.entities.name2codepoint[name]};"
    return _ENTITY.sub(sub, text)


def _local(tag: str) -> tuple[str | None, str]:
    found = _LOCAL.get(tag)
    if found is not None:
        return found
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        found = (ns, name)
    else:
        found = (None, tag)
    if len(_LOCAL) < 4096:  # tags and attribute names repeat; bounded against odd input
        _LOCAL[tag] = found
    return found


_LOCAL: dict[str, tuple[str | None, str]] = {}


def check_narrative(div: Any, where: str) -> list[Finding]:
    """Findings for one Narrative.div value (an XHTML string)."""
    if not isinstance(div, str):
        return []  # a wrong JSON type: the structure layer reports it
    text = _html_entities(div) if "&" in div else div
    try:
        # A DOCTYPE is the only way to declare entities (billion laughs, external entities):
        # defusedxml's parser, which refuses them, reads one. Without, the C parser gives the
        # same tree and errors in half the time (defusedxml runs expat through Python).
        dtd = "<!D" in text or "<!d" in text
        root = fromstring(text) if dtd else _c_fromstring(text)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        return [Finding("error", "invalid",
                        f"txt-1: the narrative is not well-formed XHTML ({str(exc)[:160]})", where)]
    out: list[Finding] = []
    ns, name = _local(root.tag)
    if name != "div" or ns != XHTML_NS:
        out.append(Finding("error", "invalid",
                           f"The narrative must be a <div> in the XHTML namespace ({XHTML_NS}), "
                           f"not <{name}>" + ("" if ns else " without a namespace"), where))
    bad_elements: list[str] = []
    bad_attributes: list[str] = []
    active: list[str] = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue  # comments and processing instructions are dropped by the parser
        ens, ename = _local(el.tag)
        if el is not root and (ens != XHTML_NS or ename not in ELEMENTS):
            # the root's own name and namespace are reported above
            bad_elements.append(ename if ens in (XHTML_NS, None) else f"{{{ens}}}{ename}")
        for attr, value in el.attrib.items():
            ans, aname = _local(attr)
            full = f"xml:{aname}" if ans == XML_NS else aname
            if ans not in (None, XML_NS) or (full not in ATTRIBUTES
                                            and f"{ename}.{full}" not in ELEMENT_ATTRIBUTES):
                bad_attributes.append(f"{full} on <{ename}>")
            elif full in ("href", "src", "longdesc", "cite") and ACTIVE_SCHEME.match(value):
                active.append(f"{full}={value[:40]!r} on <{ename}>")
    if bad_elements:
        out.append(Finding("error", "invalid",
                           "txt-1: the narrative holds elements FHIR does not allow in XHTML "
                           f"narrative: {', '.join(sorted(set(bad_elements))[:10])}", where))
    if bad_attributes:
        out.append(Finding("error", "invalid",
                           "txt-1: the narrative holds attributes FHIR does not allow "
                           "(event handlers and non-HTML 4 attributes): "
                           f"{', '.join(sorted(set(bad_attributes))[:10])}", where))
    if active:
        out.append(Finding("error", "invalid",
                           "txt-1: the narrative links to active content (script URLs): "
                           f"{', '.join(sorted(set(active))[:5])}", where))
    if not _has_content(root):
        out.append(Finding("error", "invalid",
                           "txt-2: the narrative must have some non-whitespace content", where))
    return out


def _has_content(root: Element) -> bool:
    for el in root.iter():
        if (el.text and el.text.strip()) or (el is not root and el.tail and el.tail.strip()):
            return True
        if isinstance(el.tag, str) and _local(el.tag)[1] == "img":
            return True
    return False
