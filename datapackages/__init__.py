"""Frictionless data packages of protected tables, with kk/ru/en metadata, code lists, flags,
method notes, citations, XLSX and JSON-stat downloads, and a reproducible zip.

Entry point: :func:`package_table`. Pure: reads the spec, the protected CSV and code lists under
``config/codelists``; writes only the output folder and zip. No Flask, database or network.
"""

from .build import METADATA_KEYS, PackageResult, check_version, package_table, parse_semver
from .citation import biblatex, citation, csl_json
from .errors import PackageError

__all__ = [
    "METADATA_KEYS",
    "PackageError",
    "PackageResult",
    "biblatex",
    "check_version",
    "citation",
    "csl_json",
    "package_table",
    "parse_semver",
]
