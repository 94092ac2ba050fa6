"""The ``publisher`` command: a thin layer over ``publisher.service``.

Every command exits 0 on success and, on a refusal, non-zero with one line on stderr naming the
file, row, column and reason. Unexpected errors print their type only (never data) unless
``ASHYQ_DEBUG=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from disclosure.errors import AshyqError, user_message
from disclosure.report import ProtectionReport

from .settings import config_path, load_settings

EXIT_REFUSED = 1
EXIT_INTERNAL = 3
SAMPLE_DIR = config_path("sample")


def refusing(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a refusal (any :class:`AshyqError`) into one line on stderr and exit 1; anything
    else is an internal error: its type only (never data) and exit 3."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AshyqError as e:
            click.echo(f"error: {user_message(e)}", err=True)
            sys.exit(EXIT_REFUSED)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as e:
            if os.environ.get("ASHYQ_DEBUG") == "1":
                raise
            click.echo(f"error: internal error ({type(e).__name__}); run with ASHYQ_DEBUG=1 for details",
                       err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper


def _summary(report: ProtectionReport) -> str:
    from disclosure.methods import get_method

    return get_method(report.method).summary(report)


def _read_report(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AshyqError(f"not a JSON report ({type(e).__name__})", source=path) from None
    if not isinstance(data, dict):
        raise AshyqError("the report must be a JSON object", source=path)
    return data


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Ashyq: protect aggregated migration tables, package them and publish them as open data.

    \b
    Typical flow:
      publisher protect SPEC INPUT.csv -o PROTECTED.csv --report REPORT.json
      publisher package SPEC PROTECTED.csv -o DIR --report REPORT.json
      publisher publish DIR
    Settings come from config/defaults.yaml and ASHYQ_* environment variables (see README).
    """


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.argument("input_csv", metavar="INPUT.csv", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Protected table (CSV): every cell with obs_status/conf_status flags "
                   "(required unless --dry-run).")
@click.option("--report", type=click.Path(dir_okay=False), help="Write the disclosure report (JSON) here.")
@click.option("--dry-run", is_flag=True,
              help="Check the spec and input and print what the run would do — for noise the "
                   "margin of error of every level per epsilon and what the draw would spend of "
                   "the source's budget — without drawing, charging or writing anything.")
@click.option("--link", nargs=3, multiple=True, metavar="SPEC INPUT.csv OUTPUT.csv",
              help="A linked table of the same release, protected together with the first "
                   "(suppression: shared cells suppressed in all or none; noise: one budget, "
                   "charged once, split over the tables, and a shared cell published with one "
                   "value). Repeatable.")
@click.option("--published", nargs=3, multiple=True, metavar="SPEC_k IN_k.csv OUT_k.csv",
              help="A table of the same source already published: its spec, the raw input and "
                   "the protected output that was published. The attacker holds it: its pattern "
                   "is fixed and the audit runs on the joint system (versions, periods, shared "
                   "cells). Repeatable; nothing is written to these files.")
@refusing
def protect(spec: str, input_csv: str, output: str | None, report: str | None,
            link: tuple[tuple[str, str, str], ...],
            published: tuple[tuple[str, str, str], ...] = (), dry_run: bool = False) -> None:
    """Protect a table: cell suppression (primary + secondary + audit) or DP noise, per the SPEC.

    INPUT.csv is long format: one column per dimension (codes; totals coded _T) and obs_value.
    Nothing is written unless the whole table is protected and passes its checks.
    """
    from .db import session_scope
    from .service import protect_files

    settings = load_settings()
    if dry_run:
        from . import accuracy

        with session_scope(settings) as session:
            d = accuracy.dry_run(spec, input_csv, settings=settings, session=session)
            session.rollback()  # a dry run writes nothing, not even a ledger row
        click.echo(accuracy.format_dry_run(d))
        return
    if not output:
        raise click.UsageError("Missing option '-o' / '--output' (or give --dry-run).")
    t0 = time.perf_counter()
    with session_scope(settings) as session:
        outcomes = protect_files([(spec, input_csv, output), *link], settings=settings,
                                 report_path=report, session=session,
                                 published=list(published))
    for oc, out in zip(outcomes, [output, *[x[2] for x in link]], strict=True):
        click.echo(f"{out}: {_summary(oc.report)} ({time.perf_counter() - t0:.1f} s)", err=True)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.argument("protected_csv", metavar="PROTECTED.csv", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Package folder to create (DIR/datapackage.json); DIR.zip is written beside it.")
@click.option("--report", type=click.Path(dir_okay=False, exists=True),
              help="The report of 'publisher protect' (method figures for the metadata).")
@click.option("--previous-version", help="Version published before this one (refused if not lower).")
@refusing
def package(spec: str, protected_csv: str, out_dir: str, report: str | None,
            previous_version: str | None) -> None:
    """Build a validated Frictionless data package (kk/ru/en metadata, flags, code lists, citation)."""
    from .service import package_release
    from .specs import load_spec

    settings = load_settings()
    table_spec = load_spec(spec)
    rep = _read_report(report) if report else None
    res = package_release(table_spec, Path(protected_csv), Path(out_dir), report=rep,
                          settings=settings, previous_version=previous_version)
    click.echo(f"{res.path}: data package written and validated; zip {res.zip_path}", err=True)


@main.command()
@click.argument("package_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--ckan-url", help="CKAN to publish to (default: CKAN_URL; token from CKAN_API_TOKEN).")
@refusing
def publish(package_dir: str, ckan_url: str | None) -> None:
    """Publish a built package as a new immutable version: to CKAN if configured, else locally."""
    from .db import session_scope
    from .service import publish_release

    overrides = {"CKAN_URL": ckan_url} if ckan_url else {}
    settings = load_settings(overrides)
    with session_scope(settings) as session:
        res = publish_release(Path(package_dir), settings=settings,
                              progress=lambda msg: click.echo(f"  {msg}", err=True), session=session)
    where = "CKAN" if res.target == "ckan" else "the local output folder"
    click.echo(f"published {res.dataset_name} to {where}: {res.url}"
               f"{' (verified)' if res.verified else ' (NOT verified)'}")


@main.command()
@click.option("--output", "out", type=click.Path(file_okay=False), default=None,
              help="Working folder of the demo (default: output/demo; wiped first).")
@refusing
def demo(out: str | None) -> None:
    """Run the whole flow on the shipped SYNTHETIC sample: protect → package → publish.

    Two linked tables of migrant children (region × citizenship × age × sex, and region × family
    situation) are protected together, packaged in kk/ru/en and published: to CKAN when CKAN_URL
    and CKAN_API_TOKEN are set, otherwise to a local output folder.
    """
    from .db import session_scope
    from .service import package_release, protect_files, publish_release
    from .specs import load_spec

    settings = load_settings()
    work = Path(out) if out else Path(settings["OUTPUT_DIR"]) / "demo"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    if not settings.get("CKAN_URL"):
        settings["OUTPUT_DIR"] = str(work / "published")
    if "ASHYQ_DATABASE_URL" not in os.environ:
        # The demo keeps its own store beside its output, so a re-run starts clean.
        settings["DATABASE_URL"] = f"sqlite:///{work.resolve() / 'demo.sqlite'}"
    click.echo("Ashyq demo on SYNTHETIC data (config/sample, made by scripts/make_sample.py)")
    names = ["children", "family"]
    jobs = [(str(SAMPLE_DIR / f"{n}.yaml"), str(SAMPLE_DIR / f"{n}.csv"), str(work / f"{n}.protected.csv"))
            for n in names]
    # One transaction for the whole run: the budget charges and the local publications are
    # recorded together when every step succeeded.
    with session_scope(settings) as session:
        click.echo("1/3 protect: both tables together (they share the region totals) ...")
        t0 = time.perf_counter()
        outcomes = protect_files(jobs, settings=settings, report_path=str(work / "report.json"),
                                 session=session)
        for n, oc in zip(names, outcomes, strict=True):
            click.echo(f"    {n}: {_summary(oc.report)}")
            for w in oc.report.warnings:
                click.echo(f"    warning: {w}")
            (work / f"{n}.report.json").write_text(json.dumps(oc.report.to_dict(), indent=2, ensure_ascii=False), "utf-8")
        click.echo(f"    done in {time.perf_counter() - t0:.1f} s")
        click.echo("2/3 package: Frictionless data packages with kk/ru/en metadata ...")
        packages = []
        for n, oc in zip(names, outcomes, strict=True):
            spec = load_spec(SAMPLE_DIR / f"{n}.yaml")
            res = package_release(spec, work / f"{n}.protected.csv", work / "packages" / spec.id,
                                  report=oc.report.to_dict(), settings=settings)
            packages.append(res.path)
            click.echo(f"    {spec.id}: {res.path} (+ {Path(res.zip_path).name})")
        click.echo("3/3 publish ...")
        for p in packages:
            res = publish_release(Path(p), settings=settings,
                                  progress=lambda m: click.echo(f"    {m}"), session=session)
            where = "CKAN" if res.target == "ckan" else "local folder"
            click.echo(f"    {res.dataset_name} -> {where}: {res.url}")
    click.echo(f"Demo release complete. Everything is under {work}")


@main.group()
def db() -> None:
    """The service's own database (SQLite by default, PostgreSQL by ASHYQ_DATABASE_URL)."""


@db.command("upgrade")
@refusing
def db_upgrade() -> None:
    """Create or migrate the database to the newest schema."""
    from .db import upgrade

    settings = load_settings()
    upgrade(settings["DATABASE_URL"])
    click.echo("database is at the newest schema", err=True)


def _add_optional_commands() -> None:
    try:
        from .admin_cli import commands
    except ModuleNotFoundError as e:
        if e.name != f"{__package__}.admin_cli":
            raise
        return
    for cmd in commands:
        main.add_command(cmd)


_add_optional_commands()


if __name__ == "__main__":
    main()
