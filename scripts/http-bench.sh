#!/usr/bin/env bash
# HTTP throughput and latency of `boxoffice serve` next to a bare hyper
# server (the ceiling for this front on this machine) and next to the Redis
# design behind an HTTP front (bench/src/bin/redis_front.rs against its own
# private redis-server: the seed projects' stack, an HTTP service calling
# Redis, at its cheapest), measured with wrk on loopback in one run. Prints a
# markdown table; "vs front+Redis" is each row's requests/s over the front's
# on the same workload.
#
#   scripts/http-bench.sh [connections=64] [seconds=10]
#   BASELINE=/path/to/old/boxoffice scripts/http-bench.sh 64 10
#   BOX_BIN=/path/to/boxoffice ...   (measure that build instead of this tree's)
#
# With BASELINE set, an older build of the server runs beside this one (same
# set-up, its own port) and every boxoffice workload is measured on both,
# alternating, in the same run: a before/after comparison of two builds.
#
# The front gets the same set-up and the same wrk scripts (scripts/wrk/*.lua,
# unchanged: same paths, tokens and bodies) as boxoffice.
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
FRONT_PORT=18183
REDIS_PORT=18184
BASELINE=${BASELINE:-}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
command -v "$REDIS_SERVER" >/dev/null || { echo "redis-server is needed (apt-get install redis-server)" >&2; exit 1; }
# Every port must be free: this script only ever measures, and writes to,
# servers it started itself.
for port in $BOX_PORT $BARE_PORT $FRONT_PORT $REDIS_PORT ${BASELINE:+$BASE_PORT}; do
  if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
    echo "port $port is in use on 127.0.0.1; stop what listens there first" >&2
    exit 1
  fi
done
BOX_BIN=${BOX_BIN:-}
if [ -n "$BOX_BIN" ]; then
  cargo build --release -p boxoffice-bench --bin bare_hyper --bin redis_front >&2
else
  cargo build --release -p boxoffice -p boxoffice-bench --bin boxoffice --bin bare_hyper --bin redis_front >&2
  BOX_BIN=./target/release/boxoffice
fi

wait_ready() { # port what [log files...]
  local port=$1 what=$2; shift 2
  for _ in $(seq 100); do
    curl -sf http://127.0.0.1:"$port"/readyz >/dev/null && return 0
    sleep 0.1
  done
  echo "$what did not become ready on port $port" >&2
  [ $# -gt 0 ] && cat "$@" >&2
  exit 1
}
./target/release/bare_hyper 127.0.0.1:$BARE_PORT 2>/dev/null &
PIDS+=($!)
start_box() { # binary port
  # The load comes from one address: per-client limits off (where the binary has them).
  local off=""
  "$1" serve --help | grep -q -- --poll-rate && off="--poll-rate 0 --max-connections-per-client 10000"
  "$1" serve --listen 127.0.0.1:"$2" --admin-token $ADMIN \
    --service-token $SERVICE --secret bench-secret-0123456789-0123456789 --join-rate 0 $off >/dev/null 2>&1 &
  PIDS+=($!)
  wait_ready "$2" "server $1"
}
start_box "$BOX_BIN" $BOX_PORT
[ -n "$BASELINE" ] && start_box "$BASELINE" $BASE_PORT
# The front's private redis-server: its own port and directory, no
# persistence, stopped by PID with the rest.
mkdir "$WORK/redis"
"$REDIS_SERVER" --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$WORK/redis" --daemonize no --loglevel warning >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=($REDIS_PID)
./target/release/redis_front --listen 127.0.0.1:$FRONT_PORT --redis redis://127.0.0.1:$REDIS_PORT/ \
  --admin-token $ADMIN --service-token $SERVICE 2>"$WORK/front.log" &
PIDS+=($!)
wait_ready $FRONT_PORT redis_front "$WORK/front.log" "$WORK/redis.log"
kill -0 $REDIS_PID 2>/dev/null || { echo "redis-server exited: $(cat "$WORK/redis.log")" >&2; exit 1; }
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
# The same set-up for the front (it answers these PUTs and joins as boxoffice does).
setup_box $FRONT_PORT "$WORK/tickets-front.txt"

# measure URL [env VAR=...]: one wrk run; sets RPS, P50, P99, NON2XX.
measure() {
  local url=$1; shift
  local out
  out=$(TICKETS=${TICKETS_FILE:-$WORK/tickets.txt} THREADS=$THREADS SERVICE_TOKEN=$SERVICE "$@" \
        wrk -t$THREADS -c"$CONNS" -d"${SECS}s" --latency $WRK_SCRIPT "$url")
  RPS=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  P50=$(awk '$1=="50%" {print $2}' <<<"$out")
  P99=$(awk '$1=="99%" {print $2}' <<<"$out")
  NON2XX=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  NON2XX=${NON2XX:-0}
}
ratio() { # a b -> a/b, or – when b is unknown
  awk -v a="$1" -v b="${2:-0}" 'BEGIN { if (b + 0 > 0) printf "%.2f×", a / b; else printf "–" }'
}
line() { # name rps p50 p99 non2xx vs-front
  printf '| %s | %s | %s | %s | %s | %s |\n' "$@"
}
declare -A FRONT_RPS
# group NAME [env VAR=...]: the workload on boxoffice (and the baseline),
# then on the front; prints their rows with the ratio to the front's.
group() {
  local name=$1; shift
  local box base=() front
  measure http://127.0.0.1:$BOX_PORT "$@"
  box=("$RPS" "$P50" "$P99" "$NON2XX")
  if [ -n "$BASELINE" ]; then
    TICKETS_FILE=$WORK/tickets-base.txt measure http://127.0.0.1:$BASE_PORT "$@"
    base=("$RPS" "$P50" "$P99" "$NON2XX")
  fi
  TICKETS_FILE=$WORK/tickets-front.txt measure http://127.0.0.1:$FRONT_PORT "$@"
  front=("$RPS" "$P50" "$P99" "$NON2XX")
  FRONT_RPS[$name]=${front[0]}
  line "$name" "${box[@]}" "$(ratio "${box[0]}" "${front[0]}")"
  if [ -n "$BASELINE" ]; then
    line "$name — baseline" "${base[@]}" "$(ratio "${base[0]}" "${front[0]}")"
  fi
  line "$name — front+Redis" "${front[@]}" "1×"
}
echo "wrk -t$THREADS -c$CONNS -d${SECS}s, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo
echo "| workload | requests/s | p50 | p99 | non-2xx | vs front+Redis |"
echo "|---|---:|---:|---:|---:|---:|"
WRK_SCRIPT="" measure http://127.0.0.1:$BARE_PORT/
line "bare hyper hello (ceiling)" "$RPS" "$P50" "$P99" "$NON2XX" "–"
WRK_SCRIPT="-s scripts/wrk/status.lua" group "status poll (20k waiting)"
WRK_SCRIPT="-s scripts/wrk/unique_post.lua" group "join (new users)" env MODE=join
WRK_SCRIPT="-s scripts/wrk/unique_post.lua" group "hold 1 seat (1M seats)" env MODE=hold
WRK_SCRIPT="-s scripts/wrk/unique_post.lua" group "coupon claim" env MODE=claim
if [ -n "$BASELINE" ]; then
  # A second pass in the other order, so neither build always runs first
  # (the ratio is to the front's figure from the first pass).
  poll="status poll (20k waiting)" hold="hold 1 seat (1M seats)"
  WRK_SCRIPT="-s scripts/wrk/status.lua" TICKETS_FILE=$WORK/tickets-base.txt measure http://127.0.0.1:$BASE_PORT
  line "$poll — baseline, 2nd" "$RPS" "$P50" "$P99" "$NON2XX" "$(ratio "$RPS" "${FRONT_RPS[$poll]}")"
  WRK_SCRIPT="-s scripts/wrk/status.lua" measure http://127.0.0.1:$BOX_PORT
  line "$poll, 2nd" "$RPS" "$P50" "$P99" "$NON2XX" "$(ratio "$RPS" "${FRONT_RPS[$poll]}")"
  WRK_SCRIPT="-s scripts/wrk/unique_post.lua" TICKETS_FILE=$WORK/tickets-base.txt measure http://127.0.0.1:$BASE_PORT env MODE=hold OFFSET=500000
  line "$hold — baseline, 2nd" "$RPS" "$P50" "$P99" "$NON2XX" "$(ratio "$RPS" "${FRONT_RPS[$hold]}")"
  WRK_SCRIPT="-s scripts/wrk/unique_post.lua" measure http://127.0.0.1:$BOX_PORT env MODE=hold OFFSET=500000
  line "$hold, 2nd" "$RPS" "$P50" "$P99" "$NON2XX" "$(ratio "$RPS" "${FRONT_RPS[$hold]}")"
fi
