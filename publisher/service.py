"""The service layer: protect, package and publish, shared by the CLI, the web UI and the API.

Each function takes validated inputs and settings, does the I/O, and raises an exception whose
message is one line for the user (file, row, column, reason). Raw counts of suppressed cells never
appear in a message or a log.
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
from typing import Any

import pandas as pd

from disclosure.protect import ProtectedTable, protect, protect_linked
from disclosure.spec import TableSpec
from disclosure.table import CellTable, InputError, read_cells

from .specs import load_spec

MAX_INPUT_BYTES_DEFAULT = 200 * 1024 * 1024


class ServiceError(RuntimeError):
    """A request the service refuses, with a one-line user-facing reason."""


class PublishFailed(ServiceError):
    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


@dataclass
class ProtectOutcome:
    spec: TableSpec
    published: pd.DataFrame
    report: dict[str, Any]
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


def _charge_budget(spec: TableSpec, pt: ProtectedTable, settings: dict[str, Any]) -> dict[str, Any] | None:
    """Spend epsilon from the ledger of the table's data source and reference period.

    Runs after the noise is drawn and before anything is written: a refused charge leaves no output.
    """
    if spec.disclosure.method != "noise" or spec.disclosure.noise is None:
        return None
    from disclosure.noise import release_key, with_budget

    from . import budget
    from .db import make_engine, session_factory, transaction, upgrade

    url = settings["DATABASE_URL"]
    upgrade(url)
    engine = make_engine(url)
    try:
        with transaction(session_factory(engine)) as session:
            status = budget.charge(
                session,
                source=str(spec.metadata.get("source_id") or spec.id),
                period=str(spec.metadata.get("reference_period") or "all"),
                epsilon=float(pt.report.get("privacy", {}).get("epsilon", spec.disclosure.noise.epsilon)),
                release_key=release_key(pt.published),
                total_budget=float(settings["EPSILON_BUDGET"]),
            )
    finally:
        engine.dispose()
    pt.report = with_budget(pt.report, spent=status.spent, remaining=status.remaining, total=status.total)
    return {"spent": status.spent, "remaining": status.remaining, "total": status.total}


def _protect_one(table: CellTable, settings: dict[str, Any]) -> ProtectedTable:
    if table.spec.disclosure.method == "noise":
        from disclosure.noise import protect_noise

        # rng=None: OpenDP's cryptographically secure sampler; seeds exist only in tests.
        return protect_noise(table, epsilon_ceiling=float(settings["EPSILON_CEILING"]))
    return protect(table)


def protect_tables(items: list[tuple[TableSpec, pd.DataFrame, str]], *,
                   settings: dict[str, Any]) -> list[ProtectOutcome]:
    """Protect one table, or several linked tables of one release, and charge any DP budget."""
    from disclosure.noise import check_epsilon

    for spec, _, _ in items:
        if spec.disclosure.method == "noise" and spec.disclosure.noise is not None:
            check_epsilon(spec.disclosure.noise.epsilon, float(settings["EPSILON_CEILING"]))
    tables: list[CellTable] = [read_cells(df, spec, source) for spec, df, source in items]
    results = [_protect_one(tables[0], settings)] if len(tables) == 1 else protect_linked(tables)
    out = []
    for (spec, _, _), pt in zip(items, results, strict=True):
        if spec.disclosure.method == "noise" and not pt.report.get("differentially_private", False):
            raise ServiceError("the noise was not drawn by the production sampler; refusing to release it")
        budget_status = _charge_budget(spec, pt, settings)
        out.append(ProtectOutcome(spec=spec, published=pt.published, report=pt.report,
                                  protected_csv_bytes=protected_csv_bytes(pt.published),
                                  budget=budget_status))
    return out


def protect_upload(spec: TableSpec, table_df: pd.DataFrame, *, source: str,
                   settings: dict[str, Any], session: Any = None) -> ProtectOutcome:
    """Protect one uploaded table (the web UI and API entry point)."""
    return protect_tables([(spec, table_df, source)], settings=settings)[0]


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


def protect_files(jobs: list[tuple[str, str, str]], *, settings: dict[str, Any],
                  report_path: str | None = None) -> list[ProtectOutcome]:
    """CLI form: [(spec path, input csv, output csv)]; writes outputs only if all succeed."""
    items = []
    for spec_path, input_path, _ in jobs:
        spec = load_spec(spec_path)
        items.append((spec, read_table_file(input_path, max_bytes=int(settings["MAX_UPLOAD_BYTES"])), input_path))
    outcomes = protect_tables(items, settings=settings)
    for (_, _, out_path), oc in zip(jobs, outcomes, strict=True):
        _atomic_write(Path(out_path), oc.protected_csv_bytes)
    if report_path:
        rep = outcomes[0].report if len(outcomes) == 1 else {
            "tables": [{"id": oc.spec.id, **oc.report} for oc in outcomes]}
        _atomic_write(Path(report_path), json.dumps(rep, indent=2, ensure_ascii=False).encode())
    return outcomes


def package_release(spec: TableSpec, protected_csv: Path, out_dir: Path, *, report: dict | None,
                    settings: dict[str, Any], previous_version: str | None = None) -> Any:
    """Build the Frictionless package (and its zip) of one protected table."""
    from datapackages import package_table

    landing = f"{settings['PUBLIC_BASE_URL'].rstrip('/')}/v/{spec.id}/{spec.version}"
    return package_table(spec, Path(protected_csv), Path(out_dir), report=report,
                         previous_version=previous_version, landing_url=landing,
                         publisher_name=settings.get("PUBLISHER_NAME"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def publish_local(package_dir: Path, *, settings: dict[str, Any]) -> PublishOutcome:
    """Copy a built package to ``OUTPUT_DIR/<series>/<version>/`` — once; a version is immutable."""
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
    _record_local(settings, series, version, dest, digest)
    return PublishOutcome("local", str(dest), f"{series}-{version}", True, {"sha256": digest})


def _record_local(settings: dict[str, Any], series: str, version: str, dest: Path, digest: str) -> None:
    from .db import make_engine, session_factory, transaction, upgrade
    from .models import LocalPublication

    upgrade(settings["DATABASE_URL"])
    engine = make_engine(settings["DATABASE_URL"])
    try:
        with transaction(session_factory(engine)) as session:
            session.add(LocalPublication(series=series, version=version, path=str(dest), sha256=digest))
    finally:
        engine.dispose()


def publish_release(package_dir: Path, *, settings: dict[str, Any],
                    progress: Callable[[str], None] | None = None) -> PublishOutcome:
    """Publish to CKAN when ``CKAN_URL`` is configured, else to the local output folder."""
    package_dir = Path(package_dir)
    if not (package_dir / "datapackage.json").is_file():
        raise ServiceError(f"{package_dir}: no datapackage.json (build it with 'publisher package')")
    if not settings.get("CKAN_URL"):
        return publish_local(package_dir, settings=settings)
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
