"""``fhirtrial db upgrade`` (apply the store's schema migrations) and ``fhirtrial db copy SRC
DST`` (move a store between SQLite and PostgreSQL, or between two of either)."""

from __future__ import annotations

import sys

import click

from .serve import DB_HELP, open_or_exit


@click.group("db")
def db_cmd() -> None:
    """The store's schema and contents: upgrade, copy."""


@db_cmd.command("upgrade")
@click.option("--db", "db", default=None, help=DB_HELP)
def upgrade_cmd(db: str | None) -> None:
    """Apply the schema migrations the store lacks (servers also do it on start-up).

    \b
    fhirtrial db upgrade --db postgresql://fhirtrial@db.example.org/fhirtrial
    """
    from ..server.config import load_config
    from ..server.stores import open_store

    cfg = load_config({"DB": db} if db else None)
    store = open_or_exit(lambda: open_store(cfg["DB"], upgrade=False))
    try:
        before = store.schema_version()
        applied = open_or_exit(store.upgrade)
        after = store.schema_version()
    finally:
        store.close()
    if applied:
        click.echo(f"{store.describe()}: schema version {before} → {after} (applied "
                   f"{', '.join(map(str, applied))})", err=True)
    else:
        click.echo(f"{store.describe()}: schema version {after}, up to date", err=True)


@db_cmd.command("copy")
@click.argument("src")
@click.argument("dst")
def copy_cmd(src: str, dst: str) -> None:
    """Copy every resource and its history from store SRC into the empty store DST.

    Each is a SQLite file or a postgresql:// URL; DST is created (and migrated) when missing.
    Search indexes are rebuilt from the stored resources; the copy is one transaction.

    \b
    fhirtrial db copy data/fhirtrial.sqlite postgresql://fhirtrial@db.example.org/fhirtrial
    """
    from pathlib import Path

    from ..server.stores import StoreURLError, classify, copy_store, open_store

    kind, where = open_or_exit(lambda: classify(src))
    if kind == "sqlite" and not Path(where).is_file():
        click.echo(f"fhirtrial: {src}: no such SQLite store", err=True)
        sys.exit(2)
    source = open_or_exit(lambda: open_store(src))
    target = open_or_exit(lambda: open_store(dst))
    try:
        counts = copy_store(source, target)
    except StoreURLError as e:
        click.echo(f"fhirtrial: {e.message}", err=True)
        sys.exit(1)
    finally:
        source.close()
        target.close()
    click.echo(f"copied {counts['current']} resource(s) and {counts['versions']} version(s) "
               f"from {source.describe()} to {target.describe()}", err=True)
