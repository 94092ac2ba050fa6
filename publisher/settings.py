"""Settings: ``config/defaults.yaml`` overridden by environment variables ``ASHYQ_<KEY>``.

Values from the environment are parsed as YAML scalars (``ASHYQ_EPSILON_CEILING=2`` is a number).
``CKAN_URL`` and ``CKAN_API_TOKEN`` are read unprefixed too, as ``scripts/ckan-local.sh`` prints
them. Secrets come only from the environment and are never logged.

Configuration files (defaults, code lists, the sample, the CKAN schema) are found by
:func:`config_path`: the copy of ``config/`` a wheel ships as the package data
``publisher._config``, else the checkout's ``config/``. Relative paths in the settings
(``OUTPUT_DIR``, ``WORK_DIR``, a SQLite ``DATABASE_URL``) are relative to :func:`base_dir`: the
checkout when running from one, else the current working directory.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from disclosure.errors import R_, AshyqError

ROOT = Path(__file__).resolve().parent.parent  # the checkout, when running from one
PACKAGED_CONFIG = "publisher._config"  # config/ inside a wheel (pyproject.toml: package-dir)
SECRET_KEYS = {"SECRET_KEY", "CKAN_API_TOKEN", "DATABASE_URL", "SMTP_PASSWORD"}
# Settings of data requests (publisher/requests.py) and their email (publisher/mail.py);
# each can be overridden by ASHYQ_<KEY> like the keys of config/defaults.yaml.
REQUEST_DEFAULTS: dict[str, Any] = {
    "SMTP_HOST": None, "SMTP_PORT": 25, "SMTP_USER": None, "SMTP_PASSWORD": None,
    "SMTP_FROM": "ashyq@localhost", "SMTP_STARTTLS": False, "SMTP_TIMEOUT": 20,
    "REQUEST_STANDARD_DAYS": 20,           # service standard, working days
    "HEAD_OF_UNIT_EMAIL": None,            # told when a request is overdue
    "REQUEST_TIMEZONE": "Asia/Almaty",     # the office's calendar day
    "REQUEST_CONFIRM_HOURS": 48,           # life of an email confirmation link
    "REQUEST_DOWNLOAD_DAYS": 14,           # life of a private download link
    "REQUEST_RATE_PER_EMAIL": 3,           # requests per email address per 24 h
    "REQUEST_RATE_PER_ADDRESS": 10,        # requests per client address per 24 h
    "REQUEST_FORM_MIN_SECONDS": 3,         # anti-spam: a form sent faster is refused
    "REQUEST_FORM_MAX_HOURS": 12,          # anti-spam: an older form is refused
}
# Settings of protection jobs (publisher/tasks.py runs them in a child process).
PROTECT_DEFAULTS: dict[str, Any] = {
    "PROTECT_TIME_LIMIT": 900,             # seconds of one protection job (the child is killed)
    "PROTECT_MEMORY_MB": 2048,             # address space of the protection process, MiB
    "PROTECT_MAX_CELLS": 250_000,          # cells per table, every total included
    "PROTECT_MAX_CODES": 5_000,            # codes per dimension, totals included
    "PROTECT_MAX_LINKED": 5,               # tables protected together in one job
    "PROTECT_ISOLATION": "process",        # "process" (limits enforced) or "inline" (tests)
    "PROTECT_HEARTBEAT": 2,                # seconds between the running job's heartbeats
    "PROTECT_STALE_AFTER": 30,             # a running job without a heartbeat for this long failed
    "PROTECT_ENQUEUE": True,               # hand new protection jobs to the task queue
}
UNPREFIXED = ("CKAN_URL", "CKAN_API_TOKEN")

# Security settings (each overridable as ASHYQ_<KEY>); kept here so that they exist even when
# config/defaults.yaml does not name them.
SECURITY_DEFAULTS: dict[str, Any] = {
    "SESSION_IDLE_MINUTES": 720,        # a session unused this long ends (12 h)
    "SESSION_MAX_HOURS": 24,            # a session ends this long after sign-in, used or not
    "TOKEN_LIFETIME_DAYS": 90,          # an API token stops working this long after it was issued
    "COOKIE_SECURE": "auto",            # true | false | auto (production, an https base URL,
                                        # or a request that came over HTTPS)
    "LOGIN_FREE_FAILURES": 3,           # wrong passwords per account before back-off starts
    "LOGIN_MAX_DELAY_SECONDS": 30,      # back-off doubles per failure up to this; never a lock
    "LOGIN_ADDRESS_FREE_FAILURES": 20,  # wrong passwords per address (15 min) before back-off
    "PASSWORD_MIN_LENGTH": 12,
    "SECRET_KEY_FILE": "instance/secret_key",  # development: one secret per deployment
}
MIN_SECRET_BYTES = 32


def _is_checkout(root: Path) -> bool:
    return (root / "pyproject.toml").is_file() and (root / "config" / "defaults.yaml").is_file()


def _config_dir() -> Path:
    """The folder of the configuration files: the wheel's package data, else the checkout's.

    (An editable install cannot import a folder without ``__init__.py`` mapped elsewhere, so a
    checkout, installed editable or not, uses its own ``config/``.)"""
    try:
        marker = resources.files(PACKAGED_CONFIG).joinpath("defaults.yaml")
    except ImportError:
        marker = None
    if isinstance(marker, Path) and marker.is_file():
        return marker.parent
    return ROOT / "config"


CONFIG_DIR = _config_dir()


def config_path(*parts: str) -> Path:
    """A configuration file or folder, e.g. ``config_path("codelists")`` or
    ``config_path("sample", "children.yaml")`` (the one place that knows where config/ is)."""
    return CONFIG_DIR.joinpath(*parts)


def base_dir() -> Path:
    """What relative paths in the settings are relative to: the checkout when Ashyq runs from
    one (unchanged behaviour), else the current working directory (an installed wheel)."""
    return ROOT if _is_checkout(ROOT) else Path.cwd()


class SettingsError(AshyqError):
    """A setting that is missing or cannot be used."""


def load_settings(overrides: dict[str, Any] | None = None,
                  environ: dict[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    settings: dict[str, Any] = yaml.safe_load(config_path("defaults.yaml").read_text("utf-8"))
    for key, value in REQUEST_DEFAULTS.items():
        settings.setdefault(key, value)
    for key, value in PROTECT_DEFAULTS.items():
        settings.setdefault(key, value)
    for key, value in SECURITY_DEFAULTS.items():
        settings.setdefault(key, value)
    for key in list(settings):
        if key in UNPREFIXED and env.get(key):
            settings[key] = env[key]
        if f"ASHYQ_{key}" in env:
            raw = env[f"ASHYQ_{key}"]
            settings[key] = raw if key in SECRET_KEYS else yaml.safe_load(raw)
    settings.update(overrides or {})
    base = base_dir()
    for key in ("OUTPUT_DIR", "WORK_DIR"):
        p = Path(settings[key])
        settings[key] = str(p if p.is_absolute() else base / p)
    url = settings["DATABASE_URL"]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and ":memory:" not in url:
        settings["DATABASE_URL"] = "sqlite:///" + str(base / url.removeprefix("sqlite:///"))
    key_file = Path(str(settings["SECRET_KEY_FILE"]))
    settings["SECRET_KEY_FILE"] = str(key_file if key_file.is_absolute() else base / key_file)
    if settings.get("ENV") == "production":
        check_secret_key(settings.get("SECRET_KEY"))
    # development without ASHYQ_SECRET_KEY: the deployment's secret file is made (once) by
    # secret_key() when something needs the secret, not by reading the settings (a CLI run
    # that signs nothing writes nothing)
    return settings


def secret_key(settings: dict[str, Any]) -> str | None:
    """The secret of this deployment: ``SECRET_KEY``, else (development) the one written once to
    ``SECRET_KEY_FILE`` (kept in ``settings`` afterwards); None for settings without either."""
    if settings.get("SECRET_KEY"):
        return str(settings["SECRET_KEY"])
    if not settings.get("SECRET_KEY_FILE"):
        return None
    settings["SECRET_KEY"] = deployment_secret(Path(settings["SECRET_KEY_FILE"]))
    return str(settings["SECRET_KEY"])


def secret_key_bytes(secret: str) -> float:
    """A cautious estimate of the random bytes in ``secret``: its length in bytes (a hex digit
    counts half a byte, a base64 character three quarters), capped by what its distinct
    characters can carry (so ``"x" * 64`` or ``"abab..."`` count for almost nothing)."""
    if not secret:
        return 0.0
    if all(c in "0123456789abcdefABCDEF" for c in secret):
        per_char = 0.5
    elif all(c.isalnum() or c in "-_+/=" for c in secret):
        per_char = 0.75
    else:
        per_char = 1.0
    distinct = len(set(secret))
    by_alphabet = len(secret) * math.log2(distinct) / 8 if distinct > 1 else 0.0
    return min(len(secret.rstrip("=")) * per_char, by_alphabet)


def check_secret_key(secret: Any) -> None:
    """Production refuses a missing, short or patterned secret key: at least 32 bytes long and
    about 24 bytes of entropy by :func:`secret_key_bytes` (``secrets.token_hex(32)`` and
    ``secrets.token_urlsafe(32)`` pass). The value itself is never shown."""
    if not secret:
        raise SettingsError(R_("ASHYQ_SECRET_KEY must be set in production"))
    if (not isinstance(secret, str) or len(secret.encode("utf-8")) < MIN_SECRET_BYTES
            or secret_key_bytes(secret) < MIN_SECRET_BYTES * 0.75):
        raise SettingsError(R_(
            "ASHYQ_SECRET_KEY is too short or not random: production needs at least 32 random "
            "bytes, e.g. the output of: python -c 'import secrets; print(secrets.token_hex(32))'"))


def deployment_secret(path: Path) -> str:
    """Development: the deployment's one secret key, made on first use and written once (mode
    0600) to ``path``; every process (each gunicorn worker) reads the same one. Creation is
    atomic (a hard link of a finished temporary file), so two workers starting together agree."""
    try:
        value = path.read_text("ascii").strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):  # another process won the race: use its key
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    value = path.read_text("ascii").strip()
    if not value:
        raise SettingsError(R_("the secret key file is empty; delete it to make a new one"))
    return value


def redacted(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings safe to show or log: secrets replaced by a marker."""
    return {k: ("***" if k in SECRET_KEYS and v else v) for k, v in settings.items()}


def office_timezone(settings: dict[str, Any]) -> ZoneInfo:
    """The office's time zone (``TIMEZONE``, an IANA name; default Asia/Almaty): embargoes are
    entered and shown in it and stored in UTC."""
    name = str(settings.get("TIMEZONE") or "Asia/Almaty")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(R_("ASHYQ_TIMEZONE: %(name)s is not a time zone (give an IANA name "
                               "such as Asia/Almaty)"), name=repr(name[:60])) from None
