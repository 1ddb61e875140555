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
#   PACED="10000 30000 50000" scripts/http-bench.sh 64 10
#
# With PACED set, the wrk table is followed by a second one at equal
# throughput: bench/src/bin/paced.rs (open loop, each connection on a fixed
# schedule, latency from each request's intended send time, as wrk2 counts
# it) drives boxoffice and the front at each of those total rates, poll,
# join, hold and claim, PACED_REPS times (default 2; boxoffice first on odd
# runs, the front first on even ones), PACED_SECS measured seconds (default
# 10) after PACED_WARMUP (default 2), PACED_CONNS connections (default: the
# wrk connections) from 127.0.0.2-5. Server CPU per answered request is
# utime+stime of the server's process (the front's plus its redis-server's)
# over the measured window; "busy" is the whole machine's busy cores (a
# run that shared the machine with a niced process says so in its "niced"
# figure). SKIP_WRK=1 leaves the wrk table out;
# PACED_OUT=file keeps every paced run's JSON line.
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
PACED=${PACED:-}
PACED_REPS=${PACED_REPS:-2}
PACED_SECS=${PACED_SECS:-10}
PACED_WARMUP=${PACED_WARMUP:-2}
PACED_CONNS=${PACED_CONNS:-$CONNS}
SKIP_WRK=${SKIP_WRK:-}
# An event holds at most 1,000,000 seats (the engine's limit) and a hold pass
# takes one seat per request, so each wrk hold pass gets a venue of its own
# (`seats`, and `seats2` for the second pass) plus spill venues `<venue>-1`,
# `<venue>-2`, … for up to 200,000 holds/s over the pass (unique_post.lua
# moves to the next one every 1,000,000 holds). Each paced hold pass gets a
# venue of its own too (`ph-<rate>-<run>`): no hold meets a seat an earlier
# pass took.
SPILL=$(( (SECS * 200000 + 999999) / 1000000 - 1 ))
VENUES="seats seats2"
for v in seats seats2; do
  for k in $(seq 1 "$SPILL"); do VENUES="$VENUES $v-$k"; done
done
for r in $PACED; do
  for run in $(seq 1 "$PACED_REPS"); do VENUES="$VENUES ph-$r-$run"; done
done
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
  cargo build --release -p boxoffice-bench --bin bare_hyper --bin redis_front --bin paced >&2
else
  cargo build --release -p boxoffice -p boxoffice-bench --bin boxoffice --bin bare_hyper --bin redis_front --bin paced >&2
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
start_box() { # binary port; sets STARTED_PID
  # The load comes from one address: per-client limits off (where the binary has them).
  local off=""
  "$1" serve --help | grep -q -- --poll-rate && off="--poll-rate 0 --max-connections-per-client 10000"
  "$1" serve --listen 127.0.0.1:"$2" --admin-token $ADMIN \
    --service-token $SERVICE --secret bench-secret-0123456789-0123456789 --join-rate 0 $off >/dev/null 2>&1 &
  STARTED_PID=$!
  PIDS+=($!)
  wait_ready "$2" "server $1"
}
start_box "$BOX_BIN" $BOX_PORT
BOX_PID=$STARTED_PID
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
FRONT_PID=$!
PIDS+=($!)
wait_ready $FRONT_PORT redis_front "$WORK/front.log" "$WORK/redis.log"
kill -0 $REDIS_PID 2>/dev/null || { echo "redis-server exited: $(cat "$WORK/redis.log")" >&2; exit 1; }
for _ in $(seq 50); do
  curl -sf http://127.0.0.1:$BARE_PORT/ >/dev/null && break
  sleep 0.1
done

setup_box() { # port tickets-file
python3 - "$1" "$ADMIN" "$2" "$SERVICE" $VENUES <<'PY'
import http.client, json, sys
port, admin, out, service = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
venues = sys.argv[5:]
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
# Each venue: 1,000,000 seats (an event's most) as 10 sections x 10 rows x
# 10,000 (the body stays under 64 KiB).
rows = [{"section": f"S{s}", "row": str(r), "first": 1, "last": 10000, "category": "R"}
        for s in range(10) for r in range(1, 11)]
for v in venues:
    req("PUT", f"/v1/events/{v}", {"name": v, "seats": rows,
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
if [ -z "$SKIP_WRK" ]; then
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
  WRK_SCRIPT="-s scripts/wrk/unique_post.lua" TICKETS_FILE=$WORK/tickets-base.txt measure http://127.0.0.1:$BASE_PORT env MODE=hold EVENT=seats2
  line "$hold — baseline, 2nd" "$RPS" "$P50" "$P99" "$NON2XX" "$(ratio "$RPS" "${FRONT_RPS[$hold]}")"
  WRK_SCRIPT="-s scripts/wrk/unique_post.lua" measure http://127.0.0.1:$BOX_PORT env MODE=hold EVENT=seats2
  line "$hold, 2nd" "$RPS" "$P50" "$P99" "$NON2XX" "$(ratio "$RPS" "${FRONT_RPS[$hold]}")"
fi
fi

[ -z "$PACED" ] && exit 0
# paced NAME PORT TICKETS RATE OFFSET EVENT RUN PID...: one paced run; its JSON
# line goes to $WORK/paced.jsonl, its human line to stderr.
paced() {
  local name=$1 port=$2 tickets=$3 rate=$4 offset=$5 event=$6 run=$7; shift 7
  local pids=() p
  for p in "$@"; do pids+=(--cpu-pid "$p"); done
  ./target/release/paced 127.0.0.1:"$port" --rate "$rate" --connections "$PACED_CONNS" \
    --seconds "$PACED_SECS" --warmup-seconds "$PACED_WARMUP" --mode "$name" \
    --tickets "$tickets" --service-token $SERVICE --offset "$offset" --event "$event" \
    --source 127.0.0.2 --source 127.0.0.3 --source 127.0.0.4 --source 127.0.0.5 \
    "${pids[@]}" >"$WORK/paced.json"
  jq -c --arg side "$([ "$port" = $BOX_PORT ] && echo box || echo front)" --argjson run "$run" \
    '. + {side: $side, run: $run}' "$WORK/paced.json" >>"$WORK/paced.jsonl"
}
# Before each paced run: no compile on the machine (another user's `rustc`
# would take cores from the run; waits up to 15 minutes). Each run also
# reports the machine's busy and niced cores over its window.
wait_quiet() {
  local waited=0
  while pgrep -x rustc >/dev/null && [ $waited -lt 900 ]; do
    [ $waited -eq 0 ] && echo "waiting for a compile to finish ($(uptime))" >&2
    sleep 5; waited=$((waited + 5))
  done
}
# Join and claim users are new in every pass: pass k numbers its users from
# k x 10,000,000 (the wrk passes used 0 to ~1,200,000).
pass=1
for mode in poll join hold claim; do
  for rate in $PACED; do
    for run in $(seq 1 "$PACED_REPS"); do
      pass=$((pass + 1))
      offset=$((pass * 10000000))
      # Holds number their seats from 0 in a venue of their own.
      [ $mode = hold ] && offset=0
      order=(box front)
      [ $((run % 2)) -eq 0 ] && order=(front box)
      for side in "${order[@]}"; do
        wait_quiet
        if [ "$side" = box ]; then
          paced $mode $BOX_PORT "$WORK/tickets.txt" "$rate" $offset "ph-$rate-$run" "$run" $BOX_PID
        else
          paced $mode $FRONT_PORT "$WORK/tickets-front.txt" "$rate" $offset "ph-$rate-$run" "$run" $FRONT_PID $REDIS_PID
        fi
      done
    done
  done
done
echo
echo "paced (open loop, latency from the intended send time): ${PACED_CONNS} connections," \
  "${PACED_WARMUP} s warm-up + ${PACED_SECS} s measured, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo
echo "| workload | rate | run | boxoffice: achieved | p50 | p99 | p99.9 | CPU/req | front+Redis: achieved | p50 | p99 | p99.9 | CPU/req | non-2xx / errors (box, front) | machine busy / niced cores (box, front) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
# Rows in measuring order; each boxoffice run beside the front's of the same pass.
jq -rs '
  def ms: (. / 1000 * 100 | round / 100 | tostring) + " ms";
  def us: if . == null then "–" else (. * 10 | round / 10 | tostring) + " µs" end;
  def cells: [(.achieved_rate | floor | tostring), (.corrected.p50_us | ms),
              (.corrected.p99_us | ms), (.corrected.p999_us | ms), (.server_cpu_us_per_req | us)];
  def bad: "\(.non_2xx + .unfinished + .unsent)/\(.errors)";
  def load: "\(.machine_busy_cores)/\(.machine_nice_cores)";
  [ .[] ] as $all
  | range(0; $all | length; 2)
  | $all[.] as $a | $all[. + 1] as $b
  | (if $a.side == "box" then [$a, $b] else [$b, $a] end) as [$x, $y]
  | "| \($x.mode) | \($x.rate) | \($x.run) | " + ($x | cells | join(" | ")) + " | "
    + ($y | cells | join(" | ")) + " | " + ($x | bad) + ", " + ($y | bad) + " | "
    + ($x | load) + ", " + ($y | load) + " |"
 ' "$WORK/paced.jsonl"
# The runs' JSON lines (both latencies, the pacer's lateness) for a closer look.
[ -n "${PACED_OUT:-}" ] && cp "$WORK/paced.jsonl" "$PACED_OUT"
