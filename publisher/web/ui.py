"""Web UI for preparers, approvers and administrators."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ui", __name__)
