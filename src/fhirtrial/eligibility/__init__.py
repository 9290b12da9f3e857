"""Eligibility criteria: the registry's text → criteria with include/exclude sense and, where
the text states it plainly, structured meaning a matching engine can evaluate."""

from __future__ import annotations

from .criteria import Criterion, Fact, parse_criteria, unescape
from .structure import facts_for, structure


def criteria_for(text: str | None) -> list[Criterion]:
    """The criteria of an eligibility text, with structured facts where the text states them.

    This is the one call builders make; the structuring step extends what it returns.
    """
    return structure(parse_criteria(text))


__all__ = ["Criterion", "Fact", "criteria_for", "facts_for", "parse_criteria", "structure",
           "unescape"]
