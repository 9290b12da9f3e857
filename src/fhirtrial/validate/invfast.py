"""The invariant layer's fast path: core constraints that visibly hold, without FHIRPath.

Most core constraints are implications whose premise is false for almost every instance
(``type = 'document' implies …`` on a transaction Bundle) or tests of elements that are absent
(``contained.meta.security.empty()`` on a resource without ``contained``). Evaluating them
with fhirpathpy costs a parse-tree walk each; here a plain look at the JSON says they *hold*.
Each predicate answers True only when the constraint certainly holds and False when it cannot
tell, and then the engine evaluates the constraint as before, so findings are unchanged.
Keyed by the constraint's exact expression (not its key), so a version whose constraint reads
differently simply has no shortcut. ``tests/test_validate_fast.py`` checks every shortcut
against the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Holds = Callable[[dict[str, Any]], bool]


def _type_not(*types: str) -> Holds:
    """``type = 'x' implies …`` / ``type in (…) implies …``: holds when type is another string."""
    return lambda v: isinstance(v.get("type"), str) and v["type"] not in types


def _type_is(*types: str) -> Holds:
    """``type = 'x' or … or <rest>``: holds when type is one of them."""
    return lambda v: isinstance(v.get("type"), str) and v["type"] in types


def _absent(key: str) -> Holds:
    return lambda v: key not in v


def _present(v: Any) -> bool:
    """Certainly exists() in FHIRPath: a non-empty object, non-empty string or number."""
    return (isinstance(v, dict) and bool(v)) or (isinstance(v, str) and v != "") \
        or (isinstance(v, int | float) and not isinstance(v, bool))


def _no_entry_search(v: dict[str, Any]) -> bool:
    entries = v.get("entry")
    if "entry" not in v:
        return True
    return isinstance(entries, list) and all(isinstance(e, dict) and "search" not in e
                                             for e in entries)


def _narrative_div(v: dict[str, Any]) -> bool:
    text = v.get("text")
    return isinstance(text, dict) and isinstance(text.get("div"), str) and text["div"] != ""


def _identifier_or_name(v: dict[str, Any]) -> bool:
    ids = v.get("identifier")
    return (isinstance(ids, list) and any(isinstance(i, dict) and i for i in ids)) \
        or (isinstance(v.get("name"), str) and v["name"] != "")


def _entry_has_content(v: dict[str, Any]) -> bool:
    return any(_present(v.get(k)) for k in ("resource", "request", "response"))


def _full_url_not_history(v: dict[str, Any]) -> bool:
    return "fullUrl" not in v or (isinstance(v["fullUrl"], str)
                                  and "/_history/" not in v["fullUrl"])


def _either(*looks: Holds) -> Holds:
    return lambda v: any(look(v) for look in looks)


def _entries_all(test: Callable[[dict[str, Any]], bool]) -> Holds:
    """``entry.all(…)``: holds when there is no entry or every entry passes ``test``."""
    def look(v: dict[str, Any]) -> bool:
        if "entry" not in v:
            return True
        entries = v["entry"]
        return isinstance(entries, list) and all(isinstance(e, dict) and test(e)
                                                 for e in entries)
    return look


def _collection_entry(e: dict[str, Any]) -> bool:
    return isinstance(e.get("resource"), dict) and bool(e["resource"]) \
        and "request" not in e and "response" not in e


def _at_most_one_definition(v: dict[str, Any]) -> bool:
    keys = [k for k in ("definitionReference", "definitionCanonical",
                        "definitionCodeableConcept", "definitionId",
                        "definitionByTypeAndValue", "definitionByCombination") if k in v]
    return len(keys) <= 1 and all(not isinstance(v[k], list) for k in keys)


def _at_most_one_display_name(v: dict[str, Any]) -> bool:
    if "name" not in v:
        return True
    names = v["name"]
    if not isinstance(names, list) or not all(
            isinstance(n, dict) and isinstance(n.get("display", False), bool) for n in names):
        return False
    return sum(1 for n in names if n.get("display") is True) <= 1


def _exists(v: Any) -> bool:
    """Certainly exists() for an element's JSON value (a boolean too, false included)."""
    return isinstance(v, bool) or _present(v) or (
        isinstance(v, list) and bool(v) and all(_present(x) or isinstance(x, bool) for x in v))


def _extension_xor_value(v: dict[str, Any]) -> bool:
    """ext-1 ``extension.exists() != value.exists()``: one of them, visibly, and not both.
    Primitive extensions (``_valueX``) and anything unclear are left to the engine."""
    if not isinstance(v.get("url"), str):
        return False  # not an Extension's shape
    value_key = None
    for k in v:
        if k == "url" or k == "extension" or k == "id":
            continue
        # only one value[x] (valueString, …) beside them
        if value_key is not None or not (k.startswith("value") and k[5:6].isupper()):
            return False
        value_key = k
    has_ext = "extension" in v
    if has_ext and not _exists(v["extension"]):
        return False
    if value_key is not None:
        x = v[value_key]
        if not ((type(x) is str and x != "") or _exists(x)):
            return False
    return has_ext != (value_key is not None)


def _entries_without(key: str, *types: str) -> Holds:
    """``entry.all(<key>.exists() = (%resource.type = … or …))`` on the Bundle itself:
    holds when its type is none of ``types`` and no entry has ``key``, or when its type is
    one of them and every entry visibly has it."""
    def look(v: dict[str, Any]) -> bool:
        kind = v.get("type")
        if v.get("resourceType") != "Bundle" or not isinstance(kind, str):
            return False
        entries = v.get("entry", [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            return False
        if kind in types:
            return all(_present(e.get(key)) for e in entries)
        return all(key not in e for e in entries)
    return look


#: constraint expression → a look that says it holds (True) or cannot tell (False)
HOLDS: dict[str, Holds] = {
    "total.empty() or (type = 'searchset') or (type = 'history')": _absent("total"),
    "(type = 'searchset') or entry.search.empty()": _no_entry_search,
    "type = 'document' implies (identifier.system.exists() and identifier.value.exists())":
        _type_not("document"),
    "type = 'document' implies (timestamp.hasValue())": _type_not("document"),
    "type = 'document' implies entry.first().resource.is(Composition)": _type_not("document"),
    "type = 'message' implies entry.first().resource.is(MessageHeader)": _type_not("message"),
    "type = 'subscription-notification' implies entry.first().resource.is("
    "SubscriptionStatus)": _type_not("subscription-notification"),
    "type = 'history' implies entry.request.method != 'PATCH'": _type_not("history"),
    "type='transaction' or type='transaction-response' or type='batch' or "
    "type='batch-response' or entry.all(fullUrl.exists() or request.method='POST')":
        _either(_type_is("transaction", "transaction-response", "batch", "batch-response"),
                _entries_all(lambda e: isinstance(e.get("fullUrl"), str)
                             and e["fullUrl"] != "")),
    "type = 'searchset' implies link.where(relation = 'self' and url.exists()).exists()":
        _type_not("searchset"),
    "type in ('document' | 'message' | 'searchset' | 'collection') implies entry.all("
    "resource.exists() and request.empty() and response.empty())":
        _either(_type_not("document", "message", "searchset", "collection"),
                _entries_all(_collection_entry)),
    "type = 'history' implies entry.all(request.exists() and response.exists() and ("
    "(request.method in ('POST' | 'PATCH' | 'PUT')) = resource.exists()))":
        _type_not("history"),
    "type in ('transaction' | 'batch') implies entry.all(request.method.exists() and ("
    "(request.method in ('POST' | 'PATCH' | 'PUT')) = resource.exists()))":
        _type_not("transaction", "batch"),
    "type in ('transaction-response' | 'batch-response') implies entry.all("
    "response.exists())": _type_not("transaction-response", "batch-response"),
    "name.exists() implies name.matches('^[A-Z]([A-Za-z0-9_]){1,254}$')": _absent("name"),
    "contained.contained.empty()": _absent("contained"),
    "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()":
        _absent("contained"),
    "contained.meta.security.empty()": _absent("contained"),
    "text.`div`.exists()": _narrative_div,
    "(identifier.count() + name.count()) > 0": _identifier_or_name,
    "resource.exists() or request.exists() or response.exists()": _entry_has_content,
    "fullUrl.exists() implies fullUrl.contains('/_history/').not()": _full_url_not_history,
    "issues.exists() implies (issues.issue.severity = 'information' or issues.issue.severity "
    "= 'warning')": _absent("issues"),
    "type = 'document' implies issues.empty()": _either(_type_not("document"),
                                                         _absent("issues")),
    "(definitionReference.count() + definitionCanonical.count() + "
    "definitionCodeableConcept.count() + definitionId.count() + "
    "definitionByTypeAndValue.count() + definitionByCombination.count())  < 2":
        _at_most_one_definition,
    "name.where(display=true).count() <= 1": _at_most_one_display_name,
    "entry.search.empty() or (type = 'searchset')": _no_entry_search,
    "extension.exists() != value.exists()": _extension_xor_value,
    "entry.all(request.exists() = (%resource.type = 'batch' or %resource.type = 'transaction' "
    "or %resource.type = 'history'))": _entries_without("request", "batch", "transaction",
                                                         "history"),
    "entry.all(response.exists() = (%resource.type = 'batch-response' or %resource.type = "
    "'transaction-response' or %resource.type = 'history'))": _entries_without(
        "response", "batch-response", "transaction-response", "history"),
    "fullUrl.contains('/_history/').not()": lambda v: "fullUrl" not in v or (
        isinstance(v["fullUrl"], str) and "/_history/" not in v["fullUrl"]),
}


_R4_NAME = re.compile(r"[A-Z]([A-Za-z0-9_]){0,254}")


def _name_matches(v: dict[str, Any]) -> bool:
    """R4's pdf-0/adf-0 (``name.matches(…)``): holds with no name or one that matches whole
    (matches() holds on a full match whichever way the engine anchors)."""
    return "name" not in v or (isinstance(v["name"], str) and _R4_NAME.fullmatch(v["name"])
                               is not None)


HOLDS["name.matches('[A-Z]([A-Za-z0-9_]){0,254}')"] = _name_matches
HOLDS["member.empty() or (actual = true)"] = lambda v: "member" not in v or v.get("actual") is True


def _absent_or_present(absent: str, present: str) -> Holds:
    """``<absent>.empty() or <present>.exists()``: holds when the first is not there or the
    second visibly is."""
    return lambda v: absent not in v or _present(v.get(present))


def _absent_or_not_negative(key: str) -> Holds:
    """``<key>.exists() implies <key> >= 0``: holds when it is not there or a number ≥ 0."""
    return lambda v: key not in v or (type(v[key]) in (int, float) and v[key] >= 0)


# Timing.repeat (tim-*): the engine would be imported (a tenth of a second) for the one
# Timing of a Bundle's dosage
HOLDS.update({
    "duration.empty() or durationUnit.exists()": _absent_or_present("duration", "durationUnit"),
    "period.empty() or periodUnit.exists()": _absent_or_present("period", "periodUnit"),
    "duration.exists() implies duration >= 0": _absent_or_not_negative("duration"),
    "period.exists() implies period >= 0": _absent_or_not_negative("period"),
    "periodMax.empty() or period.exists()": _absent_or_present("periodMax", "period"),
    "durationMax.empty() or duration.exists()": _absent_or_present("durationMax", "duration"),
    "countMax.empty() or count.exists()": _absent_or_present("countMax", "count"),
    "offset.empty() or (when.exists() and ((when in ('C' | 'CM' | 'CD' | 'CV')).not()))":
        _absent("offset"),
    "timeOfDay.empty() or when.empty()": lambda v: "timeOfDay" not in v or "when" not in v,
})


def certainly_holds(expression: str, value: dict[str, Any]) -> bool:
    """True when the constraint visibly holds on this JSON object (no engine needed)."""
    look = HOLDS.get(expression)
    return look is not None and look(value)
