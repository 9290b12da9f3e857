"""The live registry: a ClinicalTrials.gov API v2 client with an on-disk cache and sync.

``GET {base}/studies/{nct}`` for one study, ``GET {base}/studies?query.cond=…&pageToken=…`` for
a query (paged through ``nextPageToken``). Every request has a connect/read timeout; 429 and 5xx
answers, dropped connections and truncated bodies are retried with exponential backoff
(honouring ``Retry-After``), then fail as :class:`RemoteError`. An unknown id is a
:class:`NotFoundError`.

The cache is ``<data dir>/studies/<NCT id>.json`` (the study object exactly as served, written
atomically). ``sync`` asks the registry for the ``lastUpdatePostDate`` of every cached study, a
page of ids at a time, and downloads again only those whose date moved.

Configuration: ``FHIRTRIAL_CTGOV_BASE_URL`` (default ``https://clinicaltrials.gov/api/v2``),
``FHIRTRIAL_DATA_DIR`` (the cache is its ``registry/``; default ``./data/registry``).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .. import __version__, config
from ..errors import NotFoundError, RemoteError, SourceError
from ..files import write_atomic

DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"
NCT_RE = re.compile(r"^NCT\d{8}$")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: ids per sync request: keeps the query string well under common URL limits
SYNC_BATCH = 100


def base_url() -> str:
    """The API base URL: ``FHIRTRIAL_CTGOV_BASE_URL`` or the public registry."""
    return os.environ.get("FHIRTRIAL_CTGOV_BASE_URL", DEFAULT_BASE_URL).rstrip("/")


def data_dir() -> Path:
    """Where the cache lives: ``registry/`` under the data directory (``fhirtrial.config``)."""
    return config.data_dir() / "registry"


def last_update(study: dict[str, Any]) -> str | None:
    """A study object's ``lastUpdatePostDateStruct.date``."""
    try:
        value = study["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def nct_of(study: Any) -> str | None:
    try:
        value = study["protocolSection"]["identificationModule"]["nctId"]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, str) and NCT_RE.match(value) else None


@dataclass
class SyncReport:
    """What a sync did: ids refreshed, unchanged, and those the registry no longer has."""

    refreshed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


class Registry:
    """ClinicalTrials.gov API v2 client with retries and an on-disk study cache."""

    def __init__(self, base: str | None = None, cache_dir: Path | str | None = None, *,
                 timeout: tuple[float, float] = (5.0, 30.0), retries: int = 4,
                 backoff: float = 1.0, max_backoff: float = 30.0,
                 session: requests.Session | None = None) -> None:
        self.base = (base or base_url()).rstrip("/")
        self.cache = Path(cache_dir) if cache_dir is not None else data_dir()
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", f"fhirtrial/{__version__}")
        self.session.headers["Accept"] = "application/json"
        self.requests_made = 0

    # --- HTTP ------------------------------------------------------------------------------
    def _get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        url = f"{self.base}{path}"
        last: str = ""
        for attempt in range(self.retries + 1):
            wait = min(self.max_backoff, self.backoff * 2 ** attempt)
            try:
                self.requests_made += 1
                resp = self.session.get(url, params=params, timeout=self.timeout)
                if resp.status_code == 404:
                    raise NotFoundError(f"{url}: the registry has no such study (404)")
                if resp.status_code in RETRY_STATUSES:
                    last = f"HTTP {resp.status_code}"
                    wait = _retry_after(resp.headers.get("Retry-After"), wait, self.max_backoff)
                elif resp.status_code >= 400:
                    raise RemoteError(f"{url}: registry answered HTTP {resp.status_code}",
                                      status=resp.status_code)
                else:
                    try:
                        return resp.json()
                    except ValueError:
                        # a body cut short: the next attempt may get it whole
                        last = f"malformed or truncated JSON body ({len(resp.content)} bytes)"
            except (requests.ConnectionError, requests.Timeout) as e:
                last = f"{type(e).__name__}: {_short(e)}"
            except requests.exceptions.ChunkedEncodingError as e:
                last = f"truncated body: {_short(e)}"
            if attempt < self.retries:
                time.sleep(wait)
        raise RemoteError(f"{url}: registry request failed after {self.retries + 1} attempts "
                          f"({last})")

    # --- studies ---------------------------------------------------------------------------
    def fetch_study(self, nct_id: str) -> dict[str, Any]:
        """Download one study object (no cache read; the cache is written)."""
        nct_id = _check_nct(nct_id)
        study = self._get_json(f"/studies/{nct_id}")
        if nct_of(study) != nct_id:
            raise RemoteError(f"{self.base}/studies/{nct_id}: answer is not that study")
        self._store(nct_id, study)
        return study

    def get_study(self, nct_id: str, *, refresh: bool = False) -> dict[str, Any]:
        """The study object from the cache, or downloaded (and cached) when absent or refresh."""
        nct_id = _check_nct(nct_id)
        if not refresh:
            cached = self.cached(nct_id)
            if cached is not None:
                return cached
        return self.fetch_study(nct_id)

    def search(self, *, cond: str | None = None, term: str | None = None,
               statuses: Iterable[str] = (), page_size: int = 100,
               limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield every study a query matches, page after page (each one is also cached)."""
        params: dict[str, Any] = {"pageSize": page_size}
        if cond:
            params["query.cond"] = cond
        if term:
            params["query.term"] = term
        statuses = [s.upper() for s in statuses]
        if statuses:
            params["filter.overallStatus"] = ",".join(statuses)
        count = 0
        for page in self._pages("/studies", params):
            for study in page:
                if (nct := nct_of(study)) is None:
                    continue
                self._store(nct, study)
                yield study
                count += 1
                if limit is not None and count >= limit:
                    return

    def updated_since(self, day: str, *, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Every study whose lastUpdatePostDate is ``day`` (YYYY-MM-DD) or later, page by page
        (each one is also cached)."""
        params = {"pageSize": page_size,
                  "filter.advanced": f"AREA[LastUpdatePostDate]RANGE[{day},MAX]"}
        for page in self._pages("/studies", params):
            for study in page:
                if (nct := nct_of(study)) is None:
                    continue
                self._store(nct, study)
                yield study

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        token: str | None = None
        seen: set[str] = set()
        while True:
            query = dict(params, **({"pageToken": token} if token else {}))
            page = self._get_json(path, query)
            if not isinstance(page, dict) or not isinstance(page.get("studies"), list):
                raise RemoteError(f"{self.base}{path}: answer is not a page of studies")
            yield [s for s in page["studies"] if isinstance(s, dict)]
            token = page.get("nextPageToken")
            if not token:
                return
            if token in seen:  # a server repeating a token would page forever
                raise RemoteError(f"{self.base}{path}: nextPageToken {token!r} repeated")
            seen.add(token)

    # --- cache and sync --------------------------------------------------------------------
    def _path(self, nct_id: str) -> Path:
        return self.cache / "studies" / f"{nct_id}.json"

    def cached(self, nct_id: str) -> dict[str, Any] | None:
        """The cached study object, or None (a damaged cache file counts as absent)."""
        try:
            study = json.loads(self._path(nct_id).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return None
        return study if nct_of(study) == nct_id else None

    def cached_ids(self) -> list[str]:
        folder = self.cache / "studies"
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("NCT*.json") if NCT_RE.match(p.stem))

    def _store(self, nct_id: str, study: dict[str, Any]) -> None:
        data = json.dumps(study, ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n"
        write_atomic(self._path(nct_id), data)

    def sync(self, nct_ids: Iterable[str] | None = None) -> SyncReport:
        """Refresh cached studies whose ``lastUpdatePostDate`` moved on the registry.

        ``nct_ids`` defaults to every cached study; an id not cached yet is downloaded.
        """
        ids = sorted({_check_nct(i) for i in nct_ids}) if nct_ids is not None else \
            self.cached_ids()
        report = SyncReport()
        for start in range(0, len(ids), SYNC_BATCH):
            batch = ids[start:start + SYNC_BATCH]
            remote: dict[str, str | None] = {}
            params = {"filter.ids": ",".join(batch), "fields": "NCTId,LastUpdatePostDate",
                      "pageSize": len(batch)}
            for page in self._pages("/studies", params):
                for st in page:
                    if (nct := nct_of(st)) is not None:
                        remote[nct] = last_update(st)
            for nct in batch:
                if nct not in remote:
                    report.missing.append(nct)
                    continue
                cached = self.cached(nct)
                if cached is not None and last_update(cached) == remote[nct] \
                        and remote[nct] is not None:
                    report.unchanged.append(nct)
                else:
                    self.fetch_study(nct)
                    report.refreshed.append(nct)
        return report


def _check_nct(nct_id: str) -> str:
    value = nct_id.strip().upper()
    if not NCT_RE.match(value):
        raise SourceError(f"{nct_id!r} is not an NCT id (NCT followed by 8 digits)")
    return value


def _retry_after(header: str | None, default: float, cap: float) -> float:
    if header and header.strip().isdigit():
        return min(cap, float(header.strip()))
    return default


def _short(e: Exception) -> str:
    text = str(e)
    return text if len(text) < 160 else text[:157] + "…"
