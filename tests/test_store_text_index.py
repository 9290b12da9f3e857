"""``:text`` on token parameters in the SQLite store: the FTS5 index ``idx_text`` of one
document per resource, its token texts' words tagged with their parameter (schema 7),
instead of word-suffix rows.

Whatever wrote the store (one write at a time, updates and deletes, a bulk load into an empty
store or into a loaded one, a study that fails inside a bulk load, a migration from the
schema with word rows), ``:text`` finds a phrase that starts at any word of a text of the
parameter asked (not another parameter's, not across two texts), the full-text index holds
exactly the words of idx_token's texts (read back term by term through ``fts5vocab``), and
idx_token holds no word rows. A hostile ``:text`` value is a phrase to look up, never FTS5
syntax: 200, not 500.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from fhirtrial.server.bundles import process
from fhirtrial.server.search import parse
from fhirtrial.server.searchparams import REGISTRY, text_document, text_query
from fhirtrial.server.store import (
    INSERT_INDEX,
    SCHEMA_VERSION,
    SQLiteStore,
    drop_text,
    index_rows,
)

STUDIES = {
    "ipf": ("Stem-Cell Therapy for Lung Scarring", ["Idiopathic Pulmonary Fibrosis"]),
    "cf": ("Cell therapy in cystic fibrosis", ["Cystic Fibrosis"]),
    "dm": ("An Excellent Diet", ["Type 2 Diabetes Mellitus"]),
    "ild": ("Interstitial lung disease registry (ILD)", ["Interstitial Lung Disease"]),
    # a concept whose text is a word suffix of another's: its own row, not a word row
    "dup": ("Scarring", ["Pulmonary Fibrosis", "Fibrosis", "Naïve Café Syndrome"]),
}

QUERIES = [
    ("condition:text=fibrosis", ["cf", "dup", "ipf"]),
    ("condition:text=pulmonary fib", ["dup", "ipf"]),
    ("condition:text=pulmonary fibrosis", ["dup", "ipf"]),
    ("condition:text=ibrosis", []),  # not from inside a word
    ("condition:text=idiopathic", ["ipf"]),
    ("condition:text=fibrosis pulmonary", []),  # a phrase, in order
    ("condition:text=lung disease", ["ild"]),
    ("condition:text=lung diseases", []),
    ("condition:text=2 diab", ["dm"]),
    ("condition:text=NAIVE cafe", ["dup"]),  # case and accents folded
    ("condition:text=café syn", ["dup"]),
    ("condition:text-advanced=fibrosis pulmonary", ["dup", "ipf"]),
    ("condition:text-advanced=mellitus type", ["dm"]),
    ("condition:text=fibrosis,lung", ["cf", "dup", "ild", "ipf"]),
    ("condition:text=fibrosis&progress-status-state=recruiting", ["cf", "dup", "ipf"]),
    ("condition:text=fibrosis&_count=1", ["cf"]),  # a page walk's probe
    ("condition:text=fibrosis&_sort=-_id", ["ipf", "dup", "cf"]),
    # one parameter's words only, and never a phrase across two texts
    ("condition:text=scarring", []),
    ("keyword:text=scarring", ["dup", "ipf"]),
    ("keyword:text=lung", ["ild", "ipf"]),
    ("condition:text=fibrosis naive", []),
    ("condition:text=f", ["cf", "dup", "ipf"]),
    ("keyword:text=s", ["dup", "ipf"]),
]


def _study(rid: str, title: str, conditions: list[str]) -> dict:
    return {"resourceType": "ResearchStudy", "id": rid, "status": "active", "title": title,
            "identifier": [{"system": "http://example.org/ids", "value": rid}],
            "condition": [{"text": c} for c in conditions],
            "keyword": [{"text": title}],
            "progressStatus": [{"state": {"coding": [{
                "system": "http://hl7.org/fhir/research-study-status",
                "code": "recruiting"}]}}]}


def _bundle(rid: str, title: str, conditions: list[str], *, late: bool = False) -> dict:
    """A study PUT by identifier (its search flushes the bulk writer's held rows inside the
    study's savepoint); ``late``: refused after that search (If-Match names no version)."""
    entry: dict[str, Any] = {
        "fullUrl": f"urn:uuid:{rid}", "resource": _study(rid, title, conditions),
        "request": {"method": "PUT",
                    "url": f"ResearchStudy?identifier=http://example.org/ids|{rid}"}}
    if late:
        entry["request"]["ifMatch"] = 'W/"99"'
    return {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}


def _process(store: Any, bundle: dict) -> None:
    process(store, "R5", bundle, base="", validate=False, supported=REGISTRY["R5"].__contains__,
            default_count=20, representation=False)


def _ids(store: SQLiteStore, query: str) -> list[str]:
    items = [tuple(p.split("=", 1)) for p in query.split("&")]
    q = parse("R5", "ResearchStudy", items, strict=True)
    rows, total = store.search("R5", "ResearchStudy", q.criteria, sort=q.sort, offset=0,
                               count=q.count, total=True)
    if "_count" not in query:
        assert total == len(rows)
    return [r.id for r in rows] if q.sort else sorted(r.id for r in rows)


def _check_index(path: Path) -> None:
    """idx_text holds, for each resource, the words of its texts in idx_token and nothing
    else (every term of every document, read back through fts5vocab), and idx_token holds no
    word rows (no text of a condition from its second word on)."""
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO idx_text (idx_text) VALUES ('integrity-check')")
        conn.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, idx_text, instance)")
        indexed = Counter(conn.execute("SELECT doc, term FROM temp.v"))
        texts: dict[int, list] = {}
        for rid, sp, text in conn.execute(
                "SELECT rid, sp, text FROM idx_token WHERE text IS NOT NULL"):
            texts.setdefault(rid, []).append((sp, text))
        want = Counter((rid, term) for rid, pairs in texts.items()
                       for term in text_document(pairs).split())
        assert indexed == want
        assert indexed  # the check read documents
        assert conn.execute("SELECT count(*) FROM idx_token WHERE text IN "
                            "('diabetes mellitus', 'mellitus', 'lung disease', 'disease', "
                            "'cafe syndrome', 'syndrome')").fetchone()[0] == 0
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def _check(store: SQLiteStore, path: Path, queries: list = QUERIES) -> None:
    _check_index(path)
    for query, want in queries:
        assert _ids(store, query) == want, query


def _token_rows(path: Path) -> Counter:
    with sqlite3.connect(path) as conn:
        return Counter(conn.execute("SELECT rid, sp, system, code, text FROM idx_token"))


@pytest.fixture
def one_by_one(tmp_path: Path) -> tuple[SQLiteStore, Path]:
    path = tmp_path / "one.sqlite"
    store = SQLiteStore(path)
    for rid, (title, conds) in STUDIES.items():
        with store.transaction() as tx:
            tx.update("R5", _study(rid, title, conds))
    return store, path


def test_text_finds_a_phrase_at_any_word_after_writes(one_by_one):
    store, path = one_by_one
    _check(store, path)


def test_text_follows_updates_and_deletes(one_by_one):
    store, path = one_by_one
    with store.transaction() as tx:
        tx.update("R5", _study("ipf", "Kidneys", ["Chronic Kidney Disease"]))
    _check_index(path)
    assert _ids(store, "condition:text=pulmonary fib") == ["dup"]
    assert _ids(store, "condition:text=idiopathic") == []
    assert _ids(store, "condition:text=kidney dis") == ["ipf"]
    assert _ids(store, "condition:text=disease") == ["ild", "ipf"]
    with store.transaction() as tx:
        tx.update("R5", _study("ipf", "Kidneys", ["Chronic Kidney Disease"]))  # unchanged
        tx.delete("R5", "ResearchStudy", "dup")
    _check_index(path)
    assert _ids(store, "condition:text=fibrosis") == ["cf"]
    assert _ids(store, "condition:text=cafe") == []
    with store.transaction() as tx:  # back again: a deleted resource's new version
        tx.update("R5", _study("dup", "Scarring", ["Pulmonary Fibrosis"]))
    _check_index(path)
    assert _ids(store, "condition:text=fibrosis") == ["cf", "dup"]


def test_a_rolled_back_write_leaves_the_text_index_as_it_was(one_by_one):
    store, path = one_by_one

    def abandoned() -> None:
        with store.transaction() as tx:
            tx.update("R5", _study("ipf", "Kidneys", ["Chronic Kidney Disease"]))
            tx.delete("R5", "ResearchStudy", "cf")
            raise RuntimeError("abandoned")

    with pytest.raises(RuntimeError):
        abandoned()
    _check(store, path)


@pytest.mark.parametrize("batch", [1, 2, 50])
def test_text_after_a_bulk_load_with_failing_studies(tmp_path: Path, batch: int):
    path = tmp_path / "bulk.sqlite"
    store = SQLiteStore(path)
    with store.bulk(batch=batch) as writer:
        for rid, (title, conds) in STUDIES.items():
            _process(writer, _bundle(rid, title, conds))
            with pytest.raises(Exception):  # noqa: B017,PT011 - refused after its search
                _process(writer, _bundle(f"{rid}-late", title, conds, late=True))
        # a study updated within the load: its earlier rows, held or written, are replaced
        _process(writer, _bundle("dm", "Diet", ["Type 2 Diabetes Mellitus", "Obesity"]))
    _check(store, path)
    assert _ids(store, "condition:text=obesity") == ["dm"]
    one = tmp_path / "one.sqlite"
    ref = SQLiteStore(one)
    for rid, (title, conds) in STUDIES.items():
        _process(ref, _bundle(rid, title, conds))
    _process(ref, _bundle("dm", "Diet", ["Type 2 Diabetes Mellitus", "Obesity"]))
    assert _token_rows(path) == _token_rows(one)


def test_text_after_a_bulk_load_into_a_loaded_store(tmp_path: Path):
    path = tmp_path / "bulk.sqlite"
    store = SQLiteStore(path)
    items = list(STUDIES.items())
    for rid, (title, conds) in items[:2]:
        _process(store, _bundle(rid, title, conds))
    with store.bulk(batch=2) as writer:
        for rid, (title, conds) in items[2:]:
            _process(writer, _bundle(rid, title, conds))
        # searched inside the load (flushed): what was written so far
        assert sorted(r.id for r in writer.search(
            "R5", "ResearchStudy", parse("R5", "ResearchStudy", [
                ("condition:text", "lung dis")], strict=True).criteria)[0]) == ["ild"]
        _process(writer, _bundle("cf", "CF", ["Cystic Fibrosis", "Chronic Lung Disorder"]))
    _check_index(path)
    assert _ids(store, "condition:text=lung dis") == ["cf", "ild"]
    assert _ids(store, "condition:text=pulmonary fib") == ["dup", "ipf"]


def _as_schema_6(path: Path) -> None:
    """Turn a store into what schema 6 wrote: token rows with word rows (indexing with
    ``word_rows``), no full-text index."""
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE idx_text")
        rows = conn.execute("SELECT rid, fv, type, last_updated, body FROM current "
                            "WHERE body IS NOT NULL").fetchall()
        conn.execute("DELETE FROM idx_token")
        for rid, fv, rtype, lu, body in rows:
            conn.executemany(INSERT_INDEX["idx_token"], index_rows(
                fv, rtype, rid, json.loads(body), lu, word_rows=True)["idx_token"])
        assert conn.execute("SELECT count(*) FROM idx_token WHERE text = "
                            "'pulmonary fibrosis'").fetchone()[0] == 2  # ipf's word row, dup
        # dup's own "fibrosis" and the word row of its "pulmonary fibrosis"
        assert conn.execute("SELECT count(*) FROM idx_token WHERE text = 'fibrosis' "
                            "AND rid = 5").fetchone()[0] == 2
        conn.execute("PRAGMA user_version=6")


def test_a_schema_6_store_loses_its_word_rows_and_gains_the_text_index(one_by_one,
                                                                        tmp_path: Path):
    store, path = one_by_one
    store.close()
    fresh = _token_rows(path)
    _as_schema_6(path)
    assert sum(_token_rows(path).values()) > sum(fresh.values())
    migrated = SQLiteStore(path)
    assert _token_rows(path) == fresh  # exactly the rows of today's indexing
    _check(migrated, path)
    assert migrated.upgrade() == []


def test_a_schema_2_store_keeps_every_search_answer(one_by_one):
    """Schema 2 had no word rows; the schema-3 step adds them once per resource row,
    parameter and text (where indexing wrote dup's own "fibrosis" and its word row, it
    adds none): the schema-7 step then removes dup's own row, which no search misses."""
    store, path = one_by_one
    store.close()
    fresh = _token_rows(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE idx_text")
        conn.execute("PRAGMA user_version=2")
    migrated = SQLiteStore(path)
    _check(migrated, path)
    assert fresh - _token_rows(path) == Counter(
        {(5, "ResearchStudy.condition", None, None, "fibrosis"): 1})
    assert not _token_rows(path) - fresh


def test_a_schema_6_upgrade_is_all_or_nothing(one_by_one, monkeypatch):
    store, path = one_by_one
    store.close()
    _as_schema_6(path)
    before = _token_rows(path)
    import fhirtrial.server.store as store_mod

    def killed(conn: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setitem(store_mod._DATA_STEPS, 7, killed)
    with pytest.raises(KeyboardInterrupt):
        SQLiteStore(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 6
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name='idx_text'").fetchone()
    assert _token_rows(path) == before
    monkeypatch.undo()
    _check(SQLiteStore(path), path)


def test_a_store_killed_while_loading_rebuilds_the_text_index(one_by_one):
    """A bulk load killed under schema 7 leaves version 1 and a partial text index: the
    migration from 1 (word rows added by step 3, removed by step 7) rebuilds it whole."""
    store, path = one_by_one
    store.close()
    fresh = _token_rows(path)
    with sqlite3.connect(path) as conn:
        drop_text(conn, 1)
        conn.execute("PRAGMA user_version=1")
    migrated = SQLiteStore(path)
    assert _token_rows(path) == fresh
    _check(migrated, path)


def test_db_copy_into_sqlite_indexes_texts(one_by_one, tmp_path: Path):
    store, _ = one_by_one
    path = tmp_path / "copy.sqlite"
    dest = SQLiteStore(path)
    with dest.transaction() as tx:
        for table, rows in store.export_rows(batch=2):
            tx.import_rows(table, rows)
    _check(dest, path)


@pytest.mark.parametrize(("value", "want"), [
    ("pulmonary fib", '"condition_pulmonary condition_fib" *'),
    ("non-small", '"condition_non condition_small" *'),
    ("covid-", '"condition_covid"'),  # ends in punctuation: the last word whole
    ('say "hi', '"condition_say condition_hi" *'),
    ("a\x00b", '"condition_a condition_b" *'),
    ("---", None),
    ("_", None),
    ("", None),
    ("日本", '"condition_日本" *'),
])
def test_text_query(value, want):
    assert text_query("ResearchStudy.condition", value) == want


def test_text_document_tags_words_and_parts_texts():
    assert text_query("ResearchStudy.progress-status-state", "x") == '"progress_status_state_x" *'
    assert text_document([("ResearchStudy.condition", "pulmonary fibrosis, idiopathic"),
                          ("ResearchStudy.keyword", "lung"), ("ResearchStudy.keyword", "--")]) \
        == "condition_pulmonary condition_fibrosis condition_idiopathic _ keyword_lung"


HOSTILE = ['"', '""', '"pulmonary', "*", "fib*", "**", "NEAR", "NEAR(pulmonary fibrosis)",
           "pulmonary AND fibrosis", "pulmonary OR cystic", "NOT fibrosis", "fibrosis NOT",
           "(", ")", "(fibrosis)", "^", "^fibrosis", "fibrosis^", "-fibrosis", "+fibrosis",
           "condition:fibrosis", "{text}: fibrosis", "text:fibrosis", "fibrosis\x00",
           "\x00", "%", "_", "\\", "'", "';--", "fibrosis'--", "a\"b\"c", "---", "…", "é",
           "ß", "İstanbul", "日本語", "🙂", "\u200b", "\U0010ffff", "x" * 3000,
           "fibrosis " * 200, "AND", "OR", "NOT"]


def test_hostile_text_values_are_phrases_never_errors(app, client, auth):
    for rid, (title, conds) in STUDIES.items():
        r = client.put(f"/fhir/ResearchStudy/{rid}", json=_study(rid, title, conds),
                       headers=auth)
        assert r.status_code == 201, r.get_json()
    codes = []
    for value in HOSTILE:
        for param in ("condition:text", "condition:text-advanced"):
            r = client.get(f"/fhir/ResearchStudy?{param}={quote(value)}")
            assert r.status_code in (200, 400), (param, value, r.status_code)
            if r.status_code == 400:
                codes.append((param, value))
                continue
            ids = sorted(e["resource"]["id"] for e in r.get_json().get("entry", [])
                         if e["search"]["mode"] == "match")
            assert set(ids) <= set(STUDIES), (value, ids)
    # FHIR's own refusals: a lone escape is an empty value, 200 words 200 criteria
    assert set(codes) <= {("condition:text", "\\"), ("condition:text-advanced", "\\"),
                          ("condition:text-advanced", "fibrosis " * 200)}, codes
    def ids(q: str) -> list[str]:
        bundle = client.get(f"/fhir/ResearchStudy?{q}").get_json()
        return sorted(e["resource"]["id"] for e in bundle.get("entry", [])
                      if e["search"]["mode"] == "match")
    if app.extensions["fhirtrial.store"].dialect.name != "sqlite":
        return
    # FTS5 operators are words like any other: no text holds "pulmonary and fibrosis"
    assert ids("condition:text=" + quote("pulmonary AND fibrosis")) == []
    assert ids("condition:text=" + quote("NEAR(pulmonary fibrosis)")) == []
    assert ids("condition:text=" + quote("fib*")) == []
    assert ids("condition:text=" + quote("fibrosis\x00")) == ["cf", "dup", "ipf"]


def test_text_without_words_matches_texts_that_start_with_it(client, auth):
    """A value without a letter or digit has no word to look up: it matches the texts that
    start with it, as before the full-text index."""
    for rid, conds in (("a", ["--- marker"]), ("b", ["(none)"]), ("c", ["x --- y"])):
        r = client.put(f"/fhir/ResearchStudy/{rid}", json=_study(rid, "t", conds),
                       headers=auth)
        assert r.status_code == 201
    bundle = client.get("/fhir/ResearchStudy?condition:text=" + quote("---")).get_json()
    assert [e["resource"]["id"] for e in bundle.get("entry", [])] == ["a"]
    bundle = client.get("/fhir/ResearchStudy?condition:text=" + quote("(")).get_json()
    assert [e["resource"]["id"] for e in bundle.get("entry", [])] == ["b"]


AGREE_TEXTS = ["Idiopathic Pulmonary Fibrosis", "Non-Small-Cell Lung Cancer", "COVID-19",
               "covid 19 (SARS-CoV-2)", "Naïve Café Syndrome", "Straße/STRASSE", "日本 語",
               "Type 2 Diabetes Mellitus", "HIV/AIDS; hepatitis-B", "x" * 1100 + " tail",
               "fibrosis fibrosis cystic", "α-thalassemia β", "A_B c", "(none)"]
AGREE_VALUES = ["f", "fib", "fibrosis", "pulmonary fib", "pulmonary fibrosis,", "non-small",
                "non small cell", "small-cell lung c", "covid-", "covid 19", "covid-19)", "19",
                "sars cov 2", "naive cafe", "cafe s", "strasse", "日本", "語", "2 diab",
                "diabetes mellitus type", "hiv aids hep", "b", "-", "(", "tail", "x", "xx",
                "cystic", "fibrosis cystic", "thalassemia", "a b", "c", "_"]


def test_a_page_walk_and_the_full_text_index_find_the_same(tmp_path: Path):
    """A search's count and sparse pages read the full-text index; a page walk probes each
    row's texts in Python (``fhirtrial_phrase``): the two find the same resources, for every
    value, punctuation, accents and long texts included."""
    from fhirtrial.server.search import Criterion
    from fhirtrial.server.searchparams import norm_text
    from fhirtrial.server.sqlsearch import compile_search

    store = SQLiteStore(tmp_path / "agree.sqlite")
    with store.transaction() as tx:
        for i, text in enumerate(AGREE_TEXTS):
            tx.update("R5", _study(f"s{i}", "t", [text]))
    conn = store._conn()
    found = {}
    for value in AGREE_VALUES:
        cr = Criterion("condition", "token", "text", (norm_text(value),))
        answers = []
        for probe in (False, True):
            where, args = compile_search("R5", "ResearchStudy", [cr], probe=probe)
            answers.append(sorted(r[0] for r in conn.execute(
                f"SELECT c.id FROM current c WHERE {where}", args)))
        assert answers[0] == answers[1], value
        found[value] = answers[0]
    # what the two agree on is right (s1 is the non-small-cell text, s2/s3 the COVID ones)
    assert found["non small cell"] == ["s1"]
    assert found["covid-"] == ["s2", "s3"]
    assert found["covid-19)"] == ["s2", "s3"]
    assert found["naive cafe"] == ["s4"]
    assert found["fibrosis cystic"] == ["s10"]
    assert found["tail"] == []  # past the first 1,024 characters
    assert found["("] == ["s13"]  # no word: the texts starting with it
    assert found["-"] == []
    assert found["a b"] == ["s12"]
    assert found["_"] == []
