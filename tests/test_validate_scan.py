"""The one-pass scan (Definitions.scan) gives the findings of the walk it replaced.

The validator used to build a node for every value of a resource (Definitions.walk) and make
separate passes over them for required elements and primitive types; the scan does those checks
as it walks and keeps only the nodes a later layer reads. Compared here: the whole validator's
findings, case by case, with the scan and with that walk-and-passes reference, over the R4
mutation corpus (official examples, converted Bundles and mutations aimed at primitives), the R5
one, without a package (the models' definitions), and with one layer at a time (the scan then
checks nothing itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fhirtrial.packages import install, load, locate
from fhirtrial.validate import Validator
from fhirtrial.validate.definitions import Definitions, Scan
from fhirtrial.validate.structure import check_required
from validate_support import R4_EXAMPLES, R5_CORE, require_tarball


def _reference_scan(self: Definitions, resource: dict[str, Any], expr: str,
                    primitives: Any = None) -> Scan:
    """What the validator did before the scan: every value a node, then the checks over them."""
    scan = Scan(primitives)
    scan.nodes = list(self.walk(resource, expr))
    if primitives is not None:
        scan.required = check_required(self, resource, expr, scan.nodes)
        scan.primitive = primitives.check(scan.nodes)
    return scan


def _compare(make: Any, cases: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
             layers: tuple[str, ...] | None = None) -> list[list[Any]]:
    fast = make()
    args = (layers,) if layers else ()
    got = [fast.findings(case, *args) for case in cases]
    with monkeypatch.context() as m:
        m.setattr(Definitions, "scan", _reference_scan)
        slow = make()
        want = [slow.findings(case, *args) for case in cases]
    assert [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w] == []
    return got


@pytest.fixture(scope="module")
def r4_cases() -> list[dict[str, Any]]:
    from test_validate_modelproof import _cases

    return _cases()


@pytest.fixture(scope="module")
def r4_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("pkgs")
    install(str(require_tarball(R4_EXAMPLES)), cache)
    folder = locate("hl7.fhir.r4.examples", "4.0.1", cache)
    assert folder is not None
    return folder


def test_scan_leaves_every_r4_finding(r4_cases: list[dict[str, Any]], r4_package: Path,
                                      monkeypatch: pytest.MonkeyPatch):
    got = _compare(lambda: Validator("R4", load(r4_package)), r4_cases, monkeypatch)
    # the corpus exercises what the scan checks itself
    codes = {f.code for fs in got for f in fs}
    assert {"required", "value", "invariant", "code-invalid"} <= codes, codes
    assert sum(1 for fs in got if any(f.severity == "error" for f in fs)) >= 200


@pytest.mark.parametrize("layer", ["structure", "terminology", "invariants", "bundle"])
def test_scan_leaves_every_finding_of_one_layer(layer: str, r4_cases: list[dict[str, Any]],
                                                r4_package: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    _compare(lambda: Validator("R4", load(r4_package)), r4_cases[::3], monkeypatch, (layer,))


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_scan_leaves_every_finding_without_a_package(version: str,
                                                     r4_cases: list[dict[str, Any]],
                                                     monkeypatch: pytest.MonkeyPatch):
    _compare(lambda: Validator(version), r4_cases[::2], monkeypatch)


def test_scan_leaves_every_r5_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from fhirtrial.convert import convert_study
    from fhirtrial.sources import read_inputs
    from test_validate_fast import _records, mutations
    from test_validate_modelproof import _aimed

    install(str(require_tarball(R5_CORE)), tmp_path)
    folder = locate("hl7.fhir.r5.core", "5.0.0", tmp_path)
    assert folder is not None
    cases: list[dict[str, Any]] = []
    for path in _records(2):
        for rec in read_inputs([path]):
            if rec.study is not None:
                bundle = convert_study(rec.study).bundle
                cases += [case for _, case in mutations(bundle)] + _aimed(bundle)
    got = _compare(lambda: Validator("R5", load(folder)), cases, monkeypatch)
    assert sum(1 for fs in got if any(f.severity == "error" for f in fs)) >= 50
