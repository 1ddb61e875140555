#!/usr/bin/env bash
# N people in line on one node, over HTTP (docs/loadtest.md, run 3): joins
# N users into one paused event with wrk (service realm, 64 connections),
# then reads the server's memory, samples tickets and their advice, and
# measures status polls on random tickets with wrk.
#
#   scripts/line-http.sh [N=10000000] [JOIN_SECONDS=360]
#
# Loopback only; starts its own release server on a free port and stops it
# by PID. Needs wrk and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000000}
JOIN_S=${2:-360}
BIN=target/release/boxoffice
[ -x "$BIN" ] || cargo build --release --bin boxoffice
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
ADMIN=line-admin-token-0123456789
SERVICE=line-service-token-0123456789
SECRET=line-secret-0123456789-0123456789-abcdef
"$BIN" serve --listen 127.0.0.1:$PORT --admin-token $ADMIN --service-token $SERVICE \
  --secret $SECRET --max-connections-per-client 256 > "$WORK/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
B=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf $B/readyz > /dev/null && break; sleep 0.1; done
curl -sf -X PUT $B/v1/events/bench -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d "{\"name\":\"line\",\"queue\":{\"capacity\":2000,\"admit_per_s\":200,\"idle_timeout_s\":86400,\"max_waiting\":$N,\"prequeue\":\"fifo\"},\"seats\":[]}" > /dev/null
curl -sf -X POST $B/v1/events/bench/pause -H "Authorization: Bearer $ADMIN" > /dev/null
rss() { awk '/VmRSS/ {print $2 * 1024}' /proc/$PID/status; }
RSS0=$(rss)
echo "# $N in line over HTTP ($(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "## joins: wrk -t2 -c64, service realm, until the line is full (max_waiting $N) or ${JOIN_S} s"
START=$(date +%s.%N)
SERVICE_TOKEN=$SERVICE THREADS=2 MODE=join timeout $((JOIN_S + 30)) \
  wrk -t2 -c64 -d${JOIN_S}s --latency -s scripts/wrk/unique_post.lua $B > "$WORK/join.txt" &
WRK=$!
# Stop wrk once the line is full (further joins are 503 queue_full).
while kill -0 $WRK 2>/dev/null; do
  W=$(curl -sf $B/v1/events/bench | python3 -c 'import json,sys;print(json.load(sys.stdin)["waiting"])' || echo 0)
  if [ "$W" -ge "$N" ]; then kill -INT $WRK 2>/dev/null || true; break; fi
  sleep 1
done
wait $WRK || true
END=$(date +%s.%N)
grep -E "Requests/sec|Latency|50%|99%|Non-2xx" "$WORK/join.txt" | sed 's/^/    /'
W=$(curl -sf $B/v1/events/bench | python3 -c 'import json,sys;print(json.load(sys.stdin)["waiting"])')
python3 - "$W" "$START" "$END" "$RSS0" "$(rss)" <<'EOF'
import sys
w, s, e, r0, r1 = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print(f"\nwaiting {w} after {e - s:.0f} s: {w / (e - s):.0f} joins/s accepted on average")
print(f"server RSS {r1 / 2**30:.2f} GiB ({(r1 - r0) / max(w, 1):.1f} bytes per user in line, process growth)")
EOF
echo
echo "## 20,000 random users' tickets and advice (a rejoin returns the same ticket)"
python3 - "$PORT" "$SERVICE" "$W" "$WORK/tickets.txt" <<'EOF'
import http.client, json, random, sys
port, token, w, path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port)
random.seed(7)
inv, n = 0.0, 0
with open(path, "w") as f:
    for _ in range(20000):
        u = random.randrange(w)
        c.request("POST", "/v1/events/bench/queue", json.dumps({"user": f"w-{u}"}),
                  {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        r = c.getresponse(); d = json.loads(r.read())
        if r.status != 200 or d.get("state") != "waiting":
            continue
        f.write(d["ticket"] + "\n")
        inv += 1000.0 / d["poll_after_ms"]; n += 1
print(f"{n} sampled; mean polls/s per user the advice asks {inv / n:.6f}; "
      f"× {w} in line = {inv / n * w:.0f} polls/s expected (estimate from the sample)")
EOF
echo
echo "## status polls on random tickets: wrk -t2 -c64 -d10s"
TICKETS=$WORK/tickets.txt wrk -t2 -c64 -d10s --latency -s scripts/wrk/status.lua $B \
  | grep -E "Requests/sec|Latency|50%|90%|99%|Non-2xx" | sed 's/^/    /'
echo "server RSS after: $(( $(rss) / 1048576 )) MiB"
