"""Loads the readers' mapping tables (``mappings/*.json``), each checked against its schema once.

Interim loader: ``fhirtrial.tables`` (the converter's loader) replaces it once it lands.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from ..errors import MappingError


def _mappings_dir() -> Path:
    try:
        installed = Path(str(resources.files("fhirtrial.mappings")))
        if installed.is_dir():
            return installed
    except ModuleNotFoundError:
        pass
    # a source checkout: mappings/ sits at the repository root beside src/
    return Path(__file__).resolve().parents[3] / "mappings"


@cache
def load_table(name: str) -> dict[str, Any]:
    """``mappings/<name>.json``, validated against ``mappings/schema/<name>.schema.json``."""
    base = _mappings_dir()
    try:
        table = json.loads((base / f"{name}.json").read_text(encoding="utf-8"))
        schema = json.loads((base / "schema" / f"{name}.schema.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise MappingError(f"mapping table {name}: cannot be loaded: {e}") from None
    try:
        jsonschema.validate(table, schema)
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path)
        raise MappingError(f"mapping table {name}: {e.message} (at /{where})") from None
    return table
