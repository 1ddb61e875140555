#!/usr/bin/env bash
# Installs what the tests need and is missing: redis-server (tests start their
# own on a free loopback port and stop it by PID; no system service is used).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
echo "ensure-test-deps: installing redis-server from Debian's packages" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends redis-server
# Debian's package may start a system service; tests never use it.
if command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
command -v redis-server
