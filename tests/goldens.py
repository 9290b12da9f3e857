"""The golden cases: input record → its reviewed expected Bundle under fixtures/expected/.

``python tests/goldens.py`` rewrites the expected files from the current code; the result is a
diff to read and review (git diff fixtures/expected) before it is committed, never a way to make
a failing test pass unread.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_V2 = ROOT.parent / "shared" / "fixtures" / "ctgov-v2"
EXPECTED = ROOT / "fixtures" / "expected"

#: (case name, input path, why this record is a golden case)
CASES = [
    ("NCT06534528", ROOT / "fixtures" / "seed" / "NCT06534528.json",
     "the seed trial: four dose cohorts, related trials, DOIs, computable criteria"),
    ("NCT00353704", SHARED_V2 / "NCT00353704.json", "a completed trial with posted results"),
    ("NCT02552212", SHARED_V2 / "NCT02552212.json", "105 sites"),
    ("NCT00973089", SHARED_V2 / "NCT00973089.json", "a withdrawn trial (enrollment 0 ACTUAL)"),
    ("NCT05521750", SHARED_V2 / "NCT05521750.json", "an observational study"),
]


def render(path: Path) -> bytes:
    """The Bundle bytes ``fhirtrial convert`` writes for one record (R5 collection)."""
    from fhirtrial.convert import convert_study, dumps
    from fhirtrial.sources import read_inputs

    (rec,) = list(read_inputs([str(path)]))
    assert rec.study is not None, rec.error
    return dumps(convert_study(rec.study).bundle) + b"\n"


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    EXPECTED.mkdir(parents=True, exist_ok=True)
    for name, path, _why in CASES:
        if not path.is_file():
            print(f"skipped {name}: {path} is absent", file=sys.stderr)
            continue
        (EXPECTED / f"{name}.json").write_bytes(render(path))
        print(f"wrote fixtures/expected/{name}.json", file=sys.stderr)


if __name__ == "__main__":
    main()
