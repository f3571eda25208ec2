#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for tests/search/test_ui_browser.py (headless
# browser check of the MLflow UI). Idempotent and quiet: does nothing when /usr/bin/chromium
# is already there. Recommends are skipped (printers, udev...) but fonts-liberation is kept so
# screenshots have readable text. Never downloads a browser build of its own.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

. "$(dirname "$0")/apt.sh"
apt_install chromium chromium-driver fonts-liberation

[ -x /usr/bin/chromium ] || {
    echo "install-browser: chromium installed but /usr/bin/chromium is missing" >&2
    exit 1
}
