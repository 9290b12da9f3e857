"""SQLiteStore search internals that the REST tests cannot see: totals stay exact when another
connection (another gunicorn worker) writes, pages carry the stored bytes in order, and the
broad search walks the live-resource index in id order instead of sorting table rows."""

from __future__ import annotations

import sqlite3

import pytest

from fhirtrial.server.search import parse
from fhirtrial.server.sqlsearch import compile_search
from fhirtrial.server.store import SCHEMA_VERSION, SQLiteStore, haversine_km


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


# ---------------------------------------------------------------- large-store query shapes

def _study(i: int, start: str, end: str) -> dict:
    return {"resourceType": "ResearchStudy", "id": f"rs-{i:03d}",
            "status": "completed" if i % 4 == 0 else "active",
            "title": ("Stroke" if i % 3 else "Asthma") + f" trial {i}",
            "period": {"start": start, "end": end}}


@pytest.fixture
def studies(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    yield store, _load_studies(store)
    store.close()


@pytest.fixture
def studies_on_both_stores(store_db):
    """:func:`studies` on SQLite and on PostgreSQL."""
    from fhirtrial.server.stores import open_store

    store = open_store(store_db)
    yield store, _load_studies(store)
    store.close()


def _load_studies(store) -> dict:  # type: ignore[no-untyped-def]
    """60 studies: two in three titled Stroke, one Asthma in three, one in four completed;
    periods by index, one
    inverted (start after end: invalid, but stored and searched as written); two deleted."""
    expected = {}
    for i in range(60):
        start, end = f"{2000 + i % 30}-03-01", f"{2001 + i % 30}-06-30"
        if i == 17:
            start, end = "2025-05-01", "2010-01-31"
        _put(store, _study(i, start, end))
        expected[f"rs-{i:03d}"] = _study(i, start, end)
    with store.transaction() as tx:
        for gone in ("rs-004", "rs-005"):
            tx.delete("R5", "ResearchStudy", gone)
            del expected[gone]
    return expected


def _ge(s: dict, day: str) -> bool:
    """FHIR date ge: the target ends after the searched day, or the day contains it."""
    lo, hi = s["period"]["start"], s["period"]["end"]
    return hi > day or (lo >= day and hi <= day)


ORACLES = [
    ("title=stroke", lambda s, d: s["title"].startswith("Stroke")),
    ("title=asthma", lambda s, d: s["title"].startswith("Asthma")),
    ("title=asthma trial 33", lambda s, d: s["title"] == "Asthma trial 33"),
    ("date=ge2018-01-01", lambda s, d: _ge(s, "2018-01-01")),
    ("date=ge2018-01-01&title=stroke",
     lambda s, d: _ge(s, "2018-01-01") and s["title"].startswith("Stroke")),
    ("status:not=active", lambda s, d: s["status"] != "active"),
    ("date=ne2018-03-01", lambda s, d: not (s["period"]["start"] >= "2018-03-01"
                                            and s["period"]["end"] <= "2018-03-01")),
]


@pytest.mark.parametrize(("query", "oracle"), ORACLES, ids=[q for q, _ in ORACLES])
@pytest.mark.parametrize("total", [True, False], ids=["total", "no-total"])
def test_every_page_matches_the_oracle_whichever_way_the_store_walks(
        studies_on_both_stores, query, oracle, total, monkeypatch):
    """The id-order walk (dense matches), the match-driven plan (sparse ones) and the bounded
    walk used without a count all give the pages the spec's semantics give, in id order, on
    both stores (PostgreSQL: pages after the first answered from the remembered count)."""
    import fhirtrial.server.store as store_mod

    monkeypatch.setattr(store_mod, "_WALK_BUDGET", 10)  # make the bounded walk give up often
    store, expected = studies_on_both_stores
    want = sorted(i for i, s in expected.items() if oracle(s, None))
    q = parse("R5", "ResearchStudy", [tuple(p.split("=", 1)) for p in query.split("&")],
              strict=True)
    got = []
    for offset in range(0, 63, 7):
        rows, n = store.search("R5", "ResearchStudy", q.criteria, offset=offset, count=7,
                               total=total)
        assert n == (len(want) if total else None)
        got += [r.id for r in rows]
    assert got == want


def _traced(store: SQLiteStore, query: str) -> list[str]:
    sqls: list[str] = []
    conn = store._conn()
    conn.set_trace_callback(sqls.append)
    try:
        q = parse("R5", "ResearchStudy", [tuple(query.split("=", 1))], strict=True)
        store.search("R5", "ResearchStudy", q.criteria, count=5)
    finally:
        conn.set_trace_callback(None)
    return [s for s in sqls if "SELECT c.rid" in s]


def test_dense_matches_walk_the_id_index_and_sparse_ones_are_collected(studies):
    store, _ = studies
    dense = _traced(store, "title=stroke")  # 38 of 58
    assert len(dense) == 1
    assert "INDEXED BY current_live" in dense[0]
    assert " IN (" not in dense[0]
    sparse = _traced(store, "title=asthma trial 33")  # 1 of 58
    assert len(sparse) == 1
    assert "INDEXED BY" not in sparse[0]
    assert "c.rid IN (" in sparse[0]


def test_filters_read_covering_indexes_only(studies):
    """No candidate row of an index table, nor an OR over two indexes (which fetches rows),
    is read to decide what matches."""
    store, _ = studies
    q = parse("R5", "ResearchStudy", [("date", "ge2018-01-01"), ("title", "stroke"),
                                      ("status", "active")], strict=True)
    for probe in (False, True):
        where, args = compile_search("R5", "ResearchStudy", q.criteria, probe=probe)
        plan = [r[3] for r in store._conn().execute(
            f"EXPLAIN QUERY PLAN SELECT c.rid FROM current c WHERE {where}", args)]
        searches = [p for p in plan if p.startswith("SEARCH idx_")]
        assert len(searches) >= 3, plan
        assert all("COVERING INDEX" in p for p in searches), plan
        assert not any("MULTI-INDEX OR" in p for p in plan), plan


OLD_INDEXES = {  # schema version 1, as stores written before the covering indexes have them
    "idx_token_code": "idx_token (sp, code, system)", "idx_token_text": "idx_token (sp, text)",
    "idx_token_rid": "idx_token (rid)", "idx_string_norm": "idx_string (sp, norm)",
    "idx_string_exact": "idx_string (sp, exact)", "idx_string_rid": "idx_string (rid)",
    "idx_date_lo": "idx_date (sp, lo)", "idx_date_hi": "idx_date (sp, hi)",
    "idx_date_rid": "idx_date (rid)", "idx_ref_target": "idx_ref (sp, tid, ttype)",
    "idx_ref_rid": "idx_ref (rid)", "idx_number_value": "idx_number (sp, value)",
    "idx_number_rid": "idx_number (rid)", "idx_geo_lat": "idx_geo (lat, lon)",
}


def test_a_store_written_by_the_previous_schema_opens_with_the_new_indexes(tmp_path):
    path = tmp_path / "old.sqlite"
    store = SQLiteStore(path)
    for i in range(6):
        _put(store, _study(i, "2019-01-01", "2021-01-01"))
    store.close()
    conn = sqlite3.connect(path)
    new = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='index' AND name LIKE 'idx_%'")]
    assert len(new) >= len(OLD_INDEXES)
    for name in new:  # turn the file back into what version 1 wrote
        conn.execute(f"DROP INDEX {name}")
    for name, on in OLD_INDEXES.items():
        conn.execute(f"CREATE INDEX {name} ON {on}")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA user_version=0")
    conn.commit()
    conn.close()

    reopened = SQLiteStore(path)
    conn = sqlite3.connect(path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert not names & set(OLD_INDEXES)
    assert set(new) <= names
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    stats = {r[0] for r in conn.execute("SELECT idx FROM sqlite_stat1")}
    filled = {r[0] for r in conn.execute(  # ANALYZE leaves empty tables out
        "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name IN "
        "('idx_token', 'idx_string', 'idx_date')")}
    filled.discard("idx_token_system_c")  # codings with a system and no code: none here
    assert len(filled) == 9
    assert filled <= stats
    conn.close()
    q = parse("R5", "ResearchStudy", [("title", "stroke")], strict=True)
    rows, n = reopened.search("R5", "ResearchStudy", q.criteria, count=10)
    assert n == 4
    assert [r.id for r in rows] == ["rs-001", "rs-002", "rs-004", "rs-005"]
    reopened.close()


def test_near_finds_what_the_distance_says_across_latitude_strips(store_db):
    """A near search seeks the box's 1-degree latitude strips (dialect.GEO_CELL_INDEX: CAST
    truncates in SQLite and rounds in PostgreSQL): sites on strip edges, in the southern
    hemisphere and by the poles are found exactly when the distance says so."""
    import random

    from fhirtrial.server.stores import open_store

    rnd = random.Random(5)
    points = [(42.0, -71.0), (41.9999, -71.0), (42.5, -71.0), (42.4999, -70.9), (-0.5, 10.0),
              (0.5, 10.0), (-33.86, 151.21), (-33.5, 151.0), (89.9, 0.0), (-89.6, 45.0)]
    points += [(round(rnd.uniform(-89.9, 89.9), 4), round(rnd.uniform(-179.9, 179.9), 4))
               for _ in range(150)]
    # clusters around the centres below, so that each search has matches on several strips
    for clat, clon in ((42.2, -71.1), (-33.7, 151.1), (0.0, 10.0)):
        points += [(round(clat + rnd.uniform(-2, 2), 4), round(clon + rnd.uniform(-2, 2), 4))
                   for _ in range(40)]
    # both sides of the antimeridian, and around the north pole at every longitude
    points += [(round(rnd.uniform(-1.5, 1.5), 4), round(rnd.choice((-1, 1)) * rnd.uniform(178.5,
               179.99), 4)) for _ in range(40)]
    points += [(round(rnd.uniform(88.8, 89.99), 4), round(rnd.uniform(-179.9, 179.9), 4))
               for _ in range(30)]
    # off the globe: stored (FHIR does not bound a decimal), indexed nowhere, found by no
    # search; the largest integer overflowed PostgreSQL's strip cast before (a 500)
    off = [(9223372036854775807, -87.6), (90.0001, 0.0), (-1e308, 10.0), (41.8, 180.5),
           (41.8, -1e20)]
    store = open_store(store_db)
    try:
        with store.transaction() as tx:
            for i, (la, lo) in enumerate(points):
                tx.update("R5", {"resourceType": "Location", "id": f"g{i:03d}",
                                 "position": {"latitude": la, "longitude": lo}})
            for i, (la, lo) in enumerate(off):
                tx.update("R5", {"resourceType": "Location", "id": f"off{i}",
                                 "position": {"latitude": la, "longitude": lo}})
        for i in range(len(off)):
            assert store.read("R5", "Location", f"off{i}") is not None
        for clat, clon, km in ((42.2, -71.1, 60), (42.2, -71.1, 250), (-33.7, 151.1, 120),
                               (0.0, 10.0, 70), (0.0, 10.0, 300), (89.5, 0.0, 100),
                               (-89.5, 40.0, 200), (42.0, -71.0, 3000), (0.2, 179.8, 150),
                               (-0.3, -179.6, 90), (89.2, 100.0, 150)):
            q = parse("R5", "Location", [("near", f"{clat}|{clon}|{km}|km"),
                                         ("_count", "1000")], strict=True)
            rows, total = store.search("R5", "Location", q.criteria, count=1000)
            want = sorted(f"g{i:03d}" for i, (la, lo) in enumerate(points)
                          if haversine_km(la, lo, clat, clon) <= km)
            assert sorted(r.id for r in rows) == want, (clat, clon, km)
            assert total == len(want)
            assert want or km < 100  # each of the wider searches has matches to find
    finally:
        store.close()


def test_near_seeks_latitude_strips_of_the_box(studies):
    store, _ = studies
    q = parse("R5", "Location", [("near", "42.36|-71.06|100|km")], strict=True)
    where, args = compile_search("R5", "Location", q.criteria)
    plan = [r[3] for r in store._conn().execute(
        f"EXPLAIN QUERY PLAN SELECT c.rid FROM current c WHERE {where}", args)]
    assert any("idx_geo_cell_c" in p and "lon>? AND lon<?" in p for p in plan), plan


def test_indexing_takes_what_is_a_token_and_skips_what_is_not(tmp_path):
    """The store indexes what it is given (write validation may be off, a copy reindexes old
    bodies): a Coding that is a string or a number, a display or a type text that is not a
    string, a code that is a list — skipped, not a 500 (before: AttributeError, TypeError);
    the rest of the resource is indexed as usual."""
    from fhirtrial.server.searchparams import extract

    store = SQLiteStore(tmp_path / "s.sqlite")
    org = {"resourceType": "Organization", "id": "o1", "name": "Asker",
           "identifier": [{"system": "http://example.org/ids", "value": "A1",
                           "type": {"text": 5}}],
           "type": [{"coding": ['{"code": "x"}', 5, None,
                                {"system": "http://example.org/t", "code": "prov",
                                 "display": 7},
                                {"system": "http://example.org/t", "code": ["a"]}],
                     "text": "Provider"}]}
    rows = extract("R5", org)
    assert ("type", "http://example.org/t", "prov", None) in rows.token
    assert ("identifier", "http://example.org/ids", "A1", None) in rows.token
    with store.transaction() as tx:
        tx.update("R5", org)
    q = parse("R5", "Organization", [("type", "http://example.org/t|prov")], strict=True)
    assert [r.id for r in store.search("R5", "Organization", q.criteria, count=5)[0]] == ["o1"]
    store.close()
