"""The one spec schema: a YAML/JSON mapping → a checked :class:`~disclosure.spec.TableSpec`.

Structure (id, version, title, dimensions, measure), the ``disclosure`` section (validated by the
schema of the method it asks for, from the registry in :mod:`disclosure.methods`) and the release
metadata (keys in :data:`METADATA_KEYS`) are checked here, with the limits and languages of
:mod:`disclosure.spec`. Errors come out as :class:`SpecValidationError`: the source, the key path
(``disclosure.min_frequency``) and the reason, one line.

Hostile text is refused before it is built in full: more than :data:`MAX_SPEC_BYTES`, YAML
aliases that expand to more than :data:`MAX_NODES` values (the "billion laughs"), or nesting
deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from marshmallow import (
    EXCLUDE,
    INCLUDE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from .errors import AshyqError
from .spec import (
    LANGUAGES,
    SEMVER,
    TEXT_LONG,
    TEXT_SHORT,
    Dimension,
    Hierarchy,
    SpecError,
    TableSpec,
)

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
CODE = re.compile(r"^[A-Za-z0-9_.\-+]{1,64}$")
MAX_SPEC_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 40
MAX_NODES = 200_000
MAX_DIMENSIONS = 12

#: Top-level spec keys besides the structure: release metadata (all optional).
METADATA_KEYS = {
    "languages": "list: kk, ru, en in order, the default language first (default kk, ru, en)",
    "allow_missing_languages": "true / false / list of languages whose text may be absent",
    "license": "Open Definition id (default CC-BY-4.0) or {name, path, title}",
    "keywords": "{kk: [..], ru: [..], en: [..]}, or a plain list of language-neutral tags",
    "contributors": "list of {title (a name, or {kk,ru,en}), role, email, path, organization}",
    "sources": "list of {title ({kk,ru,en}; a plain string is the default language), path, "
               "email, version}",
    "homepage": "http(s) URL (default: landing_url)",
    "publisher": "{name: {kk,ru,en}, path: URL, email}",
    "contact_point": "{name (a name, or {kk,ru,en}), email}: the contact point (default: the "
                     "publisher's email)",
    "doi": "DOI of this version (10.xxxx/...): becomes the package id and the citation identifier",
    "created": "RFC 3339 time of the release (used when package_table gets no `created`)",
    "reference_period": "{kk,ru,en} text, or a plain string such as 2025 used in every language",
    "source_id": "the data source (population) the table comes from; ties tables together",
    "measure_type": "flow (a longer period is the sum of its parts) or stock (end of period)",
    "unit": "{kk,ru,en} unit of measure (default: persons)",
    "measure_title": "{kk,ru,en} title of obs_value (default: number of persons)",
    "reference_metadata": "{key: {kk,ru,en}} further ESMS-style notes (mandate, population, ...)",
    "synthetic": "true for made-up demonstration data (x_synthetic in the descriptor)",
}


class SpecValidationError(AshyqError):
    """A spec that does not validate; ``problems`` lists (key path, reason)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(f"{first[0]}: {first[1]}{more}", source=source)


def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(messages, dict):
        for k, v in messages.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if k == "_schema":
                key = prefix or "(spec)"
            out.extend(_flatten(v, key))
    elif isinstance(messages, list):
        if all(isinstance(m, str) for m in messages):
            out.extend((prefix or "(spec)", m) for m in messages)
        else:
            for m in messages:
                out.extend(_flatten(m, prefix))
    else:
        out.append((prefix or "(spec)", str(messages)))
    return out


def _clean_text(value: str) -> str:
    """Refuse control characters (other than newline/tab) in human-readable text."""
    if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", value):
        raise ValidationError("contains control characters")
    return value


def _text(limit: int) -> fields.String:
    return fields.String(validate=[validate.Length(min=1, max=limit), _clean_text])


class LangText(fields.Dict):
    """A text in kk/ru/en, e.g. ``{kk: ..., ru: ..., en: ...}``; a plain string is refused."""

    def __init__(self, limit: int = TEXT_SHORT, **kw: Any):
        super().__init__(keys=fields.String(validate=validate.OneOf(LANGUAGES)),
                         values=_text(limit), **kw)


class TextOrLang(fields.Field):
    """A plain string (the same in every language) or a kk/ru/en mapping."""

    def __init__(self, limit: int = TEXT_SHORT, **kw: Any):
        super().__init__(**kw)
        self.limit = limit

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            return _text(self.limit).deserialize(value)
        return LangText(self.limit).deserialize(value)


class DimensionSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    name = fields.String(required=True, validate=validate.Regexp(
        NAME, error="must be a name (letters, digits, _; starting with a letter)"))
    codes = fields.List(fields.String(validate=validate.Regexp(CODE)),
                        validate=validate.Length(min=1))
    hierarchy = fields.Dict(
        keys=fields.String(validate=validate.Regexp(CODE)),
        values=fields.List(fields.String(validate=validate.Regexp(CODE)),
                           validate=validate.Length(min=1)),
    )
    title = LangText()
    codelist = fields.String(validate=validate.Length(min=1, max=64))
    labels = fields.Dict(keys=fields.String(), values=LangText())

    @pre_load
    def _stringify(self, data: Any, **_: Any) -> Any:
        # YAML reads codes like 01 or 2024 as numbers; codes are always strings.
        if isinstance(data, dict):
            data = dict(data)
            if isinstance(data.get("codes"), list):
                data["codes"] = [str(c) for c in data["codes"]]
            if isinstance(data.get("hierarchy"), dict):
                data["hierarchy"] = {
                    str(k): [str(c) for c in v] if isinstance(v, list) else v
                    for k, v in data["hierarchy"].items()
                }
        return data

    @validates_schema
    def _one_of(self, data: dict, **_: Any) -> None:
        if ("codes" in data) == ("hierarchy" in data):
            raise ValidationError("give either 'codes' (flat) or 'hierarchy' (parent -> children)")


class DisclosureField(fields.Field):
    """The ``disclosure`` section: validated by the schema of the method it asks for.

    ``method: NAME`` names the method; without it the one registered method that claims the
    section's keys is taken (``min_frequency`` → suppression, ``noise`` → noise).
    """

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Any:
        from .methods import UnknownMethod, get_method, methods

        if not isinstance(value, dict):
            raise ValidationError("must be a mapping")
        if "method" in value:
            try:
                method = get_method(str(value["method"]))
            except UnknownMethod as e:
                raise ValidationError({"method": [e.reason]}) from None
        else:
            claims = [m for m in methods() if m.claims(value)]
            if not claims:
                hints = " or ".join(f"'{m.keys[0]}' ({m.label})" for m in methods() if m.keys)
                raise ValidationError(f"give {hints}")
            method = claims[0]
        mixed = [m for m in methods() if m is not method and m.conflicts(value)]
        if mixed:
            names = sorted([method.name, *(m.name for m in mixed)])
            keys = sorted({k for m in mixed for k in m.conflicts(value)})
            raise ValidationError(
                f"asks for {' and '.join(names)} ({', '.join(keys)}) together without saying "
                "how to combine them; give the keys of one method only")
        section = {k: v for k, v in value.items() if k != "method"}
        try:
            params = method.schema().load(section)
        except ValidationError as e:
            raise ValidationError(e.messages) from None
        return method, params, section


class ContactSchema(Schema):
    """A contributor, source or publisher (checked in full by the packager)."""

    class Meta:
        unknown = INCLUDE

    title = TextOrLang()
    name = TextOrLang()
    role = fields.String(validate=validate.Length(max=40))
    email = fields.String(validate=validate.Length(max=260))
    path = fields.String(validate=validate.Length(max=2000))
    organization = fields.String(validate=validate.Length(max=TEXT_SHORT))
    version = fields.Raw()


class TableSpecSchema(Schema):
    class Meta:
        unknown = INCLUDE  # further top-level keys are kept as metadata (x_ extensions)

    id = fields.String(required=True, validate=validate.Regexp(SLUG, error="must be a slug: a-z 0-9 - _"))
    version = fields.String(load_default="1.0.0", validate=validate.Regexp(
        SEMVER, error="must be a semantic version like 1.2.0"))
    title = LangText(required=True)
    description = LangText(limit=TEXT_LONG)
    dimensions = fields.List(fields.Nested(DimensionSchema), required=True,
                             validate=validate.Length(min=1, max=MAX_DIMENSIONS))
    measure = fields.String(load_default="obs_value", validate=validate.Equal("obs_value"))
    disclosure = DisclosureField(required=True)
    # release metadata (METADATA_KEYS): shapes and limits here, the texts in full by the packager
    languages = fields.List(fields.String(validate=validate.OneOf(LANGUAGES)),
                            validate=validate.Length(equal=len(LANGUAGES)))
    allow_missing_languages = fields.Raw()
    license = fields.Raw()
    keywords = fields.Raw()
    contributors = fields.List(fields.Nested(ContactSchema), validate=validate.Length(max=100))
    sources = fields.List(fields.Nested(ContactSchema), validate=validate.Length(max=100))
    homepage = fields.String(validate=validate.Length(max=2000))
    publisher = fields.Nested(ContactSchema)
    contact_point = fields.Nested(ContactSchema)
    doi = fields.String(validate=validate.Length(max=250))
    created = fields.Raw()
    reference_period = TextOrLang()
    source_id = fields.String(validate=validate.Length(min=1, max=100))
    measure_type = fields.String(validate=validate.OneOf(["flow", "stock"]))
    unit = LangText()
    measure_title = LangText()
    reference_metadata = fields.Dict(keys=fields.String(validate=validate.Regexp(
        r"^[a-z][a-z0-9_]{0,40}$", error="keys must be a-z 0-9 _")),
        values=fields.Raw(), validate=validate.Length(max=40))
    synthetic = fields.Boolean()

    @pre_load
    def _version_str(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("version", "source_id", "doi"):
                if isinstance(data.get(key), int | float) and not isinstance(data[key], bool):
                    data[key] = str(data[key])
        return data

    @validates_schema
    def _unique_dims(self, data: dict, **_: Any) -> None:
        names = [d.get("name") for d in data.get("dimensions", [])]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValidationError(f"dimension {sorted(dupes)[0]!r} is given twice", "dimensions")
        if data.get("measure", "obs_value") in names:
            raise ValidationError("a dimension may not be named like the measure", "dimensions")


_STRUCTURE = ("id", "version", "title", "description", "dimensions", "measure", "disclosure")


def spec_from_mapping(data: Any, source: str = "spec") -> TableSpec:
    """Validate a spec mapping and build the ``TableSpec`` (raises :class:`SpecValidationError`)."""
    if not isinstance(data, dict):
        raise SpecValidationError(source, [("(spec)", "the spec must be a mapping")])
    _check_depth(data, source)
    try:
        clean = TableSpecSchema().load(data)
    except ValidationError as e:
        raise SpecValidationError(source, _flatten(e.messages)) from e

    dims = []
    for i, d in enumerate(clean["dimensions"]):
        try:
            h = (Hierarchy.from_children(d["name"], d["hierarchy"]) if "hierarchy" in d
                 else Hierarchy.flat(d["name"], d["codes"]))
        except SpecError as e:
            raise SpecValidationError(source, [(f"dimensions.{i}", e.reason)]) from e
        dims.append(Dimension(name=d["name"], hierarchy=h, title=d.get("title", {}),
                              codelist=d.get("codelist"), labels=d.get("labels", {})))

    method, params, section = clean["disclosure"]
    try:
        disclosure = method.build_spec(params, tuple(dims), section)
    except ValueError as e:
        key, reason = e.args[0] if e.args and isinstance(e.args[0], tuple) else ("", str(e))
        raise SpecValidationError(source, [(f"disclosure.{key}".rstrip("."), reason)]) from e
    # Metadata keeps the keys as given (the packager reads them in full); the schema checked them.
    metadata = {k: v for k, v in data.items() if k not in _STRUCTURE}
    return TableSpec(
        id=clean["id"], version=clean["version"], title=clean["title"],
        description=clean.get("description", {}), dimensions=tuple(dims),
        disclosure=disclosure, measure=clean["measure"], metadata=metadata,
    )


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes the YAML graph expands to when aliases are copied out (memoised per node)."""
    key = id(node)
    if key not in memo:
        memo[key] = 0  # a recursive alias counts once
        if isinstance(node, yaml.SequenceNode):
            memo[key] = 1 + sum(_expanded_size(n, memo) for n in node.value)
        elif isinstance(node, yaml.MappingNode):
            memo[key] = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo)
                                for k, v in node.value)
        else:
            memo[key] = 1
    return memo[key]


def _load_yaml(text: str) -> Any:
    """Safe YAML whose aliases expand to at most MAX_NODES nodes (no "billion laughs")."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_NODES:
            raise yaml.YAMLError(f"the spec expands to more than {MAX_NODES:,} values "
                                 "(YAML aliases repeated too often)")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def parse_spec_text(data: bytes | str, *, name: str) -> dict[str, Any]:
    """The mapping of a spec file's bytes (JSON if ``name`` ends in .json, else YAML)."""
    if len(data) > MAX_SPEC_BYTES:
        raise SpecValidationError(name, [("(file)", f"the spec is larger than "
                                                    f"{MAX_SPEC_BYTES // 2**20} MiB")])
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SpecValidationError(name, [("(file)", "not UTF-8 text")]) from None
    try:
        out = json.loads(data) if name.lower().endswith(".json") else _load_yaml(data)
    except (yaml.YAMLError, json.JSONDecodeError, RecursionError) as e:
        mark = getattr(e, "problem_mark", None)
        line = getattr(mark, "line", None)
        if line is None and isinstance(e, json.JSONDecodeError):
            line = e.lineno - 1
        where = f"line {line + 1}" if line is not None else "(file)"
        problem = (getattr(e, "problem", None) or getattr(e, "msg", None)
                   or (str(e) if isinstance(e, yaml.YAMLError) else "") or "cannot be parsed")
        raise SpecValidationError(name, [(where, f"not valid YAML/JSON: {problem}")]) from None
    if not isinstance(out, dict):
        raise SpecValidationError(name, [("(spec)", "the spec must be a mapping")])
    return out


def _check_depth(obj: Any, source: str) -> None:
    stack = [(obj, 0)]
    while stack:
        o, d = stack.pop()
        if d > MAX_DEPTH:
            raise SpecValidationError(source, [("(spec)", f"nested deeper than {MAX_DEPTH} "
                                                          "levels")])
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)


__all__ = ["METADATA_KEYS", "SpecValidationError", "TableSpecSchema", "parse_spec_text",
           "spec_from_mapping"]
