"""Legacy ClinicalTrials.gov ``<clinical_study>`` XML (old bulk downloads, AACT archives) → Study.

Parsed with defusedxml: a document type declaration, entity declarations and external
references are refused before anything is expanded, so an entity bomb or an external-entity
read never runs. Display text ("Phase 1/Phase 2", "Active, not recruiting", "None (Open
Label)") becomes the model's v2 enum vocabulary through ``mappings/xml-enums.json``; a display
text the table does not know is a warning and the value is left out, never guessed.

Text blocks are hard-wrapped, indented plain text; they are rewritten as the Markdown the v2
API serves (paragraphs joined, ``-  item`` lists as ``* item``) so both formats give the same
text. Facts XML lacks compared with v2 JSON: MeSH codes (only terms; reported, not coded),
secondary id types and domains, geo points, and the organisation's class (taken from the lead
sponsor when the responsible organisation is the lead sponsor).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from ..errors import SourceError
from ..model import (
    Arm,
    Citation,
    DateInfo,
    Design,
    Eligibility,
    Finding,
    Intervention,
    Link,
    Organization,
    Outcome,
    Oversight,
    Person,
    ResponsibleParty,
    Site,
    SourceInfo,
    Study,
    StudyIdentifier,
    display_case,
)
from ..tables import data_table as load_table
from .ctgov_json import NCT_RE, find_doi, parse_count

#: top-level elements read elsewhere or deliberately not carried into the model
_IGNORED = {
    "required_header", "source", "number_of_arms", "number_of_groups", "firstreceived_date",
    "lastchanged_date", "firstreceived_results_date", "study_first_submitted_qc",
    "last_update_submitted", "last_update_submitted_qc", "results_first_submitted",
    "results_first_submitted_qc", "disposition_first_submitted", "disposition_first_submitted_qc",
    "disposition_first_posted", "location_countries", "removed_countries", "patient_data",
    "study_docs", "pending_results", "biospec_retention", "biospec_descr", "clinical_results",
    "condition_browse", "intervention_browse", "provided_document_section",
}
_READ = {
    "id_info", "brief_title", "acronym", "official_title", "sponsors", "oversight_info",
    "brief_summary", "detailed_description", "overall_status", "last_known_status",
    "why_stopped", "start_date", "completion_date", "primary_completion_date", "phase",
    "study_type", "has_expanded_access", "expanded_access_info", "study_design_info",
    "target_duration", "primary_outcome", "secondary_outcome", "other_outcome", "enrollment",
    "condition", "keyword", "arm_group", "intervention", "eligibility", "overall_official",
    "overall_contact", "overall_contact_backup", "location", "reference", "results_reference",
    "link", "verification_date", "study_first_submitted", "study_first_posted",
    "results_first_posted", "last_update_posted", "responsible_party",
}
_BULLET = re.compile(r"^(?P<indent> *)(?:-|\*|•)\s+(?P<text>\S.*)$")


def looks_like_xml(text: str) -> bool:
    """True when text starts like an XML document."""
    return text.lstrip().startswith("<")


def parse_xml(data: bytes | str, name: str) -> Element:
    """Parse XML safely: no DTDs, no entities, no external references, no network."""
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except defusedxml.DefusedXmlException as e:
        raise SourceError(f"{name}: XML refused: it declares a DTD or entities "
                          f"({type(e).__name__}), which trial records never need") from None
    except ParseError as e:
        line, col = getattr(e, "position", (0, 0))
        raise SourceError(f"{name}: malformed XML at line {line} column {col}") from None


def read_xml(data: bytes | str, name: str) -> Study:
    """Read one ``<clinical_study>`` document into a Study."""
    root = parse_xml(data, name)
    if root.tag != "clinical_study":
        raise SourceError(f"{name}: XML root is <{root.tag}>, not <clinical_study>")
    return _XmlReader(root, name).read()


def _text(e: Element | None) -> str | None:
    if e is None:
        return None
    t = "".join(e.itertext()).strip()
    return t or None


def textblock(e: Element | None) -> str | None:
    """A hard-wrapped XML text block → the registry's Markdown (paragraphs, ``*`` lists)."""
    if e is None:
        return None
    node = e.find("textblock")
    # keep every line's indentation: list nesting is read from it
    raw = "".join((node if node is not None else e).itertext())
    if not raw.strip():
        return None
    lines = raw.replace("\r\n", "\n").split("\n")
    # blocks: ("p", text) paragraphs or ("li", level, text) list items
    blocks: list[tuple[Any, ...]] = []
    indents: list[int] = []
    cur: list[Any] | None = None
    for line in lines:
        if not line.strip():
            cur = None
            continue
        m = _BULLET.match(line)
        if m:
            ind = len(m.group("indent"))
            if ind not in indents:
                indents.append(ind)
                indents.sort()
            cur = ["li", indents.index(ind), m.group("text").strip()]
            blocks.append(tuple(cur))
        elif cur is not None:
            cur[-1] = f"{cur[-1]} {line.strip()}"
            blocks[-1] = tuple(cur)
        else:
            cur = ["p", line.strip()]
            blocks.append(tuple(cur))
    out: list[str] = []
    prev: str | None = None
    for b in blocks:
        if b[0] == "li":
            piece = f"{'  ' * b[1]}* {b[2]}"
            out.append(("\n" if prev == "li" else "\n\n") + piece if out else piece)
        else:
            out.append(("\n\n" if out else "") + b[1])
        prev = b[0]
    return "".join(out)


_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*(year|month|week|day|hour|minute)s?$", re.IGNORECASE)
_PER_YEAR = {"year": 1, "month": 12, "week": 52, "day": 365, "hour": 8760, "minute": 525600}


def _years(age: str | None) -> float | None:
    m = _AGE.match(age.strip()) if age else None
    return float(m.group(1)) / _PER_YEAR[m.group(2).lower()] if m else None


def std_ages(minimum: str | None, maximum: str | None) -> list[str]:
    """The registry's derived age groups (child 0-17, adult 18-64, older adult 65+) that the
    [minimum, maximum] range overlaps, as v2 JSON carries them and legacy XML does not."""
    lo, hi = _years(minimum) or 0.0, _years(maximum)
    hi = float("inf") if hi is None else hi
    groups = (("CHILD", 0.0, 18.0), ("ADULT", 18.0, 65.0), ("OLDER_ADULT", 65.0, float("inf")))
    return [g for g, a, b in groups if lo < b and hi >= a]


def _date(text: str | None) -> str | None:
    if not text:
        return None
    for fmt, out in (("%B %d, %Y", "%Y-%m-%d"), ("%B %Y", "%Y-%m"), ("%Y-%m-%d", "%Y-%m-%d"),
                     ("%Y-%m", "%Y-%m")):
        try:
            return datetime.strptime(text.strip(), fmt).strftime(out)
        except ValueError:
            continue
    return None


class _XmlReader:
    def __init__(self, root: Element, name: str) -> None:
        self.root = root
        self.name = name
        self.enums = load_table("xml-enums")
        nct = _text(root.find("id_info/nct_id"))
        if not nct or not NCT_RE.match(nct):
            raise SourceError(f"{name}: no valid id_info/nct_id (got {nct!r})",
                              location="clinical_study/id_info/nct_id")
        self.study = Study(nct_id=nct, source=SourceInfo("ctgov-xml", name=name))

    def enum(self, table: str, text: str | None, where: str) -> Any:
        """Display text → v2 enum value; unknown text is a warning, not a guess."""
        if text is None:
            return None
        folded = {k.casefold(): v for k, v in self.enums[table].items()}
        key = text.strip().casefold()
        if key not in folded:
            self.study.warn("code-invalid", f"{where}: {text!r} is not a known {table} value; "
                                            "left out", where)
            return None
        value = folded[key]
        if value is None:
            self.study.warn("incomplete", f"{where}: {text!r} has no ClinicalTrials.gov v2 "
                                          f"{table} value; left out", where)
        return value

    def date(self, path: str) -> DateInfo | None:
        e = self.root.find(path)
        if e is None or not _text(e):
            return None
        value = _date(_text(e))
        if value is None:
            self.study.warn("value", f"{path}: {_text(e)!r} is not a date; left out", path)
            return None
        t = (e.get("type") or "").casefold()
        return DateInfo(value, True if t == "actual" else False if t in (
            "anticipated", "estimate", "estimated") else None)

    def yes_no(self, path: str) -> bool | None:
        t = _text(self.root.find(path))
        if t is None:
            return None
        if t.casefold() in ("yes", "no"):
            return t.casefold() == "yes"
        self.study.warn("value", f"{path}: {t!r} is not Yes/No; left out", path)
        return None

    def read(self) -> Study:
        s, r = self.study, self.root
        for child in r:
            if isinstance(child.tag, str) and child.tag not in _READ | _IGNORED:
                s.warn("not-supported", f"<{child.tag}> is not read from legacy XML",
                       f"clinical_study/{child.tag}")
        s.brief_title = _text(r.find("brief_title"))
        s.official_title = _text(r.find("official_title"))
        s.acronym = _text(r.find("acronym"))
        self._sponsors()
        self._ids()
        s.oversight = Oversight(has_dmc=self.yes_no("oversight_info/has_dmc"),
                                fda_regulated_drug=self.yes_no("oversight_info/is_fda_regulated_drug"),
                                fda_regulated_device=self.yes_no(
                                    "oversight_info/is_fda_regulated_device"))
        s.brief_summary = textblock(r.find("brief_summary"))
        s.detailed_description = textblock(r.find("detailed_description"))
        self._status()
        self._design()
        s.conditions = [t for e in r.findall("condition") if (t := _text(e))]
        s.keywords = [t for e in r.findall("keyword") if (t := _text(e))]
        self._arms()
        self._outcomes()
        self._eligibility()
        self._contacts()
        self._references()
        mesh = [t for e in r.findall("condition_browse/mesh_term") + r.findall(
            "intervention_browse/mesh_term") if (t := _text(e))]
        if mesh:
            s.findings.append(_info(f"legacy XML names {len(mesh)} MeSH terms without their "
                                    "codes; they are not coded", "clinical_study/condition_browse"))
        s.has_results = r.find("clinical_results") is not None
        return s

    def _sponsors(self) -> None:
        s, r = self.study, self.root
        lead = r.find("sponsors/lead_sponsor")
        if lead is not None and (name := _text(lead.find("agency"))):
            s.lead_sponsor = Organization(name, self.enum(
                "agency_class", _text(lead.find("agency_class")), "sponsors/lead_sponsor"))
        for i, c in enumerate(r.findall("sponsors/collaborator")):
            if name := _text(c.find("agency")):
                s.collaborators.append(Organization(name, self.enum(
                    "agency_class", _text(c.find("agency_class")), f"sponsors/collaborator[{i}]")))
        if source := _text(r.find("source")):
            same = s.lead_sponsor is not None and s.lead_sponsor.name == source
            s.organization = Organization(source, s.lead_sponsor.agency_class
                                          if same and s.lead_sponsor else None)
        rp = r.find("responsible_party")
        if rp is not None and len(rp):
            s.responsible_party = ResponsibleParty(
                type=self.enum("responsible_party_type", _text(rp.find("responsible_party_type")),
                               "responsible_party/responsible_party_type"),
                investigator_name=_text(rp.find("investigator_full_name"))
                or _text(rp.find("name_title")),
                investigator_title=_text(rp.find("investigator_title")),
                investigator_affiliation=_text(rp.find("investigator_affiliation"))
                or _text(rp.find("organization")))

    def _ids(self) -> None:
        s, r = self.study, self.root
        if org := _text(r.find("id_info/org_study_id")):
            s.identifiers.append(StudyIdentifier(
                org, domain=s.organization.name if s.organization else None, role="org"))
        for e in r.findall("id_info/secondary_id"):
            if t := _text(e):
                s.identifiers.append(StudyIdentifier(t, role="secondary"))

    def _status(self) -> None:
        s, r = self.study, self.root
        s.overall_status = self.enum("status", _text(r.find("overall_status")), "overall_status")
        s.last_known_status = self.enum("status", _text(r.find("last_known_status")),
                                        "last_known_status")
        s.why_stopped = _text(r.find("why_stopped"))
        s.status_verified = _date(_text(r.find("verification_date")))
        s.start = self.date("start_date")
        s.primary_completion = self.date("primary_completion_date")
        s.completion = self.date("completion_date")
        s.first_submitted = _date(_text(r.find("study_first_submitted")))
        s.first_posted = self.date("study_first_posted")
        s.results_first_posted = self.date("results_first_posted")
        s.last_update_posted = self.date("last_update_posted")
        s.has_expanded_access = self.yes_no("has_expanded_access")

    def _design(self) -> None:
        s, r = self.study, self.root
        study_type = _text(r.find("study_type"))
        s.study_type = self.enum("study_type", study_type, "study_type")
        phase = _text(r.find("phase"))
        s.phases = list(self.enum("phase", phase, "phase") or [])
        d = r.find("study_design_info")

        def di(tag: str, table: str) -> Any:
            return self.enum(table, _text(d.find(tag)) if d is not None else None,
                             f"study_design_info/{tag}")

        masking, who = None, []
        masking_text = _text(d.find("masking")) if d is not None else None
        if masking_text:
            m = re.fullmatch(r"(\w+)\s*\(([^)]*)\)", masking_text)
            if m and m.group(1).casefold() != "none":
                masking = self.enum("masking", m.group(1), "study_design_info/masking")
                who = [w for part in m.group(2).split(",") if (w := self.enum(
                    "who_masked", part.strip(), "study_design_info/masking"))]
            else:
                masking = self.enum("masking", masking_text, "study_design_info/masking")
        ea = r.find("expanded_access_info")
        s.design = Design(
            allocation=di("allocation", "allocation"),
            intervention_model=di("intervention_model", "intervention_model"),
            intervention_model_description=_text(d.find("intervention_model_description"))
            if d is not None else None,
            primary_purpose=di("primary_purpose", "primary_purpose"),
            masking=masking, who_masked=who,
            masking_description=_text(d.find("masking_description")) if d is not None else None,
            observational_model=di("observational_model", "observational_model"),
            time_perspective=di("time_perspective", "time_perspective"),
            patient_registry=True if study_type and "patient registry" in study_type.casefold()
            else None,
            target_duration=_text(r.find("target_duration")),
            expanded_access_types=[self.enums["expanded_access_type"][c.tag] for c in ea
                                   if c.tag in self.enums["expanded_access_type"]
                                   and (_text(c) or "").casefold() == "yes"]
            if ea is not None else [],
        )
        en = r.find("enrollment")
        if (t := _text(en)) is not None and en is not None:
            if (n := parse_count(t)) is not None:
                s.enrollment = n
                kind = (en.get("type") or "").casefold()
                s.enrollment_actual = True if kind == "actual" else False if kind in (
                    "anticipated", "estimate", "estimated") else None
            else:
                s.warn("value", f"enrollment {t!r} is not a count; left out", "enrollment")

    def _arms(self) -> None:
        s, r = self.study, self.root
        for i, a in enumerate(r.findall("arm_group")):
            label = _text(a.find("arm_group_label"))
            if not label:
                s.warn("required", f"arm_group[{i}] has no label; arm skipped", f"arm_group[{i}]")
                continue
            s.arms.append(Arm(label, self.enum("arm_group_type", _text(a.find("arm_group_type")),
                                               f"arm_group[{i}]/arm_group_type"),
                              _text(a.find("description"))))
        arms = {a.label: a for a in s.arms}
        for i, iv in enumerate(r.findall("intervention")):
            name = _text(iv.find("intervention_name"))
            if not name:
                s.warn("required", f"intervention[{i}] has no name; skipped", f"intervention[{i}]")
                continue
            kind = self.enum("intervention_type", _text(iv.find("intervention_type")),
                             f"intervention[{i}]/intervention_type")
            labels = [t for e in iv.findall("arm_group_label") if (t := _text(e))]
            item = Intervention(kind, name, _text(iv.find("description")),
                                [t for e in iv.findall("other_name") if (t := _text(e))], labels)
            s.interventions.append(item)
            # v2 arms name their interventions ("Drug: X"); XML only links the other way round
            label = f"{display_case(kind)}: {name}" if kind else name
            for lab in labels:
                if lab in arms and label not in arms[lab].intervention_names:
                    arms[lab].intervention_names.append(label)

    def _outcomes(self) -> None:
        s, r = self.study, self.root
        for tag, kind in (("primary_outcome", "primary"), ("secondary_outcome", "secondary"),
                          ("other_outcome", "other")):
            for i, o in enumerate(r.findall(tag)):
                measure = _text(o.find("measure"))
                if not measure:
                    s.warn("required", f"{tag}[{i}] has no measure; skipped", f"{tag}[{i}]")
                    continue
                s.outcomes.append(Outcome(kind, measure, _text(o.find("description")),  # type: ignore[arg-type]
                                          _text(o.find("time_frame"))))

    def _eligibility(self) -> None:
        s, e = self.study, self.root.find("eligibility")
        if e is None:
            return

        def age(tag: str) -> str | None:
            t = _text(e.find(tag))
            return None if t is None or t.upper() == "N/A" else t

        hv = _text(e.find("healthy_volunteers"))
        s.eligibility = Eligibility(
            criteria=textblock(e.find("criteria")),
            sex=self.enum("gender", _text(e.find("gender")), "eligibility/gender"),
            gender_based=self.yes_no("eligibility/gender_based"),
            gender_description=textblock(e.find("gender_description")),
            minimum_age=age("minimum_age"),
            maximum_age=age("maximum_age"),
            healthy_volunteers=None if hv is None else hv.casefold() != "no",
            std_ages=std_ages(age("minimum_age"), age("maximum_age")),
            study_population=textblock(e.find("study_pop")),
            sampling_method=self.enum("sampling_method", _text(e.find("sampling_method")),
                                      "eligibility/sampling_method"),
        )

    def _person(self, e: Element, role: str | None) -> Person:
        return Person(name=_text(e.find("last_name")), role=role,
                      affiliation=_text(e.find("affiliation")), email=_text(e.find("email")),
                      phone=_text(e.find("phone")), phone_ext=_text(e.find("phone_ext")))

    def _contacts(self) -> None:
        s, r = self.study, self.root
        for i, o in enumerate(r.findall("overall_official")):
            s.officials.append(self._person(o, self.enum(
                "official_role", _text(o.find("role")), f"overall_official[{i}]/role")))
        for tag in ("overall_contact", "overall_contact_backup"):
            for c in r.findall(tag):
                s.central_contacts.append(self._person(c, "CONTACT"))
        for i, loc in enumerate(r.findall("location")):
            fac = loc.find("facility")
            addr = fac.find("address") if fac is not None else None

            def a(tag: str, addr: Element | None = addr) -> str | None:
                return _text(addr.find(tag)) if addr is not None else None

            contacts = [self._person(c, "CONTACT") for tag in ("contact", "contact_backup")
                        for c in loc.findall(tag)]
            contacts += [self._person(inv, self.enum("official_role", _text(inv.find("role")),
                                                     f"location[{i}]/investigator/role"))
                         for inv in loc.findall("investigator")]
            s.sites.append(Site(
                facility=_text(fac.find("name")) if fac is not None else None,
                status=self.enum("status", _text(loc.find("status")), f"location[{i}]/status"),
                city=a("city"), state=a("state"), zip=a("zip"), country=a("country"),
                contacts=contacts))

    def _references(self) -> None:
        s, r = self.study, self.root
        for tag in ("reference", "results_reference"):
            for ref in r.findall(tag):
                citation, pmid = _text(ref.find("citation")), _text(ref.find("PMID"))
                if citation or pmid:
                    s.references.append(Citation(citation, self.enums["reference_type"][tag],
                                                 pmid, find_doi(citation)))
        for link in r.findall("link"):
            if url := _text(link.find("url")):
                s.see_also.append(Link(url, _text(link.find("description"))))


def _info(message: str, location: str) -> Finding:
    return Finding("information", "informational", message, location)
