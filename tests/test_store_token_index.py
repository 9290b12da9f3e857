"""The token code index holds coded rows only (schema 6, ``dialect.TOKEN_CODE_PARTIAL``): the
word rows of :text matching have no code and are read through the text index. What a search
finds is unchanged on both backends — by code, by system and code, by system alone (a Coding
that has a system and no code included) and by text — and a store written by schema 5 (a
full code index) is migrated to the partial one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from fhirtrial.server.search import parse
from fhirtrial.server.stores import open_store

SYS = "http://example.org/classifier"
PARTIAL = re.compile(r"WHERE \(?code IS NOT NULL\)?\s*$")
STUDIES = [
    {"resourceType": "ResearchStudy", "id": "coded", "status": "active",
     "identifier": [{"system": "http://clinicaltrials.gov", "value": "NCT00000001"}],
     "classifier": [{"coding": [{"system": SYS, "code": "a", "display": "Alpha trial"}]}]},
    {"resourceType": "ResearchStudy", "id": "codeless", "status": "active",
     "classifier": [{"coding": [{"system": SYS, "display": "Beta trial"}]}]},
    {"resourceType": "ResearchStudy", "id": "other", "status": "completed",
     "identifier": [{"system": "http://example.org/local", "value": "L-1"}],
     "classifier": [{"text": "Gamma alpha trial"}]},
]


def _ids(store: Any, *params: tuple[str, str]) -> list[str]:
    q = parse("R5", "ResearchStudy", list(params), strict=True)
    rows, _ = store.search("R5", "ResearchStudy", q.criteria, count=10)
    return sorted(r.id for r in rows)


def _check_searches(store: Any) -> None:
    assert _ids(store, ("status", "active")) == ["coded", "codeless"]
    assert _ids(store, ("classifier", f"{SYS}|a")) == ["coded"]
    assert _ids(store, ("classifier", "a")) == ["coded"]
    # by system alone: the coded row and the Coding without a code
    assert _ids(store, ("classifier", f"{SYS}|")) == ["coded", "codeless"]
    assert _ids(store, ("identifier", "http://clinicaltrials.gov|")) == ["coded"]
    assert _ids(store, ("identifier", "http://example.org/local|L-1")) == ["other"]
    assert _ids(store, ("identifier", "|L-1")) == []  # the row has a system
    # :text reads the word rows, which the code index no longer holds
    assert _ids(store, ("classifier:text", "alpha")) == ["coded", "other"]
    assert _ids(store, ("classifier:text", "trial")) == ["coded", "codeless", "other"]


def _code_index(store: Any) -> str:
    with store._reading() as conn:
        if store.dialect.name == "sqlite":
            return conn.execute("SELECT sql FROM sqlite_master WHERE name='idx_token_code_c'"
                                ).fetchone()[0]
        return conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = "
                            "'idx_token_code_c'").fetchone()[0]


@pytest.fixture
def store(store_db) -> Iterator[Any]:
    """A fresh store (each backend) holding :data:`STUDIES`."""
    st = open_store(store_db)
    try:
        for s in STUDIES:
            with st.transaction() as tx:
                tx.update("R5", s)
        yield st
    finally:
        st.close()


def test_searches_find_the_same_with_the_partial_code_index(store):
    assert PARTIAL.search(_code_index(store))
    _check_searches(store)


def test_a_schema_5_store_gets_the_partial_code_index(store):
    with store.transaction() as tx:  # what schema 5 had: one full code index
        tx.conn.execute("DROP INDEX idx_token_code_c")
        tx.conn.execute("DROP INDEX idx_token_system_c")
        tx.conn.execute("CREATE INDEX idx_token_code_c ON idx_token (sp, code, system, rid)")
        if store.dialect.name == "sqlite":
            tx.conn.execute("PRAGMA user_version=5")
        else:
            tx.conn.execute("DELETE FROM fhirtrial_schema WHERE version = 6")
    assert not PARTIAL.search(_code_index(store))
    _check_searches(store)
    # (SQLite: schema 7, the full-text index, follows; from a schema 6 store it rebuilds
    # what it found)
    assert store.upgrade() == ([6, 7] if store.dialect.name == "sqlite" else [6])
    assert PARTIAL.search(_code_index(store))
    _check_searches(store)
