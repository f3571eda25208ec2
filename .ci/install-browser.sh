#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for tests/search/test_ui_browser.py (headless
# browser check of the MLflow UI). Idempotent and quiet: does nothing when /usr/bin/chromium
# is already there. Recommends are skipped (printers, udev...) but fonts-liberation is kept so
# screenshots have readable text. Never downloads a browser build of its own.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when apt doesn't know the package yet.
if ! apt-cache show chromium >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null
fi
# Stale package lists make the install fail with 404s: refresh once and try again.
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null ||
    { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null; }

[ -x /usr/bin/chromium ] || {
    echo "install-browser: chromium installed but /usr/bin/chromium is missing" >&2
    exit 1
}
