"""Bulk input: streaming iteration over directories, zips and NDJSON, and a bounded parallel map.

Inputs are split into *units*, each the bytes of one record (a file, a zip member, an NDJSON
line), read one at a time, so memory is bounded by the largest record and the number of units
in flight, never by the size of the batch. ``ordered_map`` runs a function over units in worker
processes with at most ``jobs * WINDOW * CHUNK`` units outstanding and yields results in
input order.
"""

from __future__ import annotations

import gc
import io
import json
import sys
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from ..errors import SourceError
from ..files import MAX_INPUT_BYTES, InputTooLarge, read_capped

if TYPE_CHECKING:  # the pool (multiprocessing: 60 ms to import) only when jobs run in it
    from concurrent.futures import Future

#: units outstanding per worker: enough to keep workers busy, small enough to bound memory
WINDOW = 4
#: records per task sent to a worker
CHUNK = 16
ZIP_MAGIC = b"PK\x03\x04"
NDJSON_SUFFIXES = (".ndjson", ".jsonl")

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class Unit:
    """The bytes of one record, or the reason they could not be read, or (``member``) where
    in a zip they are, for the worker that converts it to read them itself."""

    name: str
    data: bytes | None = None
    error: SourceError | None = None
    member: ZipMember | None = None

    def load(self) -> Unit:
        """This unit with its bytes (or its read error): itself unless it is a zip member
        not read yet."""
        return self if self.member is None else self.member.read(self.name)


@dataclass(slots=True)
class ZipMember:
    """A record file inside a zip, named by where it starts: what a worker process is sent
    instead of the record's bytes, so the parent neither inflates nor pickles them."""

    path: str
    info: zipfile.ZipInfo

    def read(self, name: str) -> Unit:
        zf = _OPEN_ZIPS.get(self.path)
        if zf is None:
            from .zipstream import StreamingZip

            try:
                zf = StreamingZip(self.path)
            except (zipfile.BadZipFile, OSError) as e:
                return Unit(name, error=SourceError(f"{name}: cannot be read from the zip "
                                                    f"({e})"))
            _OPEN_ZIPS.clear()  # one archive open per process: inputs come one after another
            _OPEN_ZIPS[self.path] = zf
        return _read_member(zf, self.info, name)


#: the archive a worker reads members from, kept open across units (opening reads only the
#: end-of-archive record: the central directory stays unread)
_OPEN_ZIPS: dict[str, Any] = {}


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, member: str) -> Unit:
    try:
        with zf.open(info) as f:
            return Unit(member, _read_limited(f, member))
    except SourceError as e:
        return Unit(member, error=e)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError,
            NotImplementedError, RuntimeError) as e:
        # zlib.error: a damaged deflate stream; RuntimeError: an encrypted member
        return Unit(member, error=SourceError(f"{member}: cannot be read from the zip ({e})"))


def _read_limited(f: IO[bytes], name: str, head: bytes = b"") -> bytes:
    try:
        return read_capped(f, name, MAX_INPUT_BYTES, head)  # type: ignore[arg-type]
    except InputTooLarge as e:
        raise SourceError(str(e)) from None


def _looks_ndjson(head: bytes) -> bool:
    """Two or more lines, the first a whole JSON object on its own."""
    lines = [ln for ln in head.split(b"\n") if ln.strip()]
    if len(lines) < 2 or not lines[0].lstrip().startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(lines[0]), dict) and lines[1].lstrip().startswith(b"{")
    except (ValueError, RecursionError):  # nested past json's depth: not a record line
        return False


def iter_ndjson(f: IO[bytes], name: str) -> Iterator[Unit]:
    """One unit per non-blank line of an NDJSON stream, read line by line.

    A line over the cap ends the stream with an error: finding the next line would mean
    reading on without limit (``/dev/zero`` has no newline)."""
    no = 0
    while True:
        line = f.readline(MAX_INPUT_BYTES + 1)
        if not line:
            return
        no += 1
        if len(line) > MAX_INPUT_BYTES:
            yield Unit(f"{name}:{no}", error=SourceError(
                f"{name}:{no}: line larger than {MAX_INPUT_BYTES} bytes "
                f"({MAX_INPUT_BYTES // (1024 * 1024)} MiB), the input limit; the rest of "
                f"{name} is not read"))
            return
        if line.strip():
            yield Unit(f"{name}:{no}", line)


def iter_zip(path: Path, name: str, lazy: bool = False) -> Iterator[Unit]:
    """One unit per record file in a zip (NDJSON members split by line), in archive order.

    The central directory is read entry by entry (:mod:`.zipstream`), so memory stays flat
    however many members the archive holds (the registry's download has ~550,000). With
    ``lazy``, a record file's unit says where it is (:class:`ZipMember`) and
    :meth:`Unit.load` reads it: worker processes then inflate the records themselves."""
    from .zipstream import StreamingZip

    try:
        zf = StreamingZip(str(path))
    except (zipfile.BadZipFile, OSError) as e:
        yield Unit(name, error=SourceError(f"{name}: not a readable zip archive ({e})"))
        return
    with zf:
        infos = zf.iter_infos()
        while True:
            try:
                info = next(infos)
            except StopIteration:
                return
            except (zipfile.BadZipFile, OSError, NotImplementedError) as e:
                yield Unit(name, error=SourceError(f"{name}: the zip's directory cannot be "
                                                   f"read further ({e})"))
                return
            base = info.filename.rsplit("/", 1)[-1]
            if info.is_dir() or not base or base.startswith(".") or "__MACOSX" in info.filename:
                continue
            member = f"{name}:{info.filename}"
            if info.file_size > MAX_INPUT_BYTES:
                yield Unit(member, error=SourceError(f"{member}: larger than "
                                                     f"{MAX_INPUT_BYTES} bytes"))
                continue
            if not base.endswith(NDJSON_SUFFIXES):
                yield (Unit(member, member=ZipMember(str(path), info)) if lazy
                       else _read_member(zf, info, member))
                continue
            try:
                with zf.open(info) as f:
                    yield from iter_ndjson(f, member)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError,
                    NotImplementedError, RuntimeError) as e:
                # zlib.error: a damaged deflate stream; RuntimeError: an encrypted member
                yield Unit(member, error=SourceError(f"{member}: cannot be read from the zip "
                                                     f"({e})"))


def estimate_units(inputs: Iterable[str]) -> int | None:
    """How many units the inputs hold, cheaply (a zip's declared entries, a directory's
    files), for a progress bar's ETA; None when some input cannot say (NDJSON, stdin)."""
    from .zipstream import StreamingZip

    total = 0
    for item in inputs:
        p = Path(item)
        try:
            if p.is_dir():
                total += sum(1 for f in p.rglob("*") if f.is_file())
            elif p.is_file():
                with p.open("rb") as f:
                    head = f.read(4)
                if head == ZIP_MAGIC:
                    with StreamingZip(str(p)) as zf:
                        total += zf.declared_entries
                elif p.name.endswith(NDJSON_SUFFIXES):
                    return None
                else:
                    total += 1
            elif item == "-":
                return None
            else:
                total += 1
        except (OSError, zipfile.BadZipFile):
            total += 1
    return total


def iter_file(path: Path, lazy_zip: bool = False) -> Iterator[Unit]:
    """The units of one file: a zip's members, an NDJSON file's lines, or the file itself
    (``lazy_zip``: a zip's record files unread, see :func:`iter_zip`)."""
    name = str(path)
    try:
        with path.open("rb") as f:
            head = f.read(65536)
            if head.startswith(ZIP_MAGIC):
                f.close()
                yield from iter_zip(path, name, lazy_zip)
                return
            if path.name.endswith(NDJSON_SUFFIXES) or _looks_ndjson(head):
                # replayed, not seek(0): a FIFO or device cannot seek
                yield from iter_ndjson(io.BufferedReader(_Prepend(head, f)),  # type: ignore[arg-type]
                                       name)
                return
            # st_size is 0 for devices and FIFOs: the read itself is capped
            if path.stat().st_size > MAX_INPUT_BYTES:
                raise SourceError(f"{name}: larger than {MAX_INPUT_BYTES} bytes")
            yield Unit(name, _read_limited(f, name, head))
    except SourceError as e:
        yield Unit(name, error=e)
    except OSError as e:
        yield Unit(name, error=SourceError(f"{name}: cannot read: {e.strerror or e}"))


def iter_stdin(stream: IO[bytes] | None = None) -> Iterator[Unit]:
    f = stream if stream is not None else sys.stdin.buffer
    head = f.read(65536)
    if _looks_ndjson(head):
        rest = io.BufferedReader(_Prepend(head, f))  # type: ignore[arg-type]
        yield from iter_ndjson(rest, "<stdin>")
        return
    try:
        data = _read_limited(f, "<stdin>", head)
    except SourceError as e:
        yield Unit("<stdin>", error=e)
        return
    yield Unit("<stdin>", data)


class _Prepend(io.RawIOBase):
    """A raw stream that replays already-read bytes before the rest of a stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.head:
            n = min(len(b), len(self.head))
            b[:n], self.head = self.head[:n], self.head[n:]
            return n
        chunk = self.rest.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def iter_units(inputs: Iterable[str], *, fetch: Callable[[str], bytes] | None = None,
               lazy_zip: bool = False) -> Iterator[Unit]:
    """Every record unit of the given inputs: files, directories, zips, NDJSON, ``-`` (stdin),
    and NCT ids (through ``fetch``) when no file of that name exists. ``lazy_zip``: a zip's
    record files come unread (:meth:`Unit.load` reads them), for worker processes to read."""
    for item in inputs:
        if item == "-":
            yield from iter_stdin()
            continue
        p = Path(item)
        if p.is_dir():
            for f in sorted(f for f in p.rglob("*") if f.is_file()
                            and not any(part.startswith(".") for part in f.relative_to(p).parts)):
                yield from iter_file(f, lazy_zip)
        elif p.exists():
            yield from iter_file(p, lazy_zip)
        elif fetch is not None and _is_nct_id(item):
            nct = item.strip().upper()
            try:
                yield Unit(nct, fetch(nct))
            except SourceError as e:
                yield Unit(nct, error=e)
            except Exception as e:  # a registry failure stops this record only
                from ..errors import FhirtrialError

                msg = e.message if isinstance(e, FhirtrialError) else str(e)
                yield Unit(nct, error=SourceError(f"{nct}: cannot fetch from the registry: "
                                                  f"{msg}"))
        else:
            yield Unit(item, error=SourceError(f"{item}: no such file or directory"))


def _is_nct_id(item: str) -> bool:
    # imported only here: the registry client brings requests (~0.4 s of start-up) that
    # a run over files never needs
    from .registry import NCT_RE

    return NCT_RE.match(item.strip().upper()) is not None


def ordered_map(fn: Callable[[T], R], items: Iterable[T], jobs: int = 1,
                window: int = WINDOW, chunk: int = CHUNK) -> Iterator[R]:
    """``map(fn, items)`` over ``jobs`` processes, in input order, with at most
    ``jobs * window`` chunks of ``chunk`` items in flight (the input is consumed lazily).
    ``jobs=1`` runs in this process."""
    if jobs <= 1:
        yield from map(fn, items)
        return
    pending: deque[Future[list[R]]] = deque()
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        # one task per chunk: sending one small record per task costs more than reading it
        for batch in _batches(items, chunk):
            pending.append(pool.submit(_map_list, fn, batch))
            if len(pending) >= jobs * window:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _map_list(fn: Callable[[T], R], batch: list[T]) -> list[R]:
    """One chunk, in a worker process. After its first chunk a worker holds the lexicon, the
    code tables and the compiled patterns for as long as it lives: frozen out of the cyclic
    collector's sight (``gc.freeze``), a full collection no longer walks them every few
    hundred records (~3 % of a worker's time; what is freed by reference counting, every
    converted Bundle, is freed as before)."""
    global _FROZEN
    out = [fn(x) for x in batch]
    if not _FROZEN:
        gc.freeze()
        _FROZEN = True
    return out


#: whether this worker process has frozen what its first chunk loaded (:func:`_map_list`)
_FROZEN = False


@dataclass
class Summary:
    """The end-of-run tally: converted, with warnings, failed (with reasons)."""

    converted: int = 0
    with_warnings: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def line(self) -> str:
        return (f"converted {self.converted}, with warnings {self.with_warnings}, "
                f"failed {len(self.failed)}")


@dataclass(slots=True)
class Converted:
    """One record's conversion outcome, small enough to send back from a worker process."""

    name: str
    nct_id: str | None = None
    bundle: bytes | None = None
    findings: list[Any] = field(default_factory=list)
    error: str | None = None
    issue_code: str = "structure"


def convert_unit(unit: Unit, fhir_version: str = "R5", bundle_type: str = "collection",
                 validate: bool = False, compact: bool = False) -> list[Converted]:
    """Read one unit and convert each of its studies (runs in a worker process).

    With ``validate``, each Bundle goes through the layered validator: its warnings join the
    record's findings, and a Bundle with errors fails the record instead of being written.
    Each Bundle comes back as the bytes the caller writes (indented, or one line with
    ``compact`` for NDJSON), so a worker pickles bytes, never a Bundle, and nothing is parsed
    or dumped twice.
    """
    from ..convert import convert_study
    from ..errors import FhirtrialError
    from . import parse_unit

    out: list[Converted] = []
    for rec in parse_unit(unit.load()):
        if rec.study is None:
            msg = rec.error.message if rec.error else f"{rec.name}: no study"
            out.append(Converted(rec.name, error=msg))
            continue
        try:
            conv = convert_study(rec.study, fhir_version=fhir_version, bundle_type=bundle_type)
        except FhirtrialError as e:
            out.append(Converted(rec.name, rec.study.nct_id,
                                 error=f"{rec.name}: {rec.study.nct_id}: {e.message}",
                                 issue_code=e.issue_code))
            continue
        findings = list(conv.findings)
        if validate:
            from ..validate import has_errors, validate_findings

            found = validate_findings(conv.bundle, fhir_version=fhir_version)
            if has_errors(found):
                first = next(f for f in found if f.severity in ("error", "fatal"))
                where = f" at {first.location}" if first.location else ""
                out.append(Converted(rec.name, conv.nct_id,
                                     error=f"{rec.name}: {conv.nct_id}: the Bundle fails "
                                           f"validation{where}: {first.message}",
                                     issue_code="invalid"))
                continue
            findings.extend(f for f in found if f.severity == "warning")
        out.append(Converted(rec.name, conv.nct_id,
                             conv.compact() if compact else conv.indented(),
                             findings))
    return out


class Progress:
    """A one-line progress bar on stderr (records, %, rate, ETA), only on a terminal."""

    def __init__(self, enabled: bool | None = None, every: int = 25, total: int | None = None,
                 stream: IO[str] | None = None, clock: Callable[[], float] | None = None
                 ) -> None:
        import time

        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.every = every
        self.total = total
        self.done = 0
        self.failed = 0
        self._clock = clock or time.monotonic
        self._start = self._clock()

    def line(self) -> str:
        """The bar as it reads now: ``1,200/550,000 records (0.2%), 850/s, ETA 10:46, 3 failed``."""
        elapsed = max(self._clock() - self._start, 1e-9)
        rate = self.done / elapsed
        parts = [f"{self.done:,}/{self.total:,} records ({100 * self.done / self.total:.1f}%)"
                 if self.total else f"{self.done:,} records", f"{rate:,.0f}/s"]
        if self.total and rate > 0 and self.done < self.total:
            left = int((self.total - self.done) / rate)
            h, rest = divmod(left, 3600)
            parts.append(f"ETA {h}:{rest // 60:02d}:{rest % 60:02d}" if h
                         else f"ETA {rest // 60}:{rest % 60:02d}")
        parts.append(f"{self.failed} failed")
        return ", ".join(parts)

    def step(self, failed: bool = False) -> None:
        self.done += 1
        self.failed += failed
        if self.enabled and self.done % self.every == 0:
            self.stream.write(f"\r\x1b[K{self.line()}")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.done >= self.every:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
