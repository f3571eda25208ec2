# Sourced by the .ci/install-*.sh scripts: `apt_install PKG...` installs Debian packages quietly,
# without recommends, as root or through sudo.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

apt_install() {
    # Refresh the package lists only when apt doesn't know the first package yet.
    if ! apt-cache show "$1" >/dev/null 2>&1; then
        $SUDO apt-get update -qq >/dev/null
    fi
    # Stale package lists make the install fail with 404s: refresh once and try again.
    $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
        { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}
