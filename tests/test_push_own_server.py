"""Push against fhirtrial's own FHIR server (real HTTP on 127.0.0.1, a write token): the
shared registry records converted to R5 land once, with every resource and resolvable
references, and a re-push changes nothing — no new resource, no new version."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from conftest import SHARED_V2, SHARED_V2_PARTIAL, SHARED_XML, WRITE_TOKEN, needs_shared
from fhirtrial.cli import main
from fhirtrial.push import push
from fhirtrial.push.auth import BearerAuth
from fhirtrial.push.units import iter_references

pytestmark = needs_shared
FOLDERS = (SHARED_V2, SHARED_V2_PARTIAL, SHARED_XML)
TOKEN_ENV = "FHIRTRIAL_TEST_PUSH_TOKEN"
_NCT = re.compile(rb'"nctId"\s*:\s*"(NCT\d{8})"|<nct_id>\s*(NCT\d{8})\s*</nct_id>')

# batch and single requests cost a round trip per level or per resource, so they take the
# records that exercise what the strategies differ on, not all 125: the largest study (467
# resources, also given as legacy XML), two downloads of one study that disagree, and two
# studies sharing a sponsor the registry classes differently (OTHER_GOV vs OTHER).
SUBSET = (SHARED_V2 / "NCT02513394.json", SHARED_V2 / "NCT00405041.json",
          SHARED_V2_PARTIAL / "NCT06382129.json", SHARED_V2_PARTIAL / "NCT06382129__v2.json",
          SHARED_XML / "NCT01339988.xml", SHARED_XML / "NCT02513394.xml")


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> BearerAuth:
    monkeypatch.setenv(TOKEN_ENV, WRITE_TOKEN)
    return BearerAuth(TOKEN_ENV)


def _files(strategy: str) -> list[Path]:
    if strategy == "transaction":
        return [f for folder in FOLDERS for f in sorted(folder.iterdir()) if f.is_file()]
    return list(SUBSET)


def _nct(path: Path) -> str:
    m = _NCT.search(path.read_bytes())
    assert m, f"{path} names no NCT id"
    return (m.group(1) or m.group(2)).decode()


def _r5_bundle(path: Path) -> dict:
    from fhirtrial.convert import convert_study
    from fhirtrial.sources import read_inputs

    [rec] = list(read_inputs([str(path)]))
    return convert_study(rec.study, fhir_version="R5").bundle


def _expected(files: list[Path]) -> tuple[list[str], dict[str, int], dict[str, int]]:
    """(first record's NCT per study in input order, resources per study, distinct resources
    per type): the first record of a study is the one pushed."""
    firsts: dict[str, Path] = {}
    for f in files:
        firsts.setdefault(_nct(f), f)
    per_study: dict[str, int] = {}
    urls: dict[str, set[str]] = {}
    for nct, f in firsts.items():
        bundle = _r5_bundle(f)
        per_study[nct] = len(bundle["entry"])
        for e in bundle["entry"]:
            urls.setdefault(e["resource"]["resourceType"], set()).add(e["fullUrl"])
    return list(firsts), per_study, {t: len(u) for t, u in urls.items()}


def _count(base: str, rtype: str) -> int:
    r = requests.get(f"{base}/{rtype}", params={"_summary": "count"}, timeout=10)
    r.raise_for_status()
    assert "entry" not in r.json()
    return int(r.json()["total"])


def _all(base: str, rtype: str) -> list[dict]:
    out: list[dict] = []
    url: str | None = f"{base}/{rtype}?_count=1000"
    while url:
        page = requests.get(url, timeout=30).json()
        out += [e["resource"] for e in page.get("entry", []) if e["search"]["mode"] == "match"]
        url = next((li["url"] for li in page["link"] if li["relation"] == "next"), None)
    return out


@pytest.mark.parametrize("strategy", ["transaction", "batch", "single"])
def test_shared_records_land_once_as_r5_and_a_repush_changes_nothing(
        live_server: str, token: BearerAuth, strategy: str) -> None:
    files = _files(strategy)
    studies, per_study, per_type = _expected(files)
    inputs = [str(f) for f in files]

    first = push(inputs, live_server, fhir_version="R5", strategy=strategy, auth=token)
    assert first.strategy == strategy  # no fallback: the server does what it announces
    pushed = [r for r in first.results if r.status != "skipped"]
    assert [(r.name, r.status) for r in pushed] == [(n, "created") for n in studies], \
        first.text()
    assert [r.resources["created"] + r.resources["unchanged"] for r in pushed] == [
        per_study[n] for n in studies]
    # a study given twice is pushed once; the later record says so
    skipped = [r for r in first.results if r.status == "skipped"]
    assert len(skipped) == len(files) - len(studies)
    assert all("already pushed in this run" in r.notes[0] for r in skipped)

    counts = {t: _count(live_server, t) for t in per_type}
    assert counts == per_type
    stored = {t: _all(live_server, t) for t in per_type}
    have = {f"{t}/{r['id']}" for t, rs in stored.items() for r in rs}
    for rtype, resources in stored.items():
        for res in resources:
            for ref in iter_references(res):
                assert ref["reference"] in have, (f"{rtype}/{res['id']}", ref)
    versions = {t: {r["id"]: r["meta"]["versionId"] for r in rs} for t, rs in stored.items()}

    second = push(inputs, live_server, fhir_version="R5", strategy=strategy, auth=token)
    assert [(r.name, r.status) for r in second.results if r.status != "skipped"] == [
        (n, "unchanged") for n in studies], second.text()
    assert [r.resources["unchanged"] for r in second.results if r.status != "skipped"] == [
        per_study[n] for n in studies]
    assert {t: _count(live_server, t) for t in per_type} == counts
    assert {t: {r["id"]: r["meta"]["versionId"] for r in _all(live_server, t)}
            for t in per_type} == versions


def test_auto_reads_the_servers_metadata_and_pushes_r5(live_server: str, token: BearerAuth,
                                                        tmp_path: Path) -> None:
    record = SHARED_V2 / "NCT00405041.json"
    result = CliRunner().invoke(main, [
        "push", str(record), "--server", live_server, "--fhir-version", "auto", "--auth",
        "bearer", "--token-env", TOKEN_ENV, "--report", str(tmp_path / "report.json"),
        "--no-journal"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert (report["fhirVersion"], report["strategy"]) == ("R5", "transaction")
    assert [(s["name"], s["status"]) for s in report["studies"]] == [("NCT00405041", "created")]
    [study] = _all(live_server, "ResearchStudy")
    # R5 shapes: publication status plus the lifecycle in progressStatus (R4 has neither)
    assert study["status"] in ("draft", "active", "retired", "unknown")
    assert study["progressStatus"]


def test_auto_against_the_r4_endpoint_pushes_r4(live_server: str, token: BearerAuth) -> None:
    r4 = f"{live_server}/R4"
    report = push([str(SHARED_V2 / "NCT00405041.json")], r4, auth=token)
    assert (report.fhir_version, report.strategy) == ("R4", "transaction")
    assert [r.status for r in report.results] == ["created"], report.text()
    [study] = _all(r4, "ResearchStudy")
    # R4 shapes: the record's overallStatus COMPLETED is the required status itself (R5 would
    # say "completed" in progressStatus, which R4 lacks)
    assert study["status"] == "completed"
    assert "progressStatus" not in study


def test_capability_statement_declares_what_push_relies_on(live_server: str) -> None:
    from fhirtrial.push import capabilities_choice

    cs = requests.get(f"{live_server}/metadata", timeout=10).json()
    assert cs["fhirVersion"] == "5.0.0"
    assert capabilities_choice(cs) == ("R5", "transaction")
    [rest] = cs["rest"]
    assert {i["code"] for i in rest["interaction"]} >= {"transaction", "batch"}
    declared = {r["type"]: r for r in rest["resource"]}
    bundle = _r5_bundle(SHARED_V2 / "NCT02513394.json")
    keyed = {e["resource"]["resourceType"] for e in bundle["entry"]
             if e["resource"].get("identifier")}
    for rtype in {e["resource"]["resourceType"] for e in bundle["entry"]}:
        res = declared[rtype]
        # push looks every resource up (search-type), then PUTs Type?identifier=… (a
        # conditional update) or, with no identifier, Type/id (an update that may create)
        assert {"search-type", "update", "read"} <= {i["code"] for i in res["interaction"]}
        assert res["conditionalUpdate"] is True
        assert res["updateCreate"] is True
        if rtype in keyed:
            assert "identifier" in {p["name"] for p in res["searchParam"]}, rtype


# ---- two rules that keep a re-push idempotent when inputs disagree (first of the run wins)
def _write(folder: Path, name: str, bundle: dict) -> str:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return str(path)


def test_study_given_twice_is_pushed_once_and_the_differing_copy_is_reported(
        live_server: str, token: BearerAuth, tmp_path: Path) -> None:
    from push_helpers import study_bundle

    r4 = f"{live_server}/R4"
    inputs = [_write(tmp_path / "a", "x", study_bundle("NCT10000031", title="Old title")),
              _write(tmp_path / "b", "x", study_bundle("NCT10000031", title="New title"))]
    first = push(inputs, r4, fhir_version="R4", auth=token)
    assert [r.status for r in first.results] == ["created", "skipped"], first.text()
    assert first.results[1].notes == [
        f"NCT10000031 was already pushed in this run from {inputs[0]}; this record differs "
        "from it and was not pushed (give one record per study)"]
    [study] = _all(r4, "ResearchStudy")
    assert (study["title"], study["meta"]["versionId"]) == ("Old title", "1")
    second = push(inputs, r4, fhir_version="R4", auth=token)
    assert [r.status for r in second.results] == ["unchanged", "skipped"], second.text()
    [study] = _all(r4, "ResearchStudy")
    assert (study["title"], study["meta"]["versionId"]) == ("Old title", "1")


def test_sponsor_shared_by_studies_that_describe_it_differently_is_not_rewritten(
        live_server: str, token: BearerAuth, tmp_path: Path) -> None:
    from push_helpers import study_bundle

    r4 = f"{live_server}/R4"
    one, two = study_bundle("NCT10000041"), study_bundle("NCT10000042")
    [org] = [e["resource"] for e in two["entry"] if e["resource"]["resourceType"] ==
             "Organization"]
    org["alias"] = ["Acme Research Inc."]  # the second record says more about the sponsor
    inputs = [_write(tmp_path, "one", one), _write(tmp_path, "two", two)]
    first = push(inputs, r4, fhir_version="R4", auth=token)
    assert [r.status for r in first.results] == ["created", "created"], first.text()
    assert any("shared with NCT10000041" in n for n in first.results[1].notes), first.text()
    [stored] = _all(r4, "Organization")
    assert "alias" not in stored
    second = push(inputs, r4, fhir_version="R4", auth=token)
    assert [r.status for r in second.results] == ["unchanged", "unchanged"], second.text()
    [again] = _all(r4, "Organization")
    assert again["meta"]["versionId"] == stored["meta"]["versionId"] == "1"
    # pushed alone, the second record is the only one that says anything: it updates
    alone = push(inputs[1:], r4, fhir_version="R4", auth=token)
    assert alone.results[0].status == "updated", alone.text()
    [updated] = _all(r4, "Organization")
    assert updated["alias"] == ["Acme Research Inc."]


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[str]:
    """Our server refusing request bodies over 8 KB (as a proxy in front of a server may)."""
    import threading

    from werkzeug.serving import make_server

    from fhirtrial.server import create_app

    app = create_app({"DB": str(tmp_path / "small.sqlite"), "TOKENS": WRITE_TOKEN,
                      "MAX_BODY_BYTES": 8000})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/fhir/R4"
    finally:
        server.shutdown()
        thread.join(5)


@pytest.mark.parametrize("strategy", ["transaction", "batch"])
def test_requests_the_server_finds_too_large_are_split_not_failed(
        small_server: str, token: BearerAuth, tmp_path: Path, strategy: str) -> None:
    from push_helpers import resources_of, study_bundle

    bundle = study_bundle("NCT10000051", sites=120)
    inputs = [_write(tmp_path, "big", bundle)]
    first = push(inputs, small_server, fhir_version="R4", strategy=strategy, auth=token)
    assert [r.status for r in first.results] == ["created"], first.text()
    noun = "transaction" if strategy == "transaction" else "batch"
    assert any(n.startswith(f"server refused a {noun} of ") for n in first.notes), first.notes
    assert _count(small_server, "Location") == 120
    second = push(inputs, small_server, fhir_version="R4", strategy=strategy, auth=token)
    assert [r.status for r in second.results] == ["unchanged"], second.text()
    assert second.results[0].resources["unchanged"] == resources_of(bundle)
    # 124 lookups do not fit in one 8 KB batch either
    assert any("lookups as too large" in n for n in second.notes), second.notes


def test_a_resource_larger_than_the_server_accepts_fails_with_the_servers_words(
        small_server: str, token: BearerAuth, tmp_path: Path) -> None:
    from push_helpers import study_bundle

    bundle = study_bundle("NCT10000052")
    [study] = [e["resource"] for e in bundle["entry"]
               if e["resource"]["resourceType"] == "ResearchStudy"]
    study["description"] = "x" * 9000
    report = push([_write(tmp_path, "huge", bundle)], small_server, fhir_version="R4",
                  strategy="batch", auth=token)
    [result] = report.results
    assert result.status == "failed"
    assert result.error.startswith("ResearchStudy/NCT10000052: POST ")
    assert result.error.endswith("HTTP 413: The request body is larger than 8000 bytes "
                                 "[too-costly]")


def test_resumed_run_keeps_the_sponsor_its_journalled_study_settled(
        live_server: str, token: BearerAuth, tmp_path: Path) -> None:
    from push_helpers import study_bundle

    r4, journal = f"{live_server}/R4", tmp_path / "push.jsonl"
    one, two = study_bundle("NCT10000061"), study_bundle("NCT10000062")
    [org] = [e["resource"] for e in two["entry"] if e["resource"]["resourceType"] ==
             "Organization"]
    org["alias"] = ["Acme Research Inc."]
    inputs = [_write(tmp_path, "one", one), _write(tmp_path, "two", two)]
    push(inputs, r4, fhir_version="R4", auth=token, journal=journal)
    # the second study changes; the first is skipped as journalled, yet still settles the
    # sponsor, as it did in the first run
    two["entry"][0]["resource"]["title"] = "Retitled"
    _write(tmp_path, "two", two)
    again = push(inputs, r4, fhir_version="R4", auth=token, journal=journal)
    assert [r.status for r in again.results] == ["skipped", "updated"], again.text()
    [stored] = _all(r4, "Organization")
    assert ("alias" not in stored, stored["meta"]["versionId"]) == (True, "1")


# ---- lookups: one OR search per type, trusted only once the server has shown it honours it
def _lookup_urls(proxy) -> list[list[str]]:
    return [e.urls for e in proxy.log if e.bundle_type == "batch"
            and all(u.startswith("GET ") for u in e.urls)]


@pytest.fixture
def proxied(live_server: str) -> Iterator[tuple[str, object]]:
    from fault_proxy import FaultProxy

    proxy = FaultProxy(live_server.rsplit("/fhir", 1)[0])
    base = proxy.start()
    yield f"{base}/fhir/R4", proxy
    proxy.stop()


def test_repush_looks_resources_up_with_one_or_search_per_type(
        proxied: tuple[str, object], token: BearerAuth, tmp_path: Path) -> None:
    from push_helpers import study_bundle

    base, proxy = proxied
    inputs = [_write(tmp_path, n, study_bundle(n, sites=60)) for n in ("NCT10000071",
                                                                        "NCT10000072")]
    push(inputs, base, fhir_version="R4", auth=token)
    proxy.log.clear()  # type: ignore[attr-defined]
    again = push(inputs, base, fhir_version="R4", auth=token)
    assert [r.status for r in again.results] == ["unchanged", "unchanged"], again.text()
    [first, second] = _lookup_urls(proxy)
    # the first study is looked up one by one (nothing known yet to check an OR search
    # with); its Locations then serve as the check for the second study's OR search
    assert len(first) == 64
    locations = [u for u in second if u.startswith("GET Location?")]
    assert len(locations) == 2  # 60 sites: 50 + 10 identifiers
    assert locations[0].count(",") == 50  # 50 identifiers and the known one that checks


def test_server_that_ignores_or_searches_is_noticed_and_nothing_is_duplicated(
        proxied: tuple[str, object], token: BearerAuth, tmp_path: Path) -> None:
    from fault_proxy import Fault
    from push_helpers import study_bundle

    base, proxy = proxied
    inputs = [_write(tmp_path, n, study_bundle(n, sites=5)) for n in ("NCT10000081",
                                                                       "NCT10000082")]
    proxy.faults.append(Fault("no_or", times=10_000))  # type: ignore[attr-defined]
    first = push(inputs, base, fhir_version="R4", auth=token)
    assert [r.status for r in first.results] == ["created", "created"], first.text()
    again = push(inputs, base, fhir_version="R4", auth=token)
    assert [r.status for r in again.results] == ["unchanged", "unchanged"], again.text()
    assert "server ignored an OR search on identifier; looking up one by one" in again.notes
    assert _count(base, "Location") == 10
    assert _count(base, "ResearchStudy") == 2
