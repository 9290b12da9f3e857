"""Search that does what people mean: words inside a condition or title, and hints (not
silent empty results) for R5 status given a recruitment state or a phase code that does not
exist."""

from __future__ import annotations

import sqlite3

import pytest

from fhirtrial.server.search import PHASE_CODES
from fhirtrial.server.store import SCHEMA_VERSION, SQLiteStore

STATE = "http://hl7.org/fhir/research-study-status"
STUDIES = {
    "ipf": ("Stem-Cell Therapy for Lung Scarring", "Idiopathic Pulmonary Fibrosis"),
    "cf": ("Cell therapy in cystic fibrosis", "Cystic Fibrosis"),
    "dm": ("An Excellent Diet", "Type 2 Diabetes Mellitus"),
    "ild": ("Interstitial lung disease registry (ILD)", "Interstitial Lung Disease"),
}


def _study(rid: str, title: str, condition: str) -> dict:
    return {"resourceType": "ResearchStudy", "id": rid, "status": "active", "title": title,
            "condition": [{"text": condition}],
            "progressStatus": [{"state": {"coding": [{"system": STATE,
                                                      "code": "recruiting"}]}}]}


@pytest.fixture
def loaded(client, auth):
    for rid, (title, cond) in STUDIES.items():
        r = client.put(f"/fhir/ResearchStudy/{rid}", json=_study(rid, title, cond), headers=auth)
        assert r.status_code == 201, r.get_json()
    return client


def _ids(client, query: str) -> list[str]:
    bundle = client.get(f"/fhir/ResearchStudy?{query}").get_json()
    return sorted(e["resource"]["id"] for e in bundle.get("entry", [])
                  if e["search"]["mode"] == "match")


def _outcome(client, query: str) -> dict | None:
    bundle = client.get(f"/fhir/ResearchStudy?{query}").get_json()
    return next((e["resource"] for e in bundle.get("entry", [])
                 if e["search"]["mode"] == "outcome"), None)


@pytest.mark.parametrize(("query", "want"), [
    ("condition:text=fibrosis", ["cf", "ipf"]),  # a word inside the text
    ("condition:text=pulmonary fib", ["ipf"]),  # a phrase from a word on
    ("condition:text=ibrosis", []),  # not from inside a word
    ("condition:text=lung", ["ild"]),
    ("condition:text=idiopathic", ["ipf"]),  # the start still matches
    ("condition:text=fibrosis pulmonary", []),  # :text is a phrase, in order
    ("condition:text-advanced=fibrosis pulmonary", ["ipf"]),  # every word, any order
    ("condition:text-advanced=fibrosis", ["cf", "ipf"]),
    ("condition:text-advanced=fibrosis lung", []),
    ("condition:text-advanced=diabetes,lung disease", ["dm", "ild"]),  # values OR-ed
    ("title:text=cell", ["cf", "ipf"]),  # after a hyphen, at the start; not in "Excellent"
    ("title:text=ild", ["ild"]),  # in brackets
    ("title:text=therapy cell", ["cf", "ipf"]),
    ("title=cell", ["cf"]),  # plain string search still starts with
])
def test_words_inside_condition_and_title(loaded, query, want):
    assert _ids(loaded, query) == want


def test_a_long_text_is_matched_from_its_start_and_costs_rows_in_proportion(client, auth):
    """Word rows hold (words × length) characters: a 1 MB condition text of 200,000 words
    would have asked for 100 GB. Past WORD_ROWS_MAX_TEXT a text is indexed whole."""
    from fhirtrial.server.searchparams import WORD_ROWS_MAX_TEXT, extract

    huge = "word " * 200_000  # 1,000,000 characters, under FHIR's 1 MiB string limit
    assert len(extract("R5", _study("huge", "t", huge)).token) < 10
    r = client.put("/fhir/ResearchStudy/huge", json=_study("huge", "t", huge), headers=auth)
    assert r.status_code == 201
    assert _ids(client, "condition:text=word word") == ["huge"]  # from its start
    # a text up to the limit keeps its word rows
    long = "x " * (WORD_ROWS_MAX_TEXT // 2 - 10) + "pulmonary fibrosis"
    assert len(long) <= WORD_ROWS_MAX_TEXT
    r = client.put("/fhir/ResearchStudy/long", json=_study("long", "t", long), headers=auth)
    assert r.status_code == 201
    assert _ids(client, "condition:text=pulmonary fib") == ["long"]


def test_recruitment_state_given_to_r5_status_gets_a_hint(loaded):
    assert _ids(loaded, "status=recruiting") == []
    assert _outcome(loaded, "status=recruiting") == {
        "resourceType": "OperationOutcome", "issue": [{
            "severity": "warning", "code": "value", "expression": ["status"],
            "diagnostics": "status=recruiting: on an R5 ResearchStudy, status is the record's "
                           "publication status (draft, active, retired, unknown); recruiting is "
                           "a recruitment state: search progress-status-state=recruiting"}]}
    # the hinted search finds them; the publication status gives no hint
    assert _ids(loaded, "progress-status-state=recruiting") == sorted(STUDIES)
    assert _outcome(loaded, "status=active") is None
    # R4's status is the recruitment state: no hint there
    r4 = loaded.get("/fhir/R4/ResearchStudy?status=active").get_json()
    assert not [e for e in r4.get("entry", []) if e["search"]["mode"] == "outcome"]


def test_unknown_phase_code_gets_a_warning_naming_the_codes(loaded):
    oo = _outcome(loaded, "phase=phase2")
    assert oo == {"resourceType": "OperationOutcome", "issue": [{
        "severity": "warning", "code": "value", "expression": ["phase"],
        "diagnostics": "phase=phase2: phase2 is not a research-study-phase code; the codes are "
                       + ", ".join(PHASE_CODES)}]}
    assert "phase-2" in PHASE_CODES
    assert _outcome(loaded, "phase=phase-2") is None
    # a code of another system is that system's business
    assert _outcome(loaded, "phase=http://example.org/phases|phase2") is None


def test_a_schema_2_store_finds_words_after_open(tmp_path):
    """A store written before word matching (schema 2: each token text indexed whole, no
    word rows, no full-text index) finds words inside texts once opened (migrated)."""
    path = tmp_path / "old.sqlite"
    store = SQLiteStore(path)
    with store.transaction() as tx:
        for rid, (title, cond) in STUDIES.items():
            tx.update("R5", _study(rid, title, cond))
    store.close()
    conn = sqlite3.connect(path)  # back to what schema 2 wrote: no word rows, no idx_text
    conn.execute("DROP TABLE idx_text")
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    from fhirtrial.server.search import parse

    reopened = SQLiteStore(path)
    q = parse("R5", "ResearchStudy", [("condition:text", "fibrosis")], strict=True)
    rows, total = reopened.search("R5", "ResearchStudy", q.criteria)
    assert sorted(r.id for r in rows) == ["cf", "ipf"]
    assert total == 2
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    reopened.close()


def test_a_browser_sees_the_hint_above_the_results(loaded):
    page = loaded.get("/fhir/ResearchStudy?status=recruiting",
                      headers={"Accept": "text/html"}).get_data(as_text=True)
    assert ("<li><b>warning</b>: status=recruiting: on an R5 ResearchStudy, status is the "
            "record&#x27;s publication status") in page
