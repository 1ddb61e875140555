#!/usr/bin/env bash
# Runs `boxoffice serve --demo`, pastes the walkthrough it prints into bash,
# and checks that every step worked as printed: once with tokens the server
# made up, once with the operator's (given in the environment, so printed as
# placeholders). Usage: scripts/demo-check.sh [path/to/boxoffice]
set -euo pipefail
BIN=${1:-target/debug/boxoffice}
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

check() { # label
  local port; port=$(free_port)
  "$BIN" serve --listen "127.0.0.1:$port" --demo >"$WORK/out" 2>"$WORK/err" &
  PID=$!
  for _ in $(seq 100); do grep -q 'metrics | grep' "$WORK/out" 2>/dev/null && break; sleep 0.1; done
  sed -n '/^Try the demo/,$p' "$WORK/out" | tail -n +2 | sed 's/^  //' >"$WORK/walk.sh"
  if [ -n "${BOXOFFICE_SERVICE_TOKEN:-}" ]; then
    grep -q -- "$BOXOFFICE_SERVICE_TOKEN" "$WORK/out" && { echo "$1: the operator's service token was printed"; exit 1; }
    grep -q -- "$BOXOFFICE_ADMIN_TOKEN" "$WORK/out" && { echo "$1: the operator's admin token was printed"; exit 1; }
    grep -q -- "$BOXOFFICE_SECRET" "$WORK/out" && { echo "$1: the operator's secret was printed"; exit 1; }
  fi
  bash "$WORK/walk.sh" >"$WORK/ran" 2>&1
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  local out; out=$(cat "$WORK/ran")
  for want in '"event":"demo"' '"user":"u-1"' '"state":"admitted"' 'event: status' '"state":"sold"' \
              '"section":"A"' '"coupon":"demo-coupon"' '"phase":"paused"' 'boxoffice_queue'; do
    if ! grep -qF -- "$want" <<<"$out"; then
      echo "$1: missing $want in the walkthrough's output:"; cat "$WORK/walk.sh"; echo ---; echo "$out"; exit 1
    fi
  done
  if grep -q '"error"' <<<"$out"; then echo "$1: an error in the walkthrough:"; echo "$out"; exit 1; fi
  echo "$1: the printed walkthrough ran as printed"
}

check "generated tokens"
export BOXOFFICE_ADMIN_TOKEN=operator-admin-token-0123456789
export BOXOFFICE_SERVICE_TOKEN=operator-service-token-0123456789
export BOXOFFICE_SECRET=operator-secret-of-at-least-32-bytes!!
check "operator tokens"
