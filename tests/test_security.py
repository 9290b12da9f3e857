"""Security checks: authorisation of writes, body size and depth limits, SQL metacharacters
in searches, and XML with entities or external references refused by the readers."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar
from urllib.parse import urlsplit

import pytest
import requests
from click.testing import CliRunner

from conftest import READ_TOKEN, SHARED_XML, WRITE_TOKEN, needs_shared, store_rows
from fhirtrial.cli import main

JSON = {"Content-Type": "application/fhir+json"}
STUDY = {"resourceType": "ResearchStudy", "status": "active", "title": "Security probe"}


def _rows(app) -> int:
    return len(store_rows(app)["versions"])


def _outcome(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.get_data(as_text=True)[:500]
    oo = json.loads(r.data)
    assert oo["resourceType"] == "OperationOutcome"
    assert oo["issue"][0]["code"] == code
    return oo


# ---------------------------------------------------------------- authorisation
@pytest.fixture
def existing(client, auth):
    r = client.put("/fhir/ResearchStudy/sec1", json={**STUDY, "id": "sec1"}, headers=auth)
    assert r.status_code == 201
    return "sec1"


WRITES = [
    ("POST", "/fhir/ResearchStudy", STUDY),
    ("PUT", "/fhir/ResearchStudy/sec1", {**STUDY, "id": "sec1", "title": "changed"}),
    ("PUT", "/fhir/ResearchStudy?identifier=x", STUDY),
    ("DELETE", "/fhir/ResearchStudy/sec1", None),
    ("POST", "/fhir", {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": STUDY, "request": {"method": "POST", "url": "ResearchStudy"}}]}),
]
WRITE_IDS = ["create", "update", "conditional-update", "delete", "transaction"]


@pytest.mark.parametrize(("method", "url", "body"), WRITES, ids=WRITE_IDS)
@pytest.mark.parametrize(("header", "status", "code"), [
    (None, 401, "login"),
    ("Bearer not-a-token", 401, "login"),
    (f"Basic {WRITE_TOKEN}", 401, "login"),
    ("Bearer ", 401, "login"),
    (f"Bearer {READ_TOKEN}", 403, "forbidden"),
], ids=["no-token", "wrong-token", "wrong-scheme", "empty-token", "read-only-token"])
def test_write_without_write_token_is_refused_and_store_unchanged(
        app, client, existing, method, url, body, header, status, code) -> None:
    before = _rows(app)
    headers = dict(JSON)
    if header is not None:
        headers["Authorization"] = header
    r = client.open(url, method=method, data=json.dumps(body) if body else None,
                    headers=headers)
    _outcome(r, status, code)
    if status == 401:
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert _rows(app) == before
    assert client.get("/fhir/ResearchStudy/sec1").get_json()["title"] == "Security probe"


# ---------------------------------------------------------------- size and depth
def _raw_request(base: str, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send a hand-made request and read the answer (the server may close early)."""
    u = urlsplit(base)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(head.encode() + body)
        data = b""
        while chunk := s.recv(65536):  # the server closes after refusing: read to the end
            data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_oversized_content_length_is_refused_413_without_reading_the_body(live_server):
    # announce 1 GB, send 10 bytes: an answer at all proves the server did not wait for it
    path = urlsplit(live_server).path + "/ResearchStudy"
    status, data = _raw_request(live_server, (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {WRITE_TOKEN}\r\n"
        "Content-Type: application/fhir+json\r\nContent-Length: 1073741824\r\n\r\n"), b"{" * 10)
    assert status == 413
    assert b"too-costly" in data or b"OperationOutcome" in data


def test_oversized_body_without_token_is_refused_401_before_reading(live_server):
    path = urlsplit(live_server).path + "/ResearchStudy"
    status, _ = _raw_request(live_server, (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
        "Content-Length: 1073741824\r\n\r\n"), b"{")
    assert status == 401


def test_chunked_body_over_the_limit_is_refused_413(live_server):
    def chunks():
        for _ in range(40):  # 40 × 128 KiB = 5 MiB, over the fixture's 2 MiB limit
            yield b" " * (128 * 1024)

    r = requests.post(f"{live_server}/ResearchStudy", data=chunks(), timeout=30,
                      headers={**JSON, "Authorization": f"Bearer {WRITE_TOKEN}"})
    assert r.status_code == 413
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("depth", [150, 5_000, 100_000], ids=["150", "5k", "100k"])
@pytest.mark.parametrize("url", ["/fhir/ResearchStudy", "/fhir"], ids=["create", "bundle"])
def test_deeply_nested_body_is_refused_400_not_500(app, client, auth, url, depth) -> None:
    before = _rows(app)
    body = ('{"resourceType": "ResearchStudy", "status": "active", "extension": '
            + "[" * depth + "]" * depth + "}")
    r = client.post(url, data=body, headers=auth)
    oo = _outcome(r, 400, "invalid")
    assert "nested" in oo["issue"][0]["diagnostics"]
    assert _rows(app) == before


def test_xml_body_is_not_parsed_by_the_server(client, auth) -> None:
    xml = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           '<ResearchStudy xmlns="http://hl7.org/fhir"><title value="&x;"/></ResearchStudy>')
    r = client.post("/fhir/ResearchStudy", data=xml,
                    headers={**auth, "Content-Type": "application/fhir+xml"})
    _outcome(r, 415, "not-supported")


# ---------------------------------------------------------------- SQL metacharacters
@pytest.mark.parametrize(("param", "value"), [
    ("title", "' OR 1=1 --"), ("title", "%"), ("title:contains", "%' OR '1'='1"),
    ("_id", "' OR 1=1 --"), ("identifier", "x' OR 1=1 --|y"),
    ("title", "'; DROP TABLE current; --"), ("date", "ge2020' OR 1=1 --"),
])
def test_sql_in_search_value_is_data_not_code(app, client, existing, param, value) -> None:
    r = client.get("/fhir/ResearchStudy", query_string={param: value})
    assert r.status_code in (200, 400), r.get_data(as_text=True)
    if r.status_code == 200:
        assert r.get_json().get("entry", []) == [], "an injected condition matched a resource"
    # the tables are all still there and the resource still reads
    assert client.get("/fhir/ResearchStudy/sec1").status_code == 200
    assert _rows(app) == 1


# ---------------------------------------------------------------- XML readers
class _Hits(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self):
        _Hits.hits.append(self.path)
        body = b'<!ENTITY x "fetched">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def entity_server():
    """A loopback HTTP server counting fetches: an external entity must never reach it."""
    _Hits.hits = []
    server = HTTPServer(("127.0.0.1", 0), _Hits)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    t.join(5)


def _record_xml(doctype: str, title: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}\n<clinical_study>'
            "<id_info><nct_id>NCT01234567</nct_id></id_info>"
            f"<brief_title>{title}</brief_title></clinical_study>\n")


BAD_XML = {
    "external-file": ('<!DOCTYPE clinical_study [<!ENTITY x SYSTEM "file://{secret}">]>',
                      "&x;"),
    "external-url": ('<!DOCTYPE clinical_study [<!ENTITY x SYSTEM "{url}/e">]>', "&x;"),
    "external-dtd": ('<!DOCTYPE clinical_study SYSTEM "{url}/dtd">', "T"),
    "parameter-entity": ('<!DOCTYPE clinical_study [<!ENTITY % p SYSTEM "{url}/p"> %p;]>',
                         "T"),
    "billion-laughs": ('<!DOCTYPE clinical_study [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;'
                       '&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
                       '<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;'
                       '&d;&d;&d;&d;&d;&d;">]>', "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"),
    "internal-entity": ('<!DOCTYPE clinical_study [<!ENTITY x "inner">]>', "&x;"),
}


@pytest.mark.parametrize("kind", list(BAD_XML), ids=list(BAD_XML))
def test_xml_with_dtd_or_entities_is_refused_by_convert(tmp_path, entity_server, kind):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    doctype, title = BAD_XML[kind]
    src = tmp_path / "hostile.xml"
    src.write_text(_record_xml(doctype.format(secret=secret, url=entity_server), title))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["convert", str(src), "-o", str(out), "-j", "1"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "hostile.xml: XML refused: it declares a DTD or entities" in result.stderr
    assert "Traceback" not in result.output
    assert "TOP-SECRET-CONTENT" not in result.output
    assert not list(out.glob("*.json")) if out.exists() else True
    assert _Hits.hits == [], "the reader fetched an external entity"


@needs_shared
def test_real_xml_record_with_an_entity_added_is_refused(tmp_path):
    text = sorted(SHARED_XML.glob("*.xml"))[0].read_text(encoding="utf-8")
    body = text[text.index("<clinical_study"):]
    src = tmp_path / "NCT-entity.xml"
    src.write_text('<?xml version="1.0"?>\n<!DOCTYPE clinical_study [<!ENTITY x "y">]>\n'
                   + body)
    result = CliRunner().invoke(main, ["convert", str(src), "-j", "1"])
    assert result.exit_code == 1
    assert "NCT-entity.xml: XML refused" in result.stderr


@pytest.mark.parametrize("method", [["POST"], {"m": "POST"}, 1, None],
                         ids=["list", "object", "number", "null"])
def test_bundle_entry_method_of_wrong_type_is_400_not_500(client, auth, method) -> None:
    """Found by fuzzing: an unhashable method was looked up in a dict (TypeError → 500)."""
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": STUDY, "request": {"method": method, "url": "ResearchStudy"}}]}
    oo = _outcome(client.post("/fhir", json=bundle, headers=auth), 400, "invalid")
    assert "Bundle.entry[0].request" in oo["issue"][0]["expression"]


def test_escaped_lone_surrogate_in_body_is_400_not_500(app, client, auth) -> None:
    """Found by fuzzing: a lone \\uD83D reached the store's UTF-8 encoding (500)."""
    before = _rows(app)
    body = '{"resourceType": "ResearchStudy", "status": "active", "title": "a \\ud83d b"}'
    oo = _outcome(client.post("/fhir/ResearchStudy", data=body, headers=auth), 400, "invalid")
    assert "lone surrogate" in oo["issue"][0]["diagnostics"]
    assert _rows(app) == before
    paired = '{"resourceType": "ResearchStudy", "status": "active", "title": "\\ud83d\\ude00"}'
    r = client.post("/fhir/ResearchStudy", data=paired, headers=auth)
    assert r.status_code == 201
    assert r.get_json()["title"] == "\U0001f600"
