"""fhirtrial: clinical-trial registry records as valid FHIR (R5 by default, R4 on request)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fhirtrial")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.1.0"

__all__ = ["__version__", "validate"]


def __getattr__(name: str) -> object:  # lazy, so `import fhirtrial` stays cheap
    if name == "validate":
        from .validate import validate

        return validate
    raise AttributeError(f"module 'fhirtrial' has no attribute {name!r}")
