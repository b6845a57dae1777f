#!/usr/bin/env bash
# Runs every test of the project. Installs the real peers the tests talk to
# (ffmpeg, rtmpdump, redis-server, systemd tools, VLC, GStreamer) with
# apt-get when they are missing and this runs as root; the tests start their
# own redis-server, callback servers and listeners on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Debian package of each program the tests run, one per line.
declare -A package_of=(
  [ffmpeg]=ffmpeg
  [ffprobe]=ffmpeg
  [rtmpdump]=rtmpdump
  [redis-server]=redis-server
  [systemd-socket-activate]=systemd
  [systemd-analyze]=systemd
  [gst-launch-1.0]=gstreamer1.0-tools
  [gst-inspect-1.0]=gstreamer1.0-tools
  [ip]=iproute2
  [unshare]=util-linux
  [cvlc]=vlc-bin
)
# The Debian package of each GStreamer element the tests use, one per line
# (plugins carry no program to look for).
declare -A gst_package_of=(
  [videotestsrc]=gstreamer1.0-plugins-base
  [flvmux]=gstreamer1.0-plugins-good
  [rtmp2sink]=gstreamer1.0-plugins-bad
  [rtmpsink]=gstreamer1.0-plugins-bad
  [x264enc]=gstreamer1.0-plugins-ugly
  [h264parse]=gstreamer1.0-plugins-bad
  [voaacenc]=gstreamer1.0-plugins-bad
)
# Packages with no command or element to look for: VLC's demuxers and
# decoders.
plugin_packages=(
  vlc-plugin-base
)
have_package() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}
have_gst_element() {
  command -v gst-inspect-1.0 >/dev/null 2>&1 && gst-inspect-1.0 --exists "$1"
}
missing=()
for cmd in "${!package_of[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${package_of[$cmd]}")
done
for element in "${!gst_package_of[@]}"; do
  have_gst_element "$element" || missing+=("${gst_package_of[$element]}")
done
for pkg in "${plugin_packages[@]}"; do
  have_package "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "== installing test peers: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d keeps the packages from starting their own services.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
  else
    echo "== missing test peers (${missing[*]}): tests that need them will be skipped" >&2
  fi
fi

require=1
for cmd in "${!package_of[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || require=0
done
for element in "${!gst_package_of[@]}"; do
  have_gst_element "$element" || require=0
done
for pkg in "${plugin_packages[@]}"; do
  have_package "$pkg" || require=0
done
export RTMP_TEST_REQUIRE_PEERS=$require

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n $unformatted ]]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi
echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 -timeout 12m ./...
echo "== fuzz (every target briefly; make fuzz runs them longer)"
FUZZ_TIME=${FUZZ_TIME:-4s} bash scripts/fuzz-ci.sh
