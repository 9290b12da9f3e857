"""Registry page text: the seed page reads into the same Study as its reviewed hand
transcription, and every line of a page is either placed or reported."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from conftest import FIXTURES, SHARED, needs_shared
from fhirtrial.sources import parse_bytes
from fhirtrial.sources.ctgov_json import read_study
from fhirtrial.sources.pagetext import looks_like_page_text, read_page_text
from fhirtrial.tables import data_table as load_table

SEED = SHARED / "seed" / "000_0e34bf711cacdb3f.txt"
TRANSCRIPTION = FIXTURES / "seed" / "NCT06534528.json"


def _seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Every leaf where two dataclass trees differ, as 'path: a != b'."""
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
        a, b = dataclasses.asdict(a), dataclasses.asdict(b)  # type: ignore[arg-type]
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b))
                for d in differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


@needs_shared
def test_seed_page_text_is_detected_as_page_text() -> None:
    (rec,) = list(parse_bytes(SEED.read_bytes(), "seed.txt"))
    assert rec.study is not None
    assert rec.study.source.format == "ctgov-page-text"
    assert rec.study.nct_id == "NCT06534528"


@needs_shared
def test_seed_page_text_gives_the_hand_transcription_field_by_field() -> None:
    page = read_page_text(_seed_text(), "seed.txt")
    hand = read_study(json.loads(TRANSCRIPTION.read_text(encoding="utf-8")), "transcription")
    # where each came from differs by design, and so do the findings: each reader reports
    # what its own source lacks (empty page sections, absent JSON modules)
    page.source, page.findings = hand.source, hand.findings
    diffs = differences(page, hand)
    assert diffs == [], "page text and transcription differ:\n" + "\n".join(diffs)


@needs_shared
def test_every_seed_line_is_placed_or_boilerplate() -> None:
    page = read_page_text(_seed_text(), "seed.txt")
    assert [f.message for f in page.findings if f.code != "incomplete"] == []


@needs_shared
def test_empty_page_sections_are_reported_as_missing_facts() -> None:
    page = read_page_text(_seed_text(), "seed.txt")
    seed_lines = [ln.strip() for ln in _seed_text().splitlines()]
    empty = ["Brief Summary", "Detailed Description", "Conditions", "Responsible Party",
             "Central Contacts"]
    assert [(f.code, f.location) for f in page.findings] == [
        ("incomplete", f"line {seed_lines.index(h) + 1}") for h in sorted(
            empty, key=seed_lines.index)]


@needs_shared
def test_boilerplate_table_holds_every_explanatory_sentence_of_the_seed() -> None:
    boiler = {b["text"] for s in load_table("page-text")["sections"].values()
              for b in s["boilerplate"]}
    lines = {ln.strip() for ln in _seed_text().splitlines()}
    # the explanatory sentences are the lines right after each heading in the seed
    sections = load_table("page-text")["sections"]
    seed_lines = [ln.strip() for ln in _seed_text().splitlines()]
    after_heading = {seed_lines[i + 1] for i, ln in enumerate(seed_lines[:-1]) if ln in sections}
    assert after_heading <= boiler
    assert boiler & lines == after_heading | {
        "The study team has not published outcome measurements, participant flow, or safety "
        "data for this trial yet. Check back later for updates."}


@needs_shared
@pytest.mark.parametrize(("after", "inserted", "section"), [
    ("24 participants", "Lorem ipsum dolor", "under 'Basic Information'"),
    ("TREATMENT", "RANDOMIZED", "under 'Study Design'"),
    ("Identifier Source: org_study_id", "Identifier Colour: blue", "under 'Other Identifiers'"),
    ("NCT ID: NCT06534528", "Printed from the web", "before the first section"),
    ("NCT06984497", "A title with no id", "under 'Related Clinical Trials'"),
], ids=["basic-info", "second-allocation", "identifier-attr", "header", "related-title"])
def test_unplaceable_line_becomes_a_warning_naming_its_line(after: str, inserted: str,
                                                            section: str) -> None:
    lines = _seed_text().splitlines()
    at = lines.index(after) + 1
    lines.insert(at, inserted)
    study = read_page_text("\n".join(lines), "p.txt")
    (finding,) = [f for f in study.findings if f.code != "incomplete"]
    assert finding.severity == "warning"
    assert finding.location == f"line {at + 1}"
    assert section in finding.message
    assert inserted in finding.message


def test_missing_values_do_not_shift_the_others() -> None:
    text = "\n".join([
        "A trial", "NCT ID: NCT01234567", "Basic Information",
        "RECRUITING", "120 participants", "2024-01", "2026-06-30",
        "Study Design", "RANDOMIZED", "PARALLEL", "PREVENTION", "DOUBLE", "PARTICIPANT",
        "INVESTIGATOR",
    ])
    s = read_page_text(text, "p.txt")
    assert s.phases == []
    assert s.study_type is None
    assert (s.overall_status, s.enrollment) == ("RECRUITING", 120)
    assert (s.start.date, s.completion.date) == ("2024-01", "2026-06-30")
    assert s.primary_completion is None
    assert s.design.masking == "DOUBLE"
    assert s.design.who_masked == ["PARTICIPANT", "INVESTIGATOR"]
    assert s.findings == []


def test_combined_phases_and_typed_interventions_are_read() -> None:
    text = "\n".join([
        "A trial", "NCT ID: NCT01234567", "Basic Information", "PHASE1, PHASE2",
        "Study Groups", "Arm A", "EXPERIMENTAL", "Patients get the drug.", "Drug: Aspirin",
        "Interventions", "Drug: Aspirin", "100 mg once daily by mouth.",
        "Sponsors", "Big Pharma", "INDUSTRY", "Small University", "OTHER",
    ])
    s = read_page_text(text, "p.txt")
    assert s.phases == ["PHASE1", "PHASE2"]
    assert [(a.label, a.type, a.intervention_names) for a in s.arms] == [
        ("Arm A", "EXPERIMENTAL", ["Drug: Aspirin"])]
    assert [(i.type, i.name, i.arm_labels) for i in s.interventions] == [
        ("DRUG", "Aspirin", ["Arm A"])]
    assert s.lead_sponsor.agency_class == "INDUSTRY"
    assert [(c.name, c.agency_class) for c in s.collaborators] == [("Small University", "OTHER")]
    assert s.findings == []


@pytest.mark.parametrize(("text", "expected"), [
    ("Title\nNCT ID: NCT06534528\n", True),
    ("Some article\nmentioning NCT06534528 in passing\n", False),
    ("NCT06534528", False),
], ids=["page", "prose", "bare-id"])
def test_page_text_detection_needs_the_nct_id_line(text: str, expected: bool) -> None:
    assert looks_like_page_text(text) is expected
