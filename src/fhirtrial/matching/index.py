"""The candidate index: what type-level ``$match`` needs of every stored study, in memory,
built from the store through its public interface and kept current incrementally.

Built once per (store, FHIR version) by paging through ``store.search`` (ResearchStudy, then
Location); kept current by ``store.history`` since the newest ``lastUpdated`` seen: before each
use, one count of the versions written since then per type (an index range count); only when
that count moved are the new versions read and re-indexed (deletions dropped). Nothing here is
SQLite-specific, so the PostgreSQL store gets the same index for free.

Per study it keeps the condition keys (:mod:`fhirtrial.matching.concepts`), the words of its
condition and keyword texts, status, phases, the registry's age range, sex and
healthy-volunteer flag (read from the eligibility EvidenceVariable's registry
characteristics, not parsed from text), its site references and its eligibility reference.
Postings (key → study ids, word → study ids) make retrieval a dictionary lookup.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from ..errors import FhirtrialError
from ..server.store import Store
from .concepts import norm_text, study_keys

R5_STATUS = "http://hl7.org/fhir/research-study-status"
PHASE = "http://hl7.org/fhir/research-study-phase"
LOINC_AGE, LOINC_SEX = "30525-0", "46098-0"
_AGE_DAYS = {"a": 365.25, "mo": 30.4375, "wk": 7.0, "d": 1.0, "h": 1 / 24}
_PAGE = 1000
#: words too common in condition texts to drive a "text contains" look-up
STOPWORDS = frozenset({
    "a", "an", "and", "or", "of", "the", "in", "on", "for", "with", "without", "to", "by", "at",
    "as", "is", "be", "disease", "disorder", "disorders", "syndrome", "patients", "patient",
    "chronic", "acute", "type"})


@dataclass(slots=True)
class Site:
    lat: float | None
    lon: float | None
    status: str | None  # the site's own research-study-status code, when it states one
    name: str


@dataclass(slots=True)
class StudyEntry:
    id: str
    vid: int
    title: str
    status: str | None
    phases: frozenset[str]
    keys: dict[str, str]  # index key → condition | keyword
    texts: tuple[str, ...]  # normalised condition and keyword texts
    age_low_days: float | None = None
    age_high_days: float | None = None
    sex: str | None = None  # male | female; None: all
    healthy_volunteers: bool | None = None
    sites: tuple[str, ...] = ()  # Location ids
    eligibility: str | None = None  # EvidenceVariable id
    eligibility_stated: bool = False  # registry characteristics were read


@dataclass
class CandidateIndex:
    """The in-memory index of one FHIR version's stored studies."""

    store: Store
    fv: str
    studies: dict[str, StudyEntry] = field(default_factory=dict)
    by_key: dict[str, set[str]] = field(default_factory=dict)
    by_word: dict[str, set[str]] = field(default_factory=dict)
    locations: dict[str, Site] = field(default_factory=dict)
    healthy: set[str] = field(default_factory=set)
    _mark: dict[str, tuple[str, int]] = field(default_factory=dict)  # rtype → (since, seen)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    built: bool = False
    _builder: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _arrays: Arrays | None = None
    _contains: dict[str, set[str]] = field(default_factory=dict)

    def arrays(self) -> Arrays:
        """The columnar snapshot requests filter and rank with (rebuilt after a change)."""
        with self._lock:
            if self._arrays is None:
                self._arrays = Arrays.build(self)
            return self._arrays

    # ------------------------------------------------------------ keeping it current
    def refresh(self) -> None:
        """Bring the index up to date with the store (the first call builds it)."""
        with self._lock:
            if not self.built:
                self._build()
                self.built = True
                return
            for rtype in ("Location", "ResearchStudy"):
                self._catch_up(rtype)

    def _build_in_background(self) -> None:
        try:
            self.refresh()
            self.arrays()
        except Exception:  # the next request builds again in its own thread, and reports
            self._builder = None
        finally:
            self._ready.set()

    def _build(self) -> None:
        newest = ""
        for rtype in ("Location", "ResearchStudy"):
            offset = 0
            while True:
                page, _ = self.store.search(self.fv, rtype, [], sort=(), offset=offset,
                                            count=_PAGE, total=False)
                for s in page:
                    newest = max(newest, s.last_updated)
                    self._put(rtype, s.id, s.vid, s.resource())
                if len(page) < _PAGE:
                    break
                offset += _PAGE
        for rtype in ("Location", "ResearchStudy"):
            self._set_mark(rtype, newest)

    def _set_mark(self, rtype: str, since: str) -> None:
        _, seen = self.store.history(self.fv, rtype, None, since=since or None, count=0,
                                     offset=0)
        self._mark[rtype] = (since, seen)

    def _catch_up(self, rtype: str) -> None:
        since, seen = self._mark[rtype]
        _, now = self.store.history(self.fv, rtype, None, since=since or None, count=0,
                                    offset=0)
        if now == seen:
            return
        latest: dict[str, Any] = {}  # id → newest history entry (history is newest first)
        newest = since
        offset = 0
        while True:
            entries, _ = self.store.history(self.fv, rtype, None, since=since or None,
                                            count=_PAGE, offset=offset)
            for e in entries:
                latest.setdefault(e.stored.id, e.stored)
                newest = max(newest, e.stored.last_updated)
            if len(entries) < _PAGE:
                break
            offset += _PAGE
        for rid, s in latest.items():
            if s.deleted:
                self._drop(rtype, rid)
            else:
                self._put(rtype, rid, s.vid, s.resource())
        self._set_mark(rtype, newest)

    # ------------------------------------------------------------ entries
    def _put(self, rtype: str, rid: str, vid: int, res: dict[str, Any]) -> None:
        self._arrays = None
        self._contains = {}
        if rtype == "Location":
            self.locations[rid] = read_site(res)
            return
        old = self.studies.get(rid)
        if old is not None and old.vid >= vid:
            return
        self._drop(rtype, rid)
        entry = read_study(res, vid)
        ev = self._eligibility(entry.eligibility)
        if ev is not None:
            read_registry_criteria(ev, entry)
        self.studies[rid] = entry
        for k in entry.keys:
            self.by_key.setdefault(k, set()).add(rid)
        for w in {w for t in entry.texts for w in t.split() if w not in STOPWORDS}:
            self.by_word.setdefault(w, set()).add(rid)
        if entry.healthy_volunteers:
            self.healthy.add(rid)

    def _eligibility(self, evid: str | None) -> dict[str, Any] | None:
        from ..errors import GoneError, NotFoundError

        if not evid:
            return None
        try:
            return self.store.read(self.fv, "EvidenceVariable", evid).resource()
        except (NotFoundError, GoneError):
            return None

    def _drop(self, rtype: str, rid: str) -> None:
        self._arrays = None
        self._contains = {}
        if rtype == "Location":
            self.locations.pop(rid, None)
            return
        old = self.studies.pop(rid, None)
        if old is None:
            return
        for k in old.keys:
            ids = self.by_key.get(k)
            if ids is not None:
                ids.discard(rid)
                if not ids:
                    del self.by_key[k]
        for w in {w for t in old.texts for w in t.split()}:
            ids = self.by_word.get(w)
            if ids is not None:
                ids.discard(rid)
                if not ids:
                    del self.by_word[w]
        self.healthy.discard(rid)

    # ------------------------------------------------------------ look-ups
    def containing(self, text: str) -> set[str]:
        """Studies with a condition or keyword text containing ``text`` (normalised) as a
        phrase: the postings of its rarest word, then each candidate's texts checked."""
        hit = self._contains.get(text)
        if hit is not None:
            return hit
        out = self._containing(text)
        if len(self._contains) > 4096:
            self._contains = {}
        self._contains[text] = out
        return out

    def containing_rows(self, text: str, arr: Arrays) -> np.ndarray:
        """:meth:`containing` as row numbers of ``arr`` (cached with it)."""
        hit = arr.contains.get(text)
        if hit is None:
            hit = np.array(sorted(arr.row[s] for s in self.containing(text) if s in arr.row),
                           dtype=np.int32)
            if len(arr.contains) > 4096:
                arr.contains.clear()
            arr.contains[text] = hit
        return hit

    def _containing(self, text: str) -> set[str]:
        words = [w for w in text.split() if w not in STOPWORDS]
        if not words:
            return set()
        postings = [self.by_word.get(w) for w in words]
        if any(p is None for p in postings):
            return set()
        smallest = min(postings, key=len)  # type: ignore[arg-type]
        needle = f" {text} "
        return {sid for sid in smallest  # type: ignore[union-attr]
                if any(needle in f" {t} " for t in self.studies[sid].texts)}


# ---------------------------------------------------------------- the columnar snapshot

#: research-study-status codes and phases as small integers (index into these tuples)
STATUS_CODES: dict[str, int] = {}
PHASE_BITS = {p: 1 << i for i, p in enumerate((
    "n-a", "not-applicable", "early-phase-1", "phase-1", "phase-1-phase-2", "phase-2",
    "phase-2-phase-3", "phase-3", "phase-4"))}
SEX = {"male": 1, "female": 2}


def status_code(code: str | None) -> int:
    """A small integer per status code (-1 for none), shared by all indexes."""
    if code is None:
        return -1
    return STATUS_CODES.setdefault(code, len(STATUS_CODES))


def phase_mask(codes: Any) -> int:
    """Bits of the phases, a combined phase also counting as each of its parts."""
    m = 0
    for c in codes:
        m |= PHASE_BITS.get(c, 0)
        parts = c.split("-phase-")
        if len(parts) == 2:
            m |= PHASE_BITS.get(parts[0], 0) | PHASE_BITS.get(f"phase-{parts[1]}", 0)
    return m


@dataclass
class Arrays:
    """Every study as a row of numpy columns, in id order; postings as row-number arrays.

    A request then filters and ranks tens of thousands of candidates in a few vectorised
    operations instead of a Python loop per study."""

    ids: list[str]
    row: dict[str, int]
    status: np.ndarray  # int16
    phases: np.ndarray  # int32 bit mask
    age_lo: np.ndarray  # float64 days, nan: none
    age_hi: np.ndarray
    sex: np.ndarray  # int8: 0 any, 1 male, 2 female
    postings: dict[str, tuple[np.ndarray, np.ndarray]]  # key → (as condition, as keyword)
    healthy: np.ndarray  # row numbers
    site_row: np.ndarray  # int32: the study row of each site
    site_lat: np.ndarray
    site_lon: np.ndarray
    site_status: np.ndarray  # int16, -1: the study's own
    site_name: list[str]
    contains: dict[str, np.ndarray] = field(default_factory=dict)  # text → rows (a cache)

    @staticmethod
    def build(idx: CandidateIndex) -> Arrays:
        ids = sorted(idx.studies)
        row = {sid: i for i, sid in enumerate(ids)}
        entries = [idx.studies[sid] for sid in ids]
        nan = float("nan")
        status = np.array([status_code(e.status) for e in entries], dtype=np.int16)
        phases = np.array([phase_mask(e.phases) for e in entries], dtype=np.int32)
        age_lo = np.array([nan if e.age_low_days is None else e.age_low_days
                           for e in entries], dtype=np.float64)
        age_hi = np.array([nan if e.age_high_days is None else e.age_high_days
                           for e in entries], dtype=np.float64)
        sex = np.array([SEX.get(e.sex or "", 0) for e in entries], dtype=np.int8)
        postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for key, sids in idx.by_key.items():
            cond = sorted(row[s] for s in sids if idx.studies[s].keys[key] == "condition")
            kw = sorted(row[s] for s in sids if idx.studies[s].keys[key] != "condition")
            postings[key] = (np.array(cond, dtype=np.int32), np.array(kw, dtype=np.int32))
        healthy = np.array(sorted(row[s] for s in idx.healthy), dtype=np.int32)
        s_row, s_lat, s_lon, s_status, s_name = [], [], [], [], []
        for i, e in enumerate(entries):
            for loc in e.sites:
                site = idx.locations.get(loc)
                if site is None or site.lat is None or site.lon is None:
                    continue
                s_row.append(i)
                s_lat.append(site.lat)
                s_lon.append(site.lon)
                s_status.append(status_code(site.status))
                s_name.append(site.name)
        return Arrays(ids, row, status, phases, age_lo, age_hi, sex, postings, healthy,
                      np.array(s_row, dtype=np.int32), np.array(s_lat, dtype=np.float64),
                      np.array(s_lon, dtype=np.float64), np.array(s_status, dtype=np.int16),
                      s_name)


# ---------------------------------------------------------------- reading resources

def _codes(cc: Any, system: str) -> list[str]:
    if not isinstance(cc, dict):
        return []
    return [c["code"] for c in cc.get("coding") or [] if isinstance(c, dict)
            and c.get("system") == system and isinstance(c.get("code"), str)]


def _local_id(ref: Any, rtype: str) -> str | None:
    if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
        return None
    r = ref["reference"].split("/_history/")[0]
    parts = r.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == rtype:
        return parts[-1]
    return None


def study_status(res: dict[str, Any]) -> str | None:
    """The study's recruitment status as a research-study-status code (R5 progressStatus
    state, R4 status)."""
    for ps in res.get("progressStatus") or []:
        if isinstance(ps, dict):
            for code in _codes(ps.get("state"), R5_STATUS):
                if code != "overall-study":
                    return code
    st = res.get("status")
    if isinstance(st, str) and "progressStatus" not in res:
        # R4: ResearchStudy.status is the recruitment status, in R4's own codes: read back
        # to the R5 code the converter's status table pairs it with
        return _r4_status().get(st, st)
    return None


@cache
def _r4_status() -> dict[str, str]:
    from ..tables import table

    out: dict[str, str] = {}
    for entry in table("overall-status").doc["map"].values():
        r4 = (entry.get("r4_status") or {}).get("code")
        r5 = (entry.get("r5_state") or {}).get("code")
        if r4 and r5:
            out.setdefault(r4, r5)
    return out


def read_study(res: dict[str, Any], vid: int) -> StudyEntry:
    keys = study_keys(res)
    texts: list[str] = []
    for fieldname in ("condition", "keyword"):
        for cc in res.get(fieldname) or []:
            if isinstance(cc, dict):
                for t in [cc.get("text"), *(c.get("display") for c in cc.get("coding") or []
                                            if isinstance(c, dict))]:
                    if isinstance(t, str) and (n := norm_text(t)) and n not in texts:
                        texts.append(n)
    phases = frozenset(_codes(res.get("phase"), PHASE))
    sites = tuple(sid for s in res.get("site") or [] if (sid := _local_id(s, "Location")))
    if not sites:  # R4: sites are ResearchStudy.site too
        sites = ()
    elig = _local_id((res.get("recruitment") or {}).get("eligibility"), "EvidenceVariable")
    return StudyEntry(id=res["id"], vid=vid, title=res.get("title") or res["id"],
                      status=study_status(res), phases=phases, keys=keys, texts=tuple(texts),
                      sites=sites, eligibility=elig)


def read_site(res: dict[str, Any]) -> Site:
    pos = res.get("position") or {}
    lat, lon = pos.get("latitude"), pos.get("longitude")
    status = None
    for ch in res.get("characteristic") or []:
        codes = _codes(ch, R5_STATUS)
        if codes:
            status = codes[0]
            break
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return Site(float(lat), float(lon), status, res.get("name") or res.get("id", ""))
    return Site(None, None, status, res.get("name") or res.get("id", ""))


def _days(q: Any) -> float | None:
    if not isinstance(q, dict) or not isinstance(q.get("value"), int | float):
        return None
    factor = _AGE_DAYS.get(q.get("code") or "")
    return None if factor is None else float(q["value"]) * factor


def read_registry_criteria(ev: dict[str, Any], entry: StudyEntry) -> None:
    """Age range, sex and the healthy-volunteer flag from the characteristics the converter
    writes for the registry's structured fields (LOINC-typed age and sex, a boolean)."""
    for ch in ev.get("characteristic") or []:
        if not isinstance(ch, dict) or ch.get("exclude"):
            continue
        d = ch.get("definitionByTypeAndValue")
        if not isinstance(d, dict):
            continue
        loinc = _codes(d.get("type"), "http://loinc.org")
        if LOINC_AGE in loinc and entry.age_low_days is None and entry.age_high_days is None:
            entry.eligibility_stated = True
            rng = d.get("valueRange")
            if isinstance(rng, dict):
                entry.age_low_days = _days(rng.get("low"))
                entry.age_high_days = _days(rng.get("high"))
            q = d.get("valueQuantity")
            if isinstance(q, dict):
                if q.get("comparator") in (">=", ">"):
                    entry.age_low_days = _days(q)
                elif q.get("comparator") in ("<=", "<"):
                    entry.age_high_days = _days(q)
        elif LOINC_SEX in loinc:
            entry.eligibility_stated = True
            sex = _codes(d.get("valueCodeableConcept"),
                         "http://hl7.org/fhir/administrative-gender")
            if sex and sex[0] in ("male", "female"):
                entry.sex = sex[0]
        elif ((d.get("type") or {}).get("text") == "Accepts healthy volunteers"
              and isinstance(d.get("valueBoolean"), bool)):
            entry.healthy_volunteers = d["valueBoolean"]


# one index per (store, FHIR version), made on first use
_INDEXES: dict[tuple[int, str], CandidateIndex] = {}
_INDEXES_LOCK = threading.Lock()


class IndexBuilding(FhirtrialError):
    """The index is still being built in the background (a large store's first request)."""

    issue_code = "transient"
    http_status = 503


def index_for(store: Store, fv: str, wait: float | None = None) -> CandidateIndex:
    """The up-to-date candidate index of this store's ``fv`` studies.

    ``wait`` None builds it in the caller when needed (the CLI). A number (the server) builds
    it in a background thread and waits that many seconds for it, then raises
    :class:`IndexBuilding` (503): a large store's first build takes minutes, longer than a
    worker may spend on one request."""
    with _INDEXES_LOCK:
        idx = _INDEXES.get((id(store), fv))
        if idx is None or idx.store is not store:
            idx = _INDEXES[(id(store), fv)] = CandidateIndex(store, fv)
        if wait is not None and not idx.built and idx._builder is None:
            idx._ready.clear()
            idx._builder = threading.Thread(target=idx._build_in_background, daemon=True,
                                            name=f"fhirtrial-match-index-{fv}")
            idx._builder.start()
    if wait is not None and not idx.built:
        idx._ready.wait(wait)
        if not idx.built:
            raise IndexBuilding(
                f"the trial index of this server's {fv} studies is being built "
                f"({len(idx.studies)} studies read so far); retry in a minute")
    idx.refresh()
    return idx
