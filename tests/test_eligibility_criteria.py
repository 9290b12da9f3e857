"""The splitter: every criterion line of every shared record and every LCT document lands,
verbatim after unescaping, in exactly one characteristic, on the side (include/exclude) the
heading above it gives — the sides labelled by hand, not read by the code under test."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    FIXTURES,
    ROOT,
    SHARED,
    SHARED_V2,
    SHARED_V2_PARTIAL,
    SHARED_XML,
    needs_shared,
    shared_files,
)
from fhirtrial.eligibility import criteria_for, parse_criteria, unescape
from fhirtrial.eligibility.criteria import EITHER_OR, PARTICIPANT_GROUP, heading
from fhirtrial.eligibility.fhir import characteristic, nested_criteria

sys.path.insert(0, str(ROOT / "scripts"))

from eligibility_sections import expected_from_labels as _sides_from_starts

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
LCT_DOCS = SHARED / "eligibility-lct" / "docs.jsonl"
# where each side starts in every shared record, labelled by hand; LCT's own per-line sides,
# corrected by hand where they are wrong (both files say how)
LABELS = json.loads((FIXTURES / "eligibility" / "sections.json").read_text(encoding="utf-8"))
LCT_CORRECTIONS = json.loads((FIXTURES / "eligibility" / "sections-lct-oracle-errors.json")
                             .read_text(encoding="utf-8"))["corrections"]
_ESC = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>=^~|&%$@\"'/:;,?])")
# a heading names a side: a line taken for a heading without one would be a criterion lost
_SIDE_WORD = re.compile(r"inclu|exclu|excusion|eligib|入选|纳入|入组|选择|選択|排除|除外|"
                        r"включ|исключ", re.IGNORECASE)


def _lct_docs() -> list[dict[str, Any]]:
    if not LCT_DOCS.is_file():
        return []
    return [json.loads(line) for line in LCT_DOCS.read_text(encoding="utf-8").splitlines()]


LCT = _lct_docs()


def _lines_with_sense(text: str, sides: list[bool | None]) -> list[tuple[str, bool | None]]:
    """(criterion line, exclude) for every line of the text, the side from ``sides`` (None:
    neither); a heading line gives the criterion written after it, if any."""
    out = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    assert len(lines) == len(sides)
    for raw, side in zip(lines, sides, strict=True):
        line = _ESC.sub(r"\1", raw).strip()
        if not line:
            continue
        head = heading(line)
        if head is not None:
            assert _SIDE_WORD.search(head.label), line
            if head.rest is None:
                continue
            line = head.rest
        out.append((line, side))
    return out


def _where(chars: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """(description line, top-level exclude) of every criterion characteristic, nested ones
    included, fact members (linkId fact-…) left out."""
    out: list[tuple[str, bool]] = []

    def walk(c: dict[str, Any], exclude: bool) -> None:
        # (a holder the reader adds for participant groups, linkId "participant-group", or
        # for criteria joined by "or", linkId "either-or", is no line of the text: only what
        # it holds is)
        if c.get("linkId") not in (PARTICIPANT_GROUP, EITHER_OR):
            out.extend((d, exclude) for d in c["description"].split("\n"))
        for m in nested_criteria(c):
            walk(m, exclude)

    for c in chars:
        walk(c, c["exclude"])
    return out


_MARKER = re.compile(r"\s*(?:[*\-+•·▪●○◦]|\(?\d{1,3}[.)、．）]|\(?[a-zA-Z][.)]|"
                     r"[ivxIVX]{1,4}[.)])\s*")


def _matches(line: str, desc: str) -> bool:
    # the description drops the list marker ("* ", "1. ", "a) ", "III. ") and nothing else
    return line == desc or (line.endswith(desc)
                            and bool(_MARKER.fullmatch(line[: len(line) - len(desc)])))


def _assert_each_line_once_on_its_side(text: str, sides: list[bool | None]) -> None:
    """The characteristics' description lines, in document order, are the text's criterion
    lines one for one (none lost, none twice), each on its labelled side."""
    where = _where([characteristic(c) for c in criteria_for(text)])
    expected = _lines_with_sense(text, sides)
    for k, (line, side) in enumerate(expected):
        assert k < len(where), f"{line!r} is in no characteristic"
        desc, exclude = where[k]
        assert _matches(line, desc), f"{line!r} is not where {desc!r} is"
        assert side is None or exclude == side, (
            f"{line!r} is on the {'exclusion' if exclude else 'inclusion'} side")
    assert len(where) == len(expected), f"no line for {where[len(expected)][0]!r}"


@needs_shared
@pytest.mark.parametrize("path", RECORDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_line_in_exactly_one_characteristic_with_its_sense(path: Path) -> None:
    [rec] = list(read_inputs([str(path)]))
    assert rec.study is not None
    text = rec.study.eligibility.criteria
    n = len(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    starts = LABELS["records"][f"{path.parent.name}/{path.name}"]
    _assert_each_line_once_on_its_side(text, _sides_from_starts(n, starts))


def test_every_shared_record_with_criteria_is_labelled() -> None:
    # a record added to ../shared without labels would go unchecked
    assert sorted(f"{p.parent.name}/{p.name}" for p in RECORDS) == (
        sorted(LABELS["records"]) if RECORDS else [])


@needs_shared
@pytest.mark.parametrize("doc", LCT, ids=lambda d: d["doc"])
def test_every_lct_line_in_exactly_one_characteristic_on_its_side(doc: dict[str, Any]) -> None:
    sides: list[bool | None] = [s == "exclusion" for s in doc["sections"]]
    for c in LCT_CORRECTIONS.get(doc["doc"], []):
        for i in range(c["lines"][0], c["lines"][1] + 1):
            sides[i] = None if c["side"] is None else c["side"] == "exclusion"
    _assert_each_line_once_on_its_side(doc["text"], sides)


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


def test_a_bullet_glued_to_its_word_is_a_bullet() -> None:
    # "-Age ≥ 18", "•Pregnancy" (NCT01359631, NCT02513394 write them so): the mark is the
    # list's, not the criterion's words; a number's minus sign stays ("-2 to +1")
    text = ("INCLUSION:\n-Age ≥ 18 years\n•Signed consent\n-2 to +1 on the RASS\n"
            "EXCLUSION:\n-Pregnancy")
    got = [(c.exclude, c.text) for root in parse_criteria(text) for c in root.walk()]
    assert got == [(False, "Age ≥ 18 years"), (False, "Signed consent"),
                   (False, "-2 to +1 on the RASS"), (True, "Pregnancy")]


# --- what every fact's window may say ---------------------------------------------------------

#: the comparators of a window (a fact's ``window``, a time-window fact): what the matcher, the
#: narrative and ``timeFromEvent`` read. A "<" was read by the matcher as "at least" (a stroke
#: two months before "< 6 months prior to screening" was outside it)
WINDOW_COMPARATORS = {"<=", ">=", "ever", "now"}


def _window_comparators(text: str) -> set[str]:
    found: set[str] = set()

    def facts(f: Any) -> None:
        if f.kind in ("all-of", "any-of"):
            for g in f.data["facts"]:
                facts(g)
            return
        for w in (f.data if f.kind == "time-window" else f.data.get("window"),
                  *(a.get("window") for a in f.data.get("alternatives") or ())):
            if w:
                found.add(w["comparator"])

    for root in criteria_for(text):
        for c in root.walk():
            for f in c.facts:
                facts(f)
    return found


def test_every_window_of_the_labelled_lines_is_one_the_matcher_reads() -> None:
    lines = [json.loads(x) for x in (FIXTURES / "eligibility" / "labelled.jsonl")
             .read_text(encoding="utf-8").splitlines() if x]
    text = "Inclusion Criteria:\n" + "\n".join(
        f"* {x['text']}" for x in lines if not x["exclude"]) + "\nExclusion Criteria:\n" + \
        "\n".join(f"* {x['text']}" for x in lines if x["exclude"])
    found = _window_comparators(text)
    assert found  # (the labelled lines hold windows: an empty set would prove nothing)
    assert found <= WINDOW_COMPARATORS, found - WINDOW_COMPARATORS


@needs_shared
def test_every_window_of_the_shared_records_and_lct_is_one_the_matcher_reads() -> None:
    texts = [rec.study.eligibility.criteria for p in RECORDS for rec in read_inputs([str(p)])
             if rec.study is not None] + [d["text"] for d in LCT]
    found = set().union(*(_window_comparators(t) for t in texts))
    assert found <= WINDOW_COMPARATORS, found - WINDOW_COMPARATORS
