"""A finding (an OperationOutcome issue) on its own: the validator and the error layer need
only this, not the Study model (twenty dataclasses: a tenth of a second of every
``fhirtrial validate`` start-up). :mod:`fhirtrial.model` re-exports both names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(slots=True)
class Finding:
    """A non-fatal observation made while reading or converting (an OperationOutcome issue).

    ``code`` is a FHIR issue-type code (``not-found``, ``incomplete``, ``code-invalid``,
    ``value``, ``informational`` …); ``location`` is a path in the *source* record or a
    FHIRPath expression in the output, whichever the finding is about.
    """

    severity: Severity
    code: str
    message: str
    location: str | None = None


__all__ = ["Finding", "Severity"]
