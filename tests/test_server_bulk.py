"""Bulk load into the SQLite store: many studies per transaction, indexes built once.

``SQLiteStore.bulk()`` is what ``fhirtrial load`` writes through. A store loaded that way must
be the store a study-by-study load gives (same rows, same search answers), a study that fails
must leave no trace while its neighbours are kept, and a load killed half-way must leave a
store that repairs its indexes when next opened.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC
from pathlib import Path

import pytest

from fhirtrial.errors import FhirtrialError
from fhirtrial.server.bundles import process
from fhirtrial.server.searchparams import REGISTRY
from fhirtrial.server.store import (
    DEFERRED_INDEXES,
    SCHEMA_VERSION,
    SEARCHED_DURING_LOAD,
    SQLiteStore,
)


def _bundle(i: int, *, broken: bool = False, late: bool = False, plain: bool = False,
            revised: bool = False) -> dict:
    """Study ``i`` as a transaction; ``broken``: refused before anything is written (a
    ``urn:uuid`` naming no entry); ``late``: refused after its Location and Organization
    are written (the study's If-Match names a version that does not exist); ``plain``: the
    study PUT by id, not by identifier (a transaction that searches nothing); ``revised``:
    another title. Each study's sponsor (one of three, shared) lists the study among its
    aliases, so every study updates it: updates within a batch (an identical one would
    be no new version)."""
    nct = f"NCT{70000000 + i}"
    site = {"resourceType": "Location", "id": f"{nct}-site", "name": f"Site of {nct}",
            "position": {"latitude": 40.0 + i / 100, "longitude": -75.0}}
    org = {"resourceType": "Organization", "id": f"org-{i % 3}", "name": f"Sponsor {i % 3}",
           "alias": [f"Sponsor of study {i}"]}
    study = {"resourceType": "ResearchStudy", "id": nct, "status": "active",
             "identifier": [{"system": "http://clinicaltrials.gov", "value": nct}],
             "title": f"Study {i} of Ünïcode diabetes" + (" (revised)" if revised else ""),
             "period": {"start": f"20{10 + i % 10}-01-01"},
             "site": [{"reference": f"urn:uuid:site-{i}"}],
             "associatedParty": [{"party": {"reference": f"urn:uuid:org-{i}"}}]}
    if broken:
        study["site"] = [{"reference": "urn:uuid:nowhere"}]
    entries = [
        {"fullUrl": f"urn:uuid:site-{i}", "resource": site,
         "request": {"method": "PUT", "url": f"Location/{site['id']}"}},
        {"fullUrl": f"urn:uuid:org-{i}", "resource": org,
         "request": {"method": "PUT", "url": f"Organization/{org['id']}"}},
        {"fullUrl": f"urn:uuid:study-{i}", "resource": study,
         "request": {"method": "PUT",
                     "url": f"ResearchStudy?identifier=http://clinicaltrials.gov|{nct}"}},
    ]
    if late:
        entries[2]["request"]["ifMatch"] = 'W/"99"'
    if plain:
        entries[2]["request"]["url"] = f"ResearchStudy/{nct}"
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _process(store, bundle) -> None:  # type: ignore[no-untyped-def]
    process(store, "R5", bundle, base="", validate=False, supported=REGISTRY["R5"].__contains__,
            default_count=20, representation=False)


def _fixed_clock():  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _dump(db: Path) -> dict[str, list]:
    with sqlite3.connect(db) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
                for t in ("current", "versions", "idx_token", "idx_string", "idx_date",
                          "idx_ref", "idx_number", "idx_geo")}


SEARCHES = [
    ("ResearchStudy", [("title", "study")]),
    ("ResearchStudy", [("date", "lt2015-01-01")]),  # starts 2010-2014: i % 10 < 5
    ("ResearchStudy", [("site", "Location/NCT70000003-site")]),
    ("ResearchStudy", [("identifier", "http://clinicaltrials.gov|NCT70000007")]),
    ("Location", [("near", "40.05|-75.0|10|km")]),
    ("Organization", [("name", "sponsor 1")]),
]


def _answers(store: SQLiteStore) -> list[list[str]]:
    from fhirtrial.server import search as search_mod

    out = []
    for rtype, items in SEARCHES:
        q = search_mod.parse("R5", rtype, [*items, ("_count", "100")], strict=True)
        rows, _ = store.search("R5", rtype, q.criteria, sort=q.sort, offset=0, count=100,
                               total=False)
        out.append(sorted(r.id for r in rows))
    return out


def test_bulk_load_gives_the_store_a_study_by_study_load_gives(tmp_path: Path):
    one, bulk = tmp_path / "one.sqlite", tmp_path / "bulk.sqlite"
    s1 = SQLiteStore(one, clock=_fixed_clock)
    for i in range(40):
        _process(s1, _bundle(i))
    s2 = SQLiteStore(bulk, clock=_fixed_clock)
    with s2.bulk(batch=7) as writer:
        for i in range(40):
            _process(writer, _bundle(i))
    assert _dump(bulk) == _dump(one)
    answers = _answers(s2)
    assert answers == _answers(s1)
    # site i lies i/100 degrees north of 40.0: within 10 km of 40.05 for i = 0..13
    assert [len(a) for a in answers] == [40, 20, 1, 1, 14, 1]
    with sqlite3.connect(bulk) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master "
                                            "WHERE type='index'")}
        assert set(DEFERRED_INDEXES) <= names
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_an_update_that_changes_nothing_is_no_new_version(tmp_path: Path):
    """One sponsor named by many studies is PUT by each: it stays one version with one set
    of index rows, in a bulk load and out of one, and so does a study loaded again as it
    was; a study that did change gets its new version."""
    db = tmp_path / "s.sqlite"
    store = SQLiteStore(db, clock=_fixed_clock)

    def same_sponsor(i: int, revised: bool = False) -> dict:
        b = _bundle(i, revised=revised)
        del b["entry"][1]["resource"]["alias"]
        return b

    with store.bulk(batch=2) as writer:
        for i in (0, 3, 6, 9):  # org-0 each time
            _process(writer, same_sponsor(i))
    before = _dump(db)
    _process(store, same_sponsor(3))
    assert _dump(db) == before
    vids = [(r[2], r[3]) for r in before["versions"]]
    assert sorted(v for rid, v in vids if rid == "org-0") == [1]
    _process(store, same_sponsor(3, revised=True))
    after = _dump(db)
    assert sorted(r[3] for r in after["versions"] if r[2] == "NCT70000003") == [1, 2]
    assert [r for r in after["versions"] if r[2] != "NCT70000003"] == \
        [r for r in before["versions"] if r[2] != "NCT70000003"]


def test_a_failing_study_rolls_back_alone(tmp_path: Path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    failures = []
    with store.bulk(batch=4) as writer:
        for i in range(10):
            try:
                _process(writer, _bundle(i, broken=i == 5))
            except FhirtrialError as e:
                failures.append((i, e.message))
    assert len(failures) == 1
    assert failures[0][0] == 5
    assert "urn:uuid:nowhere" in failures[0][1]
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM current WHERE type='ResearchStudy' ORDER BY id")]
        locs = conn.execute("SELECT count(*) FROM current WHERE type='Location'").fetchone()[0]
    assert ids == [f"NCT{70000000 + i}" for i in range(10) if i != 5]
    assert locs == 9  # the failed study's Location (written before its error) is gone too


#: studies that fail ("broken": refused before a write; "late": after its Location and
#: Organization are written) and those PUT by id (the others search by identifier)
FAILS = {3: "broken", 5: "late", 6: "late", 8: "late", 11: "broken", 12: "late"}
PLAIN = {0, 1, 2, 4, 7, 9, 10, 13, 14}


def load_with_failures(store) -> list[int]:  # type: ignore[no-untyped-def]
    """16 studies with the failures of :data:`FAILS`, and a delete of what study 13 wrote
    (its rows still held back by a bulk writer): the studies that failed."""
    failed = []
    for i in range(16):
        kind = FAILS.get(i)
        try:
            _process(store, _bundle(i, broken=kind == "broken", late=kind == "late",
                                    plain=i in PLAIN))
        except FhirtrialError:
            failed.append(i)
        if i == 14:
            _process(store, {"resourceType": "Bundle", "type": "transaction", "entry": [
                {"request": {"method": "DELETE", "url": "Location/NCT70000013-site"}}]})
    return failed


@pytest.mark.parametrize("batch", [4, 6, 50])
def test_failing_studies_leave_the_held_back_index_rows_as_a_study_by_study_load(
        tmp_path: Path, batch: int):
    """The bulk writer holds index rows back until its batch commits or something reads
    them (a conditional update's search writes them, the earlier studies' included). A
    study that fails after that, or after updating a resource whose rows are still held back
    (the shared Organizations), must leave every other study's rows exactly as a
    study-by-study load does."""
    one, bulk = tmp_path / "one.sqlite", tmp_path / "bulk.sqlite"
    s1 = SQLiteStore(one, clock=_fixed_clock)
    assert load_with_failures(s1) == sorted(FAILS)
    s2 = SQLiteStore(bulk, clock=_fixed_clock)
    with s2.bulk(batch=batch) as writer:
        assert load_with_failures(writer) == sorted(FAILS)
    assert _dump(bulk) == _dump(one)
    assert _answers(s2) == _answers(s1)


def test_bulk_load_into_a_loaded_store_keeps_its_indexes(tmp_path: Path):
    """Only an empty store drops indexes: rebuilding them over a big store for a few
    studies (a sync) would cost more than it saves."""
    store = SQLiteStore(tmp_path / "s.sqlite")
    _process(store, _bundle(0))
    dropped = []
    with store.bulk() as writer:
        assert not writer.deferred
        with sqlite3.connect(tmp_path / "s.sqlite") as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            dropped = [n for n in DEFERRED_INDEXES if n not in names]
        _process(writer, _bundle(1))
    assert dropped == []
    assert len(_answers(store)[0]) == 2


def test_a_search_through_the_bulk_writer_of_an_empty_store_needs_no_dropped_index(
        tmp_path: Path):
    """Into an empty store the live-resource index is dropped until the end; a search through
    the writer (a conditional write's, or any other) walking the live rows in id order must
    not name it (it raised "no such index: current_live")."""
    from fhirtrial.server.search import parse

    store = SQLiteStore(tmp_path / "s.sqlite")
    city = parse("R5", "Location", [("address-city", "lyon")], strict=True).criteria
    with store.bulk() as writer:
        assert writer.deferred
        with writer.transaction() as tx:
            tx.update("R5", {"resourceType": "Location", "id": "l1",
                             "address": {"city": "Lyon"}})
        # one live Location, one match: the page is walked in id order
        assert [r.id for r in writer.search("R5", "Location", city, count=5)[0]] == ["l1"]
        assert [r.id for r in writer.search("R5", "Location", [], count=5)[0]] == ["l1"]
        assert [r.id for r in writer.search("R5", "Location", [], count=5,
                                            total=False)[0]] == ["l1"]
    assert [r.id for r in store.search("R5", "Location", city, count=5)[0]] == ["l1"]
    assert store.dialect.live_hint in store._page_query(
        "R5", "Location", city, (), "", [], 1, 1, 0, 5)[0]  # the index is back, and named


def _index_names(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}


def test_the_token_indexes_a_load_searches_are_built_at_its_first_search(tmp_path: Path):
    """Into an empty store the token code and system indexes wait, with the other search
    indexes, for the end of the load: a load of PUTs by id never searches, and keeping them
    cost every token row a random B-tree insert. A conditional write (PUT by identifier)
    searches them: they are built then, and kept from there on."""
    plain = SQLiteStore(tmp_path / "plain.sqlite")
    with plain.bulk(batch=2) as writer:
        for i in range(5):
            _process(writer, _bundle(i, plain=True))
        assert not _index_names(writer.conn) & set(SEARCHED_DURING_LOAD)
    with sqlite3.connect(tmp_path / "plain.sqlite") as conn:
        assert set(SEARCHED_DURING_LOAD) <= _index_names(conn)
    by_id = SQLiteStore(tmp_path / "by-identifier.sqlite", clock=_fixed_clock)
    with by_id.bulk(batch=2) as writer:
        _process(writer, _bundle(0))
        assert set(SEARCHED_DURING_LOAD) <= _index_names(writer.conn)
        plan = " ".join(r[-1] for r in writer.conn.execute(
            "EXPLAIN QUERY PLAN SELECT rid FROM idx_token WHERE sp=? AND code=? AND system=?",
            ("ResearchStudy.identifier", "NCT70000000", "http://clinicaltrials.gov")))
        assert "idx_token_code_c" in plan
        # the conditional write finds study 0 again: its second version, not a second study
        _process(writer, _bundle(0, revised=True))
    with sqlite3.connect(tmp_path / "by-identifier.sqlite") as conn:
        assert conn.execute("SELECT id, vid FROM current WHERE type='ResearchStudy'"
                            ).fetchall() == [("NCT70000000", 2)]
    # and the store is the one a study-by-study load gives
    one = SQLiteStore(tmp_path / "one.sqlite", clock=_fixed_clock)
    _process(one, _bundle(0))
    _process(one, _bundle(0, revised=True))
    assert _dump(tmp_path / "by-identifier.sqlite") == _dump(tmp_path / "one.sqlite")


def killed_bulk_load(open_store: str) -> None:
    """In another process: 12 studies through ``open_store``'s bulk writer, 5 per batch, then
    the process dies (``os._exit``) with studies 10 and 11 in its open batch."""
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_server_bulk import _bundle, _process
        from fhirtrial.server.store import SQLiteStore
        from fhirtrial.server.pgstore import PostgresStore
        store = {open_store}
        with store.bulk(batch=5) as writer:
            for i in range(12):
                _process(writer, _bundle(i))
            os._exit(9)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120,
                       check=False)
    assert r.returncode == 9, r.stderr.decode()[-2000:]


def test_a_killed_bulk_load_keeps_committed_batches_and_repairs_indexes(tmp_path: Path):
    db = tmp_path / "killed.sqlite"
    killed_bulk_load(f"SQLiteStore({str(db)!r})")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        # (the token indexes its conditional writes searched were built at the first one)
        assert not (set(DEFERRED_INDEXES) - set(SEARCHED_DURING_LOAD)) & names
        assert set(SEARCHED_DURING_LOAD) <= names
    store = SQLiteStore(db)  # opening repairs: the migration builds the missing indexes
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        tokens = conn.execute("SELECT count(*) FROM idx_token").fetchone()[0]
        studies = conn.execute("SELECT count(*) FROM current "
                               "WHERE type='ResearchStudy'").fetchone()[0]
    assert set(DEFERRED_INDEXES) <= names
    assert studies == 10  # two whole batches of five; the open one is lost whole
    # the migration's word-row step adds nothing the killed load had already written: the
    # token rows are those of the same ten studies loaded one by one
    ref = SQLiteStore(tmp_path / "ref.sqlite")
    for i in range(10):
        _process(ref, _bundle(i))
    with sqlite3.connect(tmp_path / "ref.sqlite") as conn:
        assert tokens == conn.execute("SELECT count(*) FROM idx_token").fetchone()[0]
    assert len(_answers(store)[0]) == 10


@pytest.mark.parametrize("batch", [1, 3])
def test_batch_size_does_not_change_the_result(tmp_path: Path, batch: int):
    store = SQLiteStore(tmp_path / f"b{batch}.sqlite", clock=_fixed_clock)
    with store.bulk(batch=batch) as writer:
        for i in range(6):
            _process(writer, _bundle(i))
    assert [len(a) for a in _answers(store)] == [6, 5, 1, 0, 6, 1]


def test_the_word_row_migration_step_adds_only_missing_rows(tmp_path: Path):
    # a killed bulk load is migrated from version 1 with its word rows already written:
    # running the step again must not double them
    from fhirtrial.server.store import _add_word_rows

    store = SQLiteStore(tmp_path / "w.sqlite")
    _process(store, {"resourceType": "Bundle", "type": "transaction", "entry": [{
        "fullUrl": "urn:uuid:s", "request": {"method": "PUT", "url": "ResearchStudy/w1"},
        "resource": {"resourceType": "ResearchStudy", "id": "w1", "status": "active",
                     "condition": [{"text": "Idiopathic Pulmonary Fibrosis"}]}}]})
    count = "SELECT count(*) FROM idx_token"
    words = "SELECT count(*) FROM idx_token WHERE text = 'pulmonary fibrosis'"
    with sqlite3.connect(tmp_path / "w.sqlite") as conn:
        # the SQLite store writes no word rows since schema 7, and the step adds none to a
        # store written so (its full-text index holds its texts); to an older store, once
        assert conn.execute(words).fetchone()[0] == 0
        _add_word_rows(conn)
        assert conn.execute(words).fetchone()[0] == 0
        conn.execute("DROP TABLE idx_text")
        _add_word_rows(conn)
        before = conn.execute(count).fetchone()[0]
        assert conn.execute(words).fetchone()[0] == 1
        _add_word_rows(conn)
        assert conn.execute(count).fetchone()[0] == before
        assert conn.execute(words).fetchone()[0] == 1
