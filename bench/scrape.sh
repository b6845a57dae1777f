#!/usr/bin/env bash
# What scraping the admin listener costs the server: CPU seconds per GB
# delivered at 1000 players with /metrics fetched every second, against the
# same load with the admin listener off (ADMIN_ADDRESS=off). The two run
# alternately, ROUNDS times each, the order flipped every round (on-off,
# off-on, ...) so that a machine getting busier or quieter weighs on both
# alike; each round gives one ratio, and the summary shows their median and
# spread.
#
#   bash bench/scrape.sh                  6 rounds of 20 s windows (about 8 minutes)
#   SCRAPE_ROUNDS=10 bash bench/scrape.sh
#
# Settings (environment):
#   SCRAPE_ROUNDS     rounds, one run of each kind per round (6)
#   SCRAPE_PLAYERS    players (1000)
#   SCRAPE_DURATION   measurement window of each run (20s)
#   SCRAPE_INTERVAL   seconds between scrapes (1)
#   BENCH_OUT         directory for the JSON reports and logs (a new temporary one)
#   BENCH_SERVER_BIN  a prebuilt rtmp-server instead of building ./cmd/rtmp-server
set -euo pipefail

cd "$(dirname "$0")/.."

ROUNDS=${SCRAPE_ROUNDS:-6}
PLAYERS=${SCRAPE_PLAYERS:-1000}
DURATION=${SCRAPE_DURATION:-20s}
INTERVAL=${SCRAPE_INTERVAL:-1}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/rtmp-scrape.XXXXXX)}
mkdir -p "$OUT"

log() { printf 'scrape.sh: %s\n' "$*" >&2; }
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in curl jq ss; do
	command -v "$tool" >/dev/null || {
		log "$tool is needed"
		exit 1
	}
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

build_binaries

SERVER_PID=
SCRAPER_PID=
cleanup() {
	if [ -n "$SCRAPER_PID" ]; then
		kill "$SCRAPER_PID" 2>/dev/null || true
		wait "$SCRAPER_PID" 2>/dev/null || true
		SCRAPER_PID=
	fi
	if [ -n "$SERVER_PID" ]; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=
	fi
}
trap cleanup EXIT

# run KIND NAME: one measured run with the admin listener on and scraped
# (KIND=on) or off (KIND=off); the report goes to $OUT/NAME.json.
run() {
	local kind=$1 name=$2 port admin=off i url=
	port=$(free_port)
	if [ "$kind" = on ]; then
		admin=127.0.0.1:0
	fi
	RTMP_PORT=$port BIND_ADDRESS=127.0.0.1 MAX_IP_CONCURRENT_CONNECTIONS=0 ADMIN_ADDRESS=$admin \
		GOP_CACHE_SIZE_MB=256 RTMP_CHUNK_SIZE=4096 LOG_REQUESTS=NO \
		"$OUT/rtmp-server" --config /dev/null >"$OUT/$name.log" 2>&1 &
	SERVER_PID=$!
	for i in $(seq 100); do
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			log "server exited; see $OUT/$name.log"
			exit 1
		fi
		if grep -q 'msg=ready' "$OUT/$name.log"; then
			break
		fi
		sleep 0.1
	done
	if [ "$kind" = on ]; then
		url="http://$(grep -o 'proto=http addr=[^ ]*' "$OUT/$name.log" | head -1 | cut -d= -f3)/metrics"
		# The scraper runs from the start: the window sees a scrape every
		# INTERVAL seconds throughout.
		(
			ok=0 failed=0
			trap 'echo "$ok $failed" >"$OUT/$name.scrapes"; exit 0' TERM
			while :; do
				if curl -sf -o /dev/null --max-time 5 "$url"; then
					ok=$((ok + 1))
				else
					failed=$((failed + 1))
				fi
				sleep "$INTERVAL" &
				wait $!
			done
		) &
		SCRAPER_PID=$!
	fi
	"$OUT/rtmp-bench" -q -json -label "$kind" -scenario "scrape-$kind" -vary app \
		-url "rtmp://127.0.0.1:$port/live/bench" -pid "$SERVER_PID" -players "$PLAYERS" -duration "$DURATION" \
		>"$OUT/$name.json" 2>"$OUT/$name.txt" || {
		cat "$OUT/$name.txt" >&2
		exit 1
	}
	cleanup
	local summary
	summary=$(jq -r '"\(.server.cpu_s_per_gb | .*1000 | round / 1000) s/GB, \(.server.gb | .*100 | round / 100) GB, delivery \(.players.delivery_pct)%, machine CPU pressure \(.machine.cpu_pressure_pct | round)%"' "$OUT/$name.json")
	if [ "$kind" = on ]; then
		summary="$summary, scrapes (ok failed) $(cat "$OUT/$name.scrapes" 2>/dev/null || echo '? ?')"
	fi
	log "$name: $summary"
}

for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) -eq 1 ]; then order="on off"; else order="off on"; fi
	for kind in $order; do
		run "$kind" "round$r.$kind"
	done
done

# One row per round, then the median ratio and its spread.
{
	echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r), $(go version | cut -d' ' -f3-)"
	echo "Server: $(git describe --tags --always --dirty 2>/dev/null || echo unknown); $PLAYERS players, $DURATION windows, a scrape every ${INTERVAL}s"
	echo
	echo "| round | order | on: CPU s/GB | off: CPU s/GB | on / off | CPU pressure on / off, % |"
	echo "|--:|---|--:|--:|--:|---|"
	for r in $(seq "$ROUNDS"); do
		if [ $((r % 2)) -eq 1 ]; then order="on, off"; else order="off, on"; fi
		jq -rn --arg r "$r" --arg order "$order" \
			--slurpfile on "$OUT/round$r.on.json" --slurpfile off "$OUT/round$r.off.json" \
			'"| \($r) | \($order) | \($on[0].server.cpu_s_per_gb | .*1000 | round / 1000) | \($off[0].server.cpu_s_per_gb | .*1000 | round / 1000) | \($on[0].server.cpu_s_per_gb / $off[0].server.cpu_s_per_gb | .*1000 | round / 1000) | \($on[0].machine.cpu_pressure_pct | round) / \($off[0].machine.cpu_pressure_pct | round) |"'
	done
	echo
	# shellcheck disable=SC2046 # a list of files
	jq -rn '
		[inputs] | group_by(.label) | map({key: .[0].label, value: [.[].server.cpu_s_per_gb]}) | from_entries as $k
		| def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
		  def r3: . * 1000 | round / 1000;
		  [range(0; $k.on | length) | $k.on[.] / $k.off[.]] as $ratios
		| "Ratio on / off per round: median \($ratios | median | r3), min \($ratios | min | r3), max \($ratios | max | r3); ratio of the medians \(($k.on | median) / ($k.off | median) | r3) (on \($k.on | median | r3), off \($k.off | median | r3) s/GB)"
	' $(for r in $(seq "$ROUNDS"); do echo "$OUT/round$r.on.json" "$OUT/round$r.off.json"; done)
} | tee "$OUT/table.md"
log "reports, logs and table.md are in $OUT"
