"""Disclosure methods as plug-ins: one module per method, one registration each.

A method is a :class:`DisclosureMethod` subclass that declares

- ``name`` (the value of ``disclosure.method`` in a spec) and ``label`` (English, translated
  through the catalogues);
- ``spec_type`` (its :class:`~disclosure.spec.MethodSpec` dataclass) and ``schema`` (the
  marshmallow schema of its ``disclosure`` section); ``claims(section)`` says whether a section
  without ``method:`` asks for it (``min_frequency`` → suppression, ``noise`` → noise);
- ``report_type`` (its typed :class:`~disclosure.report.ProtectionReport`);
- ``flags`` (the SDMX flag codes its tables may carry) and ``columns`` (extra published columns,
  such as a margin of error);
- ``protect(tables, context)``, and what the rest of Ashyq asks of it: ``check`` (before the
  data is read), ``releasable`` (may this output be published), ``budget_cost`` (privacy budget
  one release spends), ``describe`` (the method block and text of the data package, composed
  with the translator it is handed: see :data:`Translate`),
  ``summary`` (one line for the CLI) and ``review`` (figures for the reviewer).

and registers itself with :func:`register_method`. Nothing else in Ashyq branches on a method's
name: the spec schema, the CLI, the packager and the web review ask the registry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import R_, AshyqError, Phrase

if TYPE_CHECKING:
    import numpy as np
    from marshmallow import Schema

    from ..protect import ProtectedTable
    from ..report import ProtectionReport
    from ..spec import Dimension, MethodSpec, TableSpec
    from ..table import CellTable


class UnknownMethod(AshyqError):
    """A spec or report names a disclosure method that is not registered."""


#: The translator a method composes its package text with: ``tr(msgid, **params)`` gives
#: ``{lang: text}`` for every language of :data:`disclosure.spec.LANGUAGES`. ``msgid`` is the
#: English text with ``%(name)s`` placeholders; a param is a plain value (the same in every
#: language) or a ``{lang: text}`` dict (its text in each language, e.g. an earlier ``tr``
#: result). The translations live in the package-text catalogue
#: (``datapackages/translations``, extracted from the ``tr(...)`` and ``N_(...)`` calls here);
#: the packager hands ``datapackages.i18n.tr`` in, so this pure core reads no file.
Translate = Callable[..., dict[str, str]]


def N_(msgid: str) -> str:
    """Mark ``msgid`` for extraction into the package-text catalogue (render it with ``tr``)."""
    return msgid


def concat(*texts: dict[str, str], sep: str = " ") -> dict[str, str]:
    """Texts in every language joined language by language (``sep`` between them)."""
    return {lang: sep.join(t[lang] for t in texts) for lang in texts[0]}


@dataclass(frozen=True)
class Column:
    """A published column a method adds after ``conf_status`` (e.g. ``obs_moe``).

    ``title`` is an English msgid of the package-text catalogue (mark it with :func:`N_`; the
    packager renders it in every language); ``type`` is a Table Schema type; ``minimum`` its
    lower bound, if any.
    """

    name: str
    type: str
    title: str
    minimum: float | None = None


@dataclass(frozen=True)
class PublishedFacts:
    """What the packager established from the published table itself (not from the report)."""

    cells: int
    primary: int
    secondary: int
    non_negative: bool
    additive: bool


@dataclass
class MethodNote:
    """The method block of a data package: public parameters, text in every language."""

    parameters: dict[str, Any]
    text: dict[str, str]
    cells: dict[str, int] | None = None
    audit: dict[str, Any] | None = None


@dataclass
class ProtectContext:
    """What protection may depend on besides the tables: service limits, and tests' seeds.

    ``rng`` must stay None in production (noise is then drawn from a cryptographic sampler);
    a seed makes a release that :meth:`DisclosureMethod.releasable` refuses. ``published``:
    tables of the same source already public (:class:`disclosure.history.PublishedTable`), which
    the attacker holds; a method whose ``history`` is False refuses a non-empty list.
    """

    epsilon_ceiling: float = 5.0
    rng: np.random.Generator | int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    published: list = field(default_factory=list)
    #: called once after every check and right before the method draws/protects (the service
    #: reserves the privacy budget here, so whether a run is refused never depends on the noise)
    before_draw: Callable[[], None] | None = None
    #: called at phase boundaries as ``progress(phase, **figures)`` (figures: ``cells``,
    #: ``primaries``, ``primaries_left``); the service shows it as the job's progress
    progress: Callable[..., None] | None = None

    def step(self, phase: str, **figures: int) -> None:
        """Report that protection reached ``phase`` (nothing when no one listens)."""
        if self.progress is not None:
            self.progress(phase, **figures)


class DisclosureMethod:
    """Base of every disclosure method; see the module docstring for what each declares."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    spec_type: ClassVar[type[MethodSpec]]
    schema: ClassVar[type[Schema]]
    report_type: ClassVar[type[ProtectionReport]]
    flags: ClassVar[dict[str, tuple[str, ...]]] = {
        "obs_status": ("A",), "conf_status": ("F",)}
    columns: ClassVar[tuple[Column, ...]] = ()
    #: whether several tables of one release can be protected together
    linkable: ClassVar[bool] = False
    #: whether a published free cell may be negative
    negative_values: ClassVar[bool] = False
    #: whether protection can take tables already published into account
    #: (``ProtectContext.published``); ``history_refusal`` says why not, when it cannot
    history: ClassVar[bool] = False
    history_refusal: ClassVar[str] = R_("protection against tables already published is not "
                                        "available for this method")

    #: keys of a ``disclosure`` section that belong to this method alone; the first one
    #: selects the method when the section has no ``method:``
    keys: ClassVar[tuple[str, ...]] = ()

    # -- the spec ---------------------------------------------------------------------------
    def claims(self, section: dict[str, Any]) -> bool:
        """True when a ``disclosure`` section without ``method:`` asks for this method."""
        return bool(self.keys) and self.keys[0] in section

    def conflicts(self, section: dict[str, Any]) -> list[str]:
        """Keys of ``section`` that belong to this method (to refuse mixing two methods)."""
        return [k for k in self.keys if k in section]

    def build_spec(self, params: dict[str, Any], dimensions: tuple[Dimension, ...],
                   raw: dict[str, Any]) -> MethodSpec:
        """The method's spec from its schema-loaded section; raise ``ValueError((key, reason))``
        for a problem only the dimensions reveal."""
        return self.spec_type(**params)

    def form_section(self, values: dict[str, Any]) -> dict[str, Any]:
        """The ``disclosure`` section from the web form's fields (``min_frequency``,
        ``secondary``, ``epsilon``; absent ones are None); ``ValueError`` names a missing one."""
        return {"method": self.name}

    # -- protection -------------------------------------------------------------------------
    def check(self, spec: TableSpec, context: ProtectContext) -> None:
        """Refuse a spec before any data is read (e.g. a parameter over a service limit)."""

    def protect(self, tables: list[CellTable], context: ProtectContext) -> list[ProtectedTable]:
        raise NotImplementedError

    def releasable(self, report: ProtectionReport) -> str | Phrase | None:
        """None when the output may be released, else the reason it may not."""
        return None

    def budget_cost(self, spec: TableSpec, report: ProtectionReport | None = None) -> float | None:
        """Privacy budget (epsilon) one draw spends from its source's ledger, if any. Decided
        from the spec alone: the service charges it before anything is drawn."""
        return None

    def with_budget(self, report: ProtectionReport, *, spent: float, remaining: float,
                    total: float, this_release: float | None = None) -> ProtectionReport:
        """The report after the ledger was charged: ``this_release`` spent by this draw,
        ``spent`` by the source and period in all (methods that spend a budget override)."""
        return report

    # -- what others show -------------------------------------------------------------------
    def describe(self, spec: TableSpec, report: ProtectionReport | None,
                 facts: PublishedFacts, tr: Translate) -> MethodNote:
        """The package's method block: public parameters and the text in every language,
        composed with ``tr`` (see :data:`Translate`)."""
        raise NotImplementedError

    def additive(self, report: ProtectionReport) -> bool:
        """Whether every published total equals the sum of its published parts."""
        return True

    def package_warnings(self, report: ProtectionReport) -> list[str]:
        """Warnings for whoever packages a table with this report."""
        return []

    def check_published(self, report: ProtectionReport,
                        facts: PublishedFacts) -> str | Phrase | None:
        """None when the published table fits the report, else why it does not."""
        return None

    def summary(self, report: ProtectionReport) -> str:
        """One line for the CLI."""
        return f"{report.cells} cells, {self.label}"

    def review(self, report: ProtectionReport) -> dict[str, Any]:
        """Figures the reviewer sees, in order: English label (a msgid of the UI catalogue,
        marked ``R_``) -> value: a number, or text as a :class:`~disclosure.errors.Word` or
        :class:`~disclosure.errors.Phrase` (the page shows it in the reader's language)."""
        return {}

    def public_parameters(self, spec: TableSpec) -> dict[str, Any]:
        """The spec's parameters of this method that the public version page shows."""
        return {}


_REGISTRY: dict[str, DisclosureMethod] = {}
#: the method a form offers first (the first built-in one)
DEFAULT_METHOD = "suppression"


def register_method(method: DisclosureMethod | type[DisclosureMethod]) -> DisclosureMethod:
    """Register a method (an instance or a class; usable as a class decorator)."""
    inst = method() if isinstance(method, type) else method
    if not inst.name:
        raise ValueError("a disclosure method needs a name")
    _REGISTRY[inst.name] = inst
    return method  # type: ignore[return-value]


def unregister_method(name: str) -> None:
    """Remove a method (tests that register a toy method clean up with this)."""
    _REGISTRY.pop(name, None)


def methods() -> list[DisclosureMethod]:
    """Every registered method, built-in ones first."""
    _load_builtins()
    return list(_REGISTRY.values())


def get_method(name: str, *, source: str | None = None) -> DisclosureMethod:
    _load_builtins()
    m = _REGISTRY.get(name)
    if m is None:
        raise UnknownMethod(R_("unknown disclosure method %(name)s (known: %(registry)s)"), source=source, name=repr(str(name)[:40]), registry=', '.join(_REGISTRY))
    return m


def method_of(spec: TableSpec) -> DisclosureMethod:
    """The registered method of a table spec."""
    return get_method(spec.disclosure.method, source=f"spec {spec.id}")


_loaded = False
_load_lock = threading.RLock()


def _load_builtins() -> None:
    """Import the built-in methods once. Under a lock, and marked loaded only when done, so a
    second thread (a threaded web server) never sees a half-filled registry."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if _loaded:
            return
        import importlib

        for name in ("suppression", "noise"):  # built-in methods register themselves
            importlib.import_module(f"{__name__}.{name}")
        _loaded = True


__all__ = ["N_", "Column", "DisclosureMethod", "MethodNote", "ProtectContext", "PublishedFacts",
           "Translate", "UnknownMethod", "concat", "get_method", "method_of", "methods",
           "register_method", "unregister_method"]
