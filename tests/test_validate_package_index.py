"""The package index: the validator reads the conformance resources it needs, one file each,
through an index written at install (or first use), and never trusts an index that is stale."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from fhirtrial.packages import INDEX_NAME, FhirPackage, build_index, install, package_index


def _package(tmp_path: Path) -> Path:
    root = tmp_path / "pkg" / "package"
    root.mkdir(parents=True)
    (root / "package.json").write_text(json.dumps({"name": "x.test", "version": "1.0.0"}))
    for i in range(3):
        (root / f"ValueSet-v{i}.json").write_text(json.dumps(
            {"resourceType": "ValueSet", "url": f"http://x/ValueSet/v{i}", "name": f"V{i}"}))
    (root / "CodeSystem-c.json").write_text(json.dumps(
        {"resourceType": "CodeSystem", "url": "http://x/cs", "content": "complete"}))
    (root / "ValueSet-not-a-vs.json").write_text(json.dumps({"resourceType": "CodeSystem",
                                                              "url": "http://x/odd"}))
    return root


def test_index_maps_urls_to_files_and_reads_lazily(tmp_path: Path):
    root = _package(tmp_path)
    pkg = FhirPackage(root)
    assert set(pkg.value_sets) == {f"http://x/ValueSet/v{i}" for i in range(3)}
    assert "http://x/odd" not in pkg.value_sets
    assert "http://x/odd" not in pkg.code_systems
    assert pkg.code_systems["http://x/cs"]["content"] == "complete"
    assert pkg.value_sets.get("http://x/none") is None
    assert (root / INDEX_NAME).is_file()  # written for the next process
    assert pkg.value_sets["http://x/ValueSet/v1"]["name"] == "V1"


def test_a_stale_index_is_rebuilt(tmp_path: Path):
    root = _package(tmp_path)
    assert len(FhirPackage(root).value_sets) == 3
    (root / "ValueSet-v9.json").write_text(json.dumps(
        {"resourceType": "ValueSet", "url": "http://x/ValueSet/v9"}))
    assert "http://x/ValueSet/v9" in FhirPackage(root).value_sets  # a file added: rebuilt
    (root / "ValueSet-v0.json").unlink()
    assert "http://x/ValueSet/v0" not in FhirPackage(root).value_sets
    index = json.loads((root / INDEX_NAME).read_text())
    index["format"] = -1
    (root / INDEX_NAME).write_text(json.dumps(index))
    assert package_index(root)["format"] != -1  # another format: rebuilt


def test_read_only_package_indexes_under_the_data_dir(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    root = _package(tmp_path)
    monkeypatch.setenv("FHIRTRIAL_DATA_DIR", str(tmp_path / "data"))
    root.chmod(0o555)
    try:
        assert len(FhirPackage(root).value_sets) == 3
        assert not (root / INDEX_NAME).exists()
        assert list((tmp_path / "data" / "fhir-package-index").glob("*.json"))
    finally:
        root.chmod(0o755)


def test_unwritable_index_falls_back_to_the_data_dir(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    import fhirtrial.packages as packages

    root = _package(tmp_path)
    monkeypatch.setenv("FHIRTRIAL_DATA_DIR", str(tmp_path / "data"))
    real = packages.write_index
    monkeypatch.setattr(packages, "write_index",
                        lambda r, i, target=None: target is not None and real(r, i, target))
    assert len(FhirPackage(root).value_sets) == 3
    assert not (root / INDEX_NAME).exists()
    (_fallback,) = (tmp_path / "data" / "fhir-package-index").glob("*.json")
    monkeypatch.setattr(packages, "build_index", lambda r: pytest.fail("rebuilt"))
    assert len(FhirPackage(root).value_sets) == 3  # the data-dir copy is read


def test_concurrent_first_runs_agree(tmp_path: Path):
    root = _package(tmp_path)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        len(FhirPackage(root).value_sets))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [3] * 8
    assert json.loads((root / INDEX_NAME).read_text()) == build_index(root)
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]


def test_install_writes_the_index(tmp_path: Path):
    import tarfile

    src = _package(tmp_path)
    tgz = tmp_path / "x.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(src, arcname="package")
    folder = install(str(tgz), tmp_path / "cache")
    assert (folder / INDEX_NAME).is_file()
    assert json.loads((folder / INDEX_NAME).read_text()) == build_index(folder)
