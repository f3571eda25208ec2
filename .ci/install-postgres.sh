#!/usr/bin/env bash
# Installs Debian's PostgreSQL server for tests/search/test_postgres.py. Idempotent and quiet:
# does nothing when a server (initdb) is already there. The test starts its own private instance
# in a temporary folder; the system cluster this package creates is never used or started here.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when apt doesn't know the package yet.
if ! apt-cache show postgresql >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null
fi
# policy-rc.d 101: don't let the package start the system cluster (no init system in containers,
# and the tests never use it).
POLICY=/usr/sbin/policy-rc.d
CREATED_POLICY=0
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod +x "$POLICY"
    CREATED_POLICY=1
fi
cleanup() { if [ "$CREATED_POLICY" = 1 ]; then $SUDO rm -f "$POLICY"; fi; }
trap cleanup EXIT
# Stale package lists make the install fail with 404s: refresh once and try again.
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null ||
    { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }

compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || {
    echo "install-postgres: postgresql installed but no /usr/lib/postgresql/*/bin/initdb" >&2
    exit 1
}
