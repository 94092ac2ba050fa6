#!/usr/bin/env bash
# Read-back tests open the XLSX and CSV downloads in LibreOffice headless (Debian's
# libreoffice-calc-nogui); install it when missing. Idempotent; sourced by scripts/test.sh.
# Exports ASHYQ_SOFFICE for the tests.
if ! command -v soffice >/dev/null 2>&1; then
  echo "50-libreoffice: installing Debian libreoffice-calc-nogui" >&2
  export DEBIAN_FRONTEND=noninteractive
  if [[ "$(id -u)" == 0 ]]; then
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends \
      libreoffice-calc-nogui >/dev/null || \
      echo "50-libreoffice: could not install LibreOffice; its read-back tests will fail" >&2
  else
    sudo -n apt-get update -qq >/dev/null && sudo -n apt-get install -y -qq --no-install-recommends \
      libreoffice-calc-nogui >/dev/null || \
      echo "50-libreoffice: could not install LibreOffice; its read-back tests will fail" >&2
  fi
fi
if command -v soffice >/dev/null 2>&1; then
  export ASHYQ_SOFFICE="$(command -v soffice)"
fi
