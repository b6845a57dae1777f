#!/usr/bin/env bash
# Builds the container image from the repository's Dockerfile with podman,
# in the build context that goreleaser's dockers section also lays out (the
# static binary as ./rtmp-server, the CA bundle as
# ./bin/pkg/ca-certificates.crt), then tests it: runs it with runc, checks
# that the server runs as a non-root uid, publishes a test picture with
# ffmpeg and plays it back with ffprobe through the published port (a free
# port on 127.0.0.1 that podman picks), and finds the publish in the log.
#
# Usage (as root):
#   bash packaging/test/image.sh               build and test
#   bash packaging/test/image.sh --build-only  build localhost/rtmp-server:VERSION
#   VERSION=1.2.3 IMAGE=localhost/rtmp-server:1.2.3 bash packaging/test/image.sh
#
# podman needs the runc runtime here (crun fails on this cgroup layout) and
# rlimits no higher than the host's: the script passes both.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
version=${VERSION:-$(git -C "$repo" describe --tags --always --dirty 2>/dev/null || echo dev)}
build_only=0
[[ ${1:-} == --build-only ]] && build_only=1
image=${IMAGE:-localhost/rtmp-server:$([[ $build_only == 1 ]] && echo "$version" || echo test-$$)}

failures=0
passes=0
pass() {
	passes=$((passes + 1))
	echo "PASS: $*"
}
fail() {
	failures=$((failures + 1))
	echo "FAIL: $*"
}
die() {
	echo "image.sh: $*" >&2
	exit 2
}
log() { echo "== $*"; }
# shellcheck source=packaging/test/lib.sh
. "$repo/packaging/test/lib.sh"

[[ $(id -u) -eq 0 ]] || die "must run as root (rootful podman)"
install_host_tools podman=podman runc=runc ffmpeg=ffmpeg ffprobe=ffmpeg \
	fuse-overlayfs=fuse-overlayfs slirp4netns=slirp4netns newuidmap=uidmap
[[ -r /etc/ssl/certs/ca-certificates.crt ]] || die "no /etc/ssl/certs/ca-certificates.crt (install ca-certificates)"

work=$(mktemp -d /tmp/rtmp-server-image.XXXXXX)
container=
cleanup() {
	local rc=$?
	if [[ -n $container ]]; then
		podman rm -f -t 5 "$container" >/dev/null 2>&1 || true
	fi
	if [[ $build_only == 0 && -z ${IMAGE:-} ]]; then
		podman rmi -f "$image" >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$SECONDS
echo "== build $image ($version)"
mkdir -p "$work/context/bin/pkg"
(cd "$repo" && CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=$version" \
	-o "$work/context/rtmp-server" ./cmd/rtmp-server)
cp /etc/ssl/certs/ca-certificates.crt "$work/context/bin/pkg/ca-certificates.crt"
cp "$repo/Dockerfile" "$work/context/Dockerfile"
podman build -q -t "$image" \
	--label "org.opencontainers.image.version=$version" "$work/context" >"$work/build.log" 2>&1 ||
	{ cat "$work/build.log" >&2; die "podman build failed"; }
echo "built in $((SECONDS - start)) s: $(podman image inspect -f '{{.Size}}' "$image") bytes"
if [[ $build_only == 1 ]]; then
	trap - EXIT
	rm -rf "$work"
	exit 0
fi

echo "== run"
user=$(podman image inspect -f '{{.Config.User}}' "$image")
if [[ $user =~ ^[1-9][0-9]*(:[0-9]+)?$ ]]; then pass "image user is numeric and not root ($user)"; else fail "image user is numeric and not root ('$user')"; fi
exposed=$(podman image inspect -f '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}' "$image")
if [[ $exposed == *1935/tcp* ]]; then pass "image exposes 1935/tcp"; else fail "image exposes 1935/tcp ('$exposed')"; fi

container=$(podman run -d --runtime runc --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 \
	-e LOG_REQUESTS=YES -e RTMP_PLAY_WHITELIST=* -p 127.0.0.1::1935 "$image") ||
	die "podman run failed"
port=$(podman port "$container" 1935/tcp | sed -n 's/.*:\([0-9]*\)$/\1/p' | head -n1)
[[ -n $port ]] || die "no published port for 1935/tcp"
url=rtmp://127.0.0.1:$port/live/image-test
echo "container ${container:0:12} on 127.0.0.1:$port"

listening() { bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"; }
# podman's port forwarder accepts before the server does: look for the
# server's own line in the log as well.
started() { listening && podman logs "$container" 2>&1 | grep -q listening; }
if wait_for 15 started; then pass "server listening"; else fail "server listening"$'\n'"$(podman logs "$container" 2>&1 | tail -20)"; fi

pid=$(podman inspect -f '{{.State.Pid}}' "$container")
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo unknown)
if [[ $uid =~ ^[1-9][0-9]*$ ]]; then pass "server process runs as uid $uid"; else fail "server process runs as a non-root uid (Uid '$uid')"; fi

timeout 30 ffmpeg -hide_banner -loglevel error -nostdin -re -f lavfi -i testsrc2=size=320x240:rate=25 \
	-c:v libx264 -preset ultrafast -g 25 -t 10 -f flv "$url" >"$work/ffmpeg.log" 2>&1 &
publisher=$!
probe() {
	[[ $(timeout 8 ffprobe -v error -select_streams v:0 -show_entries stream=codec_name -of csv=p=0 "$url" 2>>"$work/ffprobe.log") == h264 ]]
}
if wait_for 20 probe; then pass "ffmpeg publishes and ffprobe plays h264 through the container"; else fail "ffmpeg publishes and ffprobe plays through the container"$'\n'"$(cat "$work/ffmpeg.log" "$work/ffprobe.log" | tail -20)"; fi
if wait "$publisher"; then pass "publisher finished cleanly"; else fail "publisher finished cleanly"$'\n'"$(tail -20 "$work/ffmpeg.log")"; fi
if podman logs "$container" 2>&1 | grep -q 'msg=publish.*channel=live'; then pass "log shows the publish"; else fail "log shows the publish"$'\n'"$(podman logs "$container" 2>&1 | tail -20)"; fi

podman stop -t 10 "$container" >/dev/null
code=$(podman inspect -f '{{.State.ExitCode}}' "$container")
if [[ $code == 0 ]]; then pass "SIGTERM stops the server cleanly (exit 0)"; else fail "SIGTERM stops the server cleanly (exit $code)"; fi

echo
echo "image: $passes passed, $failures failed ($((SECONDS - start)) s)"
((failures == 0))
