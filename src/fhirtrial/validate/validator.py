"""The orchestrator: runs the layers in order over one resource or Bundle → findings.

Layers: ``json`` (well-formed, resourceType), ``structure`` (fhir.resources models + strict
primitives), ``schema`` (official JSON schema), ``terminology`` (bindings), ``invariants``
(core FHIRPath constraints), ``bundle`` (fullUrls, references, requests). Layers that need the
core package are skipped when it is absent (``Validator.unavailable`` says which and why);
everything else still runs. One Validator per (FHIR version, package) is kept per process.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .. import jsonbytes
from ..errors import describe_json_error
from ..finding import Finding
from ..packages import FhirPackage, core_package
from .bundle import ReferenceIndex, check_bundle, check_references
from .definitions import Definitions, Node
from .invariants import Invariants, empty_elements, unreferenced_contained
from .modelproof import ModelProof
from .narrative import check_narrative
from .structure import PrimitiveChecker, check_model
from .terminology import Terminology, check_nodes

if TYPE_CHECKING:
    from .schema import SchemaLayer

LAYERS = ("json", "structure", "schema", "terminology", "invariants", "bundle")
VERSIONS = ("R5", "R4")
SEVERITY_RANK = {"information": 0, "warning": 1, "error": 2, "fatal": 3}


class Validator:
    """Layered validation for one FHIR version, with its package's artefacts loaded lazily."""

    def __init__(self, fhir_version: str = "R5", package: FhirPackage | None = None) -> None:
        self.fhir_version = fhir_version.upper()
        if self.fhir_version not in VERSIONS:
            raise ValueError(f"unknown FHIR version {fhir_version!r}; use R5 or R4")
        self.package = package

    @cached_property
    def definitions(self) -> Definitions | None:
        return Definitions(self.package) if self.package else None

    @cached_property
    def schema(self) -> SchemaLayer | None:
        if self.package is None:
            return None
        raw = self.package.json_schema
        if not raw:
            return None
        from .schema import SchemaLayer  # R5: R4 packages carry no schema

        return SchemaLayer(raw)

    @cached_property
    def model_proof(self) -> ModelProof | None:
        """R4's stand-in for the schema proof: the R4B models' element tables (R5 has the
        JSON schema)."""
        return ModelProof.load() if self.fhir_version == "R4" else None

    @cached_property
    def terminology(self) -> Terminology:
        return Terminology(self.package, self.fhir_version)

    @cached_property
    def invariants(self) -> Invariants:
        return Invariants(self.fhir_version)

    @cached_property
    def walker(self) -> Definitions:
        """What the walk pairs values with: the package's StructureDefinitions, else the
        fhir.resources models (types, cardinality, choices, Reference targets)."""
        if self.definitions is not None:
            return self.definitions
        from .models import ModelDefinitions  # without a package only

        return ModelDefinitions(self.fhir_version)

    @cached_property
    def primitives(self) -> PrimitiveChecker:
        return PrimitiveChecker(self.walker)

    @property
    def unavailable(self) -> dict[str, str]:
        """Layer → why it does not run (or runs reduced) with this set-up."""
        out: dict[str, str] = {}
        if self.package is None:
            why = (f"no FHIR {self.fhir_version} core package installed "
                   "(run `fhirtrial packages install`)")
            out["schema"] = why + "; the official JSON schema is not run"
            out["invariants"] = why + ("; only ele-1 (empty elements) is checked, not the "
                                       "FHIRPath constraints")
            out["terminology"] = why + ("; required bindings are checked against the "
                                        "project's own code tables only")
        elif self.package.json_schema is None:
            out["schema"] = f"{self.package.label} carries no JSON schema"
        return out

    def not_checked(self, layers: Sequence[str] = LAYERS) -> str | None:
        """One sentence naming what this set-up cannot check among ``layers`` (None: all runs).

        Said where the user looks (the CLI summary line, an OperationOutcome issue), so that
        "no issues" without a package never reads as "fully validated"."""
        gaps = [layer for layer in ("schema", "invariants", "terminology")
                if layer in layers and layer in self.unavailable]
        if not gaps:
            return None
        if self.package is not None:  # a package without a JSON schema
            return f"not checked: the official JSON schema ({self.unavailable['schema']})"
        what = {"schema": "the official JSON schema",
                "invariants": "the FHIRPath invariants (only ele-1 runs)",
                "terminology": "value sets beyond the project's own required-binding tables"}
        return (f"not checked without the FHIR {self.fhir_version} core package: "
                + ", ".join(what[g] for g in gaps)
                + " (install it: `fhirtrial packages install "
                + ("hl7.fhir.r5.core@5.0.0" if self.fhir_version == "R5"
                   else "hl7.fhir.r4.examples@4.0.1") + "`)")

    def coverage(self, layers: Sequence[str] = LAYERS) -> list[Finding]:
        """The :meth:`not_checked` sentence as an information finding ([] when all runs)."""
        gap = self.not_checked(layers)
        return [Finding("information", "informational", "Validation incomplete: " + gap)] \
            if gap else []

    def findings(self, resource: Any, layers: Sequence[str] = LAYERS,
                 expr: str | None = None) -> list[Finding]:
        """All findings for one resource (dict, JSON text/bytes, or fhir.resources model)."""
        try:
            return self._findings(resource, layers, expr)
        except (TypeError, AttributeError, KeyError, IndexError, ValueError,
                RecursionError) as e:
            # The layers expect the shapes the structure layer checks; input malformed in a way
            # one of them did not foresee must still end as a finding (the server validates
            # every write with this: an exception there would be a 500), never as "valid".
            return [Finding("error", "structure",
                            f"The resource is malformed in a way the validator could not "
                            f"analyse ({type(e).__name__}: {str(e)[:200]})",
                            expr or "$this")]

    def _findings(self, resource: Any, layers: Sequence[str] = LAYERS,
                  expr: str | None = None) -> list[Finding]:
        data, early = _as_dict(resource)
        if early:
            return early
        rtype = data.get("resourceType")
        if not isinstance(rtype, str) or not rtype:
            return [Finding("error", "structure",
                            "The JSON object has no resourceType: not a FHIR resource",
                            expr or "$this")]
        expr = expr or rtype
        out: list[Finding] = []
        # The compiled schema check proves most resources valid in a fraction of the time the
        # fhir.resources models take; where it does, the models are not asked (they add
        # nothing there: tests/test_validate_fast.py compares findings with and without this
        # over the mutation corpus). R4 packages carry no schema: there the models' own element
        # tables prove it (validate/modelproof.py, tests/test_validate_modelproof.py).
        schema_proved = self.schema is not None and bool({"structure", "schema"} & set(layers)) \
            and self.schema.proves_valid(data, expr)
        if "structure" in layers and not schema_proved and not (
                self.schema is None and self.model_proof is not None
                and self.model_proof.proves(data)):
            out.extend(check_model(data, self.fhir_version, expr))
        need_walk = {"structure", "terminology", "invariants", "bundle"} & set(layers)
        nodes: list[Node] = []
        if need_walk:
            # one pass: the nodes the later layers read (none for most primitive values) and
            # the required-element and primitive findings (Definitions.scan)
            scan = self.walker.scan(data, expr, self.primitives if "structure" in layers
                                    else None)
            nodes = scan.nodes
        if "structure" in layers:
            out.extend(scan.required)
            out.extend(scan.primitive)
            for node in nodes:
                if node.type == "xhtml":
                    out.extend(check_narrative(node.value, node.expr))
        if "schema" in layers and self.schema is not None and not schema_proved:
            out.extend(self.schema.check(data, expr))
        if "terminology" in layers:
            if self.definitions is not None:
                out.extend(check_nodes(self.terminology, nodes))
            else:
                out.extend(self._fallback_terminology(data, expr))
        if "invariants" in layers:
            out.extend(empty_elements(data, expr))
            if self.definitions is not None:
                out.extend(self._invariants(data, nodes, expr))
        if "bundle" in layers:
            is_bundle = rtype == "Bundle"
            if is_bundle:
                out.extend(check_bundle(data, expr))
            index = ReferenceIndex(data if is_bundle else None)
            out.extend(check_references(nodes, index, is_bundle))
        return _dedupe(out)

    def _invariants(self, data: dict[str, Any], nodes: list[Node], expr: str) -> list[Finding]:
        assert self.definitions is not None
        out: list[Finding] = []
        roots = [(data, expr)] + [(n.value, n.expr) for n in nodes
                                  if isinstance(n.value, dict) and "resourceType" in n.value]
        for res, where in roots:
            info = self.definitions.type_info(res.get("resourceType", ""))
            if info is None:
                continue
            out.extend(self.invariants.check_root(info.root.constraints, res, where, data))
            if info.kind == "resource":
                out.extend(unreferenced_contained(res, where))
        node_checks = [n for n in nodes if n.elem.constraints]
        out.extend(self.invariants.check(node_checks, data))
        return out

    def _fallback_terminology(self, data: dict[str, Any], expr: str) -> list[Finding]:
        """Required bindings from the project's own tables, by element path (no package)."""
        bindings = self.terminology.fallback_bindings()
        out: list[Finding] = []

        def visit(value: Any, path: str, here: str) -> None:
            if isinstance(value, dict):
                if "resourceType" in value and path != value["resourceType"]:
                    path = value["resourceType"]
                for key, item in value.items():
                    p = f"{path}.{key}"
                    items = item if isinstance(item, list) else [item]
                    for i, x in enumerate(items):
                        at = f"{here}.{key}[{i}]" if isinstance(item, list) else f"{here}.{key}"
                        if p in bindings and isinstance(x, str):
                            strength, url = bindings[p]
                            exp = self.terminology.expand(url)
                            if exp is not None and exp.contains(None, x) is False:
                                out.append(Finding(
                                    "error" if strength == "required" else "warning",
                                    "code-invalid",
                                    f"The value '{x}' is not in the {strength} value set "
                                    f"{url.rsplit('/', 1)[-1]}", at))
                        visit(x, p, at)

        visit(data, data["resourceType"], expr)
        return out


def _as_dict(resource: Any) -> tuple[dict[str, Any], list[Finding]]:
    if isinstance(resource, dict):
        return resource, []
    if isinstance(resource, bytes | str):
        try:
            data = jsonbytes.loads(resource)  # json.loads' value or error, in a fraction
        except json.JSONDecodeError as exc:
            return {}, [Finding("fatal", "structure",
                                f"Not well-formed JSON: {describe_json_error(exc)}", None)]
        except UnicodeDecodeError as exc:
            return {}, [Finding("fatal", "structure", f"Not UTF-8 text: {exc.reason}", None)]
        if not isinstance(data, dict):
            return {}, [Finding("fatal", "structure",
                                f"The JSON is a {type(data).__name__}, not a resource object",
                                None)]
        return data, []
    dump = getattr(resource, "model_dump_json", None)
    if dump is not None:
        return json.loads(dump(by_alias=True, exclude_none=True)), []
    raise TypeError(f"cannot validate a {type(resource).__name__}: give a dict, JSON or a model")


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    """Drop repeats: the same problem seen by two layers at the same place is said once."""
    out: list[Finding] = []
    seen: set[tuple[str | None, str]] = set()
    exact: set[tuple[str, str, str | None, str]] = set()
    for f in findings:
        key = (f.location, f.code)
        if (f.severity, f.code, f.location, f.message) in exact:
            continue
        if key in seen and f.severity in ("error", "fatal") and f.code in (
                "structure", "required", "value"):
            continue
        seen.add(key)
        exact.add((f.severity, f.code, f.location, f.message))
        out.append(f)
    return out


_validators: dict[tuple[str, str | None, str | None], Validator] = {}
_validators_lock = threading.Lock()


def get_validator(fhir_version: str = "R5", package: str | os.PathLike[str] | None = None,
                  cache: str | os.PathLike[str] | None = None) -> Validator:
    """The per-process Validator for a FHIR version and package location."""
    key = (fhir_version.upper(), str(package) if package else None,
           str(cache) if cache else os.environ.get("FHIRTRIAL_FHIR_PACKAGES"))
    with _validators_lock:
        v = _validators.get(key)
        if v is None:
            v = Validator(fhir_version, core_package(fhir_version, package, cache))
            _validators[key] = v
        return v
