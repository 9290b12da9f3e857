"""Credentials for the target server: bearer token, basic, SMART Backend Services.

Secrets come from environment variables or files, never from the command line, where any user
could read them in the process list.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ..errors import FhirtrialError
from .http import Auth, RemoteAuthError, raise_for_status

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class AuthConfigError(FhirtrialError):
    """Credentials are missing or unusable (an environment variable unset, a bad key file)."""

    issue_code = "security"
    http_status = 401


class BearerAuth(Auth):
    """A static bearer token taken from an environment variable."""

    def __init__(self, env_var: str = "FHIR_TOKEN") -> None:
        token = os.environ.get(env_var, "").strip()
        if not token:
            raise AuthConfigError(f"bearer auth: environment variable {env_var} is not set")
        self.token = token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class BasicAuth(Auth):
    """HTTP basic auth; the password comes from an environment variable."""

    def __init__(self, user: str, password_env: str = "FHIR_PASSWORD") -> None:
        password = os.environ.get(password_env)
        if password is None:
            raise AuthConfigError(f"basic auth: environment variable {password_env} is not set")
        raw = f"{user}:{password}".encode()
        self.value = "Basic " + base64.b64encode(raw).decode("ascii")

    def headers(self) -> dict[str, str]:
        return {"Authorization": self.value}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_jwt(claims: dict[str, Any], private_key: Any, *, kid: str | None = None) -> str:
    """A compact JWS of ``claims``: RS384 for an RSA key, ES384 for an EC key (SMART's two)."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        alg = "RS384"
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        alg = "ES384"
    else:
        raise AuthConfigError("SMART backend key must be an RSA or EC private key")
    header: dict[str, str] = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + _b64url(json.dumps(claims, separators=(",", ":")).encode()))
    if alg == "RS384":
        sig = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA384())
    else:
        der = private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA384()))
        r, s = decode_dss_signature(der)
        size = (private_key.curve.key_size + 7) // 8
        # JWS wants the raw r||s pair, not the DER the library returns (RFC 7518 §3.4)
        sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return signing_input + "." + _b64url(sig)


class SmartBackendAuth(Auth):
    """SMART Backend Services: client-credentials grant with a signed JWT assertion.

    The access token is cached until shortly before ``expires_in`` runs out, and fetched again
    on expiry or when the server answers 401.
    """

    def __init__(self, *, client_id: str, key_pem: bytes, token_url: str | None = None,
                 fhir_base: str | None = None, scope: str = "system/*.read system/*.write",
                 kid: str | None = None, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.time, timeout: float = 30.0) -> None:
        try:
            self.key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as e:
            raise AuthConfigError(f"SMART backend key is not a usable PEM private key: {e}") \
                from None
        self.client_id = client_id
        self.scope = scope
        self.kid = kid
        self.session = session or requests.Session()
        self.clock = clock
        self.timeout = timeout
        self._token_url = token_url
        self._fhir_base = fhir_base
        self._token: str | None = None
        self._expires_at = 0.0
        #: how many tokens were fetched (reported, and checked by tests)
        self.fetches = 0

    @property
    def token_url(self) -> str:
        if not self._token_url:
            if not self._fhir_base:
                raise AuthConfigError("SMART backend auth needs a token URL or the FHIR base")
            # SMART App Launch 2: the token endpoint is advertised at .well-known
            r = self.session.get(f"{self._fhir_base.rstrip('/')}/.well-known/smart-configuration",
                                 timeout=self.timeout, headers={"Accept": "application/json"})
            raise_for_status(r)
            self._token_url = r.json().get("token_endpoint")
            if not self._token_url:
                raise AuthConfigError("smart-configuration has no token_endpoint")
        return self._token_url

    def assertion(self) -> str:
        now = int(self.clock())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": self.token_url,
                  "exp": now + 300, "iat": now,
                  # jti must be unique per assertion (replay protection): random by design
                  "jti": uuid.uuid4().hex}
        return sign_jwt(claims, self.key, kid=self.kid)

    def _fetch(self) -> None:
        r = self.session.post(self.token_url, timeout=self.timeout, data={
            "grant_type": "client_credentials", "scope": self.scope,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.assertion()}, headers={"Accept": "application/json"})
        if r.status_code in (400, 401, 403):
            raise RemoteAuthError(f"SMART token request refused (HTTP {r.status_code}): "
                                  f"{r.text[:300]}", status=r.status_code)
        raise_for_status(r)
        body = r.json()
        token = body.get("access_token")
        if not token:
            raise RemoteAuthError("SMART token response has no access_token")
        self._token = token
        # refresh a little early so a token never expires in flight
        self._expires_at = self.clock() + max(0.0, float(body.get("expires_in", 300)) - 30)
        self.fetches += 1

    def headers(self) -> dict[str, str]:
        if self._token is None or self.clock() >= self._expires_at:
            self._fetch()
        return {"Authorization": f"Bearer {self._token}"}

    def refresh(self) -> bool:
        self._token = None
        return True
