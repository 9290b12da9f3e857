"""Generated human-readable narrative (``Resource.text``) for every resource fhirtrial writes.

The narrative is a short XHTML summary (heading + key facts), status ``generated``: a reader
of the raw resource or a server's HTML view sees what it is without decoding codes. All
registry text is escaped; control characters XHTML forbids are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape

_XHTML_NS = "http://www.w3.org/1999/xhtml"
# XML 1.0 forbids these; the registry's text occasionally carries them
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_MAX_VALUE = 500


def _clean(value: str) -> str:
    value = _FORBIDDEN.sub("", value)
    if len(value) > _MAX_VALUE:
        value = value[:_MAX_VALUE].rstrip() + "…"
    return escape(value, quote=False)


def narrative(title: str, rows: Iterable[tuple[str, str | None]] = ()) -> dict[str, str]:
    """A ``Narrative``: the title as a heading, then one ``label: value`` line per non-empty row."""
    parts = [f'<div xmlns="{_XHTML_NS}"><p><b>{_clean(title)}</b></p>']
    items = [f"<li>{_clean(label)}: {_clean(value)}</li>" for label, value in rows if value]
    if items:
        parts.append("<ul>" + "".join(items) + "</ul>")
    parts.append("</div>")
    return {"status": "generated", "div": "".join(parts)}
