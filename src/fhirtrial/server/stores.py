"""``--db`` / ``FHIRTRIAL_DB`` → a store: a SQLite file path (or ``sqlite:///path``), or a
``postgresql://`` URL. Anything else that looks like a URL is refused in one line, before a
file or folder named after it could be created."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import FhirtrialError
from .store import SQLStore

PG_FORM = "postgresql://[user[:password]@]host[:port]/dbname"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_PG_SCHEMES = ("postgresql", "postgres")


class StoreURLError(FhirtrialError, ValueError):
    """A ``--db`` value that names no store this project can open."""

    issue_code = "invalid"
    http_status = 500  # a server configuration error, never a client's


class StoreUnavailable(FhirtrialError):
    """The database cannot be reached (or the pool has no free connection in time)."""

    issue_code = "transient"
    http_status = 503


def classify(db: str) -> tuple[str, str]:
    """→ ("sqlite", path) or ("postgresql", url); :class:`StoreURLError` otherwise."""
    db = db.strip()
    if not db:
        raise StoreURLError("--db is empty: give a SQLite file path or " + PG_FORM)
    m = _SCHEME.match(db)
    scheme = m.group(1).lower() if m else None
    if scheme is None or len(scheme) == 1:  # a path (C:\… is a Windows drive, not a scheme)
        head = db.replace("\\", "/").split("/", 1)[0].lower()
        if head in _PG_SCHEMES and db[len(head):].startswith("//"):
            raise StoreURLError(f"--db {db!r} looks like a PostgreSQL URL missing its ':'; "
                                f"expected {PG_FORM}")
        return "sqlite", db
    if scheme in _PG_SCHEMES:
        if not db[m.end():].startswith("//"):  # type: ignore[union-attr]
            raise StoreURLError(f"--db {db!r} is not a PostgreSQL URL; expected {PG_FORM}")
        try:
            import psycopg.conninfo
            import psycopg_pool  # noqa: F401
        except ImportError:
            raise StoreURLError("--db is a PostgreSQL URL, but psycopg is not installed: "
                                "pip install 'fhirtrial[postgresql]'") from None
        try:
            info = psycopg.conninfo.conninfo_to_dict(db)
        except psycopg.ProgrammingError as e:
            raise StoreURLError(f"--db: malformed PostgreSQL URL ({str(e).strip()}); "
                                f"expected {PG_FORM}") from None
        port = str(info.get("port") or "5432")
        if not all(p.isdigit() for p in port.split(",")):
            raise StoreURLError(f"--db: malformed PostgreSQL URL (port {port!r}); "
                                f"expected {PG_FORM}")
        return "postgresql", db
    if scheme == "sqlite":
        rest = db[m.end():]  # type: ignore[union-attr]
        if not rest.startswith("//") or len(rest) <= 3:
            raise StoreURLError(f"--db {db!r}: expected sqlite:///relative/path or "
                                "sqlite:////absolute/path")
        return "sqlite", rest[3:]
    raise StoreURLError(f"--db {db!r}: {scheme}: databases are not supported; give a SQLite "
                        f"file path or {PG_FORM}")


def open_store(db: str, *, pool_min: int = 1, pool_max: int = 4, pool_timeout: float = 10.0,
               upgrade: bool = True, check: bool = False, **kw: Any) -> SQLStore:
    """Open (and, unless ``upgrade`` is false, migrate) the store ``db`` names. A SQLite file
    is opened as its environment allows (``storeopen``: read-only when it cannot be written,
    one clear error when it is damaged; ``check`` runs SQLite's integrity check)."""
    kind, where = classify(db)
    if kind == "postgresql":
        from .pgstore import PostgresStore

        return PostgresStore(where, min_size=pool_min, max_size=pool_max, upgrade=upgrade,
                             timeout=pool_timeout, **kw)
    from .storeopen import open_sqlite_store

    return open_sqlite_store(Path(where), check=check, upgrade=upgrade, **kw)


def copy_store(src: SQLStore, dst: SQLStore, *, batch: int = 500,
               progress: Any = None) -> dict[str, int]:
    """Every resource version and current row of ``src`` into the empty store ``dst``
    (indexes rebuilt from the bodies, id counters carried); one transaction, so a failed copy
    leaves ``dst`` empty. → rows copied per table."""
    if any(dst.counts(fv) for fv in ("R5", "R4")) or dst.id_counters():
        raise StoreURLError(f"{dst.describe()} is not empty; db copy fills an empty store only")
    copied = {"versions": 0, "current": 0}
    with dst.transaction() as tx:
        for table, rows in src.export_rows(batch):
            tx.import_rows(table, rows)
            copied[table] += len(rows)
            if progress:
                progress(table, len(rows))
        for fv, n in src.id_counters().items():
            tx.raise_counter(fv, n)
    dst.analyze()
    return copied
