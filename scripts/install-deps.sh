#!/usr/bin/env bash
# Install the Debian 12 packages hotrestart needs to build and test.
# Idempotent and silent when everything is present: `make test` runs it every time.
set -euo pipefail

PACKAGES=(build-essential pkg-config libcriterion-dev python3 lighttpd nginx wrk gnuplot-nox
          strace nodejs systemd iproute2 procps curl tini supervisor runit golang-go
          apache2 gunicorn pgbouncer squid caddy musl-tools varnish haproxy python3-uvicorn
          valgrind)
POLICY=/usr/sbin/policy-rc.d

die() { echo "install-deps: $*" >&2; exit 1; }

if [ $# -ne 0 ]; then
    echo "usage: $0 (takes no arguments)" >&2
    exit 2
fi

# One dpkg-query for all packages; unknown ones print nothing, so they count as missing.
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null \
            | awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }' || true)
missing=()
for pkg in "${PACKAGES[@]}"; do
    grep -qxF "$pkg" <<<"$installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null; then
    SUDO=(sudo)
else
    die "missing packages (${missing[*]}) and not root, and sudo is not available"
fi
command -v apt-get >/dev/null || die "apt-get not found; this script targets Debian 12"

echo "install-deps: installing ${missing[*]}" >&2

# lighttpd and nginx would start daemons on port 80 while installing; a policy-rc.d
# that exits 101 tells invoke-rc.d/deb-systemd-invoke not to start any service.
if [ ! -e "$POLICY" ]; then
    trap '"${SUDO[@]}" rm -f "$POLICY"' EXIT
    # Turn signals into a normal exit so the EXIT trap removes the policy file.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
fi

# Wait for a concurrent apt/dpkg run instead of failing on its lock.
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
"${APT[@]}" update || die "apt-get update failed"
"${APT[@]}" install -y --no-install-recommends "${missing[@]}" \
    || die "apt-get install failed for: ${missing[*]}"

for daemon in nginx lighttpd apache2 pgbouncer squid; do
    if pids=$(pgrep -x -P 1 "$daemon"); then
        echo "install-deps: warning: a system $daemon daemon is running (pid ${pids//$'\n'/ });" \
             "it may hold port 80 during tests" >&2
    fi
done
