"""Every fact of a registry record is where a FHIR client looks for it.

Expectations are computed from each record's raw JSON (not from the Study model or the
converter's tables), so this checks the reader and the converter together against the
registry's own words, for every shared record.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import SHARED_V2, SHARED_V2_PARTIAL, shared_files
from fhirtrial.convert import convert_study
from fhirtrial.sources import read_inputs

RECORDS = shared_files(SHARED_V2, "*.json") + shared_files(SHARED_V2_PARTIAL, "*.json")
CTGOV = "http://clinicaltrials.gov"
RSS = "http://hl7.org/fhir/research-study-status"
# the lifecycle codes MAPPING-NOTES.md gives for each overall status (None: no exact code)
STATE = {"NOT_YET_RECRUITING": "not-yet-recruiting", "RECRUITING": "recruiting",
         "ENROLLING_BY_INVITATION": "enrolling-by-invitation",
         "ACTIVE_NOT_RECRUITING": "active-but-not-recruiting",
         "SUSPENDED": "temporarily-closed-to-accrual", "TERMINATED": "terminated",
         "COMPLETED": "completed", "WITHDRAWN": "withdrawn", "UNKNOWN": None, "WITHHELD": None,
         "AVAILABLE": None, "NO_LONGER_AVAILABLE": None, "TEMPORARILY_NOT_AVAILABLE": None,
         "APPROVED_FOR_MARKETING": None}
PHASE = {("NA",): "n-a", ("EARLY_PHASE1",): "early-phase-1", ("PHASE1",): "phase-1",
         ("PHASE1", "PHASE2"): "phase-1-phase-2", ("PHASE2",): "phase-2",
         ("PHASE2", "PHASE3"): "phase-2-phase-3", ("PHASE3",): "phase-3", ("PHASE4",): "phase-4"}
ROLE = {"PRINCIPAL_INVESTIGATOR": "primary-investigator", "STUDY_DIRECTOR": "study-director",
        "STUDY_CHAIR": "study-chair", "SUB_INVESTIGATOR": "sub-investigator"}
OBJECTIVE = {"primaryOutcomes": "primary", "secondaryOutcomes": "secondary",
             "otherOutcomes": "exploratory"}
_ESC = re.compile(r"\\(.)")
# (a list mark with a space after it, or a dash or bullet glued to a capital: "-Patients …")
_MARK = re.compile(r"^\s*(?:(?:[*\-+•·▪●○◦]|\(?\d{1,3}[.)、]|\(?[a-zA-Z][.)]|[ivxIVX]{1,4}[.)])\s+|"
                   r"[\-•▪●○◦](?=[A-Z]))")


def _raw(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text("utf-8"))
    return doc[0] if isinstance(doc, list) else doc


class View:
    """Lookups over one converted Bundle."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        self.by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
        self.rs = bundle["entry"][0]["resource"]
        self.resources = [e["resource"] for e in bundle["entry"]]
        self.raw: dict[str, Any] = {}

    def get(self, ref: dict[str, str]) -> dict[str, Any]:
        return self.by_url[ref["reference"]]

    def of_type(self, rtype: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["resourceType"] == rtype]


def _codes(cc: dict[str, Any] | None, system: str) -> set[str]:
    return {c["code"] for c in (cc or {}).get("coding", []) if c["system"] == system}


def _descriptions(chars: list[dict[str, Any]]) -> list[str]:
    out = []
    for c in chars:
        out.append(c.get("description", ""))
        out.extend(_descriptions(c.get("definitionByCombination", {}).get("characteristic", [])))
    return out


@pytest.fixture(scope="module", params=RECORDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def case(request: pytest.FixtureRequest) -> tuple[dict[str, Any], View]:
    [rec] = list(read_inputs([str(request.param)]))
    assert rec.study is not None
    raw = _raw(request.param)
    v = View(convert_study(rec.study).bundle)
    v.raw = raw
    return raw["protocolSection"], v


def test_identifiers_and_titles(case) -> None:
    ps, v = case
    ident = ps.get("identificationModule", {})
    values = {(i.get("system"), i["value"]) for i in v.rs["identifier"]}
    assert (CTGOV, ident["nctId"]) in values
    official = [i for i in v.rs["identifier"] if i.get("use") == "official"]
    assert official[0]["value"] == ident["nctId"]
    plain = {i["value"] for i in v.rs["identifier"]}
    if "orgStudyIdInfo" in ident:
        assert ident["orgStudyIdInfo"]["id"] in plain
    for sec in ident.get("secondaryIdInfos", []):
        assert sec["id"] in plain
    labels = {(lab["type"]["coding"][0]["code"], lab["value"]) for lab in v.rs.get("label", [])}
    if "briefTitle" in ident:
        assert v.rs["title"] == ident["briefTitle"]
    if "officialTitle" in ident:
        assert ("official", ident["officialTitle"]) in labels
    if "acronym" in ident:
        assert ("acronym", ident["acronym"]) in labels


def test_status_dates_and_why_stopped(case) -> None:
    ps, v = case
    st = ps.get("statusModule")
    if not st:
        return
    state = v.rs["progressStatus"][0]["state"]
    expected = STATE[st["overallStatus"]]
    if expected:
        assert _codes(state, RSS) == {expected}
    else:
        assert not _codes(state, RSS)  # no guess from lastKnownStatus
    if "startDateStruct" in st:
        assert v.rs["period"]["start"] == st["startDateStruct"]["date"]
    if "completionDateStruct" in st:
        assert v.rs["period"]["end"] == st["completionDateStruct"]["date"]
    if "primaryCompletionDateStruct" in st:
        pc = st["primaryCompletionDateStruct"]
        [m] = [p for p in v.rs["progressStatus"] if p["state"].get("text") == "Primary completion"]
        assert m["period"]["end"] == pc["date"]
        if "type" in pc:
            assert m["actual"] is (pc["type"] == "ACTUAL")
    if "lastUpdatePostDateStruct" in st:
        assert v.rs["date"] == st["lastUpdatePostDateStruct"]["date"]
    if "whyStopped" in st:
        assert v.rs["whyStopped"]["text"] == st["whyStopped"]


def test_phase_purpose_and_enrollment(case) -> None:
    ps, v = case
    design = ps.get("designModule", {})
    if design.get("phases"):
        phases = tuple(sorted(set(design["phases"])))
        assert _codes(v.rs.get("phase"), "http://hl7.org/fhir/research-study-phase") == {
            PHASE[phases]}
    purpose = design.get("designInfo", {}).get("primaryPurpose")
    if purpose in ("ECT", "OTHER"):
        assert "coding" not in v.rs["primaryPurposeType"] or not _codes(
            v.rs["primaryPurposeType"], "http://hl7.org/fhir/research-study-prim-purp-type")
    elif purpose:
        assert _codes(v.rs["primaryPurposeType"],
                      "http://hl7.org/fhir/research-study-prim-purp-type") == {
            purpose.lower().replace("_", "-")}
    en = design.get("enrollmentInfo")
    if en and "count" in en:
        key = "actualNumber" if en.get("type") == "ACTUAL" else "targetNumber"
        assert v.rs["recruitment"][key] == en["count"]


def test_conditions_keywords_and_mesh(case) -> None:
    ps, v = case
    cond = ps.get("conditionsModule", {})
    texts = {c.get("text") for c in v.rs.get("condition", [])}
    for c in cond.get("conditions", []):
        assert c in texts
    keywords = {k["text"] for k in v.rs.get("keyword", [])}
    for k in cond.get("keywords", []):
        assert k in keywords


def test_mesh_terms_are_condition_codings(case) -> None:
    _, v = case
    meshes = v.raw.get("derivedSection", {}).get("conditionBrowseModule", {}).get("meshes", [])
    codes = set()
    for c in v.rs.get("condition", []):
        codes |= _codes(c, "http://id.nlm.nih.gov/mesh")
    assert {m["id"] for m in meshes} <= codes


def test_sponsors_and_collaborators(case) -> None:
    ps, v = case
    sp = ps.get("sponsorCollaboratorsModule", {})
    parties = v.rs.get("associatedParty", [])

    def party(role: str, name: str) -> dict[str, Any]:
        [p] = [p for p in parties if p.get("name") == name and role in _codes(
            p["role"], "http://hl7.org/fhir/research-study-party-role")]
        return p
    if "leadSponsor" in sp:
        p = party("lead-sponsor", sp["leadSponsor"]["name"])
        assert v.get(p["party"])["name"] == sp["leadSponsor"]["name"]
    for c in sp.get("collaborators", []):
        p = party("collaborator", c["name"])
        assert v.get(p["party"])["name"] == c["name"]


def test_officials_and_central_contacts(case) -> None:
    ps, v = case
    cl = ps.get("contactsLocationsModule", {})
    parties = v.rs.get("associatedParty", [])
    for o in cl.get("overallOfficials", []):
        matches = [p for p in parties if p.get("name") == o.get("name")]
        assert matches, f"official {o.get('name')} missing"
        if o.get("role"):
            assert any(ROLE[o["role"]] in _codes(p["role"],
                       "http://hl7.org/fhir/research-study-party-role") for p in matches)
        [role] = [v.get(p["party"]) for p in matches
                  if v.get(p["party"])["resourceType"] == "PractitionerRole"]
        assert v.get(role["practitioner"])["name"][0]["text"] == o["name"]
    for c in cl.get("centralContacts", []):
        matches = [p for p in parties if p.get("name") == c.get("name") and "recruitment-contact"
                   in _codes(p["role"], "http://hl7.org/fhir/research-study-party-role")]
        assert matches
        who = v.get(matches[0]["party"])
        tele = {t["value"] for t in who.get("telecom", [])}
        if c.get("email"):
            assert c["email"] in tele


def test_every_site_is_a_location_of_the_study(case) -> None:
    ps, v = case
    cl = ps.get("contactsLocationsModule", {})
    locs = cl.get("locations", cl.get("locations_nested", []))
    sites = [v.get(r) for r in v.rs.get("site", [])]
    assert len(sites) == len(locs)
    for raw, loc in zip(locs, sites, strict=True):
        if raw.get("facility"):
            assert loc["name"] == raw["facility"]
        if raw.get("city"):
            assert loc["address"]["city"] == raw["city"]
        if raw.get("geoPoint"):
            assert loc["position"]["latitude"] == pytest.approx(raw["geoPoint"]["lat"])
        if raw.get("status"):
            assert raw["status"] in {c["code"] for c in loc["characteristic"][0]["coding"]}


def test_arms_and_their_interventions(case) -> None:
    ps, v = case
    ai = ps.get("armsInterventionsModule", {})
    groups = {g["name"]: g for g in v.rs.get("comparisonGroup", [])}
    for arm in ai.get("armGroups", []):
        g = groups[arm["label"]]
        if arm.get("type"):
            want = {"OTHER": "other-arm-type"}.get(arm["type"], arm["type"].lower().replace(
                "_", "-"))
            assert _codes(g["type"], "http://hl7.org/fhir/research-study-arm-type") == {want}
        exposure = v.get(g["intendedExposure"][0])
        plan = v.get(exposure["relatedArtifact"][0]["resourceReference"])
        assert plan["title"] == arm["label"]
        titles = {a["title"] for a in plan.get("action", [])}
        for label in arm.get("interventionNames", []):
            name = label.split(": ", 1)[1] if ": " in label else label
            assert name in titles, f"arm {arm['label']} lacks {label}"
    all_titles = {a["title"] for p in v.of_type("PlanDefinition") for a in p.get("action", [])}
    for iv in ai.get("interventions", []):
        assert iv["name"] in all_titles


def test_outcomes(case) -> None:
    ps, v = case
    om = ps.get("outcomesModule", {})
    measures = v.rs.get("outcomeMeasure", [])
    for key, code in OBJECTIVE.items():
        for o in om.get(key, []):
            found = [m for m in measures if m["name"] == o["measure"] and code in _codes(
                m["type"][0], "http://hl7.org/fhir/research-study-objective-type")
                and m.get("description") == o.get("description")
                and _time_frame(v.get(m["reference"])) == o.get("timeFrame")]
            assert found, f"outcome {o['measure']!r} missing"
            assert v.get(found[0]["reference"])["title"] == o["measure"]


def _time_frame(ev: dict[str, Any]) -> str | None:
    events = ev["characteristic"][0].get("timeFromEvent", [])
    return events[0]["description"] if events else None


def test_every_criterion_line_is_kept_verbatim(case) -> None:
    ps, v = case
    el = ps.get("eligibilityModule", {})
    text = el.get("eligibilityCriteria")
    eligibility = v.get(v.rs["recruitment"]["eligibility"])
    joined = "\n".join(_descriptions(eligibility.get("characteristic", [])))
    for line in (text or "").splitlines():
        plain = _MARK.sub("", _ESC.sub(r"\1", line)).strip()
        if not plain or re.search(r"criteria\W*$", plain, re.IGNORECASE):
            continue  # a section heading is the criteria's sense, not a criterion
        assert plain in joined, f"criterion line lost: {plain!r}"
    if el.get("minimumAge"):
        assert any(d.startswith("Age:") and el["minimumAge"] in d for d in joined.splitlines())
    if el.get("sex") in ("FEMALE", "MALE"):
        sex = [c for c in eligibility["characteristic"] if c["description"].startswith("Sex:")]
        assert sex[0]["definitionByTypeAndValue"]["valueCodeableConcept"]["coding"][0][
            "code"] == el["sex"].lower()


def test_references_and_links(case) -> None:
    ps, v = case
    rm = ps.get("referencesModule", {})
    arts = v.rs.get("relatedArtifact", [])
    urls = {a.get("document", {}).get("url") for a in arts}
    dois = {a.get("resourceReference", {}).get("identifier", {}).get("value") for a in arts}
    for ref in rm.get("references", []):
        if ref.get("pmid"):
            assert f"https://pubmed.ncbi.nlm.nih.gov/{ref['pmid']}/" in urls
        m = re.search(r"\bdoi:\s*(10\.\S+?)\.?(?:\s|$)", ref.get("citation", ""), re.IGNORECASE)
        if m:
            assert m.group(1) in dois
        if ref.get("citation"):
            assert ref["citation"] in {a.get("citation") for a in arts}
    for link in rm.get("seeAlsoLinks", []):
        assert link["url"] in urls
