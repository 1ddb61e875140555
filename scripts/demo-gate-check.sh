#!/usr/bin/env bash
# Runs `make demo` (scripts/demo.sh, with the binaries `cargo test` built) on
# free loopback ports and checks what it prints works: the gate it names puts
# a visitor in line (303 to the waiting page, a ticket cookie, the page), the
# crowd line it prints stands people in line, and the watch line reads the
# event. Stops everything it started by PID. Usage: scripts/demo-gate-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d)
PID=
cleanup() {
  if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
api=$(free_port) gate_port=$(free_port) backend=$(free_port)
API_PORT=$api GATE_PORT=$gate_port BACKEND_PORT=$backend PROFILE=debug \
  scripts/demo.sh >"$WORK/out" 2>&1 &
PID=$!
for _ in $(seq 300); do grep -q 'Ctrl-C stops it all' "$WORK/out" && break; sleep 0.1; done
fail() { echo "demo-gate-check: $1"; echo "--- demo printed:"; cat "$WORK/out"; exit 1; }
grep -q 'Ctrl-C stops it all' "$WORK/out" || fail "the demo did not start"
gate=$(sed -nE 's#^Open (http://127\.0\.0\.1:[0-9]+)/ in a browser\.$#\1#p' "$WORK/out")
[ -n "$gate" ] || fail "no URL to open"
# A page load joins the line and is sent to the waiting page.
code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -c "$WORK/jar" -H 'Accept: text/html' "$gate/")
case $code in "303 $gate/_boxoffice/wait"*) ;; *) fail "a page load got: $code";; esac
grep -q 'bo_ticket' "$WORK/jar" || fail "no ticket cookie"
# The waiting page, or (nobody ahead: two may shop at once) the pass and,
# through the gate, the example backend's seat map.
page=$(curl -s -L -b "$WORK/jar" -c "$WORK/jar" -H 'Accept: text/html' "$gate/_boxoffice/wait")
case $page in *'id="bo-wait"'*|*'id="seat-form"'*) ;; *) fail "neither the waiting page nor the seat map: $page";; esac
# The crowd line as printed (one visitor), then the watch line once.
crowd=$(grep -E 'crowd 10$' "$WORK/out" | sed -E 's/crowd 10$/crowd 1/; s/^ +//')
[ -n "$crowd" ] || fail "no crowd line"
SHOP_S=0 timeout 60 bash -c "$crowd" >"$WORK/crowd" 2>&1 || fail "the crowd line failed ($crowd): $(cat "$WORK/crowd")"
grep -q 'visitor 1: in line at' "$WORK/crowd" || fail "the crowd visitor did not join: $(cat "$WORK/crowd")"
watch=$(grep -E '^ +while sleep 1' "$WORK/out" | sed -E 's/^ +while sleep 1; do //; s/; done$//')
out=$(bash -c "$watch")
case $out in *'"phase":'*'"waiting":'*) ;; *) fail "the watch line printed: $out";; esac
echo "demo-gate-check: make demo's gate, crowd and watch lines work as printed"
