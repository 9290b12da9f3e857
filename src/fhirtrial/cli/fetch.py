"""``fhirtrial fetch`` and ``fhirtrial sync``: ClinicalTrials.gov API v2 → the local cache."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

from ..errors import FhirtrialError

_base_option = click.option(
    "--base-url", envvar="FHIRTRIAL_CTGOV_BASE_URL", metavar="URL",
    help="Registry API base (env FHIRTRIAL_CTGOV_BASE_URL; default "
         "https://clinicaltrials.gov/api/v2).")
_data_option = click.option(
    "--data-dir", envvar="FHIRTRIAL_DATA_DIR", type=click.Path(file_okay=False), metavar="DIR",
    help="Data directory; the registry cache is its registry/ "
         "[env FHIRTRIAL_DATA_DIR; default ./data].")


def _registry(base_url: str | None, data_dir: str | None):  # type: ignore[no-untyped-def]
    from ..sources.registry import Registry

    return Registry(base_url, Path(data_dir) / "registry" if data_dir else None)


def _write(out: Path, nct: str, study: dict) -> None:  # type: ignore[type-arg]
    from ..files import write_atomic

    write_atomic(out / f"{nct}.json",
                 json.dumps(study, ensure_ascii=False, indent=2).encode() + b"\n")


@click.command("fetch")
@click.argument("nct_ids", nargs=-1, metavar="[NCT...]")
@click.option("-o", "--output", "out", type=click.Path(file_okay=False), metavar="DIR",
              help="Also write each study as DIR/<NCT id>.json (v2 JSON as served).")
@click.option("--query-cond", metavar="TEXT", help="Fetch every study for this condition.")
@click.option("--query-term", metavar="TEXT", help="Fetch every study matching these words.")
@click.option("--status", "statuses", multiple=True, metavar="STATUS",
              help="Only studies with this overall status (RECRUITING …); repeatable.")
@click.option("--limit", type=click.IntRange(min=1), help="Stop after this many query results.")
@click.option("--page-size", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Studies per registry request when paging a query.")
@click.option("--refresh", is_flag=True, help="Download even when the study is cached.")
@_base_option
@_data_option
def fetch_cmd(nct_ids: tuple[str, ...], out: str | None, query_cond: str | None,
              query_term: str | None, statuses: tuple[str, ...], limit: int | None,
              page_size: int, refresh: bool, base_url: str | None, data_dir: str | None) -> None:
    """Download studies from ClinicalTrials.gov into the cache (and -o DIR).

    Prints the NCT id of each study fetched on stdout. Exit 0 when all were fetched, 1 when
    some failed (unknown id, registry unreachable), 2 on a usage error.

    \b
    fhirtrial fetch NCT06534528 NCT02513394 -o records/
    fhirtrial fetch --query-cond "interstitial lung disease" --status RECRUITING -o ild/
    """
    if not nct_ids and not (query_cond or query_term):
        raise click.UsageError("give NCT ids, --query-cond or --query-term")
    reg = _registry(base_url, data_dir)
    target = Path(out) if out else None
    if target is not None:
        target.mkdir(parents=True, exist_ok=True)
    failed = 0
    fetched = 0
    for nct in nct_ids:
        try:
            study = reg.get_study(nct, refresh=refresh)
        except FhirtrialError as e:
            click.echo(f"error: {nct}: {e.message}", err=True)
            failed += 1
            continue
        fetched += 1
        if target is not None:
            _write(target, nct.upper(), study)
        click.echo(nct.upper())
    if query_cond or query_term:
        try:
            for study in reg.search(cond=query_cond, term=query_term, statuses=statuses,
                                    page_size=page_size, limit=limit):
                nct = study["protocolSection"]["identificationModule"]["nctId"]
                fetched += 1
                if target is not None:
                    _write(target, nct, study)
                click.echo(nct)
        except FhirtrialError as e:
            click.echo(f"error: query: {e.message}", err=True)
            failed += 1
    click.echo(f"fetched {fetched}, failed {failed}", err=True)
    if failed:
        sys.exit(1)


@click.command("sync")
@click.argument("nct_ids", nargs=-1, metavar="[NCT...]")
@click.option("--db", metavar="PATH",
              help="Keep this loaded store current instead of the cache: every study the "
                   "registry updated since the store's newest lastUpdatePostDate is converted "
                   "and stored again.")
@click.option("--since", metavar="YYYY-MM-DD",
              help="With --db: resume from this day instead of the store's newest date.")
@_base_option
@_data_option
def sync_cmd(nct_ids: tuple[str, ...], db: str | None, since: str | None,
             base_url: str | None, data_dir: str | None) -> None:
    """Refresh cached studies whose lastUpdatePostDate moved on the registry.

    Without NCT ids every cached study is checked (one request per 100 studies, then one per
    changed study). Prints refreshed ids on stdout; exit 1 when the registry no longer has some.

    With --db, the loaded store is brought up to date instead: the registry is asked for the
    studies updated on or after the newest lastUpdatePostDate the store holds (paged), and
    each is converted and stored (in the FHIR versions the store holds). Prints each stored
    NCT id; exit 1 when some failed.

    \b
    fhirtrial sync --db data/trials.sqlite
    """
    if db is not None:
        _sync_store(db, nct_ids, since, base_url, data_dir)
        return
    if since is not None:
        raise click.UsageError("--since goes with --db")
    reg = _registry(base_url, data_dir)
    try:
        report = reg.sync(nct_ids or None)
    except FhirtrialError as e:
        click.echo(f"error: {e.message}", err=True)
        sys.exit(1)
    for nct in report.refreshed:
        click.echo(nct)
    for nct in report.missing:
        click.echo(f"warning: {nct}: not found on the registry", err=True)
    click.echo(f"refreshed {len(report.refreshed)}, unchanged {len(report.unchanged)}, "
               f"missing {len(report.missing)}", err=True)
    if report.missing:
        sys.exit(1)


def _sync_store(db: str, nct_ids: tuple[str, ...], since: str | None, base_url: str | None,
                data_dir: str | None) -> None:
    from ..server.storeopen import open_sqlite_store
    from ..server.sync import newest_update, stored_versions, sync_store

    if nct_ids:
        raise click.UsageError("--db syncs the whole store: give no NCT ids")
    if since is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", since):
        raise click.UsageError(f"--since {since!r}: expected a day, YYYY-MM-DD")
    if not Path(db).is_file():
        raise click.UsageError(f"--db {db}: no such store (load it first: fhirtrial load)")
    store = open_sqlite_store(db)  # (a damaged file: one error line, as for load)
    start = since or newest_update(store)
    versions = stored_versions(store)
    if start is None or not versions:
        click.echo(f"error: {db} holds no converted ResearchStudy to resume from; give "
                   "--since YYYY-MM-DD", err=True)
        sys.exit(1)

    def echo(nct: str, error: str | None) -> None:
        if error is None:
            click.echo(nct)
        else:
            click.echo(f"error: {nct}: {error}", err=True)

    try:
        result = sync_store(store, _registry(base_url, data_dir), start, versions,
                            on_study=echo)
    except FhirtrialError as e:
        click.echo(f"error: {e.message}", err=True)
        sys.exit(1)
    store.analyze()
    click.echo(f"stored {result.stored} studies updated since {start} "
               f"({', '.join(versions)}); failed {len(result.failed)}", err=True)
    if result.failed:
        sys.exit(1)
