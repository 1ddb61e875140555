#!/usr/bin/env bash
# HTTP throughput and latency of `boxoffice serve` next to a bare hyper
# server (the ceiling for this front on this machine), measured with wrk on
# loopback in one run. Prints a markdown table.
#
#   scripts/http-bench.sh [connections=64] [seconds=10]
#   BASELINE=/path/to/old/boxoffice scripts/http-bench.sh 64 10
#   BOX_BIN=/path/to/boxoffice ...   (measure that build instead of this tree's)
#
# With BASELINE set, an older build of the server runs beside this one (same
# set-up, its own port) and every boxoffice workload is measured on both,
# alternating, in the same run: a before/after comparison of two builds.
#
# Client and servers share this machine's cores: the numbers are a lower bound.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-64}
SECS=${2:-10}
THREADS=2
ADMIN=bench-admin-token-0123456789
SERVICE=bench-service-token-0123456789
BOX_PORT=18180
BARE_PORT=18181
BASE_PORT=18182
BASELINE=${BASELINE:-}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
BOX_BIN=${BOX_BIN:-}
if [ -n "$BOX_BIN" ]; then
  cargo build --release -p boxoffice-bench --bin bare_hyper >&2
else
  cargo build --release -p boxoffice -p boxoffice-bench --bin boxoffice --bin bare_hyper >&2
  BOX_BIN=./target/release/boxoffice
fi

./target/release/bare_hyper 127.0.0.1:$BARE_PORT 2>/dev/null &
PIDS+=($!)
start_box() { # binary port
  # The load comes from one address: per-client limits off (where the binary has them).
  local off=""
  "$1" serve --help | grep -q -- --poll-rate && off="--poll-rate 0 --max-connections-per-client 10000"
  "$1" serve --listen 127.0.0.1:"$2" --admin-token $ADMIN \
    --service-token $SERVICE --secret bench-secret-0123456789-0123456789 --join-rate 0 $off >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    curl -sf http://127.0.0.1:"$2"/readyz >/dev/null && return 0
    sleep 0.1
  done
  echo "server $1 did not become ready on port $2" >&2
  exit 1
}
start_box "$BOX_BIN" $BOX_PORT
[ -n "$BASELINE" ] && start_box "$BASELINE" $BASE_PORT
for _ in $(seq 50); do
  curl -sf http://127.0.0.1:$BARE_PORT/ >/dev/null && break
  sleep 0.1
done

setup_box() { # port tickets-file
python3 - "$1" "$ADMIN" "$2" "$SERVICE" <<'PY'
import http.client, json, sys
port, admin, out, service = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port)
def req(method, path, body=None, token=None):
    h = {"Content-Type": "application/json"}
    if token: h["Authorization"] = "Bearer " + token
    c.request(method, path, json.dumps(body) if body is not None else None, h)
    r = c.getresponse(); data = r.read()
    if r.status >= 300: sys.exit(f"{method} {path}: {r.status} {data[:200]}")
    return json.loads(data) if data else None
# A queue nobody leaves (capacity 1, slow rate): every polled user is waiting.
req("PUT", "/v1/events/bench", {"name": "bench", "queue": {"capacity": 1, "admit_per_s": 1,
    "session_ttl_s": 600, "idle_timeout_s": 86400, "max_waiting": 50000000, "prequeue": "fifo"},
    "seats": [], "holds": {"ttl_s": 600, "max_ttl_s": 1800, "max_seats_per_user": 4}}, admin)
# 1,000,000 seats as 10 sections x 10 rows x 10,000 (the body stays under 64 KiB).
rows = [{"section": f"S{s}", "row": str(r), "first": 1, "last": 10000, "category": "R"}
        for s in range(10) for r in range(1, 11)]
req("PUT", "/v1/events/seats", {"name": "seats", "seats": rows,
    "holds": {"ttl_s": 600, "max_ttl_s": 1800, "max_seats_per_user": 4}}, admin)
req("PUT", "/v1/coupons/bench", {"stock": 50000000, "per_user": 1}, admin)
with open(out, "w") as f:
    for i in range(20000):
        # The backend's join (service realm): the event is `signed`, so a
        # public join of a chosen user would need a user token.
        f.write(req("POST", "/v1/events/bench/queue", {"user": f"poll-{i}"}, service)["ticket"] + "\n")
PY
}
setup_box $BOX_PORT "$WORK/tickets.txt"
[ -n "$BASELINE" ] && setup_box $BASE_PORT "$WORK/tickets-base.txt"

run() { # name url [script-args...]
  local name=$1 url=$2; shift 2
  local out
  out=$(TICKETS=${TICKETS_FILE:-$WORK/tickets.txt} THREADS=$THREADS SERVICE_TOKEN=$SERVICE "$@" \
        wrk -t$THREADS -c"$CONNS" -d"${SECS}s" --latency $WRK_SCRIPT "$url")
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$rps" "$p50" "$p99" "${non2xx:-0}"
}
echo "wrk -t$THREADS -c$CONNS -d${SECS}s, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo
echo "| workload | requests/s | p50 | p99 | non-2xx |"
echo "|---|---:|---:|---:|---:|"
WRK_SCRIPT="" run "bare hyper hello (ceiling)" http://127.0.0.1:$BARE_PORT/
both() { # name script url-path-less mode-env...
  local name=$1; shift
  run "$name" http://127.0.0.1:$BOX_PORT "$@"
  if [ -n "$BASELINE" ]; then
    TICKETS_FILE=$WORK/tickets-base.txt run "$name — baseline" http://127.0.0.1:$BASE_PORT "$@"
  fi
}
WRK_SCRIPT="-s scripts/wrk/status.lua" both "status poll (20k waiting)"
WRK_SCRIPT="-s scripts/wrk/unique_post.lua" both "join (new users)" env MODE=join
WRK_SCRIPT="-s scripts/wrk/unique_post.lua" both "hold 1 seat (1M seats)" env MODE=hold
WRK_SCRIPT="-s scripts/wrk/unique_post.lua" both "coupon claim" env MODE=claim
if [ -n "$BASELINE" ]; then
  # A second pass in the other order, so neither build always runs first.
  WRK_SCRIPT="-s scripts/wrk/status.lua" TICKETS_FILE=$WORK/tickets-base.txt run "status poll (20k waiting) — baseline, 2nd" http://127.0.0.1:$BASE_PORT
  WRK_SCRIPT="-s scripts/wrk/status.lua" run "status poll (20k waiting), 2nd" http://127.0.0.1:$BOX_PORT
  WRK_SCRIPT="-s scripts/wrk/unique_post.lua" TICKETS_FILE=$WORK/tickets-base.txt run "hold 1 seat (1M seats) — baseline, 2nd" http://127.0.0.1:$BASE_PORT env MODE=hold OFFSET=500000
  WRK_SCRIPT="-s scripts/wrk/unique_post.lua" run "hold 1 seat (1M seats), 2nd" http://127.0.0.1:$BOX_PORT env MODE=hold OFFSET=500000
fi
