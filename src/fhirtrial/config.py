"""Settings every part shares. Nothing has to be configured first: the one data directory
defaults to ``./data`` (the SQLite store, the registry cache and push journals live under it)
and ``FHIRTRIAL_DATA_DIR`` moves it."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """``$FHIRTRIAL_DATA_DIR`` or ``./data`` (created by whoever writes into it)."""
    return Path(os.environ.get("FHIRTRIAL_DATA_DIR") or "data")
