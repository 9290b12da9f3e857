"""An append-only journal of the studies a server confirmed, so a killed push resumes.

One JSON object per line, written and fsync'd after the server confirmed the whole study.
A line is keyed on (server, FHIR version, study, content digest): a study whose content changed
since it was journalled is pushed again. A torn last line (the process died mid-write) is
ignored, as is anything that does not parse.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import FhirtrialError


class JournalError(FhirtrialError):
    """The journal file cannot be read or written."""

    issue_code = "exception"


class Journal:
    """Confirmed studies of earlier runs, and the appender for this one."""

    def __init__(self, path: Path, *, server: str, fhir_version: str) -> None:
        self.path = path
        self.server = server.rstrip("/")
        self.fhir_version = fhir_version
        self.done: dict[str, str] = {}  # study → digest
        self._fh: Any = None
        if path.exists():
            self._load()

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as e:
            raise JournalError(f"cannot read push journal {self.path}: {e}") from None
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                continue
            if (isinstance(rec, dict) and rec.get("server") == self.server
                    and rec.get("fhirVersion") == self.fhir_version
                    and isinstance(rec.get("study"), str)):
                self.done[rec["study"]] = str(rec.get("digest"))

    def confirmed(self, study: str, digest: str) -> bool:
        """True when an earlier run confirmed this study with this exact content."""
        return self.done.get(study) == digest

    def record(self, study: str, digest: str, status: str) -> None:
        """Append one confirmed study and force it to disk before going on."""
        line = json.dumps({"server": self.server, "fhirVersion": self.fhir_version,
                           "study": study, "digest": digest, "status": status},
                          separators=(",", ":"), sort_keys=True)
        try:
            if self._fh is None:
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
                # a torn line from a killed run must not swallow our first record
                if self._fh.tell() and not self.path.read_bytes().endswith(b"\n"):
                    self._fh.write("\n")
            self._fh.write(line + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as e:
            raise JournalError(f"cannot write push journal {self.path}: {e}") from None
        self.done[study] = digest

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
