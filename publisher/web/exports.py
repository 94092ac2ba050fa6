"""Exports shared by the UI, the API and the CLI: the audit log as CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from datapackages.text import csv_safe

from ..workflow import public_detail
from ..workflow_models import AuditEntry, as_utc


def _csv_safe(value: Any) -> str:
    """Text cells that a spreadsheet would run as a formula are neutralised (one rule for every
    CSV Ashyq writes: :func:`datapackages.text.csv_safe`)."""
    return csv_safe("" if value is None else str(value))


def audit_csv(rows: list[AuditEntry]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "at", "actor", "release_id", "action", "from_state", "to_state", "reason",
                "detail"])
    for a in rows:
        w.writerow([a.id, as_utc(a.at).isoformat(), _csv_safe(a.actor_name), a.release_id or "",
                    a.action, a.from_state or "", a.to_state or "", _csv_safe(a.reason),
                    _csv_safe(json.dumps(public_detail(a.detail), ensure_ascii=False,
                                         sort_keys=True))])
    return buf.getvalue()
