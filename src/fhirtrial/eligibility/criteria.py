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
                     r"\(?[a-zA-Z][.)]|[ivxIVX]{1,4}[.)])(?:[ \t]+|(?<=[、．）])|"
                     # "-Age ≥ 18", "•Pregnancy": a dash or a bullet glued to the word
                     r"(?<=[\-•▪●○◦])(?=[A-Z]))(?P<text>\S.*)$")
# --- section headings ------------------------------------------------------------------
#
# A heading is recognised by one grammar, wherever the registry puts it: alone on its line,
# followed on the same line by a criterion ("Exclusion Criteria: The persons who …",
# "Exclusion Criteria:1. …"), as a list item ("* Inclusion Criteria: All answers must be YES"),
# numbered, in Markdown emphasis, in Chinese or Russian:
#
#     [marker] [emphasis] [≤ 4 qualifying words] SIDE [CRITERIA] [qualifier] TERMINATOR [rest]
#
# (German writes SIDE and CRITERIA as one word: "Ausschlusskriterien".)
#
# SIDE is a word naming inclusion or exclusion (typos seen in the registry included), or
# "criteria for/of SIDE". Words that make the phrase a sentence about criteria rather than a
# heading ("not meeting inclusion criteria", "other inclusion criteria may apply") rule it out.
# ``rest`` stays a criterion, verbatim, on the new side. Besides headings, a lead-in sentence
# that ends with a colon and says which side the list below it is on ("Patients will be
# excluded if:", "Subjects must meet all of the following inclusion criteria:") switches the
# side and stays a criterion itself.

_MARK = r"(?:[*\-+•·▪●○◦]|\(?\d{1,3}[.)、．）]|\(?[a-zA-Z][.)]|[ivxIVX]{1,4}[.)])"
_SIDE = (r"non[- ]?inclusions?|inclusionary|inclusions?|inclution|exclusionary|exclusions?|"
         r"excusion|exclution|ineligibility|eligibility|inclusión|exclusión|inclusione|esclusione|inclusão|"
         r"exclusão|(?:ein|aus)schlusskriterien")
_SIDE_CRIT = r"including|excluding|selection"  # a side only with a criteria word after it
_CRIT = (r"(?:criteria|criterion|criterias|critera|conditions?|requirements?|critères|criterios|"
         r"critérios|criteri)")
_LABEL = re.compile(
    rf"^(?P<prefix>(?:[^\s:;.,!?]+\s+){{0,4}}?)"
    rf"(?:(?P<side>{_SIDE})(?P<crit>\s*{_CRIT})?|(?P<side_c>{_SIDE_CRIT})\s*{_CRIT}"
    rf"|{_CRIT}\s+(?:for|of|de|di|d['’])\s*(?:the\s+|la\s+|l['’])?(?:study\s+|trial\s+)?"
    rf"(?P<side_r>{_SIDE}))"
    # "Exclusion criteria are as follows:", "… include:": a heading, as "Exclusion criteria:"
    r"(?:\s+(?:are|is|include|includes)(?:\s+as\s+follows)?(?=\s*[:：])|\s+as\s+follows(?=\s*[:：]))?"
    r"(?P<qual>\s*\([^()]*\)|\s*(?:for|in|of)\s+[^:：;,()]{1,60}?(?:\s*\([^()]*\))?"
    r"|\s+(?![-–])[^:：;,.()]{1,40}?)?"  # (not "- Age ≥ 18": that is the first criterion)
    r"\s*(?P<term>[:：]|--|-(?=\s|$)|–|\.(?=\s|$)|,|;(?=\s*$)|$)(?P<rest>.*)$",
    re.IGNORECASE)
_CJK_LABEL = re.compile(
    r"^(?P<prefix>)(?P<side>入选|纳入|入组|选择|選択|排除|除外)(?P<crit>标准|條件|条件|基準|标准如下)"
    r"(?P<qual>)\s*(?P<term>[:：]|$)(?P<rest>.*)$"
    r"|^(?P<prefix2>)критерии\s+(?P<side2>включения|исключения|невключения)\s*"
    r"(?P<term2>[:：]|$)(?P<rest2>.*)$", re.IGNORECASE)
# every heading, lead-in and label contains one of these: lines without one are criteria
_SIDE_STEMS = re.compile("inclu|exclu|excus|esclu|eligib|selection|enrol|participate|take part|"
                         "schlusskrit|入选|纳入|"
                         "入组|选择|選択|排除|除外|включ|исключ")


_EXCLUDING_SIDE = re.compile(r"^(?:non|ex|es|aus|inelig|排除|除外|исключ|невключ)", re.IGNORECASE)
# words that make "… inclusion criteria …" a sentence, not a heading
_NOT_LABEL_WORDS = frozenset({
    "not", "no", "non", "none", "any", "all", "each", "every", "the", "of", "with", "without",
    "meet", "meets", "meeting", "met", "fulfil", "fulfill", "fulfilling", "fulfilled",
    "following", "above", "below", "listed", "these", "those", "see", "per", "as", "in", "to",
    "by", "and", "or", "lack", "lacks", "fails", "fail", "failure", "do", "does", "doesn't",
    "don't", "did", "must", "will", "may", "should", "shall", "can", "could", "would", "is",
    "are", "was", "were", "be", "been", "has", "have", "had", "if", "apply", "applies", "applied",
    "only", "also", "an", "a", "at", "on", "from", "before", "after", "during", "than", "that",
    "which", "who", "whose", "for"})
_TITLE_WORD = re.compile(r"[(\[]?[A-Z0-9\u00C0-\u00DE][\w'’&/.-]*[)\]]?")
# words after which "Inclusion Criteria:" is what the sentence speaks of, not a new heading
_LABEL_OBJECT_WORDS = frozenset({
    "the", "all", "any", "of", "with", "following", "these", "those", "see", "per", "as",
    "in", "to", "by", "and", "or", "meet", "meets", "meeting",
    "met", "fulfil", "fulfill", "fulfilling", "under", "our", "its", "their", "no", "not"})
# a label naming its side mid-line, after a criterion ("… consent Exclusion criteria:")
_LABEL_INSIDE = re.compile(
    r"(?<=\S)\s+(?P<prefix>(?:[A-Z][\w-]*\s+){0,2}?)(?P<side>Inclusion|Exclusion|INCLUSION|"
    r"EXCLUSION)\s+(?:criteria|Criteria|CRITERIA)\s*(?:\([^()]*\)|for\s[^:：]{1,40})?\s*[:：]")
# a lead-in sentence: "… the following exclusion criteria …:", "… will be excluded if:"
_LEAD_CRIT = re.compile(r"\b(?P<side>inclusion|exclusion|non-inclusion)\s+criteri\w*"
                        r"(?:\s+\S+){0,10}\s*[:：]$", re.IGNORECASE)
_LEAD_VERB = re.compile(
    r"(?:\b(?:will|shall|must|should|are|is|to|be)\s+(?P<neg>not\s+)?(?:be\s+)?"
    r"(?P<verb>excluded|included|enrolled|ineligible|eligible)|\bare\s+exclusionary)"
    r"(?:\s+\S+){0,12}\s*[:：]$", re.IGNORECASE)
# a lead-in in plain words, for the people who read the list: "You can take part if you:",
# "Do not participate if you:", "Patients not eligible:"
_LEAD_TAKE_PART = re.compile(
    r"(?:^|\b(?:you|patients?|participants?|subjects?|people|persons|individuals?|children|"
    r"women|men|volunteers?)\s+)(?:(?P<neg>cannot|can\s*not|can't|may\s+not|must\s+not|"
    r"should\s+not|do\s+not|does\s+not|will\s+not\s+be\s+able\s+to)\s+|(?:can|may|could)\s+)"
    r"(?:participate|take\s+part|join|enrol+|be\s+in\s+(?:this|the)\s+(?:study|trial))\b"
    r"(?:\s+\S+){0,10}\s*[:：]$|"
    r"^(?:(?:patients?|participants?|subjects?|people|persons|individuals?|you\s+are)\s+)?"
    r"(?P<bare>not\s+eligible|ineligible)\b(?:\s+\S+){0,8}\s*[:：]$", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|no|never|none|without)\b|n't\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Heading:
    """A section heading found on a line: its side, the label as written, and the text after
    it on the same line (a criterion), if any."""

    exclude: bool
    label: str
    rest: str | None


_DECORATION = re.compile(rf"^(\s*(?P<mark>{_MARK}\s+)?(?:[#>]+\s*)?[*_]{{0,3}}\s*)")
_CLOSING_EMPHASIS = re.compile(r"^(.*?)[*_]{2,3}(?=\s*[:：]|\s*$)")


def _strip_decoration(line: str) -> tuple[str, str, bool]:
    """(lead, body, listed): the list marker, Markdown heading and emphasis before the words,
    the words, and whether the line is a list item."""
    m = _DECORATION.match(line)
    lead = m.group(1) if m else ""
    body = _CLOSING_EMPHASIS.sub(r"\1", line[len(lead):])  # "**Inclusion**:"
    return lead, body.rstrip(), bool(m and m.group("mark"))


def heading(line: str) -> Heading | None:
    """The section heading ``line`` starts with (or None): "Inclusion Criteria:",
    "* Key Exclusion Criteria: The persons who …", "排除标准：", "Criteria for exclusion"."""
    lead, body, listed = _strip_decoration(line.strip())
    if not body:
        return None
    m = _LABEL.match(body)
    if m:
        side = m.group("side") or m.group("side_c") or m.group("side_r")
        prefix = m.group("prefix").split()
        qual = (m.group("qual") or "").strip()
        term = m.group("term")
        if any(w.lower().strip("()") in _NOT_LABEL_WORDS and not re.fullmatch(r"[A-Z]", w)
               for w in prefix):  # "Part A" names a part
            return None
        if not all(_TITLE_WORD.fullmatch(w) for w in prefix):
            # qualifying words are a title ("Cystic Fibrosis Main Study Inclusion Criteria:");
            # "Treatment plan including chemotherapy Inclusion Criteria:" is a criterion first
            return None
        if prefix and listed:
            # "- Signed informed consent Exclusion criteria:": a list item naming a side
            # after other words is a criterion first (see label_inside)
            return None
        if not m.group("crit") and m.group("side") and (qual or term not in (":", "：", "")):
            return None  # "Exclusion" alone needs a colon or the end of the line
        if not qual.startswith("("):
            words = re.findall(r"[\w'’-]+", qual)
            if any(w.lower() in _NOT_LABEL_WORDS - {"for", "in", "of", "the", "and", "or",
                                                      "all", "a", "an", "with"}
                   for w in words):
                return None
            if not term and len(words) > 4:
                return None
        if m.group("side_c") and side.lower() == "selection":
            exclude = False
        else:
            exclude = bool(_EXCLUDING_SIDE.match(side.lower()))
        rest = m.group("rest").strip()
    else:
        m = _CJK_LABEL.match(body)
        if not m:
            return None
        side = m.group("side") or m.group("side2")
        exclude = bool(_EXCLUDING_SIDE.match(side.lower()))
        rest = (m.group("rest") if m.group("side") else m.group("rest2")).strip()
    if re.search(r"\b(?:inclusion|exclusion)\s*/\s*(?:inclusion|exclusion)\b", body, re.I):
        return None  # "Inclusion/Exclusion:" names both sides
    if _PART_REST.match(rest):
        rest = ""  # "Exclusion Criteria – Part A": which part the criteria below are for
    label = body[: len(body) - len(rest)].strip() if rest else body.strip()
    return Heading(exclude, (lead.strip() + " " + label).strip(),
                   rest if re.search(r"\w", rest) else None)


_PART_REST = re.compile(r"(?:part|cohort|arm|group|stage|phase|step|period|sub-?study|study|"
                        r"section)\s*[\w.-]{1,4}\s*[:：]?$", re.IGNORECASE)


def lead_in(line: str) -> bool | None:
    """The side a lead-in sentence puts the list below it on (True: exclusion), or None:
    "Patients will be excluded if:", "Subjects must meet all of the following inclusion
    criteria within 28 days:". Only a short last sentence ending with a colon (or with "the
    following") leads a list; what a parenthesis or an earlier clause says about exclusion
    is not a heading."""
    text = re.sub(r"\([^()]*\)", " ", line.strip().rstrip("*_ "))
    text = re.split(r"[;.]\s", text)[-1].strip()
    if re.search(r"\bthe following(?: criteria| conditions)?$", text, re.IGNORECASE):
        text += ":"  # "… will be excluded if they have any of the following"
    if not text.endswith((":", "：")) or len(text.split()) > 20:
        return None
    sides: set[bool] = set()
    for m in _LEAD_CRIT.finditer(text):
        sides.add(m.group("side").lower() != "inclusion")
    for m in _LEAD_VERB.finditer(text):
        verb = (m.group("verb") or "exclusionary").lower()
        if m.group("neg"):
            if verb not in ("included", "enrolled", "eligible"):
                return None  # "will not be excluded if": not a list of criteria
            sides.add(True)
        elif verb != "eligible":  # "… are eligible if:" qualifies one criterion
            sides.add(verb in ("excluded", "ineligible", "exclusionary"))
    for m in _LEAD_TAKE_PART.finditer(text):
        sides.add(bool(m.group("neg") or m.group("bare")))
    if len(sides) != 1:
        return None
    # "not … included" is counted above; any other negation leaves the sense unsure, except
    # in a sentence naming "exclusion criteria" ("must not meet any of the following
    # exclusion criteria:")
    if _NEGATION.search(_LEAD_TAKE_PART.sub(" ", _LEAD_VERB.sub(" ", text))) and \
            not _LEAD_CRIT.search(text):
        return None
    return sides.pop()


def label_inside(line: str) -> bool | None:
    """The side a heading written after a criterion on the same line opens for the lines
    below ("- Signed informed consent Exclusion criteria:"), or None."""
    found = list(_LABEL_INSIDE.finditer(line.strip()))
    if not found:
        return None
    m = found[-1]
    before = line.strip()[: m.start()].split()
    if not before or before[-1].lower().strip(",;") in _LABEL_OBJECT_WORDS:
        return None  # "… meeting all Inclusion Criteria:" speaks of the criteria
    if any(w.lower() in _NOT_LABEL_WORDS for w in m.group("prefix").split()):
        return None
    return m.group("side").lower() == "exclusion"


# a heading that follows a sentence on the same line and opens its own criteria
_SENTENCE_LABEL = re.compile(
    r"(?<=[.;])[ \t]+(?=(?:(?:Main|Key|Major|Other|Specific|General|Additional|Principal)\s+)?"
    r"(?:[Ii]nclusion|[Ee]xclusion|INCLUSION|EXCLUSION|[Nn]on-inclusion)\s+(?:[Cc]riteria|CRITERIA)"
    r"(?:\s+(?:are|is|include|includes)(?:\s+as\s+follows)?|\s+as\s+follows)?"
    r"\s*[:：][ \t]*[^\s])")
_MARK_ONLY = re.compile(_MARK)


def _after_a_sentence(text: str) -> bool:
    """Whether "criteria" follows a sentence's end on its line anywhere in ``text`` (a cheap
    test before the pattern runs over the whole text, which every record's criteria are)."""
    low = text.lower()
    i = low.find("criteria")
    while i >= 0:
        line = low[low.rfind("\n", 0, i) + 1:i]
        if ". " in line or "; " in line:
            return True
        i = low.find("criteria", i + 8)
    return False
_PLAIN_HEADING = re.compile(r"^(?P<head>[^.;]{1,80})[:：]\s*$")


#: the kind of a fact made of facts that must all hold (``data["facts"]``): one alternative of
#: a criterion whose groups of bounds are joined by "or"
GROUP = "all-of"
#: the kind of a fact made of facts of which one must hold (``data["facts"]``): one part of a
#: list of parts joined by ";" that offers its own "or" ("…; creatinine ≤ 1.5 × ULN or CrCl ≥
#: 50 mL/min; …")
EITHER = "any-of"


@dataclass(slots=True)
class Fact:
    """One piece of structured meaning read from a criterion (filled by the structuring step).

    ``kind`` is one of ``age``, ``sex``, ``healthy-volunteers``, ``pregnancy``, ``lactation``,
    ``lab``, ``measurement`` (a bound on a name the lexicon does not have), ``time-window``,
    ``condition``, ``all-of`` (:data:`GROUP`), ``any-of`` (:data:`EITHER`); ``data`` holds the
    kind's fields (documented in
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
    #: set on a criterion the reader adds to hold others, not a line of the registry's text
    #: (a participant group's label taken from a heading, "one of these groups"):
    #: :data:`PARTICIPANT_GROUP`
    link_id: str | None = None

    def walk(self) -> list[Criterion]:
        """This criterion and all below it, depth first."""
        out = [self]
        for c in self.children:
            out.extend(c.walk())
        return out


#: linkId of a characteristic that holds criteria of the registry's text without being one:
#: a participant group's label taken from a section heading, or "one of these participant
#: groups" holding each group's criteria
PARTICIPANT_GROUP = "participant-group"
#: linkId of a characteristic that holds inclusion criteria the registry joins with "or"
#: ("Fasting glucose 6.1-7.0 mmol/L or" / "HbA1c 5.7-6.4 %"): alternatives, one of which is met
EITHER_OR = "either-or"
EITHER_OR_TEXT = "One of the following (joined by “or”)"

#: a lead-in whose nested items are alternatives ("who meet one of the following criteria:")
ANY_OF_LEAD = re.compile(r"\b(?:any|one|either|at least one)\s+(?:(?:[a-z-]+\s+){0,2}?of\s+"
                          r"(?:the\s+)?(?:following|below|these)\b|of\s*:)", re.IGNORECASE)
#: a lead-in whose nested items must all hold ("patients with all of the following:")
_ALL_OF_LEAD = re.compile(r"\b(?:all|each|every one)\s+(?:[a-z-]+\s+){0,2}?of\s+"
                          r"(?:the\s+)?(?:following|below|these)\b", re.IGNORECASE)


#: a lead-in asking for some number of its items ("at least 2 of the following:", "3 or more
#: of these", "any two of the following"): neither all of them nor any one
AT_LEAST_N_LEAD = re.compile(
    r"(?:\b(?:at least|a minimum of|minimum of|any)\s+|[≥]\s*|>=\s*)?"
    r"\b(?P<n>two|three|four|five|six|seven|eight|nine|[2-9])\s+(?:or\s+more\s+)?"
    r"(?:[a-z-]+\s+){0,2}?(?:out\s+)?(?:of|from)\s*"
    r"(?::|(?:the\s+)?(?:following|these|below)\b)",
    re.IGNORECASE)
_COUNT_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9}
#: the code of a combination that holds when at least ``threshold`` of its members hold
AT_LEAST = "at-least"


def at_least(text: str) -> int | None:
    """How many of the items below it a lead-in asks for ("at least three out of the
    following six conditions:" → 3), or None when it does not count them."""
    m = AT_LEAST_N_LEAD.search(text)
    if m is None:
        return None
    n = m.group("n").lower()
    return _COUNT_WORDS[n] if n in _COUNT_WORDS else int(n)


def children_combination(c: Criterion) -> str:
    """How a criterion's nested items combine: as its lead-in says ("at least 2 of the
    following" → at-least, its threshold from :func:`at_least`; "one of the following" →
    any-of; "all of the following" → all-of), else by its side — nested items under an
    inclusion must all hold, and any one of them under an exclusion excludes."""
    if at_least(c.text) is not None:
        return AT_LEAST
    if ANY_OF_LEAD.search(c.text):
        return "any-of"
    if _ALL_OF_LEAD.search(c.text):
        return "all-of"
    return "any-of" if c.exclude else "all-of"


def unescape(text: str) -> str:
    """Undo the registry's Markdown backslash escapes (``\\>=`` → ``>=``)."""
    return _ESCAPE.sub(r"\1", text) if "\\" in text else text


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
    switch: bool | None = None  # a side a label at the end of the previous line opened
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _after_a_sentence(text):
        # "Main inclusion criteria: age ≥ 18. Main exclusion criteria: pregnancy." on one
        # line: the second heading, after a sentence, opens a line of its own
        text = _SENTENCE_LABEL.sub(
            lambda m: m.group(0) if _MARK_ONLY.fullmatch(
                text[text.rfind("\n", 0, m.start()) + 1:m.start()].strip()) else "\n", text)
    for raw in text.split("\n"):
        if not raw.strip():
            continue
        if switch is not None:
            exclude, switch = switch, None
            stack.clear()
            last = None
        line = unescape(raw.rstrip())
        sided = _SIDE_STEMS.search(line.lower()) is not None  # most lines name no side at all
        head = heading(line) if sided else None
        if head is not None:
            exclude, section = head.exclude, head.label
            stack.clear()
            last = None
            if head.rest is None:
                continue
            line = head.rest  # the criterion written after the heading, on the new side
        elif not sided:
            pass
        elif (switch := label_inside(line)) is not None:
            # the line is a criterion of the side it stands in; the side switches after it
            if switch == exclude:
                switch = None
        elif (side := lead_in(line)) is not None and side != exclude:
            # a lead-in sentence is a criterion of the side it opens
            exclude, section = side, line.strip()
            stack.clear()
            last = None
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
