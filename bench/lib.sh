# Shared by the benchmark scripts (bench/*.sh), which define log() and OUT
# before sourcing it.

# build_binaries builds rtmp-bench and rtmp-server into $OUT; with
# BENCH_SERVER_BIN set, that server binary is used instead of a build.
build_binaries() {
	log "building into $OUT"
	go build -o "$OUT/rtmp-bench" ./cmd/rtmp-bench
	if [ -n "${BENCH_SERVER_BIN:-}" ]; then
		cp "$BENCH_SERVER_BIN" "$OUT/rtmp-server"
	else
		go build -o "$OUT/rtmp-server" ./cmd/rtmp-server
	fi
}

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
	local pid=$1 port=$2
	for _ in $(seq 100); do
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
