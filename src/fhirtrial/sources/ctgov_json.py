"""ClinicalTrials.gov API v2 JSON → Study.

Accepts one study object, an API page ``{"studies": [...], "nextPageToken": ...}`` or the
website's download (a JSON array of studies). Unknown keys are ignored; a missing module is a
warning on the Study, never a crash; a value of the wrong type is a warning and is skipped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ..errors import SourceError
from ..model import (
    Arm,
    Citation,
    Coding,
    DateInfo,
    Design,
    Eligibility,
    Intervention,
    Link,
    Organization,
    Outcome,
    Oversight,
    Person,
    RelatedStudy,
    ResponsibleParty,
    Site,
    SourceInfo,
    Study,
    StudyIdentifier,
)

MESH = "http://id.nlm.nih.gov/mesh"
#: counts become FHIR unsignedInt values, whose maximum this is
MAX_COUNT = 2**31 - 1
NCT_RE = re.compile(r"^NCT\d{8}$")
DOI_RE = re.compile(r"\bdoi:\s*(10\.\d{4,9}/[^\s\"<>]+?)(?=[.,;]?(?:\s|$))", re.IGNORECASE)

#: the modules a complete record has; their absence is reported
EXPECTED_MODULES = (
    "identificationModule", "statusModule", "sponsorCollaboratorsModule", "descriptionModule",
    "conditionsModule", "designModule", "armsInterventionsModule", "eligibilityModule",
    "contactsLocationsModule", "outcomesModule",
)


def parse_count(text: str) -> int | None:
    """A count written as decimal digits, when it fits FHIR's unsignedInt; else None."""
    t = text.strip().replace(",", "")
    # isdecimal, not isdigit: int() refuses "²"; the length check keeps int() off
    # 5000-digit strings (which it refuses too) before the range check
    if not t.isdecimal() or len(t) > 10:
        return None
    n = int(t)
    return n if n <= MAX_COUNT else None


def is_registry_date(value: str) -> bool:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` naming a real calendar date (not 2025-13)."""
    fmt = {4: "%Y", 7: "%Y-%m", 10: "%Y-%m-%d"}.get(len(value))
    if fmt is None or not _REGISTRY_DATE.fullmatch(value):
        return False
    try:
        if value.isascii():  # what strptime accepts here, without its parsing machinery
            datetime(int(value[:4]), int(value[5:7] or 1), int(value[8:10] or 1))
        else:  # other digits: strptime's own rules (it reads them in some fields only)
            datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


_REGISTRY_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


def iter_study_objects(doc: Any, name: str) -> Iterator[dict[str, Any]]:
    """Yield the study objects in a parsed v2 document (study, API page or download array)."""
    if isinstance(doc, list):
        for item in doc:
            yield from iter_study_objects(item, name)
    elif isinstance(doc, dict) and isinstance(doc.get("studies"), list):
        yield from doc["studies"]
    elif isinstance(doc, dict) and "protocolSection" in doc:
        yield doc
    else:
        raise SourceError(f"{name}: JSON is not a ClinicalTrials.gov v2 study, page or array "
                          "(no protocolSection)")


def looks_like_v2(doc: Any) -> bool:
    """True when a parsed JSON document is a v2 study, page or array of studies."""
    if isinstance(doc, list):
        return bool(doc) and isinstance(doc[0], dict) and "protocolSection" in doc[0]
    return isinstance(doc, dict) and ("protocolSection" in doc or isinstance(doc.get("studies"),
                                                                          list))


class _Reader:
    """Typed access to one study object; type mismatches become warnings."""

    def __init__(self, study: Study) -> None:
        self.study = study

    def obj(self, parent: Any, key: str, path: str) -> dict[str, Any]:
        v = parent.get(key) if isinstance(parent, dict) else None
        if v is None:
            return {}
        if not isinstance(v, dict):
            self.study.warn("structure", f"{path}.{key} is not an object; ignored", f"{path}.{key}")
            return {}
        return v

    def lst(self, parent: dict[str, Any], key: str, path: str) -> list[Any]:
        v = parent.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            self.study.warn("structure", f"{path}.{key} is not a list; ignored", f"{path}.{key}")
            return []
        return v

    def objs(self, parent: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
        out = []
        for i, v in enumerate(self.lst(parent, key, path)):
            if isinstance(v, dict):
                out.append(v)
            else:
                self.study.warn("structure", f"{path}.{key}[{i}] is not an object; ignored",
                                f"{path}.{key}[{i}]")
        return out

    def text(self, parent: dict[str, Any], key: str, path: str) -> str | None:
        v = parent.get(key)
        if v is None:
            return None
        if type(v) is str:  # nearly always: the checks below, for the rare other value
            return v.strip() or None
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            self.study.warn("structure", f"{path}.{key} is not text; ignored", f"{path}.{key}")
            return None
        s = str(v).strip()
        return s or None

    def texts(self, parent: dict[str, Any], key: str, path: str) -> list[str]:
        out = []
        for i, v in enumerate(self.lst(parent, key, path)):
            if isinstance(v, str) and v.strip():
                out.append(v.strip())
            elif v is not None:
                self.study.warn("structure", f"{path}.{key}[{i}] is not text; ignored",
                                f"{path}.{key}[{i}]")
        return out

    def flag(self, parent: dict[str, Any], key: str, path: str) -> bool | None:
        v = parent.get(key)
        if v is None or isinstance(v, bool):
            return v
        self.study.warn("structure", f"{path}.{key} is not true/false; ignored", f"{path}.{key}")
        return None

    def count(self, parent: dict[str, Any], key: str, path: str) -> int | None:
        v = parent.get(key)
        if v is None:
            return None
        if isinstance(v, str) and (n := parse_count(v)) is not None:
            return n
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_COUNT:
            return v
        self.study.warn("structure", f"{path}.{key} is not a count; ignored", f"{path}.{key}")
        return None

    def number(self, parent: dict[str, Any], key: str, path: str) -> float | None:
        v = parent.get(key)
        if v is None:
            return None
        if isinstance(v, int | float) and not isinstance(v, bool):
            # a huge int overflows float(); NaN/Infinity (Python's json reads them) are no
            # FHIR decimal and would make the output invalid JSON
            f = float(v) if abs(v) < 1e300 else math.inf
            if math.isfinite(f):
                return f
        self.study.warn("structure", f"{path}.{key} is not a number; ignored", f"{path}.{key}")
        return None

    def date(self, parent: dict[str, Any], key: str, path: str) -> DateInfo | None:
        d = self.obj(parent, key, path)
        value = self.text(d, "date", f"{path}.{key}")
        if not value:
            return None
        if not is_registry_date(value):
            self.study.warn("value", f"{path}.{key}.date {value!r} is not a registry date; ignored",
                            f"{path}.{key}.date")
            return None
        t = d.get("type")
        return DateInfo(value, True if t == "ACTUAL" else False if t == "ESTIMATED" else None)


def _brief(value: Any) -> str:
    """A value for an error message: a string's repr (cut), else its JSON type (a repr of a
    list nested thousands deep raises RecursionError)."""
    if isinstance(value, str):
        return repr(value[:80])
    return "null" if value is None else f"a JSON {type(value).__name__}"


def read_study(obj: dict[str, Any], name: str | None = None) -> Study:
    """Build a Study from one v2 study object. Raises SourceError when it has no NCT id."""
    if not isinstance(obj, dict):
        raise SourceError(f"{name or 'input'}: a study must be a JSON object")
    proto = obj.get("protocolSection")
    if not isinstance(proto, dict):
        raise SourceError(f"{name or 'input'}: no protocolSection object")
    ident = proto.get("identificationModule")
    nct = ident.get("nctId") if isinstance(ident, dict) else None
    if not isinstance(nct, str) or not NCT_RE.match(nct.strip()):
        raise SourceError(f"{name or 'input'}: no valid identificationModule.nctId "
                          f"(got {_brief(nct)})",
                          location="protocolSection.identificationModule.nctId")
    study = Study(nct_id=nct.strip(), source=SourceInfo("ctgov-v2-json", name=name))
    r = _Reader(study)
    ps = "protocolSection"
    for mod in EXPECTED_MODULES:
        if mod not in proto:
            study.warn("incomplete", f"{ps}.{mod} is absent: its facts are missing from the output",
                       f"{ps}.{mod}")

    _identification(r, r.obj(proto, "identificationModule", ps), study)
    _status(r, r.obj(proto, "statusModule", ps), study)
    _sponsors(r, r.obj(proto, "sponsorCollaboratorsModule", ps), study)
    oversight = r.obj(proto, "oversightModule", ps)
    study.oversight = Oversight(
        has_dmc=r.flag(oversight, "oversightHasDmc", f"{ps}.oversightModule"),
        fda_regulated_drug=r.flag(oversight, "isFdaRegulatedDrug", f"{ps}.oversightModule"),
        fda_regulated_device=r.flag(oversight, "isFdaRegulatedDevice", f"{ps}.oversightModule"),
    )
    desc = r.obj(proto, "descriptionModule", ps)
    study.brief_summary = r.text(desc, "briefSummary", f"{ps}.descriptionModule")
    study.detailed_description = r.text(desc, "detailedDescription", f"{ps}.descriptionModule")
    cond = r.obj(proto, "conditionsModule", ps)
    study.conditions = r.texts(cond, "conditions", f"{ps}.conditionsModule")
    study.keywords = r.texts(cond, "keywords", f"{ps}.conditionsModule")
    _design(r, r.obj(proto, "designModule", ps), study)
    _arms(r, r.obj(proto, "armsInterventionsModule", ps), study)
    _outcomes(r, r.obj(proto, "outcomesModule", ps), study)
    _eligibility(r, r.obj(proto, "eligibilityModule", ps), study)
    _contacts(r, r.obj(proto, "contactsLocationsModule", ps), study)
    _references(r, r.obj(proto, "referencesModule", ps), study)

    derived = r.obj(obj, "derivedSection", "")
    cbm = r.obj(derived, "conditionBrowseModule", "derivedSection")
    study.condition_mesh = _mesh(r, cbm, "derivedSection.conditionBrowseModule")
    ibm = r.obj(derived, "interventionBrowseModule", "derivedSection")
    _intervention_mesh(r, ibm, study)
    _related_trials(r, r.obj(obj, "x-fhirtrial", ""), study)
    has_results = obj.get("hasResults")
    study.has_results = bool(has_results) if isinstance(has_results, bool) else (
        "resultsSection" in obj)
    return study


def _identification(r: _Reader, m: dict[str, Any], s: Study) -> None:
    p = "protocolSection.identificationModule"
    s.brief_title = r.text(m, "briefTitle", p)
    s.official_title = r.text(m, "officialTitle", p)
    s.acronym = r.text(m, "acronym", p)
    org = r.obj(m, "organization", p)
    if r.text(org, "fullName", f"{p}.organization"):
        s.organization = Organization(r.text(org, "fullName", f"{p}.organization") or "",
                                      r.text(org, "class", f"{p}.organization"))
    osi = r.obj(m, "orgStudyIdInfo", p)
    if value := r.text(osi, "id", f"{p}.orgStudyIdInfo"):
        s.identifiers.append(StudyIdentifier(
            value, type=r.text(osi, "type", f"{p}.orgStudyIdInfo"),
            domain=s.organization.name if s.organization else None,
            link=r.text(osi, "link", f"{p}.orgStudyIdInfo"), role="org"))
    for i, sec in enumerate(r.objs(m, "secondaryIdInfos", p)):
        q = f"{p}.secondaryIdInfos[{i}]"
        if value := r.text(sec, "id", q):
            s.identifiers.append(StudyIdentifier(
                value, type=r.text(sec, "type", q), domain=r.text(sec, "domain", q),
                link=r.text(sec, "link", q), role="secondary"))


def _status(r: _Reader, m: dict[str, Any], s: Study) -> None:
    p = "protocolSection.statusModule"
    s.overall_status = r.text(m, "overallStatus", p)
    s.last_known_status = r.text(m, "lastKnownStatus", p)
    s.why_stopped = r.text(m, "whyStopped", p)
    s.status_verified = r.text(m, "statusVerifiedDate", p)
    s.start = r.date(m, "startDateStruct", p)
    s.primary_completion = r.date(m, "primaryCompletionDateStruct", p)
    s.completion = r.date(m, "completionDateStruct", p)
    s.first_submitted = r.text(m, "studyFirstSubmitDate", p)
    s.first_posted = r.date(m, "studyFirstPostDateStruct", p)
    s.results_first_posted = r.date(m, "resultsFirstPostDateStruct", p)
    s.last_update_posted = r.date(m, "lastUpdatePostDateStruct", p)
    ea = r.obj(m, "expandedAccessInfo", p)
    s.has_expanded_access = r.flag(ea, "hasExpandedAccess", f"{p}.expandedAccessInfo")
    s.expanded_access_nct_id = r.text(ea, "nctId", f"{p}.expandedAccessInfo")


def _sponsors(r: _Reader, m: dict[str, Any], s: Study) -> None:
    p = "protocolSection.sponsorCollaboratorsModule"
    lead = r.obj(m, "leadSponsor", p)
    if name := r.text(lead, "name", f"{p}.leadSponsor"):
        s.lead_sponsor = Organization(name, r.text(lead, "class", f"{p}.leadSponsor"))
    for i, c in enumerate(r.objs(m, "collaborators", p)):
        q = f"{p}.collaborators[{i}]"
        if name := r.text(c, "name", q):
            s.collaborators.append(Organization(name, r.text(c, "class", q)))
    rp = r.obj(m, "responsibleParty", p)
    if rp:
        q = f"{p}.responsibleParty"
        s.responsible_party = ResponsibleParty(
            type=r.text(rp, "type", q),
            investigator_name=(r.text(rp, "investigatorFullName", q)
                               or r.text(rp, "oldNameTitle", q)),
            investigator_title=r.text(rp, "investigatorTitle", q),
            investigator_affiliation=r.text(rp, "investigatorAffiliation", q)
            or r.text(rp, "oldOrganization", q),
        )


def _design(r: _Reader, m: dict[str, Any], s: Study) -> None:
    p = "protocolSection.designModule"
    s.study_type = r.text(m, "studyType", p)
    s.phases = r.texts(m, "phases", p)
    di = r.obj(m, "designInfo", p)
    q = f"{p}.designInfo"
    mi = r.obj(di, "maskingInfo", q)
    ea = r.obj(m, "expandedAccessTypes", p)
    s.design = Design(
        allocation=r.text(di, "allocation", q),
        intervention_model=r.text(di, "interventionModel", q),
        intervention_model_description=r.text(di, "interventionModelDescription", q),
        primary_purpose=r.text(di, "primaryPurpose", q),
        masking=r.text(mi, "masking", f"{q}.maskingInfo"),
        who_masked=r.texts(mi, "whoMasked", f"{q}.maskingInfo"),
        masking_description=r.text(mi, "maskingDescription", f"{q}.maskingInfo"),
        observational_model=r.text(di, "observationalModel", q),
        time_perspective=r.text(di, "timePerspective", q),
        patient_registry=r.flag(m, "patientRegistry", p),
        target_duration=r.text(m, "targetDuration", p),
        expanded_access_types=[k.upper() for k, v in ea.items() if v is True],
    )
    en = r.obj(m, "enrollmentInfo", p)
    s.enrollment = r.count(en, "count", f"{p}.enrollmentInfo")
    t = en.get("type")
    s.enrollment_actual = True if t == "ACTUAL" else False if t == "ESTIMATED" else None


def _arms(r: _Reader, m: dict[str, Any], s: Study) -> None:
    p = "protocolSection.armsInterventionsModule"
    for i, a in enumerate(r.objs(m, "armGroups", p)):
        q = f"{p}.armGroups[{i}]"
        label = r.text(a, "label", q)
        if not label:
            s.warn("required", f"{q} has no label; arm skipped", q)
            continue
        s.arms.append(Arm(label, r.text(a, "type", q), r.text(a, "description", q),
                          r.texts(a, "interventionNames", q)))
    for i, iv in enumerate(r.objs(m, "interventions", p)):
        q = f"{p}.interventions[{i}]"
        name = r.text(iv, "name", q)
        if not name:
            s.warn("required", f"{q} has no name; intervention skipped", q)
            continue
        s.interventions.append(Intervention(
            r.text(iv, "type", q), name, r.text(iv, "description", q),
            r.texts(iv, "otherNames", q), r.texts(iv, "armGroupLabels", q)))


def _outcomes(r: _Reader, m: dict[str, Any], s: Study) -> None:
    p = "protocolSection.outcomesModule"
    for key, kind in (("primaryOutcomes", "primary"), ("secondaryOutcomes", "secondary"),
                      ("otherOutcomes", "other")):
        for i, o in enumerate(r.objs(m, key, p)):
            q = f"{p}.{key}[{i}]"
            measure = r.text(o, "measure", q)
            if not measure:
                s.warn("required", f"{q} has no measure; outcome skipped", q)
                continue
            s.outcomes.append(Outcome(kind, measure, r.text(o, "description", q),  # type: ignore[arg-type]
                                      r.text(o, "timeFrame", q)))


def _eligibility(r: _Reader, m: dict[str, Any], s: Study) -> None:
    p = "protocolSection.eligibilityModule"
    s.eligibility = Eligibility(
        criteria=r.text(m, "eligibilityCriteria", p),
        sex=r.text(m, "sex", p),
        gender_based=r.flag(m, "genderBased", p),
        gender_description=r.text(m, "genderDescription", p),
        minimum_age=r.text(m, "minimumAge", p),
        maximum_age=r.text(m, "maximumAge", p),
        healthy_volunteers=r.flag(m, "healthyVolunteers", p),
        std_ages=r.texts(m, "stdAges", p),
        study_population=r.text(m, "studyPopulation", p),
        sampling_method=r.text(m, "samplingMethod", p),
    )


def _person(r: _Reader, c: dict[str, Any], q: str) -> Person:
    return Person(name=r.text(c, "name", q), role=r.text(c, "role", q),
                  affiliation=r.text(c, "affiliation", q), email=r.text(c, "email", q),
                  phone=r.text(c, "phone", q), phone_ext=r.text(c, "phoneExt", q))


def _contacts(r: _Reader, m: dict[str, Any], s: Study) -> None:
    p = "protocolSection.contactsLocationsModule"
    s.central_contacts = [_person(r, c, f"{p}.centralContacts[{i}]")
                          for i, c in enumerate(r.objs(m, "centralContacts", p))]
    s.officials = [_person(r, c, f"{p}.overallOfficials[{i}]")
                   for i, c in enumerate(r.objs(m, "overallOfficials", p))]
    # "locations_nested" is an undocumented variant some exports carry instead of "locations"
    key = "locations" if "locations" in m else "locations_nested"
    for i, loc in enumerate(r.objs(m, key, p)):
        q = f"{p}.{key}[{i}]"
        geo = r.obj(loc, "geoPoint", q)
        s.sites.append(Site(
            facility=r.text(loc, "facility", q), status=r.text(loc, "status", q),
            city=r.text(loc, "city", q), state=r.text(loc, "state", q), zip=r.text(loc, "zip", q),
            country=r.text(loc, "country", q), latitude=r.number(geo, "lat", f"{q}.geoPoint"),
            longitude=r.number(geo, "lon", f"{q}.geoPoint"),
            contacts=[_person(r, c, f"{q}.contacts[{j}]")
                      for j, c in enumerate(r.objs(loc, "contacts", q))]))


def find_doi(citation: str | None) -> str | None:
    """The DOI a citation names (``doi: 10.1001/jama.2024.3669.`` → ``10.1001/jama.2024.3669``)."""
    if not citation:
        return None
    m = DOI_RE.search(citation)
    return m.group(1) if m else None


def _references(r: _Reader, m: dict[str, Any], s: Study) -> None:
    p = "protocolSection.referencesModule"
    for i, ref in enumerate(r.objs(m, "references", p)):
        q = f"{p}.references[{i}]"
        citation = r.text(ref, "citation", q)
        pmid = r.text(ref, "pmid", q)
        if citation or pmid:
            s.references.append(Citation(citation, r.text(ref, "type", q), pmid,
                                         find_doi(citation)))
    for i, link in enumerate(r.objs(m, "seeAlsoLinks", p)):
        q = f"{p}.seeAlsoLinks[{i}]"
        if url := r.text(link, "url", q):
            if re.search(r"\s", url):
                # FHIR url values cannot hold whitespace; the registry's link still names a page
                url = re.sub(r"\s+", "%20", url)
                s.warn("value", f"{q}.url has white space; written percent-encoded", f"{q}.url")
            s.see_also.append(Link(url, r.text(link, "label", q)))


def _mesh(r: _Reader, m: dict[str, Any], p: str) -> list[Coding]:
    out = []
    for i, mesh in enumerate(r.objs(m, "meshes", p)):
        code = r.text(mesh, "id", f"{p}.meshes[{i}]")
        if code:
            out.append(Coding(MESH, code, r.text(mesh, "term", f"{p}.meshes[{i}]")))
    return out


def _intervention_mesh(r: _Reader, m: dict[str, Any], s: Study) -> None:
    """Keep every intervention MeSH term on the study, and attach each to the interventions
    whose names it was found in (a term matching no name stays study-level: CT.gov derives
    terms from descriptions and synonyms too)."""
    codes = _mesh(r, m, "derivedSection.interventionBrowseModule")
    s.intervention_mesh = codes
    for c in codes:
        term = (c.display or "").casefold()
        for iv in s.interventions:
            names = [iv.name, *iv.other_names]
            if term and any(term in n.casefold() or n.casefold() in term for n in names):
                iv.mesh.append(c)


def _related_trials(r: _Reader, m: dict[str, Any], s: Study) -> None:
    """The registry page's 'Related Clinical Trials', which API v2 has no field for: a hand
    transcription of a page carries them under ``x-fhirtrial.relatedTrials``."""
    for i, t in enumerate(r.objs(m, "relatedTrials", "x-fhirtrial")):
        q = f"x-fhirtrial.relatedTrials[{i}]"
        nct = r.text(t, "nctId", q)
        if nct and NCT_RE.match(nct):
            s.related_studies.append(RelatedStudy(nct, r.text(t, "title", q)))
