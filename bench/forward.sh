#!/usr/bin/env bash
# Measures what forwarding costs: the server's CPU per GB delivered to 500
# players, with 3 forwards of the stream (FORWARD_URLS, to a second server
# on loopback that only takes them) and without, in alternating runs.
#
#   bash bench/forward.sh                 3 runs of each (about 3 minutes)
#   BENCH_RUNS=5 BENCH_DURATION=30s bash bench/forward.sh
#
# Prints one line per run and the means; the JSON reports and logs are
# kept in BENCH_OUT (a new temporary directory by default).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-20s}
PLAYERS=${BENCH_PLAYERS:-500}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/rtmp-bench-forward.XXXXXX)}
mkdir -p "$OUT"
log() { echo "bench/forward: $*" >&2; }
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_binaries

PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

start() { # start NAME PORT [ENV...]: starts a server, prints its pid
	local name=$1 port=$2
	shift 2
	env RTMP_PORT="$port" BIND_ADDRESS=127.0.0.1 MAX_IP_CONCURRENT_CONNECTIONS=0 ADMIN_ADDRESS=off \
		GOP_CACHE_SIZE_MB=256 RTMP_CHUNK_SIZE=4096 LOG_REQUESTS=NO "$@" \
		"$OUT/rtmp-server" --config /dev/null >>"$OUT/$name.log" 2>&1 &
	echo $!
}

SINK_PORT=$(free_port)
SINK_PID=$(start sink "$SINK_PORT")
PIDS+=("$SINK_PID")
wait_listening "$SINK_PID" "$SINK_PORT"
FORWARDS="rtmp://127.0.0.1:$SINK_PORT/fwd1/{key},rtmp://127.0.0.1:$SINK_PORT/fwd2/{key},rtmp://127.0.0.1:$SINK_PORT/fwd3/{key}"

run() { # run MODE N
	local mode=$1 n=$2 port pid env=()
	port=$(free_port)
	[ "$mode" = forwards ] && env=(FORWARD_URLS="$FORWARDS")
	pid=$(start "origin-$mode-$n" "$port" "${env[@]}")
	wait_listening "$pid" "$port"
	"$OUT/rtmp-bench" -q -json -label "$mode" -scenario "players$PLAYERS" -vary app \
		-url "rtmp://127.0.0.1:$port/live/bench" -pid "$pid" -players "$PLAYERS" -duration "$DURATION" \
		>"$OUT/$mode.$n.json" 2>"$OUT/$mode.$n.txt"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	python3 - "$OUT/$mode.$n.json" "$mode" "$n" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s, p, m = r["server"], r["players"], r.get("machine", {})
print(f'{sys.argv[2]:9} run {sys.argv[3]}: cpu_s_per_gb {s["cpu_s_per_gb"]:.3f} cpu_s {s["cpu_s"]:.2f} gb {s["gb"]:.2f} '
      f'delivery {p["delivery_pct"]:.2f}% rss_end {s["rss_end_mb"]:.1f} MB machine {json.dumps(m)}')
PY
}

for n in $(seq "$RUNS"); do
	run alone "$n"
	run forwards "$n"
done | tee "$OUT/runs.txt"
python3 - "$OUT/runs.txt" <<'PY'
import re, sys
v = {"alone": [], "forwards": []}
for line in open(sys.argv[1]):
    m = re.match(r"(\w+)\s+run \d+: cpu_s_per_gb ([\d.]+)", line)
    if m: v[m.group(1)].append(float(m.group(2)))
a, f = (sum(x) / len(x) for x in (v["alone"], v["forwards"]))
print(f"mean cpu_s_per_gb: alone {a:.3f}, with 3 forwards {f:.3f}, ratio {f / a:.3f}")
PY
log "reports and logs in $OUT"
