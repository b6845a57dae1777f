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
#   BENCH_PUBLISHERS  publishers of the ingest200 scenario (200; ingest50 has 50)
#   BENCH_OUT         directory for the JSON reports and logs (a new temporary one)
#   BENCH_SERVERS     which servers to run: "ours nginx" (default), "ours" or "nginx"
#   BENCH_SERVER_BIN  a prebuilt rtmp-server to test instead of building ./cmd/rtmp-server
#   BENCH_PPROF       if set, a 10 s CPU profile of this server is taken in the
#                     middle of each player scenario (SCENARIO.ours.pprof;
#                     read with: go tool pprof -top BINARY FILE)
#   BENCH_NGINX       where nginx-rtmp comes from: "private" (default) or
#                     "system" (an nginx and ngx_rtmp_module.so already installed)
#   BENCH_NGINX_CACHE the private nginx-rtmp directory
#                     (default ${XDG_CACHE_HOME:-~/.cache}/rtmp-server-bench/nginx)
#
# nginx-rtmp is not installed: the first run fetches Debian's nginx and
# libnginx-mod-rtmp packages (and any library of theirs the machine lacks,
# about 1 MB) with apt-get download, unpacks them with dpkg-deb -x into
# BENCH_NGINX_CACHE and runs that nginx from there; no root needed, no
# package installed, no service started. Both servers run as children of
# this script on free loopback ports and are stopped at the end; nothing
# else on the machine is touched.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

SCENARIOS=${BENCH_SCENARIOS:-"players100 players500 players1000 stalled5 idle1000 ingest50 ingest200"}
DURATION=${BENCH_DURATION:-20s}
INGEST_DURATION=${BENCH_INGEST_DURATION:-10s}
PUBLISHERS=${BENCH_PUBLISHERS:-200}
SERVERS=${BENCH_SERVERS:-"ours nginx"}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/rtmp-bench.XXXXXX)}
mkdir -p "$OUT"
NGINX_SOURCE=${BENCH_NGINX:-private}
NGINX_CACHE=${BENCH_NGINX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rtmp-server-bench/nginx}

log() { printf 'run.sh: %s\n' "$*" >&2; }
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Every connection is a file descriptor in the tool and in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ "$NOFILE" = unlimited ] || [ "$NOFILE" -gt 65536 ]; then
	NOFILE=65536
fi
log "open files limit: $NOFILE"

# fetch_nginx unpacks nginx and libnginx-mod-rtmp, and the libraries of
# theirs that are not installed, into $NGINX_CACHE/root (once).
fetch_nginx() {
	if ! bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/fetch-nginx.sh" "$NGINX_CACHE" >/dev/null; then
		log "nginx-rtmp could not be fetched; or install nginx with the rtmp module and set BENCH_NGINX=system"
		exit 1
	fi
}

NGINX_BIN=
NGINX_MODULE=
NGINX_VERSION=
if [[ " $SERVERS " == *" nginx "* ]]; then
	case $NGINX_SOURCE in
	private)
		fetch_nginx
		root=$NGINX_CACHE/root
		NGINX_BIN=$root/usr/sbin/nginx
		NGINX_MODULE=$root/usr/lib/nginx/modules/ngx_rtmp_module.so
		# Libraries unpacked beside it, if any were missing.
		libdirs=$(find "$root" -name '*.so*' ! -path '*/nginx/modules/*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd:)
		if [ -n "$libdirs" ]; then
			export LD_LIBRARY_PATH=$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
		fi
		NGINX_VERSION="$(dpkg-deb -f "$NGINX_CACHE"/debs/nginx_*.deb Version) with libnginx-mod-rtmp $(dpkg-deb -f "$NGINX_CACHE"/debs/libnginx-mod-rtmp_*.deb Version), unpacked in $NGINX_CACHE"
		;;
	system)
		NGINX_BIN=$(command -v nginx || true)
		NGINX_MODULE=/usr/lib/nginx/modules/ngx_rtmp_module.so
		if [ -z "$NGINX_BIN" ] || [ ! -f "$NGINX_MODULE" ]; then
			log "BENCH_NGINX=system: no nginx on PATH or no $NGINX_MODULE"
			exit 1
		fi
		NGINX_VERSION="$("$NGINX_BIN" -v 2>&1 | cut -d/ -f2) with libnginx-mod-rtmp $(dpkg-query -W -f '${Version}' libnginx-mod-rtmp 2>/dev/null || echo '?')"
		;;
	*)
		log "BENCH_NGINX=$NGINX_SOURCE: want private or system"
		exit 1
		;;
	esac
	if ! out=$("$NGINX_BIN" -v 2>&1); then
		log "$NGINX_BIN does not run: $out"
		exit 1
	fi
fi

build_binaries

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
		# The admin listener stays on, as in production, on a free port
		# rather than its fixed default (an installed server may hold it).
		RTMP_PORT=$PORT BIND_ADDRESS=127.0.0.1 MAX_IP_CONCURRENT_CONNECTIONS=0 ADMIN_ADDRESS=127.0.0.1:0 \
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
		"$NGINX_BIN" -p "$dir" -e "$dir/nginx-error.log" -c "$dir/nginx.conf" >"$OUT/$scenario.nginx.log" 2>&1 &
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
	ingest50) echo "-publishers 50 -bitrate 2M -duration $INGEST_DURATION" ;;
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
	if [ -n "$NGINX_VERSION" ]; then echo "nginx: $NGINX_VERSION"; fi
	echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	"$OUT/rtmp-bench" -table -a ours -b nginx "${REPORTS[@]}"
} | tee "$OUT/table.md"
log "reports, logs and table.md are in $OUT"
