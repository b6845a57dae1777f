#!/usr/bin/env bash
# Checks the systemd units in this directory without a running systemd:
#   1. systemd-analyze verify, in a scratch root that holds the programs the
#      units run (stand-ins) and the distribution's own units, failing on any
#      diagnostic: verify exits 0 even on unknown keys, so stderr decides;
#   2. systemd-analyze security --offline=true: the service's exposure level
#      must stay at or below MAX_EXPOSURE (default 2.0);
#   3. the socket names and the Sockets= list the server relies on.
# Usage: bash packaging/systemd/check.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
units=(rtmp-server.service rtmp-server.socket rtmp-server-rtmps.socket rtmp-server-admin.socket)
max_exposure=${MAX_EXPOSURE:-2.0}

fail() {
	echo "check.sh: $*" >&2
	exit 1
}

command -v systemd-analyze >/dev/null || fail "systemd-analyze not installed"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

# The distribution's units (sysinit.target, sockets.target, ...) that ours
# depend on.
for dir in /usr/lib/systemd/system /lib/systemd/system; do
	if [[ -e $dir/sysinit.target ]]; then
		mkdir -p "$root/usr/lib/systemd"
		cp -a "$dir" "$root/usr/lib/systemd/"
		break
	fi
done
[[ -d $root/usr/lib/systemd/system ]] || fail "no systemd unit directory with sysinit.target"

# Stand-ins for every program the service runs.
mkdir -p "$root/etc/systemd/system"
for unit in "${units[@]}"; do
	cp "$here/$unit" "$root/etc/systemd/system/"
done
while read -r prog; do
	mkdir -p "$root$(dirname "$prog")"
	printf '#!/bin/sh\nexit 0\n' >"$root$prog"
	chmod 0755 "$root$prog"
done < <(sed -n -E 's/^Exec[A-Za-z]*=[-+!@:]*([^ ]+).*/\1/p' "$here/rtmp-server.service" | sort -u)

echo "== systemd-analyze verify"
paths=()
for unit in "${units[@]}"; do
	paths+=("/etc/systemd/system/$unit")
done
if ! diagnostics=$(systemd-analyze verify --root="$root" "${paths[@]}" 2>&1); then
	fail "verify failed:"$'\n'"$diagnostics"
fi
[[ -z $diagnostics ]] || fail "verify reported:"$'\n'"$diagnostics"
echo "ok: ${units[*]}"

echo "== systemd-analyze security --offline=true"
report=$(systemd-analyze security --offline=true "$here/rtmp-server.service" 2>&1) || true
exposure=$(sed -n -E 's/.*Overall exposure level for rtmp-server\.service: ([0-9]+\.[0-9]+).*/\1/p' <<<"$report")
[[ -n $exposure ]] || fail "no exposure level in:"$'\n'"$report"
grep -E '^✗' <<<"$report" || true
if awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e > m) }'; then
	fail "exposure $exposure is above $max_exposure"
fi
echo "ok: exposure $exposure (at most $max_exposure)"

echo "== socket names"
want_name() { # unit name
	grep -qx "FileDescriptorName=$2" "$here/$1" || fail "$1: want FileDescriptorName=$2"
	grep -qx "Service=rtmp-server.service" "$here/$1" || fail "$1: want Service=rtmp-server.service"
}
want_name rtmp-server.socket rtmp
want_name rtmp-server-rtmps.socket rtmps
want_name rtmp-server-admin.socket admin
# Listing the RTMPS socket in Sockets= would pull it in, and bind port 443,
# whenever the service starts; the admin socket (loopback) is meant to.
sockets=$(sed -n 's/^Sockets=//p' "$here/rtmp-server.service")
[[ $sockets == "rtmp-server.socket rtmp-server-admin.socket" ]] ||
	fail "rtmp-server.service: want Sockets=rtmp-server.socket rtmp-server-admin.socket, have '$sockets'"
# The store must hold what the server is told it holds.
store_max=$(sed -n 's/^FileDescriptorStoreMax=//p' "$here/rtmp-server.service")
store_env=$(sed -n 's/^Environment=FDSTORE=//p' "$here/rtmp-server.service")
[[ -n $store_max && $store_max == "$store_env" ]] ||
	fail "rtmp-server.service: want FileDescriptorStoreMax= equal to Environment=FDSTORE=, have '$store_max' and '$store_env'"
echo "ok"
