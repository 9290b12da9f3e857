"""Registry page text (the text of a trial's web page, e.g. the seed record) → Study.

The page is a title, ``NCT ID: …`` and ``Last Updated: …`` lines, then sections under fixed
headings ("Basic Information", "Study Design", …), each opened by one explanatory sentence the
page prints for every trial. Headings, their readers and those boilerplate sentences are data:
``mappings/page-text.json``. Every other line is either placed in a Study field or reported as a
warning Finding naming its line number; nothing is dropped silently.

Inferences (what the page implies but does not label), each checked against the value's form:

- *Basic Information* prints unlabelled values in the order status, phase(s), enrollment
  (``24 participants``), study type, start date, completion date. Each value is placed by its
  form (status / phase / study-type vocabulary, ``N participants``, a date), so a missing value
  does not shift the others. Of the two dates the first is the study start and the second the
  study's (overall) **completion** date, ``completionDateStruct``, not the primary completion:
  the section promises "key timeline milestones" and CT.gov's page snapshot shows start and
  completion. The page says neither whether dates are actual or anticipated nor whether the
  enrollment is actual or estimated, so those stay unknown (``actual=None``).
- *Study Design* prints unlabelled enum values in the order allocation, intervention model,
  primary purpose, masking (then who-masked, observational model, time perspective for other
  designs). Each value goes to the first still-empty slot, in that order, whose vocabulary holds
  it (``NA`` → allocation, ``NONE`` → masking).
- *Study Groups* prints each arm's label, its description, then the name and description of each
  intervention it uses; a line equal to a name from *Interventions* links that intervention to the
  arm (both ways), and the repeated intervention description is recognised as a repeat.
- *Interventions* prints name then description; an intervention's type is read only when the page
  prints it (``DRUG`` line or ``Drug: Name``), never guessed.
- *Eligibility Criteria*: the criteria text is rebuilt as the registry's Markdown (headings get
  their colon back, a blank line around each heading); after the criteria come unlabelled values:
  an age (``18 Years``; a single age is the **minimum** age — the page lists the limits it has in
  the order minimum, maximum, and a trial with only a maximum is rare — a second is the maximum),
  sex (``ALL``/``FEMALE``/``MALE``) and healthy volunteers (``Yes``/``No``).
- *Sponsors*: the first organisation is the lead sponsor, later ones collaborators; an agency
  class value (``INDUSTRY``) belongs to the organisation above it.
- *Other Identifiers*: a value followed by ``Identifier Type:`` (``-`` means none) and
  ``Identifier Source:`` (``org_study_id`` → the org study id, else a secondary id).
- *Study Results*: the sentence "The study team has not published outcome measurements…" states
  that the record has no results.
- *Related Clinical Trials* / *More Related Trials*: title line then NCT id line; kept as
  RelatedStudy (API v2 has no field for them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import SourceError
from ..model import (
    Arm,
    Citation,
    DateInfo,
    Intervention,
    Organization,
    Person,
    RelatedStudy,
    ResponsibleParty,
    SourceInfo,
    Study,
    StudyIdentifier,
    display_case,
)
from ..tables import data_table as load_table
from .ctgov_json import find_doi, is_registry_date, parse_count

NCT_LINE = re.compile(r"^NCT ID:\s*(NCT\d{8})\s*$")
UPDATED_LINE = re.compile(r"^Last Updated:\s*(\d{4}(?:-\d{2}(?:-\d{2})?)?)\s*$")
DATE = re.compile(r"^\d{4}-\d{2}(?:-\d{2})?$")
ENROLLMENT = re.compile(r"^(\d[\d,]*)\s+participants?$", re.IGNORECASE)
AGE = re.compile(r"^\d+\s+(?:Year|Month|Week|Day|Hour|Minute)s?$", re.IGNORECASE)
NCT_ONLY = re.compile(r"^NCT\d{8}$")
CRITERIA_HEADING = re.compile(r"^\W*(?:key\s+|main\s+)?(?:inclusion|exclusion)\s+criteria\s*:?\s*$",
                              re.IGNORECASE)
IDENT_ATTR = re.compile(r"^Identifier ([A-Z][A-Za-z ]{0,30}):\s*(.*)$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
PHONE = re.compile(r"^\+?[\d(][\d\s().\-/]{5,}(?:\s*(?:ext\.?|x)\s*\d+)?$", re.IGNORECASE)
PMID = re.compile(r"\bPMID:?\s*(\d{4,9})\b")

Line = tuple[int, str]
#: sections whose emptiness means the page holds no such fact (reported, not guessed)
_CONTENT_READERS = {
    "brief_summary": "brief summary", "detailed_description": "detailed description",
    "conditions": "condition", "responsible_party": "responsible party",
    "contacts": "central contact", "interventions": "intervention", "groups": "arm",
    "eligibility": "eligibility", "sponsors": "sponsor",
}  # (1-based line number, text stripped)


def _vocab(table: str) -> set[str]:
    """The v2 enum values of one xml-enums table: the page prints v2 enum codes as they are."""
    out: set[str] = set()
    for v in load_table("xml-enums")[table].values():
        if isinstance(v, list):
            out.update(v)
        elif v:
            out.add(v)
    return out


def looks_like_page_text(text: str) -> bool:
    """True when text has the page's ``NCT ID: NCT…`` line among its first lines."""
    head = [ln.strip() for ln in text.splitlines()[:12] if ln.strip()][:6]
    return any(NCT_LINE.match(ln) for ln in head)


@dataclass
class _Section:
    heading: str
    line: int
    reader: str
    lines: list[Line] = field(default_factory=list)


class _PageReader:
    def __init__(self, text: str, name: str) -> None:
        self.name = name
        self.table = load_table("page-text")["sections"]
        self.boilerplate = {
            _norm(b["text"]): b.get("implies")
            for sec in self.table.values() for b in sec["boilerplate"]
        }
        self.lines: list[Line] = [(i, ln.strip()) for i, ln in enumerate(text.splitlines(), 1)
                                  if ln.strip()]
        self.study: Study | None = None

    # --- reporting -------------------------------------------------------------------------
    def unplaced(self, line: Line, section: str | None, why: str) -> None:
        assert self.study is not None
        where = f"under '{section}'" if section else "before the first section"
        self.study.warn("not-supported",
                        f"page line {line[0]} {where} not placed ({why}): {_clip(line[1])}",
                        f"line {line[0]}")

    # --- structure -------------------------------------------------------------------------
    def read(self) -> Study:
        header: list[Line] = []
        sections: list[_Section] = []
        for ln in self.lines:
            if ln[1] in self.table:
                sections.append(_Section(ln[1], ln[0], self.table[ln[1]]["reader"]))
            elif sections:
                sections[-1].lines.append(ln)
            else:
                header.append(ln)
        nct = next((m.group(1) for _, t in header if (m := NCT_LINE.match(t))), None)
        if nct is None:
            raise SourceError(f"{self.name}: registry page text without an 'NCT ID: NCT…' line")
        self.study = s = Study(nct_id=nct, source=SourceInfo("ctgov-page-text", name=self.name))
        self._header(header)
        if not sections:
            s.warn("incomplete", "page text has no known section heading: only the header was read")

        # Interventions are read before Study Groups, which refer to them by name.
        ordered = sorted(sections, key=lambda sec: sec.reader != "interventions")
        for sec in ordered:
            content = []
            for ln in sec.lines:
                key = _norm(ln[1])
                if key in self.boilerplate:
                    if self.boilerplate[key] == "has_results=false":
                        s.has_results = False
                else:
                    content.append(ln)
            if not content and sec.reader in _CONTENT_READERS:
                s.warn("incomplete", f"the page's '{sec.heading}' section is empty: no "
                                     f"{_CONTENT_READERS[sec.reader]} is read", f"line {sec.line}")
            getattr(self, f"_{sec.reader}")(sec.heading, content)
        return s

    def _header(self, header: list[Line]) -> None:
        s = self.study
        assert s is not None
        for i, ln in enumerate(header):
            if NCT_LINE.match(ln[1]):
                continue
            if m := UPDATED_LINE.match(ln[1]):
                s.last_update_posted = DateInfo(m.group(1))
            elif i == 0:
                s.brief_title = ln[1]
            else:
                self.unplaced(ln, None, "not the title, NCT ID or Last Updated line")

    # --- section readers -------------------------------------------------------------------
    def _results(self, sec: str, lines: list[Line]) -> None:
        for ln in lines:
            self.unplaced(ln, sec, "results data is not read from page text")

    def _unplaced(self, sec: str, lines: list[Line]) -> None:
        for ln in lines:
            self.unplaced(ln, sec, "this section is not read from page text")

    def _basic(self, sec: str, lines: list[Line]) -> None:
        s = self.study
        assert s is not None
        statuses, phases, types = _vocab("status"), _vocab("phase"), _vocab("study_type")
        dates: list[Line] = []
        for ln in lines:
            t = ln[1]
            parts = [p for p in re.split(r"[\s,/]+", t) if p]
            if t in statuses and s.overall_status is None:
                s.overall_status = t
            elif parts and all(p in phases for p in parts) and not s.phases:
                s.phases = parts
            elif (m := ENROLLMENT.match(t)) and s.enrollment is None:
                s.enrollment = parse_count(m.group(1))
                if s.enrollment is None:
                    s.warn("value", f"enrollment {t!r} is not a count; left out", "Enrollment")
            elif t in types and s.study_type is None:
                s.study_type = t
            elif DATE.match(t) and is_registry_date(t) and len(dates) < 2:
                dates.append(ln)
            else:
                self.unplaced(ln, sec, "not a status, phase, enrollment, study type or date, "
                                       "or a second value of one of them")
        if dates:
            s.start = DateInfo(dates[0][1])
        if len(dates) > 1:
            s.completion = DateInfo(dates[1][1])

    def _text(self, lines: list[Line]) -> str | None:
        return "\n\n".join(t for _, t in lines) or None

    def _brief_summary(self, sec: str, lines: list[Line]) -> None:
        assert self.study is not None
        self.study.brief_summary = self._text(lines)

    def _detailed_description(self, sec: str, lines: list[Line]) -> None:
        assert self.study is not None
        self.study.detailed_description = self._text(lines)

    def _conditions(self, sec: str, lines: list[Line]) -> None:
        assert self.study is not None
        self.study.conditions.extend(t for _, t in lines)

    def _keywords(self, sec: str, lines: list[Line]) -> None:
        assert self.study is not None
        self.study.keywords.extend(t for _, t in lines)

    def _outcomes(self, sec: str, lines: list[Line]) -> None:
        for ln in lines:
            self.unplaced(ln, sec, "outcome lines carry no labels to tell measure, description "
                                   "and time frame apart")

    def _related(self, sec: str, lines: list[Line]) -> None:
        s = self.study
        assert s is not None
        known = {r.nct_id for r in s.related_studies}
        title: Line | None = None
        for ln in lines:
            if NCT_ONLY.match(ln[1]):
                if ln[1] not in known and ln[1] != s.nct_id:
                    s.related_studies.append(RelatedStudy(ln[1], title[1] if title else None))
                    known.add(ln[1])
                title = None
            else:
                if title is not None:
                    self.unplaced(title, sec, "a related trial title without an NCT id")
                title = ln
        if title is not None:
            self.unplaced(title, sec, "a related trial title without an NCT id")

    def _design(self, sec: str, lines: list[Line]) -> None:
        s = self.study
        assert s is not None
        d = s.design
        slots: list[tuple[str, set[str]]] = [
            ("allocation", _vocab("allocation")),
            ("intervention_model", _vocab("intervention_model")),
            ("primary_purpose", _vocab("primary_purpose")),
            ("masking", _vocab("masking")),
            ("who_masked", _vocab("who_masked")),
            ("observational_model", _vocab("observational_model")),
            ("time_perspective", _vocab("time_perspective")),
        ]
        for ln in lines:
            for attr, vocab in slots:
                if ln[1] not in vocab:
                    continue
                if attr == "who_masked":
                    if ln[1] not in d.who_masked:
                        d.who_masked.append(ln[1])
                        break
                elif getattr(d, attr) is None:
                    setattr(d, attr, ln[1])
                    break
            else:
                self.unplaced(ln, sec, "not a design value, or one already given")

    def _interventions(self, sec: str, lines: list[Line]) -> None:
        s = self.study
        assert s is not None
        types = _vocab("intervention_type")
        by_display = {display_case(t): t for t in types}
        pending_type: str | None = None
        cur: Intervention | None = None
        for ln in lines:
            t = ln[1]
            prefix, _, rest = t.partition(": ")
            if t in types:
                pending_type = t
            elif rest and prefix in by_display:
                cur = Intervention(by_display[prefix], rest.strip())
                s.interventions.append(cur)
                pending_type = None
            elif cur is not None and cur.description is None and _is_prose(t):
                cur.description = t
            elif _is_prose(t):
                self.unplaced(ln, sec, "a description with no intervention name above it")
            else:
                cur = Intervention(pending_type, t)
                s.interventions.append(cur)
                pending_type = None
        if pending_type is not None:
            s.warn("not-supported", f"an intervention type {pending_type} under '{sec}' names "
                                    "no intervention", None)

    def _find_intervention(self, text: str) -> Intervention | None:
        assert self.study is not None
        key = text.casefold()
        for iv in self.study.interventions:
            if key in (iv.name.casefold(), iv.label.casefold()):
                return iv
        return None

    def _groups(self, sec: str, lines: list[Line]) -> None:
        s = self.study
        assert s is not None
        arm_types = _vocab("arm_group_type")
        arm: Arm | None = None
        last_iv: Intervention | None = None
        pending_type: str | None = None
        for ln in lines:
            t = ln[1]
            iv = self._find_intervention(t)
            if iv is not None and arm is not None:
                if iv.label not in arm.intervention_names:
                    arm.intervention_names.append(iv.label)
                if arm.label not in iv.arm_labels:
                    iv.arm_labels.append(arm.label)
                last_iv = iv
            elif last_iv is not None and last_iv.description == t:
                pass  # the arm repeats its intervention's description: already placed
            elif t in arm_types:
                if arm is not None and arm.type is None and not arm.intervention_names:
                    arm.type = t
                else:
                    pending_type = t
            elif arm is not None and arm.description is None and not arm.intervention_names \
                    and _is_prose(t):
                arm.description = t
            elif _is_prose(t):
                self.unplaced(ln, sec, "a description that follows no arm label or intervention")
            else:
                arm = Arm(t, type=pending_type)
                pending_type = None
                last_iv = None
                s.arms.append(arm)

    def _eligibility(self, sec: str, lines: list[Line]) -> None:
        s = self.study
        assert s is not None
        e = s.eligibility
        sexes = _vocab("gender")
        ages: list[str] = []
        text: list[str] = []
        for ln in lines:
            t = ln[1]
            if AGE.match(t) and len(ages) < 2:
                ages.append(t)
            elif t in sexes and e.sex is None:
                e.sex = t
            elif t in ("Yes", "No", "Accepts Healthy Volunteers") and e.healthy_volunteers is None:
                e.healthy_volunteers = t != "No"
            elif CRITERIA_HEADING.match(t):
                heading = t.rstrip().rstrip(":").rstrip() + ":"
                if text:
                    text.append("")
                text.extend([heading, ""])
            else:
                text.append(t)
        e.criteria = "\n".join(text).strip("\n") or None
        if ages:
            e.minimum_age = ages[0]
        if len(ages) > 1:
            e.maximum_age = ages[1]

    def _sponsors(self, sec: str, lines: list[Line]) -> None:
        s = self.study
        assert s is not None
        classes = _vocab("agency_class")
        last: Organization | None = None
        for ln in lines:
            if ln[1] in classes:
                if last is not None and last.agency_class is None:
                    last.agency_class = ln[1]
                else:
                    self.unplaced(ln, sec, "an agency class with no organisation above it")
            else:
                last = Organization(ln[1])
                if s.lead_sponsor is None:
                    s.lead_sponsor = last
                else:
                    s.collaborators.append(last)

    def _responsible_party(self, sec: str, lines: list[Line]) -> None:
        s = self.study
        assert s is not None
        types = _vocab("responsible_party_type")
        for ln in lines:
            rp = s.responsible_party or ResponsibleParty()
            if ln[1] in types and rp.type is None:
                rp.type = ln[1]
            elif rp.investigator_name is None and ln[1] not in types:
                rp.investigator_name = ln[1]
            else:
                self.unplaced(ln, sec, "only a party type and one name are read")
                continue
            s.responsible_party = rp

    def _contacts(self, sec: str, lines: list[Line]) -> None:
        s = self.study
        assert s is not None
        roles = _vocab("official_role") | {"CONTACT"}
        cur: Person | None = None
        for ln in lines:
            t = ln[1]
            if EMAIL.match(t) and cur is not None and cur.email is None:
                cur.email = t
            elif PHONE.match(t) and cur is not None and cur.phone is None:
                cur.phone = t
            elif t in roles and cur is not None and cur.role is None:
                cur.role = t
            elif EMAIL.match(t) or PHONE.match(t) or t in roles:
                self.unplaced(ln, sec, "contact detail with no contact name above it")
            else:
                cur = Person(t)
                s.central_contacts.append(cur)

    def _references(self, sec: str, lines: list[Line]) -> None:
        s = self.study
        assert s is not None
        for _, t in lines:
            m = PMID.search(t)
            s.references.append(Citation(t, None, m.group(1) if m else None, find_doi(t)))

    def _identifiers(self, sec: str, lines: list[Line]) -> None:
        s = self.study
        assert s is not None
        cur: StudyIdentifier | None = None
        for ln in lines:
            m = IDENT_ATTR.match(ln[1])
            if m is None:
                cur = StudyIdentifier(ln[1])
                s.identifiers.append(cur)
                continue
            if cur is None:
                self.unplaced(ln, sec, "an identifier attribute with no identifier above it")
                continue
            key, value = m.group(1), m.group(2).strip()
            value_or_none = None if value in ("", "-") else value
            if key == "Type":
                cur.type = value_or_none
            elif key == "Domain":
                cur.domain = value_or_none
            elif key == "Link":
                cur.link = value_or_none
            elif key != "Source":
                self.unplaced(ln, sec, f"'Identifier {key}' is not an identifier attribute")
            elif value == "org_study_id":
                cur.role = "org"
            elif value == "secondary_id":
                cur.role = "secondary"
            else:
                self.unplaced(ln, sec, "identifier source is neither org_study_id nor "
                                       "secondary_id")
        orgs = [i for i in s.identifiers if i.role == "org"]
        for extra in orgs[1:]:
            extra.role = "secondary"
            s.warn("value", f"second org_study_id {extra.value!r} kept as a secondary id", None)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _clip(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _is_prose(text: str) -> bool:
    """A sentence rather than a label: labels are short and do not end in a full stop."""
    return len(text) > 100 or text.endswith((".", ";", "!", "?"))




def read_page_text(text: str, name: str) -> Study:
    """Read one registry page text into a Study; unplaced lines become warnings."""
    return _PageReader(text, name).read()
