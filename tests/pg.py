"""A throwaway PostgreSQL cluster for the test session (pytest plugin, see conftest).

``initdb`` in a temporary folder, ``postgres`` on a free port of 127.0.0.1 with its unix socket
in that folder, stopped and deleted after the session. PostgreSQL refuses to run as root: when
the tests run as root, the cluster runs as the unprivileged user ``nobody`` (``setpriv``),
owning the folder. ``FHIRTRIAL_TEST_PG=postgresql://…`` uses an existing server instead (its
role must be allowed to create databases).

Each test gets a fresh database cloned from a migrated template (``CREATE DATABASE … TEMPLATE``
is a file copy, much cheaper than running the migrations), dropped afterwards.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TEMPLATE = "fhirtrial_template"
_counter = itertools.count()


def _bindir() -> Path | None:
    """Where initdb and postgres are: PG_BINDIR, Debian's versioned folders, or PATH."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A running PostgreSQL server and how to reach it."""

    def __init__(self, admin_url: str, proc: subprocess.Popen | None = None,
                 folder: Path | None = None) -> None:
        self.admin_url = admin_url
        self.proc = proc
        self.folder = folder

    def url(self, dbname: str) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{dbname}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as c:
            c.execute(sql)

    def create_database(self, template: str | None = TEMPLATE) -> str:
        name = f"t{os.getpid()}_{next(_counter)}"
        tpl = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
        self.admin(f"CREATE DATABASE {name}{tpl}")
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self, keep: bool = False) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.folder is not None and not keep:
            shutil.rmtree(self.folder, ignore_errors=True)


def _as_user(cmd: list[str]) -> list[str]:
    """As root, run as nobody; setpriv execs (no process in between), so the signals that
    stop postgres reach it."""
    if os.geteuid() != 0:
        return cmd
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]


def start_cluster(*, durable: bool = False) -> Cluster:
    """initdb + postgres in a temporary folder; raises RuntimeError with the reason.
    ``durable`` keeps PostgreSQL's defaults (fsync, synchronous_commit): for benchmarks."""
    bindir = _bindir()
    if bindir is None or not (bindir / "initdb").exists():
        raise RuntimeError("PostgreSQL is not installed (no initdb; run "
                           "scripts/setup-postgres.sh)")
    folder = Path(tempfile.mkdtemp(prefix="fhirtrial-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        os.chown(folder, 65534, 65534)  # nobody:nogroup
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    r = subprocess.run(_as_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                                 "--auth=trust", "-E", "UTF8", "--no-sync"]),
                       capture_output=True, text=True, env=env, cwd=folder)
    if r.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {r.stderr.strip()[-500:]}")
    port = _free_port()
    log = (folder / "postgres.log").open("wb")
    # tests: durability settings off, a test cluster never survives an OS crash anyway (a
    # killed *fhirtrial* server, which the race tests do, is unaffected)
    fast = [] if durable else ["-c", "fsync=off", "-c", "synchronous_commit=off",
                               "-c", "full_page_writes=off"]
    proc = subprocess.Popen(
        _as_user([str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                  "-k", str(folder), "-c", "listen_addresses=127.0.0.1", *fast,
                  "-c", "max_connections=400", "-c", "shared_buffers=256MB",
                  "-c", "log_min_messages=fatal"]),
        stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=folder)
    log.close()
    cluster = Cluster(f"postgresql://postgres@127.0.0.1:{port}/postgres", proc, folder)
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        try:
            with psycopg.connect(cluster.admin_url, connect_timeout=2):
                break
        except psycopg.OperationalError:
            if proc.poll() is not None or time.monotonic() > deadline:
                cluster.stop(keep=True)
                err = (folder / "postgres.log").read_text(errors="replace")
                shutil.rmtree(folder, ignore_errors=True)
                raise RuntimeError(f"postgres did not start: {err.strip()[-500:]}") from None
            time.sleep(0.1)
    return cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's PostgreSQL server, with a migrated template database."""
    external = os.environ.get("FHIRTRIAL_TEST_PG")
    if external:
        cluster = Cluster(external)
    else:
        try:
            cluster = start_cluster()
        except RuntimeError as e:
            pytest.skip(f"no PostgreSQL for the postgresql store tests: {e}")
    from fhirtrial.server.pgstore import PostgresStore

    cluster.drop_database(TEMPLATE)
    cluster.admin(f"CREATE DATABASE {TEMPLATE}")
    PostgresStore(cluster.url(TEMPLATE)).close()  # run the migrations once
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster) -> Iterator[str]:
    """A fresh, migrated, empty PostgreSQL database for one test."""
    name = pg_cluster.create_database()
    try:
        yield pg_cluster.url(name)
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_db(request, tmp_path) -> Iterator[str]:
    """The ``--db`` of a fresh store, once per backend."""
    if request.param == "sqlite":
        yield str(tmp_path / "store.sqlite")
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_stores(request, tmp_path_factory) -> Iterator[Callable[[], str]]:
    """Makes fresh stores shared by one module's tests, once per backend: ``make()`` → the
    ``--db`` of a new empty store (dropped after the module)."""
    made: list[str] = []
    cluster = request.getfixturevalue("pg_cluster") if request.param == "postgresql" else None

    def make() -> str:
        if cluster is None:
            return str(tmp_path_factory.mktemp("store") / "store.sqlite")
        made.append(cluster.create_database())
        return cluster.url(made[-1])

    try:
        yield make
    finally:
        for name in made:
            cluster.drop_database(name)  # type: ignore[union-attr]
