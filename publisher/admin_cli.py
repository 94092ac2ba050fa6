"""Administration commands added to ``publisher``: users, the task worker, the audit export.

``publisher create-admin USERNAME`` asks for the password (or reads it from the environment
variable named by ``--password-env``); passwords are never taken as a command-line argument, so
they do not end up in shell history or the process list.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from sqlalchemy import select

from .db import make_engine, session_factory, transaction, upgrade
from .settings import load_settings

USERNAME_HELP = "2-64 characters: a-z 0-9 _ . - (starting with a letter or digit)"


def _factory():  # noqa: ANN202
    settings = load_settings()
    upgrade(settings["DATABASE_URL"])
    return session_factory(make_engine(settings["DATABASE_URL"]))


def _password(password_env: str | None) -> str:
    if password_env:
        value = os.environ.get(password_env)
        if not value:
            raise click.UsageError(f"the environment variable {password_env} is empty or unset")
        return value
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _create(username: str, display_name: str, roles: list[str], password_env: str | None) -> None:
    import re

    from .security_models import PasswordRejected, password_problem
    from .workflow import audit
    from .workflow_models import User

    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{1,63}", username):
        raise click.UsageError(f"user name {username!r}: {USERNAME_HELP}")
    password = _password(password_env)
    try:
        password_problem(password, username, int(load_settings()["PASSWORD_MIN_LENGTH"]))
    except PasswordRejected as e:
        raise click.ClickException(str(e)) from e
    factory = _factory()
    try:
        with transaction(factory) as s:
            if s.scalar(select(User.id).where(User.username == username)):
                raise click.ClickException(f"the user {username!r} exists already")
            u = User(username=username, display_name=display_name or username, password_hash="",
                     active=True)
            try:
                u.set_password(password)
                u.set_roles(roles)
            except ValueError as e:
                raise click.ClickException(str(e)) from e
            s.add(u)
            s.flush()
            audit(s, None, "user_created", detail={"user": username, "roles": sorted(roles),
                                                   "via": "cli"})
    finally:
        factory.kw["bind"].dispose()
    click.echo(f"created {username} ({', '.join(sorted(roles))})", err=True)


@click.command("create-admin")
@click.argument("username")
@click.option("--name", "display_name", default="", help="Full name shown in the UI.")
@click.option("--password-env", metavar="VAR",
              help="Read the password from this environment variable instead of prompting.")
def create_admin(username: str, display_name: str, password_env: str | None) -> None:
    """Create an administrator (who can then create preparers and approvers in the web UI)."""
    _create(username, display_name, ["admin"], password_env)


@click.command("create-user")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice(["preparer", "approver", "admin"]),
              help="Give once per role (--role preparer --role approver).")
@click.option("--name", "display_name", default="", help="Full name shown in the UI.")
@click.option("--password-env", metavar="VAR",
              help="Read the password from this environment variable instead of prompting.")
def create_user(username: str, roles: tuple[str, ...], display_name: str,
                password_env: str | None) -> None:
    """Create a preparer, an approver or an administrator."""
    _create(username, display_name, list(roles), password_env)


@click.command("create-token")
@click.argument("username")
@click.option("--name", default="cli", help="A label for the token.")
def create_token(username: str, name: str) -> None:
    """Issue an API token for a user; prints it once (only its hash is stored)."""
    from .workflow import audit
    from .workflow_models import ApiToken, User

    factory = _factory()
    try:
        with transaction(factory) as s:
            u = s.scalar(select(User).where(User.username == username))
            if u is None:
                raise click.ClickException(f"no user {username!r}")
            tok, clear = ApiToken.issue(u, name)
            s.add(tok)
            audit(s, None, "token_issued", detail={"user": username, "prefix": tok.prefix,
                                                   "via": "cli"})
    finally:
        factory.kw["bind"].dispose()
    click.echo(clear)


@click.command("worker")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 16),
              help="Worker threads.")
def worker(workers: int) -> None:
    """Run the background publisher (Huey consumer: SQLite queue, or Redis with HUEY_URL)."""
    from . import tasks

    settings = load_settings()
    upgrade(settings["DATABASE_URL"])
    where = ("Redis" if settings.get("HUEY_URL")
             else f"SQLite ({settings.get('HUEY_SQLITE') or 'instance/huey.db'})")
    click.echo(f"publisher worker: {workers} thread(s), queue in {where}", err=True)
    tasks.run_worker(workers)


@click.command("audit-export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here instead of standard output.")
@click.option("--release", "release_id", type=int, help="Only this release's rows.")
def audit_export(fmt: str, output: Path | None, release_id: int | None) -> None:
    """Export the append-only audit log (who, when, what, from, to, why)."""
    from .web.api import AuditSchema
    from .web.exports import audit_csv
    from .workflow import audit, audit_rows

    factory = _factory()
    try:
        with transaction(factory) as s:
            rows = list(audit_rows(s, release_id))
            text = (audit_csv(rows) if fmt == "csv"
                    else json.dumps(AuditSchema(many=True).dump(rows), ensure_ascii=False,
                                    indent=2))
            audit(s, None, "audit_export", detail={"rows": len(rows), "format": fmt,
                                                   "via": "cli"})
    finally:
        factory.kw["bind"].dispose()
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"{len(rows)} rows written to {output}", err=True)
    else:
        sys.stdout.write(text)


@click.command("audit-verify")
def audit_verify() -> None:
    """Check the audit log's hash chain: exit 1 naming the first row that was changed."""
    from .workflow import verify_audit_chain

    factory = _factory()
    try:
        with factory() as s:
            ok, bad, n = verify_audit_chain(s)
    finally:
        factory.kw["bind"].dispose()
    if not ok:
        click.echo(f"error: the audit log was tampered with at row {bad} ({n} rows checked)",
                   err=True)
        sys.exit(1)
    click.echo(f"audit log intact: {n} rows, hash chain verified", err=True)


@click.group("source")
def source() -> None:
    """Registered data sources and their privacy budget (total epsilon per reference period).

    A noise release names its source in the spec (source_id); only registered sources can be
    charged. The total changes only by 'source set-budget', audited with a reason.
    """


def _budget_error(e: ValueError) -> click.ClickException:
    return click.ClickException(str(e))


@source.command("add")
@click.argument("source_id", metavar="ID")
@click.option("--budget", "total", type=float, default=None,
              help="Total budget per reference period, in --unit (default: the EPSILON_BUDGET "
                   "setting, for epsilon).")
@click.option("--unit", type=click.Choice(["epsilon", "rho"]), default="epsilon", show_default=True,
              help="epsilon: pure differential privacy (Laplace); rho: zero-concentrated "
                   "(gaussian; a Laplace release at epsilon is charged epsilon**2/2).")
def source_add(source_id: str, total: float | None, unit: str) -> None:
    """Register a data source (ID: a-z 0-9 - _; stored lower-case)."""
    from . import budget

    settings = load_settings()
    if total is None and unit != "epsilon":
        raise click.UsageError("--budget is required with --unit rho")
    amount = float(settings["EPSILON_BUDGET"]) if total is None else total
    factory = _factory()
    try:
        with transaction(factory) as s:
            try:
                src = budget.add_source(s, source_id, amount, via="cli", unit=unit)
            except ValueError as e:
                raise _budget_error(e) from e
            key, given = src.id, src.total
    finally:
        factory.kw["bind"].dispose()
    click.echo(f"registered source {key} with a budget of {unit} {given:g} per reference period"
               + (" (the EPSILON_BUDGET setting)" if total is None else ""), err=True)


@source.command("list")
def source_list() -> None:
    """The registered sources: total, and what each reference period has spent."""
    from sqlalchemy import select as sel

    from . import budget

    factory = _factory()
    try:
        with factory() as s:
            rows = []
            for src in budget.sources(s):
                periods = s.execute(sel(budget.PrivacyBudget.period, budget.PrivacyBudget.spent)
                                    .where(budget.PrivacyBudget.source == src.id)
                                    .order_by(budget.PrivacyBudget.period)).all()
                spent = "; ".join(f"{p} spent {v:g}, left {max(0.0, src.total - v):g}"
                                  for p, v in periods) or "nothing spent"
                unit = getattr(src, "unit", "epsilon")
                rows.append(f"{src.id}\tbudget {unit} {src.total:g} per period\t{spent}")
    finally:
        factory.kw["bind"].dispose()
    if not rows:
        click.echo("no registered sources (add one: publisher source add ID --budget E)",
                   err=True)
    for r in rows:
        click.echo(r)


@source.command("set-budget")
@click.argument("source_id", metavar="ID")
@click.argument("total", metavar="E", type=float)
@click.option("--reason", required=True, help="Why the total changes (kept in the audit log).")
def source_set_budget(source_id: str, total: float, reason: str) -> None:
    """Change a registered source's total epsilon per reference period (audited)."""
    from . import budget

    factory = _factory()
    try:
        with transaction(factory) as s:
            try:
                src = budget.set_source_budget(s, source_id, total, reason=reason, via="cli")
            except ValueError as e:
                raise _budget_error(e) from e
            key, given = src.id, src.total
    finally:
        factory.kw["bind"].dispose()
    click.echo(f"source {key}: budget set to epsilon {given:g} per reference period", err=True)


def _set_active(username: str, active: bool) -> None:
    from .security_models import AccountRefused, set_active
    from .workflow_models import User

    factory = _factory()
    try:
        with transaction(factory) as s:
            u = s.scalar(select(User).where(User.username == username))
            if u is None:
                raise click.ClickException(f"no user {username!r}")
            try:
                set_active(s, None, u, active)
            except AccountRefused as e:
                raise click.ClickException(str(e)) from e
    finally:
        factory.kw["bind"].dispose()
    click.echo(f"{username}: {'active' if active else 'deactivated (sessions ended, tokens revoked)'}",
               err=True)


@click.command("deactivate-user")
@click.argument("username")
def deactivate_user(username: str) -> None:
    """Deactivate a user: their sessions end and their API tokens are revoked at once."""
    _set_active(username, False)


@click.command("activate-user")
@click.argument("username")
def activate_user(username: str) -> None:
    """Reactivate a deactivated user (their old tokens stay revoked)."""
    _set_active(username, True)


@click.command("revoke-token")
@click.argument("prefix_or_user")
@click.option("--all", "all_of_user", is_flag=True,
              help="PREFIX_OR_USER is a user name: revoke every token of that user.")
def revoke_token(prefix_or_user: str, all_of_user: bool) -> None:
    """Revoke an API token by its prefix (as shown on the Account page, e.g. ashyq_AbCdE),
    or with --all every token of a user."""
    from .security_models import revoke_token as revoke
    from .workflow_models import ApiToken, User

    factory = _factory()
    try:
        with transaction(factory) as s:
            if all_of_user:
                u = s.scalar(select(User).where(User.username == prefix_or_user))
                if u is None:
                    raise click.ClickException(f"no user {prefix_or_user!r}")
                toks = s.scalars(select(ApiToken).where(ApiToken.user_id == u.id,
                                                        ApiToken.revoked_at.is_(None))).all()
            else:
                key = prefix_or_user.rstrip("…").strip()
                if len(key) < 8:
                    raise click.UsageError("give the token's prefix of 8 to 12 characters")
                toks = s.scalars(select(ApiToken).where(ApiToken.prefix.startswith(key[:12]),
                                                        ApiToken.revoked_at.is_(None))).all()
                if len(toks) > 1:
                    raise click.ClickException(f"{len(toks)} tokens start with {key!r}; "
                                               "give more of the prefix")
                if not toks:
                    raise click.ClickException(f"no unrevoked token starts with {key!r}")
            for tok in toks:
                revoke(s, None, tok)
            n = len(toks)
    finally:
        factory.kw["bind"].dispose()
    click.echo(f"revoked {n} token(s)", err=True)


@click.group("requests")
def requests_group() -> None:
    """Data requests from NGOs, academia and media (see the README's "Data requests")."""


@requests_group.command("remind")
def requests_remind() -> None:
    """Remind assignees at 75% of the time and the head of unit when a request is overdue;
    then send every queued email (retrying failed ones). Run it daily (cron or a timer)."""
    from . import requests as rq

    settings = load_settings()
    factory = _factory()
    try:
        with transaction(factory) as s:
            res = rq.remind(s, settings)
    finally:
        factory.kw["bind"].dispose()
    click.echo(f"{res.reminded} reminder(s) at 75% of the time, {res.overdue} overdue notice(s), "
               f"{res.no_address} without an address to send to; mail sent {res.sent}, "
               f"failed {res.failed}", err=True)
    if res.failed:
        sys.exit(1)


commands: list[click.Command] = [create_admin, create_user, create_token, worker, audit_export,
                                 audit_verify, source, deactivate_user, activate_user,
                                 revoke_token, requests_group]
