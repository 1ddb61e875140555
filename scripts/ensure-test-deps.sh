#!/usr/bin/env bash
# Installs what the tests need and is missing, from Debian's packages only
# (never a browser downloaded from anywhere else):
# - redis-server: tests start their own on a free loopback port and stop it
#   by PID; no system service is used.
# - chromium, chromium-driver: the real-browser tests (testkit::browser)
#   start their own chromedriver on a free loopback port.
# - fonts-nanum: a Korean font, so the Korean waiting page renders as text
#   in the browser tests' screenshots, not as boxes.
# - prometheus: ships prometheus and promtool, for tests/ops_prometheus.rs
#   (it starts its own Prometheus on a free loopback port with a temp
#   storage dir). Its package would start a system Prometheus on :9090 and
#   enable it at boot: the install runs with service starts denied
#   (policy-rc.d) and the unit is disabled, so no Prometheus is left running.
# Each is checked on its own; the missing ones are installed in one apt-get
# call, and nothing at all is done when everything is there.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# Debian's chromium package ships /usr/bin/chromium (a wrapper script) and
# the real binary /usr/lib/chromium/chromium.
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/lib/chromium/chromium ]; then
    missing+=(chromium)
fi
command -v chromedriver >/dev/null 2>&1 || [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if ! { command -v fc-list >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi nanum; } \
    && [ ! -d /usr/share/fonts/truetype/nanum ]; then
    missing+=(fonts-nanum)
fi

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    missing+=(prometheus)
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "ensure-test-deps: installing ${missing[*]} from Debian's packages" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Packages must not start services here (Debian's maintainer scripts ask
# invoke-rc.d / deb-systemd-invoke, which obey policy-rc.d; exit 101 means
# "denied"). An existing policy-rc.d is left as it is.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# ensure-test-deps.sh: no service starts during this install\nexit 101\n' \
        | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 0755 "$POLICY"
    trap '$SUDO rm -f "$POLICY"' EXIT
fi
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
for pkg in "${missing[@]}"; do
    case "$pkg" in
    redis-server)
        # Debian's package may start a system service; tests never use it.
        if command -v systemctl >/dev/null 2>&1; then
            $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
        fi
        command -v redis-server
        ;;
    chromium) [ -x /usr/lib/chromium/chromium ] || command -v chromium ;;
    chromium-driver) command -v chromedriver ;;
    prometheus)
        # Not at boot either, and stopped should an existing policy-rc.d
        # have let this install start it; the tests start their own.
        if command -v systemctl >/dev/null 2>&1; then
            $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
        fi
        command -v prometheus && command -v promtool
        ;;
    fonts-nanum)
        # Without fontconfig's cache refreshed Chromium may not see it yet.
        if command -v fc-cache >/dev/null 2>&1; then
            $SUDO fc-cache -f >/dev/null 2>&1 || true
        fi
        ;;
    esac
done
