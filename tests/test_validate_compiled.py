"""Compiled types kept beside the package (validate/definitions.py, ``.fhirtrial-compiled/``).

A validating process used to parse the StructureDefinition of every type it met (64 files,
a tenth of a second, for one converted R4 Bundle); the compiled type is now kept for the next
process. Checked here: the kept copy is the same TypeInfo the StructureDefinition gives, it is
used only when made by this format from the same file (size and modification time), anything
unreadable is compiled anew, a read-only package still validates, and a name that is not a
type name never becomes a path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from fhirtrial.packages import install, load, locate
from fhirtrial.validate import Validator
from fhirtrial.validate import definitions as definitions_module
from fhirtrial.validate.definitions import COMPILED_DIR, Definitions
from validate_support import R4_EXAMPLES, require_tarball

TYPES = ("ResearchStudy", "Bundle", "Extension", "Timing", "Reference", "string", "code",
         "dateTime", "uri", "xhtml", "positiveInt", "Resource", "NoSuchType")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    install(str(require_tarball(R4_EXAMPLES)), tmp_path)
    found = locate("hl7.fhir.r4.examples", "4.0.1", tmp_path)
    assert found is not None
    return found


def _compiled_from_sd(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names compiled from their StructureDefinition from now on."""
    seen: list[str] = []
    real = Definitions._compile_sd

    def spy(self: Definitions, name: str) -> Any:
        seen.append(name)
        return real(self, name)

    monkeypatch.setattr(Definitions, "_compile_sd", spy)
    return seen


def test_kept_types_are_the_compiled_ones(folder: Path, monkeypatch: pytest.MonkeyPatch):
    first = Definitions(load(folder))
    want = {name: first.type_info(name) for name in TYPES}
    assert want["NoSuchType"] is None
    assert want["string"] is not None
    assert want["string"].regex  # the package's regex, kept with the type
    assert (folder / COMPILED_DIR / "ResearchStudy.json").is_file()
    assert not (folder / COMPILED_DIR / "NoSuchType.json").exists()
    from_sd = _compiled_from_sd(monkeypatch)
    again = Definitions(load(folder))
    assert {name: again.type_info(name) for name in TYPES} == want
    assert from_sd == ["NoSuchType"]  # the rest came from the kept copies


def test_a_changed_or_broken_copy_is_compiled_anew(folder: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    want = Definitions(load(folder)).type_info("ResearchStudy")
    sd = folder / "StructureDefinition-ResearchStudy.json"
    st = sd.stat()
    os.utime(sd, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # the package changed
    kept = folder / COMPILED_DIR / "Timing.json"
    Definitions(load(folder)).type_info("Timing")
    kept.write_bytes(b'{"stamp": [')  # torn
    (folder / COMPILED_DIR / "Bundle.json").write_bytes(b'{"stamp": 1, "type": []}')
    from_sd = _compiled_from_sd(monkeypatch)
    defs = Definitions(load(folder))
    assert defs.type_info("ResearchStudy") == want
    assert defs.type_info("Timing") is not None
    assert defs.type_info("Bundle") is not None
    assert from_sd == ["ResearchStudy", "Timing", "Bundle"]
    from_sd.clear()
    again = Definitions(load(folder))
    assert [again.type_info(n) for n in ("ResearchStudy", "Timing", "Bundle")] \
        == [defs.type_info(n) for n in ("ResearchStudy", "Timing", "Bundle")]
    assert from_sd == []  # rewritten


def test_an_unwritable_package_still_validates(folder: Path, monkeypatch: pytest.MonkeyPatch):
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise PermissionError("read-only")

    monkeypatch.setattr(definitions_module.tempfile, "mkstemp", refuse)
    v = Validator("R4", load(folder))
    found = v.findings({"resourceType": "ResearchStudy", "status": "not-a-status"})
    assert any(f.severity == "error" for f in found)
    assert not list((folder / COMPILED_DIR).glob("*.json"))


def test_a_resource_type_is_never_a_path(folder: Path):
    defs = Definitions(load(folder))
    for name in ("../ResearchStudy", "ResearchStudy/x", "", ".", "Research Study"):
        assert defs.type_info(name) is None
    assert not (folder / "ResearchStudy.json").exists()


def test_copies_kept_by_another_version_of_the_compiler_are_compiled_anew(
        folder: Path, monkeypatch: pytest.MonkeyPatch):
    """The stamp carries the digest of definitions.py's source: a copy written before a change
    to the compiler (even one made without bumping COMPILED_FORMAT) is never used."""
    want = Definitions(load(folder)).type_info("ResearchStudy")
    monkeypatch.setattr(definitions_module, "_SOURCE_DIGEST", "another-compiler")
    from_sd = _compiled_from_sd(monkeypatch)
    defs = Definitions(load(folder))
    assert defs.type_info("ResearchStudy") == want
    assert from_sd == ["ResearchStudy"]
