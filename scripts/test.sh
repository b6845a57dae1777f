#!/usr/bin/env bash
# Runs every test of the project. Installs what the tests need with apt-get
# when it is missing and this runs as root: a C compiler and the C library
# headers (go test -race needs cgo), and the real peers the tests talk to
# (ffmpeg, rtmpdump, redis-server, systemd tools); it prints what it
# installs. The tests start their own redis-server, callback servers and
# listeners on free loopback ports.
#
#   bash scripts/test.sh                 install what is missing, then test
#   bash scripts/test.sh --install-only  only install what is missing
set -euo pipefail
cd "$(dirname "$0")/.."

install_only=0
case ${1:-} in
--install-only) install_only=1 ;;
"") ;;
*)
  echo "usage: $0 [--install-only]" >&2
  exit 2
  ;;
esac

# What the tests need, by the command (or, for an absolute path, the file)
# that shows it is there, and the Debian package that provides it.
declare -A package_of=(
  [ffmpeg]=ffmpeg [ffprobe]=ffmpeg [rtmpdump]=rtmpdump [redis-server]=redis-server
  [systemd-socket-activate]=systemd [systemd-analyze]=systemd
  [gcc]=gcc
  [/usr/include/stdio.h]=libc6-dev
)
present() {
  if [[ $1 == /* ]]; then [[ -e $1 ]]; else command -v "$1" >/dev/null 2>&1; fi
}
missing=()
for cmd in "${!package_of[@]}"; do
  present "$cmd" || missing+=("${package_of[$cmd]}")
done
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d keeps the packages from starting their own services.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
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
for cmd in "${!package_of[@]}"; do
  present "$cmd" || require=0
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
