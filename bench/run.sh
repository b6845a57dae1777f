#!/usr/bin/env bash
# Runs the same load scenarios against this server and nginx-rtmp, one after
# the other on loopback, and prints a side-by-side table with ratios.
#
#   bash bench/run.sh                      all scenarios (about 10 minutes)
#   BENCH_SCENARIOS="players100 idle1000" bash bench/run.sh
#
# Settings (environment):
#   BENCH_SCENARIOS   scenarios to run, in order (default: all, see below)
#   BENCH_DURATION    measurement window of the player scenarios (20s)
#   BENCH_INGEST_DURATION  measurement window of the ingest scenario (10s)
#   BENCH_PUBLISHERS  publishers of the ingest scenario (200)
#   BENCH_OUT         directory for the JSON reports and logs (a new temporary one)
#   BENCH_SERVERS     which servers to run: "ours nginx" (default), "ours" or "nginx"
#   BENCH_SERVER_BIN  a prebuilt rtmp-server to test instead of building ./cmd/rtmp-server
#   BENCH_PPROF       if set, a 10 s CPU profile of this server is taken in the
#                     middle of each player scenario (SCENARIO.ours.pprof;
#                     read with: go tool pprof -top BINARY FILE)
#
# nginx-core and libnginx-mod-rtmp are installed with apt-get when missing
# (as root). Both servers run as children of this script on free loopback
# ports and are stopped at the end; nothing else on the machine is touched.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

SCENARIOS=${BENCH_SCENARIOS:-"players100 players500 players1000 stalled5 idle1000 ingest200"}
DURATION=${BENCH_DURATION:-20s}
INGEST_DURATION=${BENCH_INGEST_DURATION:-10s}
PUBLISHERS=${BENCH_PUBLISHERS:-200}
SERVERS=${BENCH_SERVERS:-"ours nginx"}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/rtmp-bench.XXXXXX)}
mkdir -p "$OUT"
NGINX_MODULE=/usr/lib/nginx/modules/ngx_rtmp_module.so

log() { printf 'run.sh: %s\n' "$*" >&2; }

# Every connection is a file descriptor in the tool and in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ "$NOFILE" = unlimited ] || [ "$NOFILE" -gt 65536 ]; then
	NOFILE=65536
fi
log "open files limit: $NOFILE"

if [[ " $SERVERS " == *" nginx "* ]] && ! { command -v nginx >/dev/null && [ -f "$NGINX_MODULE" ]; }; then
	log "installing nginx-core and libnginx-mod-rtmp"
	if [ "$(id -u)" -ne 0 ]; then
		log "nginx-rtmp is missing and installing it needs root; run: apt-get install nginx-core libnginx-mod-rtmp"
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-core libnginx-mod-rtmp >/dev/null
fi

log "building into $OUT"
go build -o "$OUT/rtmp-bench" ./cmd/rtmp-bench
if [ -n "${BENCH_SERVER_BIN:-}" ]; then
	cp "$BENCH_SERVER_BIN" "$OUT/rtmp-server"
else
	go build -o "$OUT/rtmp-server" ./cmd/rtmp-server
fi

# free_port prints a TCP port that no socket uses, below the ephemeral range
# (where the tool's own connections take their local ports).
free_port() {
	local p low
	low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
	for p in $(shuf -i 10000-$((low - 1)) -n 200); do
		if ! ss -tanH "sport = :$p" | grep -q .; then
			echo "$p"
			return
		fi
	done
	log "no free port found"
	exit 1
}

# wait_listening PID PORT waits until PID listens on PORT.
wait_listening() {
	local pid=$1 port=$2 i
	for i in $(seq 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "server $pid exited; see the logs in $OUT"
			exit 1
		fi
		if ss -ltnH "sport = :$port" | grep -q .; then
			return
		fi
		sleep 0.1
	done
	log "server $pid is not listening on $port"
	exit 1
}

SERVER_PID=
stop_server() {
	if [ -n "$SERVER_PID" ]; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=
	fi
}
trap stop_server EXIT

# start_server NAME SCENARIO starts a fresh server and sets SERVER_PID, PORT
# and VARY (what tells streams apart on it).
start_server() {
	local name=$1 scenario=$2
	PORT=$(free_port)
	case $name in
	ours)
		PPROF_URL=
		local pprof=()
		if [ -n "${BENCH_PPROF:-}" ]; then
			pprof=(--pprof 127.0.0.1:0) # the address is in the log
		fi
		RTMP_PORT=$PORT BIND_ADDRESS=127.0.0.1 MAX_IP_CONCURRENT_CONNECTIONS=0 \
			GOP_CACHE_SIZE_MB=256 RTMP_CHUNK_SIZE=4096 LOG_REQUESTS=NO \
			"$OUT/rtmp-server" --config /dev/null "${pprof[@]}" >"$OUT/$scenario.ours.log" 2>&1 &
		SERVER_PID=$!
		VARY=app # the app is the channel; the key only authenticates
		;;
	nginx)
		local dir="$OUT/nginx-$scenario"
		mkdir -p "$dir"
		sed -e "s|@PORT@|$PORT|g" -e "s|@DIR@|$dir|g" -e "s|@MODULE@|$NGINX_MODULE|g" \
			-e "s|@NOFILE@|$NOFILE|g" bench/nginx.conf.in >"$dir/nginx.conf"
		nginx -p "$dir" -e "$dir/nginx-error.log" -c "$dir/nginx.conf" >"$OUT/$scenario.nginx.log" 2>&1 &
		SERVER_PID=$!
		VARY=key # the app is the application; the stream name tells streams apart
		;;
	esac
	wait_listening "$SERVER_PID" "$PORT"
	if [ "$name" = ours ] && [ -n "${BENCH_PPROF:-}" ]; then
		PPROF_URL=$(grep -o 'http://[0-9.:]*/debug/pprof/' "$OUT/$scenario.ours.log" | head -1)
	fi
}

scenario_args() {
	case $1 in
	players100) echo "-players 100 -duration $DURATION" ;;
	players500) echo "-players 500 -duration $DURATION" ;;
	players1000) echo "-players 1000 -duration $DURATION" ;;
	stalled5) echo "-players 100 -stalled 5 -duration $DURATION" ;;
	idle1000) echo "-players 0 -idle 1000 -warmup 5s" ;;
	ingest200) echo "-publishers $PUBLISHERS -bitrate 2M -duration $INGEST_DURATION" ;;
	*)
		log "unknown scenario $1"
		exit 1
		;;
	esac
}

REPORTS=()
for scenario in $SCENARIOS; do
	args=$(scenario_args "$scenario")
	for name in $SERVERS; do
		start_server "$name" "$scenario"
		log "$scenario on $name (pid $SERVER_PID, port $PORT): rtmp-bench $args"
		PROFILER=
		if [ "$name" = ours ] && [ -n "${PPROF_URL:-}" ] && [[ $scenario == players* || $scenario == ingest* ]]; then
			# The window starts after the ramp (200 connections/s) and a 2 s
			# warm-up; the profile covers 10 s of it.
			(
				conns=$(grep -o -- '-\(players\|publishers\) [0-9]*' <<<"$args" | head -1 | cut -d' ' -f2)
				sleep $((conns / 200 + 4))
				curl -sf -o "$OUT/$scenario.ours.pprof" "${PPROF_URL}profile?seconds=10" ||
					log "no profile for $scenario"
			) &
			PROFILER=$!
		fi
		# shellcheck disable=SC2086 # args is a list of flags
		"$OUT/rtmp-bench" -q -json -label "$name" -scenario "$scenario" -vary "$VARY" \
			-url "rtmp://127.0.0.1:$PORT/live/bench" -pid "$SERVER_PID" $args \
			>"$OUT/$scenario.$name.json" 2>"$OUT/$scenario.$name.txt" || {
			cat "$OUT/$scenario.$name.txt" >&2
			exit 1
		}
		if [ -n "$PROFILER" ]; then
			wait "$PROFILER" || true
		fi
		cat "$OUT/$scenario.$name.txt"
		REPORTS+=("$OUT/$scenario.$name.json")
		stop_server
	done
done

{
	echo
	echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r), $(go version | cut -d' ' -f3-)"
	echo "Server: $(git describe --tags --always --dirty 2>/dev/null || echo unknown)${BENCH_SERVER_BIN:+ (prebuilt $BENCH_SERVER_BIN)}"
	echo "nginx: $(nginx -v 2>&1 | cut -d/ -f2) with libnginx-mod-rtmp $(dpkg-query -W -f '${Version}' libnginx-mod-rtmp 2>/dev/null || echo '?')"
	echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	"$OUT/rtmp-bench" -table -a ours -b nginx "${REPORTS[@]}"
} | tee "$OUT/table.md"
log "reports, logs and table.md are in $OUT"
