"""The benchmark suite's command: one cheap area end to end, the comparison of two runs, usage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

RUN = ROOT / "bench" / "run.py"


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUN), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)


def _table_rows(stdout: str) -> list[list[str]]:
    """The table's body lines split on its column gaps (two or more spaces)."""
    import re

    lines = stdout.splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("area ")) + 2
    body = []
    for line in lines[start:]:
        if not line.strip():
            break
        body.append(re.split(r"\s{2,}", line.strip()))
    return body


def test_quick_conversion_prints_one_table_and_writes_the_same_rows_as_json(tmp_path: Path):
    out = tmp_path / "conversion.json"
    proc = _bench("--quick", "--only", "conversion", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    header = next(x for x in proc.stdout.splitlines() if x.startswith("area "))
    assert header.split() == ["area", "metric", "value", "baseline", "ratio", "notes"]
    rows = _table_rows(proc.stdout)
    # --only conversion: the conversion figures and that phase's memory peak, nothing else
    assert {r[0] for r in rows} == {"conversion", "memory"}
    r5 = next(r for r in rows if r[:2] == ["conversion", "read+convert+dumps R5"])
    assert r5[2].endswith(" studies/s")
    assert any(r[:2] == ["memory", "conversion phase, largest process"] and r[2].endswith(" MiB")
               for r in rows)

    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["mode"] == "quick"
    assert doc["areas"] == ["conversion"]
    assert doc["phases"]["conversion"]["status"] == "ok"
    conv = next(r for r in doc["rows"] if (r["area"], r["metric"]) ==
                ("conversion", "read+convert+dumps R5"))
    assert conv["unit"] == "studies/s"
    assert conv["value"] > 0
    assert conv["baseline"] > 0
    assert abs(conv["ratio"] - conv["value"] / conv["baseline"]) < 1e-9
    # the table shows the JSON's figures (two decimals, or two significant digits below 0.1x)
    assert r5[4].endswith("x")
    shown = float(r5[4][:-1])
    rounding = 0.005 if conv["ratio"] >= 0.1 else conv["ratio"] * 0.05
    assert abs(shown - conv["ratio"]) <= rounding, (r5[4], conv["ratio"])
    mem = next(r for r in doc["rows"] if r["metric"] == "conversion phase, largest process")
    assert mem["unit"] == "MiB"
    assert mem["better"] == "lower"
    # a Python process that converted records holds more than the interpreter's ~10 MiB
    assert 20 < mem["value"] < 4096


def _doc(mode: str, rows: list[tuple[str, str, float, str, str]]) -> dict:
    return {"mode": mode, "rows": [
        {"area": a, "metric": m, "value": v, "unit": u, "better": b, "baseline": None,
         "ratio": None, "notes": "", "detail": False} for a, m, v, u, b in rows]}


def test_compare_divides_b_by_a_and_judges_by_each_metrics_direction(tmp_path: Path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_doc("quick", [
        ("conversion", "read+convert+dumps R5", 100.0, "studies/s", "higher"),
        ("server", "read latency p95", 10.0, "ms", "lower"),
        ("memory", "server phase, largest process", 200.0, "MiB", "lower"),
        ("push", "single: first push", 20.0, "studies/s", "higher"),
    ])))
    b.write_text(json.dumps(_doc("quick", [
        ("conversion", "read+convert+dumps R5", 150.0, "studies/s", "higher"),
        ("server", "read latency p95", 5.0, "ms", "lower"),
        ("memory", "server phase, largest process", 300.0, "MiB", "lower"),
        ("push", "single: first push", 21.0, "studies/s", "higher"),
        ("bulk", "convert --jobs 2", 90.0, "records/s", "higher"),
    ])))
    proc = _bench("--compare", str(a), str(b))
    assert proc.returncode == 0, proc.stderr
    got = {(r[0], r[1]): r[2:] for r in _table_rows(proc.stdout)}
    assert got[("conversion", "read+convert+dumps R5")] == [
        "100 studies/s", "150 studies/s", "1.50x", "better"]
    assert got[("server", "read latency p95")] == ["10 ms", "5 ms", "0.50x", "better"]
    assert got[("memory", "server phase, largest process")] == [
        "200 MiB", "300 MiB", "1.50x", "worse"]
    assert got[("push", "single: first push")] == [
        "20 studies/s", "21 studies/s", "1.05x", "same (within 10%)"]
    assert got[("bulk", "convert --jobs 2")] == ["-", "90 records/s", "-", "only in B"]


def test_unknown_area_is_a_usage_error_naming_the_areas():
    proc = _bench("--only", "nonsense")
    assert proc.returncode == 2
    assert "invalid choice: 'nonsense'" in proc.stderr
    assert "conversion" in proc.stderr


def test_compare_with_a_missing_file_says_which():
    proc = _bench("--compare", "no-such-a.json", "no-such-b.json")
    assert proc.returncode == 2
    assert "no such results file: no-such-a.json, no-such-b.json" in proc.stderr


def test_registry_bench_converts_a_small_registry_and_reports_rate_and_memory(tmp_path: Path):
    """bench_registry end to end on two tiny synthetic registries: every record written, a rate,
    the 550,000-study extrapolation and a peak RSS per run, the larger run's against the
    smaller's; the quick suite leaves the (tens of minutes long) area out."""
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_registry
    from benchlib import row

    results = bench_registry.measure([12, 24], 2, {})
    assert [(n, r["records"]) for n, r in results] == [(12, 12), (24, 24)]
    rows = bench_registry.rows(results, 2, row)
    by_metric = {r["metric"]: r for r in rows}
    assert by_metric["convert 24 records --jobs 2"]["value"] > 0
    minutes = by_metric["whole registry (550,000 studies), extrapolated"]["value"]
    assert minutes == 550_000 / (24 / results[1][1]["seconds"]) / 60
    memory = by_metric["registry: convert 24 records"]
    assert memory["baseline"] == results[0][1]["peak_rss_kib"] / 1024
    assert memory["value"] > 10  # MiB: the process tree's largest, not zero

    import run as bench_run

    assert "registry" in bench_run.AREAS
    assert "registry" in bench_run.FULL_ONLY
