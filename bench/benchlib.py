"""What the benchmark scripts share: the result-row shape, peak-RSS readings and the corpus.

Every area's ``run(quick)`` returns a list of rows made by :func:`row`; ``bench/run.py`` prints
them as one table and writes them as JSON, so two runs compare row by row on (area, metric).
"""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_V2 = SHARED / "fixtures" / "ctgov-v2"
SEED = ROOT / "fixtures" / "seed" / "NCT06534528.json"


class Unavailable(Exception):
    """A benchmark cannot run here (a missing peer or tool); the message says what to do."""


def row(area: str, metric: str, value: float, unit: str, *, baseline: float | None = None,
        better: str = "higher", notes: str = "", detail: bool = False) -> dict[str, Any]:
    """One result; ``ratio`` is value / baseline; ``better`` says which direction improves."""
    return {"area": area, "metric": metric, "value": value, "unit": unit,
            "baseline": baseline,
            "ratio": value / baseline if baseline else None,
            "better": better, "notes": notes, "detail": detail}


def peak_rss_mib() -> float:
    """Largest resident set of this process or of any child it has waited for, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024  # Linux reports KiB


def stop_and_peak(proc: subprocess.Popen[Any], timeout: float = 10.0) -> float | None:
    """Stop a child server; returns the peak RSS (MiB) of its largest process (it or a worker).

    Read from /proc (VmHWM) while the processes still run: getrusage/wait4 would count, for a
    child started from a big process, the parent's size at fork time too.
    """
    peak = max((m for pid in _tree(proc.pid) if (m := vm_hwm_mib(pid)) is not None),
               default=None)
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return peak


def _tree(root: int) -> list[int]:
    """The pid and all its descendants, from /proc/<pid>/stat parent ids."""
    parents: dict[int, int] = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        # the command name (field 2) may hold spaces and parentheses: split after its last ")"
        parents[int(d.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    found, frontier = [root], [root]
    while frontier:
        kids = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += kids
        frontier = kids
    return found


def vm_hwm_mib(pid: int) -> float | None:
    """Peak RSS (VmHWM) of a running process from /proc, or None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def v2_records() -> tuple[list[tuple[str, bytes]], str]:
    """The ClinicalTrials.gov v2 records to benchmark on, and a note naming them.

    The 66 real records of ../shared when it is beside the checkout; otherwise (a fresh clone
    elsewhere) the project's own seed record, so every benchmark still runs.
    """
    files = sorted(SHARED_V2.glob("*.json")) if SHARED_V2.is_dir() else []
    if files:
        return [(f.name, f.read_bytes()) for f in files], f"{len(files)} ../shared v2 records"
    return [(SEED.name, SEED.read_bytes())], "the seed record only (../shared absent)"
