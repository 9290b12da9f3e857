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


def speed(v5: Validator, bundles: list[dict[str, Any]], label: str) -> None:
    entries = [e["resource"] for b in bundles for e in b.get("entry", []) if "resource" in e]
    n = len(entries)
    print(f"\n## Speed: {n} resources in {len(bundles)} Bundles ({label})\n")
    v5.findings(bundles[0])  # load the package once; load cost is reported separately
    print("| layer | seconds | resources/s |\n|---|---:|---:|")
    total = 0.0
    for layer in LAYERS:
        t0 = time.perf_counter()
        if layer == "bundle":
            for b in bundles:
                v5.findings(b, [layer])
        else:
            for r in entries:
                v5.findings(r, [layer])
        dt = time.perf_counter() - t0
        total += dt
        print(f"| {layer} | {dt:.3f} | {rate(n, dt)} |")
    t0 = time.perf_counter()
    for b in bundles:
        v5.findings(b)
    whole = time.perf_counter() - t0
    print(f"| all layers, whole Bundles | {whole:.3f} | {rate(n, whole)} |")
    _, pure, wall = fhirjs(entries)
    print(f"| FHIR.js 4.12 validate() (pure) | {pure:.3f} | {rate(n, pure)} |")
    print(f"| FHIR.js incl. node start-up | {wall:.3f} | {rate(n, wall)} |")
    print(f"\nall layers vs FHIR.js (pure): {whole / pure:.1f}x the time" if pure else "")


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
