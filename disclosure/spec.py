"""The spec of a table: its dimensions (flat or hierarchical), and how it is protected.

Plain dataclasses, built from a mapping by the one marshmallow schema in
:mod:`disclosure.spec_schema`; a method's own parameters are a :class:`MethodSpec` subclass
declared by the method (:mod:`disclosure.methods`). Structural checks that only the table model can make — a hierarchy with a
cycle, a code with two parents, a code reachable from nowhere — are made here and raise
:class:`SpecError` naming the dimension and the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import R_, AshyqError

TOTAL = "_T"
#: The languages of every text (Kazakh, Russian, English); the one place that lists them.
LANGUAGES = ("kk", "ru", "en")
LANGUAGE_NAMES = {"kk": "Kazakh", "ru": "Russian", "en": "English"}
#: Size limits of spec text, in characters: titles, labels, names, keywords; descriptions, notes.
TEXT_SHORT = 300
TEXT_LONG = 5000
#: Semantic versioning 2.0.0 (https://semver.org), the one rule for a release's version.
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?$"
)


def parse_semver(v: str) -> tuple:
    """Sort key of a semantic version (raises ValueError if ``v`` is not one)."""
    m = SEMVER.match(v or "")
    if not m:
        raise ValueError(v)
    pre = m.group(4)
    pre_key: tuple = ((1,),) if pre is None else tuple(
        (0, int(p), "") if p.isdigit() else (0, 10**18, p) for p in pre.split("."))
    # A release ranks above its pre-releases; numeric identifiers rank below alphanumeric ones.
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), 1 if pre is None else 0, pre_key)


class SpecError(AshyqError):
    """A spec that cannot describe a table; the message names the dimension and code."""


@dataclass(frozen=True)
class Hierarchy:
    """The codes of one dimension as a tree rooted at ``_T``.

    ``codes`` lists every code, root first, in depth-first order (a parent before its children),
    which is also the order cells are published in. A flat dimension is a tree of depth one.
    """

    name: str
    children: dict[str, tuple[str, ...]]
    codes: tuple[str, ...]
    parent: dict[str, str]
    depth: dict[str, int]

    @classmethod
    def from_children(cls, name: str, mapping: dict[str, list[str]]) -> Hierarchy:
        if TOTAL not in mapping:
            raise SpecError(R_("dimension %(name)s: the hierarchy has no root %(total)s"), name=repr(name), total=repr(TOTAL))
        parent: dict[str, str] = {}
        for p, kids in mapping.items():
            if not kids:
                raise SpecError(R_("dimension %(name)s: code %(p)s is listed as a parent with no children"), name=repr(name), p=repr(p))
            seen_here: set[str] = set()
            for c in kids:
                c = str(c)
                if c == TOTAL:
                    raise SpecError(R_("dimension %(name)s: the root %(total)s appears as a child of %(p)s (cycle)"), name=repr(name), total=repr(TOTAL), p=repr(p))
                if c in seen_here:
                    raise SpecError(R_("dimension %(name)s: code %(c)s is listed twice under %(p)s"), name=repr(name), c=repr(c), p=repr(p))
                seen_here.add(c)
                if c in parent:
                    raise SpecError(
                        R_("dimension %(name)s: code %(c)s has two parents (%(parent)s and %(p)s)")
                    , name=repr(name), c=repr(c), parent=repr(parent[c]), p=repr(p))
                parent[c] = str(p)
        # Walk from the root; anything not reached is in a cycle or detached.
        codes: list[str] = []
        depth: dict[str, int] = {}
        stack: list[tuple[str, int]] = [(TOTAL, 0)]
        children = {str(p): tuple(str(c) for c in kids) for p, kids in mapping.items()}
        while stack:
            code, d = stack.pop()
            if code in depth:
                raise SpecError(R_("dimension %(name)s: code %(code_name)s is reached twice (cycle)"), name=repr(name), code_name=repr(code))
            depth[code] = d
            codes.append(code)
            for c in reversed(children.get(code, ())):
                stack.append((c, d + 1))
        unreached = [p for p in children if p not in depth] + [c for c in parent if c not in depth]
        if unreached:
            raise SpecError(
                R_("dimension %(name)s: code %(unreached)s is not reachable from %(total)s (a cycle or a detached branch)")
            , name=repr(name), unreached=repr(unreached[0]), total=repr(TOTAL))
        return cls(name=name, children=children, codes=tuple(codes), parent=parent, depth=depth)

    @classmethod
    def flat(cls, name: str, codes: list[str]) -> Hierarchy:
        return cls.from_children(name, {TOTAL: [str(c) for c in codes]})

    @property
    def leaves(self) -> tuple[str, ...]:
        return tuple(c for c in self.codes if c not in self.children)

    @property
    def parents(self) -> tuple[str, ...]:
        return tuple(c for c in self.codes if c in self.children)

    @property
    def levels(self) -> int:
        return max(self.depth.values())

    def is_leaf(self, code: str) -> bool:
        return code not in self.children

    def leaves_under(self, code: str) -> tuple[str, ...]:
        if code not in self.children:
            return (code,)
        out: list[str] = []
        for c in self.children[code]:
            out.extend(self.leaves_under(c))
        return tuple(out)


@dataclass(frozen=True)
class Dimension:
    name: str
    hierarchy: Hierarchy
    title: dict[str, str] = field(default_factory=dict)
    codelist: str | None = None
    labels: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodSpec:
    """The parameters of one disclosure method (the spec's ``disclosure`` section).

    Each method in :mod:`disclosure.methods` subclasses it with its own fields; ``method`` is the
    registered name. ``options`` keeps keys of the section that the method does not model.
    """

    method: ClassVar[str] = ""

    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TableSpec:
    id: str
    version: str
    title: dict[str, str]
    dimensions: tuple[Dimension, ...]
    disclosure: MethodSpec
    measure: str = "obs_value"
    description: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: an inner cell absent from the input: ``zero`` (taken as 0, and the report says which)
    #: or ``refuse`` (the upload is refused, naming the first one)
    missing: str = "zero"

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    def dimension(self, name: str) -> Dimension:
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(name)
