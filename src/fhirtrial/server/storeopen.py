"""Opening the SQLite store as the environment allows, with one clear line when it cannot be:
a data directory under a regular file, a file that is not SQLite, a truncated or damaged
one, a read-only file, directory or disk (then the store opens read-only: reads are served,
writes refused with a 403 OperationOutcome)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from .store import SQLiteStore, StoreError

_MAGIC = b"SQLite format 3\x00"


def open_sqlite_store(path: str | Path, *, check: bool = False, **kw: Any) -> SQLiteStore:
    """The store at ``path``, read-write when the file and its directory can be written,
    else read-only. ``check`` runs SQLite's ``quick_check`` over the whole file (start-up
    of ``serve`` and ``load``: a damaged store is refused before anything reads it)."""
    p = Path(path)
    _check_path(p)
    readonly = _read_only(p)
    try:
        store = _open(p, readonly, kw)
        if check:
            _integrity(store)
    except sqlite3.DatabaseError as e:
        raise StoreError(_damaged(p, str(e))) from None
    except OSError as e:
        raise StoreError(f"cannot open the store {p}: {e.strerror or e}") from None
    return store


def _open(p: Path, readonly: bool, kw: dict[str, Any]) -> SQLiteStore:
    if not readonly:
        try:
            return SQLiteStore(p, **kw)
        except sqlite3.OperationalError as e:
            # a disk mounted read-only, or a file whose permissions os.access did not show
            if "readonly" not in str(e) and "unable to open" not in str(e):
                raise
            if not p.exists():
                raise StoreError(f"cannot create the store {p}: its directory is read-only"
                                 ) from None
    try:
        return SQLiteStore(p, readonly=True, **kw)
    except sqlite3.OperationalError:
        # a WAL store on a read-only disk with no -shm file beside it: SQLite reads it only
        # as immutable (nothing else can be writing a read-only disk)
        return SQLiteStore(p, immutable=True, **kw)


_WAL_HEADER = 32  # bytes: a WAL file longer than its header holds frames


def _check_path(p: Path) -> None:
    if p.is_dir():
        raise StoreError(f"the store {p} is a directory; give a file path (--db DIR/x.sqlite)")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise StoreError(f"cannot create the store {p}: {parent} is a file, not a "
                                 "directory")
            break
    if not p.exists():
        return
    try:
        with p.open("rb") as f:
            head = f.read(100)
    except OSError as e:
        raise StoreError(f"cannot read the store {p}: {e.strerror or e}") from None
    size = p.stat().st_size
    if size == 0:
        return  # an empty file: SQLite makes it a new store
    if not head.startswith(_MAGIC[:len(head)]) or len(head) < 100:
        what = "too short to be" if head.startswith(_MAGIC[:len(head)]) else "not"
        raise StoreError(f"{p} is {what} a SQLite database (it starts with {head[:16]!r}); "
                         "give another --db, or move the file away to start a new store")
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    # the header's page count is current only when its "valid-for" matches the change counter;
    # and with a WAL beside the file it may run ahead of the file: a checkpoint killed after
    # writing page 1 (the new count) but not the pages after it — the WAL still holds them,
    # and SQLite opens the store whole from it (the integrity check then reads every page)
    wal = Path(f"{p}-wal")
    if pages and head[92:96] == head[24:28] and size < pages * page and not (
            wal.exists() and wal.stat().st_size > _WAL_HEADER):
        raise StoreError(f"{p} is truncated: its header counts {pages} pages of {page} bytes "
                         f"({pages * page} bytes) but the file holds {size}; restore it from "
                         "a backup")


def _read_only(p: Path) -> bool:
    directory = p.parent if str(p.parent) else Path(".")
    if p.exists() and not os.access(p, os.W_OK):
        return True
    if not directory.exists():
        return False  # created on open (its parents' writability is found then)
    wal = [Path(f"{p}-wal"), Path(f"{p}-shm")]
    return p.exists() and not os.access(directory, os.W_OK) and not all(
        f.exists() and os.access(f, os.W_OK) for f in wal)


def _integrity(store: SQLiteStore) -> None:
    rows = store._conn().execute("PRAGMA quick_check").fetchall()
    if rows != [("ok",)]:
        problems = [line.strip() for r in rows for line in str(r[0]).splitlines()
                    if line.strip() and not line.startswith("***")]
        more = f" and {len(problems) - 2} more problem(s)" if len(problems) > 2 else ""
        raise StoreError(_damaged(store.path, "; ".join(problems[:2]) + more))


def _damaged(p: Path, detail: str) -> str:
    return (f"the store {p} is damaged ({detail}): SQLite's integrity check fails; restore it "
            f"from a backup, or salvage it with `sqlite3 {p} .recover`")
