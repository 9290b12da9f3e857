"""Index rows held back by a bulk load, shared by the SQLite and PostgreSQL bulk writers.

A bulk load (``fhirtrial load``) writes many studies per database transaction, each study in
its own savepoint. Writing a study's few dozen index rows one resource at a time costs more
than inserting them, so the rows are held back per resource row id and written table by
table (SQLite: one ``executemany`` per table; PostgreSQL: one ``COPY`` per table) when the
batch commits, or earlier when something is about to read the index tables: a search
through the writer, or a conditional write's search inside a study.

The bookkeeping is the same for both stores and lives here:

- the writer's ``pending`` rows belong to studies whose savepoints were released;
- a study's own rows are its ``overlay``, handed to the writer when the study succeeds;
- a study that supersedes a resource still pending marks its row id ``removed`` (nothing of
  it is in the tables yet, so nothing is deleted); the pending rows go when it succeeds;
- when a study flushes (its search must see every write), the writer's rows it wrote are
  remembered as ``flushed``: if the study then rolls back, the savepoint unwrites them, and
  they are held back again.

A store supplies ``_write_held`` (how rows reach its tables) and keeps its own transaction
handling; the classes below hold everything else.
"""

from __future__ import annotations

from typing import Any

#: held-back index rows: per resource row id, per index table
Held = dict[int, dict[str, list[tuple[Any, ...]]]]


def by_table(held: Held) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of ``held`` grouped per index table, in row-id order of arrival."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for tables in held.values():
        for table, rows in tables.items():
            out.setdefault(table, []).extend(rows)
    return out


class HeldRowsWriter:
    """The writer's half: ``pending`` rows, flush before every read, and the merge after a
    study. Subclasses set ``store``, ``pending = {}`` and ``tx = None`` and implement
    :meth:`_write_held`."""

    store: Any
    pending: Held
    tx: HeldRowsTx | None

    def _write_held(self, held: Held) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def flush(self) -> None:
        """Write the held-back index rows now, so that what reads next sees every write."""
        if self.tx is not None:  # inside a study: its savepoint must be able to give them back
            self.tx.flush()
            return
        self._write_held(self.pending)
        self.pending = {}

    def _study_succeeded(self, tx: HeldRowsTx) -> None:
        """After a study's savepoint is released: its rows join the batch's."""
        for rowid in tx.removed:
            self.pending.pop(rowid, None)
        self.pending.update(tx.overlay)

    def _study_failed(self, tx: HeldRowsTx) -> None:
        """After a study's savepoint is rolled back: the rows it flushed were unwritten."""
        self.pending.update(tx.flushed)

    # reads through the writer see every write made so far
    def search(self, *args: Any, **kwargs: Any) -> Any:
        self.flush()
        return self.store.search(*args, **kwargs)

    def include(self, *args: Any, **kwargs: Any) -> Any:
        self.flush()
        return self.store.include(*args, **kwargs)

    def revinclude(self, *args: Any, **kwargs: Any) -> Any:
        self.flush()
        return self.store.revinclude(*args, **kwargs)


class HeldRowsTx:
    """The study's half, mixed into a store's transaction class before it (so that its
    ``_put_index``/``_clear_indexes``/``search_ids`` come first). Call :meth:`_hold` from
    ``__init__``."""

    writer: HeldRowsWriter

    def _hold(self, writer: HeldRowsWriter) -> None:
        self.writer = writer
        self.overlay: Held = {}
        #: row ids whose rows the writer holds and this study supersedes (dropped on success)
        self.removed: set[int] = set()
        #: the writer's rows this study wrote (given back if it rolls back)
        self.flushed: Held = {}

    def _put_index(self, rowid: int, tables: dict[str, list[tuple[Any, ...]]]) -> None:
        self.overlay[rowid] = tables

    def _clear_indexes(self, rowid: int) -> None:
        self.overlay.pop(rowid, None)
        if rowid in self.writer.pending and rowid not in self.removed:
            self.removed.add(rowid)  # held back, never written: nothing in the tables
            return
        super()._clear_indexes(rowid)  # type: ignore[misc]

    def flush(self) -> None:
        """Write every row held back so far (the writer's and this study's)."""
        w = self.writer
        keep = {r: w.pending[r] for r in self.removed if r in w.pending}
        out = {r: t for r, t in w.pending.items() if r not in self.removed}
        w._write_held({**out, **self.overlay})
        self.flushed.update(out)
        w.pending = keep
        self.overlay = {}

    def search_ids(self, fv: str, rtype: str, criteria: Any) -> list[str]:
        self.flush()
        return super().search_ids(fv, rtype, criteria)  # type: ignore[misc]
