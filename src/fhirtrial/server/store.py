"""Resource storage: the :class:`Store` protocol, :class:`SQLStore` (the queries every SQL
backend shares) and :class:`SQLiteStore`, the default; :class:`~fhirtrial.server.pgstore.
PostgresStore` is the other backend, and :func:`fhirtrial.server.stores.open_store` picks one
from the ``--db`` URL.

Design:

- SQLite: one file in WAL mode, created on first use; one connection per thread;
- ``current`` holds the latest version of every resource (body = the exact bytes served, with
  ``meta.versionId``/``lastUpdated`` already set), ``versions`` every version for history and
  vread; each body is stored once: a version's row gets its body when a newer version
  supersedes it, until then it is read from ``current`` (at registry size the store is half
  the size, and what a read touches stays in the page cache); a delete keeps a tombstone so
  reads answer 410 Gone;
- search indexes (token, string, date, reference, number, geo) are computed at write time
  (:func:`fhirtrial.server.searchparams.extract`) and a search only ever reads them, through SQL
  built from fixed fragments with every value passed as a parameter;
- each resource is stored per FHIR version (``fv`` = ``R5`` | ``R4``): what was loaded for R5 is
  served at ``/fhir/R5``, what was loaded for R4 at ``/fhir/R4``. Converting R5→R4 on read would
  silently drop what R4 cannot say; storing the converter's own R4 output keeps the R4 writer the
  single place that decides that mapping;
- every write runs inside :meth:`Store.transaction`; a transaction Bundle is one such transaction.

Both backends implement the same protocol (``transaction()`` → a :class:`Transaction`,
``search()`` taking the backend-neutral :class:`~fhirtrial.server.search.Criterion` list) with
the same SQL, written once here and in :mod:`~fhirtrial.server.sqlsearch`; what differs (DDL,
placeholders, planner hints, id numbering, locking) is in :mod:`~fhirtrial.server.dialect` and
in the few hooks a backend overrides.
"""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import (
    ConflictError,
    FhirtrialError,
    GoneError,
    NotFoundError,
    PreconditionFailedError,
)
from ..jsonbytes import dumps_compact
from . import searchparams as sp_mod
from .dialect import SQLITE, SQLITE_MIGRATIONS, SQLITE_SCHEMA, Dialect, latest, statements
from .heldrows import Held, HeldRowsTx, HeldRowsWriter, by_table

if TYPE_CHECKING:
    from .search import Criterion, SortKey


class StoreError(FhirtrialError):
    """The store cannot be used as it is (damaged, unreadable, not a store): one clear line
    for the CLI, a 503 OperationOutcome for a request."""

    issue_code = "transient"
    http_status = 503


class ReadOnlyStoreError(StoreError):
    """A write to a store opened read-only (read-only file, directory or disk)."""

    issue_code = "forbidden"
    http_status = 403


@dataclass(slots=True)
class Stored:
    """One stored resource version, as served."""

    type: str
    id: str
    vid: int
    last_updated: str
    body: bytes | None  # None for a deletion
    rid: int | None = None  # the store's row id, when the store has one (include lookups)

    @property
    def deleted(self) -> bool:
        return self.body is None

    def resource(self) -> dict[str, Any]:
        assert self.body is not None
        return json.loads(self.body)


@dataclass(slots=True)
class HistoryEntry:
    stored: Stored
    method: str  # POST | PUT | DELETE


class Transaction(Protocol):
    """The writes of one all-or-nothing unit of work."""

    def create(self, fv: str, resource: dict[str, Any], rid: str | None = None) -> Stored: ...

    def next_id(self, fv: str, rtype: str) -> str: ...

    def update(self, fv: str, resource: dict[str, Any], *,
               if_match: int | None = None) -> tuple[Stored, bool]: ...

    def delete(self, fv: str, rtype: str, rid: str) -> Stored | None: ...

    def search_ids(self, fv: str, rtype: str, criteria: Sequence[Criterion]) -> list[str]: ...

    def read(self, fv: str, rtype: str, rid: str) -> Stored: ...


class Store(Protocol):
    """What the REST layer needs from storage; SQLiteStore now, PostgreSQL behind it later."""

    def read(self, fv: str, rtype: str, rid: str) -> Stored: ...

    def vread(self, fv: str, rtype: str, rid: str, vid: int) -> Stored: ...

    def history(self, fv: str, rtype: str, rid: str | None, *, since: str | None,
                count: int, offset: int) -> tuple[list[HistoryEntry], int]: ...

    def search(self, fv: str, rtype: str, criteria: Sequence[Criterion], *,
               sort: Sequence[SortKey], offset: int, count: int,
               total: bool) -> tuple[list[Stored], int | None]: ...

    def include(self, fv: str, sources: Sequence[Stored], rtype: str, param: str,
                target: str | None) -> list[Stored]: ...

    def revinclude(self, fv: str, targets: Sequence[Stored], src_type: str,
                   param: str) -> list[Stored]: ...

    def transaction(self) -> Any: ...  # context manager yielding a Transaction

    def counts(self, fv: str) -> dict[str, int]: ...


#: the SQLite schema (kept importable here); see fhirtrial.server.dialect
SCHEMA = SQLITE_SCHEMA
#: bumped when the schema changes; a store with a lower PRAGMA user_version is migrated on open
SCHEMA_VERSION = latest(SQLITE_MIGRATIONS)
INDEX_TABLES = ("idx_token", "idx_string", "idx_date", "idx_ref", "idx_number", "idx_geo")
EARTH_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(a)))


def dumps(resource: dict[str, Any]) -> bytes:
    """The stored (and served) byte form of a resource: compact UTF-8 JSON."""
    return dumps_compact(resource)  # json.dumps(…, separators=(",", ":")), byte for byte


def fhir_instant(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class Conn(Protocol):
    """What the shared SQL runs on: ``sqlite3.Connection`` as it is, or a PostgreSQL
    connection behind :class:`~fhirtrial.server.pgstore.PgConn` (``?`` placeholders)."""

    def execute(self, sql: str, args: Sequence[Any] = ...) -> Any: ...

    def executemany(self, sql: str, rows: Any) -> Any: ...


class SQLStore:
    """Reads, history and search over the shared schema. A backend provides connections
    (:meth:`_reading`, :meth:`_snapshot`, :meth:`transaction`), a remembered :meth:`_count`
    and its :class:`~fhirtrial.server.dialect.Dialect`."""

    dialect: Dialect = SQLITE
    clock: Callable[[], datetime]

    # -- backend hooks
    def _reading(self) -> AbstractContextManager[Conn]:
        raise NotImplementedError

    def _snapshot(self) -> AbstractContextManager[Conn]:
        raise NotImplementedError

    def _count(self, conn: Any, where: str, args: list[Any]) -> int:
        return conn.execute(f"SELECT count(*) FROM current c WHERE {where}",
                            args).fetchone()[0]

    def transaction(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _walk(self, conn: Any, sql: str, args: list[Any]) -> list[Any]:
        """Run a page walk's query (a backend may have to make its planner walk the
        live-resource index in id order, probing each row, and stop at the page's end;
        SQLite: the INDEXED BY hint in the query is enough)."""
        return conn.execute(sql, args).fetchall()

    def close(self) -> None:
        raise NotImplementedError

    def analyze(self) -> None:
        """Refresh the query planner's statistics (after a bulk load)."""
        with self._reading() as conn:
            conn.execute("ANALYZE")

    def describe(self) -> str:
        """Where the store is, for messages (no password)."""
        raise NotImplementedError

    # -- schema
    def schema_version(self) -> int:
        raise NotImplementedError

    def upgrade(self) -> list[int]:
        """Apply the migrations this store lacks; the versions applied (none: up to date)."""
        raise NotImplementedError

    @staticmethod
    def _fetch(conn: Any, rids: Sequence[int]) -> list[Stored]:
        """The stored resources of these rows, in the order given (bodies read only here)."""
        by_rid: dict[int, Stored] = {}
        for start in range(0, len(rids), 500):
            chunk = rids[start:start + 500]
            for r in conn.execute(
                    "SELECT rid, type, id, vid, last_updated, body FROM current WHERE rid IN "
                    f"({','.join('?' * len(chunk))})", chunk):
                by_rid[r[0]] = Stored(r[1], r[2], r[3], r[4], bytes(r[5]), r[0])
        return [by_rid[r] for r in rids if r in by_rid]

    # -- reads
    def read(self, fv: str, rtype: str, rid: str) -> Stored:
        with self._reading() as conn:
            return self._read(conn, fv, rtype, rid)

    @staticmethod
    def _read(conn: Any, fv: str, rtype: str, rid: str) -> Stored:
        row = conn.execute(
            "SELECT vid, last_updated, body FROM current WHERE fv=? AND type=? AND id=?",
            (fv, rtype, rid)).fetchone()
        if row is None:
            raise NotFoundError(f"{rtype}/{rid} is not known", location=f"{rtype}/{rid}")
        if row[2] is None:
            raise GoneError(f"{rtype}/{rid} was deleted (version {row[0]})",
                            location=f"{rtype}/{rid}")
        return Stored(rtype, rid, row[0], row[1], bytes(row[2]))

    def vread(self, fv: str, rtype: str, rid: str, vid: int) -> Stored:
        with self._snapshot() as conn:
            row = conn.execute(
                "SELECT last_updated, method, body FROM versions WHERE fv=? AND type=? AND id=? "
                "AND vid=?", (fv, rtype, rid, vid)).fetchone()
            body = None if row is None else self._version_bodies(
                conn, fv, rtype, [(rid, vid, row[1], row[2])])[0]
        if row is None:
            raise NotFoundError(f"{rtype}/{rid} has no version {vid}",
                                location=f"{rtype}/{rid}/_history/{vid}")
        if body is None:
            raise GoneError(f"{rtype}/{rid} version {vid} is a deletion",
                            location=f"{rtype}/{rid}/_history/{vid}")
        return Stored(rtype, rid, vid, row[0], body)

    @staticmethod
    def _version_bodies(conn: Any, fv: str, rtype: str,
                        rows: Sequence[tuple[str, int, str, Any]]) -> list[bytes | None]:
        """The bodies of versions given as (id, vid, method, versions.body): each body is
        stored once, a superseded version's in ``versions``, the current version's in
        ``current`` only (``versions.body`` NULL there, as for a deletion). A store written
        before schema 5 kept both copies; either way the answer is the same."""
        wanted = sorted({r[0] for r in rows if r[3] is None and r[2] != "DELETE"})
        found: dict[tuple[str, int], bytes] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for cid, cvid, body in conn.execute(
                    "SELECT id, vid, body FROM current WHERE fv=? AND type=? AND id IN "
                    f"({','.join('?' * len(chunk))}) AND body IS NOT NULL",
                    [fv, rtype, *chunk]):
                found[(cid, cvid)] = bytes(body)
        return [bytes(r[3]) if r[3] is not None else found.get((r[0], r[1]))
                for r in rows]

    def history(self, fv: str, rtype: str, rid: str | None, *, since: str | None,
                count: int, offset: int) -> tuple[list[HistoryEntry], int]:
        where = ["fv=?", "type=?"]
        args: list[Any] = [fv, rtype]
        if rid is not None:
            where.append("id=?")
            args.append(rid)
        if since:
            where.append("last_updated>=?")
            args.append(since)
        cond = " AND ".join(where)
        with self._snapshot() as conn:
            total = conn.execute(f"SELECT count(*) FROM versions WHERE {cond}",
                                 args).fetchone()[0]
            if count == 0:  # the count alone (the matching index's freshness check): no sort
                return [], total
            rows = conn.execute(
                f"SELECT id, vid, last_updated, method, body FROM versions WHERE {cond} "
                "ORDER BY last_updated DESC, id, vid DESC LIMIT ? OFFSET ?",
                [*args, count, offset]).fetchall()
            bodies = self._version_bodies(conn, fv, rtype, [(r[0], r[1], r[3], r[4])
                                                           for r in rows])
        return [HistoryEntry(Stored(rtype, r[0], r[1], r[2], body), r[3])
                for r, body in zip(rows, bodies, strict=True)], total

    def counts(self, fv: str) -> dict[str, int]:
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT type, count(*) FROM current WHERE fv=? AND body IS NOT NULL "
                "GROUP BY type", (fv,)).fetchall()
        return {r[0]: r[1] for r in rows}

    def search(self, fv: str, rtype: str, criteria: Sequence[Criterion], *,
               sort: Sequence[SortKey] = (), offset: int = 0, count: int = 20,
               total: bool = True) -> tuple[list[Stored], int | None]:
        from .sqlsearch import compile_search

        where, args = compile_search(fv, rtype, criteria, fts=self.dialect.text_fts)
        with self._snapshot() as conn:
            n = self._count(conn, where, args) if total else None
            if count == 0 or n == 0:
                return [], n
            if sort or n is not None:
                live = None if sort or not criteria else self._count(conn, LIVE, [fv, rtype])
                sql, qargs, walk = self._page_query(fv, rtype, criteria, sort, where, args,
                                                    n, live, offset, count)
                rows = self._walk(conn, sql, qargs) if walk \
                    else conn.execute(sql, qargs).fetchall()
            else:
                rows = self._walk_unknown(conn, fv, rtype, criteria, where, args, offset, count)
            return self._page(conn, rows), n

    #: what a page query selects: SQLite selects row ids, then reads the page's bodies
    #: (:meth:`_fetch`); PostgreSQL reads the bodies of the page's rows in the same query,
    #: one round trip fewer (it sorts row references, not the bodies)
    page_cols = "c.rid"

    def _page(self, conn: Any, rows: Sequence[Any]) -> list[Stored]:
        if self.page_cols == "c.rid":
            return self._fetch(conn, [r[0] for r in rows])
        return [Stored(r[1], r[2], r[3], r[4], bytes(r[5]), r[0]) for r in rows]

    def _page_query(self, fv: str, rtype: str, criteria: Sequence[Criterion],
                    sort: Sequence[SortKey], where: str, args: list[Any], n: int | None,
                    live: int | None, offset: int, count: int) -> tuple[str, list[Any], bool]:
        """The page's query once the count is known: ``(sql, args, walk)``.

        Unsorted, the page is id-ordered and found by walking the type's ``live`` rows in id
        order (the ``current_live`` index), probing each against the criteria and stopping at
        the page's end (``walk``): a search matching a tenth of 100,000 studies then probes
        ~200 rows for a page of 20 instead of collecting and sorting 10,000 ids. The expected
        walk is (offset + count) x live / ``n`` matches rows; when matches are too sparse for
        that to beat collecting them all, and for a sort, the query is driven by the matches
        (row ids sorted, small rows, then only the page's bodies). A ``near`` alone is paged
        in the geo index's order (:func:`~fhirtrial.server.sqlsearch.near_page`), one
        reference value with few enough matches in row order
        (:func:`~fhirtrial.server.sqlsearch.ref_page`)."""
        from .sqlsearch import compile_search, near_page, ref_page

        ordered = None if sort else (near_page(fv, rtype, criteria)
                                     or ref_page(fv, rtype, criteria, n))
        if ordered is not None:
            return self._page_select(ordered[0] + " LIMIT ? OFFSET ?"), [*ordered[1], count,
                                                                         offset], False
        if not sort and n is not None and (
                not criteria or live is None
                or min(offset + count, n) * live / n * len(criteria)
                <= self.dialect.walk_weight * n):
            pwhere, pargs = compile_search(fv, rtype, criteria, probe=True,
                                           probe_tail=self.dialect.probe_tail,
                                           fts=self.dialect.text_fts)
            return (self._page_select(f"FROM current c {self._live_hint()} WHERE {pwhere} "
                                      "ORDER BY c.id LIMIT ? OFFSET ?"),
                    [*pargs, count, offset], True)
        order, oargs = _order_by(rtype, sort)
        return (self._page_select(f"FROM current c WHERE {where} ORDER BY {order} "
                                  "LIMIT ? OFFSET ?"), [*args, *oargs, count, offset], False)

    #: set while a bulk load into this (empty) store has dropped the deferred indexes,
    #: current_live among them: a search through the bulk writer must not name it
    _live_index_missing = False

    def _live_hint(self) -> str:
        return "" if self._live_index_missing else self.dialect.live_hint

    def _page_select(self, page: str) -> str:
        """The page query selecting :attr:`page_cols` of the rows ``page`` (``FROM current c
        … ORDER BY … LIMIT ? OFFSET ?``) names."""
        return f"SELECT {self.page_cols} {page}"

    def _walk_unknown(self, conn: Any, fv: str, rtype: str, criteria: Sequence[Criterion],
                      where: str, args: list[Any], offset: int, count: int) -> list[Any]:
        """An id-ordered page without a count (``_total=none``): a walk over a bounded id
        prefix, kept when it filled the page (the matches within an id prefix are the first
        matches overall); otherwise the page driven by the matches."""
        from .sqlsearch import compile_search, near_page

        if near_page(fv, rtype, criteria) is not None:  # in index order, never by id
            sql, qargs, _ = self._page_query(fv, rtype, criteria, (), where, args, None, None,
                                             offset, count)
            return conn.execute(sql, qargs).fetchall()
        want = offset + count
        hint = self._live_hint()
        pwhere, pargs = compile_search(fv, rtype, criteria, probe=True,
                                       probe_tail=self.dialect.probe_tail,
                                       fts=self.dialect.text_fts)
        walk = f"FROM current c {hint} WHERE {pwhere}"
        page = " ORDER BY c.id LIMIT ? OFFSET ?"
        bound = conn.execute(
            f"SELECT id FROM current {hint} WHERE fv=? AND type=? "
            "AND body IS NOT NULL ORDER BY id LIMIT 1 OFFSET ?",
            (fv, rtype, max(_WALK_BUDGET, want) - 1)).fetchone()
        if bound is None:  # fewer live rows than the budget: the walk covers them all
            return self._walk(conn, self._page_select(walk + page), [*pargs, count, offset])
        rids = self._walk(conn, self._page_select(walk + " AND c.id <= ?" + page),
                          [*pargs, bound[0], count, offset])
        if len(rids) == count:
            return rids
        sql, qargs, _ = self._page_query(fv, rtype, criteria, (), where, args, None, None,
                                         offset, count)
        return conn.execute(sql, qargs).fetchall()

    def include(self, fv: str, sources: Sequence[Stored], rtype: str, param: str,
                target: str | None) -> list[Stored]:
        if not sources:
            return []
        ids = [s.id for s in sources]
        marks = ",".join("?" * len(ids))
        # targets' row ids first (DISTINCT over small rows, not over bodies), then the bodies
        sql = ("SELECT DISTINCT t.rid, t.type, t.id FROM current s "
               "JOIN idx_ref r ON r.rid = s.rid "
               "JOIN current t ON t.fv = s.fv AND t.type = r.ttype AND t.id = r.tid "
               f"WHERE s.fv=? AND s.type=? AND s.id IN ({marks}) AND r.sp=? "
               "AND t.body IS NOT NULL")
        args: list[Any] = [fv, rtype, *ids, f"{rtype}.{param}"]
        if target:
            sql += " AND t.type=?"
            args.append(target)
        with self._statements(1) as conn:
            return self._matching(conn, sql, args)

    def revinclude(self, fv: str, targets: Sequence[Stored], src_type: str,
                   param: str) -> list[Stored]:
        if not targets:
            return []
        out: list[Stored] = []
        with self._statements((len(targets) + 199) // 200) as conn:
            for chunk_start in range(0, len(targets), 200):
                chunk = targets[chunk_start:chunk_start + 200]
                cond = " OR ".join("(r.tid=? AND r.ttype=?)" for _ in chunk)
                args: list[Any] = [f"{src_type}.{param}"]
                for t in chunk:
                    args.extend((t.id, t.type))
                out.extend(self._matching(
                    conn, "SELECT DISTINCT s.rid, s.type, s.id FROM idx_ref r "
                    "JOIN current s ON s.rid = r.rid "
                    f"WHERE r.sp=? AND ({cond}) AND s.fv=? AND s.type=? AND s.body IS NOT NULL",
                    [*args, fv, src_type]))
        return out

    def _statements(self, n: int) -> AbstractContextManager[Any]:
        """A connection for ``n`` matching queries (:meth:`_matching`) that must agree: one
        read transaction (a backend where one query is its own snapshot may skip it for
        ``n == 1``)."""
        return self._snapshot()

    def _matching(self, conn: Any, rid_sql: str, args: list[Any]) -> list[Stored]:
        """The resources of the rows ``rid_sql`` selects (``DISTINCT rid, type, id``: small
        rows, not bodies), by type and id; SQLite reads the ids, then those rows' bodies."""
        return self._fetch(conn, [r[0] for r in conn.execute(rid_sql + " ORDER BY 2, 3",
                                                             args)])

    # -- copying between stores (fhirtrial db copy)
    def export_rows(self, batch: int = 500) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        """Every row of the resource tables, as (table, rows) batches; index tables are not
        exported (the destination rebuilds them from the bodies)."""
        with self._snapshot() as conn:
            for table, cols in (("versions", _VERSION_COLS), ("current", _CURRENT_COLS)):
                cur = conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY "
                                   f"{'fv, type, id, vid' if table == 'versions' else 'rid'}")
                while True:
                    rows = cur.fetchmany(batch)
                    if not rows:
                        break
                    yield table, [tuple(bytes(v) if isinstance(v, memoryview) else v
                                        for v in r) for r in rows]

    def id_counters(self) -> dict[str, int]:
        """The last server-assigned id number per FHIR version."""
        raise NotImplementedError


_VERSION_COLS = ("fv", "type", "id", "vid", "last_updated", "method", "body")
_CURRENT_COLS = ("fv", "type", "id", "vid", "last_updated", "body")


class SQLiteStore(SQLStore):
    """The default :class:`Store`: one SQLite file, WAL, indexes extracted at write time."""

    dialect = SQLITE

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] = sp_mod.utc_now,
                 upgrade: bool = True, readonly: bool = False, immutable: bool = False) -> None:
        """``readonly``: serve reads, refuse every write with :class:`ReadOnlyStoreError`
        (a read-only file or disk; ``immutable`` too where SQLite cannot even create the
        WAL index beside it). Opening problems are :class:`StoreError`; see
        :func:`fhirtrial.server.storeopen.open_sqlite_store` for the checks before that."""
        self.path = Path(path)
        self.clock = clock
        self.readonly = readonly or immutable
        self._uri = (f"{self.path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if immutable
                                                                  else "")
                     if self.readonly else None)
        self._local = threading.local()
        if not self.readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._conn()
        if upgrade and self.schema_version() < SCHEMA_VERSION:
            if self.readonly:
                raise StoreError(f"{self.path} is read-only and was written by an older "
                                 "fhirtrial (or is empty): it cannot be upgraded in place")
            self._migrate(conn)

    def describe(self) -> str:
        return str(self.path)

    @contextmanager
    def bulk(self, *, batch: int = 500) -> Iterator[BulkWriter]:
        """A bulk load: ``batch`` studies per transaction (each study still all-or-nothing,
        through a savepoint), and into an empty store the search indexes built once at the
        end rather than row by row. Use the writer as the store: ``process(writer, …)``."""
        writer = BulkWriter(self, batch)
        writer._begin()
        try:
            yield writer
        except BaseException:
            writer._finish(ok=False)
            raise
        writer._finish(ok=True)

    # -- connections
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._uri or self.path, isolation_level=None,
                                   check_same_thread=False, timeout=30.0,
                                   uri=self._uri is not None)
            if not self.readonly:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA cache_size=-65536")
            conn.create_function("fhirtrial_km", 4, haversine_km, deterministic=True)
            conn.create_function("fhirtrial_phrase", 2, sp_mod.has_phrase, deterministic=True)
            self._local.conn = conn
        return conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        yield self._conn()

    def schema_version(self) -> int:
        return int(self._conn().execute("PRAGMA user_version").fetchone()[0])

    def upgrade(self) -> list[int]:
        before = self.schema_version()
        if before < SCHEMA_VERSION:
            self._migrate(self._conn())
        return [m.version for m in SQLITE_MIGRATIONS if m.version > before]

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        """Create the schema, or bring a store written by an older version up to date (new
        indexes built, superseded ones dropped), in one write transaction. Building indexes
        over a large store takes a while: other processes opening it meanwhile wait for the
        lock (a long busy timeout here), then find the work done."""
        conn.execute("PRAGMA busy_timeout=3600000")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                have = conn.execute("PRAGMA user_version").fetchone()[0]
                if have < SCHEMA_VERSION:
                    analyzed = conn.execute(
                        "SELECT 1 FROM sqlite_master WHERE name='sqlite_stat1'").fetchone()
                    for m in SQLITE_MIGRATIONS:
                        if m.version > have:
                            for stmt in statements(m.sql):
                                conn.execute(stmt)
                            if m.version in _DATA_STEPS:
                                _DATA_STEPS[m.version](conn)
                    if analyzed:  # planner statistics for the new indexes, as the old had
                        for table in INDEX_TABLES:
                            conn.execute(f"ANALYZE {table}")
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.execute("PRAGMA busy_timeout=30000")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[_SQLiteTx]:
        """BEGIN IMMEDIATE … COMMIT; any exception rolls every write back."""
        if self.readonly:
            raise ReadOnlyStoreError(_READ_ONLY.format(self.path))
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise _store_error(self.path, e) or e from None
        try:
            yield _SQLiteTx(self, conn)
        except sqlite3.OperationalError as e:
            if conn.in_transaction:  # SQLite has rolled back already after SQLITE_FULL, IOERR
                conn.execute("ROLLBACK")
            raise _store_error(self.path, e) or e from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise _store_error(self.path, e) or e from None
        # PRAGMA data_version sees other connections' commits, not this one's: count them here
        self._local.commits = getattr(self._local, "commits", 0) + 1

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction, so that several statements see the same data."""
        conn = self._conn()
        if conn.in_transaction:  # inside a write transaction: already consistent
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def _count(self, conn: sqlite3.Connection, where: str, args: list[Any]) -> int:
        """``count(*)`` of a search, remembered until the database changes: paging through
        one search (same criteria, other offsets) counts once, and an unchanged store answers
        repeated searches' totals without touching the indexes. Exact: any commit, by any
        connection or process, invalidates every remembered count."""
        gen = (conn.execute("PRAGMA data_version").fetchone()[0],
               getattr(self._local, "commits", 0))
        cache: dict[Any, int] | None = getattr(self._local, "counts", None)
        if cache is None or getattr(self._local, "counts_gen", None) != gen \
                or len(cache) > _COUNT_CACHE_SIZE:
            cache = self._local.counts = {}
            self._local.counts_gen = gen
        key = (where, tuple(args))
        n = cache.get(key)
        if n is None:
            n = cache[key] = conn.execute(f"SELECT count(*) FROM current c WHERE {where}",
                                          args).fetchone()[0]
        return n

    def id_counters(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self._conn().execute("SELECT fv, n FROM seq")}


_READ_ONLY = ("this server's store ({}) is read-only (a read-only file, directory or disk): "
              "it serves reads and refuses every write; nothing was stored")


def _store_error(path: Path, e: sqlite3.OperationalError) -> StoreError | None:
    """What SQLite says when the environment, not the request, stops a write (None: not
    that, a fault of the code, which stays what it is)."""
    msg = str(e)
    if "readonly" in msg or "read-only" in msg:
        return ReadOnlyStoreError(_READ_ONLY.format(path))
    if "locked" in msg or "busy" in msg:
        return StoreError(f"the store {path} is locked by another writer for more than 30 s; "
                          "try again")
    if any(w in msg for w in ("disk", "I/O", "unable to open", "malformed")):
        return StoreError(f"the store {path} failed a write ({msg}); nothing was stored")
    return None


_COUNT_CACHE_SIZE = 512
#: live rows a page walk without a known count may probe before giving up on it
_WALK_BUDGET = 5000
#: the live rows of a type (the walk's denominator; its count is remembered as a search's)
LIVE = "c.fv=? AND c.type=? AND c.body IS NOT NULL"


def _order_by(rtype: str, sort: Sequence[SortKey]) -> tuple[str, list[Any]]:
    parts: list[str] = []
    args: list[Any] = []
    for key in sort:
        desc = " DESC" if key.descending else ""
        if key.name == "_id":
            parts.append(f"c.id{desc}")
        elif key.name == "_lastUpdated":
            parts.append(f"c.last_updated{desc}")
        else:
            table, col = {
                "string": ("idx_string", "norm"), "token": ("idx_token", "code"),
                "uri": ("idx_token", "code"), "number": ("idx_number", "value"),
                "quantity": ("idx_number", "value"),
                "date": ("idx_date", "hi" if key.descending else "lo"),
                "reference": ("idx_ref", "raw"),
            }[key.type]
            agg = "max" if key.descending else "min"
            # resources without a value sort last, whatever the direction
            parts.append(f"(SELECT {agg}({col}) FROM {table} WHERE rid=c.rid AND sp=?) IS NULL")
            parts.append(f"(SELECT {agg}({col}) FROM {table} WHERE rid=c.rid AND sp=?){desc}")
            args.extend((f"{rtype}.{key.name}", f"{rtype}.{key.name}"))
    parts.append("c.id")
    return ", ".join(parts), args


def _token_params() -> set[str]:
    """The ``sp`` keys (``ResearchStudy.condition``) of every token search parameter."""
    return {f"{rt}.{p.name}" for table in sp_mod.REGISTRY.values()
            for rt, params in table.items() for p in params.values() if p.type == "token"}


def _add_word_rows(conn: sqlite3.Connection) -> None:
    """Schema 3: the word-suffix token rows (see ``searchparams.word_suffixes``) of every
    token text already indexed, which is exactly what indexing the resources again adds.
    Rows already there are not added again (a bulk load killed before its indexes were built
    is migrated from version 1 with its word rows written). Schema 7 removes them again;
    a store written under schema 7 (a bulk load killed before its indexes were built,
    migrated from version 1) has none and gets none."""
    if _text_indexed(conn):
        return
    token_params = _token_params()
    have = set(conn.execute(
        "SELECT rid, sp, text FROM idx_token WHERE code IS NULL AND system IS NULL"))
    rows = conn.execute("SELECT rid, sp, text FROM idx_token WHERE text IS NOT NULL").fetchall()
    conn.executemany("INSERT INTO idx_token VALUES (?,?,NULL,NULL,?)",
                     sorted({(rid, sp, w) for rid, sp, text in rows if sp in token_params
                             for w in sp_mod.word_suffixes(text)} - have))


def word_rows(conn: Any) -> list[int]:
    """The row ids of the word-suffix rows among idx_token's: per resource row and token
    parameter, the rows that indexing with ``word_rows`` added after its texts (see
    ``searchparams.word_suffixes``). A row without system and code whose text is a word
    suffix of a longer text of the same row and parameter is one of them, once per text it
    is a suffix of: a concept whose own text is that suffix (a study with the conditions
    "Pulmonary Fibrosis" and "Fibrosis") keeps its row. Texts are taken longest first, each
    a text of its own unless a longer one accounts for it."""
    token_params = _token_params()
    out: list[int] = []
    cur = conn.execute("SELECT rid, sp, rowid, code IS NULL AND system IS NULL, text "
                       "FROM idx_token WHERE text IS NOT NULL ORDER BY rid, sp")
    for (_, sp), group in itertools.groupby(cur, key=lambda r: (r[0], r[1])):
        if sp not in token_params:
            continue
        owed: Counter[str] = Counter()
        for _, _, rowid, bare, text in sorted(group, key=lambda r: -len(r[4])):
            if bare and owed[text] > 0:
                owed[text] -= 1
                out.append(rowid)
            else:
                owed.update(sp_mod.word_suffixes(text))
    return out


def _documents(rows: Iterable[tuple[int, str, str]]) -> list[tuple[int, str]]:
    """``(rid, sp, text)`` rows, grouped by rid → each resource's full-text document."""
    out = []
    for rid, group in itertools.groupby(rows, key=lambda r: r[0]):
        doc = sp_mod.text_document((sp, text) for _, sp, text in group)
        if doc:
            out.append((rid, doc))
    return out


def put_texts(conn: Any, tables_by_rid: dict[int, dict[str, list[tuple[Any, ...]]]]) -> None:
    """The full-text documents (``idx_text``) of resources whose index rows (per table, as
    :func:`index_rows` gives them) are being written."""
    docs = _documents((r[0], r[1], r[4]) for rid in tables_by_rid
                      for r in tables_by_rid[rid].get("idx_token", ()) if r[4])
    conn.executemany("INSERT INTO idx_text (rowid, words) VALUES (?, ?)", docs)


def drop_text(conn: Any, rid: int) -> None:
    """Remove a resource's full-text document, before its idx_token rows go: a contentless
    FTS5 entry is deleted by giving the words it was indexed with, which its texts in
    idx_token give again (the order of its words does not matter to the delete)."""
    rows = conn.execute("SELECT rid, sp, text FROM idx_token WHERE rid=? AND text IS NOT NULL",
                        (rid,)).fetchall()
    for _, doc in _documents(rows):
        conn.execute("INSERT INTO idx_text (idx_text, rowid, words) VALUES ('delete', ?, ?)",
                     (rid, doc))


def index_texts(conn: Any, after: int = 0) -> None:
    """The full-text documents of every resource with a row id above ``after``, from its
    texts in idx_token (a migration; index rows copied in SQL), a window of row ids at a
    time."""
    top = conn.execute("SELECT max(rid) FROM idx_token").fetchone()[0] or 0
    for lo in range(after, top, 5000):
        rows = conn.execute("SELECT rid, sp, text FROM idx_token WHERE rid > ? AND rid <= ? "
                            "AND text IS NOT NULL ORDER BY rid", (lo, lo + 5000)).fetchall()
        conn.executemany("INSERT INTO idx_text (rowid, words) VALUES (?, ?)", _documents(rows))


def _text_indexed(conn: sqlite3.Connection) -> bool:
    """Whether the store's texts were written under schema 7 (its full-text index holds
    entries before the schema-7 step ran: a bulk load killed before building its indexes
    left ``user_version`` 1): no word rows then, none to add or to remove."""
    return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE name='idx_text_idx'").fetchone()
                and conn.execute("SELECT EXISTS (SELECT 1 FROM idx_text_idx)").fetchone()[0])


def _text_index(conn: sqlite3.Connection) -> None:
    """Schema 7: the word-suffix rows go (:func:`word_rows`; ``:text`` reads the full-text
    index instead) and the full-text index is built over what remains, from scratch (a bulk
    load killed under this schema, migrated from version 1, had indexed part of it).

    Exact for rows written by indexing (a resource's own text and the word row of another's
    text are both kept when they are alike). A store that gained its word rows from the
    schema-3 step has one row where indexing wrote two: the step then takes the resource's
    own row for the word row, which ``:text`` does not miss (the longer text it is a word
    suffix of matches every phrase it matches) and nothing else reads (no system, no
    code)."""
    drop = [] if _text_indexed(conn) else word_rows(conn)
    for start in range(0, len(drop), 10000):
        conn.executemany("DELETE FROM idx_token WHERE rowid=?",
                         [(r,) for r in drop[start:start + 10000]])
    conn.execute("INSERT INTO idx_text (idx_text) VALUES ('delete-all')")
    index_texts(conn)


#: indexes a bulk load into an empty store builds once at the end (one sort each) instead of
#: row by row: every value-leading index. Those a load itself reads stay: the token code index
#: (conditional updates look identifiers up) and the rid-leading ones (an update clears the
#: previous version's index rows).
DEFERRED_INDEXES = ("versions_type_time", "current_live", "idx_token_text_c",
                    "idx_string_norm_c", "idx_string_exact_c", "idx_date_lo_c",
                    "idx_date_hi_c", "idx_ref_target_c", "idx_number_value_c", "idx_geo_lat_c",
                    "idx_geo_cell_c", *("idx_token_code_c", "idx_token_system_c"))
#: of the deferred indexes, those a conditional write's search (``identifier=…``) needs: built
#: when a bulk load first searches, not at its end (a load of PUTs by id never does)
SEARCHED_DURING_LOAD = ("idx_token_code_c", "idx_token_system_c")


class BulkWriter(HeldRowsWriter):
    """Many studies per SQLite transaction, for ``fhirtrial load``; see :meth:`SQLiteStore.bulk`.

    Quacks like the store (reads, searches) except that :meth:`transaction` opens a
    *savepoint* inside the current batch transaction: a study that fails rolls back alone,
    as with its own transaction, and every ``batch`` studies the batch commits. Into an empty
    store the :data:`DEFERRED_INDEXES` are dropped first and built once at the end; while they
    are missing the store's ``user_version`` is 1, so a load that is killed leaves a store
    that rebuilds them (the schema migration) when next opened.

    Index rows are held back per resource (row id) and written table by table, one
    ``executemany`` each, when the batch commits, or earlier when something is about to read
    the index tables (a conditional write's search, a search through the writer): a study's
    few dozen rows spread over six tables cost more written one resource at a time than
    inserting them. The bookkeeping (:mod:`.heldrows`) is the PostgreSQL writer's too.
    """

    def __init__(self, store: SQLiteStore, batch: int) -> None:
        self.store = store
        self.batch = max(1, batch)
        self.conn = store._conn()
        self.units = 0
        self.deferred = False
        self.pending: Held = {}
        self.tx: _SQLiteBulkTx | None = None
        self.temp_store = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def _begin(self) -> None:
        conn = self.conn
        empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM current)").fetchone()[0]
        if empty:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("PRAGMA user_version=1")
            for name in DEFERRED_INDEXES:
                conn.execute(f"DROP INDEX IF EXISTS {name}")
            conn.execute("COMMIT")
            self.deferred = True
            self.store._live_index_missing = True
        # the savepoint of each study keeps the pages it modifies that the batch had already
        # modified (the tails of every table and index) in a statement journal: in memory
        # rather than a temporary file (half of a load's page writes were to it). Restored
        # before the index build, whose sorts must be able to spill to disk
        self.temp_store = conn.execute("PRAGMA temp_store").fetchone()[0]
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("BEGIN IMMEDIATE")

    def search_indexes(self) -> None:
        """Before a search inside the load: the token indexes a conditional write's search
        reads, built now if the load deferred them (a load of PUTs by id builds them once at
        the end, with the others). Each search asks again (``IF NOT EXISTS``: nothing to do
        once built), since a study that rolls back its savepoint takes the build with it."""
        if self.deferred:
            for stmt in _SEARCHED_DDL:
                self.conn.execute(stmt)

    def search(self, *args: Any, **kwargs: Any) -> Any:
        self.search_indexes()
        return super().search(*args, **kwargs)

    def _write_held(self, held: Held) -> None:
        """Insert held-back index rows, one ``executemany`` per table, and the resources'
        full-text documents."""
        for table, rows in by_table(held).items():
            self.conn.executemany(INSERT_INDEX[table], rows)
        put_texts(self.conn, held)

    def _commit(self) -> None:
        self.flush()
        self.conn.execute("COMMIT")
        local = self.store._local
        local.commits = getattr(local, "commits", 0) + 1

    @contextmanager
    def transaction(self) -> Iterator[_SQLiteTx]:
        """One study's writes: a savepoint in the open batch, rolled back alone on error."""
        conn = self.conn
        conn.execute("SAVEPOINT study")
        tx = self.tx = _SQLiteBulkTx(self.store, conn, self)
        try:
            yield tx
        except BaseException:
            self.tx = None
            conn.execute("ROLLBACK TO study")
            conn.execute("RELEASE study")
            self._study_failed(tx)
            raise
        self.tx = None
        conn.execute("RELEASE study")
        self._study_succeeded(tx)
        self.units += 1
        if self.units % self.batch == 0:
            self._commit()
            conn.execute("BEGIN IMMEDIATE")

    def _finish(self, ok: bool) -> None:
        """Commit the studies written; build the deferred indexes (on success)."""
        try:
            if self.conn.in_transaction:
                self._commit()
        finally:
            if not self.conn.in_transaction:
                self.conn.execute(f"PRAGMA temp_store={int(self.temp_store)}")
        if self.deferred and ok:
            # the deferred indexes (the schema's CREATE INDEX IF NOT EXISTS), and the current
            # version: every row was written by today's indexing, full-text entries included
            conn = self.conn
            threads = conn.execute("PRAGMA threads").fetchone()[0]
            conn.execute(f"PRAGMA threads={_SORT_THREADS}")
            conn.execute("BEGIN IMMEDIATE")
            for stmt in statements(SQLITE_SCHEMA):
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
            conn.execute(f"PRAGMA threads={int(threads)}")
            self.deferred = False
            self.store._live_index_missing = False





#: helper threads SQLite's sorter may use to build the deferred indexes of a bulk load (the
#: two cores of a small machine: ~13 % off the index build of 50,000 studies)
_SORT_THREADS = 2

#: migrations that add rows, not only DDL (by schema version)
_DATA_STEPS = {3: _add_word_rows, 7: _text_index}


INSERT_INDEX = {"idx_token": "INSERT INTO idx_token VALUES (?,?,?,?,?)",
                "idx_string": "INSERT INTO idx_string VALUES (?,?,?,?)",
                "idx_date": "INSERT INTO idx_date VALUES (?,?,?,?)",
                "idx_ref": "INSERT INTO idx_ref VALUES (?,?,?,?,?)",
                "idx_number": "INSERT INTO idx_number VALUES (?,?,?,?,?)",
                "idx_geo": "INSERT INTO idx_geo VALUES (?,?,?)"}


def index_rows(fv: str, rtype: str, rowid: int, resource: dict[str, Any],
               now: str, *, word_rows: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """The search-index rows of one resource version (lastUpdated ``now``), per index table,
    in each table's column order; tables without rows are left out. ``word_rows``: token
    texts' word-suffix rows too (the PostgreSQL store's; SQLite has ``idx_text``)."""
    rows = sp_mod.extract(fv, resource, word_rows=word_rows)
    pre = f"{rtype}."
    lu = sp_mod.index_date(now)
    if lu:
        rows.date.append(("_lastUpdated", *lu))
    out: dict[str, list[tuple[Any, ...]]] = {}
    if rows.token:
        out["idx_token"] = [(rowid, pre + p, s, c, t) for p, s, c, t in rows.token]
    if rows.string:
        out["idx_string"] = [(rowid, pre + p, n, e) for p, n, e in rows.string]
    if rows.date:
        out["idx_date"] = [(rowid, pre + p, lo, hi) for p, lo, hi in rows.date]
    if rows.reference:
        out["idx_ref"] = [(rowid, pre + p, t, i, raw) for p, t, i, raw in rows.reference]
    if rows.number:
        out["idx_number"] = [(rowid, pre + p, v, s, c) for p, v, s, c in rows.number]
    if rows.geo:
        out["idx_geo"] = [(rowid, la, lo) for la, lo in rows.geo]
    return out


def _as_stored(resource: dict[str, Any], vid: int, last_updated: str
               ) -> tuple[dict[str, Any], bytes]:
    """A version of ``resource`` as stored and served, and its bytes: meta's versionId and
    lastUpdated set, in resourceType, id, meta order, as most servers serve it."""
    given = resource.get("meta")
    meta = dict(given) if isinstance(given, dict) else {}  # (not an object: the server's own)
    meta["versionId"] = str(vid)
    meta["lastUpdated"] = last_updated
    ordered = {"resourceType": resource["resourceType"], "id": resource["id"], "meta": meta}
    ordered.update((k, v) for k, v in resource.items() if k not in ordered)
    return ordered, dumps(ordered)


class SQLTx:
    """Writes inside one open transaction: the SQL both backends share. A backend overrides
    :meth:`_lock` / :meth:`_lock_conditional` (what two concurrent writers must not decide on
    at once) and :meth:`_next_number`."""

    def __init__(self, store: SQLStore, conn: Any) -> None:
        self.store = store
        self.conn = conn
        self.now = fhir_instant(store.clock())

    # -- backend hooks
    def _lock(self, fv: str, rtype: str, rid: str) -> None:
        """Before reading a resource's row to decide on a write (SQLite: BEGIN IMMEDIATE has
        already serialised every writer)."""

    def _lock_conditional(self, fv: str, rtype: str) -> None:
        """Before a conditional write's search, which decides create-or-update."""

    def _batch(self) -> AbstractContextManager[Any]:
        """Around statements whose results are not read (SQLite: nothing to gain)."""
        return nullcontext()

    def _next_number(self, fv: str) -> int:
        row = self.conn.execute(
            "INSERT INTO seq (fv, n) VALUES (?, 1) ON CONFLICT (fv) DO UPDATE SET n = n + 1 "
            "RETURNING n", (fv,)).fetchone()
        return int(row[0])

    # -- shared
    def read(self, fv: str, rtype: str, rid: str) -> Stored:
        return self.store._read(self.conn, fv, rtype, rid)

    def search_ids(self, fv: str, rtype: str, criteria: Sequence[Criterion]) -> list[str]:
        from .sqlsearch import compile_search

        self._lock_conditional(fv, rtype)
        where, args = compile_search(fv, rtype, criteria, fts=self.store.dialect.text_fts)
        rows = self.conn.execute(f"SELECT c.id FROM current c WHERE {where} LIMIT 2",
                                 args).fetchall()
        return [r[0] for r in rows]

    def next_id(self, fv: str, rtype: str) -> str:
        """A server-assigned id: a per-store sequence (deterministic, unlike uuid4), skipping
        any id a client already chose."""
        while True:
            rid = str(self._next_number(fv))
            if self.conn.execute("SELECT 1 FROM current WHERE fv=? AND type=? AND id=?",
                                 (fv, rtype, rid)).fetchone() is None:
                return rid

    def _row(self, fv: str, rtype: str, rid: str) -> Any:
        self._lock(fv, rtype, rid)
        return self.conn.execute(
            "SELECT rid, vid, body IS NULL FROM current WHERE fv=? AND type=? AND id=?",
            (fv, rtype, rid)).fetchone()

    def create(self, fv: str, resource: dict[str, Any], rid: str | None = None) -> Stored:
        """Store a new resource under ``rid`` (pre-assigned in a transaction) or a new id."""
        resource = dict(resource)
        rtype = resource["resourceType"]
        resource["id"] = rid or self.next_id(fv, rtype)
        row = self._row(fv, rtype, resource["id"])
        if row is not None and not row[2]:
            raise ConflictError(f"{rtype}/{resource['id']} already exists")
        stored, _ = self._write(fv, resource, row, "POST")
        return stored

    def update(self, fv: str, resource: dict[str, Any], *,
               if_match: int | None = None) -> tuple[Stored, bool]:
        row = self._row(fv, resource["resourceType"], resource["id"])
        if if_match is not None:
            if row is None or row[2]:
                raise PreconditionFailedError(
                    f"If-Match version {if_match} given, but {resource['resourceType']}/"
                    f"{resource['id']} does not exist")
            if row[1] != if_match:
                raise PreconditionFailedError(
                    f"If-Match version {if_match} does not match the current version {row[1]}")
        if row is not None and not row[2]:
            same = self._unchanged(fv, resource, row)
            if same is not None:
                return same, False
        return self._write(fv, dict(resource), row, "PUT")

    def _unchanged(self, fv: str, resource: dict[str, Any], row: Any) -> Stored | None:
        """The current version, when ``resource`` is its content byte for byte (meta's
        versionId and lastUpdated aside): an update that changes nothing is no new version,
        as HAPI's default. A sponsor Organization is one resource across every study that
        names it, so each study's load, push or sync PUTs it again: without this each one
        added a version (a sponsor of thousands of trials got thousands, all alike) and
        rewrote its index rows."""
        cur = self.conn.execute("SELECT last_updated, body FROM current WHERE rid=?",
                                (row[0],)).fetchone()
        _, body = _as_stored(resource, row[1], cur[0])
        if body != bytes(cur[1]):
            return None
        return Stored(resource["resourceType"], resource["id"], row[1], cur[0], body)

    def delete(self, fv: str, rtype: str, rid: str) -> Stored | None:
        row = self._row(fv, rtype, rid)
        if row is None or row[2]:
            return None  # deleting what is absent or already deleted succeeds (idempotent)
        vid = row[1] + 1
        with self._batch():
            self._clear_indexes(row[0])
            self._supersede(fv, rtype, rid, row)
            self.conn.execute("UPDATE current SET vid=?, last_updated=?, body=NULL WHERE rid=?",
                              (vid, self.now, row[0]))
            self.conn.execute("INSERT INTO versions VALUES (?,?,?,?,?,?,NULL)",
                              (fv, rtype, rid, vid, self.now, "DELETE"))
        return Stored(rtype, rid, vid, self.now, None)

    def _supersede(self, fv: str, rtype: str, rid: str, row: Any) -> None:
        """Before ``current`` changes: the body it holds becomes its version's (a version's
        body is stored once, in ``current`` while it is the current one)."""
        if not row[2]:
            self.conn.execute(
                "UPDATE versions SET body = (SELECT body FROM current WHERE rid=?) "
                "WHERE fv=? AND type=? AND id=? AND vid=?", (row[0], fv, rtype, rid, row[1]))

    def _clear_indexes(self, rowid: int) -> None:
        for table in INDEX_TABLES:
            self.conn.execute(f"DELETE FROM {table} WHERE rid=?", (rowid,))

    def _write(self, fv: str, resource: dict[str, Any], row: Any,
               method: str) -> tuple[Stored, bool]:
        rtype, rid = resource["resourceType"], resource["id"]
        vid = 1 if row is None else row[1] + 1
        ordered, body = _as_stored(resource, vid, self.now)
        with self._batch():  # pipelined (PostgreSQL): the new row id is read last
            if row is None:
                cur = self.conn.execute(
                    "INSERT INTO current (fv, type, id, vid, last_updated, body) "
                    "VALUES (?,?,?,?,?,?) RETURNING rid",
                    (fv, rtype, rid, vid, self.now, body))
            else:
                self._clear_indexes(row[0])
                self._supersede(fv, rtype, rid, row)
                self.conn.execute("UPDATE current SET vid=?, last_updated=?, body=? "
                                  "WHERE rid=?", (vid, self.now, body, row[0]))
            self.conn.execute("INSERT INTO versions VALUES (?,?,?,?,?,?,NULL)",
                              (fv, rtype, rid, vid, self.now, method))
            rowid = cur.fetchone()[0] if row is None else row[0]
            self._index(fv, rtype, rowid, ordered)
        created = row is None or bool(row[2])
        return Stored(rtype, rid, vid, self.now, body), created

    #: whether a resource's token rows include its texts' word-suffix rows (``:text``)
    word_rows = True

    def _index(self, fv: str, rtype: str, rowid: int, resource: dict[str, Any]) -> None:
        self._put_index(rowid, index_rows(fv, rtype, rowid, resource, self.now,
                                          word_rows=self.word_rows))

    def _put_index(self, rowid: int, tables: dict[str, list[tuple[Any, ...]]]) -> None:
        """Write one resource's index rows (a bulk load may hold them back and write many
        resources' rows at once)."""
        for table, rows in tables.items():
            self.conn.executemany(INSERT_INDEX[table], rows)

    # -- copying between stores (fhirtrial db copy)
    def import_rows(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        """Rows of :meth:`SQLStore.export_rows`; live ``current`` rows are indexed as they
        are inserted, with their own lastUpdated."""
        if table == "versions":
            self.conn.executemany(
                f"INSERT INTO versions ({', '.join(_VERSION_COLS)}) VALUES (?,?,?,?,?,?,?)",
                rows)
            return
        for fv, rtype, rid, vid, last_updated, body in rows:
            rowid = self.conn.execute(
                "INSERT INTO current (fv, type, id, vid, last_updated, body) "
                "VALUES (?,?,?,?,?,?) RETURNING rid",
                (fv, rtype, rid, vid, last_updated, body)).fetchone()[0]
            if body is not None:
                saved, self.now = self.now, last_updated
                try:
                    self._index(fv, rtype, rowid, json.loads(body))
                finally:
                    self.now = saved

    def raise_counter(self, fv: str, n: int) -> None:
        """The id counter of ``fv`` to at least ``n`` (ids already handed out stay taken)."""
        self.conn.execute("INSERT INTO seq (fv, n) VALUES (?, ?) ON CONFLICT (fv) DO "
                          "UPDATE SET n = max(n, excluded.n)", (fv, n))


class _SQLiteTx(SQLTx):
    """Writes inside one open SQLite transaction (BEGIN IMMEDIATE: one writer at a time).
    Token texts are indexed in ``idx_text`` (no word rows), kept in step with idx_token."""

    word_rows = False

    def _put_index(self, rowid: int, tables: dict[str, list[tuple[Any, ...]]]) -> None:
        super()._put_index(rowid, tables)
        put_texts(self.conn, {rowid: tables})

    def _clear_indexes(self, rowid: int) -> None:
        drop_text(self.conn, rowid)
        super()._clear_indexes(rowid)


class _SQLiteBulkTx(HeldRowsTx, _SQLiteTx):
    """One study inside a bulk load (:class:`BulkWriter`): writes as :class:`_SQLiteTx`, its
    index rows held back (``overlay``) and handed to the writer when the study succeeds."""

    writer: BulkWriter

    def __init__(self, store: SQLStore, conn: Any, writer: BulkWriter) -> None:
        _SQLiteTx.__init__(self, store, conn)
        self._hold(writer)

    def search_ids(self, fv: str, rtype: str, criteria: Sequence[Criterion]) -> list[str]:
        self.writer.search_indexes()
        return super().search_ids(fv, rtype, criteria)


#: the schema's statements creating :data:`SEARCHED_DURING_LOAD`
_SEARCHED_DDL = tuple(st for st in statements(SQLITE_SCHEMA)
                      if any(f" {name} ON " in st for name in SEARCHED_DURING_LOAD))


__all__ = ["BulkWriter", "ConflictError", "HistoryEntry", "ReadOnlyStoreError", "SQLStore", "SQLTx",
           "SQLiteStore", "Store", "StoreError", "Stored", "Transaction"]
