"""Conversion throughput: the 66 shared ClinicalTrials.gov records → R5 Bundles, repeatedly.

Prints studies/second for (a) a baseline measured in the same run — ``orjson.loads`` of each
record and an indented ``orjson.dumps`` of it back, the floor any converter pays — (b) read +
convert + dumps (what ``fhirtrial convert`` does per study) and their ratio; R4 likewise. (The
suite's earlier baseline, ``json`` load + indented dump, is kept as a detail row.) The two
sides run alternately, per round baseline passes lasting about as long as one conversion pass,
then the conversion pass, timed in CPU seconds; each side's fastest pass gives its rate.

    python bench/bench_convert.py [--rounds N]

``run(quick)`` gives the same figures as rows for ``bench/run.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

sys.path.insert(0, str(ROOT / "bench"))

from benchlib import row, v2_records  # noqa: E402

from fhirtrial.convert import convert_study  # noqa: E402
from fhirtrial.sources import parse_bytes  # noqa: E402


def _baseline(blobs: list[bytes], repeat: int) -> float:
    """The floor any converter pays: orjson load + indented dump of each record."""
    start = time.perf_counter()
    for _ in range(repeat):
        for b in blobs:
            orjson.dumps(orjson.loads(b), option=orjson.OPT_INDENT_2)
    return time.perf_counter() - start


def _baseline_json(blobs: list[bytes], repeat: int) -> float:
    """The same with the standard library (the suite's baseline before orjson)."""
    start = time.perf_counter()
    for _ in range(repeat):
        for b in blobs:
            json.dumps(json.loads(b), ensure_ascii=False, indent=2).encode("utf-8")
    return time.perf_counter() - start


def _convert(blobs: list[tuple[str, bytes]], repeat: int,
             version: str = "R5") -> tuple[float, int, int]:
    n_resources = n_bytes = 0
    start = time.perf_counter()
    for _ in range(repeat):
        for name, b in blobs:
            for rec in parse_bytes(b, name):
                if rec.study is None:
                    continue
                conv = convert_study(rec.study, fhir_version=version)
                out = conv.indented()  # what the CLI writes (sources.bulk)
                n_resources += len(conv.bundle["entry"])
                n_bytes += len(out)
    return time.perf_counter() - start, n_resources, n_bytes


def _supports(blob: tuple[str, bytes], version: str) -> bool:
    from fhirtrial.errors import FhirtrialError

    try:
        _convert([blob], 1, version)
    except FhirtrialError:  # the converter does not build this version (yet)
        return False
    return True


def _rounds(blobs: list[tuple[str, bytes]], rounds: int,
            version: str = "R5") -> tuple[float, float, float, int, int]:
    """Baseline and conversion passes over the records, alternated round by round, in CPU
    seconds of this process: the fastest pass of each side (per pass over the records), and
    the median of the rounds' ratios. (Measured one block after the other, a drift of the
    shared machine between the two blocks moved the ratio by a third.) The baseline's pass is
    repeated until it takes about as long as the conversion's: a pass twenty times shorter is
    far likelier to fall wholly in one of the machine's fast spells, and its fastest would be
    the fast spell's, not the baseline's."""
    raw = [b for _, b in blobs]
    t = time.process_time()
    _baseline(raw, 1)
    once = max(time.process_time() - t, 1e-4)
    t = time.process_time()
    _convert(blobs, 1, version)
    reps = max(1, round((time.process_time() - t) / once))
    base_t, conv_t, ratios = [], [], []
    n_res = n_bytes = 0
    for _ in range(rounds):
        t = time.process_time()
        _baseline(raw, reps)
        b = (time.process_time() - t) / reps
        t = time.process_time()
        _, n_res, n_bytes = _convert(blobs, 1, version)
        c = time.process_time() - t
        base_t.append(b)
        conv_t.append(c)
        ratios.append(c / b)
    return min(base_t), min(conv_t), statistics.median(ratios), n_res, n_bytes


def run(quick: bool) -> list[dict]:
    """Conversion rows: studies/s for R5 and R4 against the JSON load+dump baseline."""
    blobs, corpus = v2_records()
    # a short run over few records is noise-dominated: more rounds where the corpus is small
    rounds = max(3, 60 // len(blobs)) if quick else max(7, 300 // len(blobs))
    _convert(blobs[:3], 1)  # warm-up: tables loaded, regexes compiled
    # … and the baseline's too: its first pass over 66 records, cold, was up to twice as slow,
    # which made the quick suite's ratio look twice as good as the steady one
    _baseline([b for _, b in blobs], 1)
    base_json = _baseline_json([b for _, b in blobs], 1)
    rows = []
    for version in ("R5", *(["R4"] if _supports(blobs[0], "R4") else [])):
        base, conv, median, n_res, n_bytes = _rounds(blobs, rounds, version)
        n = len(blobs)
        rows.append(row("conversion", f"read+convert+dumps {version}", n / conv,
                        "studies/s", baseline=n / base,
                        notes=f"{corpus}, fastest of {rounds} rounds (CPU time), each "
                              f"baseline passes as long as a conversion pass, then the "
                              f"conversion pass; median of the rounds' "
                              f"ratios {median:.1f}x; {n_res} resources, "
                              f"{n_bytes / 1e6:.1f} MB per pass; "
                              "baseline orjson load + indented dump of each record "
                              "(acceptance: ratio >= 0.05, i.e. at most 20x)"))
        rows.append(row("conversion", f"read+convert+dumps {version} vs json baseline",
                        n / conv, "studies/s", baseline=n / base_json,
                        detail=True, notes="baseline json.loads + json.dumps(indent=2), the "
                                           "suite's baseline before orjson (one pass)"))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7,
                    help="alternated baseline and conversion passes (default 7)")
    args = ap.parse_args()
    blobs, corpus = v2_records()
    print(f"corpus: {corpus}")
    _convert(blobs[:3], 1)  # warm-up: tables loaded, regexes compiled
    _baseline([b for _, b in blobs], 1)  # (the baseline's too, as in run())
    base, conv, median, n_res, n_bytes = _rounds(blobs, args.rounds)
    n = len(blobs)
    print(f"records: {n}, {args.rounds} rounds (baseline pass, conversion pass), CPU time")
    print(f"baseline orjson load+dump: {n / base:10.1f} studies/s (fastest pass {base:.3f} s)")
    print(f"read+convert R5+dumps   : {n / conv:10.1f} studies/s (fastest pass {conv:.3f} s), "
          f"{n_res} resources and {n_bytes / 1e6:.1f} MB per pass")
    print(f"ratio convert/baseline  : {conv / base:10.1f}x the time of a plain load+dump "
          f"(median of the rounds' ratios {median:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
