#!/usr/bin/env bash
# Test setup hook (sourced by scripts/test.sh): install the JavaScript v1 data-package validator
# (npm `datapackage` 1.1.10) and the JSON-stat Toolkit (npm `jsonstat-toolkit` 2.2.2), pinned by
# tests/datapackages/js/package-lock.json and used as second opinions
# by tests/datapackages, and axe-core (tests/browser/js) for the accessibility checks. Idempotent: `npm ci` runs only when node_modules is missing or
# older than the lock file. Installs Debian's nodejs/npm when node is missing.
# Exports ASHYQ_DP_JS_VALIDATOR (path of validate.js) when the validator is ready. Also installs
# python-calamine into .venv when missing (second XLSX reader of the tests).
_ashyq_dpjs() {
  local root js
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  js="$root/tests/datapackages/js"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "test-setup: installing Debian nodejs and npm" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null || return 1
  fi
  if [[ ! -d "$js/node_modules/datapackage" || ! -d "$js/node_modules/jsonstat-toolkit" || "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]]; then
    echo "test-setup: npm ci in tests/datapackages/js" >&2
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || return 1
  fi
  export ASHYQ_DP_JS_VALIDATOR="$js/validate.js"
  # axe-core for the accessibility checks of the browser tests (pinned in tests/browser/js)
  local axe="$root/tests/browser/js"
  if [[ -f "$axe/package-lock.json" && ( ! -d "$axe/node_modules/axe-core" || "$axe/package-lock.json" -nt "$axe/node_modules/.package-lock.json" ) ]]; then
    echo "test-setup: npm ci in tests/browser/js" >&2
    (cd "$axe" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || return 1
  fi
  # A second, independent XLSX reader (Rust calamine) for tests/datapackages, until pyproject's
  # dev extras list it.
  if [[ -x "$root/.venv/bin/python" ]] && ! "$root/.venv/bin/python" -c "import python_calamine" 2>/dev/null; then
    echo "test-setup: pip install python-calamine" >&2
    "$root/.venv/bin/python" -m pip install --quiet "python-calamine>=0.3,<1" || return 1
  fi
}
_ashyq_dpjs || echo "test-setup: the npm datapackage validator could not be installed" >&2
unset -f _ashyq_dpjs
