"""A synthetic copy of the registry's bulk download, for ingest tests and benchmarks.

ClinicalTrials.gov publishes every study as one zip of JSON files, one API v2 study object per
member (``ctg-studies.json.zip``). This writes an archive of that shape with ``n`` members,
made from real records (../shared's v2 records, or the project's seed record) under new NCT
ids ``NCT8xxxxxxx``, each with its own ``lastUpdatePostDate`` (spread over 2020-2026), so a
whole-registry run can be replayed locally at any size. Streaming: memory does not grow with
``n``.

    python bench/registry_zip.py 100000 /tmp/registry.zip
"""

from __future__ import annotations

import argparse
import datetime
import sys
import zipfile
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
SHARED_V2 = ROOT.parent / "shared" / "fixtures" / "ctgov-v2"
SEED = ROOT / "fixtures" / "seed" / "NCT06534528.json"
FIRST_ID = 80_000_000


def source_records() -> list[bytes]:
    """The real records the synthetic ones are made from."""
    files = sorted(SHARED_V2.glob("*.json")) if SHARED_V2.is_dir() else []
    return [f.read_bytes() for f in files] or [SEED.read_bytes()]


def nct(i: int) -> str:
    return f"NCT{FIRST_ID + i:08d}"


def last_update(i: int) -> str:
    """A deterministic lastUpdatePostDate per record, 2020-01-01 plus i*7 days (wrapping)."""
    day = datetime.date(2020, 1, 1) + datetime.timedelta(days=(i * 7) % 2500)
    return day.isoformat()


def synthetic_study(source: bytes, i: int) -> dict:
    study = orjson.loads(source)
    ps = study["protocolSection"]
    ps["identificationModule"]["nctId"] = nct(i)
    status = ps.setdefault("statusModule", {})
    status["lastUpdatePostDateStruct"] = {"date": last_update(i), "type": "ACTUAL"}
    return study


def write_registry_zip(path: Path, n: int, sources: list[bytes] | None = None,
                       first: int = 0) -> int:
    """Write ``n`` synthetic study files (``NCT….json``) to a zip; returns bytes written."""
    sources = sources or source_records()
    raw = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i in range(first, first + n):
            data = orjson.dumps(synthetic_study(sources[i % len(sources)], i),
                                option=orjson.OPT_INDENT_2)
            zf.writestr(f"{nct(i)}.json", data)
            raw += len(data)
    return raw


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, help="records to write")
    ap.add_argument("out", type=Path, help="the zip to write")
    args = ap.parse_args()
    raw = write_registry_zip(args.out, args.n)
    print(f"{args.out}: {args.n} records, {raw / 1e6:.0f} MB uncompressed, "
          f"{args.out.stat().st_size / 1e6:.0f} MB zipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
