"""The store a ``--db`` names: URLs it cannot serve are one line (and no file named after
them), ``fhirtrial db upgrade`` and ``fhirtrial db copy`` between SQLite and PostgreSQL, and
the PostgreSQL store's totals staying exact while another server writes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import WRITE_TOKEN
from fhirtrial.cli import main
from fhirtrial.server import create_app
from fhirtrial.server.search import parse
from fhirtrial.server.stores import StoreURLError, classify, open_store

W = {"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/fhir+json"}

BAD_URLS = [
    ("mysql://db.example.org/trials", "mysql: databases are not supported"),
    ("postgresql:/db.example.org/trials", "is not a PostgreSQL URL"),
    ("postgresql:trials", "is not a PostgreSQL URL"),
    ("postgres//db.example.org/trials", "missing its ':'"),
    ("http://db.example.org/trials", "http: databases are not supported"),
    ("sqlite:trials.db", "expected sqlite:///relative/path"),
    ("postgresql://db.example.org:notaport/trials", "malformed PostgreSQL URL"),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS, ids=[u for u, _ in BAD_URLS])
@pytest.mark.parametrize("command", ["load", "serve", "db upgrade"])
def test_a_url_the_project_cannot_serve_is_one_line_and_creates_nothing(
        tmp_path, monkeypatch, url, message, command):
    monkeypatch.chdir(tmp_path)
    args = [*command.split(), "--db", url]
    if command == "load":
        args.insert(1, str(tmp_path))
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    assert lines[0].startswith("fhirtrial: --db")
    assert message in lines[0]
    assert list(tmp_path.iterdir()) == []  # no file, no folder named after the URL


def test_the_environment_variable_is_checked_the_same_way(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FHIRTRIAL_DB", "mysql://db.example.org/trials")
    with pytest.raises(StoreURLError, match="mysql: databases are not supported"):
        create_app()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("db", "kind", "where"), [
    ("data/s.sqlite", "sqlite", "data/s.sqlite"),
    ("sqlite:///data/s.sqlite", "sqlite", "data/s.sqlite"),
    ("sqlite:////abs/s.sqlite", "sqlite", "/abs/s.sqlite"),
    ("C:\\data\\s.sqlite", "sqlite", "C:\\data\\s.sqlite"),
    ("postgresql://u:p@h:5433/db", "postgresql", "postgresql://u:p@h:5433/db"),
    ("postgres://h/db", "postgresql", "postgres://h/db"),
])
def test_paths_and_urls_the_project_serves(db, kind, where):
    assert classify(db) == (kind, where)


def test_an_unreachable_postgresql_is_one_line_exit_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["db", "upgrade", "--db",
                                  "postgresql://nobody@127.0.0.1:1/nothing"])
    assert r.exit_code == 1, r.output
    assert len(r.output.strip().splitlines()) == 1
    assert "postgresql://nobody@127.0.0.1:1/nothing is unavailable" in r.output
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- migrations

def test_db_upgrade_migrates_a_new_database_then_finds_it_up_to_date(pg_cluster):
    name = pg_cluster.create_database(template=None)  # an empty database, no schema
    url = pg_cluster.url(name)
    try:
        r = CliRunner().invoke(main, ["db", "upgrade", "--db", url])
        assert r.exit_code == 0, r.output
        assert "schema version 0 → 6 (applied 1, 2, 3, 4, 5, 6)" in r.output
        r = CliRunner().invoke(main, ["db", "upgrade", "--db", url])
        assert r.exit_code == 0, r.output
        assert "schema version 6, up to date" in r.output
        store = open_store(url)
        assert store.schema_version() == 6
        store.close()
        # version 3's narrow index for page walks' token probes
        import psycopg
        with psycopg.connect(url) as c:
            assert c.execute("SELECT indexdef FROM pg_indexes WHERE indexname = "
                             "'idx_token_rid_code'").fetchone()[0].endswith(
                "ON public.idx_token USING btree (rid, sp, code)")
            # version 4's latitude-strip index for near searches
            assert c.execute("SELECT indexdef FROM pg_indexes WHERE indexname = "
                             "'idx_geo_cell_c'").fetchone()[0].endswith(
                "ON public.idx_geo USING btree ((((lat + (90)::double precision))::integer), "
                "lon, lat, rid)")
    finally:
        pg_cluster.drop_database(name)


def test_db_upgrade_on_sqlite(tmp_path):
    db = tmp_path / "s.sqlite"
    r = CliRunner().invoke(main, ["db", "upgrade", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "schema version 0 → 7 (applied 2, 3, 4, 5, 6, 7)" in r.output
    r = CliRunner().invoke(main, ["db", "upgrade", "--db", str(db)])
    assert "schema version 7, up to date" in r.output


# ---------------------------------------------------------------- db copy

def _fill(client) -> None:
    locs = [{"resourceType": "Location", "id": f"loc-{i}", "name": f"Site {i}",
             "position": {"latitude": 45.0 + i / 10, "longitude": 4.8}} for i in range(5)]
    studies = [{"resourceType": "ResearchStudy", "id": f"rs-{i}", "status": "active",
                "title": f"Étude {i}", "period": {"start": f"20{10 + i}-01-01"},
                "site": [{"reference": f"Location/loc-{i % 5}"}]} for i in range(12)]
    for res in [*locs, *studies]:
        r = client.put(f"/fhir/{res['resourceType']}/{res['id']}", data=json.dumps(res),
                       headers=W)
        assert r.status_code == 201
    r = client.put("/fhir/ResearchStudy/rs-3", data=json.dumps({**studies[3], "title": "New"}),
                   headers=W)
    assert r.status_code == 200
    assert client.delete("/fhir/ResearchStudy/rs-4", headers=W).status_code == 200
    r = client.post("/fhir/ResearchStudy", data=json.dumps(
        {"resourceType": "ResearchStudy", "status": "active", "title": "Server id"}), headers=W)
    assert r.json["id"] == "1"


QUERIES = ["title=etude", "date=ge2015", "_sort=-date", "site:Location=loc-2",
           "_include=ResearchStudy:site", "title:contains=ude 1", "_id=rs-3,rs-4"]


def _answers(client) -> dict[str, object]:
    out: dict[str, object] = {}
    for q in QUERIES:
        b = client.get(f"/fhir/ResearchStudy?{q}&_count=50").json
        out[q] = (b["total"], [e["resource"] for e in b.get("entry", [])])
    out["near"] = [e["resource"]["id"] for e in client.get(
        "/fhir/Location?near=45.2|4.8|15|km").json.get("entry", [])]
    out["history"] = [(e["request"], e.get("resource"))
                      for e in client.get("/fhir/ResearchStudy/_history?_count=100").json["entry"]]
    out["gone"] = client.get("/fhir/ResearchStudy/rs-4").status_code
    out["vread"] = client.get("/fhir/ResearchStudy/rs-3/_history/1").json
    return out


def test_db_copy_sqlite_to_postgresql_and_back_serves_the_same_answers(tmp_path, pg_url):
    src = tmp_path / "src.sqlite"
    app = create_app({"DB": str(src), "TOKENS": WRITE_TOKEN})
    _fill(app.test_client())
    want = _answers(app.test_client())
    assert want["gone"] == 410
    assert len(want["history"]) == 15  # 12 creates, an update, a delete, a server-id create

    r = CliRunner().invoke(main, ["db", "copy", str(src), pg_url])
    assert r.exit_code == 0, r.output
    assert "copied 18 resource(s) and 20 version(s)" in r.output
    pg_app = create_app({"DB": pg_url, "TOKENS": WRITE_TOKEN})
    assert _answers(pg_app.test_client()) == want
    # the server-assigned id counter came along: the next POST does not reuse id 1
    r2 = pg_app.test_client().post("/fhir/ResearchStudy", data=json.dumps(
        {"resourceType": "ResearchStudy", "status": "active"}), headers=W)
    assert r2.json["id"] == "2"
    want_pg = _answers(pg_app.test_client())
    pg_app.extensions["fhirtrial.store"].close()

    back = tmp_path / "back.sqlite"
    r = CliRunner().invoke(main, ["db", "copy", pg_url, str(back)])
    assert r.exit_code == 0, r.output
    assert "copied 19 resource(s) and 21 version(s)" in r.output
    again = _answers(create_app({"DB": str(back)}).test_client())
    assert again == want_pg
    assert again["history"][1:] == want["history"]  # and the second POST before them
    assert again["history"][0][1]["id"] == "2"


def test_db_copy_refuses_a_store_that_is_not_empty(tmp_path, pg_url):
    src = tmp_path / "src.sqlite"
    _fill(create_app({"DB": str(src), "TOKENS": WRITE_TOKEN}).test_client())
    assert CliRunner().invoke(main, ["db", "copy", str(src), pg_url]).exit_code == 0
    r = CliRunner().invoke(main, ["db", "copy", str(src), pg_url])
    assert r.exit_code == 1
    assert r.output.strip().endswith("is not empty; db copy fills an empty store only")


def test_db_copy_of_a_missing_sqlite_file_creates_nothing(tmp_path, pg_url):
    r = CliRunner().invoke(main, ["db", "copy", str(tmp_path / "nope.sqlite"), pg_url])
    assert r.exit_code == 2
    assert "no such SQLite store" in r.output
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- totals under other writers

def _put(store, i: int, city: str = "Lyon") -> None:
    with store.transaction() as tx:
        tx.update("R5", {"resourceType": "Location", "id": f"loc-{i:02d}",
                         "address": {"city": city}})


def test_postgresql_totals_stay_exact_when_another_server_writes(pg_url):
    a, b = open_store(pg_url), open_store(pg_url)  # two servers' stores on one database
    try:
        for i in range(3):
            _put(a, i)
        city = parse("R5", "Location", [("address-city", "lyon")], strict=True).criteria
        assert a.search("R5", "Location", city, count=5)[1] == 3
        assert a.search("R5", "Location", city, count=5)[1] == 3  # remembered
        _put(b, 7)
        assert a.search("R5", "Location", city, count=5)[1] == 4
        _put(b, 1, city="Paris")
        assert a.search("R5", "Location", city, count=5)[1] == 3
        with b.transaction() as tx:
            tx.delete("R5", "Location", "loc-00")
        rows, n = a.search("R5", "Location", [], count=10)
        assert n == 3
        assert [r.id for r in rows] == ["loc-01", "loc-02", "loc-07"]
    finally:
        a.close()
        b.close()


def test_a_remembered_postgresql_search_is_one_round_trip_and_never_stale(pg_url,
                                                                          monkeypatch):
    """A search this server counted for the database's current snapshot is one round trip to
    PostgreSQL (its page and the snapshot it read); once another server wrote, the snapshot
    differs and the page and total are the new ones."""
    import psycopg

    a, b = open_store(pg_url), open_store(pg_url)
    trips: list[str] = []
    execute, pipeline = psycopg.Connection.execute, psycopg.Connection.pipeline

    def counted_execute(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self._pipeline is None:
            trips.append(str(query)[:40])
        return execute(self, query, *args, **kwargs)

    def counted_pipeline(self):  # type: ignore[no-untyped-def]
        trips.append("pipeline")
        return pipeline(self)

    try:
        for i in range(3):
            _put(a, i)
        city = parse("R5", "Location", [("address-city", "lyon")], strict=True).criteria
        cold = a.search("R5", "Location", city, count=2)
        monkeypatch.setattr(psycopg.Connection, "execute", counted_execute)
        monkeypatch.setattr(psycopg.Connection, "pipeline", counted_pipeline)
        warm = a.search("R5", "Location", city, count=2)
        assert len(trips) == 1, trips  # a statement outside a pipeline, or one pipeline
        assert [r.id for r in warm[0]] == [r.id for r in cold[0]] == ["loc-00", "loc-01"]
        assert warm[1] == cold[1] == 3
        monkeypatch.setattr(psycopg.Connection, "execute", execute)
        monkeypatch.setattr(psycopg.Connection, "pipeline", pipeline)
        with b.transaction() as tx:  # another server: a new first match
            tx.update("R5", {"resourceType": "Location", "id": "loc-0",
                             "address": {"city": "Lyon"}})
        rows, n = a.search("R5", "Location", city, count=2)
        assert n == 4
        assert [r.id for r in rows] == ["loc-0", "loc-00"]
        assert [r.id for r in a.search("R5", "Location", city, count=2)[0]] == ["loc-0", "loc-00"]
        # remembered too: a count alone, and a search nothing matches
        assert a.search("R5", "Location", city, count=0) == ([], 4)
        assert a.search("R5", "Location", city, count=0) == ([], 4)
        none = parse("R5", "Location", [("address-city", "oslo")], strict=True).criteria
        assert a.search("R5", "Location", none, count=2) == ([], 0)
        assert a.search("R5", "Location", none, count=2) == ([], 0)
    finally:
        a.close()
        b.close()


def test_long_and_nul_text_is_stored_whole_and_found_on_both_stores(store_db):
    """PostgreSQL text holds no NUL and a btree entry ~2.7 kB: the body keeps every character
    and searches still find the resource by its (long) title."""
    app = create_app({"DB": store_db, "TOKENS": WRITE_TOKEN})
    client = app.test_client()
    title = "Ünïcode " + "é𝄞x" * 2000 + " end"
    for rid, t in (("long", title), ("nul", "nul\x00inside"), ("short", "Ünïcode short")):
        r = client.put(f"/fhir/ResearchStudy/{rid}", headers=W, data=json.dumps(
            {"resourceType": "ResearchStudy", "id": rid, "status": "active", "title": t,
             "identifier": [{"system": "urn:x", "value": t}]}))
        assert r.status_code == 201, r.get_data(as_text=True)
    assert client.get("/fhir/ResearchStudy/long").json["title"] == title
    assert client.get("/fhir/ResearchStudy/nul").json["title"] == "nul\x00inside"

    def found(query: dict) -> list[str]:
        from urllib.parse import urlencode

        r = client.get(f"/fhir/ResearchStudy?{urlencode(query)}")
        assert r.status_code == 200, r.get_data(as_text=True)
        return sorted(e["resource"]["id"] for e in r.json.get("entry", []))

    assert found({"title": "unicode"}) == ["long", "short"]
    assert found({"title": "unicode é𝄞xé𝄞x"}) == ["long"]
    assert found({"title:exact": title}) == ["long"]
    assert found({"title:contains": "𝄞xé"}) == ["long"]
    assert found({"title:exact": "nul\x00inside"}) == ["nul"]
    assert found({"identifier": f"urn:x|{title}"}) == ["long"]
    app.extensions["fhirtrial.store"].close()


def test_a_lost_database_is_a_503_outcome_not_a_500(pg_cluster, pg_url):
    app = create_app({"DB": pg_url, "TOKENS": WRITE_TOKEN, "DB_POOL_TIMEOUT": 1.0})
    client = app.test_client()
    assert client.put("/fhir/Location/a", headers=W, data=json.dumps(
        {"resourceType": "Location", "id": "a", "name": "A"})).status_code == 201
    pg_cluster.drop_database(pg_url.rsplit("/", 1)[1])  # terminates the pool's connections
    for r in (client.get("/fhir/Location/a"), client.get("/fhir/Location?name=a"),
              client.put("/fhir/Location/a", headers=W, data=json.dumps(
                  {"resourceType": "Location", "id": "a", "name": "B"}))):
        assert r.status_code == 503, r.get_data(as_text=True)
        issue = r.json["issue"][0]
        assert issue["code"] == "transient"
        assert "is unavailable" in issue["diagnostics"]
    app.extensions["fhirtrial.store"].close()
