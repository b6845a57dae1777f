#!/usr/bin/env bash
# Checks that `make test` sets itself up on a fresh Debian 12: in a chroot
# of a pristine debootstrap --variant=minbase root with only the host's Go
# toolchain added (bound read-only at /usr/local/go), it
#
#   1. checks that `go test -race` fails there as it comes (no C compiler:
#      otherwise this test would prove nothing);
#   2. runs the install step of scripts/test.sh (--install-only), which must
#      install every test peer and what -race needs (cgo: gcc, libc6-dev);
#   3. runs a short `go test -race` of one small package;
#   4. checks that packaging/test/nspawn.sh, run in this chroot, stops at
#      once saying that it needs a real root or VM.
#
# The chroot shares the host's network (apt fetches from the host's Debian
# mirror); its mounts live in a private mount namespace. The root filesystem
# is cached as nspawn.sh caches its own; the .debs apt fetches are kept in
# the cache too (apt-archives/), so later runs download nothing. Exit status:
# 0 if every check passed, 1 if one failed, 2 if the test could not be set up.
# About 4.5 minutes on 2 busy cores (installing the packages and building
# the race runtime take 2 each); the first run adds about 6 for debootstrap
# and the downloads.
#
# Usage (as root): bash packaging/test/fresh.sh
#   RTMP_TEST_CACHE   cache directory (default ${XDG_CACHE_HOME:-~/.cache}/rtmp-server-test)
#   KEEP=1            keep the work directory (root filesystem, logs)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
suite=bookworm
# The package checked with -race: small, and needing no module download.
race_pkg=./internal/amf

die() {
	echo "fresh.sh: $*" >&2
	exit 2
}
log() { echo "== $*"; }
failures=0
pass() { echo "PASS: $*"; }
fail() {
	failures=$((failures + 1))
	echo "FAIL: $*"
}

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, chroot, mount)"

# The mounts below vanish with this private mount namespace, however the
# script ends.
if [[ -z ${RTMP_FRESH_UNSHARED:-} ]]; then
	RTMP_FRESH_UNSHARED=1 exec unshare --mount --propagation private bash "${BASH_SOURCE[0]}" "$@"
fi

# shellcheck source=packaging/test/lib.sh
. "$repo/packaging/test/lib.sh"

goroot=$(cd "$repo" && go env GOROOT) || die "no Go toolchain on PATH"
install_host_tools debootstrap=debootstrap zstd=zstd

work=$(mktemp -d /tmp/rtmp-server-fresh.XXXXXX)
root=$work/root
mounts=()
cleanup() {
	local rc=$? i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount -l "${mounts[i]}" 2>/dev/null || true
	done
	if [[ ${KEEP:-} == 1 ]]; then
		echo "work directory kept: $work"
	else
		# --one-file-system: never into a mount that survived.
		rm -rf --one-file-system "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bind() { # SOURCE TARGET [ro]
	mkdir -p "$2"
	mount --bind "$1" "$2"
	mounts+=("$2")
	if [[ ${3:-} == ro ]]; then mount -o remount,bind,ro "$2"; fi
}

total=$SECONDS
tarball=$(rootfs_tarball "$suite" "")
mkdir -p "$root"
tar -C "$root" --zstd -xf "$tarball"

# The tree as it is checked out, without build output.
mkdir -p "$root/src"
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$repo" && git ls-files -z -co --exclude-standard |
		tar --null --no-recursion --ignore-failed-read -T - -cf - 2>/dev/null) | tar -C "$root/src" -xf -
else
	tar -C "$repo" --exclude=./.git --exclude=./bin --exclude=./dist -cf - . | tar -C "$root/src" -xf -
fi

cache=$(test_cache)
mkdir -p "$cache/apt-archives/partial"
mount -t proc proc "$root/proc" && mounts+=("$root/proc")
mkdir -p "$root/dev" && mount --rbind /dev "$root/dev" && mounts+=("$root/dev")
bind "$goroot" "$root/usr/local/go" ro
bind "$cache/apt-archives" "$root/var/cache/apt/archives"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Keep the downloaded .debs for the next run.
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$root/etc/apt/apt.conf.d/90keep-debs"

# in_root COMMAND...: runs a command in the chroot, in /src, with a clean
# environment and Go on PATH, as a new user's shell would have it.
in_root() {
	chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 GOTOOLCHAIN=local GOPROXY=off \
		PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		bash -c 'cd /src && "$@"' bash "$@"
}
race_test() { in_root go test -race -count=1 "$race_pkg"; }

log "go test -race in the fresh root, before the install step"
if out=$(race_test 2>&1); then
	fail "go test -race must fail before the install step (the root has a C compiler already?)"
else
	pass "go test -race fails as expected before the install step: $(grep -m1 -iE 'cgo|gcc' <<<"$out" || head -n1 <<<"$out")"
fi

log "scripts/test.sh --install-only"
start=$SECONDS
if in_root bash scripts/test.sh --install-only 2>&1 | tee "$work/install.log"; then
	pass "the install step ran ($((SECONDS - start)) s)"
else
	fail "the install step failed"
fi

log "go test -race $race_pkg"
start=$SECONDS
if out=$(race_test 2>&1); then
	pass "go test -race $race_pkg after the install step ($((SECONDS - start)) s): $out"
else
	fail "go test -race $race_pkg after the install step"$'\n'"$out"
fi

log "packaging/test/nspawn.sh in the chroot"
rc=0
out=$(in_root bash packaging/test/nspawn.sh 2>&1) || rc=$?
if [[ $rc == 3 ]] && grep -q 'needs a real root file system or a VM' <<<"$out"; then
	pass "nspawn.sh stops in a chroot (rc 3): $out"
else
	fail "nspawn.sh in a chroot: want rc 3 and the chroot message, got rc $rc"$'\n'"$out"
fi

echo
echo "fresh: $failures failed, $((SECONDS - total)) s in all"
((failures == 0))
