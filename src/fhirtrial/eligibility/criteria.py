"""Eligibility text → a tree of criteria, each with its include/exclude sense.

The registry's eligibility text is Markdown: section headings ("Inclusion Criteria:",
"Key Exclusion Criteria:"), bullet or numbered lists, nested by indentation, with backslash
escapes (``\\>=``). Every non-blank line of the text ends up in exactly one criterion (a heading
is a criterion's ``section``, not a criterion), verbatim after unescaping, so no criterion text
is ever lost. Structured meaning (``facts``) is added by the structuring step; a criterion
without facts stays text-only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>=^~|&%$@\"'/:;,?])")
_BULLET = re.compile(r"^(?P<indent>[ \t]*)(?P<mark>[*\-+•·▪●○◦]|\(?\d{1,3}[.)、．）]|"
                     r"\(?[a-zA-Z][.)]|[ivxIVX]{1,4}[.)])(?:[ \t]+|(?<=[、．）]))(?P<text>\S.*)$")
_HEADING = re.compile(
    # "Key Inclusion Criteria:", "Transplant Exclusion:", "Donor inclusion criteria"
    r"^\W*(?:[\w-]+\s+){0,2}?"
    r"(?P<kind>inclusion|exclusion|eligibility)(?:\s+criteria)?\s*(?:\([^)]*\))?\s*[:：]?\W*$"
    r"|^\W*(?P<cjk>入选标准|纳入标准|入组标准|排除标准|选择标准|除外标准|"
    r"критерии включения|критерии исключения)\s*[:：]?\W*$",
    re.IGNORECASE)
_CJK_EXCLUDE = ("排除", "除外", "исключения")
_PLAIN_HEADING = re.compile(r"^(?P<head>[^.;]{1,80})[:：]\s*$")


@dataclass(slots=True)
class Fact:
    """One piece of structured meaning read from a criterion (filled by the structuring step).

    ``kind`` is one of ``age``, ``sex``, ``healthy-volunteers``, ``pregnancy``, ``lactation``,
    ``lab``, ``time-window``, ``condition``; ``data`` holds the kind's fields (documented in
    ``fhirtrial.eligibility.structure``).
    """

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Criterion:
    text: str  # verbatim line(s) after unescaping
    exclude: bool
    section: str | None = None  # the heading it stood under, e.g. "Key Inclusion Criteria:"
    children: list[Criterion] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    #: how several facts of this one criterion combine: "all-of" or "any-of"
    combination: str = "all-of"

    def walk(self) -> list[Criterion]:
        """This criterion and all below it, depth first."""
        out = [self]
        for c in self.children:
            out.extend(c.walk())
        return out


def unescape(text: str) -> str:
    """Undo the registry's Markdown backslash escapes (``\\>=`` → ``>=``)."""
    return _ESCAPE.sub(r"\1", text)


def _indent_width(s: str) -> int:
    return len(s.expandtabs(4)) - len(s.expandtabs(4).lstrip(" "))


def parse_criteria(text: str | None) -> list[Criterion]:
    """Split eligibility text into top-level criteria (children nested by indentation).

    A line under no inclusion/exclusion heading counts as inclusion, since the registry's
    free text describes who may take part unless it says otherwise.
    """
    if not text:
        return []
    roots: list[Criterion] = []
    stack: list[tuple[int, Criterion]] = []  # (indent, criterion) of the open list items
    exclude = False
    section: str | None = None
    last: Criterion | None = None
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not raw.strip():
            continue
        line = unescape(raw.rstrip())
        heading = _HEADING.match(line.strip())
        if heading and not _BULLET.match(line):
            kind = (heading.group("kind") or "").lower()
            cjk = heading.group("cjk") or ""
            exclude = kind == "exclusion" or any(w in cjk.lower() for w in _CJK_EXCLUDE)
            section = line.strip()
            stack.clear()
            last = None
            continue
        m = _BULLET.match(line)
        if m:
            indent = _indent_width(m.group("indent"))
            crit = Criterion(m.group("text").strip() or line.strip(), exclude, section)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            if stack:
                stack[-1][1].children.append(crit)
            else:
                roots.append(crit)
            stack.append((indent, crit))
            last = crit
        elif last is not None and _indent_width(line) > 0 and not _PLAIN_HEADING.match(
                line.strip()):
            # an indented continuation of the previous item: same criterion
            last.text = f"{last.text}\n{line.strip()}"
        else:
            # a free paragraph (or a sub-heading such as "Female participants:") stands alone
            crit = Criterion(line.strip(), exclude, section)
            roots.append(crit)
            stack.clear()
            if _PLAIN_HEADING.match(line.strip()):
                # a sub-heading opens a list: following bullets become its children
                stack.append((-1, crit))
                last = None
            else:
                last = crit
    return roots
