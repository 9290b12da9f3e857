"""Precision and recall of the eligibility parser against the hand-labelled criterion lines.

    python bench/bench_eligibility.py            # table per fact kind
    python bench/bench_eligibility.py -v         # also every false positive / missed fact
    python bench/bench_eligibility.py --check    # exit 1 when a kind's precision is < 0.95

The labels (fixtures/eligibility/labelled.jsonl) were written by reading each line, before the
parser was run on it: the structure a careful reader assigns, including lines with none.
A predicted fact counts as correct only when every field matches a labelled fact of the line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fhirtrial.eligibility import facts_for  # noqa: E402
from fhirtrial.eligibility.tables import tables  # noqa: E402

LABELLED = ROOT / "fixtures" / "eligibility" / "labelled.jsonl"
KINDS = ("age", "sex", "healthy-volunteers", "pregnancy", "lactation", "lab", "time-window",
         "condition")
THRESHOLD = 0.95


def _n(v: Any) -> Any:
    return round(float(v), 6) if isinstance(v, int | float) and not isinstance(v, bool) else v


def key(kind: str, d: dict[str, Any]) -> tuple:
    """The comparable identity of one fact (labelled or predicted)."""
    if kind == "age":
        return (kind, _n(d["low"]), _n(d["high"]), d["low"] is None or d["low_inclusive"],
                d["high"] is None or d["high_inclusive"], d["unit"])
    if kind == "lab":
        unit = d.get("unit")
        relative = d.get("relative")
        if relative in ("ULN", "LLN"):
            unit = None
        else:
            lab = tables().lab(d["test"]) if d["test"] in {x.key for x in tables().labs} \
                else None
            if lab is not None:
                u = lab.unit_for(unit) if unit else None
                unit = u.ucum if u else unit
                if not lab.requires_unit and unit in (None, lab.unit):
                    unit = None
        return (kind, d["test"], _n(d["low"]), _n(d["high"]),
                d["low"] is None or d["low_inclusive"], d["high"] is None or d["high_inclusive"],
                unit, relative)
    if kind == "time-window":
        return (kind, d["comparator"], _n(d["value"]), d["unit"])
    if kind in ("pregnancy", "lactation", "healthy-volunteers"):
        return (kind, bool(d["value"]))
    if kind == "sex":
        return (kind, d["sex"])
    if kind == "condition":
        return (kind, d["key"])
    raise ValueError(kind)


def run(verbose: bool) -> dict[str, dict[str, float]]:
    lines = [json.loads(x) for x in LABELLED.read_text(encoding="utf-8").splitlines() if x]
    stats = {k: Counter() for k in KINDS}
    for row in lines:
        want = Counter(key(f["kind"], f) for f in row["facts"])
        got = Counter(key(f.kind, f.data) for f in facts_for(row["text"], row["exclude"]))
        tp = want & got
        for k in KINDS:
            stats[k]["labelled"] += sum(n for x, n in want.items() if x[0] == k)
            stats[k]["predicted"] += sum(n for x, n in got.items() if x[0] == k)
            stats[k]["correct"] += sum(n for x, n in tp.items() if x[0] == k)
        if verbose and (got - want or want - got):
            print(f"- {row['text'][:110]!r}")
            for x in (got - want).elements():
                print(f"    WRONG  {x}")
            for x in (want - got).elements():
                print(f"    MISSED {x}")
    out = {}
    for k, s in stats.items():
        p = s["correct"] / s["predicted"] if s["predicted"] else 1.0
        r = s["correct"] / s["labelled"] if s["labelled"] else 1.0
        out[k] = {"labelled": s["labelled"], "predicted": s["predicted"],
                  "correct": s["correct"], "precision": p, "recall": r}
    print(f"{len(lines)} labelled criterion lines, "
          f"{sum(1 for r in lines if not r['facts'])} with no structure")
    print(f"{'kind':<20}{'labelled':>9}{'predicted':>10}{'correct':>9}{'precision':>11}"
          f"{'recall':>8}")
    for k, v in out.items():
        print(f"{k:<20}{v['labelled']:>9}{v['predicted']:>10}{v['correct']:>9}"
              f"{v['precision']:>11.3f}{v['recall']:>8.3f}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    out = run(args.verbose)
    bad = [k for k, v in out.items() if v["predicted"] and v["precision"] < THRESHOLD]
    if args.check and bad:
        print(f"precision below {THRESHOLD}: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
