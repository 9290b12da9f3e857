"""File reading and writing shared by the CLI, the readers, the registry cache and push: every
input read whole is capped (:func:`read_capped`), every output file published atomically."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so a reader never sees half of it (temp file in the same dir, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: the largest single input read into memory (a study record or Bundle is well under 5 MB);
#: every reader holds it whatever the input is: a file, stdin, a FIFO, a device, a zip member
MAX_INPUT_BYTES = 64 * 1024 * 1024


class InputTooLarge(ValueError):
    """An input is larger than the cap."""


def read_capped(f: BinaryIO, name: str, limit: int = MAX_INPUT_BYTES,
                head: bytes = b"") -> bytes:
    """``head`` + the rest of a stream, but never more than ``limit`` bytes (InputTooLarge).

    Reads in chunks: ``/dev/zero``, an endless pipe or a FIFO must stop at the cap, and
    ``stat().st_size`` (0 for devices and pipes) is no guide."""
    chunks: list[bytes] = [head]
    size = len(head)
    while True:
        chunk = f.read(min(1 << 20, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise InputTooLarge(f"{name}: larger than {limit} bytes "
                                f"({limit // (1024 * 1024)} MiB), the input limit")


def read_input(path: str | Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    """A file's bytes (``-`` is stdin), capped at ``limit``; OSError and InputTooLarge pass."""
    if str(path) == "-":
        return read_capped(sys.stdin.buffer, "<stdin>", limit)
    with open(path, "rb") as f:
        return read_capped(f, str(path), limit)
