#!/usr/bin/env bash
# Install the Debian packages the page tests (and, when asked, other checks) need, when we can.
#   scripts/install_debian_packages.sh chromium [more packages...]
# Installs only what is missing; needs root (or sudo without a password) and apt-get. When it cannot
# install, it says so and exits 0: the tests that need the package are then skipped, and pytest's
# summary ends by listing them.
set -uo pipefail

missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "!! Not a Debian system: install ${missing[*]} yourself, or the checks that need them are skipped." >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "!! Missing Debian packages: ${missing[*]}. Run: sudo apt-get install -y ${missing[*]}" >&2
    echo "!! Until then the checks that need them are skipped (listed at the end of the test run)." >&2
    exit 0
fi
echo "== installing Debian packages: ${missing[*]}"
"${SUDO[@]}" apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null \
    || echo "!! apt-get could not install ${missing[*]}: the checks that need them are skipped." >&2
exit 0
