"""FHIR R4 (4.0.1) output: the R5 Bundle the builders produce, written in R4's shape.

Version knowledge lives here only: the builders write R5 once from the Study model, and
:func:`to_r4` maps each R5 element to its R4 element or carries it as the official cross-version
extension, so an R4 Bundle holds every fact its R5 Bundle does.
"""

from __future__ import annotations

from .status import ctgov_status, r4_status, status_table
from .writer import to_r4, write_resource
from .xver import XVER_PREFIX, decode, encode

__all__ = ["XVER_PREFIX", "ctgov_status", "decode", "encode", "r4_status", "status_table",
           "to_r4", "write_resource"]
