"""The splitter: every criterion line of every shared record lands, verbatim after unescaping,
in exactly one characteristic, with the include/exclude sense of the heading above it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from conftest import SHARED_V2, SHARED_V2_PARTIAL, SHARED_XML, needs_shared, shared_files
from fhirtrial.eligibility import criteria_for, parse_criteria, unescape
from fhirtrial.eligibility.fhir import characteristic
from fhirtrial.sources import read_inputs


def _with_criteria(paths: list[Path]) -> list[Path]:
    # partial records fetched without the eligibility module have nothing to split
    out = []
    for p in paths:
        recs = list(read_inputs([str(p)]))
        if recs and recs[0].study and recs[0].study.eligibility.criteria:
            out.append(p)
    return out


RECORDS = _with_criteria(shared_files(SHARED_V2, "*.json")
                         + shared_files(SHARED_V2_PARTIAL, "*.json")
                         + shared_files(SHARED_XML, "*.xml"))
_ESC = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>=^~|&%$@\"'/:;,?])")
# a section heading names the sense and nothing else ("Key Exclusion Criteria:")
_HEAD = re.compile(r"^\W*(?:\w+\s+)?(?:inclusion|exclusion|eligibility)(?:\s+criteria)?\s*"
                   r"(?:\([^)]*\))?\s*:?\W*$|^(?:入选|纳入|排除)标准\W*$", re.IGNORECASE)


def _lines_with_sense(text: str) -> list[tuple[str, bool]]:
    """(line, exclude) for every criterion line, the sense read from the heading above it."""
    out, exclude = [], False
    for raw in text.splitlines():
        line = _ESC.sub(r"\1", raw).strip()
        if not line:
            continue
        if _HEAD.search(line):
            exclude = bool(re.search(r"exclu|排除", line, re.IGNORECASE))
            continue
        out.append((line, exclude))
    return out


def _where(chars: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """(description line, top-level exclude) of every criterion characteristic, nested ones
    included, fact members (linkId fact-…) left out."""
    out: list[tuple[str, bool]] = []

    def walk(c: dict[str, Any], exclude: bool) -> None:
        out.extend((d, exclude) for d in c["description"].split("\n"))
        for m in c.get("definitionByCombination", {}).get("characteristic", []):
            if not str(m.get("linkId", "")).startswith("fact-"):
                walk(m, exclude)

    for c in chars:
        walk(c, c["exclude"])
    return out


def _matches(line: str, desc: str) -> bool:
    # the description drops the list marker ("* ", "1. ", "a) ") and nothing else
    return line == desc or (line.endswith(desc) and len(line) - len(desc) <= 6
                            and not re.search(r"\w{3}", line[: len(line) - len(desc)]))


@needs_shared
@pytest.mark.parametrize("path", RECORDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_line_in_exactly_one_characteristic_with_its_sense(path: Path) -> None:
    [rec] = list(read_inputs([str(path)]))
    assert rec.study is not None
    text = rec.study.eligibility.criteria
    where = _where([characteristic(c) for c in criteria_for(text)])
    expected = _lines_with_sense(text)
    for line, _ in expected:
        homes = sorted(e for d, e in where if _matches(line, d))
        # a line written twice ("Nil" under both headings) has one home per occurrence
        senses = sorted(e for ln, e in expected if ln == line)
        assert homes == senses, f"{line!r}: homes {homes}, expected {senses}"


def test_key_inclusion_and_exclusion_headings_set_the_sense() -> None:
    text = "Key Inclusion Criteria:\n\n* Adult\n\nKey Exclusion Criteria:\n\n* Pregnant women"
    assert [(c.text, c.exclude) for c in parse_criteria(text)] == [("Adult", False),
                                                                  ("Pregnant women", True)]


def test_numbered_items_nest_by_indentation() -> None:
    text = ("Inclusion Criteria:\n\n1. Adequate organ function:\n   * Hemoglobin ≥ 9 g/dL\n"
            "   * Platelets ≥ 100 × 10^9/L\n2. ECOG 0-1")
    roots = criteria_for(text)
    assert [c.text for c in roots] == ["Adequate organ function:", "ECOG 0-1"]
    assert [c.text for c in roots[0].children] == ["Hemoglobin ≥ 9 g/dL",
                                                   "Platelets ≥ 100 × 10^9/L"]


def test_nested_exclusion_items_are_any_of_without_a_second_exclude() -> None:
    text = "Exclusion Criteria:\n\n* Any of:\n  * Pregnancy\n  * ALT > 5 × ULN"
    [c] = criteria_for(text)
    ch = characteristic(c)
    assert ch["exclude"] is True
    members = ch["definitionByCombination"]["characteristic"]
    assert ch["definitionByCombination"]["code"] == "any-of"
    assert [m["description"] for m in members] == ["Pregnancy", "ALT > 5 × ULN"]
    assert all("exclude" not in m for m in members)


def test_escaped_markdown_is_unescaped_once() -> None:
    [c] = parse_criteria("Exclusion Criteria:\n\n* FEV1/FVC\\<0.7 and oxygen\\>15h/d")
    assert c.text == "FEV1/FVC<0.7 and oxygen>15h/d"
    assert unescape("\\\\>") == "\\>"


def test_cjk_headings_and_full_width_text_are_kept_intact() -> None:
    text = "入选标准：\n1、年龄≥18岁；\n排除标准：\n1、妊娠或哺乳期妇女；"
    roots = parse_criteria(text)
    assert [(c.text, c.exclude) for c in roots] == [("年龄≥18岁；", False),
                                                    ("妊娠或哺乳期妇女；", True)]


def test_cyrillic_text_is_kept_verbatim() -> None:
    text = "Критерии включения:\n- Возраст от 18 до 65 лет\nКритерии исключения:\n- Беременность"
    assert [(c.text, c.exclude) for c in parse_criteria(text)] == [
        ("Возраст от 18 до 65 лет", False), ("Беременность", True)]
