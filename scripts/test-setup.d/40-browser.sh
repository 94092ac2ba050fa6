#!/usr/bin/env bash
# Browser tests (tests/browser) drive Debian's chromium through Playwright; install it when missing.
# Idempotent; sourced by scripts/test.sh. Exports ASHYQ_CHROMIUM for the tests.
if ! command -v chromium >/dev/null 2>&1; then
  echo "40-browser: installing Debian chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  if [[ "$(id -u)" == 0 ]]; then
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium >/dev/null || \
      echo "40-browser: could not install chromium; browser tests will be skipped" >&2
  else
    sudo -n apt-get update -qq >/dev/null && sudo -n apt-get install -y -qq --no-install-recommends chromium >/dev/null || \
      echo "40-browser: could not install chromium; browser tests will be skipped" >&2
  fi
fi
if command -v chromium >/dev/null 2>&1; then
  export ASHYQ_CHROMIUM="$(command -v chromium)"
fi
