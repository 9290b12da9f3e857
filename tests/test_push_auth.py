"""Authentication against a local authorisation server in front of the Medplum engine.

The server checks what a SMART Backend Services server checks: the client-credentials grant,
the assertion type, the JWT's signature against the registered public key (RS384 / ES384), its
iss/sub/aud/exp/jti claims; it issues short-lived tokens and refuses expired ones with 401.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from click.testing import CliRunner
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from fhirtrial.cli import main
from fhirtrial.push import push
from fhirtrial.push.auth import AuthConfigError, BearerAuth, SmartBackendAuth
from fhirtrial.push.http import RemoteAuthError
from push_helpers import study_bundle

pytestmark = pytest.mark.node
CLIENT_ID = "fhirtrial-loader"


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class AuthServer:
    """Token endpoint + a FHIR front that forwards authorised requests to the engine."""

    def __init__(self, upstream: str, public_key: Any, lifetime: int = 300) -> None:
        self.upstream = upstream
        self.public_key = public_key
        self.lifetime = lifetime
        self.tokens: dict[str, float] = {}  # token → expiry
        self.jtis: set[str] = set()
        self.static_tokens: set[str] = set()
        self.basic: str | None = None
        self.refusals: list[str] = []

    def verify(self, assertion: str) -> dict[str, Any]:
        head_b64, claims_b64, sig_b64 = assertion.split(".")
        header = json.loads(_unb64(head_b64))
        claims = json.loads(_unb64(claims_b64))
        signed, sig = f"{head_b64}.{claims_b64}".encode(), _unb64(sig_b64)
        if header["alg"] == "RS384":
            self.public_key.verify(sig, signed, padding.PKCS1v15(), hashes.SHA384())
        elif header["alg"] == "ES384":
            half = len(sig) // 2
            der = encode_dss_signature(int.from_bytes(sig[:half], "big"),
                                       int.from_bytes(sig[half:], "big"))
            self.public_key.verify(der, signed, ec.ECDSA(hashes.SHA384()))
        else:
            raise ValueError(f"alg {header['alg']}")
        assert claims["iss"] == claims["sub"] == CLIENT_ID
        assert claims["aud"] == f"{self.base}/token"
        assert claims["exp"] > time.time()
        assert claims["jti"] not in self.jtis
        self.jtis.add(claims["jti"])
        return claims

    def start(self) -> str:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_a: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                if self.path == "/.well-known/smart-configuration":
                    return self._send(200, json.dumps(
                        {"token_endpoint": f"{srv.base}/token"}).encode())
                if self.path == "/token":
                    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                    try:
                        assert form["grant_type"] == "client_credentials"
                        assert form["client_assertion_type"] == (
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                        srv.verify(form["client_assertion"])
                    except (AssertionError, KeyError, ValueError, InvalidSignature) as e:
                        srv.refusals.append(f"token: {e!r}")
                        return self._send(400, b'{"error":"invalid_client"}')
                    token = f"tok-{len(srv.tokens) + 1}"
                    srv.tokens[token] = time.time() + srv.lifetime
                    return self._send(200, json.dumps({
                        "access_token": token, "token_type": "bearer",
                        "expires_in": srv.lifetime, "scope": form.get("scope")}).encode())
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ")
                ok = (srv.tokens.get(token, 0) > time.time() or token in srv.static_tokens
                      or (srv.basic is not None and auth == srv.basic))
                if not ok:
                    srv.refusals.append(f"{self.command} {self.path}: {auth or 'no credentials'}")
                    return self._send(401, json.dumps({
                        "resourceType": "OperationOutcome", "issue": [{
                            "severity": "error", "code": "login",
                            "diagnostics": "invalid or expired token"}]}).encode(),
                        "application/fhir+json")
                r = requests.request(self.command, srv.upstream + self.path, data=body or None,
                                     headers={"Content-Type": "application/fhir+json"},
                                     timeout=30)
                return self._send(r.status_code, r.content, "application/fhir+json")

            do_GET = do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.base

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def rsa_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    path = tmp_path / "NCT40000001.json"
    path.write_text(json.dumps(study_bundle("NCT40000001")))
    return [str(path)]


@pytest.fixture
def auth_server(request: pytest.FixtureRequest, fresh_medplum: str,
                rsa_key: Any) -> Iterator[AuthServer]:
    key = getattr(request, "param", rsa_key)
    srv = AuthServer(fresh_medplum, key.public_key())
    srv.start()
    srv.private_key = key  # type: ignore[attr-defined]
    yield srv
    srv.stop()


@pytest.mark.parametrize("auth_server", [
    pytest.param(rsa.generate_private_key(public_exponent=65537, key_size=2048), id="RS384"),
    pytest.param(ec.generate_private_key(ec.SECP384R1()), id="ES384"),
], indirect=True)
def test_smart_backend_services_push_with_signed_assertion(auth_server: AuthServer,
                                                           inputs: list[str]) -> None:
    auth = SmartBackendAuth(client_id=CLIENT_ID, key_pem=_pem(auth_server.private_key),
                            fhir_base=auth_server.base)
    report = push(inputs, auth_server.base, auth=auth)
    assert [r.status for r in report.results] == ["created"], report.text()
    assert auth_server.refusals == []
    assert auth.fetches == 1


def test_smart_token_is_fetched_again_when_it_expires(auth_server: AuthServer,
                                                     inputs: list[str]) -> None:
    now = [time.time()]
    auth = SmartBackendAuth(client_id=CLIENT_ID, key_pem=_pem(auth_server.private_key),
                            token_url=f"{auth_server.base}/token", clock=lambda: now[0])
    push(inputs, auth_server.base, auth=auth)
    assert auth.fetches == 1
    now[0] += 600  # past expires_in (300 s): the cached token must not be used
    report = push(inputs, auth_server.base, auth=auth)
    assert [r.status for r in report.results] == ["unchanged"]
    assert auth.fetches == 2


def test_token_revoked_by_the_server_is_refreshed_after_401(auth_server: AuthServer,
                                                           inputs: list[str]) -> None:
    auth = SmartBackendAuth(client_id=CLIENT_ID, key_pem=_pem(auth_server.private_key),
                            token_url=f"{auth_server.base}/token")
    push(inputs, auth_server.base, auth=auth)
    auth_server.tokens.clear()  # the server forgets every token it issued
    report = push(inputs, auth_server.base, auth=auth)
    assert [r.status for r in report.results] == ["unchanged"]
    assert auth.fetches == 2
    assert len(auth_server.refusals) == 1


def test_assertion_signed_with_another_key_is_refused(auth_server: AuthServer,
                                                       inputs: list[str]) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    auth = SmartBackendAuth(client_id=CLIENT_ID, key_pem=_pem(other),
                            token_url=f"{auth_server.base}/token")
    with pytest.raises(RemoteAuthError, match="SMART token request refused"):
        push(inputs, auth_server.base, auth=auth)
    assert auth_server.refusals == ["token: InvalidSignature()"]


def test_push_without_credentials_exits_1_with_the_servers_reason(
        auth_server: AuthServer, inputs: list[str]) -> None:
    result = CliRunner().invoke(main, ["push", *inputs, "--server", auth_server.base,
                                       "--no-journal"])
    assert result.exit_code == 1
    assert "HTTP 401" in result.output
    assert "invalid or expired token" in result.output


def test_bearer_token_comes_from_the_environment(auth_server: AuthServer, inputs: list[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    auth_server.static_tokens.add("s3cret")
    monkeypatch.setenv("MY_FHIR_TOKEN", "s3cret")
    result = CliRunner().invoke(main, ["push", *inputs, "--server", auth_server.base,
                                       "--auth", "bearer", "--token-env", "MY_FHIR_TOKEN",
                                       "--no-journal"])
    assert result.exit_code == 0, result.output
    assert "created" in result.output
    monkeypatch.delenv("MY_FHIR_TOKEN")
    with pytest.raises(AuthConfigError, match="MY_FHIR_TOKEN is not set"):
        BearerAuth("MY_FHIR_TOKEN")


def test_basic_auth_password_comes_from_the_environment(
        auth_server: AuthServer, inputs: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    auth_server.basic = "Basic " + base64.b64encode(b"loader:pw d").decode()
    monkeypatch.setenv("FHIR_PASSWORD", "pw d")
    result = CliRunner().invoke(main, ["push", *inputs, "--server", auth_server.base,
                                       "--auth", "basic", "--user", "loader", "--no-journal"])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("FHIR_PASSWORD", "wrong")
    result = CliRunner().invoke(main, ["push", *inputs, "--server", auth_server.base,
                                       "--auth", "basic", "--user", "loader", "--no-journal"])
    assert result.exit_code == 1
    assert "HTTP 401" in result.output
    assert "invalid or expired token" in result.output
