"""The PostgreSQL store: the same schema, queries and FHIR semantics as
:class:`~fhirtrial.server.store.SQLiteStore`, for several server processes on several hosts
sharing one database.

- connections come from a ``psycopg_pool`` pool (autocommit; explicit transactions);
- a write transaction is READ COMMITTED and takes, before it reads what it decides on, a
  transaction-level advisory lock: one per logical id (``fv/type/id``) for creates, updates and
  deletes, one per ``fv/type`` for the search of a conditional create/update. Two servers racing
  on the same resource therefore queue in PostgreSQL, and the second one's next statement sees
  what the first committed: ``If-Match`` loses nothing, conditional creates never duplicate;
- searches run in one REPEATABLE READ READ ONLY transaction (count and page agree); a count is
  remembered per database snapshot (``pg_current_snapshot()``), so it is exact whoever writes;
- a write is acknowledged after COMMIT returns, with PostgreSQL's own durability
  (``synchronous_commit``): a killed server process loses nothing it answered for;
- a deadlock or serialisation failure between writers is a 409 the client may retry, a lost
  database a 503 — never a 500.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool

from ..errors import ConflictError
from . import searchparams as sp_mod
from .dialect import PG_MIGRATIONS, PG_TRIGRAM, POSTGRES, latest, statements
from .dialect import _pg_sql as pg_sql
from .heldrows import Held, HeldRowsTx, HeldRowsWriter, by_table
from .store import (
    _CURRENT_COLS,
    _VERSION_COLS,
    DEFERRED_INDEXES,
    LIVE,
    SQLStore,
    SQLTx,
    Stored,
)
from .stores import StoreUnavailable

if TYPE_CHECKING:
    from .search import Criterion, SortKey

SCHEMA_VERSION = latest(PG_MIGRATIONS)
_SEQ = {"R5": "seq_r5", "R4": "seq_r4"}
#: a fixed key for the advisory lock that serialises schema migrations across servers
_MIGRATION_LOCK = 0x66686972747269  # "fhirtri"
#: held (session level) by a bulk load whose search indexes are deferred: a server opening
#: the store meanwhile leaves them to the load; once the lock is free (the load ended or was
#: killed) the next server to open the store builds what is missing
_BULK_LOCK = 0x66686972747262  # "fhirtrb"
#: the value-leading indexes a bulk load into an empty store builds once at the end (as the
#: SQLite store's), and the trigram index, the costliest to maintain row by row
PG_DEFERRED = (*DEFERRED_INDEXES, "idx_string_trgm")
#: COPY statements per index table (column order as the table's)
_COPY = {"idx_token": "COPY idx_token (rid, sp, system, code, text) FROM STDIN",
         "idx_string": "COPY idx_string (rid, sp, norm, exact) FROM STDIN",
         "idx_date": "COPY idx_date (rid, sp, lo, hi) FROM STDIN",
         "idx_ref": "COPY idx_ref (rid, sp, ttype, tid, raw) FROM STDIN",
         "idx_number": "COPY idx_number (rid, sp, value, system, code) FROM STDIN",
         "idx_geo": "COPY idx_geo (rid, lat, lon) FROM STDIN"}


def describe_url(url: str) -> str:
    """``postgresql://user:secret@host:5432/db`` → ``postgresql://user@host:5432/db``."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://?"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    user = f"{info['user']}@" if info.get("user") else ""
    return f"postgresql://{user}{host}:{port}/{info.get('dbname') or ''}"


#: index and search values are compared on their first 800 UTF-8 bytes: a btree entry holds
#: at most ~2,700 bytes, and the widest index has three text columns (SQLite has no limit)
MAX_TEXT_BYTES = 800


def _clean(args: Sequence[Any]) -> list[Any]:
    """Parameter values PostgreSQL can take, the same way for what is indexed and what is
    searched: NUL (which text cannot hold) becomes U+FFFD, and text longer than
    :data:`MAX_TEXT_BYTES` is cut there (a ``%…%`` pattern keeps its closing ``%``). The
    stored body keeps every character."""
    out = []
    for a in args:
        if isinstance(a, str):
            if "\x00" in a:
                a = a.replace("\x00", "\ufffd")
            if len(a) > MAX_TEXT_BYTES // 4 and len(a.encode("utf-8")) > MAX_TEXT_BYTES:
                contains = len(a) > 1 and a[0] == "%" and a[-1] == "%"
                a = a.encode("utf-8")[:MAX_TEXT_BYTES - 1].decode("utf-8", "ignore")
                if contains:
                    a += "%"
        out.append(a)
    return out


class PgConn:
    """A psycopg connection speaking the shared ``?``-placeholder SQL."""

    __slots__ = ("raw", "snap")

    def __init__(self, raw: psycopg.Connection[Any], snap: str | None = None) -> None:
        self.raw = raw
        self.snap = snap  # the REPEATABLE READ snapshot a read transaction sees

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        # resource bodies in binary: bytea as text is hex, twice the bytes to send and decode
        binary = "body" in sql
        if not args:
            return self.raw.execute(sql, binary=binary)
        return self.raw.execute(pg_sql(sql), _clean(args), binary=binary)

    def executemany(self, sql: str, rows: Any) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(pg_sql(sql), [_clean(r) for r in rows])


@contextmanager
def _db_errors(where: str) -> Iterator[None]:
    """psycopg failures → the store's errors (409 retry, 503 unavailable)."""
    try:
        yield
    except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure,
            psycopg.errors.LockNotAvailable) as e:
        raise ConflictError(f"A concurrent transaction touched the same resources; retry "
                            f"({e.sqlstate})") from None
    except psycopg.OperationalError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise StoreUnavailable(f"The database {where} is unavailable: {first}") from None


def _configure(c: psycopg.Connection[Any]) -> None:
    """Each pooled connection: no JIT compilation. A FHIR search is a few milliseconds of
    index reads; JIT, which PostgreSQL starts from a cost estimate (a count over 100,000
    rows reaches it), added 40-50 ms to such queries at 100,000 studies."""
    c.execute("SET jit = off")


_BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
_SNAPSHOT = "SELECT pg_current_snapshot()::text"



class PostgresStore(SQLStore):
    """:class:`~fhirtrial.server.store.Store` on PostgreSQL (``postgresql://…`` URL)."""

    dialect = POSTGRES
    page_cols = "c.rid, c.type, c.id, c.vid, c.last_updated, c.body"

    def __init__(self, url: str, *, clock: Callable[[], datetime] = sp_mod.utc_now,
                 upgrade: bool = True, min_size: int = 1, max_size: int = 8,
                 timeout: float = 10.0) -> None:
        self.url = url
        self.clock = clock
        self._where = describe_url(url)
        self._local = threading.local()
        self._counts: dict[Any, int] = {}
        self._counts_lock = threading.Lock()
        #: the database snapshot this server saw last (a search remembered for it is answered
        #: in one round trip, see :meth:`search`)
        self._last_snap: str | None = None
        # one direct connection first: a wrong host, database or password is one clear line
        # now, not a pool timeout later
        with _db_errors(self._where), psycopg.connect(url, connect_timeout=10):
            pass
        self.pool = ConnectionPool(url, min_size=min_size, max_size=max(min_size, max_size),
                                   kwargs={"autocommit": True}, timeout=timeout,
                                   configure=_configure, name="fhirtrial", open=False)
        with _db_errors(self._where):
            self.pool.open(wait=True, timeout=max(timeout, 30.0))
        if upgrade:
            self.upgrade()

    def describe(self) -> str:
        return self._where

    def close(self) -> None:
        self.pool.close()

    # -- connections
    @contextmanager
    def _reading(self) -> Iterator[PgConn]:
        tx = getattr(self._local, "conn", None)
        if tx is not None:  # inside this thread's write transaction: see its writes
            yield tx
            return
        with _db_errors(self._where), self.pool.connection() as c:
            yield PgConn(c)

    @contextmanager
    def _snapshot(self) -> Iterator[PgConn]:
        tx = getattr(self._local, "conn", None)
        if tx is not None:
            yield tx
            return
        with _db_errors(self._where), self.pool.connection() as c:
            # one round trip: the transaction, and the snapshot it sees (the count cache key)
            cur = c.execute(f"{_BEGIN_READ}; {_SNAPSHOT}")
            cur.nextset()
            snap = cur.fetchone()
            if snap:
                self._last_snap = snap[0]
            try:
                yield PgConn(c, snap[0] if snap else None)
            finally:
                c.execute("COMMIT")  # read-only: nothing to lose; also ends a failed one

    @contextmanager
    def transaction(self) -> Iterator[_PgTx]:
        """BEGIN (READ COMMITTED) … COMMIT; any exception rolls every write back."""
        if getattr(self._local, "conn", None) is not None:
            raise RuntimeError("a transaction is already open in this thread")
        with _db_errors(self._where), self.pool.connection() as c, c.transaction():
            conn = self._local.conn = PgConn(c)
            try:
                yield _PgTx(self, conn)
            finally:
                self._local.conn = None

    def search(self, fv: str, rtype: str, criteria: Sequence[Criterion], *,
               sort: Sequence[SortKey] = (), offset: int = 0, count: int = 20,
               total: bool = True) -> tuple[list[Stored], int | None]:
        if total and getattr(self._local, "conn", None) is None:
            found = self._search_remembered(fv, rtype, criteria, sort, offset, count)
            if found is not None:
                return found
        return super().search(fv, rtype, criteria, sort=sort, offset=offset, count=count,
                              total=total)

    def _search_remembered(self, fv: str, rtype: str, criteria: Sequence[Criterion],
                           sort: Sequence[SortKey], offset: int,
                           count: int) -> tuple[list[Stored], int] | None:
        """A search whose count (and the live rows it weighs a walk by) this server remembers
        for the snapshot it saw last: its page in one statement, which also returns the
        snapshot it read (``pg_current_snapshot()`` is the statement's own in autocommit); the
        answer stands only when that is the same snapshot (nothing committed since, so the
        remembered count is exact for it), otherwise None and the search runs as usual. One
        round trip instead of three (BEGIN and snapshot, page, COMMIT): on a busy host each
        waits for a process to be scheduled, and across a network for the network; the
        query itself is a fraction of a millisecond to a few."""
        from .sqlsearch import compile_search

        snap = self._last_snap
        if snap is None:
            return None
        where, args = compile_search(fv, rtype, criteria, fts=self.dialect.text_fts)
        n = self._counts.get((snap, where, tuple(args)))
        live = None
        if not sort and criteria:
            live = self._counts.get((snap, LIVE, (fv, rtype)))
            if live is None:
                return None
        if n is None:
            return None
        if count == 0 or n == 0:
            sql, qargs = _SNAPSHOT, []
        else:
            page, pargs, _ = self._page_query(fv, rtype, criteria, sort, where, args, n, live,
                                              offset, count)
            sql = (f"SELECT s.snap, p.* FROM ({_SNAPSHOT} AS snap) s "
                   f"LEFT JOIN LATERAL ({page}) p ON true ORDER BY p.k")
            qargs = pargs
        with self._reading() as conn:
            rows = conn.execute(sql, qargs).fetchall()
        now = rows[0][0]
        self._last_snap = now
        if now != snap:
            return None
        if len(rows[0]) == 1:  # no page asked or none to find: the snapshot alone
            return [], n
        return self._page(None, [r[1:] for r in rows if r[1] is not None]), n

    def _page_select(self, page: str) -> str:
        """The page's row ids first, the ordered query reading only index entries (the
        covering ``current_live`` for a walk, ``current_rid_live`` for matches collected from
        the search indexes), then those rows with their bodies, in the same statement; a
        query reading whole rows fetched every walked or matched row from the table (452
        matches of a ``near`` at 100,000 studies: 9.6 -> 4.6 ms)."""
        return (f"SELECT {self.page_cols}, p.k FROM unnest(ARRAY(SELECT c.rid {page})) "
                "WITH ORDINALITY AS p(rid, k) JOIN current c ON c.rid = p.rid ORDER BY p.k")

    def _statements(self, n: int) -> Any:
        """One query is its own snapshot: no transaction around it (no BEGIN and COMMIT
        round trips)."""
        return self._reading() if n == 1 else self._snapshot()

    def _matching(self, conn: Any, rid_sql: str, args: list[Any]) -> list[Stored]:
        """The rows and their bodies in one query (the DISTINCT still over small rows)."""
        rows = conn.execute(f"SELECT {self.page_cols} FROM current c WHERE c.rid IN "
                            f"(SELECT m.rid FROM ({rid_sql}) m) ORDER BY c.type, c.id",
                            args).fetchall()
        return self._page(conn, rows)

    def _count(self, conn: Any, where: str, args: list[Any]) -> int:
        """``count(*)`` remembered per database snapshot: equal snapshots see equal data, so
        a remembered count is exact; any commit anywhere gives a new snapshot."""
        sql = f"SELECT count(*) FROM current c WHERE {where}"
        if conn.snap is None:  # not a read snapshot (a write transaction sees its own writes)
            return int(conn.execute(sql, args).fetchone()[0])
        key = (conn.snap, where, tuple(args))
        n = self._counts.get(key)
        if n is None:
            n = int(conn.execute(sql, args).fetchone()[0])
            with self._counts_lock:
                if len(self._counts) > 512:
                    self._counts.clear()
                self._counts[key] = n
        return n

    def analyze(self) -> None:
        """VACUUM ANALYZE: planner statistics and the visibility map that lets counts and
        page walks read the indexes only (after a bulk load)."""
        with self._reading() as conn:
            conn.execute("VACUUM ANALYZE")

    # -- schema
    def schema_version(self) -> int:
        with self._reading() as conn:
            return self._version(conn)

    @staticmethod
    def _version(conn: PgConn) -> int:
        """The schema version (0: no schema yet); reads only."""
        if conn.execute("SELECT to_regclass('fhirtrial_schema')").fetchone() == (None,):
            return 0
        row = conn.execute("SELECT max(version) FROM fhirtrial_schema").fetchone()
        return int(row[0] or 0) if row else 0

    def upgrade(self) -> list[int]:
        """Apply missing migrations, each in its own transaction, under an advisory lock so
        that servers starting together migrate once."""
        applied: list[int] = []
        with _db_errors(self._where), self.pool.connection() as c:
            conn = PgConn(c)
            c.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
            try:
                c.execute("CREATE TABLE IF NOT EXISTS fhirtrial_schema (version INTEGER NOT "
                          "NULL, applied TIMESTAMPTZ NOT NULL DEFAULT now(), why TEXT NOT NULL)")
                have = self._version(conn)
                for m in PG_MIGRATIONS:
                    if m.version <= have:
                        continue
                    with c.transaction():
                        for stmt in statements(m.sql):
                            c.execute(stmt)
                        self._trigram(c)
                        c.execute("INSERT INTO fhirtrial_schema (version, why) VALUES (%s, %s)",
                                  (m.version, m.why))
                    applied.append(m.version)
                self._repair(c)
            finally:
                c.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
        return applied

    @staticmethod
    def _missing_indexes(c: psycopg.Connection[Any]) -> list[str]:
        have = {r[0] for r in c.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
            "AND indexname = ANY(%s)", (list(DEFERRED_INDEXES),))}
        return [n for n in DEFERRED_INDEXES if n not in have]

    def _repair(self, c: psycopg.Connection[Any]) -> None:
        """Build the search indexes a killed bulk load left out (none missing: one query).
        A bulk load still running holds :data:`_BULK_LOCK` and builds them itself."""
        if not self._missing_indexes(c):
            return
        if not c.execute("SELECT pg_try_advisory_lock(%s)", (_BULK_LOCK,)).fetchone()[0]:
            return
        try:
            self._build_indexes(c)
        finally:
            c.execute("SELECT pg_advisory_unlock(%s)", (_BULK_LOCK,))

    def _build_indexes(self, c: psycopg.Connection[Any]) -> None:
        """The schema's indexes that are missing (its CREATE … IF NOT EXISTS), in one
        transaction, with room to sort."""
        with c.transaction():
            c.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for m in PG_MIGRATIONS:
                for stmt in statements(m.sql):
                    if stmt.lstrip().upper().startswith("CREATE INDEX"):
                        c.execute(stmt)
            self._trigram(c)

    @contextmanager
    def bulk(self, *, batch: int = 500) -> Iterator[PgBulkWriter]:
        """A bulk load, as :meth:`SQLiteStore.bulk <fhirtrial.server.store.SQLiteStore.bulk>`:
        ``batch`` studies per transaction, each study all-or-nothing through a savepoint,
        index rows written with COPY once per batch, and into an empty store the
        value-leading search indexes built once at the end. A killed load keeps its
        committed batches; the next server to open the store builds the indexes."""
        if getattr(self._local, "conn", None) is not None:
            raise RuntimeError("a transaction is already open in this thread")
        with _db_errors(self._where), self.pool.connection() as c:
            writer = PgBulkWriter(self, c, batch)
            self._local.conn = writer.conn
            try:
                writer._begin()
                try:
                    yield writer
                except BaseException:
                    writer._finish(ok=False)
                    raise
                writer._finish(ok=True)
            finally:
                self._local.conn = None
                if c.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    c.rollback()
                if writer.deferred_lock:
                    c.execute("SELECT pg_advisory_unlock(%s)", (_BULK_LOCK,))

    @staticmethod
    def _trigram(c: psycopg.Connection[Any]) -> None:
        """The trigram index for ``:contains``, where the role may create pg_trgm."""
        try:
            with c.transaction():  # a savepoint: a refusal leaves the migration intact
                for stmt in PG_TRIGRAM:
                    c.execute(stmt)
        except psycopg.errors.InsufficientPrivilege:
            pass

    # -- copying
    def export_rows(self, batch: int = 500) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        with _db_errors(self._where), self.pool.connection() as c, c.transaction():
            c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            for table, cols, order in (("versions", _VERSION_COLS, "fv, type, id, vid"),
                                       ("current", _CURRENT_COLS, "rid")):
                with c.cursor(name=f"export_{table}") as cur:  # server-side: streamed
                    cur.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}")
                    while True:
                        rows = cur.fetchmany(batch)
                        if not rows:
                            break
                        yield table, [tuple(rows_) for rows_ in rows]

    def id_counters(self) -> dict[str, int]:
        out = {}
        with self._reading() as conn:
            for fv, seq in _SEQ.items():
                value, called = conn.execute(
                    f"SELECT last_value, is_called FROM {seq}").fetchone() or (0, False)
                if called:
                    out[fv] = int(value)
        return out


class _PgTx(SQLTx):
    """Writes inside one PostgreSQL transaction, serialised per resource by advisory locks."""

    def _lock(self, fv: str, rtype: str, rid: str) -> None:
        self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(CAST(? AS text), 0))",
                          (f"{fv}/{rtype}/{rid}",))

    def _lock_conditional(self, fv: str, rtype: str) -> None:
        self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(CAST(? AS text), 1))",
                          (f"{fv}/{rtype}?",))

    def _batch(self) -> Any:
        """Pipeline mode: the statements go out together, one round trip at the end."""
        return self.conn.raw.pipeline()

    def _row(self, fv: str, rtype: str, rid: str) -> Any:
        """The lock and the row read in one round trip: pipelined statements still run one
        after the other, and under READ COMMITTED the read's snapshot is taken once the
        lock is held, so it sees what the lock's previous holder committed."""
        with self.conn.raw.pipeline():
            self._lock(fv, rtype, rid)
            cur = self.conn.execute(
                "SELECT rid, vid, body IS NULL FROM current WHERE fv=? AND type=? AND id=?",
                (fv, rtype, rid))
        return cur.fetchone()

    def _next_number(self, fv: str) -> int:
        return int(self.conn.execute(f"SELECT nextval('{_SEQ[fv]}')").fetchone()[0])

    def raise_counter(self, fv: str, n: int) -> None:
        seq = _SEQ[fv]
        self.conn.execute(f"SELECT setval('{seq}', GREATEST(?, (SELECT CASE WHEN is_called "
                          f"THEN last_value ELSE 0 END FROM {seq}), 1), ? > 0)", (n, n))


class PgBulkWriter(HeldRowsWriter):
    """Many studies per PostgreSQL transaction, for ``fhirtrial load``; see
    :meth:`PostgresStore.bulk`. Use it as the store: :meth:`transaction` is a savepoint in
    the open batch; reads and searches flush the rows held back first, so they see every
    write made so far.

    Index rows are held back per resource (row id) and written with COPY when the batch
    commits, or earlier when something is about to read the index tables (a conditional
    write's search). The bookkeeping (:mod:`.heldrows`) is the SQLite writer's too."""

    def __init__(self, store: PostgresStore, c: psycopg.Connection[Any], batch: int) -> None:
        self.store = store
        self.raw = c
        self.conn = PgConn(c)
        self.batch = max(1, batch)
        self.units = 0
        self.deferred = False
        self.deferred_lock = False
        self.pending: Held = {}
        self.tx: _PgBulkTx | None = None
        self._outer: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def _begin(self) -> None:
        c = self.raw
        if c.execute("SELECT pg_try_advisory_lock(%s)", (_BULK_LOCK,)).fetchone()[0]:
            self.deferred_lock = True
            with c.transaction():
                c.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                empty = c.execute("SELECT NOT EXISTS (SELECT 1 FROM current)").fetchone()[0]
                if empty:
                    for name in PG_DEFERRED:
                        c.execute(f"DROP INDEX IF EXISTS {name}")
            self.deferred = bool(empty)
            if not empty:
                c.execute("SELECT pg_advisory_unlock(%s)", (_BULK_LOCK,))
                self.deferred_lock = False
        self._open()

    def _open(self) -> None:
        self._outer = self.raw.transaction()
        self._outer.__enter__()

    def _write_held(self, held: Held) -> None:
        """Write held-back index rows, one ``COPY`` per table."""
        with self.raw.cursor() as cur:
            for table, rows in by_table(held).items():
                with cur.copy(_COPY[table]) as cp:
                    for r in rows:
                        cp.write_row(_clean(r))

    def _commit(self) -> None:
        self.flush()
        outer, self._outer = self._outer, None
        outer.__exit__(None, None, None)

    @contextmanager
    def transaction(self) -> Iterator[_PgBulkTx]:
        """One study's writes: a savepoint in the open batch, rolled back alone on error."""
        tx = self.tx = _PgBulkTx(self.store, self.conn, self)
        with _db_errors(self.store._where):
            try:
                with self.raw.transaction():
                    yield tx
            except BaseException:
                self.tx = None
                self._study_failed(tx)
                raise
        self.tx = None
        self._study_succeeded(tx)
        self.units += 1
        if self.units % self.batch == 0:
            with _db_errors(self.store._where):
                self._commit()
                self._open()

    def _finish(self, ok: bool) -> None:
        """Commit the studies written; build the deferred indexes (on success)."""
        with _db_errors(self.store._where):
            if self._outer is not None:
                self._commit()
            if self.deferred and ok:
                self.store._build_indexes(self.raw)
                self.deferred = False


class _PgBulkTx(HeldRowsTx, _PgTx):
    """One study inside a bulk load: writes as :class:`_PgTx` (the same locks), index rows
    held back in the writer."""

    def __init__(self, store: PostgresStore, conn: PgConn, writer: PgBulkWriter) -> None:
        _PgTx.__init__(self, store, conn)
        self._hold(writer)
