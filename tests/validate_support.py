"""Shared set-up for the validator tests: the npm tarballs of the official FHIR packages.

tests/node/fhirjs/setup.sh fetches them into <repo>/.cache/fhir-packages/. Without node/npm the
tests that need them skip (saying why); with node present and the tarballs missing they fail,
telling the user to run the set-up script.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NPM_CACHE = ROOT / ".cache" / "fhir-packages"
FHIRJS_DIR = ROOT / "tests" / "node" / "fhirjs"
SETUP = "tests/node/fhirjs/setup.sh"
R5_CORE = NPM_CACHE / "hl7.fhir.r5.core-5.0.0.tgz"
R5_EXAMPLES = NPM_CACHE / "hl7.fhir.r5.examples-5.0.0.tgz"
R4_EXAMPLES = NPM_CACHE / "hl7.fhir.r4.examples-4.0.1.tgz"
HAVE_NODE = shutil.which("node") is not None and shutil.which("npm") is not None

#: the resource types the acceptance criteria name
EXAMPLE_TYPES = ("ResearchStudy", "PlanDefinition", "EvidenceVariable", "Group", "Location",
                 "Organization", "Bundle")


def require_tarball(path: Path) -> Path:
    """The tarball, or a skip (no node) / a loud failure (node present, set-up not run)."""
    if not HAVE_NODE:
        pytest.skip("node/npm are not installed: the official FHIR packages come from npm")
    if not path.is_file():
        pytest.fail(f"{path.name} is missing from {NPM_CACHE}: run {SETUP} first "
                    "(it npm-packs the official FHIR packages the validator tests use)",
                    pytrace=False)
    return path


def example_names(tgz: Path, types: tuple[str, ...] = EXAMPLE_TYPES) -> list[str]:
    """Member names of the examples of ``types`` in a package tarball ([] when absent)."""
    if not tgz.is_file():
        return []
    with tarfile.open(tgz, "r:gz") as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    return sorted(n for n in names
                  if n.count("/") == 1 and n.endswith(".json")
                  and n.split("/", 1)[1].split("-", 1)[0] in types)


def read_members(tgz: Path, names: list[str]) -> dict[str, Any]:
    """JSON of the named tarball members."""
    out: dict[str, Any] = {}
    with tarfile.open(tgz, "r:gz") as tar:
        for name in names:
            fh = tar.extractfile(name)
            assert fh is not None
            out[name] = json.load(fh)
    return out
