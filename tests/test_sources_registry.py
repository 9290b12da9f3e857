"""The registry client, ``fetch`` and ``sync`` against a real local server replaying recorded
ClinicalTrials.gov API v2 exchanges (fixtures/registry)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from conftest import SHARED_V2, needs_shared
from fhirtrial.cli import main
from fhirtrial.errors import NotFoundError, RemoteError
from fhirtrial.sources import read_inputs
from fhirtrial.sources.registry import Registry
from replay_server import ReplayServer

pytestmark = needs_shared


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    s = ReplayServer()
    yield s
    s.close()


@pytest.fixture
def registry(server: ReplayServer, tmp_path) -> Registry:
    # backoff 0: the retry tests prove retries happen, not how long they wait
    return Registry(server.base_url, tmp_path / "cache", retries=2, backoff=0.0,
                    timeout=(2.0, 5.0))


def _shared(nct: str) -> dict:
    return json.loads((SHARED_V2 / f"{nct}.json").read_text(encoding="utf-8"))


def test_study_is_fetched_then_served_from_cache(server, registry) -> None:
    server.load("studies")
    first = registry.get_study("NCT02513394")
    again = registry.get_study("nct02513394")
    assert first == again == _shared("NCT02513394")
    assert server.requests_to("/api/v2/studies/NCT02513394") == 1
    assert (registry.cache / "studies" / "NCT02513394.json").is_file()
    registry.get_study("NCT02513394", refresh=True)
    assert server.requests_to("/api/v2/studies/NCT02513394") == 2


def test_unknown_id_is_not_found_without_retrying(server, registry) -> None:
    server.load("studies")
    with pytest.raises(NotFoundError) as e:
        registry.get_study("NCT99999999")
    assert "404" in e.value.message
    assert server.requests_to("/api/v2/studies/NCT99999999") == 1
    assert registry.cached("NCT99999999") is None


@pytest.mark.parametrize("nct", ["NCT00069082", "NCT00405041", "NCT00329836"],
                         ids=["429-retry-after", "503", "truncated-body"])
def test_transient_failure_is_retried_then_succeeds(server, registry, nct: str) -> None:
    server.load("studies")
    assert registry.get_study(nct) == _shared(nct)
    assert server.requests_to(f"/api/v2/studies/{nct}") == 2


def test_body_always_truncated_fails_after_retries_and_caches_nothing(server, registry) -> None:
    server.load("studies")
    with pytest.raises(RemoteError) as e:
        registry.get_study("NCT00353704")
    assert "after 3 attempts" in e.value.message
    assert "truncated" in e.value.message
    assert server.requests_to("/api/v2/studies/NCT00353704") == 3
    assert registry.cached("NCT00353704") is None


def test_query_pages_through_next_page_token(server, registry) -> None:
    server.load("query")
    ids = [s["protocolSection"]["identificationModule"]["nctId"]
           for s in registry.search(cond="headache", page_size=2)]
    assert ids == ["NCT00069082", "NCT00329836", "NCT00353704", "NCT00405041", "NCT00410098"]
    assert len(server.log) == 3
    assert not server.unmatched
    assert registry.cached_ids() == sorted(ids)


def test_query_limit_stops_paging_early(server, registry) -> None:
    server.load("query")
    assert len(list(registry.search(cond="headache", page_size=2, limit=2))) == 2
    assert len(server.log) == 1


def test_status_filter_and_term_are_sent_as_the_api_names_them(server, registry) -> None:
    server.load("query")
    found = list(registry.search(term="palbociclib",
                                 statuses=["active_not_recruiting", "RECRUITING"]))
    assert [s["protocolSection"]["identificationModule"]["nctId"] for s in found] == [
        "NCT02513394"]
    assert server.unmatched == []


def test_sync_refreshes_only_the_study_whose_last_update_moved(server, registry) -> None:
    server.load("sync-before")
    registry.get_study("NCT00069082")
    registry.get_study("NCT00329836")
    report = registry.sync()
    assert (report.refreshed, report.unchanged) == ([], ["NCT00069082", "NCT00329836"])

    server.load("sync-after")
    report = registry.sync()
    assert report.refreshed == ["NCT00329836"]
    assert report.unchanged == ["NCT00069082"]
    assert server.requests_to("/api/v2/studies/NCT00069082") == 0
    assert server.requests_to("/api/v2/studies/NCT00329836") == 1
    cached = registry.cached("NCT00329836")
    assert cached is not None
    assert cached["protocolSection"]["statusModule"]["overallStatus"] == "TERMINATED"


def test_fetch_command_writes_files_and_reports_failures(server, tmp_path) -> None:
    server.load("studies")
    out = tmp_path / "out"
    env = {"FHIRTRIAL_CTGOV_BASE_URL": server.base_url,
           "FHIRTRIAL_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(main, ["fetch", "NCT02513394", "NCT99999999", "-o", str(out)],
                                env=env)
    assert result.exit_code == 1
    assert result.stdout == "NCT02513394\n"
    assert "error: NCT99999999:" in result.stderr
    assert "404" in result.stderr
    assert json.loads((out / "NCT02513394.json").read_text()) == _shared("NCT02513394")
    assert not (out / "NCT99999999.json").exists()


def test_fetch_query_command_pages_and_writes_every_study(server, tmp_path) -> None:
    server.load("query")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["fetch", "--query-cond", "headache", "--page-size", "2",
                                       "-o", str(out), "--base-url", server.base_url,
                                       "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 0, result.stderr
    expected = ["NCT00069082", "NCT00329836", "NCT00353704", "NCT00405041", "NCT00410098"]
    assert result.stdout.split() == expected
    assert sorted(p.stem for p in out.iterdir()) == expected
    assert "fetched 5, failed 0" in result.stderr


def test_sync_command_prints_refreshed_ids(server, tmp_path) -> None:
    env = {"FHIRTRIAL_CTGOV_BASE_URL": server.base_url,
           "FHIRTRIAL_DATA_DIR": str(tmp_path / "data")}
    server.load("sync-before")
    runner = CliRunner()
    assert runner.invoke(main, ["fetch", "NCT00069082", "NCT00329836"], env=env).exit_code == 0
    server.load("sync-after")
    result = runner.invoke(main, ["sync"], env=env)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "NCT00329836\n"
    assert "refreshed 1, unchanged 1, missing 0" in result.stderr


def test_nct_id_input_is_fetched_and_read(server, tmp_path, monkeypatch) -> None:
    server.load("studies")
    monkeypatch.setenv("FHIRTRIAL_CTGOV_BASE_URL", server.base_url)
    monkeypatch.setenv("FHIRTRIAL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    recs = list(read_inputs(["NCT02513394", "NCT99999999"]))
    assert recs[0].study is not None
    assert recs[0].study.nct_id == "NCT02513394"
    assert recs[1].error is not None
    assert recs[1].error.message.startswith("NCT99999999: cannot fetch from the registry:")


def test_a_cache_file_nested_past_jsons_depth_counts_as_absent(registry) -> None:
    """A damaged cache file is absent, however it is damaged: one nested deeper than json
    parses raised RecursionError."""
    path = registry.cache / "studies" / "NCT00000001.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"a": ' + "[" * 5000 + "]" * 5000 + "}", encoding="utf-8")
    assert registry.cached("NCT00000001") is None
