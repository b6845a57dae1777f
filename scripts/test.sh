#!/usr/bin/env bash
# Runs every test of the project. Installs what the tests need with apt-get
# when it is missing and this runs as root: a C compiler and the C library
# headers (go test -race needs cgo), and the real peers the tests talk to
# (ffmpeg, rtmpdump, redis-server, systemd tools, GStreamer, VLC, iproute2);
# it prints what it installs. The tests start their own redis-server,
# callback servers and listeners on loopback ports (internal/testpeer).
#
#   bash scripts/test.sh                 install what is missing, then test
#   bash scripts/test.sh --install-only  only install what is missing
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=packaging/test/lib.sh
. packaging/test/lib.sh

install_only=0
case ${1:-} in
--install-only) install_only=1 ;;
"") ;;
*)
  echo "usage: $0 [--install-only]" >&2
  exit 2
  ;;
esac

# What the tests need, one per line: the thing that shows it is there and
# the Debian package that provides it. The thing is a command, an absolute
# path (a file), gst:ELEMENT (a GStreamer element: plugins carry no program
# to look for) or pkg:PACKAGE (a package with nothing else to look for).
declare -A package_of=(
  [gcc]=gcc
  [/usr/include/stdio.h]=libc6-dev
  [ffmpeg]=ffmpeg
  [ffprobe]=ffmpeg
  [rtmpdump]=rtmpdump
  [redis-server]=redis-server
  [systemd-socket-activate]=systemd
  [systemd-analyze]=systemd
  [ip]=iproute2
  [unshare]=util-linux
  [cvlc]=vlc-bin
  [pkg:vlc-plugin-base]=vlc-plugin-base
  [gst-launch-1.0]=gstreamer1.0-tools
  [gst-inspect-1.0]=gstreamer1.0-tools
  [gst:videotestsrc]=gstreamer1.0-plugins-base
  [gst:flvmux]=gstreamer1.0-plugins-good
  [gst:rtmp2sink]=gstreamer1.0-plugins-bad
  [gst:rtmpsink]=gstreamer1.0-plugins-bad
  [gst:h264parse]=gstreamer1.0-plugins-bad
  [gst:voaacenc]=gstreamer1.0-plugins-bad
  [gst:x264enc]=gstreamer1.0-plugins-ugly
  [chromium]=chromium
)
present() {
  case $1 in
  /*) [[ -e $1 ]] ;;
  gst:*) command -v gst-inspect-1.0 >/dev/null 2>&1 && gst-inspect-1.0 --exists "${1#gst:}" ;;
  pkg:*) dpkg-query -W -f='${Status}' "${1#pkg:}" 2>/dev/null | grep -q 'install ok installed' ;;
  *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}
missing=()
for what in "${!package_of[@]}"; do
  present "$what" || missing+=("${package_of[$what]}")
done
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "== installing: ${missing[*]}"
    apt_install "${missing[@]}"
    echo "== installed: ${missing[*]}"
  else
    echo "== missing (${missing[*]}): tests that need them will be skipped" >&2
  fi
else
  echo "== test dependencies present: $(printf '%s\n' "${package_of[@]}" | sort -u | tr '\n' ' ')"
fi

# go test -race builds with cgo: without a C compiler nothing can be tested.
if ! present gcc || ! present /usr/include/stdio.h; then
  echo "go test -race needs a C compiler and the C library headers: apt-get install gcc libc6-dev (as root)" >&2
  exit 1
fi
((install_only)) && exit 0

require=1
for what in "${!package_of[@]}"; do
  present "$what" || require=0
done
# nginx-rtmp, which the forwarding tests push to, is unpacked privately
# (scripts/fetch-nginx.sh), not installed.
if nginx_root=$(bash scripts/fetch-nginx.sh); then
  export RTMP_TEST_NGINX_ROOT=$nginx_root
elif [[ $(id -u) -eq 0 ]]; then
  # As root everything a test needs can be had: a failed fetch is an error, not a reason to skip.
  echo "== nginx-rtmp could not be fetched (scripts/fetch-nginx.sh above says why)" >&2
  exit 1
else
  echo "== nginx-rtmp could not be fetched: the tests that need it will be skipped" >&2
  require=0
fi
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
echo "== staticcheck"
go tool staticcheck ./...
echo "== go test -race"
go test -race -count=1 -timeout 12m ./...
echo "== fuzz (every target briefly; make fuzz runs them longer)"
FUZZ_TIME=${FUZZ_TIME:-4s} bash scripts/fuzz-ci.sh
