#!/usr/bin/env bash
# Test setup hook (sourced by scripts/test.sh): bring up the local CKAN 2.12 stack
# (scripts/ckan-local.sh up: PostgreSQL, Redis, the Solr stand-in, CKAN under gunicorn) once for
# the whole run and export CKAN_URL / CKAN_API_TOKEN. A cold start takes about a minute (pip);
# when the stack is already up this takes under a second. ASHYQ_SKIP_CKAN=1 skips it (and the
# CKAN integration tests skip themselves, saying so). If `up` fails, the tests under
# tests/integration fail with the script's error output rather than being skipped.
_ashyq_ckan_up() {
  local root out
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  if [[ "${ASHYQ_SKIP_CKAN:-}" == 1 ]]; then
    echo "test-setup: ASHYQ_SKIP_CKAN=1, not starting CKAN" >&2
    return 0
  fi
  if ! out="$("$root/scripts/ckan-local.sh" up)"; then
    echo "test-setup: scripts/ckan-local.sh up failed (see .stack/ckan/log/)" >&2
    return 1
  fi
  eval "$out"
}
_ashyq_ckan_up || true
unset -f _ashyq_ckan_up
