"""fhirtrial: clinical-trial registry records as valid FHIR (R5 by default, R4 on request)."""


__all__ = ["__version__", "validate"]


def __getattr__(name: str) -> object:  # lazy, so `import fhirtrial` stays cheap
    if name == "__version__":
        # importlib.metadata and the lookup: 0.1 s of every command's start-up
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("fhirtrial")
        except PackageNotFoundError:  # running from a source tree without an install
            found = "0.1.0"
        globals()["__version__"] = found
        return found
    if name == "validate":
        from .validate import validate

        return validate
    raise AttributeError(f"module 'fhirtrial' has no attribute {name!r}")
