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

from .errors import AshyqError

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
            raise SpecError(f"dimension {name!r}: the hierarchy has no root {TOTAL!r}")
        parent: dict[str, str] = {}
        for p, kids in mapping.items():
            if not kids:
                raise SpecError(f"dimension {name!r}: code {p!r} is listed as a parent with no children")
            seen_here: set[str] = set()
            for c in kids:
                c = str(c)
                if c == TOTAL:
                    raise SpecError(f"dimension {name!r}: the root {TOTAL!r} appears as a child of {p!r} (cycle)")
                if c in seen_here:
                    raise SpecError(f"dimension {name!r}: code {c!r} is listed twice under {p!r}")
                seen_here.add(c)
                if c in parent:
                    raise SpecError(
                        f"dimension {name!r}: code {c!r} has two parents ({parent[c]!r} and {p!r})"
                    )
                parent[c] = str(p)
        # Walk from the root; anything not reached is in a cycle or detached.
        codes: list[str] = []
        depth: dict[str, int] = {}
        stack: list[tuple[str, int]] = [(TOTAL, 0)]
        children = {str(p): tuple(str(c) for c in kids) for p, kids in mapping.items()}
        while stack:
            code, d = stack.pop()
            if code in depth:
                raise SpecError(f"dimension {name!r}: code {code!r} is reached twice (cycle)")
            depth[code] = d
            codes.append(code)
            for c in reversed(children.get(code, ())):
                stack.append((c, d + 1))
        unreached = [p for p in children if p not in depth] + [c for c in parent if c not in depth]
        if unreached:
            raise SpecError(
                f"dimension {name!r}: code {unreached[0]!r} is not reachable from {TOTAL!r} (a cycle or a detached branch)"
            )
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

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    def dimension(self, name: str) -> Dimension:
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(name)
