"""Narratives people read: the ResearchStudy summary, arm dose tables, criteria with their facts —
valid XHTML under FHIR's narrative rules, the same bytes every run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import FIXTURES, SHARED, SHARED_V2, SHARED_V2_PARTIAL, SHARED_XML, shared_files
from fhirtrial.convert import convert_study, dumps
from fhirtrial.sources import read_inputs

NS = "{http://www.w3.org/1999/xhtml}"
SEED_TEXT = SHARED / "seed" / "000_0e34bf711cacdb3f.txt"
SEED_JSON = FIXTURES / "seed" / "NCT06534528.json"
# FHIR R5 narrative (xhtml datatype, txt-1/txt-2): the HTML elements a narrative may hold
ALLOWED = {"a", "abbr", "acronym", "b", "big", "blockquote", "br", "caption", "cite", "code",
           "col", "colgroup", "dd", "dfn", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5",
           "h6", "hr", "i", "img", "li", "ol", "p", "pre", "q", "samp", "small", "span",
           "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt",
           "ul", "var"}
ATTRS = {"class", "style", "id", "lang", "title", "colspan", "rowspan", "href", "name", "src",
         "alt", "border", "cellpadding", "cellspacing", "width", "height", "align", "valign",
         "{http://www.w3.org/XML/1998/namespace}lang", "scope", "span", "summary"}
RECORDS = [SEED_JSON, *shared_files(SHARED_V2, "*.json"),
           *shared_files(SHARED_V2_PARTIAL, "*.json"), *shared_files(SHARED_XML, "*.xml"),
           *shared_files(SHARED / "seed")]


def _bundle(path: Path) -> dict:
    (rec,) = list(read_inputs([str(path)]))
    assert rec.study is not None, rec.error
    return convert_study(rec.study).bundle


def _resource(bundle: dict, rtype: str, id_end: str = "") -> dict:
    return next(e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == rtype and e["resource"]["id"].endswith(id_end))


def _text(el: ET.Element) -> str:
    return " ".join("".join(el.itertext()).split())


def _after(root: ET.Element, heading_prefix: str) -> ET.Element:
    """The element right after the heading whose text starts with ``heading_prefix``."""
    kids = list(root)
    for i, el in enumerate(kids):
        if el.tag.startswith(NS + "h") and _text(el).startswith(heading_prefix):
            return kids[i + 1]
    raise AssertionError(f"no heading {heading_prefix!r}")


def check_xhtml(div: str) -> ET.Element:
    """Parse a narrative div and check it against FHIR's narrative rules; returns the root."""
    root = ET.fromstring(div)
    assert root.tag == NS + "div"
    for el in root.iter():
        assert el.tag.startswith(NS), el.tag
        assert el.tag[len(NS):] in ALLOWED, el.tag
        for attr in el.attrib:
            assert attr in ATTRS, (el.tag, attr)
            assert not attr.lower().startswith("on")
    assert "<script" not in div.lower()
    return root


@pytest.mark.skipif(not SEED_TEXT.is_file(), reason="../shared/seed (the seed page text) absent")
def test_seed_trial_from_page_text_shows_status_doses_and_criteria():
    rs = _resource(_bundle(SEED_TEXT), "ResearchStudy")
    root = check_xhtml(rs["text"]["div"])
    facts = {_text(tr.find(NS + "th")): _text(tr.find(NS + "td"))
             for tr in root.iter(NS + "tr") if tr.find(NS + "th") is not None
             and tr.find(NS + "td") is not None}
    assert facts["Status"] == "Not yet recruiting"
    assert facts["Phase"] == "Phase 1"
    assert facts["Dates"] == "Start 2025-10-01; Completion 2027-10-01"
    arms = _after(root, "Arms and interventions")
    (row,) = arms.find(NS + "tbody")
    cells = [_text(td) for td in row]
    assert cells[0] == "Dose escalation"
    assert cells[2] == "Human umbilical cord mesenchymal stem cell injection"
    doses = [_text(li) for li in row[3].iter(NS + "li")]
    assert doses == ["6.0×106 cells / person", "3.0×107 cells / person",
                     "6.0×107 cells / person", "9.0×107 cells / person"]
    assert [_text(s) for s in row[3].iter(NS + "sup")] == ["6", "7", "7", "7"]
    inclusion = [_text(li) for li in _after(root, "Inclusion criteria (3)")]
    assert inclusion[0].startswith("Clinical diagnosis of interstitial lung disease;")
    assert "[computable: Interstitial lung disease" in inclusion[0]
    assert "Alanine aminotransferase ≤ 2.5 × ULN" in inclusion[1]
    exclusion = [_text(li) for li in _after(root, "Exclusion criteria (13)")]
    assert len(exclusion) == 13
    assert exclusion[3] == ("Pregnant and lactating women "
                            "[computable: Pregnancy: yes; Lactation: yes]")
    assert exclusion[-1].startswith("Subjects who cannot tolerate bronchoscopy examination")
    # the text-only criteria carry no "computable" mark
    assert "computable" not in exclusion[0]


def test_seed_json_narratives_arm_table_and_criteria_with_facts():
    bundle = _bundle(SEED_JSON)
    plan = _resource(bundle, "PlanDefinition")
    root = check_xhtml(plan["text"]["div"])
    table = list(root.iter(NS + "table"))[-1]
    head = [_text(th) for th in table.iter(NS + "th")]
    assert head == ["Intervention", "Dose", "Route", "Schedule"]
    rows = [[_text(td) for td in tr] for tr in table.find(NS + "tbody")]
    assert [r[1] for r in rows] == ["6.0×106 cells / person", "3.0×107 cells / person",
                                    "6.0×107 cells / person", "9.0×107 cells / person"]
    assert {r[3] for r in rows} == {"single dose"}
    act = _resource(bundle, "ActivityDefinition")
    assert "Schedule" in _text(check_xhtml(act["text"]["div"]))
    ev = _resource(bundle, "EvidenceVariable", "-eligibility")
    root = check_xhtml(ev["text"]["div"])
    captions = [_text(c) for c in root.iter(NS + "caption")]
    assert captions[0].startswith("Inclusion criteria (")
    assert captions[1].startswith("Exclusion criteria (")
    # each criterion row: its text, then the facts computed from it (or "text only")
    inclusion = list(root.iter(NS + "table"))[1]
    by_text = dict([_text(td) for td in tr] for tr in inclusion.find(NS + "tbody"))
    assert by_text["Clinical diagnosis of interstitial lung disease;"] == (
        "Interstitial lung disease")
    exclusion = list(root.iter(NS + "table"))[2]
    by_text = dict([_text(td) for td in tr] for tr in exclusion.find(NS + "tbody"))
    assert by_text["individuals who have previously received stem cell therapy"] == "text only"


@pytest.mark.skipif(not (SHARED_V2 / "NCT02552212.json").is_file(), reason="../shared absent")
def test_hundreds_of_sites_list_the_first_ones_with_a_count():
    from fhirtrial.convert.narrative import SITE_LIMIT

    rs = _resource(_bundle(SHARED_V2 / "NCT02552212.json"), "ResearchStudy")
    root = check_xhtml(rs["text"]["div"])
    n_sites = len(rs["site"])
    assert n_sites > SITE_LIMIT
    note = _after(root, f"Sites ({n_sites})")
    assert _text(note) == (f"The first {SITE_LIMIT} of {n_sites} sites ({n_sites - SITE_LIMIT} "
                           "more in the study's Locations).")
    table = list(root.iter(NS + "table"))[-1]
    assert len(table.find(NS + "tbody")) == SITE_LIMIT


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.name)
def test_every_narrative_is_valid_xhtml_and_deterministic(path):
    first = _bundle(path)
    for e in first["entry"]:
        r = e["resource"]
        assert r["text"]["status"] == "generated"
        check_xhtml(r["text"]["div"])
    assert dumps(first) == dumps(_bundle(path))


def test_registry_text_is_escaped_not_markup():
    from fhirtrial.convert.narrative import dose_html, research_study
    from fhirtrial.model import SourceInfo, Study

    s = Study("NCT00000001", SourceInfo("test"), brief_title="<script>alert(1)</script> & co",
              conditions=["a <b>bold</b> claim"], overall_status="RECRUITING")
    div = research_study(s, phase=None, doses={}, arm_interventions={}, criteria=[])["div"]
    root = check_xhtml(div)
    assert "<script>alert(1)</script> & co" in _text(root)
    assert dose_html("1*10^-3 mg <x>") == "1×10<sup>-3</sup> mg &lt;x&gt;"


def test_r4_bundle_keeps_the_rich_narrative():
    from fhirtrial.convert import convert_study as conv

    (rec,) = list(read_inputs([str(SEED_JSON)]))
    r4 = conv(rec.study, fhir_version="R4").bundle
    rs = _resource(r4, "ResearchStudy")
    root = check_xhtml(rs["text"]["div"])
    assert "Inclusion criteria (" in _text(root)
    json.dumps(r4)


def test_a_criterion_that_holds_others_says_how_they_combine(tmp_path: Path) -> None:
    # "text only" beside "Part A:" or "Active disease as defined by:" told a reader nothing
    # was computed, when its nested criteria were
    rec = {"protocolSection": {
        "identificationModule": {"nctId": "NCT09999999", "briefTitle": "Two-part trial"},
        "eligibilityModule": {"eligibilityCriteria": (
            "Inclusion Criteria:\n\n* ECOG 0-1\n* Part A:\n  * Age ≥ 18 years\n* Part B:\n"
            "  * Age 12 to 17 years\n* Active disease, at least 2 of the following:\n"
            "  * CRP ≥ 10 mg/L\n  * ESR ≥ 28 mm/h\n  * DAS28 > 3.2\n")}}}
    path = tmp_path / "NCT09999999.json"
    path.write_text(json.dumps(rec), encoding="utf-8")
    ev = _resource(_bundle(path), "EvidenceVariable", "-eligibility")
    table = next(t for t in check_xhtml(ev["text"]["div"]).iter(NS + "table")
                 if _text(t.find(NS + "caption")).startswith("Inclusion criteria"))
    by_text = dict([_text(td) for td in tr] for tr in table.find(NS + "tbody"))
    assert by_text["One of these participant groups: Part A; Part B"] == (
        "one of the nested criteria")
    assert by_text["– Part A:"] == "all of the nested criteria"
    assert by_text["– Age ≥ 18 years"] == "Age ≥ 18 years"  # (indented by spaces, one dash)
    assert by_text["Active disease, at least 2 of the following:"] == (
        "at least 2 of the nested criteria")
