"""Each resource body is stored once, on both backends: the current version's in ``current``
only, a superseded version's in ``versions`` (moved there when a newer version replaces it).
What a reader sees is unchanged: every version's exact bytes by vread and history, deletions
as deletions; and a store written before schema 5 (every current body twice) is brought to one
copy by its migration, with every version still readable."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fhirtrial.errors import GoneError
from fhirtrial.server.stores import open_store


def _study(title: str) -> dict[str, Any]:
    return {"resourceType": "ResearchStudy", "id": "s1", "status": "active", "title": title}


def _body_rows(store: Any) -> dict[str, int]:
    """How many bodies each table holds."""
    with store._reading() as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t} WHERE body IS NOT NULL"
                                ).fetchone()[0] for t in ("current", "versions")}


def _history_titles(store: Any) -> list[tuple[int, str, str | None]]:
    entries, total = store.history("R5", "ResearchStudy", "s1", since=None, count=50, offset=0)
    assert total == len(entries)
    return [(e.stored.vid, e.method,
             None if e.stored.body is None else json.loads(e.stored.body)["title"])
            for e in entries]


def _write_five_versions(store: Any) -> None:
    """v1 v2 v3 (PUT), v4 deletion, v5 recreated."""
    for title in ("one", "two", "three"):
        with store.transaction() as tx:
            tx.update("R5", _study(title))
    with store.transaction() as tx:
        tx.delete("R5", "ResearchStudy", "s1")
    with store.transaction() as tx:
        tx.update("R5", _study("five"))


EXPECTED = [(5, "PUT", "five"), (4, "DELETE", None), (3, "PUT", "three"), (2, "PUT", "two"),
            (1, "PUT", "one")]


def _check_every_version(store: Any) -> None:
    assert _history_titles(store) == EXPECTED
    for vid, _, title in EXPECTED:
        if title is None:
            with pytest.raises(GoneError):
                store.vread("R5", "ResearchStudy", "s1", vid)
            continue
        got = store.vread("R5", "ResearchStudy", "s1", vid)
        res = json.loads(got.body)
        assert (res["title"], res["meta"]["versionId"]) == (title, str(vid))
    assert json.loads(store.read("R5", "ResearchStudy", "s1").body)["title"] == "five"


def test_every_version_reads_back_and_each_body_is_stored_once(store_db):
    store = open_store(store_db)
    try:
        _write_five_versions(store)
        _check_every_version(store)
        # one, two, three in versions (superseded), five in current only, the deletion none
        assert _body_rows(store) == {"current": 1, "versions": 3}
        # the current body is the one vread gives for version 5: the same bytes
        assert store.vread("R5", "ResearchStudy", "s1", 5).body == \
            store.read("R5", "ResearchStudy", "s1").body
    finally:
        store.close()


def test_a_deleted_resource_keeps_its_last_body_in_history(store_db):
    store = open_store(store_db)
    try:
        with store.transaction() as tx:
            tx.update("R5", _study("only"))
        with store.transaction() as tx:
            tx.delete("R5", "ResearchStudy", "s1")
        assert _body_rows(store) == {"current": 0, "versions": 1}
        assert [(v, m, t) for v, m, t in _history_titles(store)] == [
            (2, "DELETE", None), (1, "PUT", "only")]
        with pytest.raises(GoneError):
            store.read("R5", "ResearchStudy", "s1")
    finally:
        store.close()


def _as_schema_4(store: Any) -> None:
    """Turn the store back into what schema 4 wrote: every current body in versions too."""
    with store.transaction() as tx:
        tx.conn.execute(
            "UPDATE versions SET body = (SELECT c.body FROM current c WHERE c.fv = versions.fv "
            "AND c.type = versions.type AND c.id = versions.id AND c.vid = versions.vid) "
            "WHERE body IS NULL AND method <> 'DELETE'")
        if store.dialect.name == "sqlite":
            tx.conn.execute("PRAGMA user_version=4")
        else:
            tx.conn.execute("DELETE FROM fhirtrial_schema WHERE version >= 5")


def test_a_schema_4_store_is_migrated_to_one_copy_and_reads_the_same(store_db):
    store = open_store(store_db)
    try:
        _write_five_versions(store)
        _as_schema_4(store)
        assert _body_rows(store) == {"current": 1, "versions": 4}
        _check_every_version(store)  # the old layout reads the same before its migration
        assert store.upgrade() == ([5, 6, 7] if store.dialect.name == "sqlite" else [5, 6])
        assert _body_rows(store) == {"current": 1, "versions": 3}
        _check_every_version(store)
        # and writes after the migration keep one copy
        with store.transaction() as tx:
            tx.update("R5", _study("six"))
        assert _body_rows(store) == {"current": 1, "versions": 4}
        assert json.loads(store.vread("R5", "ResearchStudy", "s1", 5).body)["title"] == "five"
    finally:
        store.close()
