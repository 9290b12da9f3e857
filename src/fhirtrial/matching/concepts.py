"""Conditions as index keys: a study's conditions and keywords, and a patient's Conditions,
reduced to the same keys so that candidate retrieval is a dictionary lookup.

Keys are ``mesh:D003027`` (a MeSH descriptor, from a coding or from a text the concept table
knows) and ``text:cluster headache`` (any other condition text, normalised). A patient's
Condition is expanded into weighted keys (:func:`patient_keys`): its own concept and texts
count fully, a synonym a little less, a broader concept (MeSH tree parent, then grandparent …)
less again. The weights are the condition part of the score (README: how scores are made).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from ..tables import data_table

MESH = "http://id.nlm.nih.gov/mesh"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"

#: the condition weights of a match, by how the study's key was reached from the patient's data
EXACT = 1.0  # the patient's own coded concept, code or text
SYNONYM = 0.9  # another name of the patient's concept (the table's term or a synonym)
TEXT_CONTAINS = 0.7  # the patient's condition text is contained in the study's condition text
BROADER = 0.75  # the parent concept; each level further up multiplies by BROADER again
KEYWORD = 0.9  # a match on a study keyword rather than a condition counts this much of it

_MESH_ID = re.compile(r"^D0*(\d{1,9})$")
_PUNCT = re.compile(r"[^\w]+")


@lru_cache(maxsize=65536)
def norm_text(text: str) -> str:
    """Lower case, accents folded, punctuation to single spaces (memoised: registry
    condition texts repeat across studies)."""
    t = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()
    return _PUNCT.sub(" ", t).strip()


def mesh_key(code: str) -> str | None:
    """``D000003920`` and ``D003920`` → ``mesh:D003920`` (the API pads ids to 9 digits)."""
    m = _MESH_ID.match(code.strip())
    if not m:
        return None
    n = m.group(1)
    return f"mesh:D{int(n):06d}"


@dataclass(frozen=True, slots=True)
class Concept:
    mesh: str  # mesh:Dnnnnnn
    term: str
    names: frozenset[str]  # normalised term + synonyms
    broader: tuple[str, ...]  # mesh keys


@dataclass(slots=True)
class Concepts:
    by_mesh: dict[str, Concept]
    by_name: dict[str, str]  # normalised name → mesh key
    by_snomed: dict[str, str]
    by_icd: dict[str, str]  # ICD-10-CM prefix (no dot) → mesh key

    def from_icd(self, code: str) -> str | None:
        c = code.replace(".", "").upper()
        for n in range(len(c), 2, -1):  # the longest prefix the table knows
            hit = self.by_icd.get(c[:n])
            if hit:
                return hit
        return None

    def ancestors(self, key: str) -> list[tuple[str, int]]:
        """(mesh key, levels up) for every broader concept, nearest first, each once."""
        out: list[tuple[str, int]] = []
        seen = {key}
        frontier = [key]
        level = 0
        while frontier:
            level += 1
            nxt = []
            for k in frontier:
                c = self.by_mesh.get(k)
                for b in c.broader if c else ():
                    if b not in seen:
                        seen.add(b)
                        out.append((b, level))
                        nxt.append(b)
            frontier = nxt
        return out


@cache
def concepts() -> Concepts:
    """The concept table (mappings/condition-concepts.json), loaded and indexed once."""
    doc = data_table("condition-concepts")
    out = Concepts({}, {}, {}, {})
    for c in doc["concepts"]:
        key = mesh_key(c["mesh"])
        assert key is not None  # the schema's pattern
        names = frozenset(norm_text(n) for n in [c["term"], *c["synonyms"]])
        out.by_mesh[key] = Concept(key, c["term"], names,
                                   tuple(k for b in c["broader"] if (k := mesh_key(b))))
        for n in names:
            out.by_name.setdefault(n, key)
        for s in c["snomed"]:
            out.by_snomed[s] = key
        for i in c["icd10cm"]:
            out.by_icd[i.replace(".", "")] = key
    return out


# ------------------------------------------------------------------ the study side

def study_keys(study: dict[str, Any]) -> dict[str, str]:
    """Index keys of a ResearchStudy → where each came from (``condition`` | ``keyword``).

    From ``condition`` (MeSH codings — the registry's derived terms — and texts) and
    ``keyword`` (texts, codings). A text the concept table names also gives its concept's key."""
    table = concepts()
    out: dict[str, str] = {}

    def add(key: str, where: str) -> None:
        if out.get(key) != "condition":
            out[key] = where

    for where, field in (("condition", "condition"), ("keyword", "keyword")):
        for cc in study.get(field) or []:
            if not isinstance(cc, dict):
                continue
            for coding in cc.get("coding") or []:
                if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
                    continue
                system, code = coding.get("system"), coding["code"]
                if system == MESH and (k := mesh_key(code)):
                    add(k, where)
                elif system == SNOMED and code in table.by_snomed:
                    add(table.by_snomed[code], where)
                elif system in (ICD10CM, ICD10) and (k := table.from_icd(code)):
                    add(k, where)
                if isinstance(coding.get("display"), str):
                    _add_text(coding["display"], where, add)
            if isinstance(cc.get("text"), str):
                _add_text(cc["text"], where, add)
    return out


def _add_text(text: str, where: str, add: Any) -> None:
    t = norm_text(text)
    if not t:
        return
    add(f"text:{t}", where)
    k = concepts().by_name.get(t)
    if k:
        add(k, where)


# ------------------------------------------------------------------ the patient side

@dataclass(slots=True)
class PatientCondition:
    """One of the patient's Conditions as the matcher reads it."""

    ref: str
    label: str  # for messages: the display or text
    keys: dict[str, tuple[float, str]]  # key → (weight, how: exact | synonym | broader …)


def patient_keys(cond: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """A patient's Condition → {index key: (weight, how it was reached)}, best weight kept."""
    table = concepts()
    code = cond.get("code")
    cc: dict[str, Any] = code if isinstance(code, dict) else {}
    out: dict[str, tuple[float, str]] = {}

    def put(key: str, weight: float, how: str) -> None:
        if key not in out or out[key][0] < weight:
            out[key] = (weight, how)

    own: set[str] = set()
    texts: list[str] = []
    for c in cc.get("coding") or []:
        if not isinstance(c, dict) or not isinstance(c.get("code"), str):
            continue
        system, code = c.get("system"), c["code"]
        k = None
        if system == MESH:
            k = mesh_key(code)
        elif system == SNOMED:
            k = table.by_snomed.get(code)
        elif system in (ICD10CM, ICD10):
            k = table.from_icd(code)
        if k:
            own.add(k)
        if isinstance(c.get("display"), str):
            texts.append(c["display"])
    if isinstance(cc.get("text"), str):
        texts.append(cc["text"])
    for t in texts:
        n = norm_text(t)
        if not n:
            continue
        put(f"text:{n}", EXACT, "exact")
        if n in table.by_name:
            own.add(table.by_name[n])
    for k in own:
        put(k, EXACT, "exact")
        concept = table.by_mesh.get(k)
        if concept:
            for name in concept.names:
                put(f"text:{name}", SYNONYM, "synonym")
        for anc, level in table.ancestors(k):
            w = round(BROADER ** level, 4)
            put(anc, w, "broader")
            anc_c = table.by_mesh[anc]
            for name in anc_c.names:
                put(f"text:{name}", w, "broader")
    return out
