"""Loading and validating a table spec (YAML or JSON) with marshmallow into a ``TableSpec``.

Errors come out as :class:`SpecValidationError` with one line per problem: the file, the path of
the offending key (``disclosure.min_frequency``) and the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
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

from disclosure.spec import (
    LANGUAGES,
    Dimension,
    DisclosureSpec,
    Hierarchy,
    NoiseSpec,
    ProtectionLevel,
    SpecError,
    TableSpec,
)

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
CODE = re.compile(r"^[A-Za-z0-9_.\-+]{1,64}$")
MAX_TEXT = 2000


class SpecValidationError(ValueError):
    """A spec that does not validate; ``problems`` lists (key path, reason)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(f"{source}: {first[0]}: {first[1]}{more}")


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


class LangText(fields.Dict):
    """A text in kk/ru/en, e.g. ``{kk: ..., ru: ..., en: ...}``; a plain string is refused."""

    def __init__(self, **kw: Any):
        super().__init__(
            keys=fields.String(validate=validate.OneOf(LANGUAGES)),
            values=fields.String(validate=[validate.Length(min=1, max=MAX_TEXT), _clean_text]),
            **kw,
        )


class DimensionSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    name = fields.String(required=True, validate=validate.Regexp(NAME, error="must be a name (letters, digits, _; starting with a letter)"))
    codes = fields.List(fields.String(validate=validate.Regexp(CODE)), validate=validate.Length(min=1))
    hierarchy = fields.Dict(
        keys=fields.String(validate=validate.Regexp(CODE)),
        values=fields.List(fields.String(validate=validate.Regexp(CODE)), validate=validate.Length(min=1)),
    )
    title = LangText()
    codelist = fields.String()
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


class ProtectionLevelSchema(Schema):
    absolute = fields.Float(validate=validate.Range(min=0, min_inclusive=False))
    percent = fields.Float(validate=validate.Range(min=0, max=100, min_inclusive=False))

    @validates_schema
    def _one(self, data: dict, **_: Any) -> None:
        if len(data) != 1:
            raise ValidationError("give exactly one of 'absolute' or 'percent'")


class NoiseSchema(Schema):
    class Meta:
        unknown = INCLUDE

    mechanism = fields.String(required=True, validate=validate.OneOf(["geometric"]))
    epsilon = fields.Float(required=True, allow_nan=False,
                           validate=validate.Range(min=0, min_inclusive=False, error="must be greater than 0"))
    privacy_unit = fields.String(load_default="person")
    contribution_bound = fields.Integer(load_default=1, validate=validate.Range(min=1))
    # Share of epsilon per measured group (see disclosure.noise.allocation): inner, total,
    # margins, a dimension name or "dim@level"; normalised to sum 1.
    weights = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=80)),
                          values=fields.Float(allow_nan=False, validate=validate.Range(min=0)))


class CellRefSchema(Schema):
    class Meta:
        unknown = INCLUDE


class DisclosureSchema(Schema):
    class Meta:
        unknown = INCLUDE

    min_frequency = fields.Integer(strict=True, validate=validate.Range(min=2, error="must be at least 2"))
    secondary = fields.String(validate=validate.OneOf(["optimal", "heuristic", "none"]))
    zero_policy = fields.String(validate=validate.OneOf(["safe", "primary"]))
    cost = fields.String(validate=validate.OneOf(["value", "count"]))
    protection_level = fields.Nested(ProtectionLevelSchema)
    time_limit = fields.Float(validate=validate.Range(min=0, min_inclusive=False))
    confidential = fields.List(fields.Dict(keys=fields.String(), values=fields.String()))
    must_publish = fields.List(fields.Dict(keys=fields.String(), values=fields.String()))
    noise = fields.Nested(NoiseSchema)

    @validates_schema
    def _method(self, data: dict, **_: Any) -> None:
        if "noise" in data:
            both = [k for k in ("min_frequency", "secondary") if k in data]
            if both:
                raise ValidationError(
                    f"asks for noise and suppression ({', '.join(both)}) together without saying how to "
                    "combine them; give either 'noise' or the suppression keys"
                )
        elif "min_frequency" not in data:
            raise ValidationError("give 'min_frequency' (cell suppression) or 'noise' (differential privacy)")


class TableSpecSchema(Schema):
    class Meta:
        unknown = INCLUDE  # extra top-level keys are release metadata (see datapackages)

    id = fields.String(required=True, validate=validate.Regexp(SLUG, error="must be a slug: a-z 0-9 - _"))
    version = fields.String(load_default="1.0.0", validate=validate.Regexp(SEMVER, error="must be a semantic version like 1.2.0"))
    title = LangText(required=True)
    description = LangText()
    dimensions = fields.List(fields.Nested(DimensionSchema), required=True, validate=validate.Length(min=1, max=12))
    measure = fields.String(load_default="obs_value", validate=validate.Equal("obs_value"))
    disclosure = fields.Nested(DisclosureSchema, required=True)

    @pre_load
    def _version_str(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("version"), int | float):
            data = dict(data)
            data["version"] = str(data["version"])
        return data

    @validates_schema
    def _unique_dims(self, data: dict, **_: Any) -> None:
        names = [d.get("name") for d in data.get("dimensions", [])]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValidationError(f"dimension {sorted(dupes)[0]!r} is given twice", "dimensions")
        if data.get("measure", "obs_value") in names:
            raise ValidationError("a dimension may not be named like the measure", "dimensions")


def read_spec_file(path: str | Path) -> dict:
    p = Path(path)
    src = str(path)
    if not p.is_file():
        raise SpecValidationError(src, [("(file)", "no such file")])
    text = p.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f"line {line + 1}" if line is not None else "(file)"
        raise SpecValidationError(src, [(where, f"not valid YAML/JSON: {getattr(e, 'problem', e)}")]) from e
    if not isinstance(data, dict):
        raise SpecValidationError(src, [("(spec)", "the spec must be a mapping")])
    return data


def spec_from_mapping(data: dict, source: str = "spec") -> TableSpec:
    """Validate a spec mapping and build the ``TableSpec`` (raises :class:`SpecValidationError`)."""
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
            raise SpecValidationError(source, [(f"dimensions.{i}", str(e))]) from e
        dims.append(Dimension(name=d["name"], hierarchy=h, title=d.get("title", {}),
                              codelist=d.get("codelist"), labels=d.get("labels", {})))

    dis = clean["disclosure"]
    known = set(DisclosureSchema().fields)
    if "noise" in dis:
        n = dis["noise"]
        noise = NoiseSpec(
            mechanism=n["mechanism"], epsilon=float(n["epsilon"]), privacy_unit=n["privacy_unit"],
            contribution_bound=n["contribution_bound"],
            options={k: v for k, v in n.items() if k not in {"mechanism", "epsilon", "privacy_unit", "contribution_bound"}},
        )
        disclosure = DisclosureSpec(method="noise", noise=noise,
                                    options={k: v for k, v in dis.items() if k not in known})
    else:
        pl = dis.get("protection_level")
        level = ProtectionLevel(*next(iter(pl.items()))) if pl else None
        dim_names = {d.name: d for d in dims}
        for key in ("confidential", "must_publish"):
            for j, ref in enumerate(dis.get(key, [])):
                for dn, code in ref.items():
                    if dn not in dim_names:
                        raise SpecValidationError(source, [(f"disclosure.{key}.{j}", f"no dimension {dn!r}")])
                    if code not in dim_names[dn].hierarchy.codes:
                        raise SpecValidationError(source, [(f"disclosure.{key}.{j}", f"{code!r} is not a code of {dn!r}")])
        disclosure = DisclosureSpec(
            method="suppression",
            min_frequency=dis["min_frequency"],
            secondary=dis.get("secondary", "optimal"),
            zero_policy=dis.get("zero_policy", "safe"),
            cost=dis.get("cost", "value"),
            protection_level=level,
            time_limit=float(dis.get("time_limit", 20.0)),
            confidential=tuple(dis.get("confidential", [])),
            must_publish=tuple(dis.get("must_publish", [])),
            options={k: v for k, v in dis.items() if k not in known},
        )
    core = set(TableSpecSchema().fields)
    metadata = {k: v for k, v in data.items() if k not in core}
    return TableSpec(
        id=clean["id"], version=clean["version"], title=clean["title"],
        description=clean.get("description", {}), dimensions=tuple(dims),
        disclosure=disclosure, measure=clean["measure"], metadata=metadata,
    )


def load_spec(path: str | Path) -> TableSpec:
    return spec_from_mapping(read_spec_file(path), source=str(path))
