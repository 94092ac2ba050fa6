"""The protection report, typed: one dataclass per disclosure method, one JSON form.

Every method's report subclasses :class:`ProtectionReport`. ``to_dict()`` gives the JSON form
(``schema_version`` and ``method`` first); :func:`report_from_dict` reads it back into the
method's type and raises :class:`ReportError` naming the first missing or mistyped key, so a
renamed key fails loudly instead of silently dropping text from published metadata.

The report never holds the value of a suppressed cell's neighbours or any raw count beyond what
its fields document.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import R_, AshyqError

#: Version of the report's JSON form; bump when a field is renamed or removed.
REPORT_SCHEMA_VERSION = 1


class ReportError(AshyqError):
    """A report that does not fit its method's type (names the key)."""


@dataclass
class ProtectionReport:
    """What protection did to one table; subclassed per method (``method`` names it)."""

    method: ClassVar[str] = ""

    cells: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": REPORT_SCHEMA_VERSION, "method": self.method}
        out.update(_plain(self))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProtectionReport:
        return _build(cls, data, "report")


def report_from_dict(data: Any) -> ProtectionReport:
    """The typed report of a JSON report (the method named in it); raises :class:`ReportError`."""
    if isinstance(data, ProtectionReport):
        return data
    if not isinstance(data, dict):
        raise ReportError(R_("the protection report must be a JSON object"), source="report")
    version = data.get("schema_version")
    if version != REPORT_SCHEMA_VERSION:
        raise ReportError(R_("schema_version %(version)s is not the supported %(report_schema_version)s; protect the table again"), source="report", version=repr(str(version)[:20]), report_schema_version=REPORT_SCHEMA_VERSION)
    from .methods import get_method

    method = get_method(str(data.get("method")), source="report.method")
    return method.report_type.from_dict(data)


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


_SCALARS = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}


def _build(tp: Any, value: Any, path: str) -> Any:
    """Value of type ``tp`` from JSON ``value``; raises ReportError at ``path``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _build(a, value, path)
            except ReportError as e:
                errors.append(e)
        raise errors[0] if errors else ReportError(R_("%(path)s: has no value"), source="report", path=path)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ReportError(R_("%(path)s: must be an object"), source="report", path=path)
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if not f.init:
                continue
            if f.name not in value:
                if (f.default is dataclasses.MISSING
                        and f.default_factory is dataclasses.MISSING):
                    raise ReportError(R_("%(path)s.%(name)s: is missing"), source="report", path=path, name=f.name)
                continue
            kwargs[f.name] = _build(hints[f.name], value[f.name], f"{path}.{f.name}")
        return tp(**kwargs)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ReportError(R_("%(path)s: must be a list"), source="report", path=path)
        (arg, *_) = typing.get_args(tp) or (Any,)
        return [_build(arg, v, f"{path}.{i}") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ReportError(R_("%(path)s: must be an object"), source="report", path=path)
        _, arg = typing.get_args(tp) or (str, Any)
        return {k: _build(arg, v, f"{path}.{k}") for k, v in value.items()}
    if tp in _SCALARS:
        ok = isinstance(value, _SCALARS[tp]) and (tp is bool or not isinstance(value, bool))
        if not ok:
            raise ReportError(R_("%(path)s: must be %(name)s"), source="report", path=path, name=tp.__name__)
        return value
    if tp in (dict, list):
        if not isinstance(value, tp):
            raise ReportError(R_("%(path)s: must be %(name)s"), source="report", path=path, name=tp.__name__)
        return value
    return value


__all__ = ["REPORT_SCHEMA_VERSION", "ProtectionReport", "ReportError", "report_from_dict"]
