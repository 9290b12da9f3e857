"""The benchmark suite: every area's benchmark in one run, one table, the results as JSON.

    python bench/run.py --quick                 # the whole suite in under two minutes
    python bench/run.py                         # full size (the server loads 100,000 studies)
    python bench/run.py --quick --only server   # one area (repeatable)
    python bench/run.py --compare A.json B.json # B against A, metric by metric

Each area is a ``bench/bench_<x>.py`` script exposing ``run(quick) -> list[dict]`` (rows made
by ``benchlib.row``) and still runnable on its own. Each area runs in its own child process so
that its peak resident memory can be read (``os.wait4``: the largest process of the area,
including servers and workers it started and reaped). Results go to ``bench/results/<mode>.json``
unless ``--out`` says otherwise. See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"

#: area → (module under bench/, what it measures); run in this order
AREAS: dict[str, tuple[str, str]] = {
    "conversion": ("bench_convert", "studies/s converted vs a JSON load+dump of the record"),
    "bulk": ("bench_bulk", "records/s of a zip with --jobs 2 vs --jobs 1, peak RSS"),
    "validation": ("bench_validate", "resources/s per validator layer vs FHIR.js"),
    "server": ("bench_server", "load, read/search throughput and latency vs bare WSGI"),
    "postgres": ("bench_postgres", "load, read and search on PostgreSQL beside SQLite"),
    "push": ("bench_push", "studies/s pushed to the Medplum engine per strategy"),
    "eligibility": ("bench_eligibility", "criteria parser precision/recall vs hand labels"),
    "matching": ("bench_match", "type-level $match latency vs ResearchStudy?condition= search"),
    "registry": ("bench_registry", "convert a synthetic registry zip of 10k and 100k records, "
                                   "550k extrapolated, peak RSS"),
}
#: areas too long for --quick: run in full mode, or with --only in either
FULL_ONLY = {"registry"}
COLUMNS = ("area", "metric", "value", "baseline", "ratio", "notes")
#: what a row from a script that leaves fields out gets
ROW_DEFAULTS: dict[str, Any] = {"unit": "", "baseline": None, "ratio": None, "better": "higher",
                                "notes": "", "detail": False}
#: changes smaller than this are reported as noise by --compare
NOISE = 0.10


# ------------------------------------------------------------------------ running areas
def run_child(area: str, quick: bool, out: str) -> int:
    """In the child process: run one area and write its rows (or why it could not run)."""
    sys.path.insert(0, str(BENCH))
    from benchlib import Unavailable

    module = importlib.import_module(AREAS[area][0])
    run = getattr(module, "run", None)
    if run is None or "quick" not in inspect.signature(run).parameters:
        result: dict[str, Any] = {"unavailable": f"{module.__name__}.py has no run(quick) "
                                                 "-> rows; run it on its own"}
    else:
        try:
            result = {"rows": [{**ROW_DEFAULTS, "area": area, **r} for r in run(quick=quick)]}
        except Unavailable as e:
            result = {"unavailable": str(e)}
    Path(out).write_text(json.dumps(result))
    return 0


def run_area(area: str, quick: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run one area in a child process: its phase record and its rows."""
    module = AREAS[area][0]
    if not (BENCH / f"{module}.py").is_file():
        return ({"status": "absent", "seconds": 0.0, "peak_rss_mib": None},
                [_note_row(area, f"not run: bench/{module}.py is not in this checkout")])
    with tempfile.TemporaryDirectory(prefix="fhirtrial-bench-") as tmp:
        out, log = Path(tmp, "rows.json"), Path(tmp, "log.txt")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", area, "--rows", str(out)]
        start = time.perf_counter()
        with log.open("wb") as logf:
            proc = subprocess.Popen(cmd + (["--quick"] if quick else []), cwd=ROOT,
                                    stdout=logf, stderr=subprocess.STDOUT)
            # wait4 rather than wait: the rusage of the child and everything it reaped
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        peak = usage.ru_maxrss / 1024
        result = json.loads(out.read_text()) if out.is_file() else {}
        if proc.returncode != 0 or ("rows" not in result and "unavailable" not in result):
            tail = log.read_text(errors="replace").strip().splitlines()[-12:]
            print(f"bench: {area} FAILED (exit {proc.returncode}):\n  " + "\n  ".join(tail),
                  file=sys.stderr)
            reason = tail[-1] if tail else f"exit {proc.returncode}"
            return ({"status": "failed", "seconds": seconds, "peak_rss_mib": peak},
                    [_note_row(area, f"FAILED: {reason}")])
    if "unavailable" in result:
        return ({"status": "unavailable", "seconds": seconds, "peak_rss_mib": peak},
                [_note_row(area, f"not run: {result['unavailable']}")])
    return ({"status": "ok", "seconds": seconds, "peak_rss_mib": peak}, result["rows"])


def _note_row(area: str, notes: str) -> dict[str, Any]:
    return {"area": area, "metric": "-", "value": None, "unit": "", "baseline": None,
            "ratio": None, "better": "higher", "notes": notes, "detail": False}


def run_suite(areas: list[str], quick: bool) -> dict[str, Any]:
    """Every chosen area in turn; the whole result document."""
    started = time.perf_counter()
    phases: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for area in areas:
        print(f"bench: {area} ({AREAS[area][1]}) ...", file=sys.stderr, flush=True)
        phase, area_rows = run_area(area, quick)
        phases[area] = phase
        rows += area_rows
        print(f"bench: {area} {phase['status']} in {phase['seconds']:.1f} s", file=sys.stderr,
              flush=True)
    for area, phase in phases.items():
        if phase["status"] == "ok":
            rows.append({"area": "memory", "metric": f"{area} phase, largest process",
                         "value": phase["peak_rss_mib"], "unit": "MiB", "baseline": None,
                         "ratio": None, "better": "lower", "detail": False,
                         "notes": f"peak RSS (wait4), {phase['seconds']:.0f} s wall"})
    return {"suite": "fhirtrial bench", "mode": "quick" if quick else "full", "areas": areas,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "commit": _commit(), "total_seconds": time.perf_counter() - started,
            "phases": phases, "rows": rows}


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, check=False)
    except OSError:
        return None
    return out.stdout.strip() or None


# ------------------------------------------------------------------------ printing
def num(v: float | None) -> str:
    """A figure to three significant digits (whole numbers from 100 up)."""
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def ratio(r: float | None) -> str:
    """A ratio to two decimals, or two significant digits when it is below 0.1."""
    if r is None:
        return "-"
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x"


def table(lines: list[list[str]], header: tuple[str, ...]) -> str:
    """Left-aligned columns, the last one left unpadded."""
    widths = [max(len(r[i]) for r in [list(header), *lines]) for i in range(len(header) - 1)]

    def fmt(r: list[str]) -> str:
        return "  ".join([c.ljust(w) for c, w in zip(r, widths, strict=False)] + [r[-1]]).rstrip()

    rule = "  ".join("-" * w for w in widths) + "  " + "-" * len(header[-1])
    return "\n".join([fmt(list(header)), rule, *map(fmt, lines)])


def render(doc: dict[str, Any]) -> str:
    """The suite's one table: each area's rows, then the memory peaks."""
    order = {a: i for i, a in enumerate([*doc["areas"], "memory"])}
    shown = sorted((r for r in doc["rows"] if not r.get("detail")),
                   key=lambda r: order.get(r["area"], len(order)))
    lines = [[r["area"], r["metric"],
              f"{num(r['value'])} {r['unit']}".strip() if r["value"] is not None else "-",
              num(r["baseline"]), ratio(r["ratio"]),
              r["notes"]] for r in shown]
    m = doc["machine"]
    head = (f"fhirtrial bench, {doc['mode']} mode, commit {doc['commit'] or '?'}; "
            f"{m['cpus']} CPUs, Python {m['python']}; {doc['total_seconds']:.0f} s in all\n"
            "ratio = value / baseline measured in the same run (memory: lower is better)\n")
    return head + table(lines, COLUMNS)


# ------------------------------------------------------------------------ comparing
def compare(a_path: Path, b_path: Path) -> str:
    """B's figures against A's, metric by metric, saying which way each moved."""
    a, b = (json.loads(p.read_text(encoding="utf-8")) for p in (a_path, b_path))
    a_rows = {(r["area"], r["metric"]): r for r in a["rows"] if r["value"] is not None}
    b_rows = {(r["area"], r["metric"]): r for r in b["rows"] if r["value"] is not None}
    lines = []
    for key in [*a_rows, *(k for k in b_rows if k not in a_rows)]:
        ra, rb = a_rows.get(key), b_rows.get(key)
        if ra is None or rb is None:
            only = ra or rb
            assert only is not None
            shown = f"{num(only['value'])} {only['unit']}".strip()
            lines.append([*key, shown if ra else "-", shown if rb else "-", "-",
                          "only in " + ("A" if rb is None else "B")])
            continue
        change = rb["value"] / ra["value"] if ra["value"] else None
        if change is None:
            verdict = "-"
        elif abs(change - 1) < NOISE:
            verdict = f"same (within {NOISE:.0%})"
        else:
            up_is_good = rb.get("better", "higher") == "higher"
            verdict = "better" if (change > 1) == up_is_good else "worse"
        lines.append([*key, f"{num(ra['value'])} {ra['unit']}".strip(),
                      f"{num(rb['value'])} {rb['unit']}".strip(),
                      ratio(change), verdict])
    head = f"A = {a_path} ({a['mode']}), B = {b_path} ({b['mode']}); B/A per metric\n"
    if a["mode"] != b["mode"]:
        head += "warning: the runs are of different modes; sizes differ\n"
    return head + table(lines, ("area", "metric", "A", "B", "B/A", "verdict"))


# ------------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="small sizes: the whole suite in under two minutes on 2 cores")
    ap.add_argument("--only", action="append", choices=list(AREAS), metavar="AREA",
                    help=f"run this area only (repeatable): {', '.join(AREAS)}")
    ap.add_argument("--out", type=Path, help="results JSON (default bench/results/<mode>.json)")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("A.json", "B.json"),
                    help="print B's figures against A's instead of running")
    ap.add_argument("--child", choices=list(AREAS), help=argparse.SUPPRESS)
    ap.add_argument("--rows", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return run_child(args.child, args.quick, args.rows)
    if args.compare:
        missing = [str(p) for p in args.compare if not p.is_file()]
        if missing:
            print(f"error: no such results file: {', '.join(missing)}", file=sys.stderr)
            return 2
        print(compare(*args.compare))
        return 0
    areas = [a for a in AREAS if a in args.only] if args.only else [
        a for a in AREAS if not (args.quick and a in FULL_ONLY)]
    doc = run_suite(areas, args.quick)
    mode = doc["mode"]
    out = args.out or RESULTS / (f"{mode}.json" if not args.only else
                                 f"{mode}-{'-'.join(areas)}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(render(doc))
    print(f"\nresults: {out}")
    return 1 if any(p["status"] == "failed" for p in doc["phases"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
