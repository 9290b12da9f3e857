"""Section headings in every form, on texts generated in our own words (no ../shared): every
criterion line stays, once, on the side of the heading above it, whatever the heading looks
like, and no criterion that merely mentions inclusion or exclusion moves a side."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhirtrial.eligibility import parse_criteria
from fhirtrial.eligibility.criteria import heading, label_inside, lead_in

# criteria of our own, some naming inclusion or exclusion in passing (never a heading)
CRITERIA = [
    "Adults aged 18 to 65 years",
    "Hemoglobin ≥ 9 g/dL",
    "Able to give written informed consent",
    "History of myocardial infarction within 6 months",
    "Pregnant or breastfeeding women",
    "Not meeting the inclusion criteria above",
    "Other protocol-defined exclusion criteria may apply",
    "Previous inclusion in this study",
    "Participants excluded from a prior trial for non-compliance",
    "Eligible for surgery according to the treating surgeon",
    "Body mass index between 18 and 35 kg/m2",
    "Lack of compliance with any inclusion criteria",
    "Known allergy to the study drug (see exclusion list)",
    "Treatment plan including chemotherapy",
    "Any condition that, in the opinion of the investigator, excludes participation",
]
PREFIXES = ["", "Key ", "Main ", "Patient ", "Donor ", "Part A ", "Cohort 2 ", "Additional "]
QUALIFIERS = ["", " (Part A)", " for Cohort 1", " for healthy volunteers", " (both groups)"]
SIDE_WORDS = {  # side → ways to say it, with or without a criteria word
    False: ["Inclusion Criteria", "inclusion criteria", "INCLUSION CRITERIA", "Inclusion criterion",
            "Inclusion Conditions", "Criteria for inclusion", "Inclusions", "Eligibility Criteria"],
    True: ["Exclusion Criteria", "exclusion criteria", "EXCLUSION CRITERIA", "Exclusion criterion",
           "Exclusion Conditions", "Criteria for exclusion", "Exclusions",
           "Non-inclusion criteria", "Exclusionary criteria"],
}
OTHER_LANGUAGES = {False: ["入选标准：", "纳入标准", "Критерии включения:", "Einschlusskriterien:",
                           "Criteri di inclusione:", "Critérios de inclusão:"],
                   True: ["排除标准：", "除外标准", "Критерии исключения:", "Ausschlusskriterien:",
                          "Criteri di esclusione:", "Critérios de exclusão:"]}
LEAD_INS = {False: ["Participants must meet all of the following inclusion criteria:",
                    "Patients will be included if they meet all of the following:"],
            True: ["Patients will be excluded if:",
                   "Patients will be excluded if they have any of the following",
                   "Subjects who meet any of the following criteria will be excluded from "
                   "the study:",
                   "Participants must not meet any of the following exclusion criteria to "
                   "be eligible:",
                   "Participants are excluded from the study if any of the following criteria "
                   "apply:"]}
MARKERS = ["* ", "- ", "1. ", "2) ", "a. ", "iii. ", "• "]


@st.composite
def _heading(draw: Any, side: bool) -> tuple[str, str | None, bool]:
    """(heading line, criterion written after it or None, whether the line itself is a
    criterion — a lead-in sentence is)."""
    form = draw(st.sampled_from(["label", "label", "label", "other-language", "lead-in"]))
    if form == "lead-in":
        line = draw(st.sampled_from(LEAD_INS[side]))
        return draw(st.sampled_from(["", "* ", "- "])) + line, None, True
    if form == "other-language":
        return draw(st.sampled_from(OTHER_LANGUAGES[side])), None, False
    words = draw(st.sampled_from(SIDE_WORDS[side]))
    bare = words in ("Inclusions", "Exclusions")  # no criteria word: needs the colon
    prefix = "" if words.startswith(("Criteria", "Non")) else draw(st.sampled_from(PREFIXES))
    qual = "" if bare else draw(st.sampled_from(QUALIFIERS))
    term = ":" if bare else draw(st.sampled_from([":", "", " :", "：", "--", "."]))
    label = f"{prefix}{words}{qual}{term}"
    deco = draw(st.sampled_from(["plain", "bold", "marker", "number", "markdown-heading"]))
    if deco == "bold":
        label = f"**{label.rstrip(':')}**" + (":" if label.endswith(":") else "")
    elif deco == "marker" and not prefix:  # "- Signed consent Exclusion criteria:" is a
        label = "* " + label                # criterion first: list items carry no prefix
    elif deco == "number" and not prefix:
        label = "1. " + label
    elif deco == "markdown-heading":
        label = "### " + label
    rest = None
    if term in (":", "：", "--") and deco != "bold" and draw(st.booleans()):
        rest = draw(st.sampled_from(CRITERIA))
        label = f"{label}{draw(st.sampled_from(['', ' ']))}{rest}"
    return label, rest, False


@st.composite
def documents(draw: Any) -> tuple[str, list[tuple[str, bool]]]:
    """An eligibility text and, in order, every criterion line with its side."""
    lines: list[str] = []
    expected: list[tuple[str, bool]] = []
    side = False
    first = True
    for new_side in draw(st.lists(st.booleans(), min_size=1, max_size=4)):
        if first and draw(st.booleans()):
            # criteria before any heading are inclusion
            for text in draw(st.lists(st.sampled_from(CRITERIA), max_size=2)):
                lines.append(f"* {text}")
                expected.append((text, False))
        first = False
        line, rest, itself = draw(_heading(new_side))
        if lines and draw(st.integers(0, 5)) == 0 and not itself:
            # the heading written after the last criterion, on its line: the criterion keeps
            # its side, the lines below take the new one
            word = "Exclusion" if new_side else "Inclusion"
            lines[-1] = f"{lines[-1]} {word} Criteria:"
            expected[-1] = (f"{expected[-1][0]} {word} Criteria:", expected[-1][1])
        else:
            lines.append(line)
            if itself:
                expected.append((re.sub(r"^[*-] ", "", line), new_side))
            if rest is not None:
                expected.append((rest, new_side))
        side = new_side
        if draw(st.booleans()):
            lines.append("")
        for text in draw(st.lists(st.sampled_from(CRITERIA), min_size=1, max_size=4)):
            marker = draw(st.sampled_from([*MARKERS, ""]))
            indent = draw(st.sampled_from(["", "", "  "]))
            lines.append(f"{indent}{marker}{text}")
            expected.append((text, side))
    return "\n".join(lines), expected


def _criterion_lines(text: str) -> list[tuple[str, bool]]:
    return [(part, c.exclude) for root in parse_criteria(text) for c in root.walk()
            for part in c.text.split("\n")]


@settings(max_examples=200, deadline=None)
@given(documents())
def test_every_criterion_line_once_on_its_headings_side(doc) -> None:
    text, expected = doc
    got = _criterion_lines(text)
    assert [t for t, _ in got] == [t for t, _ in expected], text
    assert got == expected, text


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CRITERIA), st.sampled_from(["", *MARKERS]))
def test_a_criterion_naming_inclusion_or_exclusion_is_no_heading(text: str, marker: str) -> None:
    line = f"{marker}{text}"
    assert heading(line) is None
    assert lead_in(line) is None
    assert label_inside(line) is None


@pytest.mark.parametrize(("line", "exclude", "rest"), [
    ("Exclusion Criteria: The persons who meet any of the following will be excluded",
     True, "The persons who meet any of the following will be excluded"),
    ("Exclusion Criteria:1. Age under 40 years", True, "1. Age under 40 years"),
    ("* Inclusion Criteria: All answers must be YES", False, "All answers must be YES"),
    ("**Key Exclusion Criteria:**", True, None),
    ("II. EXCLUSION CRITERIA", True, None),
    ("Criteria for exclusion:", True, None),
    ("Inclusion Criteria-- Participants must be:", False, "Participants must be:"),
    ("Exclusion Criteria for all subjects, includes:", True, "includes:"),
    ("Non-inclusion criteria:", True, None),
    ("Ineligibility:", True, None),  # after "Eligibility:", the exclusions
    ("Exclusion criteria;", True, None),
    ("Excusion Criteria:", True, None),
    ("Transplant Exclusion:", True, None),
    ("Critères de non-inclusion :", True, None),
    ("排除标准：", True, None),
    ("Критерии включения:", False, None),
    ("Exclusionary Criteria:", True, None),
    ("Inclusionary criteria:", False, None),
    ("Ausschlusskriterien: Schwangerschaft", True, "Schwangerschaft"),
    ("Einschlusskriterien", False, None),
    ("Criteri di esclusione:", True, None),
    ("Critérios de exclusão:", True, None),
    # a dash then a criterion (the criterion was taken for a qualifier of the label, and lost)
    ("Exclusion criteria - Pregnant", True, "Pregnant"),
    ("Inclusion criteria - Age ≥ 18 years", False, "Age ≥ 18 years"),
    # … but a part the label is for is the label's
    ("Exclusion Criteria – Part A", True, None),
    ("Exclusion Criteria - Cohort 2:", True, None),
    # "… are as follows:", "… include:" end a heading as a colon does
    ("Exclusion criteria are as follows: smoking", True, "smoking"),
    ("Inclusion criteria include:", False, None),
])
def test_heading_forms(line: str, exclude: bool, rest: str | None) -> None:
    head = heading(line)
    assert head is not None
    assert (head.exclude, head.rest) == (exclude, rest)


@pytest.mark.parametrize("line", [
    "Inclusion criteria 13 is only for patients registered before starting chemotherapy",
    "Other protocol specified inclusion/exclusion criteria apply.",
    "Biological Mother Inclusion/Exclusion:",
    "- Do not meet inclusion criteria",
    "* No exclusion criteria",
    "- Signed informed consent Exclusion criteria:",
    "Diagnosis of MS, including Clinically Isolated Syndrome",
])
def test_sentences_about_criteria_are_not_headings(line: str) -> None:
    assert heading(line) is None


def test_text_after_a_heading_is_a_criterion_on_the_new_side() -> None:
    text = ("Inclusion Criteria:\n* Age ≥ 18 years\n"
            "Exclusion Criteria: 1. Age under 40 years. 2. No medication benefits.\n"
            "* Pregnancy")
    got = [(c.text, c.exclude) for c in parse_criteria(text)]
    assert got == [("Age ≥ 18 years", False),
                   ("Age under 40 years. 2. No medication benefits.", True),
                   ("Pregnancy", True)]


def test_a_lead_in_sentence_opens_its_side_and_stays_a_criterion() -> None:
    text = ("* Adults\n* Patients with any of the following will be excluded:\n"
            "  * Pregnancy\n  * Active infection\n")
    [adults, lead] = parse_criteria(text)
    assert (adults.text, adults.exclude) == ("Adults", False)
    assert (lead.text, lead.exclude) == (
        "Patients with any of the following will be excluded:", True)
    assert [(c.text, c.exclude) for c in lead.children] == [("Pregnancy", True),
                                                            ("Active infection", True)]


def test_a_conditional_clause_about_exclusion_is_no_lead_in() -> None:
    line = ("* Women must have a negative pregnancy test; patients that are pregnant are "
            "excluded; a woman of childbearing potential is one who meets the following:")
    assert lead_in(line) is None
    text = f"Inclusion Criteria:\n{line}\n  * Has not undergone hysterectomy\n* ECOG 0-1"
    assert {c.exclude for root in parse_criteria(text) for c in root.walk()} == {False}


def test_a_heading_after_a_criterion_switches_the_side_below_it() -> None:
    text = "* Signed informed consent Exclusion criteria:\n* Pregnancy\n* Active infection"
    got = [(c.text, c.exclude) for c in parse_criteria(text)]
    assert got == [("Signed informed consent Exclusion criteria:", False),
                   ("Pregnancy", True), ("Active infection", True)]


def test_a_heading_after_a_sentence_on_the_same_line_opens_its_side_there() -> None:
    # both sections in one paragraph: the exclusion was on the inclusion side
    text = "Main inclusion criteria: age ≥ 18 years. Main exclusion criteria: pregnancy."
    got = [(c.text, c.exclude) for c in parse_criteria(text)]
    assert got == [("age ≥ 18 years.", False), ("pregnancy.", True)]


@pytest.mark.parametrize(("text", "want"), [
    # a lead-in in plain words, for the people who read the list
    ("You can take part if you:\n* are 18 or older\nYou cannot take part if you:\n* are pregnant",
     [("You can take part if you:", False), ("are 18 or older", False),
      ("You cannot take part if you:", True), ("are pregnant", True)]),
    ("Inclusion Criteria:\n* Age ≥ 18\nPatients not eligible:\n* Pregnancy",
     [("Age ≥ 18", False), ("Patients not eligible:", True), ("Pregnancy", True)]),
    ("Do not participate if you:\n* are pregnant",
     [("Do not participate if you:", True), ("are pregnant", True)]),
    # … not a clause about someone who cannot take part, nor a willingness
    ("Inclusion Criteria:\n* Patients who cannot participate in follow-up visits:\n* ECOG 0-1",
     [("Patients who cannot participate in follow-up visits:", False), ("ECOG 0-1", False)]),
    ("Inclusion Criteria:\n* Willing to participate:\n  * in all visits",
     [("Willing to participate:", False), ("in all visits", False)]),
    # both sections in one paragraph, each heading "… are as follows:"
    ("Inclusion criteria are as follows: age 18-65; BMI < 30. Exclusion criteria are as "
     "follows: smoking; pregnancy.",
     [("age 18-65; BMI < 30.", False), ("smoking; pregnancy.", True)]),
])
def test_plain_words_and_as_follows_open_their_side(text: str, want: list[tuple]) -> None:
    assert [(c.text, c.exclude) for root in parse_criteria(text) for c in root.walk()] == want
