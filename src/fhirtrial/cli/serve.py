"""``fhirtrial serve`` (gunicorn, or Flask's dev server with ``--dev``) and ``fhirtrial load``
(registry records or FHIR JSON → the server's store, one transaction per study)."""

from __future__ import annotations

import itertools
import signal
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from ..errors import FhirtrialError
from . import seconds

#: studies per SQLite transaction in `fhirtrial load` (a failed study still rolls back alone)
BULK_BATCH = 500
DB_HELP = ("the store: a SQLite file, or postgresql://user@host:port/dbname [env FHIRTRIAL_DB; "
           "default <data dir>/fhirtrial.sqlite]")


def open_or_exit(factory: Any) -> Any:
    """Run ``factory`` (which opens a store): a --db naming no store it can open is one line and
    exit 2; a store it cannot use (damaged, unreachable) one line and exit 1."""
    from ..server.stores import StoreUnavailable, StoreURLError

    try:
        return factory()
    except StoreURLError as e:
        click.echo(f"fhirtrial: {e.message}", err=True)
        sys.exit(2)
    except StoreUnavailable as e:
        click.echo(f"fhirtrial: {e.message}", err=True)
        sys.exit(1)
    except (FhirtrialError, ValueError) as e:  # a damaged, truncated or unreachable store
        raise click.ClickException(e.message if isinstance(e, FhirtrialError) else str(e)
                                   ) from None


@click.command("serve")
@click.option("--db", "db", default=None, help=DB_HELP)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="gunicorn worker processes")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256),
              help="threads per worker: requests answered at once by each worker")
@click.option("--header-timeout", default=10.0, show_default=True,
              type=click.FloatRange(0.5, 3600), callback=seconds,
              help="seconds a client has to send a request's line and headers; a slower or "
                   "idle connection is closed")
@click.option("--body-timeout", default=60.0, show_default=True,
              type=click.FloatRange(0.5, 3600), callback=seconds,
              help="seconds a client has to send a request body after its headers")
@click.option("--fhir-version", type=click.Choice(["R5", "R4"]), default=None,
              help="version served at /fhir [default R5]; /fhir/R4 and /fhir/R5 always exist")
@click.option("--no-integrity-check", "no_check", is_flag=True,
              help="skip SQLite's quick_check of the store at start-up (it reads the whole "
                   "file: about 15 s per GB)")
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn")
def serve_cmd(db: str | None, host: str, port: int, workers: int, threads: int,
              header_timeout: float, body_timeout: float, fhir_version: str | None,
              no_check: bool, dev: bool) -> None:
    """Serve the store as a FHIR REST endpoint at http://HOST:PORT/fhir."""
    from ..server import create_app

    overrides: dict[str, Any] = {}
    if db:
        overrides["DB"] = db
    if fhir_version:
        overrides["FHIR_VERSION"] = fhir_version
    # fail here, before forking, on a bad configuration or store (migrated and checked once,
    # here)
    app = open_or_exit(lambda: create_app({**overrides, "CHECK_STORE": not no_check}))
    store = app.extensions["fhirtrial.store"]
    click.echo(f"fhirtrial: serving {store.describe()} at http://{host}:{port}/fhir", err=True)
    click.echo(f"fhirtrial: {_write_validation(app)}", err=True)
    if getattr(store, "readonly", False):
        click.echo("fhirtrial: the store is read-only (file, directory or disk): serving "
                   "reads; every write is refused (403)", err=True)
    if dev:
        # a container or supervisor stops with SIGTERM: leave as Ctrl-C does (exit 0)
        signal.signal(signal.SIGTERM, _interrupt)
        app.run(host=host, port=port, threaded=True)
        return
    store.close()  # each gunicorn worker opens its own connections, never the master's
    run_gunicorn(lambda: create_app(overrides), host=host, port=port, workers=workers,
                 threads=threads, header_timeout=header_timeout, body_timeout=body_timeout)


def _write_validation(app: Any) -> str:
    """What the server checks before storing a write, said at start-up."""
    if not app.config["FHIRTRIAL"].get("VALIDATE", True):
        return "write validation off: resources are stored as given"
    from ..validate import coverage_line

    return coverage_line()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_gunicorn(factory: Any, *, host: str, port: int, workers: int, threads: int = 8,
                 header_timeout: float = 10.0, body_timeout: float = 60.0) -> None:
    """Run a WSGI app factory under gunicorn (each worker builds its own app and connection).

    Threaded workers with read deadlines (:mod:`fhirtrial.server.worker`): idle connections
    wait in a poller, not in a thread, and a client too slow to send its request is cut off,
    so neither can stop the service."""
    from gunicorn.app.base import BaseApplication

    from ..server import worker

    # read by the workers, which gunicorn forks from this process
    worker.HEADER_TIMEOUT, worker.BODY_TIMEOUT = header_timeout, body_timeout

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "fhirtrial.server.worker.DeadlineThreadWorker")
            self.cfg.set("threads", threads)
            self.cfg.set("keepalive", 5)  # idle kept-alive connections closed after 5 s
            self.cfg.set("accesslog", None)
            self.cfg.set("timeout", 120)
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn >= 25 opens an admin socket at one per-user path; two servers
                # would contend for it, and nothing here uses it
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            return factory()

    _App().run()


def _fhir_bundles(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """A FHIR JSON file (a resource, a Bundle, or NDJSON of them) → transaction Bundles."""
    from ..server.http import loads_strict

    text = path.read_text(encoding="utf-8-sig")
    docs = ([loads_strict(line) for line in text.splitlines() if line.strip()]
            if path.suffix == ".ndjson" else [loads_strict(text)])
    for i, doc in enumerate(docs):
        name = f"{path}[{i}]" if len(docs) > 1 else str(path)
        if doc.get("resourceType") == "Bundle" and doc.get("type") in ("transaction", "batch"):
            yield name, doc
        elif doc.get("resourceType") == "Bundle":
            yield name, as_transaction([e["resource"] for e in doc.get("entry", [])
                                        if "resource" in e], [e.get("fullUrl")
                                                              for e in doc.get("entry", [])])
        else:
            yield name, as_transaction([doc], [None])


def as_transaction(resources: list[dict[str, Any]],
                   full_urls: list[str | None]) -> dict[str, Any]:
    """Resources (with ids) → a PUT transaction, keeping their logical ids."""
    entries = []
    for res, full in zip(resources, full_urls, strict=True):
        url = f"{res['resourceType']}/{res['id']}" if res.get("id") else res["resourceType"]
        entry: dict[str, Any] = {"resource": res,
                                 "request": {"method": "PUT" if res.get("id") else "POST",
                                             "url": url}}
        if full:
            entry["fullUrl"] = full
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def keep_ids(bundle: dict[str, Any]) -> dict[str, Any]:
    """Plain creates of resources that carry an id → ``PUT Type/id``.

    The R4 writer emits creates (what any R4 server accepts at any size); this store is ours,
    so the converter's ids are kept: a study is ``ResearchStudy/NCT…`` at /fhir/R4 as at
    /fhir/R5, a shared Organization or Device is stored once, and a re-load replaces instead
    of adding copies."""
    entries = []
    for e in bundle.get("entry", []):
        res, req = e.get("resource") or {}, e.get("request") or {}
        if req.get("method") == "POST" and res.get("id") and not req.get("ifNoneExist"):
            e = {**e, "request": {"method": "PUT", "url": f"{res['resourceType']}/{res['id']}"}}
        entries.append(e)
    return {**bundle, "entry": entries}


def _is_fhir(path: Path) -> bool:
    if path.suffix not in (".json", ".ndjson"):
        return False
    with path.open("rb") as f:
        head = f.read(4096)
    return b'"resourceType"' in head and b'"protocolSection"' not in head


def _expand(inputs: tuple[str, ...]) -> Iterator[Path]:
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.is_file()
                              and not f.name.startswith("."))
        else:
            yield p


def _registry_bundles(paths: list[str], versions: list[str], *, auto: bool
                      ) -> Iterator[tuple[str, str, dict[str, Any] | None, str | None]]:
    from ..sources import read_inputs

    try:
        from ..convert import convert_study
    except ImportError:
        raise click.ClickException("the converter (fhirtrial.convert.convert_study) is not "
                                   "installed; only FHIR JSON can be loaded") from None
    for rec in read_inputs(paths):
        if rec.study is None:
            yield rec.name, "", None, str(rec.error.message if rec.error else "unreadable")
            continue
        for fv in list(versions):
            try:
                conv = convert_study(rec.study, fhir_version=fv, bundle_type="transaction")
            except (NotImplementedError, ValueError) as e:
                if auto and fv == "R4":  # no R4 writer yet: serve R5 only, say so once
                    versions.remove("R4")
                    click.echo(f"note: R4 not stored ({e})", err=True)
                    continue
                yield rec.name, fv, None, str(e)
                continue
            except FhirtrialError as e:
                if auto and fv == "R4" and "not supported" in e.message:
                    versions.remove("R4")  # no R4 writer yet: serve R5 only, say so once
                    click.echo(f"note: R4 not stored ({e.message})", err=True)
                    continue
                yield rec.name, fv, None, e.message
                continue
            except Exception as e:  # a converter fault stops this record only, as in convert
                yield rec.name, fv, None, f"not converted: {type(e).__name__}: {e}"
                continue
            yield rec.name, fv, keep_ids(conv.bundle), None


@click.command("load")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--db", "db", default=None, help=DB_HELP)
@click.option("--fhir-version", "versions", multiple=True, type=click.Choice(["R5", "R4"]),
              help="version(s) to convert registry records to and store [default: R5, plus R4 "
                   "when the converter writes R4]; FHIR JSON is stored as the version given "
                   "first")
@click.option("--no-validate", is_flag=True,
              help="skip per-resource validation (trusted converter output; faster)")
@click.option("--no-integrity-check", "no_check", is_flag=True,
              help="skip SQLite's quick_check of the store before loading (about 15 s per GB)")
def load_cmd(inputs: tuple[str, ...], db: str | None, versions: tuple[str, ...],
             no_validate: bool, no_check: bool) -> None:
    """Convert registry records (or read FHIR JSON) and store them, one transaction per study.

    \b
    fhirtrial load ../shared/fixtures/ctgov-v2 --db data/trials.sqlite
    fhirtrial load bundles/*.json          # FHIR Bundles / resources, stored as they are
    """
    from ..server.bundles import process
    from ..server.config import load_config
    from ..server.searchparams import REGISTRY
    from ..server.stores import open_store

    cfg = load_config({"DB": db} if db else None)
    store = open_or_exit(lambda: open_store(cfg["DB"], check=not no_check))
    if getattr(store, "readonly", False):
        raise click.ClickException(f"the store {cfg['DB']} is read-only (file, directory or "
                                   "disk): nothing can be loaded into it")
    fhir_paths = [p for p in _expand(inputs) if p.exists() and _is_fhir(p)]
    registry_inputs = [str(p) for p in _expand(inputs) if not (p.exists() and _is_fhir(p))]
    chosen = list(versions) or ["R5", "R4"]
    work: list[tuple[str, str, dict[str, Any] | None, str | None]] = []
    for p in fhir_paths:
        try:
            work.extend((n, chosen[0], b, None) for n, b in _fhir_bundles(p))
        except (ValueError, KeyError, AttributeError, TypeError) as e:
            work.append((str(p), chosen[0], None, f"not a FHIR resource or Bundle: {e}"))
        except OSError as e:
            work.append((str(p), chosen[0], None, f"cannot read: {e.strerror or e}"))
    stored = failed = 0
    writer: Any = store

    def run(items: Any) -> None:
        nonlocal stored, failed
        for name, fv, bundle, error in items:
            if bundle is not None:
                try:
                    process(writer, fv, bundle, base="", validate=not no_validate,
                            supported=REGISTRY[fv].__contains__, default_count=20,
                            representation=False)
                    stored += 1
                    continue
                except FhirtrialError as e:
                    error = e.message
                except Exception as e:  # one record is one unit: the others still load
                    error = f"not stored: {type(e).__name__}: {e}"
            failed += 1
            click.echo(f"{name}{' (' + fv + ')' if fv else ''}: {error}", err=True)

    items: Any = itertools.chain(
        work, _registry_bundles(registry_inputs, list(chosen), auto=not versions)
        if registry_inputs else [])
    show = sys.stderr.isatty()
    total = None
    if show:  # an ETA needs the total: a zip's declared entries, a directory's files
        from ..sources.bulk import estimate_units

        units = estimate_units(registry_inputs) if registry_inputs else 0
        total = None if units is None else len(work) + units * len(chosen)
    # many studies per transaction (each still all-or-nothing, a savepoint), and into an
    # empty store the search indexes built once at the end (both stores have bulk())
    batched = store.bulk(batch=BULK_BATCH) if hasattr(store, "bulk") else nullcontext(store)
    with batched as bulk, \
            click.progressbar(items, length=total, label="loading", file=sys.stderr,
                              hidden=not show, show_pos=True) as bar:
        writer = bulk
        run(bar)
    store.analyze()
    click.echo(f"stored {stored} bundle(s) in {store.describe()}; {failed} failed", err=True)
    store.close()
    sys.exit(1 if failed else 0)
