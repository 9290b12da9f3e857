"""The quick tests the reader makes before its costly passes only skip work: whatever a skipped
pass could have found, the quick test lets through. Each is checked against the pattern it
stands in front of, not against today's lines alone."""

from __future__ import annotations

import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhirtrial.eligibility import facts_for
from fhirtrial.eligibility.tables import tables

S = importlib.import_module("fhirtrial.eligibility.structure")


def test_every_pregnancy_word_has_a_stem_the_quick_test_seeks() -> None:
    words = [w["text"] for w in tables().state_words["words"]]
    assert words
    for word in words:
        assert any(stem in word for stem in S._PREG_STEMS), word


@settings(max_examples=300, deadline=None)
@given(st.from_regex(S._SAYS_EXCLUDED))
def test_every_exclusion_statement_has_a_stem_the_quick_test_seeks(text: str) -> None:
    if S._SAYS_EXCLUDED.search(text):  # (from_regex may put the match in other text)
        assert any(stem in text for stem in S._SAYS_EXCLUDED_STEMS), repr(text)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(S._AGE_AFTER, fullmatch=True))
def test_whatever_can_follow_an_age_is_found_by_the_quick_test(after: str) -> None:
    # an age bound is read only where _AGE_AFTER matches after it (or at the criterion's head,
    # or worded): the quick test must find those words wherever _AGE_AFTER does
    assert S._AGE_AFTER_WORDS.search(after) is not None, repr(after)


@pytest.mark.parametrize(("text", "reads"), [
    ("Total bilirubin ≤ ULN", True),
    ("ALT ≤ 2.5xULN", True),
    ("AST ≤ 3 × ULN", True),
    ("Serum creatinine ≥ LLN", True),
    # "ULN" as letters inside a word is no reference limit
    ("Any illness that would interfere, unless approved", False),
])
def test_reference_limits_are_words_not_letters_of_words(text: str, reads: bool) -> None:
    assert S._may_state_number(S.normalise(text)) is reads


@pytest.mark.parametrize("text", [
    "Type 2 diabetes mellitus; hypertension",
    "Hypertension, or type 2 diabetes mellitus",
    "History of type 2 diabetes mellitus",
])
def test_a_condition_at_a_clause_edge_is_still_read(text: str) -> None:
    # the quick test looks for a name in the whole text; the reader in each clause
    coded = [f for f in facts_for(text, True) if f.kind == "condition"]
    assert coded, text
