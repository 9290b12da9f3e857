"""The fhirtrial FHIR server: ``create_app(config)`` (Flask), backed by a :class:`Store`."""

from .app import create_app
from .store import SQLiteStore, Store

__all__ = ["SQLiteStore", "Store", "create_app"]
