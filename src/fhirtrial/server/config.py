"""Server configuration: embedded defaults, then ``FHIRTRIAL_*`` environment variables, then
the dict given to ``create_app`` (later wins). Nothing has to be configured to start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError

DEFAULTS: dict[str, Any] = {
    "DB": None,  # None: <data dir>/fhirtrial.sqlite; or a postgresql:// URL (server.stores)
    # PostgreSQL connections per server process (each gunicorn worker has its own pool)
    "DB_POOL_MIN": 1,
    "DB_POOL_MAX": 4,
    "DB_POOL_TIMEOUT": 10.0,  # seconds a request waits for a connection before a 503
    "FHIR_VERSION": "R5",  # what /fhir serves; /fhir/R4 and /fhir/R5 are always there
    # token -> scope ("write" may read and write; "read" may only read). Writes need a token:
    # with none configured the server is read-only, which is the safe default.
    "TOKENS": {},
    "READ_AUTH": False,  # True: reads need a token too
    "MAX_BODY_BYTES": 32 * 1024 * 1024,
    "CORS_ORIGINS": "*",
    "DEFAULT_COUNT": 20,
    "BASE_URL": None,  # public base URL for fullUrl/links; None = from the request
    "VALIDATE": True,
}

ENV: dict[str, tuple[str, Any]] = {
    "FHIRTRIAL_DB": ("DB", str),
    "FHIRTRIAL_DB_POOL_MIN": ("DB_POOL_MIN", int),
    "FHIRTRIAL_DB_POOL_MAX": ("DB_POOL_MAX", int),
    "FHIRTRIAL_DB_POOL_TIMEOUT": ("DB_POOL_TIMEOUT", float),
    "FHIRTRIAL_FHIR_VERSION": ("FHIR_VERSION", str),
    "FHIRTRIAL_TOKENS": ("TOKENS", "tokens"),
    "FHIRTRIAL_READ_AUTH": ("READ_AUTH", bool),
    "FHIRTRIAL_MAX_BODY_BYTES": ("MAX_BODY_BYTES", int),
    "FHIRTRIAL_CORS_ORIGINS": ("CORS_ORIGINS", str),
    "FHIRTRIAL_BASE_URL": ("BASE_URL", str),
}


def parse_tokens(value: str | Mapping[str, str] | list[str]) -> dict[str, str]:
    """``"tok1,tok2:read"`` (or a list, or a dict) → {token: scope}; scope defaults to write."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    items = value.split(",") if isinstance(value, str) else list(value)
    out: dict[str, str] = {}
    for item in items:
        item = item.strip()
        if not item:
            continue
        token, _, scope = item.partition(":")
        if scope not in ("", "read", "write"):
            raise ConfigError(f"token scope {scope!r}: expected read or write")
        out[token] = scope or "write"
    return out


def load_config(overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Defaults ← environment ← overrides."""
    env = os.environ if environ is None else environ
    cfg = dict(DEFAULTS)
    data = env.get("FHIRTRIAL_DATA_DIR") or "data"
    cfg["DB"] = str(Path(data) / "fhirtrial.sqlite")
    for var, (key, kind) in ENV.items():
        if var in env:
            cfg[key] = _parse(var, env[var], kind)
    for key, value in (overrides or {}).items():
        cfg[key] = parse_tokens(value) if key == "TOKENS" else value
    if cfg["FHIR_VERSION"] not in ("R4", "R5"):
        raise ConfigError(f"FHIR_VERSION {cfg['FHIR_VERSION']!r}: expected R4 or R5")
    _check(cfg)
    return cfg


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _parse(var: str, raw: str, kind: Any) -> Any:
    """One environment value as its setting's type, or a ValueError naming the variable."""
    if kind == "tokens":
        return parse_tokens(raw)
    if kind is bool:
        word = raw.strip().lower()
        if word not in _TRUE + _FALSE:
            raise ConfigError(f"{var}={raw!r}: expected true or false")
        return word in _TRUE
    try:
        return kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{var}={raw!r}: expected {what}") from None


def _check(cfg: Mapping[str, Any]) -> None:
    """Settings that would start a server that cannot work (a pool of no connections, a body
    limit that refuses every request, a base URL no client can follow) are refused at start."""
    import math

    if not cfg["DB_POOL_MIN"] >= 0 or not cfg["DB_POOL_MAX"] >= max(1, cfg["DB_POOL_MIN"]):
        raise ConfigError(f"DB_POOL_MIN {cfg['DB_POOL_MIN']!r} / DB_POOL_MAX "
                         f"{cfg['DB_POOL_MAX']!r}: expected 0 <= min <= max, max >= 1")
    timeout = cfg["DB_POOL_TIMEOUT"]
    if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"DB_POOL_TIMEOUT {timeout!r}: expected a number of seconds above 0")
    if not cfg["MAX_BODY_BYTES"] >= 1:
        raise ConfigError(f"MAX_BODY_BYTES {cfg['MAX_BODY_BYTES']!r}: expected at least 1")
    base = cfg["BASE_URL"]
    if base is not None and not str(base).startswith(("http://", "https://")):
        raise ConfigError(f"BASE_URL {base!r}: expected an http:// or https:// URL")
