#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs what is missing (venv, PostgreSQL, the
# local CKAN stack, chromium, the npm validator) through the project's own scripts, then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/disclosure -q).
# ASHYQ_STACK_PORT_BASE=N gives this checkout its own ports for everything the run starts
# (CKAN N, Redis N+1, Solr N+2, PostgreSQL N+3: scripts/ckan-local.sh, scripts/pg-local.sh), so
# two checkouts on one machine run their suites side by side without sharing a cluster; unset,
# the defaults (PostgreSQL 55432, CKAN 55000, ...) apply.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
scripts/pg-local.sh up ashyq_test
ASHYQ_TEST_PG_URL="$(scripts/pg-local.sh url ashyq_test)"
export ASHYQ_TEST_PG_URL
if [[ -n "${ASHYQ_STACK_PORT_BASE:-}" ]]; then
  echo "test.sh: ASHYQ_STACK_PORT_BASE=$ASHYQ_STACK_PORT_BASE: PostgreSQL $ASHYQ_TEST_PG_URL" >&2
fi
# Each part of the project that needs a service or system package adds a hook here.
for hook in scripts/test-setup.d/*.sh; do
  [[ -e "$hook" ]] || continue
  echo "test.sh: $hook" >&2
  # shellcheck disable=SC1090
  source "$hook"
done
exec .venv/bin/python -m pytest "$@"
