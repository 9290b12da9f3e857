"""Criterion lines on the wrong side (inclusion vs exclusion), measured against two oracles.

- the LCT corpus (``../shared/eligibility-lct/docs.jsonl``): each document's ``sections``
  field gives the side of every line, corrected where
  ``fixtures/eligibility/sections-lct-oracle-errors.json`` says (read and found wrong by hand);
- the shared records (``../shared/fixtures/ctgov-v2``, ``ctgov-v2-partial``, ``ctgov-xml``):
  ``fixtures/eligibility/sections.json`` gives, per record, the lines where a side starts
  (labelled by hand; ``null``: a stretch that states neither side).

Each criterion the parser returns is aligned with the text line it came from (its first line
ends the source line, a continuation line is the source line stripped); a line no criterion
holds (a heading) has no side. Run it with the parser to measure on the path, e.g.::

    PYTHONPATH=src python scripts/eligibility_sections.py --show 20
    PYTHONPATH=/tmp/before/src python scripts/eligibility_sections.py   # another revision
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
LCT = SHARED / "eligibility-lct" / "docs.jsonl"
LABELS = ROOT / "fixtures" / "eligibility" / "sections.json"
LCT_ERRORS = ROOT / "fixtures" / "eligibility" / "sections-lct-oracle-errors.json"
FOLDERS = (("ctgov-v2", "*.json"), ("ctgov-v2-partial", "*.json"), ("ctgov-xml", "*.xml"))


def split_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def sides(text: str) -> list[bool | None]:
    """Per text line: True (exclusion), False (inclusion) or None (held by no criterion)."""
    from fhirtrial.eligibility import parse_criteria, unescape

    flat: list[tuple[str, bool]] = []
    for root in parse_criteria(text):
        for c in root.walk():
            flat += [(part, c.exclude) for part in c.text.split("\n")]
    out: list[bool | None] = []
    j = 0
    for line in split_lines(text):
        clean = unescape(line).strip()
        if clean and j < len(flat) and flat[j][0] and clean.endswith(flat[j][0]):
            out.append(flat[j][1])
            j += 1
        else:
            out.append(None)
    if j != len(flat):
        raise AssertionError(f"criteria not aligned with the text: {flat[j:j + 1]}")
    return out


def expected_from_labels(n: int, starts: list[list[Any]]) -> list[bool | None]:
    """The side of each of ``n`` lines from [line, side] starts (inclusion before the first;
    a null side: neither)."""
    out: list[bool | None] = []
    side: bool | None = False
    k = 0
    for i in range(n):
        while k < len(starts) and starts[k][0] <= i:
            side = None if starts[k][1] is None else starts[k][1] == "exclusion"
            k += 1
        out.append(side)
    return out


def shared_records() -> Iterator[tuple[str, str]]:
    """(folder/file, eligibility text) of every shared record that has criteria text."""
    from fhirtrial.sources import read_inputs

    for folder, pattern in FOLDERS:
        for path in sorted((SHARED / "fixtures" / folder).glob(pattern)):
            for rec in read_inputs([str(path)]):
                if rec.study is not None and rec.study.eligibility.criteria:
                    yield f"{folder}/{path.name}", rec.study.eligibility.criteria


def lct_docs() -> Iterator[tuple[str, str, list[str]]]:
    with LCT.open(encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            yield d["doc"], d["text"], d["sections"]


def lct_expected(doc: str, sections: list[str],
                 corrections: dict[str, list[dict[str, Any]]]) -> list[bool | None]:
    """The side of every line of an LCT document: its ``sections``, corrected by hand."""
    out: list[bool | None] = [s == "exclusion" for s in sections]
    for c in corrections.get(doc, []):
        a, b = c["lines"]
        for i in range(a, b + 1):
            out[i] = None if c["side"] is None else c["side"] == "exclusion"
    return out


def wrong_lines(text: str, expected: list[bool | None]) -> list[tuple[int, str, bool]]:
    got = sides(text)
    lines = split_lines(text)
    return [(i, lines[i], bool(expected[i])) for i, s in enumerate(got)
            if s is not None and expected[i] is not None and s != expected[i]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--show", type=int, default=0, help="print up to N wrong lines")
    args = ap.parse_args(argv)
    if not SHARED.is_dir():
        print("../shared is not beside the checkout", file=sys.stderr)
        return 2
    shown = 0
    corrections = json.loads(LCT_ERRORS.read_text(encoding="utf-8"))["corrections"]
    docs = lines = bad_docs = bad_lines = 0
    for doc, text, sections in lct_docs():
        bad = wrong_lines(text, lct_expected(doc, sections, corrections))
        docs += 1
        lines += sum(1 for s in sides(text) if s is not None)
        if bad:
            bad_docs += 1
            bad_lines += len(bad)
            for i, line, exp in bad[:max(0, args.show - shown)]:
                print(f"  lct {doc}:{i} expected {'exclusion' if exp else 'inclusion'}: "
                      f"{line.strip()[:100]}")
                shown += 1
    print(f"LCT: {bad_lines} of {lines} criterion lines on the wrong side, in {bad_docs} of "
          f"{docs} documents")
    labels = json.loads(LABELS.read_text(encoding="utf-8"))["records"]
    recs = lines = bad_recs = bad_lines = 0
    for key, text in shared_records():
        n = len(split_lines(text))
        bad = wrong_lines(text, expected_from_labels(n, labels[key]))
        recs += 1
        lines += sum(1 for s in sides(text) if s is not None)
        if bad:
            bad_recs += 1
            bad_lines += len(bad)
            for i, line, exp in bad[:max(0, args.show - shown)]:
                print(f"  {key}:{i} expected {'exclusion' if exp else 'inclusion'}: "
                      f"{line.strip()[:100]}")
                shown += 1
    print(f"shared records: {bad_lines} of {lines} criterion lines on the wrong side, in "
          f"{bad_recs} of {recs} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
