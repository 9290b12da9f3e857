"""Push under faults injected by a local proxy in front of the Medplum engine: every study ends
up on the server exactly once, and the report says what happened."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fault_proxy import Fault, FaultProxy
from fhirtrial.push import FhirClient, RetryPolicy, push
from fhirtrial.push.http import (
    RateLimitedError,
    RemoteConflictError,
    RemoteNotFoundError,
    RemoteRejectedError,
    ServerUnavailableError,
    parse_retry_after,
)
from push_helpers import server_counts, study_bundle

pytestmark = pytest.mark.node
NCTS = ("NCT20000001", "NCT20000002")


@pytest.fixture
def proxy(fresh_medplum: str) -> Iterator[FaultProxy]:
    p = FaultProxy(fresh_medplum)
    p.start()
    yield p
    p.stop()


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    paths = []
    for nct in NCTS:
        path = tmp_path / f"{nct}.json"
        path.write_text(json.dumps(study_bundle(nct)), encoding="utf-8")
        paths.append(str(path))
    return paths


class Waits(list[float]):
    """Records the waits the client chose, and really waits (short in these tests)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(min(seconds, 0.2))


def _client(proxy: FaultProxy, waits: Waits, read_timeout: float = 10.0) -> FhirClient:
    base = f"http://127.0.0.1:{proxy.server.server_address[1]}"
    return FhirClient(base, timeout=(2.0, read_timeout), sleep=waits, seed=1,
                      retry=RetryPolicy(attempts=5, base=0.05, cap=0.2))


def _assert_each_study_once(base: str) -> None:
    counts = server_counts(base)
    # two studies: one shared sponsor, two sites each, one Group and PlanDefinition each
    assert counts == {"ResearchStudy": 2, "Organization": 1, "Location": 4, "Group": 2,
                      "PlanDefinition": 2}


def test_429_with_retry_after_is_waited_out(proxy: FaultProxy, inputs: list[str]) -> None:
    proxy.faults.append(Fault("status", status=429, retry_after="1", bundle_type="transaction"))
    waits = Waits()
    report = push(inputs, "unused", fhir_version="R4", strategy="transaction",
                  client=_client(proxy, waits))
    assert [r.status for r in report.results] == ["created", "created"]
    assert waits
    assert 1.0 <= waits[0] < 1.2  # Retry-After, plus at most 0.1 s of jitter
    assert any("HTTP 429" in n and "Retry-After 1" in n for n in report.results[0].notes)
    _assert_each_study_once(proxy.upstream)


def test_503s_are_retried_with_backoff(proxy: FaultProxy, inputs: list[str]) -> None:
    proxy.faults.append(Fault("status", status=503, times=3, writes_only=True))
    waits = Waits()
    report = push(inputs, "unused", fhir_version="R4", strategy="transaction",
                  client=_client(proxy, waits))
    assert [r.status for r in report.results] == ["created", "created"]
    assert len(waits) == 3
    assert sum("HTTP 503" in n for n in report.results[0].notes) == 3
    _assert_each_study_once(proxy.upstream)


@pytest.mark.parametrize("strategy", ["transaction", "batch", "single"])
def test_connection_reset_mid_write_is_rechecked_then_resent(
        proxy: FaultProxy, inputs: list[str], strategy: str) -> None:
    proxy.faults.append(Fault("reset", writes_only=True))
    report = push(inputs, "unused", fhir_version="R4", strategy=strategy,
                  client=_client(proxy, Waits()))
    assert [r.status for r in report.results] == ["created", "created"], report.text()
    assert any("connection reset" in n and "re-read the server" in n
               for n in report.results[0].notes)
    _assert_each_study_once(proxy.upstream)


def test_timeout_after_the_server_committed_is_not_written_twice(
        proxy: FaultProxy, inputs: list[str]) -> None:
    proxy.faults.append(Fault("commit_then_stall", seconds=2.0, bundle_type="transaction",
                              writes_only=True))
    report = push(inputs, "unused", fhir_version="R4", strategy="transaction",
                  client=_client(proxy, Waits(), read_timeout=1.0))
    assert [r.status for r in report.results] == ["created", "created"], report.text()
    assert any("read timeout" in n for n in report.results[0].notes)
    # the re-read found the first study committed: its transaction was sent once only
    first_study_writes = [w for w in proxy.writes() if any(NCTS[0] in u for u in w.urls)]
    assert len(first_study_writes) == 1
    _assert_each_study_once(proxy.upstream)


def test_server_that_stays_unavailable_fails_the_study_with_a_clear_reason(
        proxy: FaultProxy, inputs: list[str]) -> None:
    proxy.faults.append(Fault("status", status=503, times=100, writes_only=True))
    report = push(inputs[:1], "unused", fhir_version="R4", strategy="transaction",
                  client=_client(proxy, Waits()))
    [result] = report.results
    assert result.status == "failed"
    assert "HTTP 503" in result.error
    assert "injected 503" in result.error
    assert not report.ok
    assert server_counts(proxy.upstream)["ResearchStudy"] == 0


# ---- status → typed exception, on real answers -------------------------------------------

def test_statuses_become_typed_errors_with_the_servers_outcome(proxy: FaultProxy) -> None:
    client = _client(proxy, Waits())
    with pytest.raises(RemoteRejectedError) as e400:
        client.request("POST", "ResearchStudy", json={"resourceType": "ResearchStudy"})
    assert e400.value.status == 400
    assert e400.value.outcome["issue"][0]["expression"] == ["ResearchStudy.status"]
    with pytest.raises(RemoteNotFoundError):
        client.request("GET", "ResearchStudy/does-not-exist")
    created = client.request("POST", "Organization",
                             json={"resourceType": "Organization", "name": "V"}).json()
    with pytest.raises(RemoteConflictError) as e412:
        client.request("PUT", f"Organization/{created['id']}", json=created,
                       headers={"If-Match": 'W/"not-the-version"'})
    assert e412.value.status == 412
    proxy.faults.append(Fault("status", status=429, retry_after="7", times=10))
    client.retry = RetryPolicy(attempts=1)
    with pytest.raises(RateLimitedError) as e429:
        client.request("GET", "metadata")
    assert e429.value.retry_after == 7.0
    proxy.faults[-1] = Fault("status", status=502, times=10)
    with pytest.raises(ServerUnavailableError):
        client.request("GET", "metadata")


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
