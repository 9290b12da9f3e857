"""One small error hierarchy; every error can become an OperationOutcome.

Non-fatal observations are :class:`fhirtrial.model.Finding` values carried with results;
these exceptions are for what stops one record, request or push.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .finding import Finding


class FhirtrialError(Exception):
    """Base of every error fhirtrial raises on purpose."""

    #: FHIR issue-type code (http://hl7.org/fhir/issue-type)
    issue_code = "processing"
    #: HTTP status when the error reaches the REST API
    http_status = 500

    def __init__(self, message: str, *, location: str | None = None,
                 findings: Iterable[Finding] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.findings = list(findings)

    def to_findings(self) -> list[Finding]:
        head = Finding("error", self.issue_code, self.message, self.location)
        return [head, *self.findings]

    def to_operation_outcome(self) -> dict[str, Any]:
        return operation_outcome(self.to_findings())


class SourceError(FhirtrialError):
    """An input cannot be read as a trial record (format, syntax, missing NCT id…)."""

    issue_code = "structure"
    http_status = 400


class ConfigError(FhirtrialError, ValueError):
    """A setting (an ``FHIRTRIAL_*`` variable, an option) with which nothing could work."""

    issue_code = "invalid"


class MappingError(FhirtrialError):
    """A mapping table is malformed, or a value cannot be mapped at all."""

    issue_code = "code-invalid"
    http_status = 500


class ValidationError(FhirtrialError):
    """A resource or Bundle fails validation; ``findings`` holds the issues."""

    issue_code = "invalid"
    http_status = 422


class NotFoundError(FhirtrialError):
    issue_code = "not-found"
    http_status = 404


class GoneError(FhirtrialError):
    issue_code = "deleted"
    http_status = 410


class ConflictError(FhirtrialError):
    issue_code = "conflict"
    http_status = 409


class PreconditionFailedError(FhirtrialError):
    issue_code = "conflict"
    http_status = 412


class RemoteError(FhirtrialError):
    """A remote server (registry API, target FHIR server) failed or refused a request."""

    issue_code = "transient"
    http_status = 502

    def __init__(self, message: str, *, status: int | None = None,
                 outcome: dict[str, Any] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.status = status
        self.outcome = outcome


def operation_outcome(findings: Iterable[Finding]) -> dict[str, Any]:
    """Findings → an OperationOutcome resource (dict). An empty list gives an informational one,
    since OperationOutcome.issue is 1..*."""
    issues = []
    for f in findings:
        issue: dict[str, Any] = {"severity": f.severity, "code": f.code, "diagnostics": f.message}
        if f.location:
            issue["expression"] = [f.location]
        issues.append(issue)
    if not issues:
        issues.append({"severity": "information", "code": "informational",
                       "diagnostics": "No issues found."})
    return {"resourceType": "OperationOutcome", "issue": issues}


def describe_json_error(exc: Exception) -> str:
    """A JSON decoding error as one readable phrase with its line:column.

    ``json`` messages such as "Unterminated string starting at" expect a position after them;
    printing ``msg`` alone leaves them dangling, and ``str(exc)`` gives a character offset.
    Input that ends inside a value is said to be cut short."""
    import json

    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start}: {exc.reason})"
    if isinstance(exc, RecursionError):  # arrays/objects nested past json's parser depth
        return "nested too deeply to parse"
    if not isinstance(exc, json.JSONDecodeError):
        return str(exc)
    msg = exc.msg.removesuffix(" at").removesuffix(":")
    text = exc.doc if isinstance(exc.doc, str) else ""
    truncated = bool(text) and (exc.pos >= len(text.rstrip())
                                or msg.startswith("Unterminated string"))
    return (f"{msg} at line {exc.lineno}:{exc.colno}"
            + (" (the input ends inside a value: truncated?)" if truncated else ""))
