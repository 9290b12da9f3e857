"""Validator benchmark: resources/s per layer vs FHIR.js in the same run, and R4 agreement.

    tests/node/fhirjs/setup.sh           # once: FHIR.js + the official FHIR packages
    python bench/bench_validate.py [--limit N]

Resources: the shared ClinicalTrials.gov records converted to R5 Bundles (when the converter
is present), else the official R5 examples of the trial-related types. FHIR.js validates the
same entry resources one by one (its own R4 definitions: its verdicts on R5 content are not
compared, only its speed); the agreement table uses R4 cases: the official R4 examples of the
same types and mutations of them, validated by both.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from fhirtrial.packages import install, locate  # noqa: E402
from fhirtrial.validate import Validator  # noqa: E402
from validate_support import (  # noqa: E402
    FHIRJS_DIR,
    R4_EXAMPLES,
    R5_CORE,
    R5_EXAMPLES,
    example_names,
    read_members,
)

TYPES = ("ResearchStudy", "PlanDefinition", "EvidenceVariable", "Group", "Location",
         "Organization")
LAYERS = ("structure", "schema", "terminology", "invariants", "bundle")
#: runs of each side for the R4 rows (alternating; the median is reported)
ROUNDS = 3


def converted_bundles(limit: int) -> list[dict[str, Any]]:
    """The shared v2 records converted to R5 Bundles, or [] without converter / ../shared."""
    try:
        from fhirtrial.convert import convert_study
        from fhirtrial.sources import read_inputs
    except ImportError:
        return []
    shared = ROOT.parent / "shared" / "fixtures" / "ctgov-v2"
    if not shared.is_dir():
        return []
    out = []
    for path in sorted(shared.glob("*.json"))[:limit]:
        for record in read_inputs([path]):
            if record.study is not None:
                out.append(convert_study(record.study).bundle)
    return out


def fhirjs(resources: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float, float]:
    """FHIR.js verdicts, its summed pure validation seconds, and its wall seconds."""
    payload = "".join(json.dumps(r) + "\n" for r in resources)
    t0 = time.perf_counter()
    done = subprocess.run(["node", str(FHIRJS_DIR / "validate.mjs")], input=payload,
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    return rows, sum(r["seconds"] for r in rows), wall


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:10.0f}" if seconds > 0 else "       inf"


def measure(v5: Validator, bundles: list[dict[str, Any]]) -> dict[str, Any]:
    """Seconds per layer, for all layers on whole Bundles, and FHIR.js on the same resources."""
    entries = [e["resource"] for b in bundles for e in b.get("entry", []) if "resource" in e]
    v5.findings(bundles[0])  # load the package once; load cost is reported separately
    layers: dict[str, float] = {}
    for layer in LAYERS:
        t0 = time.perf_counter()
        if layer == "bundle":
            for b in bundles:
                v5.findings(b, [layer])
        else:
            for r in entries:
                v5.findings(r, [layer])
        layers[layer] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for b in bundles:
        v5.findings(b)
    whole = time.perf_counter() - t0
    _, pure, wall = fhirjs(entries)
    return {"n": len(entries), "bundles": len(bundles), "layers": layers, "whole": whole,
            "fhirjs": pure, "fhirjs_wall": wall}


def speed(v5: Validator, bundles: list[dict[str, Any]], label: str) -> None:
    m = measure(v5, bundles)
    n = m["n"]
    print(f"\n## Speed: {n} resources in {m['bundles']} Bundles ({label})\n")
    print("| layer | seconds | resources/s |\n|---|---:|---:|")
    for layer, dt in m["layers"].items():
        print(f"| {layer} | {dt:.3f} | {rate(n, dt)} |")
    print(f"| all layers, whole Bundles | {m['whole']:.3f} | {rate(n, m['whole'])} |")
    print(f"| FHIR.js 4.12 validate() (pure) | {m['fhirjs']:.3f} | {rate(n, m['fhirjs'])} |")
    print(f"| FHIR.js incl. node start-up | {m['fhirjs_wall']:.3f} | "
          f"{rate(n, m['fhirjs_wall'])} |")
    if m["fhirjs"]:
        print(f"\nall layers vs FHIR.js (pure): {m['whole'] / m['fhirjs']:.1f}x the time")


def agreement_counts(v4: Validator) -> dict[str, int]:
    """How our verdicts and FHIR.js's compare on the R4 cases (counts per verdict)."""
    cases = r4_cases()
    rows, _, _ = fhirjs([c for _, c in cases])
    table = {"both flag": 0, "only we flag": 0, "only FHIR.js flags": 0, "neither": 0}
    for (_label, case), result in zip(cases, rows, strict=True):
        ours = any(f.severity in ("error", "fatal") for f in v4.findings(case))
        theirs = any(m["severity"] == "error" for m in result["messages"])
        table["both flag" if ours and theirs else "only we flag" if ours
              else "only FHIR.js flags" if theirs else "neither"] += 1
    return table


def run(quick: bool) -> list[dict[str, Any]]:
    """Suite rows: resources/s per layer and in all, beside FHIR.js measured in the same run."""
    from benchlib import Unavailable, row

    for tgz in (R5_CORE, R4_EXAMPLES):
        if not tgz.is_file():
            raise Unavailable(f"{tgz.name} missing: run tests/node/fhirjs/setup.sh (make peers)")
    if not (FHIRJS_DIR / "node_modules").is_dir():
        raise Unavailable("FHIR.js not installed: run tests/node/fhirjs/setup.sh (make peers)")
    from fhirtrial.packages import load

    with tempfile.TemporaryDirectory() as cache:
        install(str(R5_CORE), cache)
        install(str(R4_EXAMPLES), cache)
        r5_dir = locate("hl7.fhir.r5.core", "5.0.0", cache)
        r4_dir = locate("hl7.fhir.r4.examples", "4.0.1", cache)
        assert r5_dir is not None
        assert r4_dir is not None
        v5 = Validator("R5", load(r5_dir))
        bundles = converted_bundles(10 if quick else 66)
        if not bundles:
            examples = read_members(R5_EXAMPLES, example_names(R5_EXAMPLES, TYPES))
            bundles = [{"resourceType": "Bundle", "type": "collection", "entry": [
                {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}", "resource": r}
                for i, r in enumerate(examples.values())]}]
        m = measure(v5, bundles)
        n = m["n"]
        base = n / m["fhirjs"] if m["fhirjs"] else None
        note = (f"{n} resources in {len(bundles)} converted Bundles; baseline FHIR.js 4.12 "
                "validate() on the same resources (its own R4 rules: less work)")
        rows = [row("validation", f"layer {layer}", n / dt, "resources/s", baseline=base,
                    notes=note) for layer, dt in m["layers"].items() if dt > 0]
        rows.append(row("validation", "all layers, whole Bundles", n / m["whole"],
                        "resources/s", baseline=base, notes=note))
        rows += r4_bundle_rows(r4_dir, 10 if quick else 66)
        counts = agreement_counts(Validator("R4", load(r4_dir)))
        rows.append(row("validation", "R4 agreement with FHIR.js: both flag / only we / only "
                        "FHIR.js / neither", counts["both flag"], "cases",
                        notes=f"{counts['both flag']} / {counts['only we flag']} / "
                              f"{counts['only FHIR.js flags']} / {counts['neither']}"))
    return rows


def r4_bundle_rows(r4_dir: Path, limit: int) -> list[dict[str, Any]]:
    """`fhirtrial validate --fhir-version R4` against FHIR.js on the same R4 Bundles (the shared
    records converted to R4): whole process (start-up, imports and package load included,
    each side reading the Bundles from disk or stdin) and per resource in process."""
    from benchlib import row

    from fhirtrial.convert import convert_study
    from fhirtrial.packages import load
    from fhirtrial.sources import read_inputs

    shared = ROOT.parent / "shared" / "fixtures" / "ctgov-v2"
    paths = sorted(shared.glob("*.json"))[:limit] if shared.is_dir() else []
    bundles = [convert_study(r.study, fhir_version="R4").bundle
               for p in paths for r in read_inputs([p]) if r.study is not None]
    if not bundles:
        return []
    n = sum(len(b.get("entry", [])) for b in bundles)
    note = (f"{n} resources in {len(bundles)} R4 Bundles converted from the shared records; "
            "baseline FHIR.js 4.12 validate() on the same Bundles")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bundles"
        folder.mkdir()
        for i, b in enumerate(bundles):
            (folder / f"{i:03d}.json").write_text(json.dumps(b))
        cmd = [sys.executable, "-m", "fhirtrial", "validate", "--fhir-version", "R4",
               "--package", str(r4_dir), "--no-progress", str(folder)]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        # each side ROUNDS times, alternating, and the median: on a shared machine one run of
        # either can land on a busy second (single runs moved this ratio by 3x)
        ours_walls, js_walls, js_pures = [], [], []
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, capture_output=True, check=False)
            ours_walls.append(time.perf_counter() - t0)
            _, js_pure, js_wall = fhirjs(bundles)
            js_walls.append(js_wall)
            js_pures.append(js_pure)
    ours_wall, js_wall, js_pure = (statistics.median(x) for x in (ours_walls, js_walls,
                                                                   js_pures))
    passes = []
    for _ in range(ROUNDS):  # a new validator each round, as FHIR.js starts anew each run
        v4 = Validator("R4", load(r4_dir))
        v4.findings(bundles[0])  # package and models loaded: the in-process row is per resource
        t0 = time.perf_counter()
        for b in bundles:
            v4.findings(b)
        passes.append(time.perf_counter() - t0)
    ours = statistics.median(passes)
    return [
        row("validation", "R4 Bundles, whole process (fhirtrial validate vs node FHIR.js)",
            n / ours_wall, "resources/s", baseline=n / js_wall,
            notes=note + f"; start-up included on both sides (median of {ROUNDS} alternating "
                         f"runs: {ours_wall:.2f} s vs {js_wall:.2f} s)"),
        row("validation", "R4 Bundles, per resource (all layers in process)", n / ours,
            "resources/s", baseline=n / js_pure if js_pure else None,
            notes=note + f"; FHIR.js pure validate() time (medians of {ROUNDS} passes)"),
    ]


def r4_cases() -> list[tuple[str, dict[str, Any]]]:
    names = example_names(R4_EXAMPLES, TYPES)
    cases: list[tuple[str, dict[str, Any]]] = []
    for name, res in read_members(R4_EXAMPLES, names).items():
        base = name.split("/")[-1]
        cases.append((f"{base} as published", res))
        m = copy.deepcopy(res)
        m["trialPhaseX"] = "1"
        cases.append((f"{base} + unknown element", m))
        if isinstance(res.get("status"), str):
            m = copy.deepcopy(res)
            m["status"] = "not-a-status"
            cases.append((f"{base} + bad status code", m))
            m = copy.deepcopy(res)
            m["status"] = [res["status"]]
            cases.append((f"{base} + status as array", m))
        m = copy.deepcopy(res)
        m["id"] = "bad id!"
        cases.append((f"{base} + bad id", m))
        m = copy.deepcopy(res)
        m.setdefault("meta", {})["lastUpdated"] = "2024-13-01"
        cases.append((f"{base} + bad instant", m))
        m = copy.deepcopy(res)
        m["meta"] = {}
        cases.append((f"{base} + empty meta", m))
    return cases


def agreement(v4: Validator) -> None:
    cases = r4_cases()
    rows, _, _ = fhirjs([c for _, c in cases])
    table = {"both flag": 0, "only we flag": 0, "only FHIR.js flags": 0, "neither": 0}
    disagreements = []
    for (label, case), row in zip(cases, rows, strict=True):
        ours = [f for f in v4.findings(case) if f.severity in ("error", "fatal")]
        theirs = [m for m in row["messages"] if m["severity"] == "error"]
        key = ("both flag" if ours and theirs else "only we flag" if ours
               else "only FHIR.js flags" if theirs else "neither")
        table[key] += 1
        if key.startswith("only"):
            disagreements.append((label, key, [f"{f.location}: {f.message}" for f in ours[:2]],
                                  [f"{m['location']}: {m['message']}" for m in theirs[:2]]))
    print(f"\n## Agreement with FHIR.js on {len(cases)} R4 cases\n")
    print("| verdict | cases |\n|---|---:|")
    for k, n in table.items():
        print(f"| {k} | {n} |")
    print("\n### Disagreements, by case kind (count, then one example)\n")
    kinds: dict[tuple[str, str], list[Any]] = {}
    for label, key, ours, theirs in disagreements:
        kind = label.split(" + ")[1] if " + " in label else "as published"
        kinds.setdefault((kind, key), []).append((label, ours, theirs))
    for (kind, key), items in sorted(kinds.items()):
        label, ours, theirs = items[0]
        print(f"- {kind} — {key}: {len(items)} (e.g. {label})\n"
              f"  - fhirtrial: {ours}\n  - FHIR.js: {theirs}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=66, help="shared records to convert")
    args = ap.parse_args()
    for tgz in (R5_CORE, R5_EXAMPLES, R4_EXAMPLES):
        if not tgz.is_file():
            sys.exit(f"{tgz} missing: run tests/node/fhirjs/setup.sh")
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        install(str(R5_CORE), cache)
        install(str(R4_EXAMPLES), cache)
        print(f"package install: {time.perf_counter() - t0:.2f}s")
        r5_dir = locate("hl7.fhir.r5.core", "5.0.0", cache)
        r4_dir = locate("hl7.fhir.r4.examples", "4.0.1", cache)
        assert r5_dir
        assert r4_dir
        from fhirtrial.packages import load

        v5 = Validator("R5", load(r5_dir))
        t0 = time.perf_counter()
        v5.findings({"resourceType": "ResearchStudy", "status": "active"})
        print(f"first call (lazy package load): {time.perf_counter() - t0:.2f}s")
        bundles = converted_bundles(args.limit)
        if bundles:
            speed(v5, bundles, "shared records converted by fhirtrial.convert")
        examples = read_members(R5_EXAMPLES, example_names(R5_EXAMPLES, TYPES))
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}", "resource": r}
            for i, r in enumerate(examples.values())]}
        speed(v5, [bundle], "official R5 examples of the trial-related types")
        agreement(Validator("R4", load(r4_dir)))


if __name__ == "__main__":
    main()
