#!/usr/bin/env bash
# Create or refresh the project's virtualenv (.venv) from pyproject.toml. Idempotent:
# a stamp of pyproject.toml + the Python version skips pip when nothing changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${ASHYQ_PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)'; then
  echo "setup: Python 3.11-3.13 is required (found: $("$PY" --version 2>&1))" >&2
  exit 1
fi
STAMP_WANT="$( (cat pyproject.toml; "$PY" --version) | sha256sum | cut -d' ' -f1)"
STAMP_FILE=.venv/.ashyq-stamp
if [[ -x .venv/bin/python && -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$STAMP_WANT" ]]; then
  exit 0
fi
echo "setup: installing Ashyq and its dependencies into .venv (first run takes a minute or two)" >&2
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
LOG="$(mktemp)"
if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e ".[dev]"; } >"$LOG" 2>&1; then
  tail -40 "$LOG" >&2
  echo "setup: pip install failed (full log: $LOG)" >&2
  exit 1
fi
rm -f "$LOG"
echo "$STAMP_WANT" > "$STAMP_FILE"
