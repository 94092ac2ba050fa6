"""Frictionless data packages of protected tables, with kk/ru/en metadata, code lists, flags,
method notes, citations, downloads (one plug-in per format: :mod:`datapackages.formats`), and a
reproducible zip.

Entry point: :func:`package_table`. Pure: reads the spec, the protected CSV and code lists under
``config/codelists``; writes only the output folder and zip. No Flask, database or network.
"""

from disclosure.spec import parse_semver
from disclosure.spec_schema import METADATA_KEYS

from .build import PackageResult, check_metadata, check_version, method_block, package_table
from .citation import biblatex, citation, csl_json
from .errors import PackageError
from .formats import DownloadFormat, DownloadTable, formats, register_format, unregister_format

__all__ = [
    "METADATA_KEYS",
    "PackageError",
    "PackageResult",
    "biblatex",
    "check_metadata",
    "check_version",
    "DownloadFormat",
    "DownloadTable",
    "formats",
    "method_block",
    "register_format",
    "unregister_format",
    "citation",
    "csl_json",
    "package_table",
    "parse_semver",
]
