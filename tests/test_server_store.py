"""SQLiteStore search internals that the REST tests cannot see: totals stay exact when another
connection (another gunicorn worker) writes, pages carry the stored bytes in order, and the
broad search walks the live-resource index in id order instead of sorting table rows."""

from __future__ import annotations

import sqlite3

import pytest

from fhirtrial.server.search import parse
from fhirtrial.server.sqlsearch import compile_search
from fhirtrial.server.store import SQLiteStore


def _loc(i: int, city: str = "Lyon") -> dict:
    return {"resourceType": "Location", "id": f"loc-{i:02d}", "name": f"Site {i}",
            "address": {"city": city}}


def _put(store: SQLiteStore, res: dict) -> None:
    with store.transaction() as tx:
        tx.update("R5", res)


def _total(store: SQLiteStore, query: list[tuple[str, str]]) -> int | None:
    q = parse("R5", "Location", query, strict=True)
    return store.search("R5", "Location", q.criteria, count=5)[1]


@pytest.fixture
def two_workers(tmp_path):
    """Two stores on one file: what two gunicorn workers are."""
    a, b = SQLiteStore(tmp_path / "s.sqlite"), SQLiteStore(tmp_path / "s.sqlite")
    for i in range(3):
        _put(a, _loc(i))
    yield a, b
    a.close()
    b.close()


def test_total_is_exact_after_another_connection_writes_and_deletes(two_workers):
    a, b = two_workers
    city = [("address-city", "lyon")]
    assert _total(a, []) == 3
    assert _total(a, city) == 3
    _put(b, _loc(7))  # the other worker writes
    assert _total(a, []) == 4
    assert _total(a, city) == 4
    with b.transaction() as tx:
        tx.delete("R5", "Location", "loc-00")
    assert _total(a, []) == 3
    _put(b, _loc(1, city="Paris"))  # an update that moves a resource out of the match
    assert _total(a, city) == 2


def test_total_is_exact_after_the_same_connection_writes(two_workers):
    a, _ = two_workers
    assert _total(a, []) == 3
    _put(a, _loc(9))
    assert _total(a, []) == 4
    with a.transaction() as tx:
        tx.delete("R5", "Location", "loc-09")
    assert _total(a, []) == 3


def test_pages_carry_the_stored_bytes_in_id_order(two_workers):
    a, _ = two_workers
    for i in range(3, 12):
        _put(a, _loc(i))
    ids = [f"loc-{i:02d}" for i in range(12)]
    got = []
    for offset in range(0, 12, 5):
        rows, total = a.search("R5", "Location", [], offset=offset, count=5)
        assert total == 12
        got += rows
        for s in rows:
            assert s.body == a.read("R5", "Location", s.id).body
    assert [s.id for s in got] == ids
    q = parse("R5", "Location", [("_sort", "-_id")], strict=True)
    rows, _ = a.search("R5", "Location", [], sort=q.sort, count=3)
    assert [s.id for s in rows] == ids[::-1][:3]


def test_broad_count_and_page_walk_the_live_index_without_sorting(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    _put(store, _loc(1))
    where, args = compile_search("R5", "Location", [])
    conn = sqlite3.connect(tmp_path / "s.sqlite")
    for sql in (f"SELECT count(*) FROM current c WHERE {where}",
                f"SELECT c.rid FROM current c WHERE {where} ORDER BY c.id LIMIT 20"):
        plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
        assert "INDEX current_live (fv=? AND type=?)" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # the index is already in id order
