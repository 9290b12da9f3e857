"""Load rate of each store's two write paths, into an empty store, in one run:

    python bench/load_modes.py --studies 1000

``per study``: each generated study a transaction Bundle in its own transaction (the REST
path, and what ``fhirtrial load`` did on PostgreSQL before it had a bulk writer);
``bulk``: the same studies through ``store.bulk()`` (what ``fhirtrial load`` does on both
stores now), the index build at the end included. Validation off; PostgreSQL is a throwaway
cluster with fsync and synchronous_commit on (tests/pg.py), SQLite as the store runs it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench"), str(ROOT / "tests")]

from bench_postgres import _process  # noqa: E402
from bench_server import generate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=1000)
    args = ap.parse_args()
    from fhirtrial.server.stores import open_store
    from pg import start_cluster

    bundles = list(generate(args.studies))
    cluster = start_cluster(durable=True)
    tmp = tempfile.mkdtemp(prefix="fhirtrial-load-modes-")
    try:
        out = {}
        for name, mode in (("sqlite", "per study"), ("sqlite", "bulk"),
                           ("postgresql", "per study"), ("postgresql", "bulk")):
            if name == "sqlite":
                db = f"{tmp}/{mode.replace(' ', '_')}.sqlite"
            else:
                dbname = mode.replace(" ", "_")
                cluster.admin(f"CREATE DATABASE {dbname}")
                db = cluster.url(dbname)
            store = open_store(db)
            t0 = time.perf_counter()
            if mode == "bulk":
                with store.bulk() as writer:
                    for b in bundles:
                        _process(writer, b)
            else:
                for b in bundles:
                    _process(store, b)
            out[(name, mode)] = args.studies / (time.perf_counter() - t0)
            store.close()
        print(f"{args.studies} studies x 4 resources into an empty store, studies/s")
        print(f"{'':12} {'per study':>10} {'bulk':>10}")
        for name in ("sqlite", "postgresql"):
            print(f"{name:12} {out[(name, 'per study')]:10.1f} {out[(name, 'bulk')]:10.1f}")
    finally:
        cluster.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
