#!/usr/bin/env bash
# Unpacks Debian's nginx and libnginx-mod-rtmp (and any library of theirs
# the machine lacks) into a private directory, once, without installing
# anything: the forwarding tests push streams to this nginx-rtmp. Prints
# the directory (give it to the tests as RTMP_TEST_NGINX_ROOT); bench/run.sh
# uses the same place by default.
#
#   bash scripts/fetch-nginx.sh [DIR]   default ${XDG_CACHE_HOME:-~/.cache}/rtmp-server-bench/nginx
set -euo pipefail
cache=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/rtmp-server-bench/nginx}
root=$cache/root debs=$cache/debs
log() { echo "fetch-nginx: $*" >&2; }

if [ -x "$root/usr/sbin/nginx" ] && [ -f "$root/usr/lib/nginx/modules/ngx_rtmp_module.so" ]; then
  echo "$root"
  exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
  log "apt-get and dpkg-deb are needed"
  exit 1
fi
log "fetching nginx and libnginx-mod-rtmp into $cache with apt-get download (nothing is installed)"
rm -rf "$debs" "$root" "$root.tmp"
mkdir -p "$debs"
sandbox=()
if [ "$(id -u)" -eq 0 ]; then
  # apt's download user cannot write into root's home.
  sandbox=(-o APT::Sandbox::User=root)
fi
download() { (cd "$debs" && apt-get download -qq "${sandbox[@]}" "$@" >/dev/null); }
if ! download nginx libnginx-mod-rtmp; then
  if [ "$(id -u)" -ne 0 ]; then
    log "apt-get download failed; if the package lists are stale, run apt-get update as root"
    exit 1
  fi
  apt-get update -qq
  download nginx libnginx-mod-rtmp
fi
# Their libraries that the machine lacks (nginx-common holds only
# configuration files, which the tests do not use).
pkgs=$(for deb in "$debs"/*.deb; do dpkg-deb -f "$deb" Depends; done | tr ',|' '\n\n' |
  sed -E 's/^ *//; s/[ :(].*//' | grep '^lib' | sort -u |
  while read -r p; do
    dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q ' installed$' || echo "$p"
  done)
if [ -n "$pkgs" ]; then
  log "fetching libraries the machine lacks: $pkgs"
  # shellcheck disable=SC2086 # a list of package names
  download $pkgs
fi
for deb in "$debs"/*.deb; do
  dpkg-deb -x "$deb" "$root.tmp"
done
mv "$root.tmp" "$root"
log "unpacked: $(cd "$debs" && echo *.deb)"
echo "$root"
