"""Keep a loaded store current: the studies the registry changed since the store's newest.

A converted ResearchStudy carries the registry's ``lastUpdatePostDate`` as ``date``. The newest
``date`` in the store is where the registry is asked to resume (``filter.advanced=
AREA[LastUpdatePostDate]RANGE[<date>,MAX]``, paged): every study posted as updated on or after
that day is converted again and written through the bulk writer (a savepoint per study,
conditional updates keyed on identifiers), so an unchanged study is rewritten at most once per
day boundary and nothing the registry changed is missed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import FhirtrialError
from .store import SQLiteStore

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class StoreSync:
    """What a store sync did."""

    since: str
    stored: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def newest_update(store: SQLiteStore) -> str | None:
    """The newest ResearchStudy ``date`` (the registry's lastUpdatePostDate) in the store."""
    row = store._conn().execute(
        "SELECT max(json_extract(CAST(body AS TEXT), '$.date')) FROM current "
        "WHERE type='ResearchStudy' AND body IS NOT NULL").fetchone()
    value = row[0] if row else None
    return value[:10] if isinstance(value, str) and _DAY.match(value[:10]) else None


def stored_versions(store: SQLiteStore) -> list[str]:
    """The FHIR versions the store holds studies in (R5 first)."""
    rows = store._conn().execute(
        "SELECT DISTINCT fv FROM current WHERE type='ResearchStudy'").fetchall()
    return sorted((r[0] for r in rows), key=lambda v: v != "R5")


def sync_store(store: SQLiteStore, registry: Any, since: str, versions: list[str], *,
               validate: bool = False, page_size: int = 1000,
               on_study: Callable[[str, str | None], None] | None = None) -> StoreSync:
    """Convert and store every study the registry updated on or after ``since``."""
    from ..cli.serve import keep_ids
    from ..convert import convert_study
    from ..sources.ctgov_json import read_study
    from .bundles import process
    from .searchparams import REGISTRY

    if not _DAY.match(since):
        raise FhirtrialError(f"--since {since!r}: expected a day, YYYY-MM-DD")
    result = StoreSync(since)
    with store.bulk() as writer:
        for obj in registry.updated_since(since, page_size=page_size):
            nct = obj.get("protocolSection", {}).get("identificationModule", {}).get("nctId")
            name = str(nct or "<study without nctId>")
            try:
                study = read_study(obj, name)
                for fv in versions:
                    bundle = convert_study(study, fhir_version=fv, bundle_type="transaction")
                    process(writer, fv, keep_ids(bundle.bundle), base="", validate=validate,
                            supported=REGISTRY[fv].__contains__, default_count=20,
                            representation=False)
            except FhirtrialError as e:
                result.failed.append((name, e.message))
                if on_study:
                    on_study(name, e.message)
                continue
            result.stored += 1
            if on_study:
                on_study(name, None)
    return result
