"""Shared test fixtures: paths to the project's fixtures and to ../shared (read-only material)."""

from __future__ import annotations

from pathlib import Path

import pytest

# real peers (the Medplum FHIR engine): fixtures `medplum`, `fresh_medplum`; a throwaway
# PostgreSQL cluster: fixtures `pg_cluster`, `pg_url`, `store_db`
pytest_plugins = ["peers", "pg"]

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SHARED = ROOT.parent / "shared"
SHARED_V2 = SHARED / "fixtures" / "ctgov-v2"
SHARED_V2_PARTIAL = SHARED / "fixtures" / "ctgov-v2-partial"
SHARED_XML = SHARED / "fixtures" / "ctgov-xml"


def shared_files(folder: Path, pattern: str = "*") -> list[Path]:
    """The files of a ../shared folder, or [] where ../shared is absent (a user's machine)."""
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared (the project's read-only material) is not beside it"
)


# ---------------------------------------------------------------- server fixtures
WRITE_TOKEN = "test-writer-token"
READ_TOKEN = "test-reader-token"
FHIR_EXAMPLES = SHARED / "fhir-examples"


@pytest.fixture
def app(store_db):
    """A server app on a fresh store, once on SQLite and once on PostgreSQL (the ``store_db``
    fixture's two parameters); writes need WRITE_TOKEN."""
    from fhirtrial.server import create_app

    app = create_app({"DB": store_db, "TOKENS": f"{WRITE_TOKEN},{READ_TOKEN}:read",
                      "MAX_BODY_BYTES": 2 * 1024 * 1024})
    yield app
    app.extensions["fhirtrial.store"].close()


STORE_TABLES = ("current", "versions", "idx_token", "idx_string", "idx_date", "idx_ref",
                "idx_number", "idx_geo")


def store_rows(app) -> dict[str, list]:
    """Every row of the app's store tables (SQLite or PostgreSQL), sorted: compare two to
    prove that nothing was written."""
    store = app.extensions["fhirtrial.store"]
    with store._reading() as conn:
        return {t: sorted((tuple(r) for r in conn.execute(f"SELECT * FROM {t}").fetchall()),
                          key=repr) for t in STORE_TABLES}


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth():
    """Headers of an authorised FHIR JSON write."""
    return {"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/fhir+json"}


@pytest.fixture
def live_server(app):
    """The app on a real HTTP server on 127.0.0.1 (a free port), for real FHIR clients."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/fhir"
    finally:
        server.shutdown()
        thread.join(5)


# ---------------------------------------------------------------- fuzz counts
def pytest_configure(config):
    # hypothesis's failure report touches mypy_extensions.TypedDict, whose deprecation warning
    # (an error under filterwarnings=error) would hide the real failure behind an INTERNALERROR
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")
    # a falsifying 1 MB input is reported anyway; the warning about its repr's size is noise
    config.addinivalue_line("filterwarnings", "ignore:Generating overly large repr")


def pytest_terminal_summary(terminalreporter):
    """Print how many fuzz inputs each suite really ran, and how many failed."""
    import fuzzkit

    lines = fuzzkit.summary_lines()
    if lines:
        profile = "full" if fuzzkit.FULL else "bounded"
        terminalreporter.section(f"fuzz and load counts ({profile})")
        for line in lines:
            terminalreporter.write_line(line)
