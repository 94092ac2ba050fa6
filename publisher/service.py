"""The service layer: protect, package and publish, shared by the CLI, the web UI and the API.

Each function takes validated inputs and settings, does the I/O, and raises an exception whose
message is one line for the user (file, row, column, reason). Raw counts of suppressed cells never
appear in a message or a log. What a function writes to the store (budget charges, local
publications) goes into the caller's ``session``, never committed here: one transaction per web
request, job step or CLI command (``publisher.db.session_scope``); no engine or migration per call.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from disclosure.errors import R_, AshyqError, Word
from disclosure.methods import ProtectContext, method_of
from disclosure.protect import ProtectedTable, protect_linked
from disclosure.report import ProtectionReport
from disclosure.spec import TableSpec
from disclosure.table import CellTable, InputError, read_cells

from .settings import config_path
from .specs import load_spec

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

MAX_INPUT_BYTES_DEFAULT = 200 * 1024 * 1024


class ServiceError(AshyqError):
    """A request the service refuses, with a one-line user-facing reason."""


class PublishFailed(ServiceError):
    def __init__(self, message: str, retryable: bool = False, **params: Any):
        super().__init__(message, **params)
        self.retryable = retryable


@dataclass
class ProtectOutcome:
    spec: TableSpec
    published: pd.DataFrame
    report: ProtectionReport
    protected_csv_bytes: bytes = b""
    budget: dict[str, Any] | None = None


@dataclass
class PublishOutcome:
    target: str  # "ckan" | "local"
    url: str
    dataset_name: str
    verified: bool
    details: dict[str, Any] = field(default_factory=dict)


def read_table_file(path: str | Path, *, max_bytes: int = MAX_INPUT_BYTES_DEFAULT) -> pd.DataFrame:
    """Read a long-format CSV (UTF-8, header row) as strings; errors name the file."""
    p = Path(path)
    src = str(path)
    if not p.is_file():
        raise InputError(R_("no such file"), source=src)
    size = p.stat().st_size
    if size > max_bytes:
        raise InputError(R_("the file is %(size)s bytes, above the limit of %(max_bytes)s"), source=src, size=size, max_bytes=max_bytes)
    return read_table_bytes(p.read_bytes(), source=src)


def read_table_bytes(data: bytes, *, source: str) -> pd.DataFrame:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(R_("not UTF-8 text (byte %(start)s)"), source=source, start=e.start) from e
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False,
                         skipinitialspace=True)
    except pd.errors.EmptyDataError as e:
        raise InputError(R_("the file is empty"), source=source) from e
    except pd.errors.ParserError as e:
        raise InputError(R_("malformed CSV: %(e)s"), source=source, e=str(e).strip().splitlines()[-1]) from e
    df.columns = [str(c).strip() for c in df.columns]
    return df


def protected_csv_bytes(published: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    published.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


@dataclass
class _Reservation:
    """The privacy budget charged for one draw, before the draw."""

    source: str
    period: str
    epsilon: float  # what the draw spent, in the source's unit
    spent: float
    remaining: float
    total: float
    unit: str = "epsilon"  # the source's unit: epsilon (pure DP) or rho (zCDP)


def _reserve_budget(spec: TableSpec, settings: dict[str, Any],
                    session: Session | None) -> _Reservation | None:
    """Charge the draw's epsilon to the ledger of its registered data source and reference period,
    BEFORE the noise is drawn (so whether a run is refused never depends on the noise).

    Every draw is a new charge (a fresh key per draw), whether or not the release is later
    approved; serving a stored draw again never comes here. The charge is written in the
    caller's ``session`` and not committed: it is spent when the caller's transaction (the web
    request, the job, the CLI command) commits, and undone with it. The total is the source's
    registered total: settings play no part (``EPSILON_BUDGET`` is only the default of
    ``publisher source add``)."""
    method = method_of(spec)
    cost = method.budget_cost(spec)
    if cost is None:
        return None
    if session is None:
        raise ServiceError(R_("a %(label)s release charges the privacy budget: it needs the store's session (session=...)"), label=Word(method.label))
    import uuid

    from . import budget

    source = budget.source_of(session, spec).id
    period = budget.period_key(spec)
    st = budget.charge(session, source=source, period=period, epsilon=cost,
                       draw_key=f"draw-{uuid.uuid4().hex}")
    return _Reservation(source=source, period=period, epsilon=float(st.this_draw or 0.0),
                        spent=st.spent, remaining=st.remaining, total=st.total, unit=st.unit)


def _reserve_draws(specs: list[TableSpec], settings: dict[str, Any],
                   session: Session | None) -> list[_Reservation | None]:
    """Charge the draws of tables protected together (one charge for linked noise tables:
    :func:`publisher.budget.reserve_draws`), before anything is drawn."""
    if session is None or len(specs) == 1:
        return [_reserve_budget(spec, settings, session) for spec in specs]
    from dataclasses import asdict

    from . import budget

    return [None if r is None else _Reservation(**asdict(r))
            for r in budget.reserve_draws(session, specs)]


def _record_budget(spec: TableSpec, pt: ProtectedTable,
                   res: _Reservation | None) -> dict[str, Any] | None:
    """Put the reservation in the report: what this release spent, the source's total spend."""
    if res is None:
        return None
    method = method_of(spec)
    pt.report = method.with_budget(pt.report, spent=res.spent, remaining=res.remaining,
                                   total=res.total, this_release=res.epsilon, unit=res.unit)
    return {"this_release": res.epsilon, "spent": res.spent, "remaining": res.remaining,
            "total": res.total, "source": res.source, "period": res.period, "unit": res.unit}


def protect_context(settings: dict[str, Any]) -> ProtectContext:
    """The service's limits for protection; noise comes from the cryptographic sampler (no seed)."""
    return ProtectContext(epsilon_ceiling=float(settings["EPSILON_CEILING"]), rng=None,
                          settings=dict(settings))


def protect_tables(items: list[tuple[TableSpec, pd.DataFrame, str]], *,
                   settings: dict[str, Any], session: Session | None = None,
                   published: list | None = None,
                   progress: Callable[..., None] | None = None,
                   reserve: Callable[[list[TableSpec]], list[_Reservation | None]] | None = None,
                   ) -> list[ProtectOutcome]:
    """Protect one table, or several linked tables of one release, and charge any DP budget
    in ``session`` (needed for noise; the caller commits). ``published``: the tables of the
    same source already public (:class:`disclosure.history.PublishedTable`, e.g. from
    :func:`read_published`); the attacker holds them. ``progress(phase, **figures)`` hears the
    phases; ``reserve(specs)`` charges the budget instead of ``session`` (the protection job's
    child process asks its parent, which holds the store)."""
    ctx = protect_context(settings)
    ctx.published = list(published or [])
    ctx.progress = progress
    ctx.step("reading")
    tables = validate_tables(items, settings=settings, session=None, context=ctx)
    ctx.step("protecting", cells=sum(t.n_cells for t in tables))
    reserved: list[_Reservation | None] = []

    def before_draw() -> None:  # after every check, before the draw
        if reserve is not None:
            reserved[:] = reserve([spec for spec, _, _ in items])
        else:
            reserved[:] = _reserve_draws([spec for spec, _, _ in items], settings, session)

    ctx.before_draw = before_draw
    results = protect_linked(tables, context=ctx)
    if len(reserved) != len(items):  # pragma: no cover - a method that skipped the hook
        raise RuntimeError("the privacy budget was not reserved before protection")
    out = []
    for (spec, _, _), pt, res in zip(items, results, reserved, strict=True):
        refusal = method_of(spec).releasable(pt.report)
        if refusal:
            raise ServiceError(refusal, source=f"spec {spec.id}")
        budget_status = _record_budget(spec, pt, res)
        out.append(ProtectOutcome(spec=spec, published=pt.published, report=pt.report,
                                  protected_csv_bytes=protected_csv_bytes(pt.published),
                                  budget=budget_status))
    return out


class LimitExceeded(ServiceError):
    """A table over a protection limit of the service (cells per table, codes per dimension,
    tables per job); the message names the limit and its setting."""


def check_limits(spec: TableSpec, settings: dict[str, Any]) -> None:
    """Refuse a spec whose table is over the service's limits (before any data is read)."""
    max_codes = int(settings.get("PROTECT_MAX_CODES") or 0)
    max_cells = int(settings.get("PROTECT_MAX_CELLS") or 0)
    cells = 1
    for d in spec.dimensions:
        n = len(d.hierarchy.codes)
        if max_codes and n > max_codes:
            raise LimitExceeded(R_("dimension %(dimension)s has %(n)s codes with its totals, above "
                                   "the limit of %(limit)s codes per dimension (setting "
                                   "ASHYQ_PROTECT_MAX_CODES)"), source=f"spec {spec.id}",
                                dimension=d.name, n=n, limit=max_codes)
        cells *= n
    if max_cells and cells > max_cells:
        raise LimitExceeded(R_("the table has %(n)s cells with its totals, above the limit of "
                               "%(limit)s cells per table (setting ASHYQ_PROTECT_MAX_CELLS)"),
                            source=f"spec {spec.id}", n=cells, limit=max_cells)


def validate_tables(items: list[tuple[TableSpec, pd.DataFrame, str]], *,
                    settings: dict[str, Any], session: Session | None = None,
                    context: ProtectContext | None = None) -> list[CellTable]:
    """The one validation path of tables to protect (the upload and the protection job both
    run it): the service's limits, each method's checks, the codes and totals of each table,
    one method for linked tables, and — given the store's ``session`` — the privacy budget's
    source and what remains of it. Returns the tables; raises the first refusal."""
    from disclosure.methods import get_method

    ctx = context or protect_context(settings)
    max_linked = int(settings.get("PROTECT_MAX_LINKED") or 0)
    if max_linked and len(items) > max_linked:
        raise LimitExceeded(R_("%(n)s tables to protect together, above the limit of %(limit)s "
                               "(setting ASHYQ_PROTECT_MAX_LINKED)"), n=len(items), limit=max_linked)
    names = {spec.disclosure.method for spec, _, _ in items}
    if len(names) > 1:
        raise ServiceError(R_("tables protected together must use one disclosure method "
                              "(given: %(names)s)"), names=", ".join(sorted(names)))
    if len(items) > 1 and not get_method(next(iter(names))).linkable:
        raise ServiceError(R_("%(label)s: linked protection is not available for this method; "
                              "protect the tables one by one"),
                           label=Word(get_method(next(iter(names))).label))
    for spec, _, _ in items:
        check_limits(spec, settings)
        method_of(spec).check(spec, ctx)
    tables = [read_cells(df, spec, source) for spec, df, source in items]
    if len(tables) > 1:
        _check_shared_cells(tables)
    if session is not None:
        for spec, _, _ in items:
            check_budget(spec, session)
    return tables


def _check_shared_cells(tables: list[CellTable]) -> None:
    """Linked tables must give a cell they share (the same non-total codes, a missing
    dimension counting as its total) the same count."""
    import numpy as np

    from disclosure.spec import TOTAL

    seen: dict[tuple, int] = {}
    for t in tables:
        names = [h.name for h in t.hierarchies]
        order = sorted(range(len(names)), key=lambda d: names[d])
        codes = [np.asarray(h.codes, dtype=object)[g] for h, g in
                 zip(t.hierarchies, t.code_arrays(), strict=True)]
        for i in range(t.n_cells):
            key = tuple((names[d], codes[d][i]) for d in order if codes[d][i] != TOTAL)
            v = int(t.values[i])
            if seen.setdefault(key, v) != v:
                label = ", ".join(f"{d}={c}" for d, c in key) or "grand total"
                raise InputError(R_("linked tables disagree on the shared cell (%(key)s): table "
                                    "%(id)s gives a different count than an earlier table"),
                                 source=t.spec.id, key=label, id=repr(t.spec.id))


def check_budget(spec: TableSpec, session: Session) -> None:
    """Refuse, before any job is queued, a draw its registered source cannot pay for (in the
    source's unit; a mechanism the source's unit does not admit is refused too)."""
    from . import budget

    budget.check_draw(session, spec)


def read_upload(name: str, data: bytes) -> pd.DataFrame:
    """An uploaded table (CSV, or the first sheet of an XLSX workbook) as text columns."""
    if name.lower().endswith(".xlsx"):
        return _read_xlsx(name, data)
    return read_table_bytes(data, source=name)


def _xlsx_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


#: an XLSX upload may inflate to at most this many bytes, and this many times its own size
XLSX_MAX_INFLATED = 200 * 2**20
XLSX_MAX_RATIO = 200


def _check_inflated(name: str, data: bytes) -> None:
    """Refuse a zip bomb before any parsing: the sum of the declared uncompressed sizes of the
    workbook's parts (and their ratio to the upload) is capped."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            inflated = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, ValueError) as e:
        raise InputError(R_("not a readable XLSX workbook (%(kind)s)"), source=name,
                         kind=type(e).__name__) from e
    if inflated > XLSX_MAX_INFLATED or inflated > XLSX_MAX_RATIO * max(len(data), 1):
        raise InputError(R_("the workbook would unpack to %(size)s MB (at most %(limit)s MB and "
                            "%(ratio)s times its size): save the table as CSV"), source=name,
                         size=f"{inflated / 2**20:.0f}", limit=f"{XLSX_MAX_INFLATED // 2**20}",
                         ratio=str(XLSX_MAX_RATIO))


def _read_xlsx(name: str, data: bytes) -> pd.DataFrame:
    """The first sheet as text. Formulas are read as their text (``=...``), never evaluated and
    never taken from a cached result, so they are refused like any other wrong code. A workbook
    that would inflate beyond :data:`XLSX_MAX_INFLATED` is refused before parsing."""
    from openpyxl import load_workbook

    _check_inflated(name, data)
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as e:  # noqa: BLE001 - any unreadable workbook is the user's input error
        raise InputError(R_("not a readable XLSX workbook (%(kind)s)"), source=name,
                         kind=type(e).__name__) from e
    try:
        rows = [[_xlsx_text(v) for v in row] for row in wb.worksheets[0].iter_rows(values_only=True)]
    finally:
        wb.close()
    while rows and not any(v.strip() for v in rows[-1]):  # trailing blank rows only, so
        rows.pop()                                          # row numbers match the sheet
    if not rows:
        raise InputError(R_("the first sheet is empty"), source=name)
    header = [h.strip() for h in rows[0]]
    width = len(header)
    body = [(r + [""] * width)[:width] for r in rows[1:]]
    return pd.DataFrame(body, columns=header, dtype=str)


def protect_upload(spec: TableSpec, table_df: pd.DataFrame, *, source: str,
                   settings: dict[str, Any], session: Session | None = None) -> ProtectOutcome:
    """Protect one uploaded table (the web UI and API entry point); any DP budget is charged in
    the request's ``session``."""
    return protect_tables([(spec, table_df, source)], settings=settings, session=session)[0]


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_published(spec_path: str, input_path: str, output_path: str, *,
                   settings: dict[str, Any]) -> Any:
    """A table already published, from its spec, the office's raw input and the published output
    (the protected CSV): a :class:`disclosure.history.PublishedTable`.

    The output is read and checked against the spec (columns, codes, flags, every cell once,
    no value in a suppressed cell); its free values must equal the raw input's and its primary
    cells must be suppressed. Errors are one line naming the file, row and column.
    """
    from datapackages.protected import read_protected

    from .history import published_table

    spec = load_spec(spec_path)
    max_bytes = int(settings["MAX_UPLOAD_BYTES"])
    raw = read_table_file(input_path, max_bytes=max_bytes)
    read_protected(spec, Path(output_path), name=output_path, check_additivity=False)
    return published_table(spec, raw, read_table_file(output_path, max_bytes=max_bytes),
                           source=output_path, raw_source=input_path)


def protect_files(jobs: list[tuple[str, str, str]], *, settings: dict[str, Any],
                  report_path: str | None = None,
                  session: Session | None = None,
                  published: list[tuple[str, str, str]] | None = None) -> list[ProtectOutcome]:
    """CLI form: [(spec path, input csv, output csv)]; writes outputs only if all succeed.

    ``published``: [(spec, raw input, published output)] of tables of the same source already
    public (read by :func:`read_published`, never written). Any DP budget is charged in
    ``session`` (flushed before the outputs are written; the caller commits)."""
    items = []
    for spec_path, input_path, _ in jobs:
        spec = load_spec(spec_path)
        items.append((spec, read_table_file(input_path, max_bytes=int(settings["MAX_UPLOAD_BYTES"])), input_path))
    history = [read_published(*job, settings=settings) for job in published or []]
    outcomes = protect_tables(items, settings=settings, session=session, published=history)
    if session is not None:
        session.flush()
    for (_, _, out_path), oc in zip(jobs, outcomes, strict=True):
        _atomic_write(Path(out_path), oc.protected_csv_bytes)
    if report_path:
        rep = outcomes[0].report.to_dict() if len(outcomes) == 1 else {
            "tables": [{"id": oc.spec.id, **oc.report.to_dict()} for oc in outcomes]}
        _atomic_write(Path(report_path), json.dumps(rep, indent=2, ensure_ascii=False).encode())
    return outcomes


def package_release(spec: TableSpec, protected_csv: Path | bytes, out_dir: Path, *,
                    report: dict | None, settings: dict[str, Any],
                    previous_version: str | None = None, name: str | None = None,
                    notice: dict[str, str] | None = None, public: bool = True) -> Any:
    """Build the Frictionless package (and its zip) of one protected table: a CSV file, or its
    bytes (``name`` names them in messages); ``notice``: a correction's ``{lang: text}``.
    ``public=False`` (an answer delivered privately): no address is cited, since the version
    has no public page."""
    from datapackages import package_table

    from .addresses import landing_url

    landing = landing_url(settings, spec.id, spec.version) if public else None
    protected = Path(protected_csv) if isinstance(protected_csv, str | Path) else bytes(protected_csv)
    return package_table(spec, protected, Path(out_dir), report=report,
                         previous_version=previous_version, landing_url=landing,
                         publisher_name=settings.get("PUBLISHER_NAME"), name=name,
                         codelist_dir=config_path("codelists"), notice=notice)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def publish_local(package_dir: Path, *, settings: dict[str, Any],
                  session: Session | None) -> PublishOutcome:
    """Copy a built package to ``OUTPUT_DIR/<series>/<version>/`` — once; a version is immutable.

    The publication is recorded in the caller's ``session`` (flushed, not committed)."""
    if session is None:
        raise ServiceError(R_("publishing to the local output folder records the version in the "
                           "store: it needs the store's session (session=...)"))
    descriptor = json.loads((package_dir / "datapackage.json").read_text("utf-8"))
    series = str(descriptor.get("name") or package_dir.name)
    version = str(descriptor.get("version") or "0.0.0")
    zip_path = package_dir.with_name(package_dir.name + ".zip")
    dest = Path(settings["OUTPUT_DIR"]) / series / version
    digest = sha256_file(zip_path) if zip_path.is_file() else ""
    if dest.exists():
        existing = dest / f"{series}-{version}.zip"
        if digest and existing.is_file() and sha256_file(existing) == digest:
            return PublishOutcome("local", str(dest), f"{series}-{version}", True, {"unchanged": True})
        raise PublishFailed(R_("%(series)s %(version)s is already published at %(dest)s; a published version is immutable: give the release a new version"), series=series, version=version, dest=dest)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent.parent if dest.parent.parent.exists() else None))
    try:
        shutil.copytree(package_dir, tmp / "package")
        if zip_path.is_file():
            shutil.copy2(zip_path, tmp / "package" / f"{series}-{version}.zip")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / "package", dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _record_local(session, series, version, dest, digest)
    return PublishOutcome("local", str(dest), f"{series}-{version}", True, {"sha256": digest})


def _record_local(session: Session, series: str, version: str, dest: Path, digest: str) -> None:
    from .models import LocalPublication

    session.add(LocalPublication(series=series, version=version, path=str(dest), sha256=digest))
    session.flush()


def publish_release(package_dir: Path, *, settings: dict[str, Any],
                    progress: Callable[[str], None] | None = None,
                    session: Session | None = None) -> PublishOutcome:
    """Publish to CKAN when ``CKAN_URL`` is configured, else to the local output folder (recorded
    in the caller's ``session``, which local publishing needs; the caller commits)."""
    package_dir = Path(package_dir)
    if not (package_dir / "datapackage.json").is_file():
        raise ServiceError(R_("%(package_dir)s: no datapackage.json (build it with 'publisher package')"), package_dir=package_dir)
    if not settings.get("CKAN_URL"):
        return publish_local(package_dir, settings=settings, session=session)
    if not settings.get("CKAN_API_TOKEN"):
        raise ServiceError(R_("CKAN_URL is set but CKAN_API_TOKEN is not"))
    from . import ckan

    try:
        res = ckan.publish_package(package_dir, url=settings["CKAN_URL"], token=settings["CKAN_API_TOKEN"],
                                   organization=settings.get("CKAN_ORGANIZATION"), progress=progress)
    except ckan.CkanPublishError as e:
        raise PublishFailed(R_("%(error)s"), retryable=getattr(e, "retryable", False),
                            error=e) from e
    return PublishOutcome("ckan", res.dataset_url, res.dataset_name, bool(res.verified),
                          {"resources": getattr(res, "resources", None)})


# -- protection in a child process (the worker's protection job) ---------------------------------

class JobRefusal(ServiceError):
    """A refusal raised in the protection process, carried back to the worker as data (its
    template and params, so it is shown in the reader's language like any refusal)."""


class ProtectionStopped(ServiceError):
    """A protection that did not finish: ``code`` says why ("time_limit", "memory_limit",
    "cancelled", "internal"); the message names the limit and its setting."""

    def __init__(self, reason: str, *, code: str, **params: Any):
        super().__init__(reason, **params)
        self.code = code


#: environment of the protection process: one thread for the numeric libraries (HiGHS runs
#: one thread already), so the memory limit is not spent on per-thread arenas
CHILD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
             "MALLOC_ARENA_MAX": "2"}
_FRAME = 8  # bytes of a frame's length prefix


def error_data(e: AshyqError) -> dict[str, Any]:
    """A refusal as JSON-able data (stored in the job row, sent from the child)."""
    from disclosure.errors import Word

    def plain(v: Any) -> Any:
        return v if isinstance(v, int | float | str | type(None)) else str(v)

    params = dict(getattr(e, "params", {}) or {})
    return {"template": str(getattr(e, "template", None) or e.reason), "type": type(e).__name__,
            "params": {k: plain(v) for k, v in params.items()},
            "words": [k for k, v in params.items() if isinstance(v, Word)],
            "source": e.source, "row": e.row, "column": e.column,
            "code": str(getattr(e, "code", "invalid_input"))}


def error_from(data: dict[str, Any]) -> JobRefusal:
    """The refusal :func:`error_data` described."""
    from disclosure.errors import Word

    params = {k: (Word(v) if k in data.get("words", ()) and isinstance(v, str) else v)
              for k, v in (data.get("params") or {}).items()}
    params.pop("source", None), params.pop("row", None), params.pop("column", None)
    try:
        err = JobRefusal(data["template"], source=data.get("source"), row=data.get("row"),
                         column=data.get("column"), **params)
    except (KeyError, TypeError, ValueError):  # a template its params do not fill
        err = JobRefusal(str(data.get("template", "")), source=data.get("source"))
    if data.get("code"):
        err.code = data["code"]
    return err


def _frame(obj: Any) -> bytes:
    import pickle

    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return len(body).to_bytes(_FRAME, "big") + body


def _send(f: Any, obj: Any) -> None:
    f.write(_frame(obj))
    f.flush()


def _send_frame(f: Any, frame: bytes) -> None:
    """Write a frame built beforehand straight to the pipe: reporting the memory limit must not
    need memory (pickling the message can itself fail once the address space is exhausted)."""
    f.flush()
    os.write(f.fileno(), frame)


def _recv(f: Any) -> Any:
    import pickle

    head = f.read(_FRAME)
    if len(head) < _FRAME:
        raise EOFError("the parent closed the pipe")
    n = int.from_bytes(head, "big")
    return pickle.loads(f.read(n))  # noqa: S301 - frames of our own parent process


def _child_settings(settings: dict[str, Any]) -> dict[str, Any]:
    from .settings import SECRET_KEYS

    return {k: v for k, v in settings.items() if k not in SECRET_KEYS
            and isinstance(v, int | float | str | bool | type(None) | list | dict)}


#: modules the protection process loads before it limits its memory
CHILD_PRELOAD = ("numpy", "scipy.sparse", "scipy.optimize", "highspy", "openpyxl",
                 "disclosure.suppression", "disclosure.secondary_heuristic",
                 "disclosure.secondary_optimal", "disclosure.audit", "disclosure.linked",
                 "disclosure.primary", "disclosure.noise", "disclosure.history",
                 "disclosure.methods.suppression", "disclosure.methods.noise", "publisher.specs",
                 "disclosure.spec_schema")


def _die_with_parent() -> None:
    """Linux: the protection process is killed when the worker that started it dies (a
    SIGKILLed worker leaves no protection running on)."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the time limit (RLIMIT_CPU) still ends it
        return
    parent = os.environ.get("ASHYQ_PROTECT_PARENT")
    if parent and os.getppid() != int(parent):  # the parent died before the call
        os._exit(1)


def child_main() -> None:
    """The protection process: reads its job from stdin (length-prefixed pickles from the
    worker), limits itself (address space ``memory_mb``, CPU time), protects, and writes
    progress, budget requests and the result to its own copy of stdout."""
    import contextlib
    import importlib
    import pickle
    import resource
    import sys

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the frames
    inp = sys.stdin.buffer
    _die_with_parent()
    job = _recv(inp)
    for m in CHILD_PRELOAD:  # code is not data: loaded before the memory limit
        with contextlib.suppress(ImportError):
            importlib.import_module(m)
    memory = _frame(("memory", None))  # built before the limit (see _send_frame)
    mem = int(job.get("memory_mb") or 0)
    if mem > 0:
        resource.setrlimit(resource.RLIMIT_AS, (mem << 20, mem << 20))
    limit = int(job.get("time_limit") or 0)
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_CPU, (limit + 5, limit + 10))
    for p in reversed(job.get("sys_path") or []):
        if p not in sys.path:
            sys.path.insert(0, p)
    try:
        from disclosure.methods import methods, register_method

        known = {m.name for m in methods()}
        for module, path, blob in job.get("methods") or ():  # plug-ins of the worker
            _importable(module, path)
            m = pickle.loads(blob)  # noqa: S301 - sent by our own parent
            if m.name not in known:
                register_method(m)
        from .specs import spec_from_mapping

        items = []
        for spec_map, name, data in job["items"]:
            items.append((spec_from_mapping(spec_map, source="spec"), read_upload(name, data),
                          name))

        def progress(phase: str, **figures: int) -> None:
            _send(out, ("progress", {"phase": phase, **figures}))

        def reserve(specs: list[TableSpec]) -> list[_Reservation | None]:
            _send(out, ("reserve", None))
            kind, data = _recv(inp)
            if kind == "refused":
                raise error_from(data)
            return [None if r is None else _Reservation(**r) for r in data]

        outcomes = protect_tables(items, settings=job["settings"], progress=progress,
                                  reserve=reserve, published=job.get("published"))
        _send(out, ("done", [{"csv": oc.protected_csv_bytes, "report": oc.report.to_dict(),
                              "budget": oc.budget} for oc in outcomes]))
    except MemoryError:
        _send_frame(out, memory)
    except ImportError as e:  # a library loaded late whose mapping the memory limit refused
        low = str(e).lower()
        if "map" in low or "memory" in low:
            _send_frame(out, memory)
        else:
            _send(out, ("internal", type(e).__name__))
    except AshyqError as e:
        if _out_of_memory(e):
            _send_frame(out, memory)
        else:
            _send(out, ("refused", error_data(e)))
    except Exception as e:  # noqa: BLE001 - reported by its type only (no values in messages)
        if _out_of_memory(e):
            _send_frame(out, memory)
            out.close()
            return
        import traceback

        # where it failed, for the operator: the frames, never the message (it may hold data)
        sys.stderr.write(f"protection process: {type(e).__name__} at\n"
                         + "".join(traceback.format_tb(e.__traceback__)))
        _send(out, ("internal", type(e).__name__))
    out.close()


def _out_of_memory(e: BaseException) -> bool:
    """Whether a failure was caused by the memory limit (a MemoryError, an ENOMEM, or the CSV
    parser's "out of memory", which pandas reports as a parser error)."""
    import errno
    seen = 0
    cur: BaseException | None = e
    while cur is not None and seen < 10:
        if isinstance(cur, MemoryError) or "out of memory" in str(cur).lower() or (
                isinstance(cur, OSError) and cur.errno == errno.ENOMEM):
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False


def _plugin_methods() -> list[tuple[str, str | None, bytes]]:
    """The registered disclosure methods that are not built in, for the child to register
    too: (module, its file, the pickled method)."""
    import pickle
    import sys

    from disclosure.methods import methods

    out = []
    for m in methods():
        module = type(m).__module__
        if module.startswith("disclosure."):
            continue
        path = getattr(sys.modules.get(module), "__file__", None)
        out.append((module, path, pickle.dumps(m)))
    return out


def _importable(module: str, path: str | None) -> None:
    """Make ``module`` importable in the child: imported by name, else loaded from its file
    (a plug-in outside sys.path, e.g. a test folder)."""
    import importlib
    import importlib.util
    import sys

    try:
        importlib.import_module(module)
        return
    except ImportError:
        if not path:
            raise
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    spec.loader.exec_module(mod)


def protect_isolated(items: list[tuple[dict[str, Any], str, bytes]], *,
                     settings: dict[str, Any],
                     reserve: Callable[[], list[dict[str, Any] | None]],
                     progress: Callable[..., None] | None = None,
                     tick: Callable[[], bool] | None = None,
                     published: list | None = None) -> list[dict[str, Any]]:
    """Protect [(spec mapping, upload name, upload bytes)] together in a child process with a
    time limit (``PROTECT_TIME_LIMIT`` s, wall clock; the child is killed) and a memory limit
    (``PROTECT_MEMORY_MB``, its address space). ``reserve()`` charges the privacy budget when
    the child is about to draw (list of reservations as dicts); ``progress(phase, **figures)``
    hears the phases; ``tick()`` is called about once a second (a heartbeat) and returns True
    to cancel. Returns per table ``{"csv", "report", "budget"}``; raises the child's refusal,
    or :class:`ProtectionStopped`."""
    import contextlib
    import pickle
    import select
    import signal
    import subprocess
    import sys
    import time

    limit = float(settings.get("PROTECT_TIME_LIMIT") or 0)
    mem = int(settings.get("PROTECT_MEMORY_MB") or 0)
    job = {"items": items, "settings": _child_settings(settings), "memory_mb": mem,
           "time_limit": int(limit), "sys_path": list(sys.path), "methods": _plugin_methods(),
           "published": list(published or [])}
    env = {**os.environ, **CHILD_ENV, "ASHYQ_PROTECT_PARENT": str(os.getpid())}
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-c", "from publisher.service import child_main; child_main()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, start_new_session=True)
    started = time.monotonic()
    buf = b""

    def kill() -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stopped_by_limit(code: str) -> ProtectionStopped:
        if code == "time_limit":
            return ProtectionStopped(R_("protection took longer than the time limit of %(limit)s "
                                        "seconds (setting ASHYQ_PROTECT_TIME_LIMIT) and was "
                                        "stopped"), code=code, limit=int(limit))
        return ProtectionStopped(R_("protection needed more memory than the limit of %(limit)s "
                                    "MiB (setting ASHYQ_PROTECT_MEMORY_MB) and was stopped"),
                                 code=code, limit=mem)

    try:
        with contextlib.suppress(BrokenPipeError):
            _send(proc.stdin, job)
        fd = proc.stdout.fileno()
        while True:
            now = time.monotonic()
            if limit and now - started > limit:
                kill()
                raise stopped_by_limit("time_limit")
            if tick is not None and tick():
                kill()
                raise ProtectionStopped(R_("protection was cancelled"), code="cancelled")
            ready, _, _ = select.select([fd], [], [], 1.0)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break  # the child ended
                buf += chunk
            while len(buf) >= _FRAME and len(buf) >= _FRAME + int.from_bytes(buf[:_FRAME], "big"):
                n = int.from_bytes(buf[:_FRAME], "big")
                kind, data = pickle.loads(buf[_FRAME:_FRAME + n])  # noqa: S301 - our child
                buf = buf[_FRAME + n:]
                if kind == "progress" and progress is not None:
                    progress(data.pop("phase"), **data)
                elif kind == "reserve":
                    try:
                        answer: tuple[str, Any] = ("reserved", reserve())
                    except AshyqError as e:
                        answer = ("refused", error_data(e))
                    _send(proc.stdin, answer)
                    if answer[0] == "refused":
                        kill()
                        raise error_from(answer[1])
                elif kind == "done":
                    proc.wait(timeout=30)
                    return data
                elif kind == "refused":
                    raise error_from(data)
                elif kind == "memory":
                    raise stopped_by_limit("memory_limit")
                elif kind == "internal":
                    raise ProtectionStopped(R_("protection failed with an internal error "
                                               "(%(kind)s)"), code="internal", kind=str(data))
        rc = proc.wait()
        if rc in (-signal.SIGXCPU, -signal.SIGKILL) and limit and \
                time.monotonic() - started > limit * 0.9:
            raise stopped_by_limit("time_limit")
        if rc in (-signal.SIGABRT, -signal.SIGSEGV, -signal.SIGBUS, -signal.SIGKILL):
            raise stopped_by_limit("memory_limit")  # an allocation the limit refused, in C code
        raise ProtectionStopped(R_("the protection process ended unexpectedly (exit status "
                                   "%(rc)s)"), code="internal", rc=rc)
    finally:
        kill()
        for f in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                f.close()
