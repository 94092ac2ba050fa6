"""Public pages (no sign-in): a version page per published version, a page per series."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("public", __name__)
