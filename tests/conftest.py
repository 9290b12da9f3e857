"""Shared test fixtures: paths to the project's fixtures and to ../shared (read-only material)."""

from __future__ import annotations

from pathlib import Path

import pytest

# real peers (the Medplum FHIR engine): fixtures `medplum`, `fresh_medplum`
pytest_plugins = ["peers"]

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SHARED = ROOT.parent / "shared"
SHARED_V2 = SHARED / "fixtures" / "ctgov-v2"
SHARED_V2_PARTIAL = SHARED / "fixtures" / "ctgov-v2-partial"
SHARED_XML = SHARED / "fixtures" / "ctgov-xml"


def shared_files(folder: Path, pattern: str = "*") -> list[Path]:
    """The files of a ../shared folder, or [] where ../shared is absent (a user's machine)."""
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared (the project's read-only material) is not beside it"
)
