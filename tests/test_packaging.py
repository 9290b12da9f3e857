"""Packaging: a plain (non-editable) install carries every package and the mapping tables."""

from __future__ import annotations

import tomllib

from conftest import ROOT


def _declared() -> set[str]:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(conf["tool"]["setuptools"]["packages"])


def test_every_source_package_is_declared_in_pyproject() -> None:
    src = ROOT / "src"
    found = {".".join(p.parent.relative_to(src).parts) for p in src.rglob("__init__.py")}
    missing = found - _declared()
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_mappings_are_shipped_as_package_data() -> None:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert conf["tool"]["setuptools"]["package-dir"]["fhirtrial.mappings"] == "mappings"
    assert "fhirtrial.mappings" in _declared()
    data = conf["tool"]["setuptools"]["package-data"]["fhirtrial.mappings"]
    assert "*.json" in data
    assert "schema/*.json" in data
