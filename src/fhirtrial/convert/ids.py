"""Deterministic resource ids, fullUrls and business identifiers.

Every id derives from the NCT id and the resource's role (never a clock or uuid4), so the same
record always gives the same bytes and a re-push updates instead of duplicating:

- logical ids are readable and FHIR-valid (``[A-Za-z0-9.-]{1,64}``): ``NCT06534528``,
  ``NCT06534528-arm-3f2a9c1e``; the hash part is of the role's natural key (arm label, outcome
  measure, site address), so reordering the registry's lists does not renumber resources;
- Organizations are keyed on the organisation's name alone, so one sponsor is one resource
  across studies; everything else is scoped to its study;
- ``fullUrl`` is ``urn:uuid:`` + a name-based UUID (RFC 4122 v5) of ``Type/id``, and every
  reference inside a Bundle uses it, so servers rewrite references on transactions;
- each resource also carries a business identifier (``IDENTIFIER_SYSTEM|Type/id``) used for
  conditional updates (``PUT PlanDefinition?identifier=…``); the ResearchStudy is keyed on its
  NCT id in ``http://clinicaltrials.gov``.
"""

from __future__ import annotations

import functools
import hashlib
import uuid

CTGOV_SYSTEM = "http://clinicaltrials.gov"
#: system of fhirtrial's own business identifiers; values are "Type/id"
IDENTIFIER_SYSTEM = "urn:ietf:rfc:3986"
_NAMESPACE = uuid.UUID("6f1e4d52-8c7b-5c1e-9a57-0e1f7a2b9c3d")
_sha1 = hashlib.sha1




def key_hash(*parts: str | None, length: int = 8) -> str:
    """A short stable hash of a natural key (case- and whitespace-insensitive)."""
    # " ".join(p.split()) is _SPACES.sub(" ", p).strip(): both take str.isspace's whitespace
    # (a list, not a generator, and one part without a join: a study hashes ~30 keys)
    if len(parts) == 1:
        p = parts[0]
        norm = " ".join(p.split()).casefold() if p else ""
    else:
        norm = "\x1f".join([" ".join(p.split()).casefold() if p else "" for p in parts])
    return _sha1(norm.encode("utf-8")).hexdigest()[:length]


def study_id(nct_id: str) -> str:
    return nct_id


def scoped_id(nct_id: str, role: str, *key: str | None) -> str:
    """``NCT…-role`` or ``NCT…-role-<hash of key>`` for roles with many members."""
    return f"{nct_id}-{role}-{key_hash(*key)}" if key else f"{nct_id}-{role}"


def organization_id(name: str) -> str:
    return f"org-{key_hash(name, length=12)}"


_NAMESPACE_BYTES = _NAMESPACE.bytes


@functools.lru_cache(maxsize=4096)  # a study refers to each of its resources many times
def full_url(resource_type: str, resource_id: str) -> str:
    """``urn:uuid:`` + ``uuid.uuid5(_NAMESPACE, "Type/id")``, spelt without building a UUID
    object (a conversion makes tens of these per study)."""
    h = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{resource_type}/{resource_id}".encode()
                               ).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50  # version 5
    h[8] = (h[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = h.hex()
    return f"urn:uuid:{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def business_identifier(resource_type: str, resource_id: str) -> dict[str, str]:
    """The identifier a conditional update keys on (``urn:fhirtrial:Type/id`` as a URI)."""
    return {"system": IDENTIFIER_SYSTEM, "value": f"urn:fhirtrial:{resource_type}/{resource_id}"}
