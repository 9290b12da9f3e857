"""Plan and write one study: look up what the server has, compare, write only what differs.

Strategies, best first: ``transaction`` (chunked to what the server accepts, urn:uuid
references resolved by the server), ``batch`` (dependency levels, server ids filled in between
levels), ``single`` (one conditional PUT per resource, in dependency order).

Idempotency does not rely on the server: every resource is looked up by its identifier and
compared (ignoring ``meta``, and narrative the server generated) before anything is written, so
a re-run sends nothing and creates no new versions. A write whose answer was lost (timeout,
reset, 502/504) is not re-sent blindly: the study is planned again from what the server now
holds, which makes "the server committed, the client timed out" safe.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..errors import FhirtrialError, RemoteError
from .http import (
    FhirClient,
    RemoteNotFoundError,
    RemoteNotSupportedError,
    RemoteRejectedError,
    RemoteTooLargeError,
    TransportError,
    outcome_text,
)
from .units import Item, Unit, dependency_order, iter_references, json_copy

STRATEGIES = ("transaction", "batch", "single")
OR_LIMIT = 50
_LOCATION = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?/?$")


class ItemFailed(FhirtrialError):
    """The server refused a resource of the study (carries the server's OperationOutcome)."""

    issue_code = "processing"

    def __init__(self, message: str, *, outcome: dict[str, Any] | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.status = status


@dataclass(slots=True)
class UnitResult:
    """What happened to one study."""

    name: str
    status: str  # created | updated | unchanged | failed | skipped | would-create | would-update
    source: str = ""
    resources: dict[str, int] = field(default_factory=dict)  # created/updated/unchanged counts
    error: str = ""
    outcome: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Plan:
    idmap: dict[str, str]  # full_url → "Type/id" on the server
    states: dict[str, str]  # full_url → new | changed | unchanged
    writes: list[Item]  # in dependency order
    notes: list[str] = field(default_factory=list)


def normalized(resource: dict[str, Any], *, keep_text: bool) -> dict[str, Any]:
    """A resource as compared: no id, no server-managed meta, narrative only when we send one."""
    r = dict(resource)  # only top-level keys are dropped or replaced: a shallow copy will do
    r.pop("id", None)
    meta = r.pop("meta", None) or {}
    if meta.get("profile"):
        r["meta"] = {"profile": meta["profile"]}
    if not keep_text:
        r.pop("text", None)
    return r


def resolved_body(item: Item, idmap: dict[str, str], local: set[str] = frozenset()  # type: ignore[assignment]
                  ) -> tuple[dict[str, Any], bool]:
    """The resource as sent: unit references → server ids (except ``local`` ones, which the
    transaction resolves). Returns (body, all references resolved)."""
    body: dict[str, Any] = json_copy(item.resource)
    if item.key:
        body.pop("id", None)  # the server keeps its own id; the identifier is the key
    complete = True
    for ref in iter_references(body):
        target = ref["reference"]
        if target.startswith("urn:uuid:") and target not in local:
            if target in idmap:
                ref["reference"] = idmap[target]
            else:
                complete = False
    return body, complete


class Pusher:
    """Pushes units to one server with one strategy (falling back when the server lacks it)."""

    def __init__(self, client: FhirClient, *, strategy: str = "transaction",
                 chunk_size: int = 100, dry_run: bool = False, replans: int = 4,
                 log: Callable[[str], None] = lambda _m: None) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}")
        self.client = client
        self.strategy = strategy
        self.limit = max(1, chunk_size)
        self.lookup_limit = self.limit
        self.dry_run = dry_run
        self.replans = replans
        self.log = log
        self.lookup_batch = strategy != "single"
        # identifier lookups OR-ed per type (one search for up to OR_LIMIT resources): on
        # until the server shows it ignores them, trusted once it has shown it honours them
        self.or_lookups, self.or_verified = True, False
        self.known_keys: dict[str, tuple[str, str]] = {}  # type → identifier the server has
        # resource → the study that wrote or confirmed it earlier in this run (see plan())
        self.settled: dict[tuple[str, str, str], str] = {}

    # ---- planning ---------------------------------------------------------------------
    def lookup(self, items: list[Item]) -> dict[str, dict[str, Any] | None]:
        """What the server holds for each item (by identifier), None when absent."""
        found: dict[str, dict[str, Any] | None] = {}
        if self.lookup_batch:
            try:
                pending = list(items)
                while pending:
                    chunk, pending = (pending[:self.lookup_limit],
                                      pending[self.lookup_limit:])
                    found.update(self._lookup_sized(chunk))
                return found
            except (RemoteRejectedError, RemoteNotFoundError, RemoteNotSupportedError) as e:
                self.lookup_batch = False
                self.log(f"lookups in a batch refused ({e.status}); searching one by one")
        for item in items:
            found[item.full_url] = self._lookup_one(item)
        return found

    def _lookup_sized(self, items: list[Item]) -> dict[str, dict[str, Any] | None]:
        """A batch of lookups, halved while the server says it is too large (413)."""
        try:
            return self._lookup_batch(items)
        except RemoteTooLargeError:
            if len(items) == 1:
                raise
            mid = len(items) // 2
            self.lookup_limit = min(self.lookup_limit, len(items) - mid)
            self.log(f"server refused a batch of {len(items)} lookups as too large; sending "
                     f"at most {self.lookup_limit} per batch")
            return {**self._lookup_sized(items[:mid]), **self._lookup_sized(items[mid:])}

    def _lookup_batch(self, items: list[Item]) -> dict[str, dict[str, Any] | None]:
        groups = self._or_groups(items)
        entries_out: list[dict[str, Any]] = []
        probes: list[tuple[str, str] | None] = []
        for group in groups:
            probe = None
            if len(group) > 1:
                # an OR search is trusted once the server has returned, in one, a resource a
                # single search found: a server that ignored the commas would answer "none"
                # and every resource would be created again
                probe = None if self.or_verified else self.known_keys.get(group[0].type)
                keys = [*(i.key for i in group), *([probe] if probe else [])]
                url = (f"{group[0].type}?identifier="
                       + ",".join(quote(f"{k[0]}|{k[1]}", safe=":/|") for k in keys if k)
                       + f"&_count={2 * len(keys)}")
            else:
                url = group[0].search_url()
            entries_out.append({"request": {"method": "GET", "url": url}})
            probes.append(probe)
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": entries_out}
        # a batch of reads changes nothing: safe to retry like a GET
        resp = self.client.request("POST", "", json=bundle, idempotent=True).json()
        entries = resp.get("entry") or []
        if len(entries) != len(groups):
            raise RemoteRejectedError("batch lookup answered with a different number of entries",
                                      status=422)
        out: dict[str, dict[str, Any] | None] = {}
        retry: list[Item] = []
        for group, probe, entry in zip(groups, probes, entries, strict=True):
            status = str((entry.get("response") or {}).get("status", ""))[:3]
            res = entry.get("resource")
            if not status.startswith("2") and status != "404":
                outcome = (entry.get("response") or {}).get("outcome")
                raise ItemFailed(f"lookup of {group[0].label} failed: HTTP {status} "
                                 f"{outcome_text(outcome)}", outcome=outcome)
            if len(group) == 1:
                found = self._single_match(group[0], res) if status.startswith("2") and res \
                    else None
                out[group[0].full_url] = found
                self._remember(group[0], found)
                continue
            matches = _matches(res if status.startswith("2") else None)
            if matches is None:  # paged or not a searchset: ask one by one
                retry += group
                continue
            if probe is not None:
                if not any(_has_key(m, probe) for m in matches):
                    self.or_lookups = False
                    self.log("server ignored an OR search on identifier; looking up one by one")
                    retry += group
                    continue
                self.or_verified = True
            for item in group:
                mine = [m for m in matches if item.key and _has_key(m, item.key)]
                found = self._single_match(item, {"resourceType": "Bundle", "entry": [
                    {"resource": m} for m in mine]})
                out[item.full_url] = found
        if retry:
            out.update(self._lookup_batch_plain(retry))
        return out

    def _lookup_batch_plain(self, items: list[Item]) -> dict[str, dict[str, Any] | None]:
        """The same batch with one search per resource."""
        saved, self.or_lookups = self.or_lookups, False
        try:
            return self._lookup_batch(items)
        finally:
            self.or_lookups = saved

    def _or_groups(self, items: list[Item]) -> list[list[Item]]:
        """Items keyed on an identifier, by type, in groups of ``OR_LIMIT``; the others alone.
        Until the server has shown it honours OR searches, a type with no known resource to
        check with is looked up one by one."""
        if not self.or_lookups:
            return [[i] for i in items]
        by_type: dict[str, list[Item]] = {}
        groups: list[list[Item]] = []
        for item in items:
            if item.key and not any(c in item.key[1] for c in ",$\\"):
                by_type.setdefault(item.type, []).append(item)
            else:
                groups.append([item])
        for rtype, typed in by_type.items():
            if len(typed) == 1 or not (self.or_verified or rtype in self.known_keys):
                groups += [[i] for i in typed]
                continue
            groups += [typed[k:k + OR_LIMIT] for k in range(0, len(typed), OR_LIMIT)]
        return groups

    def _remember(self, item: Item, found: dict[str, Any] | None) -> None:
        if found is not None and item.key:
            self.known_keys.setdefault(item.type, item.key)

    def _lookup_one(self, item: Item) -> dict[str, Any] | None:
        try:
            res = self.client.get_json(item.search_url())
        except RemoteNotFoundError:
            return None
        return self._single_match(item, res)

    @staticmethod
    def _single_match(item: Item, res: dict[str, Any]) -> dict[str, Any] | None:
        if res.get("resourceType") != "Bundle":
            return res  # a read by id
        matches = [e["resource"] for e in res.get("entry") or []
                   if (e.get("search") or {}).get("mode", "match") == "match" and e.get("resource")]
        if len(matches) > 1:
            raise ItemFailed(f"{item.label}: identifier {item.key} matches {len(matches)} "
                             "resources on the server; refusing to guess which to update")
        return matches[0] if matches else None

    def plan(self, unit: Unit) -> Plan:
        """Compare the unit with the server: which resources are new, changed, unchanged."""
        found = self.lookup(unit.items)
        idmap = {url: f"{res['resourceType']}/{res['id']}"
                 for url, res in found.items() if res is not None}
        states: dict[str, str] = {}
        notes: list[str] = []
        for item in unit.items:
            current = found.get(item.full_url)
            if current is None:
                states[item.full_url] = "new"
                continue
            body, complete = resolved_body(item, idmap)
            keep_text = "text" in body
            same = complete and (normalized(body, keep_text=keep_text)
                                 == normalized(current, keep_text=keep_text))
            owner = self.settled.get(_settle_key(item))
            if not same and owner is not None and owner != unit.name:
                # A resource several studies share (a sponsor Organization) that the registry
                # describes differently in each: the first study of the run wins, else every
                # re-run would rewrite it back and forth and never report "unchanged".
                notes.append(f"{item.label} is shared with {owner}, pushed earlier in this "
                             "run, and this record describes it differently; kept the "
                             f"{owner} version")
                same = True
            states[item.full_url] = "unchanged" if same else "changed"
        writes = [i for i in dependency_order(unit.items) if states[i.full_url] != "unchanged"]
        return Plan(idmap, states, writes, notes)

    def settle(self, unit: Unit) -> None:
        """Mark the unit's resources as decided for the rest of the run (first study wins)."""
        for item in unit.items:
            self.settled.setdefault(_settle_key(item), unit.name)

    # ---- one unit ----------------------------------------------------------------------
    def push_unit(self, unit: Unit) -> UnitResult:
        """Plan and write one study; never raises for a server's refusal (it is reported)."""
        result = UnitResult(unit.name, "failed", unit.source)
        first_states: dict[str, str] | None = None
        plan_notes: list[str] = []
        try:
            for attempt in range(self.replans + 1):
                plan = self.plan(unit)
                if first_states is None:
                    first_states = dict(plan.states)
                    plan_notes = plan.notes
                if self.dry_run or not plan.writes:
                    break
                try:
                    self._write(plan)
                    break
                except TransportError as e:
                    if not e.may_have_committed or attempt == self.replans:
                        raise
                    result.notes.append(f"{e.message}; re-read the server before retrying")
                    self.client.sleep(self.client.retry.delay(attempt, None, self.client.rng))
        except ItemFailed as e:
            result.error, result.outcome = e.message, e.outcome
        except RemoteError as e:
            result.error, result.outcome = e.message, e.outcome
        result.notes.extend(self.client.events)
        self.client.events.clear()
        if plan_notes:
            result.notes.extend(plan_notes)
        if not result.error:
            self.settle(unit)
        assert first_states is not None or result.error
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        for state in (first_states or {}).values():
            counts[{"new": "created", "changed": "updated"}.get(state, "unchanged")] += 1
        result.resources = counts
        if result.error:
            return result
        study_new = any(first_states.get(i.full_url) == "new" for i in unit.items
                        if i.type == "ResearchStudy") if first_states else False
        if counts["created"] + counts["updated"] == 0:
            result.status = "unchanged"
        elif study_new or counts["updated"] == 0:
            result.status = "created"
        else:
            result.status = "updated"
        if self.dry_run and result.status != "unchanged":
            result.status = f"would-{result.status[:-1]}"
        return result

    def _write(self, plan: Plan) -> None:
        if self.strategy == "transaction":
            try:
                self._write_transactions(plan.writes, plan)
                return
            except RemoteError as e:
                if not _unsupported(e):
                    raise
                self.log(f"server refused transactions ({e.status}); falling back to batch")
                self.strategy = "batch"
        if self.strategy == "batch":
            try:
                self._write_batches(plan)
                return
            except RemoteError as e:
                if not _unsupported(e):
                    raise
                self.log(f"server refused batches ({e.status}); falling back to single requests")
                self.strategy = "single"
        for item in plan.writes:
            self._put_one(item, plan)

    # ---- transaction -------------------------------------------------------------------
    def _write_transactions(self, writes: list[Item], plan: Plan) -> None:
        pending = list(writes)
        while pending:
            chunk, pending = pending[:self.limit], pending[self.limit:]
            self._send_chunk(chunk, plan)

    def _send_chunk(self, chunk: list[Item], plan: Plan) -> None:
        try:
            self._transaction(chunk, plan)
        except (RemoteRejectedError, RemoteTooLargeError) as e:
            if _unsupported(e):
                raise
            if len(chunk) == 1:
                raise ItemFailed(f"{chunk[0].label}: {e.message}", outcome=e.outcome,
                                 status=e.status) from e
            # Too big, or one bad resource: split. Halves that both succeed mean the size was
            # the problem, and later chunks stay under it.
            mid = len(chunk) // 2
            self._send_chunk(chunk[:mid], plan)
            self._send_chunk(chunk[mid:], plan)
            if self.limit > len(chunk) - mid:
                self.limit = len(chunk) - mid
                self.log(f"server refused a transaction of {len(chunk)} entries; "
                         f"sending at most {self.limit} per transaction")

    def _transaction(self, chunk: list[Item], plan: Plan) -> None:
        local = {i.full_url for i in chunk}
        entries = []
        for item in chunk:
            body, _ = resolved_body(item, plan.idmap, local)
            entries.append({"fullUrl": item.full_url, "resource": body,
                            "request": {"method": "PUT", "url": item.search_url()}})
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        resp = self.client.request("POST", "", json=bundle, idempotent=False).json()
        answers = resp.get("entry") or []
        if resp.get("type") != "transaction-response" or len(answers) != len(chunk):
            raise ItemFailed("server answered the transaction with something else than a "
                             f"transaction-response of {len(chunk)} entries")
        for item, answer in zip(chunk, answers, strict=True):
            self._confirm(item, answer, plan)

    def _confirm(self, item: Item, answer: dict[str, Any], plan: Plan) -> None:
        response = answer.get("response") or {}
        status = str(response.get("status", ""))[:3]
        if not status.startswith("2"):
            outcome = response.get("outcome")
            raise ItemFailed(f"{item.label}: HTTP {status} {outcome_text(outcome)}".strip(),
                             outcome=outcome, status=int(status) if status.isdigit() else None)
        ref = _reference_of(response.get("location"), answer.get("resource"))
        if ref is None:
            raise ItemFailed(f"{item.label}: server confirmed the write without a location")
        plan.idmap[item.full_url] = ref
        if item.key:
            self.known_keys.setdefault(item.type, item.key)

    # ---- batch -------------------------------------------------------------------------
    def _write_batches(self, plan: Plan) -> None:
        remaining = list(plan.writes)
        while remaining:
            # a batch may not depend on itself: send what has every reference resolvable
            level = [i for i in remaining if resolved_body(i, plan.idmap)[1]] or remaining[:1]
            remaining = [i for i in remaining if i not in level]
            while level:
                chunk, level = level[:self.limit], level[self.limit:]
                self._send_batch(chunk, plan)

    def _send_batch(self, chunk: list[Item], plan: Plan) -> None:
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": resolved_body(i, plan.idmap)[0],
             "request": {"method": "PUT", "url": i.search_url()}} for i in chunk]}
        try:
            resp = self.client.request("POST", "", json=bundle, idempotent=False).json()
        except RemoteTooLargeError as e:
            # refused whole before any entry ran: halves are safe to send
            if len(chunk) == 1:
                raise ItemFailed(f"{chunk[0].label}: {e.message}", outcome=e.outcome,
                                 status=e.status) from e
            mid = len(chunk) // 2
            if self.limit > len(chunk) - mid:
                self.limit = len(chunk) - mid
                self.log(f"server refused a batch of {len(chunk)} entries as too large; "
                         f"sending at most {self.limit} per batch")
            self._send_batch(chunk[:mid], plan)
            self._send_batch(chunk[mid:], plan)
            return
        answers = resp.get("entry") or []
        if len(answers) != len(chunk):
            raise ItemFailed("server answered the batch with a different number of entries")
        failures = []
        for item, answer in zip(chunk, answers, strict=True):
            try:
                self._confirm(item, answer, plan)
            except ItemFailed as e:
                failures.append(e)
        if failures:
            raise failures[0]

    # ---- single ------------------------------------------------------------------------
    def _put_one(self, item: Item, plan: Plan) -> None:
        body, _ = resolved_body(item, plan.idmap)
        try:
            r = self.client.request("PUT", item.search_url(), json=body, idempotent=False)
        except (RemoteRejectedError, RemoteTooLargeError) as e:
            raise ItemFailed(f"{item.label}: {e.message}", outcome=e.outcome,
                             status=e.status) from e
        resource = r.json() if r.content else None
        ref = _reference_of(r.headers.get("Location") or r.headers.get("Content-Location"),
                            resource)
        if ref is None:
            raise ItemFailed(f"{item.label}: server confirmed the write without a location")
        plan.idmap[item.full_url] = ref
        if item.key:
            self.known_keys.setdefault(item.type, item.key)


def _matches(res: Any) -> list[dict[str, Any]] | None:
    """The matches of a complete searchset (None when paged, or not a searchset)."""
    if res is None:
        return []
    if res.get("resourceType") != "Bundle" or any(
            link.get("relation") == "next" for link in res.get("link") or []):
        return None
    matches = [e["resource"] for e in res.get("entry") or []
               if (e.get("search") or {}).get("mode", "match") == "match" and e.get("resource")]
    total = res.get("total")
    return None if isinstance(total, int) and total > len(matches) else matches


def _has_key(resource: dict[str, Any], key: tuple[str, str]) -> bool:
    return any(i.get("system") == key[0] and i.get("value") == key[1]
               for i in resource.get("identifier") or [] if isinstance(i, dict))


def _settle_key(item: Item) -> tuple[str, str, str]:
    return (item.type, *item.key) if item.key else (item.type, "", str(item.resource["id"]))


def _unsupported(e: RemoteError) -> bool:
    return e.status in (405, 501)


def _reference_of(location: str | None, resource: Any) -> str | None:
    if location:
        m = _LOCATION.search(location.split("?")[0])
        if m:
            return f"{m.group(1)}/{m.group(2)}"
    if isinstance(resource, dict) and resource.get("id") and resource.get("resourceType"):
        return f"{resource['resourceType']}/{resource['id']}"
    return None
