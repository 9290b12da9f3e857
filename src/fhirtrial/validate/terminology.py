"""Terminology layer: coded values checked against the ValueSets their bindings name.

Required bindings give errors, extensible and preferred ones warnings. A ValueSet is expanded
from the core package's own CodeSystems (explicit concepts, whole systems, ``is-a`` filters);
one that draws on a system the package does not hold (SNOMED CT, LOINC, BCP-47 …) is not
enumerable here, and codes from such systems are never called wrong — no false alarms.
Without the core package the project's own tables (``required_bindings_<ver>.json``, generated
from the core package) still cover the required bindings of the resources fhirtrial writes.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ..finding import Finding, Severity
from ..packages import FhirPackage
from .definitions import Node

CODED = {"code", "Coding", "CodeableConcept", "CodeableReference"}


@dataclass(slots=True)
class Expansion:
    """The codes of a ValueSet, per system; ``open_systems`` are drawn on but not enumerable."""

    codes: dict[str, set[str]] = field(default_factory=dict)
    open_systems: set[str] = field(default_factory=set)
    enumerable: bool = True

    def contains(self, system: str | None, code: str) -> bool | None:
        """True/False when decidable, None when this ValueSet cannot say."""
        if system is None:
            if self.open_systems:
                return None
            return any(code in codes for codes in self.codes.values())
        if system in self.open_systems:
            return None
        if system in self.codes:
            return code in self.codes[system]
        return False

    def all_codes(self) -> set[str]:
        return set().union(*self.codes.values()) if self.codes else set()


class Terminology:
    """ValueSet expansions from a core package (memoised) or from the project's own tables."""

    def __init__(self, package: FhirPackage | None, fhir_version: str = "R5") -> None:
        self.package = package
        self.fhir_version = fhir_version
        self._cache: dict[str, Expansion | None] = {}
        self._lock = threading.Lock()
        self._fallback: dict[str, Any] | None = None

    # -- expansion --------------------------------------------------------------------------
    def expand(self, url: str) -> Expansion | None:
        """The expansion of a ValueSet by canonical URL, or None when it is unknown."""
        url = url.split("|", 1)[0]
        if url in self._cache:
            return self._cache[url]
        with self._lock:
            if url not in self._cache:
                self._cache[url] = self._expand(url, set())
            return self._cache[url]

    def _expand(self, url: str, seen: set[str]) -> Expansion | None:
        if self.package is None:
            return self._fallback_expansion(url)
        vs = self.package.value_sets.get(url)
        if vs is None or url in seen:
            return None
        seen = seen | {url}
        out = Expansion()
        compose = vs.get("compose") or {}
        for inc in compose.get("include", []):
            part = self._include(inc, seen)
            if part is None:
                return Expansion(enumerable=False)
            for system, codes in part.codes.items():
                out.codes.setdefault(system, set()).update(codes)
            out.open_systems |= part.open_systems
        for exc in compose.get("exclude", []):
            part = self._include(exc, seen)
            if part is not None:
                for system, codes in part.codes.items():
                    out.codes.get(system, set()).difference_update(codes)
        if not compose and vs.get("expansion"):
            for c in vs["expansion"].get("contains", []):
                out.codes.setdefault(c.get("system", ""), set()).add(c.get("code", ""))
        return out

    def _include(self, inc: dict[str, Any], seen: set[str]) -> Expansion | None:
        result = Expansion()
        system = inc.get("system")
        if system:
            system = system.split("|", 1)[0]
            cs = self.package.code_systems.get(system) if self.package else None
            if inc.get("concept"):
                result.codes[system] = {c["code"] for c in inc["concept"]}
            elif cs is None or cs.get("content") not in ("complete", None):
                result.open_systems.add(system)
            elif inc.get("filter"):
                codes = _filter(cs, inc["filter"])
                if codes is None:
                    result.open_systems.add(system)
                else:
                    result.codes[system] = codes
            else:
                result.codes[system] = set(_all_codes(cs.get("concept", [])))
        for ref in inc.get("valueSet", []):
            sub = self._expand(ref.split("|", 1)[0], seen)
            if sub is None or not sub.enumerable:
                return None
            if system:
                # intersection with the system part
                for s, codes in list(result.codes.items()):
                    result.codes[s] = codes & sub.codes.get(s, set())
            else:
                for s, codes in sub.codes.items():
                    result.codes.setdefault(s, set()).update(codes)
                result.open_systems |= sub.open_systems
        return result

    def _fallback_expansion(self, url: str) -> Expansion | None:
        if self._fallback is None:
            name = f"required_bindings_{self.fhir_version.lower()}.json"
            try:
                text = resources.files("fhirtrial.validate").joinpath(name).read_text("utf-8")
                self._fallback = json.loads(text)
            except (FileNotFoundError, OSError):
                self._fallback = {"valueSets": {}}
        entry = self._fallback["valueSets"].get(url)
        if entry is None:
            return None
        return Expansion(codes={s: set(c) for s, c in entry["codes"].items()},
                         open_systems=set(entry.get("open", [])))

    def fallback_bindings(self) -> dict[str, tuple[str, str]]:
        """Element path → (strength, ValueSet URL) from the project's own tables."""
        self._fallback_expansion("")
        assert self._fallback is not None
        return {p: (b[0], b[1]) for p, b in self._fallback.get("bindings", {}).items()}

    # -- checking ---------------------------------------------------------------------------
    def check(self, node: Node, strength: str, vs_url: str) -> list[Finding]:
        """Findings for one coded node under a binding."""
        if strength not in ("required", "extensible", "preferred"):
            return []
        exp = self.expand(vs_url)
        if exp is None or not exp.enumerable:
            return []
        codings = _codings(node.type, node.value)
        if codings is None:
            return []
        severity: Severity = "error" if strength == "required" else "warning"
        vs_name = vs_url.rsplit("/", 1)[-1]
        if node.type == "code":
            _, code, _ = codings[0]
            if exp.contains(None, code) is False:
                return [Finding(severity, "code-invalid",
                                f"The value '{code}' is not in the {strength} value set "
                                f"{vs_name} ({_sample(exp)})", node.expr)]
            return []
        if not codings:
            return []
        verdicts = [(exp.contains(system, code), system, code, expr)
                    for system, code, expr in codings]
        if any(v is not False for v, *_ in verdicts):
            return []
        if strength == "preferred":
            # a preferred binding welcomes other systems: only a wrong code in the system the
            # value set draws on (a likely typo) is worth a word
            verdicts = [v for v in verdicts if v[1] in exp.codes]
            if not verdicts:
                return []
        _, system, code, expr = verdicts[0]
        where = node.expr + expr if len(verdicts) == 1 else node.expr
        return [Finding(severity, "code-invalid",
                        f"The code {system}#{code} is not in the {strength} value set {vs_name}",
                        where)]


def _codings(tcode: str, value: Any) -> list[tuple[str | None, str, str]] | None:
    """(system, code, expression-suffix) of a coded value; None when not a coded value."""
    if tcode == "code":
        return [(None, value, "")] if isinstance(value, str) else None
    if not isinstance(value, dict):
        return None
    if tcode == "Coding":
        return [(value.get("system"), value["code"], "")] if isinstance(value.get("code"),
                                                                         str) else []
    if tcode == "CodeableReference":
        value = value.get("concept")
        if not isinstance(value, dict):
            return []
    if tcode in ("CodeableConcept", "CodeableReference"):
        out: list[tuple[str | None, str, str]] = []
        coding = value.get("coding")
        # a wrongly typed coding is the structure layer's finding; here it has no codes
        for i, c in enumerate(coding if isinstance(coding, list) else []):
            if isinstance(c, dict) and isinstance(c.get("code"), str):
                out.append((c.get("system"), c["code"], f".coding[{i}]"))
        return out
    return None


def _sample(exp: Expansion) -> str:
    codes = sorted(exp.all_codes())
    shown = ", ".join(codes[:8])
    return f"one of {shown}{' …' if len(codes) > 8 else ''}"


def _all_codes(concepts: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for c in concepts:
        out.append(c["code"])
        out.extend(_all_codes(c.get("concept", [])))
    return out


def _filter(cs: dict[str, Any], filters: list[dict[str, Any]]) -> set[str] | None:
    """Codes of a CodeSystem selected by hierarchy filters; None for filters not supported."""
    parents: dict[str, str | None] = {}

    def index(concepts: list[dict[str, Any]], parent: str | None) -> None:
        for c in concepts:
            parents[c["code"]] = parent
            index(c.get("concept", []), c["code"])

    index(cs.get("concept", []), None)
    selected = set(parents)
    for f in filters:
        op, value = f.get("op"), str(f.get("value"))
        if f.get("property") != "concept" or op not in ("is-a", "descendent-of"):
            return None

        def under(code: str, target: str = value) -> bool:
            cur = parents.get(code)
            while cur is not None:
                if cur == target:
                    return True
                cur = parents.get(cur)
            return False

        selected = {c for c in selected if under(c) or (op == "is-a" and c == value)}
    return selected


def check_nodes(term: Terminology, nodes: list[Node]) -> list[Finding]:
    """The terminology findings of a walked resource."""
    findings: list[Finding] = []
    for node in nodes:
        elem = node.elem
        if elem.binding_value_set and node.type in CODED:
            findings.extend(term.check(node, elem.binding_strength or "",
                                       elem.binding_value_set))
    return findings


#: The resources fhirtrial writes: the fallback table covers their required code bindings.
FALLBACK_TYPES = ("ResearchStudy", "PlanDefinition", "ActivityDefinition", "EvidenceVariable",
                  "Group", "Location", "Organization", "Practitioner", "PractitionerRole",
                  "Bundle", "OperationOutcome")


def build_fallback_table(package: FhirPackage, fhir_version: str) -> dict[str, Any]:
    """The project's own required-binding table, derived from a core package (see the module
    docstring); regenerate with ``python -m fhirtrial.validate.terminology PACKAGE_DIR R5``."""
    from .definitions import Definitions

    defs = Definitions(package)
    term = Terminology(package, fhir_version)
    bindings: dict[str, list[str]] = {}
    value_sets: dict[str, Any] = {}
    for tname in FALLBACK_TYPES:
        info = defs.type_info(tname)
        if info is None:
            continue
        for kids in info.children.values():
            for elem in kids.values():
                if elem.binding_strength != "required" or elem.types != ["code"] \
                        or not elem.binding_value_set:
                    continue
                exp = term.expand(elem.binding_value_set)
                if exp is None or not exp.enumerable or exp.open_systems or not exp.codes:
                    continue
                bindings[elem.path] = ["required", elem.binding_value_set]
                value_sets[elem.binding_value_set] = {
                    "codes": {s: sorted(c) for s, c in sorted(exp.codes.items())}}
    return {"source": package.label, "bindings": dict(sorted(bindings.items())),
            "valueSets": dict(sorted(value_sets.items()))}


if __name__ == "__main__":
    import sys
    from pathlib import Path

    from ..packages import load

    table = build_fallback_table(load(sys.argv[1]), sys.argv[2])
    out = Path(__file__).with_name(f"required_bindings_{sys.argv[2].lower()}.json")
    out.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(out, len(table["bindings"]), "bindings")
