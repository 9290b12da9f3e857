"""Precision and recall of the eligibility parser against the hand-labelled criterion lines.

    python bench/bench_eligibility.py            # table per fact kind
    python bench/bench_eligibility.py -v         # also every false positive / missed fact
    python bench/bench_eligibility.py --check    # exit 1 when a kind's precision is < 0.95
    python bench/bench_eligibility.py --speed    # also the parser's lines/s

Speed is the whole eligibility step a conversion runs (split into criteria, then structure each
line): criterion lines per CPU second (process time, steadier than wall time on a shared
machine) over the labelled lines, and over the LCT documents when
``../shared/eligibility-lct/docs.jsonl`` is there.

The labels (fixtures/eligibility/labelled.jsonl) were written by reading each line, before the
parser was run on it: the structure a careful reader assigns, including lines with none.
A predicted fact counts as correct only when every field matches a labelled fact of the line.
``run(quick)`` gives the figures as rows for ``bench/run.py`` (the same in both modes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

from benchlib import row as result_row  # noqa: E402

from fhirtrial.eligibility import criteria_for, facts_for  # noqa: E402
from fhirtrial.eligibility.tables import tables  # noqa: E402

LABELLED = ROOT / "fixtures" / "eligibility" / "labelled.jsonl"
LCT_DOCS = ROOT.parent / "shared" / "eligibility-lct" / "docs.jsonl"
KINDS = ("age", "sex", "healthy-volunteers", "pregnancy", "lactation", "lab", "measurement",
         "time-window", "condition")
THRESHOLD = 0.95


def _n(v: Any) -> Any:
    return round(float(v), 6) if isinstance(v, int | float) and not isinstance(v, bool) else v


def key(kind: str, d: dict[str, Any]) -> tuple:
    """The comparable identity of one fact (labelled or predicted): its fields, and for a
    bound whether it is negated, whether it is a value at any time, whether an exception in
    words goes with it ("… unless due to Gilbert's syndrome"), whether words it holds only
    with do ("… requiring transfusion") and whether an age names the line's other requirement
    in words ("aged ≥ 18 years with confirmed NSCLC")."""
    if kind in ("age", "lab", "measurement"):
        ever = (d.get("window") or {}).get("comparator") == "ever"
        return (*_bound_key(kind, d), bool(d.get("negated")), ever, bool(d.get("unless")),
                bool(d.get("with")), bool(d.get("also")))
    return _bound_key(kind, d)


def _bound_key(kind: str, d: dict[str, Any]) -> tuple:
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
    if kind == "measurement":
        return (kind, d["name"].lower(), _n(d["low"]), _n(d["high"]),
                d["low"] is None or d["low_inclusive"], d["high"] is None or d["high_inclusive"],
                d["unit"])
    if kind == "time-window":
        return (kind, d["comparator"], _n(d["value"]), d["unit"])
    if kind in ("pregnancy", "lactation", "healthy-volunteers"):
        return (kind, bool(d["value"]))
    if kind == "sex":
        return (kind, d["sex"])
    if kind == "condition":
        return (kind, d["key"])
    raise ValueError(kind)


def measure(verbose: bool, echo: bool = True) -> dict[str, dict[str, float]]:
    """Precision and recall per fact kind; prints the table unless ``echo`` is false."""
    lines = [json.loads(x) for x in LABELLED.read_text(encoding="utf-8").splitlines() if x]
    stats = {k: Counter() for k in KINDS}
    for row in lines:
        want = Counter(key(f["kind"], f) for f in row["facts"])
        # labels are flat: a group of bounds ("A and B, or C") counts as its members
        got = Counter(key(m.kind, m.data) for f in facts_for(row["text"], row["exclude"])
                      for m in (f.data["facts"] if f.kind == "all-of" else [f]))
        tp = want & got
        for k in KINDS:
            stats[k]["labelled"] += sum(n for x, n in want.items() if x[0] == k)
            stats[k]["predicted"] += sum(n for x, n in got.items() if x[0] == k)
            stats[k]["correct"] += sum(n for x, n in tp.items() if x[0] == k)
        if verbose and echo and (got - want or want - got):
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
    if not echo:
        return out
    print(f"{len(lines)} labelled criterion lines, "
          f"{sum(1 for r in lines if not r['facts'])} with no structure")
    print(f"{'kind':<20}{'labelled':>9}{'predicted':>10}{'correct':>9}{'precision':>11}"
          f"{'recall':>8}")
    for k, v in out.items():
        print(f"{k:<20}{v['labelled']:>9}{v['predicted']:>10}{v['correct']:>9}"
              f"{v['precision']:>11.3f}{v['recall']:>8.3f}")
    return out


def _texts() -> dict[str, list[str]]:
    rows = [json.loads(x) for x in LABELLED.read_text(encoding="utf-8").splitlines() if x]
    out = {"labelled lines": [("Exclusion Criteria:\n* " if r["exclude"] else
                               "Inclusion Criteria:\n* ") + r["text"] for r in rows]}
    if LCT_DOCS.exists():
        out["LCT documents"] = [json.loads(x)["text"] for x in
                                LCT_DOCS.read_text(encoding="utf-8").splitlines() if x]
    return out


def speed(min_seconds: float) -> dict[str, float]:
    """Criterion lines per second of the eligibility step, per corpus."""
    out = {}
    for name, texts in _texts().items():
        lines = sum(1 for t in texts for x in t.split("\n")
                    if x.strip() and not x.rstrip().endswith("Criteria:"))
        criteria_for(texts[0])  # tables and patterns loaded outside the clock
        n, start = 0, time.process_time()
        while True:
            for t in texts:
                criteria_for(t)
            n += lines
            elapsed = time.process_time() - start
            if elapsed >= min_seconds:
                break
        out[name] = n / elapsed
    return out


#: lines whose brackets the parser blanks into long runs of spaces: each reader that tried a
#: run from every one of its spaces cost time quadratic (or cubic) in its length
LONG_LINES = {
    "bracket after a bound": lambda n: "Creatinine ≤ 1.5 mg/dL (" + "word " * n + ") or other.",
    "bracket after a name": lambda n: "Creatinine below the upper limit of normal (" +
                                      "word " * n + ").",
    "bracket after an age": lambda n: "Age ≥ 18 years (" + "word " * n + ").",
    "many brackets": lambda n: "Creatinine ≤ 1.5 mg/dL " + "(a) " * n,
}


def growth(small: int = 500, factor: int = 4) -> tuple[float, float, str]:
    """The slowest long line's seconds at ``factor`` × ``small`` words, against ``factor`` ×
    its seconds at ``small`` words (what time linear in length would give): (value, baseline,
    which line)."""
    worst = (0.0, 1.0, "")
    for name, make in LONG_LINES.items():
        t = []
        for n in (small, small * factor):
            text, best = make(n), float("inf")
            for _ in range(3):
                start = time.process_time()
                criteria_for(text)
                best = min(best, time.process_time() - start)
            t.append(best)
        if t[1] / (factor * t[0]) > worst[0] / worst[1]:
            worst = (t[1], factor * t[0], name)
    return worst


def run(quick: bool) -> list[dict]:
    """Eligibility rows: precision and recall over all kinds, and per kind as detail."""
    out = measure(False, echo=False)
    tot = {k: sum(v[k] for v in out.values()) for k in ("labelled", "predicted", "correct")}
    low = [k for k, v in out.items() if v["predicted"] and v["precision"] < THRESHOLD]
    rows = [
        result_row("eligibility", "parser precision, all kinds",
                   tot["correct"] / tot["predicted"], "",
                   notes=f"{tot['predicted']} facts predicted; kinds below {THRESHOLD}: "
                         f"{', '.join(low) or 'none'}"),
        result_row("eligibility", "parser recall, all kinds",
                   tot["correct"] / tot["labelled"], "",
                   notes=f"{tot['labelled']} facts hand-labelled in {LABELLED.name}"),
    ]
    for k, v in out.items():
        rows.append(result_row("eligibility", f"precision {k}", v["precision"], "",
                               detail=True,
                               notes=f"recall {v['recall']:.3f}, {v['labelled']} labelled"))
    for name, rate in speed(1.0 if quick else 3.0).items():
        rows.append(result_row("eligibility", f"parser speed, {name}", rate, "lines/s",
                               notes="split into criteria + structure every line"))
    value, baseline, name = growth()
    rows.append(result_row("eligibility", "parser time, 2,000-word bracketed line", value, "s",
                           baseline=baseline, better="lower",
                           notes=f"baseline: 4 x the same line at 500 words (linear growth: "
                                 f"ratio ~1); slowest: {name}"))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--speed", action="store_true", help="also measure lines/s")
    args = ap.parse_args()
    out = measure(args.verbose)
    if args.speed:
        for name, rate in speed(2.0).items():
            print(f"parser speed, {name}: {rate:,.0f} lines/s")
        value, baseline, name = growth()
        print(f"2,000-word bracketed line: {value * 1000:.1f} ms, {value / baseline:.2f}x "
              f"linear growth from 500 words ({name})")
    bad = [k for k, v in out.items() if v["predicted"] and v["precision"] < THRESHOLD]
    if args.check and bad:
        print(f"precision below {THRESHOLD}: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
