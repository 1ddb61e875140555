#!/usr/bin/env bash
# `make demo`: boxoffice (the API and the gate) and the example booking
# backend (examples/booking) on loopback, a small gated event, and what to
# open. Ctrl-C stops everything it started.
#
#   scripts/demo.sh              build, start, print the URL, wait for Ctrl-C
#   scripts/demo.sh crowd [N]    (in another terminal) N visitors join through
#                                the gate ahead of you, each shops a while
#                                once let in (SHOP_S seconds) and leaves
#
# Ports: API_PORT (8080), GATE_PORT (8081), BACKEND_PORT (8082).
set -euo pipefail

API_PORT=${API_PORT:-8080}
GATE_PORT=${GATE_PORT:-8081}
BACKEND_PORT=${BACKEND_PORT:-8082}
CARGO=${CARGO:-cargo}
EVENT=gate-demo
COUPON=gate-demo-coupon
API=http://127.0.0.1:$API_PORT
GATE=http://127.0.0.1:$GATE_PORT

# `crowd N`: each visitor is a curl without cookies (a new person to the
# gate). The gate answers a non-page request 429 with the status document;
# its ticket is the visitor's handle in the public API, where polling counts
# as presence and DELETE leaves (the slot frees at once).
crowd() {
  local n=${1:-10} shop=${SHOP_S:-20} i
  for i in $(seq "$n"); do
    (
      doc=$(curl -s -H 'Accept: application/json' "$GATE/")
      t=$(sed -nE 's/.*"ticket":"([A-Za-z0-9_-]+)".*/\1/p' <<<"$doc")
      if [ -z "$t" ]; then echo "visitor $i: no ticket from the gate: $doc"; exit 1; fi
      echo "visitor $i: in line at $(sed -nE 's/.*"position":([0-9]+).*/\1/p' <<<"$doc")"
      until curl -s "$API/v1/events/$EVENT/queue/$t" | grep -q '"state":"admitted"'; do sleep 2; done
      echo "visitor $i: let in, shopping for ${shop} s"
      sleep "$shop"
      curl -s -o /dev/null -X DELETE "$API/v1/events/$EVENT/queue/$t"
      echo "visitor $i: left"
    ) &
    sleep 0.2 # in order: visitor 1 is first in line
  done
  wait
}

if [ "${1:-}" = crowd ]; then
  shift
  crowd "$@"
  exit 0
fi

SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/.."
# PROFILE=debug uses what `cargo test` built (scripts/demo-gate-check.sh).
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
  $CARGO build --release --bin boxoffice --example booking
fi
BIN=target/$PROFILE/boxoffice
BOOKING=target/$PROFILE/examples/booking

# Fresh credentials every run (48 hex characters: long enough for the
# secret's 32 bytes), handed over in the environment, not on a command line
# that `ps` shows.
rand() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
BOXOFFICE_ADMIN_TOKEN=admin-$(rand)
BOXOFFICE_SERVICE_TOKEN=service-$(rand)
BOXOFFICE_SECRET=$(rand)
export BOXOFFICE_ADMIN_TOKEN BOXOFFICE_SERVICE_TOKEN BOXOFFICE_SECRET

LOGS=$(mktemp -d "${TMPDIR:-/tmp}/boxoffice-demo.XXXXXX")
SERVER_PID=
BACKEND_PID=
stop() {
  trap - INT TERM EXIT
  local p
  for p in $BACKEND_PID $SERVER_PID; do kill "$p" 2>/dev/null || true; done
  for p in $BACKEND_PID $SERVER_PID; do wait "$p" 2>/dev/null || true; done
}
trap stop EXIT
trap 'echo; echo "Stopping."; exit 0' INT TERM

# waits until URL answers 2xx, or fails if PID exits or 15 s pass
await() { # what url pid log
  local i
  for i in $(seq 150); do
    if curl -fsS -o /dev/null "$2" 2>/dev/null; then return 0; fi
    if ! kill -0 "$3" 2>/dev/null; then
      echo "$1 exited; its log ($4):"; tail -n 20 "$4"; exit 1
    fi
    sleep 0.1
  done
  echo "$1 is not ready at $2 after 15 s; its log ($4):"; tail -n 20 "$4"; exit 1
}

"$BIN" serve --demo --listen "127.0.0.1:$API_PORT" \
  --gate-listen "127.0.0.1:$GATE_PORT" --gate-event "$EVENT" \
  --gate-backend "http://127.0.0.1:$BACKEND_PORT" \
  >"$LOGS/boxoffice.log" 2>&1 &
SERVER_PID=$!
await boxoffice "$API/readyz" "$SERVER_PID" "$LOGS/boxoffice.log"

admin() { # method path json
  local out code
  out=$(curl -sS -w '\n%{http_code}' -X "$1" "$API$2" -H "Authorization: Bearer $BOXOFFICE_ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d "$3")
  code=${out##*$'\n'}
  case $code in
    2??) ;;
    *) echo "$1 $2 failed ($code): ${out%$'\n'*}"; exit 1 ;;
  esac
}
# Two at a time in the shop, one let in a second: a line forms at once.
admin PUT "/v1/events/$EVENT" '{
  "name": "Gate demo night",
  "queue": {"capacity": 2, "admit_per_s": 1, "session_ttl_s": 300, "idle_timeout_s": 60,
            "identity": "anonymous", "prequeue": "fifo"},
  "seats": [
    {"section": "A", "row": "1", "first": 1, "last": 12, "category": "VIP"},
    {"section": "A", "row": "2", "first": 1, "last": 12, "category": "VIP"},
    {"section": "B", "row": "1", "first": 1, "last": 16, "category": "R"},
    {"section": "B", "row": "2", "first": 1, "last": 16, "category": "R"},
    {"section": "B", "row": "3", "first": 1, "last": 16, "category": "R"}
  ],
  "holds": {"ttl_s": 300, "max_ttl_s": 600, "max_seats_per_user": 4}
}'
admin PUT "/v1/coupons/$COUPON" '{"stock": 5, "per_user": 1}'

"$BOOKING" --listen "127.0.0.1:$BACKEND_PORT" --boxoffice "$API" \
  --event "$EVENT" --coupon "$COUPON" --fail-rate "${FAIL_RATE:-0.2}" \
  >"$LOGS/booking.log" 2>&1 &
BACKEND_PID=$!
await "the booking backend" "http://127.0.0.1:$BACKEND_PORT/healthz" "$BACKEND_PID" "$LOGS/booking.log"

cat <<EOF

boxoffice demo is running (logs in $LOGS):
  API              $API          (event $EVENT, coupon $COUPON)
  gate             $GATE          (in front of the booking backend)
  booking backend  http://127.0.0.1:$BACKEND_PORT   (reached only through the gate)

Open $GATE/ in a browser.

Two visitors shop at a time. To stand in line behind 10 others (each shops
${SHOP_S:-20} s once let in, then leaves), run in another terminal first:
  API_PORT=$API_PORT GATE_PORT=$GATE_PORT $SELF crowd 10
(each visitor is just: curl -s -H 'Accept: application/json' $GATE/)

Watch the line:
  while sleep 1; do curl -s $API/v1/events/$EVENT | sed 's/"categories".*//' | grep -oE '"(phase|waiting|admitted|served|free|held|sold)":[^,}]*' | tr '\n' ' '; echo; done

Payment fails ${FAIL_RATE:-0.2} of the time (FAIL_RATE=0 make demo to turn that off): the
seats go back on sale and the coupon back to stock.
Pause admissions (the page says so, and everyone keeps their place), then resume:
  curl -s -X POST $API/v1/events/$EVENT/pause -H "Authorization: Bearer $BOXOFFICE_ADMIN_TOKEN"
  curl -s -X POST $API/v1/events/$EVENT/resume -H "Authorization: Bearer $BOXOFFICE_ADMIN_TOKEN"

Ctrl-C stops it all.
EOF

# Until Ctrl-C, or until one of the two exits on its own.
while kill -0 "$SERVER_PID" 2>/dev/null && kill -0 "$BACKEND_PID" 2>/dev/null; do
  sleep 1
done
echo "A demo process exited; logs in $LOGS:"
tail -n 5 "$LOGS/boxoffice.log" "$LOGS/booking.log"
exit 1
