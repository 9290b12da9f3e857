"""Bulk load into the PostgreSQL store (``PostgresStore.bulk()``, what ``fhirtrial load``
writes through): many studies per transaction, a savepoint per study, index rows written
with COPY, and into an empty store the value-leading indexes built once at the end.

As for SQLite (tests/test_server_bulk.py): the store a bulk load gives is the store a
study-by-study load gives, row for row; a failing study leaves no trace and its neighbours
stay; a load killed half-way keeps every committed batch, no partial study, and the indexes
it had deferred are built by the next server to open the store.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import psycopg
import pytest

from conftest import SHARED_V2, needs_shared, shared_files
from fhirtrial.errors import FhirtrialError
from fhirtrial.server.pgstore import PG_DEFERRED, PostgresStore
from fhirtrial.server.searchparams import word_suffixes
from fhirtrial.server.store import DEFERRED_INDEXES, SQLiteStore
from test_server_bulk import (
    FAILS,
    _answers,
    _bundle,
    _fixed_clock,
    _process,
    killed_bulk_load,
    load_with_failures,
)

TABLES = ("current", "versions", "idx_token", "idx_string", "idx_date", "idx_ref",
          "idx_number", "idx_geo")


def _dump(url: str) -> dict[str, list]:
    with psycopg.connect(url) as c:
        return {t: sorted((tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                           for r in c.execute(f"SELECT * FROM {t}")), key=repr)
                for t in TABLES}


def _indexes(url: str) -> set[str]:
    with psycopg.connect(url) as c:
        return {r[0] for r in c.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}


@pytest.fixture
def two_urls(pg_cluster):
    names = [pg_cluster.create_database(), pg_cluster.create_database()]
    try:
        yield [pg_cluster.url(n) for n in names]
    finally:
        for n in names:
            pg_cluster.drop_database(n)


def _load(store, items, writer=None) -> list[int]:  # type: ignore[no-untyped-def]
    failed, seen = [], set()
    for i, broken in items:
        try:
            _process(writer or store, _bundle(i, broken=broken, revised=i in seen))
        except FhirtrialError:
            failed.append(i)
        seen.add(i)
    return failed


# study 5 fails after its conditional search flushed the earlier studies' held-back rows
# inside its savepoint; 3 and org-* are written again, revised (updates within one batch)
ITEMS = [(i, i == 5) for i in range(40)] + [(3, False), (17, False)]


def test_bulk_load_gives_the_store_a_study_by_study_load_gives(two_urls, tmp_path: Path):
    one, bulk = two_urls
    s1 = PostgresStore(one, clock=_fixed_clock)
    assert _load(s1, ITEMS) == [5]
    s2 = PostgresStore(bulk, clock=_fixed_clock)
    with s2.bulk(batch=7) as writer:
        assert writer.deferred
        assert _load(s2, ITEMS, writer) == [5]
    assert _dump(bulk) == _dump(one)
    answers = _answers(s2)
    assert answers == _answers(s1)
    ref = SQLiteStore(tmp_path / "ref.sqlite", clock=_fixed_clock)
    _load(ref, ITEMS)
    assert answers == _answers(ref)
    assert [len(a) for a in answers] == [39, 20, 1, 1, 13, 1]
    assert set(PG_DEFERRED) <= _indexes(bulk)
    versions = [r for r in _dump(bulk)["versions"] if r[2] == "NCT70000003"]
    assert [r[3] for r in versions] == [1, 2]
    s1.close()
    s2.close()


def test_a_failing_study_rolls_back_alone(pg_url):
    store = PostgresStore(pg_url)
    with store.bulk(batch=4) as writer:
        assert _load(store, [(i, i == 5) for i in range(10)], writer) == [5]
    with psycopg.connect(pg_url) as c:
        ids = [r[0] for r in c.execute(
            "SELECT id FROM current WHERE type='ResearchStudy' ORDER BY id")]
        locs = c.execute("SELECT count(*) FROM current WHERE type='Location'").fetchone()[0]
    assert ids == [f"NCT{70000000 + i}" for i in range(10) if i != 5]
    assert locs == 9
    store.close()


@pytest.mark.parametrize("batch", [4, 6, 50])
def test_failing_studies_leave_the_held_back_index_rows_as_a_study_by_study_load(
        two_urls, batch: int):
    """The SQLite writer's held-back-rows case (tests/test_server_bulk.py), on PostgreSQL:
    the bookkeeping is shared (server/heldrows.py), the writes are COPY."""
    one, bulk = two_urls
    s1 = PostgresStore(one, clock=_fixed_clock)
    assert load_with_failures(s1) == sorted(FAILS)
    s2 = PostgresStore(bulk, clock=_fixed_clock)
    with s2.bulk(batch=batch) as writer:
        assert load_with_failures(writer) == sorted(FAILS)
    assert _dump(bulk) == _dump(one)
    assert _answers(s2) == _answers(s1)
    s1.close()
    s2.close()


def test_bulk_load_into_a_loaded_store_keeps_its_indexes(pg_url):
    store = PostgresStore(pg_url)
    _process(store, _bundle(0))
    with store.bulk() as writer:
        assert not writer.deferred
        assert set(PG_DEFERRED) <= _indexes(pg_url)
        _process(writer, _bundle(1))
    assert len(_answers(store)[0]) == 2
    store.close()


def test_a_killed_bulk_load_keeps_committed_batches_and_builds_indexes_on_open(pg_url):
    killed_bulk_load(f"PostgresStore({pg_url!r})")
    assert not set(DEFERRED_INDEXES) & _indexes(pg_url)
    with psycopg.connect(pg_url) as c:
        studies = c.execute("SELECT count(*) FROM current "
                            "WHERE type='ResearchStudy'").fetchone()[0]
        tokens = c.execute("SELECT count(*) FROM idx_token").fetchone()[0]
        orphans = c.execute("SELECT count(*) FROM idx_token t WHERE NOT EXISTS "
                            "(SELECT 1 FROM current c WHERE c.rid = t.rid)").fetchone()[0]
    assert studies == 10  # two whole batches of five; the open one is lost whole
    assert orphans == 0
    store = PostgresStore(pg_url)  # opening builds the deferred indexes
    assert set(PG_DEFERRED) <= _indexes(pg_url)
    assert len(_answers(store)[0]) == 10
    store.close()
    # the index rows are those of the same ten studies loaded one by one
    ref = PostgresStore(pg_url.rpartition("/")[0] + "/" + _fresh_db(pg_url))
    for i in range(10):
        _process(ref, _bundle(i))
    with psycopg.connect(ref.url) as c:
        assert tokens == c.execute("SELECT count(*) FROM idx_token").fetchone()[0]
    ref.close()


def _fresh_db(url: str) -> str:
    name = url.rpartition("/")[2] + "_ref"
    with psycopg.connect(url.rpartition("/")[0] + "/postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return name


def test_a_server_opening_during_a_bulk_load_leaves_the_indexes_to_it(pg_url):
    store = PostgresStore(pg_url)
    with store.bulk(batch=3) as writer:
        _process(writer, _bundle(0))
        other = PostgresStore(pg_url)  # another server starting: not blocked, builds nothing
        assert not set(DEFERRED_INDEXES) & _indexes(pg_url)
        other.close()
        _process(writer, _bundle(1))
    assert set(PG_DEFERRED) <= _indexes(pg_url)
    store.close()


@needs_shared
def test_fhirtrial_load_into_postgresql_gives_what_it_gives_into_sqlite(pg_url, tmp_path: Path):
    """The CLI's load (converted registry records, validation on) through the bulk writer of
    each store: the same resources, versions and index rows (row ids and lastUpdated aside)."""
    from click.testing import CliRunner

    from fhirtrial.cli import main

    records = [str(p) for p in shared_files(SHARED_V2, "*.json")[:8]]
    db = tmp_path / "s.sqlite"
    for target in (str(db), pg_url):
        r = CliRunner().invoke(main, ["load", *records, "--db", target])
        assert r.exit_code == 0, r.output
    assert not set(PG_DEFERRED) - _indexes(pg_url) - {"idx_string_trgm"}

    def shape(rows: dict[str, list]) -> dict[str, list]:
        out = {"current": sorted(r[1:4] for r in rows["current"]),
               "versions": sorted(r[:4] for r in rows["versions"])}
        for t in TABLES[2:]:  # index rows without the row id, nor the lastUpdated dates
            out[t] = sorted((r[1:] for r in rows[t] if "_lastUpdated" not in str(r[1])),
                            key=repr)
        return out

    import sqlite3

    with sqlite3.connect(db) as c:
        lite = {t: c.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES}
    pg, sq = shape(_dump(pg_url)), shape(lite)
    # PostgreSQL's :text reads word rows (each token text from each of its words on), which
    # SQLite has no more (its full-text index): the rows but those are the same
    words = Counter((sp, None, None, w) for sp, _, _, t in sq["idx_token"] if t
                    for w in word_suffixes(t))
    assert Counter(pg.pop("idx_token")) == Counter(sq.pop("idx_token")) + words
    assert pg == sq
