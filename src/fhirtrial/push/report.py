"""The push report: one line per study, totals, and the server's words for every failure."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from .http import outcome_text
from .strategies import UnitResult


@dataclass(slots=True)
class PushReport:
    """Everything a push did, per study, in input order."""

    server: str
    fhir_version: str
    strategy: str
    results: list[UnitResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def totals(self) -> Counter[str]:
        return Counter(r.status for r in self.results)

    @property
    def ok(self) -> bool:
        return all(r.status != "failed" for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return {"server": self.server, "fhirVersion": self.fhir_version,
                "strategy": self.strategy, "totals": dict(sorted(self.totals.items())),
                "studies": [asdict(r) for r in self.results], "notes": self.notes}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    def text(self) -> str:
        """The report for people: a line per study, failures with the server's OperationOutcome."""
        width = max((len(r.name) for r in self.results), default=5)
        lines = [f"push to {self.server} (FHIR {self.fhir_version}, {self.strategy})"]
        for r in self.results:
            counts = ", ".join(f"{n} {k}" for k, n in r.resources.items() if n)
            line = f"  {r.name:<{width}}  {r.status:<12}"
            if counts:
                line += f"  resources: {counts}"
            lines.append(line.rstrip())
            if r.error:
                lines.append(f"      error: {r.error}")
                detail = outcome_text(r.outcome)
                if detail and detail not in r.error:
                    lines.append(f"      OperationOutcome: {detail}")
            lines.extend(f"      note: {n}" for n in r.notes)
        lines.extend(f"  note: {n}" for n in self.notes)
        totals = ", ".join(f"{n} {k}" for k, n in sorted(self.totals.items()))
        lines.append(f"{len(self.results)} studies: {totals or 'none'}")
        return "\n".join(lines) + "\n"
