"""Settings: ``config/defaults.yaml`` overridden by environment variables ``ASHYQ_<KEY>``.

Values from the environment are parsed as YAML scalars (``ASHYQ_EPSILON_CEILING=2`` is a number).
``CKAN_URL`` and ``CKAN_API_TOKEN`` are read unprefixed too, as ``scripts/ckan-local.sh`` prints
them. Secrets come only from the environment and are never logged.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
SECRET_KEYS = {"SECRET_KEY", "CKAN_API_TOKEN", "DATABASE_URL"}
UNPREFIXED = ("CKAN_URL", "CKAN_API_TOKEN")


class SettingsError(RuntimeError):
    pass


def load_settings(overrides: dict[str, Any] | None = None,
                  environ: dict[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    settings: dict[str, Any] = yaml.safe_load((CONFIG_DIR / "defaults.yaml").read_text("utf-8"))
    for key in list(settings):
        if key in UNPREFIXED and env.get(key):
            settings[key] = env[key]
        if f"ASHYQ_{key}" in env:
            raw = env[f"ASHYQ_{key}"]
            settings[key] = raw if key in SECRET_KEYS else yaml.safe_load(raw)
    settings.update(overrides or {})
    for key in ("OUTPUT_DIR", "WORK_DIR"):
        p = Path(settings[key])
        settings[key] = str(p if p.is_absolute() else ROOT / p)
    url = settings["DATABASE_URL"]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and ":memory:" not in url:
        settings["DATABASE_URL"] = "sqlite:///" + str(ROOT / url.removeprefix("sqlite:///"))
    if not settings.get("SECRET_KEY"):
        if settings.get("ENV") == "production":
            raise SettingsError("ASHYQ_SECRET_KEY must be set in production")
        settings["SECRET_KEY"] = secrets.token_hex(32)
    return settings


def redacted(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings safe to show or log: secrets replaced by a marker."""
    return {k: ("***" if k in SECRET_KEYS and v else v) for k, v in settings.items()}
