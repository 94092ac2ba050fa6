#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs what is missing (venv, PostgreSQL, the
# local CKAN stack, chromium, the npm validator) through the project's own scripts, then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/disclosure -q).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
scripts/pg-local.sh up ashyq_test
ASHYQ_TEST_PG_URL="$(scripts/pg-local.sh url ashyq_test)"
export ASHYQ_TEST_PG_URL
# Each part of the project that needs a service or system package adds a hook here.
for hook in scripts/test-setup.d/*.sh; do
  [[ -e "$hook" ]] || continue
  echo "test.sh: $hook" >&2
  # shellcheck disable=SC1090
  source "$hook"
done
exec .venv/bin/python -m pytest "$@"
