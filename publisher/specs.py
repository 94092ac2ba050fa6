"""Reading a table spec file (YAML or JSON) into a ``TableSpec``.

The one schema is :mod:`disclosure.spec_schema`; this module only reads files. Errors come out
as :class:`SpecValidationError` with the file, the key path and the reason.
"""

from __future__ import annotations

from pathlib import Path

from disclosure.spec import TableSpec
from disclosure.spec_schema import (
    MAX_SPEC_BYTES,
    SpecValidationError,
    parse_spec_text,
    spec_from_mapping,
)


def read_spec_file(path: str | Path) -> dict:
    """The mapping of a spec file (refused: missing, too large, not YAML/JSON, not a mapping)."""
    p = Path(path)
    src = str(path)
    if not p.is_file():
        raise SpecValidationError(src, [("(file)", "no such file")])
    if p.stat().st_size > MAX_SPEC_BYTES:
        raise SpecValidationError(src, [("(file)", f"the spec is larger than "
                                                   f"{MAX_SPEC_BYTES // 2**20} MiB")])
    return parse_spec_text(p.read_bytes(), name=p.name if p.suffix else src)


def load_spec(path: str | Path) -> TableSpec:
    return spec_from_mapping(read_spec_file(path), source=str(path))


__all__ = ["SpecValidationError", "load_spec", "read_spec_file", "spec_from_mapping"]
