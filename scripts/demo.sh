#!/usr/bin/env bash
# The main job: set up, then run the demo release end to end on the shipped synthetic sample.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec .venv/bin/publisher demo "$@"
