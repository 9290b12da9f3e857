"""The FHIR package cache: find, install and (lazily) read official FHIR packages.

Packages live where every FHIR tool looks for them, ``~/.fhir/packages/<name>#<version>/package/``;
``FHIRTRIAL_FHIR_PACKAGES`` (or ``--package``) points elsewhere. Installing takes an npm tarball
(a local ``.tgz``, or ``npm pack NAME@VERSION`` when npm is present). Reading is lazy and cached
per process: the validator's first call pays the load, later calls reuse it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from . import jsonbytes
from .errors import FhirtrialError

ENV_CACHE = "FHIRTRIAL_FHIR_PACKAGES"

#: The core package per FHIR version, then fall-backs holding the same conformance resources.
#: ``hl7.fhir.r4.core`` is an empty placeholder on npm; the R4 examples package carries the R4
#: StructureDefinitions, ValueSets and CodeSystems (but no JSON schema).
CORE_PACKAGES: dict[str, list[tuple[str, str]]] = {
    "R5": [("hl7.fhir.r5.core", "5.0.0")],
    "R4": [("hl7.fhir.r4.core", "4.0.1"), ("hl7.fhir.r4.examples", "4.0.1")],
}


class PackageError(FhirtrialError):
    """A FHIR package cannot be found, fetched or read."""

    issue_code = "not-found"
    http_status = 500


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The package cache: ``override``, else $FHIRTRIAL_FHIR_PACKAGES, else ~/.fhir/packages."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".fhir" / "packages"


def locate(name: str, version: str, cache: str | os.PathLike[str] | None = None) -> Path | None:
    """The ``package/`` folder of NAME#VERSION in the cache, or None when not installed."""
    folder = cache_dir(cache) / f"{name}#{version}" / "package"
    return folder if (folder / "package.json").is_file() else None


def _package_root(path: Path) -> Path | None:
    """A ``--package`` argument may name the ``package/`` folder or the one above it."""
    for candidate in (path, path / "package"):
        if (candidate / "package.json").is_file():
            return candidate
    return None


def install(source: str, cache: str | os.PathLike[str] | None = None) -> Path:
    """Install a package from a ``.tgz`` path or ``NAME@VERSION`` (via ``npm pack``); → its folder.

    The tarball is unpacked into a temporary folder beside the target and renamed into place,
    so a failed install never leaves a half-written package behind.
    """
    root = cache_dir(cache)
    path = Path(source).expanduser()
    if path.is_file():
        return _install_tarball(path, root)
    if "@" not in source.lstrip("@"):
        raise PackageError(f"{source!r} is neither a .tgz file nor NAME@VERSION")
    npm = shutil.which("npm")
    if npm is None:
        raise PackageError(
            f"npm is not installed, so {source} cannot be fetched; run `npm pack {source}` "
            "elsewhere and install the .tgz file")
    import subprocess  # here: validating never installs

    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([npm, "pack", source, "--silent"], cwd=tmp, capture_output=True,
                              text=True, check=False)
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            raise PackageError(f"npm pack {source} failed: {done.stderr.strip()[:500]}")
        return _install_tarball(tarballs[0], root)


def _install_tarball(tgz: Path, root: Path) -> Path:
    import tarfile  # here: validating never installs

    try:
        with tarfile.open(tgz, "r:gz") as tar:
            manifest_member = tar.extractfile("package/package.json")
            if manifest_member is None:
                raise PackageError(f"{tgz} has no package/package.json: not a FHIR npm package")
            manifest = json.load(manifest_member)
            name, version = manifest["name"], manifest["version"]
            target = root / f"{name}#{version}"
            root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=root, prefix=".install-"))
            try:
                # "data" refuses absolute paths, links out of the tree and device files.
                tar.extractall(tmp, filter="data")
                if (tmp / "package").is_dir():
                    # the index lands with the package (same rename): no process builds it
                    write_index(tmp / "package", build_index(tmp / "package"))
                if target.exists():
                    shutil.rmtree(target)
                os.replace(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except KeyError as exc:
        raise PackageError(f"{tgz} has no package/package.json: not a FHIR npm package") from exc
    except (tarfile.TarError, OSError, json.JSONDecodeError) as exc:
        raise PackageError(f"cannot install {tgz}: {exc}") from exc
    return target / "package"


#: The conformance resources the validator reads, by kind (files ``<kind>-*.json``).
KINDS = ("StructureDefinition", "ValueSet", "CodeSystem")
#: The index of a package folder: canonical URL → file name per kind, so that a process reads
#: the few files it needs instead of parsing every conformance resource (65 MB for R4, seconds)
#: at start-up. Written beside the package at install (or first use); its format number and
#: the folder's file names say whether it is current.
INDEX_NAME = ".fhirtrial-index.json"
INDEX_FORMAT = 1


def build_index(root: Path) -> dict[str, Any]:
    """Canonical URL → file name per kind, by reading every conformance resource once (the
    same files, in the same order, as reading them all would take: a later duplicate URL wins)."""
    names = sorted(os.listdir(root))
    kinds: dict[str, dict[str, str]] = {}
    for kind in KINDS:
        urls: dict[str, str] = {}
        for name in names:
            if not (name.startswith(kind + "-") and name.endswith(".json")):
                continue
            path = root / name
            try:
                res = jsonbytes.loads(path.read_bytes())
            except (OSError, json.JSONDecodeError) as exc:
                raise PackageError(f"{path} is not readable JSON: {exc}") from exc
            if isinstance(res, dict) and res.get("resourceType") == kind \
                    and isinstance(res.get("url"), str) and res["url"]:
                urls[res["url"]] = name
        kinds[kind] = urls
    return {"format": INDEX_FORMAT, "files": _conformance_files(names), "kinds": kinds}


def _conformance_files(names: list[str]) -> list[str]:
    prefixes = tuple(k + "-" for k in KINDS)
    return sorted(n for n in names if n.startswith(prefixes) and n.endswith(".json"))


def write_index(root: Path, index: dict[str, Any], target: Path | None = None) -> bool:
    """Write the index atomically (a temporary file renamed into place: concurrent first runs
    each write the same content and readers never see half a file); False when not writable."""
    target = target or root / INDEX_NAME
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".index-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(jsonbytes.dumps_compact(index))
            os.chmod(tmp, 0o644)  # readable by whoever reads the package
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        return False
    return True


def _fallback_index_path(root: Path) -> Path:
    """Where the index goes when the package folder is read-only: under the data directory,
    named by the folder's path."""
    import hashlib

    from .config import data_dir

    digest = hashlib.sha256(str(root).encode("utf-8")).hexdigest()[:16]
    return data_dir() / "fhir-package-index" / f"{digest}.json"


def _read_index(path: Path, names: list[str]) -> dict[str, Any] | None:
    try:
        index = jsonbytes.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT \
            or index.get("files") != names or not isinstance(index.get("kinds"), dict):
        return None  # another format, or files added or removed since: rebuild
    return index


def package_index(root: Path) -> dict[str, Any]:
    """The package's index: read when current, else built and written for the next process."""
    names = _conformance_files(os.listdir(root))
    fallback = _fallback_index_path(root)
    for path in (root / INDEX_NAME, fallback):
        index = _read_index(path, names)
        if index is not None:
            return index
    index = build_index(root)
    if not write_index(root, index):
        write_index(root, index, fallback)
    return index


class _ByUrl(Mapping[str, dict[str, Any]]):
    """Canonical URL → conformance resource of one kind, each file read on first use."""

    def __init__(self, package: FhirPackage, kind: str) -> None:
        self._package = package
        self._kind = kind
        self._read: dict[str, dict[str, Any]] = {}

    def _files(self) -> dict[str, str]:
        files: dict[str, str] = self._package.index["kinds"].get(self._kind, {})
        return files

    def __getitem__(self, url: str) -> dict[str, Any]:
        try:
            return self._read[url]
        except KeyError:
            pass
        name = self._files()[url]
        path = self._package.root / name
        try:
            res = jsonbytes.loads(path.read_bytes())
        except (OSError, json.JSONDecodeError) as exc:
            raise PackageError(f"{path} is not readable JSON: {exc}") from exc
        if not isinstance(res, dict) or res.get("url") != url:
            raise PackageError(f"{path} no longer holds {url}: the package changed after its "
                               f"index was written (delete {INDEX_NAME} beside it)")
        with self._package._lock:
            self._read[url] = res
        return res

    def __contains__(self, url: object) -> bool:
        return url in self._files()

    def __iter__(self) -> Iterator[str]:
        return iter(self._files())

    def __len__(self) -> int:
        return len(self._files())


@dataclass
class FhirPackage:
    """One unpacked package folder; its conformance resources are read on first use, one file
    at a time, through the package's index."""

    root: Path
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return _read_json(self.root / "package.json")

    @property
    def label(self) -> str:
        return f"{self.manifest.get('name')}#{self.manifest.get('version')}"

    @cached_property
    def index(self) -> dict[str, Any]:
        return package_index(self.root)

    @cached_property
    def structure_definitions(self) -> Mapping[str, dict[str, Any]]:
        """Canonical URL → StructureDefinition."""
        return _ByUrl(self, "StructureDefinition")

    @cached_property
    def value_sets(self) -> Mapping[str, dict[str, Any]]:
        return _ByUrl(self, "ValueSet")

    @cached_property
    def code_systems(self) -> Mapping[str, dict[str, Any]]:
        return _ByUrl(self, "CodeSystem")

    @cached_property
    def json_schema(self) -> dict[str, Any] | None:
        """The official FHIR JSON schema, or None (the R4 packages on npm carry none)."""
        path = self.root / "openapi" / "fhir.schema.json"
        if not path.is_file():
            return None
        return _read_json(path)


def _read_json(path: Path) -> Any:
    """A package's own JSON file, or a PackageError saying which file is damaged."""
    try:
        return jsonbytes.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise PackageError(f"{path} is not readable JSON ({exc}): install the package "
                           "again") from None


_loaded: dict[Path, FhirPackage] = {}
_loaded_lock = threading.Lock()


def load(path: str | os.PathLike[str]) -> FhirPackage:
    """The package at ``path`` (cached per process)."""
    root = _package_root(Path(path).expanduser())
    if root is None:
        inside = sorted(p.parent.name for p in Path(path).expanduser().glob("*#*/package"))
        hint = (f"; it looks like a package cache (holding {', '.join(inside)}): give the "
                f"package's own folder, or the cache as ${ENV_CACHE}") if inside else ""
        raise PackageError(f"{path} is not a FHIR package folder (no package.json){hint}")
    root = root.resolve()
    with _loaded_lock:
        if root not in _loaded:
            _loaded[root] = FhirPackage(root)
        return _loaded[root]


def core_package(fhir_version: str = "R5", package: str | os.PathLike[str] | None = None,
                 cache: str | os.PathLike[str] | None = None) -> FhirPackage | None:
    """The core package for a FHIR version: ``package`` when given, else the first installed one."""
    if package:
        return load(package)
    for name, version in CORE_PACKAGES.get(fhir_version.upper(), []):
        root = locate(name, version, cache)
        if root is not None:
            manifest = _read_json(root / "package.json")
            # the npm hl7.fhir.r4.core placeholder is installable but holds nothing useful
            if any(root.glob("StructureDefinition-*.json")) or manifest.get("name") != name:
                return load(root)
    return None


__all__ = ["CORE_PACKAGES", "ENV_CACHE", "FhirPackage", "PackageError", "build_index",
           "cache_dir", "core_package", "install", "load", "locate", "package_index"]
