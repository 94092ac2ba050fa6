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

from disclosure.errors import AshyqError
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
    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
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
        raise InputError("no such file", source=src)
    size = p.stat().st_size
    if size > max_bytes:
        raise InputError(f"the file is {size} bytes, above the limit of {max_bytes}", source=src)
    return read_table_bytes(p.read_bytes(), source=src)


def read_table_bytes(data: bytes, *, source: str) -> pd.DataFrame:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (byte {e.start})", source=source) from e
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False,
                         skipinitialspace=True)
    except pd.errors.EmptyDataError as e:
        raise InputError("the file is empty", source=source) from e
    except pd.errors.ParserError as e:
        raise InputError(f"malformed CSV: {str(e).strip().splitlines()[-1]}", source=source) from e
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
    epsilon: float
    spent: float
    remaining: float
    total: float


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
        raise ServiceError(f"a {method.label} release charges the privacy budget: it needs the "
                           "store's session (session=...)")
    import uuid

    from . import budget

    source = budget.source_of(session, spec).id
    period = budget.period_key(spec)
    st = budget.charge(session, source=source, period=period, epsilon=cost,
                       draw_key=f"draw-{uuid.uuid4().hex}")
    return _Reservation(source=source, period=period, epsilon=float(cost), spent=st.spent,
                        remaining=st.remaining, total=st.total)


def _record_budget(spec: TableSpec, pt: ProtectedTable,
                   res: _Reservation | None) -> dict[str, Any] | None:
    """Put the reservation in the report: what this release spent, the source's total spend."""
    if res is None:
        return None
    method = method_of(spec)
    pt.report = method.with_budget(pt.report, spent=res.spent, remaining=res.remaining,
                                   total=res.total, this_release=res.epsilon)
    return {"this_release": res.epsilon, "spent": res.spent, "remaining": res.remaining,
            "total": res.total, "source": res.source, "period": res.period}


def protect_context(settings: dict[str, Any]) -> ProtectContext:
    """The service's limits for protection; noise comes from the cryptographic sampler (no seed)."""
    return ProtectContext(epsilon_ceiling=float(settings["EPSILON_CEILING"]), rng=None,
                          settings=dict(settings))


def protect_tables(items: list[tuple[TableSpec, pd.DataFrame, str]], *,
                   settings: dict[str, Any], session: Session | None = None,
                   published: list | None = None) -> list[ProtectOutcome]:
    """Protect one table, or several linked tables of one release, and charge any DP budget
    in ``session`` (needed for noise; the caller commits). ``published``: the tables of the
    same source already public (:class:`disclosure.history.PublishedTable`, e.g. from
    :func:`read_published`); the attacker holds them."""
    ctx = protect_context(settings)
    ctx.published = list(published or [])
    for spec, _, _ in items:
        method_of(spec).check(spec, ctx)
    tables: list[CellTable] = [read_cells(df, spec, source) for spec, df, source in items]
    reserved: list[_Reservation | None] = []

    def reserve() -> None:  # after every check, before the draw
        reserved[:] = [_reserve_budget(spec, settings, session) for spec, _, _ in items]

    ctx.before_draw = reserve
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
    import numpy as np

    from datapackages.protected import read_protected
    from disclosure.history import PublishedTable
    from disclosure.primary import primary_mask

    spec = load_spec(spec_path)
    max_bytes = int(settings["MAX_UPLOAD_BYTES"])
    table = read_cells(read_table_file(input_path, max_bytes=max_bytes), spec, input_path)
    read_protected(spec, Path(output_path), name=output_path, check_additivity=False)
    df = read_table_file(output_path, max_bytes=max_bytes)
    dims = list(spec.dimension_names)
    status = np.full(table.n_cells, "F", dtype="<U1")
    prim, _ = primary_mask(table, spec.disclosure) if hasattr(spec.disclosure, "min_frequency") \
        else (np.zeros(table.n_cells, dtype=bool), {})
    cols = [df[d].str.strip().to_numpy() for d in dims]
    conf = df["conf_status"].str.strip().to_numpy()
    obs = df[spec.measure].str.strip().to_numpy()
    for r in range(len(df)):
        cell = table.cell_id({d: c[r] for d, c in zip(dims, cols, strict=True)})
        status[cell] = conf[r]
        if conf[r] == "F" and int(obs[r]) != int(table.values[cell]):
            raise ServiceError(f"the published value does not match the raw input {input_path} "
                               "(the output was not made from this input)", source=output_path,
                               row=r + 2, column=spec.measure)
        if conf[r] == "F" and prim[cell]:
            raise ServiceError(f"a cell that spec {spec.id} makes primary-sensitive is published "
                               "(the output was not protected with this spec)",
                               source=output_path, row=r + 2, column="conf_status")
    return PublishedTable(table=table, conf_status=status, source=output_path)


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
                    previous_version: str | None = None, name: str | None = None) -> Any:
    """Build the Frictionless package (and its zip) of one protected table: a CSV file, or its
    bytes (``name`` names them in messages)."""
    from datapackages import package_table

    landing = f"{settings['PUBLIC_BASE_URL'].rstrip('/')}/v/{spec.id}/{spec.version}"
    protected = Path(protected_csv) if isinstance(protected_csv, str | Path) else bytes(protected_csv)
    return package_table(spec, protected, Path(out_dir), report=report,
                         previous_version=previous_version, landing_url=landing,
                         publisher_name=settings.get("PUBLISHER_NAME"), name=name,
                         codelist_dir=config_path("codelists"))


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
        raise ServiceError("publishing to the local output folder records the version in the "
                           "store: it needs the store's session (session=...)")
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
        raise PublishFailed(f"{series} {version} is already published at {dest}; a published version is "
                            "immutable: give the release a new version")
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
        raise ServiceError(f"{package_dir}: no datapackage.json (build it with 'publisher package')")
    if not settings.get("CKAN_URL"):
        return publish_local(package_dir, settings=settings, session=session)
    if not settings.get("CKAN_API_TOKEN"):
        raise ServiceError("CKAN_URL is set but CKAN_API_TOKEN is not")
    from . import ckan

    try:
        res = ckan.publish_package(package_dir, url=settings["CKAN_URL"], token=settings["CKAN_API_TOKEN"],
                                   organization=settings.get("CKAN_ORGANIZATION"), progress=progress)
    except ckan.CkanPublishError as e:
        raise PublishFailed(str(e), retryable=getattr(e, "retryable", False)) from e
    return PublishOutcome("ckan", res.dataset_url, res.dataset_name, bool(res.verified),
                          {"resources": getattr(res, "resources", None)})
