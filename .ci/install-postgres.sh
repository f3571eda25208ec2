#!/usr/bin/env bash
# Installs Debian's PostgreSQL server for tests/search/test_postgres.py. Idempotent and quiet:
# does nothing when a server (initdb) is already there. The test starts its own private instance
# in a temporary folder; the system cluster this package creates is never used or started here.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi

. "$(dirname "$0")/apt.sh"
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
apt_install postgresql

compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || {
    echo "install-postgres: postgresql installed but no /usr/lib/postgresql/*/bin/initdb" >&2
    exit 1
}
