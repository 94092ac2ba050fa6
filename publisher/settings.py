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

import os
import secrets
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from disclosure.errors import AshyqError

ROOT = Path(__file__).resolve().parent.parent  # the checkout, when running from one
PACKAGED_CONFIG = "publisher._config"  # config/ inside a wheel (pyproject.toml: package-dir)
SECRET_KEYS = {"SECRET_KEY", "CKAN_API_TOKEN", "DATABASE_URL"}
UNPREFIXED = ("CKAN_URL", "CKAN_API_TOKEN")


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
    if not settings.get("SECRET_KEY"):
        if settings.get("ENV") == "production":
            raise SettingsError("ASHYQ_SECRET_KEY must be set in production")
        settings["SECRET_KEY"] = secrets.token_hex(32)
    return settings


def redacted(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings safe to show or log: secrets replaced by a marker."""
    return {k: ("***" if k in SECRET_KEYS and v else v) for k, v in settings.items()}
