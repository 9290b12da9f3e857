"""Find trials for a patient across the store: candidate retrieval from an in-memory index of
the stored studies, filters (status, phase, distance, age, sex), evaluation of the
survivors' computable criteria, ranking, and the answers built from it (the type-level
``ResearchStudy/$match`` Bundle, the ``find-trials`` table, CDS Hooks cards).

Independent of the storage engine: the index is built and kept current through the
:class:`~fhirtrial.server.store.Store` interface only."""

from __future__ import annotations

from .answer import search_bundle, summary_rows
from .engine import Match, MatchRequest, MatchResult, find_trials
from .index import CandidateIndex, index_for

__all__ = ["CandidateIndex", "Match", "MatchRequest", "MatchResult", "find_trials", "index_for",
           "search_bundle", "summary_rows"]
