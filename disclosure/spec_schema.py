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

from .errors import R_, AshyqError, Phrase, Word
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
MISSING_POLICIES = ("zero", "refuse")  # what an inner cell absent from the input is

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
    "next_release": "ISO 8601 date (YYYY-MM-DD) the next version or period is due",
    "unit": "{kk,ru,en} unit of measure (default: persons)",
    "measure_title": "{kk,ru,en} title of obs_value (default: number of persons)",
    "reference_metadata": "{key: {kk,ru,en}} further ESMS-style notes (mandate, population, ...)",
    "synthetic": "true for made-up demonstration data (x_synthetic in the descriptor)",
}


# marshmallow's own messages (of the fields and validators the schemas use) as templates of the
# UI catalogue, so a refusal reads in the reader's language: the English message is matched and
# its values taken out; a message matching none stays as marshmallow wrote it.
_MARSHMALLOW_FIXED = (
    R_("Missing data for required field."), R_("Field may not be null."), R_("Invalid value."),
    R_("Invalid input."), R_("Invalid type."), R_("Invalid input type."), R_("Unknown field."),
    R_("Not a valid string."), R_("Not a valid utf-8 string."), R_("Not a valid number."),
    R_("Not a valid integer."), R_("Number too large."), R_("Not a valid boolean."),
    R_("Not a valid list."), R_("Not a valid tuple."), R_("Not a valid mapping type."),
    R_("Special numeric values (nan or infinity) are not permitted."),
    R_("String does not match expected pattern."), R_("Not a valid email address."),
    R_("Not a valid URL."),
)
_MARSHMALLOW_PATTERNS = tuple((re.compile(pattern), template) for pattern, template in (
    (r"^Length must be between (?P<min>.+) and (?P<max>.+)\.$",
     R_("Length must be between %(min)s and %(max)s.")),
    (r"^Length must be (?P<equal>.+)\.$", R_("Length must be %(equal)s.")),
    (r"^Shorter than minimum length (?P<min>.+)\.$", R_("Shorter than minimum length %(min)s.")),
    (r"^Longer than maximum length (?P<max>.+)\.$", R_("Longer than maximum length %(max)s.")),
    (r"^Must be greater than or equal to (?P<min>\S+) and less than or equal to (?P<max>\S+)\.$",
     R_("Must be greater than or equal to %(min)s and less than or equal to %(max)s.")),
    (r"^Must be greater than (?P<min>\S+) and less than (?P<max>\S+)\.$",
     R_("Must be greater than %(min)s and less than %(max)s.")),
    (r"^Must be greater than or equal to (?P<min>\S+)\.$",
     R_("Must be greater than or equal to %(min)s.")),
    (r"^Must be greater than (?P<min>\S+)\.$", R_("Must be greater than %(min)s.")),
    (r"^Must be less than or equal to (?P<max>\S+)\.$", R_("Must be less than or equal to %(max)s.")),
    (r"^Must be less than (?P<max>\S+)\.$", R_("Must be less than %(max)s.")),
    (r"^Must be one of: (?P<choices>.*)\.$", R_("Must be one of: %(choices)s.")),
    (r"^Must be equal to (?P<other>.*)\.$", R_("Must be equal to %(other)s.")),
))


# what the YAML and JSON parsers say, likewise
_PARSER_PATTERNS = tuple((re.compile(pattern), template) for pattern, template in (
    (r"^expected (?P<expected>.+), but (?:found|got) (?P<found>.+)$",
     R_("expected %(expected)s, but found %(found)s")),
    (r"^found character (?P<found>.+) that cannot start any token$",
     R_("found character %(found)s that cannot start any token")),
    (r"^found undefined alias (?P<found>.+)$", R_("found undefined alias %(found)s")),
    (r"^the spec expands to more than (?P<n>[\d,]+) values \(YAML aliases repeated too often\)$",
     R_("the spec expands to more than %(n)s values (YAML aliases repeated too often)")),
))
_PARSER_FIXED = (
    R_("mapping values are not allowed here"), R_("could not find expected ':'"),
    R_("found unexpected end of stream"), R_("cannot be parsed"), R_("Expecting value"),
    R_("Expecting property name enclosed in double quotes"), R_("Extra data"),
    R_("Expecting ',' delimiter"), R_("Expecting ':' delimiter"),
    R_("Unterminated string starting at"), R_("Invalid control character at"),
)


def problem_text(message: Any) -> str:
    """A validation message as translatable text: a :class:`Phrase` or :class:`Word` as it is,
    a marshmallow or parser message as the template it was made from, any other text as a
    :class:`Word` (the catalogue translates the custom messages the schemas give)."""
    if isinstance(message, Phrase | Word):
        return message
    message = str(message)
    for pattern, template in _MARSHMALLOW_PATTERNS + _PARSER_PATTERNS:
        m = pattern.match(message)
        if m:
            return Phrase(template, **m.groupdict())
    return Word(message)


def _joined(items: list[str], template: str = R_("%(first)s or %(second)s")) -> str:
    """``a or b or c`` (or another conjunction's ``template``) in the reader's language."""
    out = items[0]
    for item in items[1:]:
        out = Phrase(template, first=out, second=item)
    return out


def _key_text(key: str) -> str:
    if key in ("(spec)", "(file)"):
        return Word({"(spec)": R_("(spec)"), "(file)": R_("(file)")}[key])
    m = re.fullmatch(r"line (\d+)", key)
    return Phrase(R_("line %(line)s"), line=m.group(1)) if m else key


class SpecValidationError(AshyqError):
    """A spec that does not validate; ``problems`` lists (key path, reason)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.problems = problems
        key, problem = _key_text(problems[0][0]), problem_text(problems[0][1])
        if len(problems) > 1:
            super().__init__(R_("%(key)s: %(problem)s (and %(more)s more problem(s))"),
                             source=source, key=key, problem=problem, more=len(problems) - 1)
        else:
            super().__init__(R_("%(key)s: %(problem)s"), source=source, key=key, problem=problem)


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
        raise ValidationError(R_("contains control characters"))
    return value


def _text(limit: int) -> fields.String:
    return fields.String(validate=[validate.Length(min=1, max=limit), _clean_text])


class LangText(fields.Dict):
    """A text in kk/ru/en, e.g. ``{kk: ..., ru: ..., en: ...}``; a plain string is refused."""

    def __init__(self, limit: int = TEXT_SHORT, **kw: Any):
        super().__init__(keys=fields.String(validate=validate.OneOf(LANGUAGES)),
                         values=_text(limit), **kw)


class IsoDate(fields.Field):
    """A calendar date, ``YYYY-MM-DD`` (a YAML date or a string); kept as that string."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Any:
        import datetime as dt

        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            try:
                return dt.date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                pass
        raise ValidationError(R_("must be a date YYYY-MM-DD"))


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
        NAME, error=R_("must be a name (letters, digits, _; starting with a letter)")))
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
            raise ValidationError(R_("give either 'codes' (flat) or 'hierarchy' (parent -> "
                                     "children)"))


class DisclosureField(fields.Field):
    """The ``disclosure`` section: validated by the schema of the method it asks for.

    ``method: NAME`` names the method; without it the one registered method that claims the
    section's keys is taken (``min_frequency`` → suppression, ``noise`` → noise).
    """

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Any:
        from .methods import UnknownMethod, get_method, methods

        if not isinstance(value, dict):
            raise ValidationError(R_("must be a mapping"))
        if "method" in value:
            try:
                method = get_method(str(value["method"]))
            except UnknownMethod as e:
                raise ValidationError({"method": [Phrase(e.template, **e.params)]}) from None
        else:
            claims = [m for m in methods() if m.claims(value)]
            if not claims:
                hints = [Phrase(R_("'%(key)s' (%(label)s)"), key=m.keys[0], label=Word(m.label))
                         for m in methods() if m.keys]
                raise ValidationError(Phrase(R_("give %(hints)s"), hints=_joined(hints)))
            method = claims[0]
        mixed = [m for m in methods() if m is not method and m.conflicts(value)]
        if mixed:
            names = sorted([method.name, *(m.name for m in mixed)])
            keys = sorted({k for m in mixed for k in m.conflicts(value)})
            raise ValidationError(Phrase(
                R_("asks for %(methods)s (%(keys)s) together without saying how to combine them; "
                   "give the keys of one method only"),
                methods=_joined(names, R_("%(first)s and %(second)s")), keys=", ".join(keys)))
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

    id = fields.String(required=True, validate=validate.Regexp(SLUG, error=R_("must be a slug: a-z 0-9 - _")))
    version = fields.String(load_default="1.0.0", validate=validate.Regexp(
        SEMVER, error=R_("must be a semantic version like 1.2.0")))
    title = LangText(required=True)
    description = LangText(limit=TEXT_LONG)
    dimensions = fields.List(fields.Nested(DimensionSchema), required=True,
                             validate=validate.Length(min=1, max=MAX_DIMENSIONS))
    measure = fields.String(load_default="obs_value", validate=validate.Equal("obs_value"))
    missing = fields.String(load_default="zero", validate=validate.OneOf(MISSING_POLICIES))
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
    next_release = IsoDate()
    unit = LangText()
    measure_title = LangText()
    reference_metadata = fields.Dict(keys=fields.String(validate=validate.Regexp(
        r"^[a-z][a-z0-9_]{0,40}$", error=R_("keys must be a-z 0-9 _"))),
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
            raise ValidationError(Phrase(R_("dimension %(name)s is given twice"),
                                         name=repr(sorted(dupes)[0])), "dimensions")
        if data.get("measure", "obs_value") in names:
            raise ValidationError(R_("a dimension may not be named like the measure"),
                                  "dimensions")


_STRUCTURE = ("id", "version", "title", "description", "dimensions", "measure", "disclosure",
              "missing")


def spec_from_mapping(data: Any, source: str = "spec") -> TableSpec:
    """Validate a spec mapping and build the ``TableSpec`` (raises :class:`SpecValidationError`)."""
    if not isinstance(data, dict):
        raise SpecValidationError(source, [("(spec)", R_("the spec must be a mapping"))])
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
            raise SpecValidationError(source, [(f"dimensions.{i}",
                                                Phrase(e.template, **e.params))]) from e
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
        missing=clean["missing"],
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
        raise SpecValidationError(name, [("(file)", Phrase(
            R_("the spec is larger than %(mib)s MiB"), mib=MAX_SPEC_BYTES // 2**20))])
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SpecValidationError(name, [("(file)", R_("not UTF-8 text"))]) from None
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
        raise SpecValidationError(name, [(where, Phrase(R_("not valid YAML/JSON: %(problem)s"),
                                                        problem=problem_text(problem)))]) from None
    if not isinstance(out, dict):
        raise SpecValidationError(name, [("(spec)", R_("the spec must be a mapping"))])
    return out


def _check_depth(obj: Any, source: str) -> None:
    stack = [(obj, 0)]
    while stack:
        o, d = stack.pop()
        if d > MAX_DEPTH:
            raise SpecValidationError(source, [("(spec)", Phrase(
                R_("nested deeper than %(depth)s levels"), depth=MAX_DEPTH))])
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)


__all__ = ["METADATA_KEYS", "SpecValidationError", "TableSpecSchema", "parse_spec_text",
           "spec_from_mapping"]
