"""Grow a benchmark store by SQL copies of the studies genuinely loaded into it, on SQLite or
PostgreSQL: bench setup only (a store of 100,000 studies in minutes instead of hours on a
shared machine). Load-rate figures never come from here.

The studies of ``bench_server.generate`` are ``ResearchStudy/NCT1xxxxxxx`` with sites
``Location/NCT1xxxxxxx-site-k`` and sponsors ``Organization/org-j`` (500, shared). Copy
``k`` of study ``i`` is study ``i + k*base``: its ids, its body, every index row that names
the NCT id (identifier token, site references, site names) name the new one; sponsors are not
copied (the copies name the same 500). Search answers over a cloned store are therefore the
answers a genuine load of the same bundles would give, except titles (``study i``) and the
random fields, which repeat every ``base`` studies.

With the value-leading search indexes dropped for the copy and built once after it (the
bulk loaders' own indexes and code), then planner statistics refreshed.
"""

from __future__ import annotations

from typing import Any

_TEXT = {"idx_token": ("sp", "system", "code", "text"), "idx_string": ("sp", "norm", "exact"),
         "idx_date": ("sp", "lo", "hi"), "idx_ref": ("sp", "ttype", "tid", "raw"),
         "idx_number": ("sp", "value", "system", "code"), "idx_geo": ("lat", "lon")}
_REPLACED = {"system", "code", "text", "norm", "exact", "tid", "raw"}


def _sql(dialect: str) -> dict[str, str]:
    if dialect == "sqlite":
        new_id = "printf('NCT%08d', CAST(substr({c}, 4, 8) AS INTEGER) + ks.k * ?) " \
                 "|| substr({c}, 12)"
        body = "CAST(replace(CAST(o.body AS TEXT), m.old, m.new) AS BLOB)"
        num = "CAST(substr(o.id, 4, 8) AS INTEGER)"
    else:
        new_id = "'NCT' || lpad((CAST(substr({c}, 4, 8) AS INTEGER) + ks.k * ?)::text, 8, " \
                 "'0') || substr({c}, 12)"
        body = "convert_to(replace(convert_from(o.body, 'UTF8'), m.old, m.new), 'UTF8')"
        num = "CAST(substr(o.id, 4, 8) AS INTEGER)"
    return {"new_id": new_id, "body": body, "num": num}


def clone(db: str, base: int, n: int) -> int:
    """Copy studies ``NCT10000000 … +base-1`` until ``n`` studies are stored; the number of
    resources written."""
    from fhirtrial.server.stores import open_store

    if n <= base:
        return 0
    store: Any = open_store(db)
    pg = store.dialect.name == "postgresql"
    q = _sql(store.dialect.name)
    ks = list(range(1, -(-n // base)))
    with store._reading() as conn:
        if pg:
            from fhirtrial.server.pgstore import PG_DEFERRED

            conn.execute("SET maintenance_work_mem = '256MB'")
            deferred = PG_DEFERRED
        else:
            from fhirtrial.server.store import DEFERRED_INDEXES

            deferred = DEFERRED_INDEXES
            # a rollback journal, not the WAL, for this one big append: WAL mode would hold
            # every new page twice on disk (the log, then the checkpoint) — 60 GB at 550,000
            conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("BEGIN")
        for name in deferred:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        top = conn.execute("SELECT max(rid) FROM current").fetchone()[0]
        conn.execute("CREATE TEMP TABLE ks (k INTEGER)")
        conn.executemany("INSERT INTO ks VALUES (?)", [(k,) for k in ks])
        new = q["new_id"].format(c="o.id")
        conn.execute(
            "CREATE TEMP TABLE m AS SELECT o.rid AS o, ks.k AS k, "
            f"substr(o.id, 1, 11) AS old, substr({new}, 1, 11) AS new, {new} AS nid "
            f"FROM current o, ks WHERE o.rid <= ? AND o.id LIKE 'NCT%' AND o.body IS NOT NULL "
            f"AND {q['num']} - 10000000 + ks.k * ? < ?", (base, base, top, base, n))
        conn.execute(
            "INSERT INTO current (fv, type, id, vid, last_updated, body) "
            f"SELECT o.fv, o.type, m.nid, o.vid, o.last_updated, {q['body']} "
            "FROM m JOIN current o ON o.rid = m.o ORDER BY m.k, m.o")
        conn.execute("ALTER TABLE m ADD COLUMN n BIGINT" if pg
                     else "ALTER TABLE m ADD COLUMN n INTEGER")
        conn.execute("UPDATE m SET n = (SELECT c.rid FROM current c, current o WHERE "
                     "o.rid = m.o AND c.fv = o.fv AND c.type = o.type AND c.id = m.nid)")
        # each copy's only version is its current one: its body is in current alone, as
        # the store keeps it (store.SQLTx._supersede)
        conn.execute("INSERT INTO versions (fv, type, id, vid, last_updated, method, body) "
                     "SELECT c.fv, c.type, c.id, c.vid, c.last_updated, 'PUT', NULL "
                     "FROM m JOIN current c ON c.rid = m.n")
        for table, cols in _TEXT.items():
            sel = ", ".join(
                f"replace(replace(t.{c}, m.old, m.new), lower(m.old), lower(m.new))"
                if c in _REPLACED else f"t.{c}" for c in cols)
            conn.execute(f"INSERT INTO {table} (rid, {', '.join(cols)}) "
                         f"SELECT m.n, {sel} FROM m JOIN {table} t ON t.rid = m.o")
        if not pg:  # the copies' full-text documents, from their copied texts
            from fhirtrial.server.store import index_texts

            index_texts(conn, top)
        written = conn.execute("SELECT count(*) FROM m").fetchone()[0]
        conn.execute("DROP TABLE m")
        conn.execute("DROP TABLE ks")
        conn.execute("COMMIT")
        if pg:
            store._build_indexes(conn.raw)
        else:
            conn.execute("PRAGMA journal_mode=WAL")
    if not pg:
        store.close()
        from fhirtrial.server.store import SQLiteStore

        store = SQLiteStore(db)
        conn = store._conn()
        conn.execute("BEGIN IMMEDIATE")
        from fhirtrial.server.dialect import SQLITE_SCHEMA, statements

        for stmt in statements(SQLITE_SCHEMA):
            conn.execute(stmt)
        conn.execute("COMMIT")
    store.analyze()
    store.close()
    return int(written)
