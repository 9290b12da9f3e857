"""Mapping tables: the data files under ``mappings/`` that map ClinicalTrials.gov values to FHIR.

Tables are data, reviewed on their own (``mappings/README.md`` is their catalogue). Two kinds:

- *code tables* (CT.gov value → FHIR codes) share ``mappings/schema/code-table.schema.json``;
- *data tables* with a shape of their own (XML display text, page-text headings, the lab
  table …) have their own ``mappings/schema/<name>.schema.json`` and are read with
  :func:`data_table`.

Each is loaded once, checked against its schema (code tables also against a few rules a JSON
Schema cannot say (a target named in an entry must be declared; a value is mapped or unmapped,
never both), and cached. A malformed table raises :class:`~fhirtrial.errors.MappingError`
naming the file and the problem, so a bad edit fails at load, not halfway through a batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from .errors import MappingError

SCHEMA_FILE = "schema/code-table.schema.json"


def mappings_dir() -> Path:
    """The directory holding the tables: next to the package when installed, else the repo's."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "mappings", here.parent.parent / "mappings"):
        if (candidate / SCHEMA_FILE).is_file():
            return candidate
    raise MappingError("mapping tables not found (looked in fhirtrial/mappings and the source "
                       "checkout's mappings/)")


@dataclass(frozen=True, slots=True)
class Target:
    """One value's mapping onto one FHIR target (code None when unmatched)."""

    system: str
    code: str | None
    display: str | None
    equivalence: str
    comment: str | None = None

    def coding(self) -> dict[str, str] | None:
        """A FHIR Coding, or None when there is no code."""
        if self.code is None:
            return None
        out = {"system": self.system, "code": self.code}
        if self.display:
            out["display"] = self.display
        return out


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    path: Path
    doc: dict[str, Any]

    @property
    def ctgov_system(self) -> str | None:
        return self.doc.get("ctgov_system")

    @property
    def label(self) -> str:
        return str(self.doc.get("label") or self.name)

    def values(self) -> list[str]:
        """Every registry value the table knows (mapped and unmapped)."""
        return [*self.doc["map"], *self.doc["unmapped"]]

    def entry(self, value: str) -> dict[str, Any] | None:
        return self.doc["map"].get(value)

    def display(self, value: str) -> str:
        """The human wording of a registry value (the value itself when the table lacks it)."""
        e = self.entry(value)
        return str(e["display"]) if e else value

    def target(self, value: str, target: str) -> Target | None:
        """The mapping of ``value`` onto ``target``; None when the value is not in the table."""
        e = self.entry(value)
        if e is None or target not in e:
            return None
        t = e[target]
        return Target(t.get("system") or self.doc["targets"][target]["system"], t["code"],
                      t.get("display"), t["equivalence"], t.get("comment"))

    def ctgov_coding(self, value: str) -> dict[str, str] | None:
        """The registry's own value as a Coding in the documented CT.gov system."""
        if not self.ctgov_system:
            return None
        return {"system": self.ctgov_system, "code": value, "display": self.display(value)}


@cache
def _schema() -> dict[str, Any]:
    path = mappings_dir() / SCHEMA_FILE
    try:
        schema: dict[str, Any] = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise MappingError(f"{path}: cannot read the table schema: {e}") from None
    return schema


def load_table_file(path: Path) -> Table:
    """Load and check one table file (uncached; ``table()`` is the cached entry point)."""
    try:
        doc = json.loads(path.read_text("utf-8"))
    except OSError as e:
        raise MappingError(f"{path.name}: cannot read: {e.strerror}", location=str(path)) from None
    except ValueError as e:
        raise MappingError(f"{path.name}: not valid JSON: {e}", location=str(path)) from None
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise MappingError(f"{path.name}: {where}: {err.message}", location=str(path))
    targets = doc["targets"]
    for value, entry in doc["map"].items():
        for key in entry:
            if key not in ("display", "pattern") and key not in targets:
                raise MappingError(f"{path.name}: map/{value}: target {key!r} is not declared in "
                                   f"'targets'", location=str(path))
        if value in doc["unmapped"]:
            raise MappingError(f"{path.name}: {value!r} is both mapped and unmapped",
                               location=str(path))
    if doc["table"] != path.stem:
        raise MappingError(f"{path.name}: 'table' is {doc['table']!r}, expected {path.stem!r}",
                           location=str(path))
    return Table(path.stem, path, doc)


def is_data_table(name: str) -> bool:
    """A table with a schema of its own (not the shared code-table schema)."""
    return (mappings_dir() / "schema" / f"{name}.schema.json").is_file()


@cache
def data_table(name: str) -> dict[str, Any]:
    """``mappings/<name>.json`` checked against ``mappings/schema/<name>.schema.json``, cached."""
    base = mappings_dir()
    path = base / f"{name}.json"
    try:
        doc: dict[str, Any] = json.loads(path.read_text("utf-8"))
        schema = json.loads((base / "schema" / f"{name}.schema.json").read_text("utf-8"))
    except OSError as e:
        raise MappingError(f"{name}.json: cannot read it or its schema: {e.strerror}",
                           location=str(path)) from None
    except ValueError as e:
        raise MappingError(f"{name}.json: not valid JSON: {e}", location=str(path)) from None
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc),
                    key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise MappingError(f"{name}.json: {where}: {errors[0].message}", location=str(path))
    return doc


@cache
def table(name: str) -> Table:
    """The named table (``"overall-status"``, ``"phase"`` …), loaded once and checked."""
    path = mappings_dir() / f"{name}.json"
    if not path.is_file():
        raise MappingError(f"{name}.json: no such mapping table in {path.parent}")
    return load_table_file(path)


def all_tables() -> dict[str, Table]:
    """Every code table in the mappings directory, each checked."""
    return {p.stem: table(p.stem) for p in sorted(mappings_dir().glob("*.json"))
            if not is_data_table(p.stem)}
