"""Trial-matching benchmark: type-level ``POST ResearchStudy/$match`` on a large store, beside
a plain ``GET ResearchStudy?condition=`` search for one of the patient's conditions, in the
same run, through the same WSGI app.

    python bench/bench_match.py --studies 100000 --db /tmp/match-100k.sqlite   # full size
    python bench/bench_match.py --studies 2000                                 # quick-sized

Studies are the 66 shared v2 records converted to R5 (ResearchStudy, its eligibility
EvidenceVariable, up to three sites), cloned under new NCT ids with their status, phase and
site positions varied (without ../shared, the project's seed record with conditions from the
concept table instead). The patient has 5 conditions (SNOMED, ICD-10-CM, MeSH and text codings)
and 30 Observations, lives in ZIP 94143 and travels up to 1,500 miles.

Requests go through the Flask app in-process (``app.test_client()``, one at a time): the
figure is the server's own per-request cost, without sockets, stable on a shared machine.
Reported: the first request (it builds the candidate index from the store), then p50/p95 of
repeated requests with the parsed criteria cached, p50/p95 with that cache emptied before each
request (criteria parsed again), and the plain search's p50/p95.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

from benchlib import peak_rss_mib, row, v2_records  # noqa: E402

STATUSES = ["recruiting"] * 5 + ["not-yet-recruiting", "completed", "active-but-not-recruiting",
                                  "enrolling-by-invitation", "withdrawn"]
PHASES = ["phase-1", "phase-2", "phase-3", "phase-4", "phase-1-phase-2", "n-a"]
STATUS = "http://hl7.org/fhir/research-study-status"
SEARCH = "/fhir/ResearchStudy?condition=http://id.nlm.nih.gov/mesh|D003027&_count=10"


def _templates() -> list[list[dict[str, Any]]]:
    """Per record: [ResearchStudy, eligibility EvidenceVariable, sites…] as stored resources
    (references rewritten to Type/id)."""
    from fhirtrial.convert import convert_study
    from fhirtrial.sources import parse_bytes

    out = []
    records, _ = v2_records()
    for name, raw in records:
        for rec in parse_bytes(raw, name):
            if rec.study is None:
                continue
            bundle = convert_study(rec.study).bundle
            by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
            rs = bundle["entry"][0]["resource"]
            ev_ref = ((rs.get("recruitment") or {}).get("eligibility") or {}).get("reference")
            ev = by_url.get(ev_ref)
            sites = [by_url[s["reference"]] for s in rs.get("site") or []
                     if s.get("reference") in by_url][:3]
            rs = {k: v for k, v in rs.items() if k not in ("protocol", "associatedParty",
                                                           "comparisonGroup", "outcomeMeasure",
                                                           "text", "relatedArtifact")}
            rs.pop("site", None)
            rs.pop("recruitment", None)
            if not rs.get("condition"):  # the seed: give it conditions the table knows
                rs["condition"] = [{"text": "Cluster Headache"}]
            out.append([rs, ev, *sites])
    return out


def _studies(n: int, seed: int = 11):
    """Yield n studies' resources (ResearchStudy last), cloned from the templates."""
    rnd = random.Random(seed)
    templates = _templates()
    for i in range(n):
        rs, ev, *sites = copy.deepcopy(templates[i % len(templates)])
        nct = f"NCT{20000000 + i}"
        res = []
        rs["id"] = nct
        rs["identifier"] = [{"use": "official", "system": "http://clinicaltrials.gov",
                             "value": nct}]
        status = rnd.choice(STATUSES)
        rs["progressStatus"] = [{"state": {"coding": [{"system": STATUS, "code": status}]}}]
        rs["phase"] = {"coding": [{"system": "http://hl7.org/fhir/research-study-phase",
                                   "code": rnd.choice(PHASES)}]}
        refs = []
        for k, site in enumerate(sites):
            site["id"] = f"{nct}-site-{k}"
            site.pop("text", None)
            site.pop("identifier", None)
            site["position"] = {"latitude": round(rnd.uniform(25, 49), 5),
                                "longitude": round(rnd.uniform(-124, -67), 5)}
            res.append(site)
            refs.append({"reference": f"Location/{site['id']}"})
        rs["site"] = refs
        if ev is not None:
            ev["id"] = f"{nct}-eligibility"
            ev.pop("text", None)
            ev.pop("identifier", None)
            res.append(ev)
            rs["recruitment"] = {"eligibility": {"reference": f"EvidenceVariable/{ev['id']}"}}
        res.append(rs)
        yield res


#: studies written through the store; the rest of a larger store are SQL copies of them
BASE = 2000


def load(db: str, n: int, base: int = BASE) -> tuple[float, int]:
    """Write min(n, BASE) studies through the store's transactions (200 studies each, no
    validation), then copy them under new NCT ids until n are stored (:func:`clone`)."""
    from fhirtrial.server.store import SQLiteStore

    store = SQLiteStore(db)
    t0 = time.perf_counter()
    count = 0
    batch: list[dict[str, Any]] = []
    base = min(n, base)
    for i, res in enumerate(_studies(base), 1):
        batch += res
        if i % 200 == 0 or i == base:
            with store.transaction() as tx:
                for r in batch:
                    tx.update("R5", r)
            count += len(batch)
            batch = []
    store.close()
    count += clone(db, base, n)
    SQLiteStore(db).analyze()
    return time.perf_counter() - t0, count


_NEW = "printf('NCT%08d', CAST(substr({col}, 4, 8) AS INTEGER) + ?) || substr({col}, 12)"


def clone(db: str, base: int, n: int) -> int:
    """Copy the first ``base`` studies (every row of the store: current, versions, index
    rows) under NCT ids shifted by base, 2×base … until n studies are stored. Bench setup
    only: a store of 100,000 studies in minutes instead of the better part of an hour on a
    shared machine. The copies' bodies, ids and references name their new ids; their
    identifier tokens still carry the original's NCT id (no search here reads them)."""
    import sqlite3

    from fhirtrial.server.store import index_texts

    conn = sqlite3.connect(db, isolation_level=None)
    top = conn.execute("SELECT max(rid) FROM current").fetchone()[0]
    copied = 0
    for k in range(1, -(-n // base)):
        shift = k * base
        upto = min(base, n - shift)  # the last copy may be partial
        last = 20000000 + upto - 1
        conn.execute("BEGIN")
        first_new = conn.execute("SELECT max(rid) FROM current").fetchone()[0] + 1
        conn.execute(
            "INSERT INTO current (fv, type, id, vid, last_updated, body) "
            f"SELECT fv, type, {_NEW.format(col='id')}, vid, last_updated, "
            "CAST(replace(CAST(body AS TEXT), substr(id, 1, 11), "
            f"{_NEW.format(col='substr(id, 1, 11)')}) AS BLOB) "
            "FROM current WHERE rid <= ? AND CAST(substr(id, 4, 8) AS INTEGER) <= ? "
            "ORDER BY rid", (shift, shift, top, last))
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS m (o INTEGER PRIMARY KEY, n INTEGER)")
        conn.execute("DELETE FROM m")
        conn.execute(
            "INSERT INTO m SELECT o.rid, c.rid FROM current o JOIN current c "
            f"ON c.fv = o.fv AND c.type = o.type AND c.id = {_NEW.format(col='o.id')} "
            "WHERE o.rid <= ? AND c.rid >= ?", (shift, top, first_new))
        conn.execute("INSERT INTO versions SELECT fv, type, id, vid, last_updated, 'PUT', body "
                     "FROM current WHERE rid >= ?", (first_new,))
        for table, cols in (("idx_token", "t.sp, t.system, t.code, t.text"),
                            ("idx_string", "t.sp, t.norm, t.exact"),
                            ("idx_date", "t.sp, t.lo, t.hi"),
                            ("idx_number", "t.sp, t.value, t.system, t.code"),
                            ("idx_geo", "t.lat, t.lon")):
            conn.execute(f"INSERT INTO {table} SELECT m.n, {cols} FROM {table} t "
                         "JOIN m ON m.o = t.rid")
        conn.execute(
            "INSERT INTO idx_ref SELECT m.n, t.sp, t.ttype, "
            f"CASE WHEN t.tid LIKE 'NCT2%' THEN {_NEW.format(col='t.tid')} ELSE t.tid END, "
            "CASE WHEN t.tid LIKE 'NCT2%' THEN t.ttype || '/' || "
            f"{_NEW.format(col='t.tid')} ELSE t.raw END "
            "FROM idx_ref t JOIN m ON m.o = t.rid", (shift, shift))
        index_texts(conn, first_new - 1)  # the copies' full-text documents
        copied += conn.execute("SELECT count(*) FROM current WHERE rid >= ?",
                               (first_new,)).fetchone()[0]
        conn.execute("COMMIT")
    conn.close()
    return copied


def patient() -> dict[str, Any]:
    """5 conditions, 30 observations."""
    clinical = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active"}]}
    conditions = [
        {"coding": [{"system": "http://snomed.info/sct", "code": "193031009",
                     "display": "Cluster headache"}]},
        {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9",
                     "display": "Type 2 diabetes mellitus without complications"}]},
        {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}],
         "text": "Hypertension"},
        {"text": "Asthma"},
        {"coding": [{"system": "http://id.nlm.nih.gov/mesh", "code": "D008881",
                     "display": "Migraine Disorders"}]},
    ]
    labs = [("718-7", 13.8, "g/dL"), ("777-3", 240, "10*9/L"), ("1742-6", 22, "U/L"),
            ("1920-8", 25, "U/L"), ("2160-0", 0.9, "mg/dL"), ("1975-2", 0.6, "mg/dL"),
            ("6690-2", 6.1, "10*9/L"), ("751-8", 3.9, "10*9/L"), ("2345-7", 110, "mg/dL"),
            ("4548-4", 7.1, "%")]
    res: list[dict[str, Any]] = [{"resourceType": "Patient", "id": "bench",
                                  "birthDate": "1968-04-02", "gender": "male"}]
    for i, code in enumerate(conditions):
        res.append({"resourceType": "Condition", "id": f"c{i}", "clinicalStatus": clinical,
                    "subject": {"reference": "Patient/bench"}, "code": code,
                    "recordedDate": "2024-06-01"})
    for k in range(3):
        for j, (loinc, value, unit) in enumerate(labs):
            res.append({"resourceType": "Observation", "id": f"o{k}-{j}", "status": "final",
                        "subject": {"reference": "Patient/bench"},
                        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                        "effectiveDateTime": f"2025-{10 + k:02d}-15",
                        "valueQuantity": {"value": value, "unit": unit,
                                          "system": "http://unitsofmeasure.org",
                                          "code": unit}})
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in res]}


def _body() -> bytes:
    return json.dumps({"resourceType": "Parameters", "parameter": [
        {"name": "trialMatchClinicalData", "resource": patient()},
        {"name": "zipCode", "valueString": "94143"},
        {"name": "travelRadius", "valueString": "1500"},
        {"name": "_count", "valueInteger": 10}]}).encode()


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def measure(db: str, rounds: int) -> dict[str, Any]:
    from fhirtrial.matching import engine
    from fhirtrial.server import create_app

    app = create_app({"DB": db})
    client = app.test_client()
    body = _body()
    headers = {"Content-Type": "application/fhir+json"}

    def match() -> float:
        t = time.perf_counter()
        r = client.post("/fhir/ResearchStudy/$match", data=body, headers=headers)
        ms = (time.perf_counter() - t) * 1000
        assert r.status_code == 200, r.get_data(as_text=True)[:500]
        return ms

    def search() -> float:
        t = time.perf_counter()
        r = client.get(SEARCH)
        ms = (time.perf_counter() - t) * 1000
        assert r.status_code == 200, r.get_data(as_text=True)[:500]
        return ms

    t0 = time.perf_counter()
    while True:  # the server builds the index in the background, answering 503 meanwhile
        r = client.post("/fhir/ResearchStudy/$match", data=body, headers=headers)
        if r.status_code != 503:
            break
        time.sleep(1)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    first = (time.perf_counter() - t0) * 1000
    r = client.post("/fhir/ResearchStudy/$match", data=body, headers=headers).get_json()
    found = sum(1 for e in r["entry"] if e["search"]["mode"] == "match")
    note = r["entry"][-1]["resource"]["issue"][0]["diagnostics"]
    warm, cold, plain = [], [], []
    for _ in range(rounds):  # interleaved, so that a busy neighbour hits all three alike
        warm.append(match())
        with engine._CRITERIA_LOCK:
            engine._CRITERIA.clear()
        cold.append(match())
        plain.append(search())
    return {"first": first, "found": found, "note": note,
            "warm": (statistics.median(warm), _pct(warm, 0.95)),
            "cold": (statistics.median(cold), _pct(cold, 0.95)),
            "plain": (statistics.median(plain), _pct(plain, 0.95))}


def run(quick: bool) -> list[dict]:
    """Rows for bench/run.py: 2,000 studies quick (500 written, the rest copies), 100,000
    full."""
    n, base, rounds = (2000, 500, 15) if quick else (100_000, BASE, 40)
    tmp = tempfile.mkdtemp(prefix="fhirtrial-bench-match-")
    try:
        db = os.path.join(tmp, "match.sqlite")
        secs, nres = load(db, n, base)
        res = measure(db, rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _rows(n, base, secs, nres, res)


def _rows(n: int, base: int, secs: float, nres: int, res: dict[str, Any]) -> list[dict]:
    setup = (f"{n} studies stored; patient with 5 conditions, 30 observations, ZIP 94143, "
             "1500 mi; in-process WSGI")
    plain = res["plain"]
    rows = [row("matching", "store load (bench setup)", n / secs, "studies/s",
                notes=f"{nres} resources; {base} studies through the store (transactions of "
                      "200, no validation), the rest SQL copies of them",
                detail=True),
            row("matching", "$match first request", res["first"], "ms", better="lower",
                notes="builds the candidate index from the store")]
    for key, what in (("warm", "criteria cache warm"), ("cold", "criteria parsed again")):
        for i, q in enumerate(("p50", "p95")):
            rows.append(row("matching", f"$match {q}, {what}", res[key][i], "ms",
                            baseline=plain[i], better="lower",
                            notes=f"baseline: GET ResearchStudy?condition= {q}; {setup}; "
                                  f"{res['found']} studies returned; goal p95 <= 300 ms"))
    rows.append(row("matching", "$match candidates", float(res["found"]), "studies",
                    notes=res["note"], detail=True))
    rows.append(row("memory", "matching: process", peak_rss_mib(), "MiB", better="lower",
                    notes=f"peak RSS of the process that loaded and indexed {n} studies"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--db", default=None, help="reuse/keep this SQLite file")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="fhirtrial-bench-match-")
    db = args.db or os.path.join(tmp, "match.sqlite")
    try:
        secs, nres = (None, 0)
        if not Path(db).exists():
            secs, nres = load(db, args.studies)
            print(f"load: {args.studies} studies, {nres} resources in {secs:.1f} s",
                  flush=True)
        res = measure(db, args.rounds)
    finally:
        if not args.db:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"first request (index build): {res['first']:.0f} ms; {res['found']} returned; "
          f"{res['note']}")
    for key, what in (("warm", "$match, criteria cache warm"),
                      ("cold", "$match, criteria parsed again"),
                      ("plain", f"GET {SEARCH}")):
        p50, p95 = res[key]
        print(f"{what:70} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
