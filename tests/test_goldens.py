"""Golden Bundles: a handful of records whose whole output was read and reviewed."""

from __future__ import annotations

import difflib

import pytest

from goldens import CASES, EXPECTED, render


@pytest.mark.parametrize(("name", "path", "why"), CASES, ids=[c[0] for c in CASES])
def test_bundle_matches_its_reviewed_golden(name, path, why) -> None:
    if not path.is_file():
        pytest.skip(f"{path} is absent (../shared is not beside the repository)")
    expected = (EXPECTED / f"{name}.json").read_bytes()
    actual = render(path)
    if actual != expected:
        diff = difflib.unified_diff(expected.decode().splitlines(), actual.decode().splitlines(),
                                    "expected", "actual", lineterm="", n=2)
        pytest.fail(f"{name} ({why}) differs from its golden; if the change is intended, run "
                    "python tests/goldens.py and review git diff fixtures/expected:\n"
                    + "\n".join(list(diff)[:80]))
