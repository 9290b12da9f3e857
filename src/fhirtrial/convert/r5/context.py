"""Shared state of one R5 conversion: the Study, its resources (in output order) and findings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ...model import DoseLevel, Finding, Intervention, Study
from ...tables import Table, table
from .. import ids
from ..narrative import Rendered, narrative

Resource = dict[str, Any]

#: a registry date: YYYY, YYYY-MM or YYYY-MM-DD
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


class Ctx:
    """Collects the resources built for one Study; dedupes by type/id and keeps insertion order."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self.findings: list[Finding] = []
        self.resources: dict[tuple[str, str], Resource] = {}
        self._used: set[tuple[str, str]] = set()
        #: what the narratives show beside the Study: dose levels per (arm, intervention
        #: label), each arm's interventions, the parsed eligibility criteria
        self.doses: dict[tuple[str, str], list[DoseLevel]] = {}
        self.arm_interventions: dict[str, list[Intervention]] = {}
        self.criteria: list[Any] = []
        #: the criteria as both narratives show them, rendered once
        self.criteria_rendered: Rendered = {}

    def warn(self, code: str, message: str, location: str | None = None) -> None:
        self.findings.append(Finding("warning", code, message, location))

    def info(self, code: str, message: str, location: str | None = None) -> None:
        self.findings.append(Finding("information", code, message, location))

    def new_id(self, rtype: str, role: str, *key: str | None) -> str:
        """A study-scoped id for a new resource; a repeated natural key gets a numbered key so
        two registry entries that look alike (same site twice) stay two resources."""
        rid = ids.scoped_id(self.study.nct_id, role, *key)
        n = 1
        while (rtype, rid) in self._used:
            n += 1
            rid = ids.scoped_id(self.study.nct_id, role, *key, str(n))
        self._used.add((rtype, rid))
        return rid

    def add(self, rtype: str, rid: str, title: str, rows: Sequence[tuple[str, str | None]],
            body: Resource, *, business_id: bool = True,
            text: dict[str, str] | None = None) -> dict[str, str]:
        """Register a resource (first one wins for a repeated id) and return a reference to it.

        The narrative is ``text`` when given (see :mod:`fhirtrial.convert.narrative`), else the
        title and the label/value rows."""
        key = (rtype, rid)
        if key not in self.resources:
            res: Resource = {"resourceType": rtype, "id": rid}
            if "meta" in body:
                res["meta"] = body.pop("meta")
            res["text"] = text or narrative(title, rows)
            if business_id:
                res["identifier"] = [ids.business_identifier(rtype, rid), *body.pop(
                    "identifier", [])]
            res.update(body)
            self.resources[key] = res
            self._used.add(key)
        return self.ref(rtype, rid)

    @staticmethod
    def ref(rtype: str, rid: str, display: str | None = None) -> dict[str, str]:
        out = {"reference": ids.full_url(rtype, rid), "type": rtype}
        if display:
            out["display"] = display
        return out

    # --- code tables ------------------------------------------------------------------------
    def concept(self, table_name: str, value: str | None, target: str | None, location: str,
                *, keep_ctgov: bool = True, prefix: str | None = None) -> dict[str, Any] | None:
        """A CodeableConcept for a registry value: the target coding where the table has one,
        the CT.gov coding when asked, and always the text. A value the table does not know is
        kept as text and reported (never guessed)."""
        if not value:
            return None
        t: Table = table(table_name)
        codings: list[dict[str, str]] = []
        if t.entry(value) is None:
            self.warn("code-invalid", f"{value!r} is not a known {t.label} value "
                      f"(mappings/{table_name}.json); kept as text", location)
        elif target:
            tgt = t.target(value, target)
            if tgt and (c := tgt.coding()):
                codings.append(c)
        if keep_ctgov and t.entry(value) is not None and (cc := t.ctgov_coding(value)):
            codings.append(cc)
        text = t.display(value)
        out: dict[str, Any] = {}
        if codings:
            out["coding"] = codings
        out["text"] = f"{prefix}: {text}" if prefix else text
        return out


def intervention_concept(iv: Intervention, text: str) -> dict[str, Any]:
    """An intervention as a CodeableConcept: its MeSH codings (when CT.gov derived any) + text."""
    out: dict[str, Any] = {}
    if iv.mesh:
        out["coding"] = [{"system": c.system, "code": c.code, **(
            {"display": c.display} if c.display else {})} for c in iv.mesh]
    out["text"] = text
    return out


def telecom(email: str | None, phone: str | None, ext: str | None) -> list[dict[str, str]]:
    """ContactPoints for a registry contact's email and phone (extension kept in the value)."""
    out = []
    if phone:
        out.append({"system": "phone", "value": f"{phone} ext. {ext}" if ext else phone,
                    "use": "work"})
    if email:
        out.append({"system": "email", "value": email, "use": "work"})
    return out


def fhir_instant(date: str | None) -> str | None:
    """A registry date as a FHIR instant (midnight UTC of its first day); None if not a date."""
    if not date or not _DATE.fullmatch(date):
        return None
    parts = [*date.split("-"), "01", "01"][:3]
    return f"{parts[0]}-{parts[1]}-{parts[2]}T00:00:00Z"


def number(value: float) -> int | float:
    """A JSON number without a spurious ``.0`` (125.0 → 125)."""
    return int(value) if float(value).is_integer() and abs(value) < 1e15 else value
