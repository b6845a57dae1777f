#!/usr/bin/env bash
# Tests the .deb and .rpm packages under a real, booted systemd:
#
#   1. builds both packages twice (versions 1.0.0 and 1.0.1, for the
#      upgrade; 1.0.0 from a copy whose documentation of the variables
#      differs) with `make package`, and lints them: lintian and rpmlint
#      must report nothing that the committed overrides do not explain;
#   2. boots a Debian 12 container with systemd-nspawn (private network,
#      volatile overlay over a cached minbase rootfs, packages bound
#      read-only at /pkgs) and, for the .deb: installs it, streams through the
#      socket-activated service with the host's ffmpeg and ffprobe run in the
#      container's network namespace, checks the service user, the journal
#      fields, a reload of an edited env file, the watchdog, a
#      non-interactive upgrade (apt-get, stdin closed) that keeps the edited
#      env file without a conffile question and leaves the sockets alone,
#      then remove and purge;
#   3. boots a fresh container and does install, upgrade and erase of the
#      .rpm with Debian's rpm (--nodeps: its database knows none of the
#      dpkg-installed dependencies);
#   4. in each container, the one upgrade from a package of the old format
#      (version 0.9.0, repackaged from 1.0.0's build with the long, documented
#      env file of old releases) to 1.0.1, over an edited and an unedited env
#      file: no question, the edited file kept byte for byte.
#
# Each check prints PASS or FAIL and the run goes on; the exit status is 1
# if any check failed, 2 if the test could not be set up, 3 if it cannot run
# here: inside a chroot, where `systemd-nspawn -b` cannot boot a container
# (it needs a real root file system, or a VM). Every wait has a
# time limit. A run takes about 1.5 minutes on 2 cores; the first one adds
# about 4 minutes for debootstrap.
#
# Usage (as root): bash packaging/test/nspawn.sh
#   RTMP_TEST_CACHE   cache directory for the rootfs tarball
#                     (default ${XDG_CACHE_HOME:-~/.cache}/rtmp-server-test)
#   KEEP=1            keep the work directory (logs, packages, rootfs)
#   RTMP_TEST_PKGS    directory with packages 0.9.0, 1.0.0 and 1.0.1 already
#                     built (make package VERSION=1.0.0 PKG_OUT=DIR, and 1.0.1;
#                     0.9.0 with the env file of commit 5fe54b0)
#   RTMP_TEST_SKIP_CHROOT=1  in a chroot, skip with exit status 0 instead of 3
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=packaging/test/lib.sh
. "$repo/packaging/test/lib.sh"
suite=bookworm
# Packages the container needs besides minbase: systemd as PID 1, D-Bus for
# systemctl, procps for the unit's /bin/kill, rpm for the .rpm test.
include=systemd,systemd-sysv,dbus,procps,rpm
version1=1.0.0
version2=1.0.1
version0=0.9.0 # the old format of /etc/rtmp-server.env
machine=rtmp-server-test-$$
port=1935 # inside the container's private network

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
# check DESCRIPTION COMMAND...: PASS if the command succeeds.
check() {
	local what=$1
	shift
	if "$@" >/dev/null 2>>"$work/checks.log"; then pass "$what"; else fail "$what"; fi
}
die() {
	echo "nspawn.sh: $*" >&2
	exit 2
}
log() { echo "== $*"; }

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, systemd-nspawn, nsenter)"

# in_chroot: whether this runs inside a chroot: / is not the root of PID 1
# or, where PID 1's root cannot be read (as in some containers), not the
# root of one of this process's ancestors.
in_chroot() {
	systemd-detect-virt --chroot >/dev/null 2>&1 && return 0
	local self pid=$$ other
	self=$(stat -c %d:%i /)
	while pid=$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) && ((pid > 0)); do
		other=$(stat -Lc %d:%i "/proc/$pid/root/" 2>/dev/null) || continue
		[[ $other == "$self" ]] || return 0
	done
	return 1
}
if in_chroot; then
	msg="this runs inside a chroot, where systemd-nspawn -b cannot boot a container: the package test needs a real root file system or a VM"
	if [[ ${RTMP_TEST_SKIP_CHROOT:-} == 1 ]]; then
		echo "SKIP: $msg (RTMP_TEST_SKIP_CHROOT=1)"
		exit 0
	fi
	echo "nspawn.sh: $msg (RTMP_TEST_SKIP_CHROOT=1 skips with status 0)" >&2
	exit 3
fi

# Host tools, installed from Debian's archive when missing.
install_host_tools systemd-nspawn=systemd-container debootstrap=debootstrap zstd=zstd \
	nsenter=util-linux ffmpeg=ffmpeg ffprobe=ffmpeg lintian=lintian \
	rpmlint=rpmlint rpm=rpm cpio=cpio dpkg-deb=dpkg

work=$(mktemp -d /tmp/rtmp-server-nspawn.XXXXXX)
nspawn_pid=
pid1=

# stop_container: TERM to systemd-nspawn, which shuts the container down.
# Never SIGKILL nspawn (its systemd would live on orphaned); if TERM does
# not end it in time, killing the container's PID 1 takes the namespaces
# down.
stop_container() {
	[[ -n $nspawn_pid ]] || return 0
	if kill -0 "$nspawn_pid" 2>/dev/null; then
		kill -TERM "$nspawn_pid" 2>/dev/null || true
		local deadline=$((SECONDS + 15))
		while kill -0 "$nspawn_pid" 2>/dev/null && ((SECONDS < deadline)); do
			sleep 0.2
		done
		if kill -0 "$nspawn_pid" 2>/dev/null && [[ -n $pid1 ]]; then
			echo "nspawn.sh: container did not stop on TERM; killing its PID 1" >&2
			kill -KILL "$pid1" 2>/dev/null || true
		fi
		wait "$nspawn_pid" 2>/dev/null || true
	fi
	nspawn_pid=
	pid1=
}

cleanup() {
	local rc=$?
	stop_container
	# Publishers left running in the background, if a check was cut short.
	local job
	for job in $(jobs -p); do kill -TERM "$job" 2>/dev/null || true; done
	if [[ ${KEEP:-} == 1 ]]; then
		echo "work directory kept: $work"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- packages ------------------------------------------------------------------

# build_old_format: $version0, $version1's build repackaged with the env file
# of the releases before it stopped changing (the long file that documented
# every variable, as in commit 5fe54b0): only nfpm runs again.
build_old_format() {
	local yaml=bin/pkg/nfpm-$arch.yaml t0=$SECONDS
	(cd "$repo" && git show 5fe54b0:etc/rtmp-server.env) >"$work/src1/etc/rtmp-server.env"
	# gzip instead of xz: it is only installed here, and packs in a fraction of the time.
	sed -i -e "s/^version: $version1\$/version: $version0/" -e 's/^\( *compression:\) xz$/\1 gzip/' "$work/src1/$yaml"
	(cd "$work/src1" && go tool nfpm package -f "$yaml" -p deb -t "$work/pkgs/" &&
		go tool nfpm package -f "$yaml" -p rpm -t "$work/pkgs/") >"$work/build-$version0.log" 2>&1 ||
		{ cat "$work/build-$version0.log" >&2; die "packaging $version0 failed"; }
	echo "packaged $version0 in $((SECONDS - t0)) s"
}

start=$SECONDS
arch=$(cd "$repo" && go env GOARCH)
if [[ -n ${RTMP_TEST_PKGS:-} ]]; then
	log "packages from $RTMP_TEST_PKGS"
	mkdir -p "$work/pkgs"
	cp "$RTMP_TEST_PKGS"/rtmp-server[-_]"$version0"* "$RTMP_TEST_PKGS"/rtmp-server[-_]"$version1"* \
		"$RTMP_TEST_PKGS"/rtmp-server[-_]"$version2"* "$work/pkgs/"
else
	log "building packages $version1 and $version2"
	# $version1 is built from a copy of the tree whose documentation of the
	# variables differs (the last variable undocumented, as if it were new in
	# $version2): the upgrade below must still not stop at a conffile question.
	mkdir -p "$work/src1"
	(cd "$repo" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - --) | tar -C "$work/src1" -xf -
	example=$work/src1/etc/rtmp-server.env.example
	head -n -4 "$example" >"$example.tmp" && mv "$example.tmp" "$example"
	for v in "$version1" "$version2"; do
		src=$repo
		[[ $v == "$version1" ]] && src=$work/src1
		make -C "$src" --no-print-directory package VERSION="$v" PKG_OUT="$work/pkgs" >"$work/build-$v.log" 2>&1 ||
			{ cat "$work/build-$v.log" >&2; die "make package VERSION=$v failed"; }
	done
	build_old_format
fi
deb_arch=$(dpkg-deb -f "$work/pkgs/rtmp-server_${version1}_"*.deb Architecture)
deb1=$work/pkgs/rtmp-server_${version1}_${deb_arch}.deb
deb2=$work/pkgs/rtmp-server_${version2}_${deb_arch}.deb
rpm1=$(echo "$work/pkgs/rtmp-server-${version1}-1."*.rpm)
rpm2=$(echo "$work/pkgs/rtmp-server-${version2}-1."*.rpm)
deb0=$work/pkgs/rtmp-server_${version0}_${deb_arch}.deb
rpm0=$(echo "$work/pkgs/rtmp-server-${version0}-1."*.rpm)
for f in "$deb0" "$deb1" "$deb2" "$rpm0" "$rpm1" "$rpm2"; do
	[[ -f $f ]] || die "no package $f"
done
echo "packages ($arch, $((SECONDS - start)) s): $(cd "$work/pkgs" && echo *)"

log "lint"
# lintian writes to ~/.config and rpm to ~/.rpmdb: a scratch HOME.
mkdir -p "$work/home" "$work/bin"
out=$(HOME=$work/home lintian --pedantic "$deb1" 2>&1 | grep -v 'running with root privileges') || true
if grep -qE '^[EW]:' <<<"$out"; then
	fail "lintian: errors or warnings"$'\n'"$out"
else
	pass "lintian: no errors or warnings${out:+ (other output: $out)}"
fi
# rpmlint as root unpacks with rpm2cpio | cpio -id, and nfpm's payload has
# absolute paths: without this wrapper it would write into /.
printf '#!/bin/sh\nexec /usr/bin/cpio --no-absolute-filenames "$@"\n' >"$work/bin/cpio"
chmod 0755 "$work/bin/cpio"
if out=$(HOME=$work/home PATH=$work/bin:$PATH rpmlint -c "$repo/packaging/rpm/rpmlint.toml" "$rpm1" 2>&1) &&
	grep -q ' 0 errors, 0 warnings' <<<"$out"; then
	pass "rpmlint: no errors or warnings"
else
	fail "rpmlint: errors or warnings"$'\n'"$out"
fi
# The rpm %pre creates the user before the sysusers.d file is installed, so
# it carries its own copy of the line.
want=$(grep -v '^#' "$repo/packaging/nfpm/rtmp-server.sysusers")
check "rpm %pre creates the user exactly as sysusers.d says" grep -qF "'$want'" "$repo/packaging/rpm/pre"
rpmq() { rpm --dbpath "$work/rpmdb" "$@"; }
mkdir -p "$work/rpmdb"
check "rpm: /etc/rtmp-server.env is %config(noreplace), root:rtmp-server 0640" \
	grep -qx 'cn 0100640 root rtmp-server /etc/rtmp-server.env' \
	<(rpmq -qp --qf '[%{FILEFLAGS:fflags} 0%{FILEMODES:octal} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]' "$rpm1")
deb_conffile() {
	local conffiles listing
	conffiles=$(dpkg-deb -I "$deb1" conffiles) && listing=$(dpkg-deb -c "$deb1") &&
		grep -qx /etc/rtmp-server.env <<<"$conffiles" &&
		grep -qE '^-rw-r----- root/rtmp-server .* \./etc/rtmp-server\.env$' <<<"$listing"
}
check "deb: /etc/rtmp-server.env is a conffile, root:rtmp-server 0640" deb_conffile
# What dpkg compares to decide whether to ask about an edited conffile.
conffile_of() { dpkg-deb --fsys-tarfile "$1" | tar -xOf - ./etc/rtmp-server.env; }
example_of() { dpkg-deb --fsys-tarfile "$1" | tar -xOf - ./usr/share/doc/rtmp-server/rtmp-server.env.example; }
check "deb: $version1 and $version2 ship the same /etc/rtmp-server.env" cmp <(conffile_of "$deb1") <(conffile_of "$deb2")
differs() { ! cmp -s "$1" "$2"; }
check "deb: $version1 and $version2 document the variables differently (rtmp-server.env.example)" \
	differs <(example_of "$deb1") <(example_of "$deb2")
check "deb: $version0 ships the old, different /etc/rtmp-server.env" differs <(conffile_of "$deb0") <(conffile_of "$deb2")
# preinst writes the shipped env file itself (see the script).
preinst_env() { sed -n "/^\tcat <<'END-OF-ENV'\$/,/^END-OF-ENV\$/p" "$repo/packaging/deb/preinst" | sed '1d;$d'; }
check "deb: preinst's copy of the env file is the shipped one" cmp <(preinst_env) <(conffile_of "$deb2")

# --- rootfs ----------------------------------------------------------------------

tarball=$(rootfs_tarball "$suite" "$include")
mkdir -p "$work/rootfs"
tar -C "$work/rootfs" --zstd -xf "$tarball"

# --- container -------------------------------------------------------------------

# boot: starts the container and waits until its systemd is running.
boot() {
	SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -b -D "$work/rootfs" --register=no --keep-unit \
		--console=passive --machine="$machine" --private-network --volatile=overlay \
		--bind-ro="$work/pkgs":/pkgs >>"$work/nspawn.log" 2>&1 &
	nspawn_pid=$!
	local deadline=$((SECONDS + 30)) state=
	while ((SECONDS < deadline)); do
		kill -0 "$nspawn_pid" 2>/dev/null || break
		[[ -n $pid1 ]] || pid1=$(pgrep -P "$nspawn_pid" -x systemd || true)
		if [[ -n $pid1 ]]; then
			state=$(ctr systemctl is-system-running 2>/dev/null || true)
			[[ $state == running || $state == degraded ]] && break
		fi
		sleep 0.2
	done
	if [[ $state != running && $state != degraded ]]; then
		tail -30 "$work/nspawn.log" >&2
		die "container did not boot (state '${state:-none}'); systemd-nspawn -b needs a real root file system or a VM"
	fi
	[[ $state == running ]] || ctr systemctl --failed --no-legend >&2 || true
}

# ctr COMMAND...: runs a command inside the container.
# No command may hang the run: dpkg's and systemctl's waits for a service
# that never becomes ready are cut short.
ctr() { timeout 100 nsenter -t "$pid1" -a -- "$@"; }
# net COMMAND...: runs a host command in the container's network namespace.
net() { nsenter -t "$pid1" -n -- "$@"; }

listening() { net bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; }
not_listening() { ! listening; }
prop() { ctr systemctl show -P "$2" "$1"; }
is_active() { [[ $(ctr systemctl is-active "$1" 2>/dev/null) == active ]]; }
is_inactive() { ! is_active "$1"; }
enabled_state() { # UNIT STATE
	[[ $(ctr systemctl is-enabled "$1" 2>/dev/null) == "$2" ]]
}
not_enabled() { ! enabled_state "$1" enabled; }
absent() { ! ctr test -e "$1"; }
no_dpkg_leftovers() { ! ctr sh -c 'ls /etc/rtmp-server.env.dpkg-*' 2>/dev/null; }

# step NAME COMMAND...: a package manager step inside the container; its
# output goes to the log and is shown if it fails.
step() {
	local name=$1 log
	shift
	log=$work/step-$((++steps)).log
	if ctr "$@" </dev/null >"$log" 2>&1; then
		pass "$name"
	else
		fail "$name"$'\n'"$(cat "$log")"
	fi
}
steps=0

# stream KEY: publishes a 10 s test picture to live/KEY and plays it back
# with ffprobe; succeeds when ffprobe sees the H.264 stream.
publisher_pid=
publish() {
	net timeout 30 ffmpeg -hide_banner -loglevel error -nostdin -re \
		-f lavfi -i testsrc2=size=320x240:rate=25 -c:v libx264 -preset ultrafast -g 25 \
		-t "${2:-10}" -f flv "rtmp://127.0.0.1:$port/live/$1" >>"$work/ffmpeg.log" 2>&1 &
	publisher_pid=$!
}
stop_publisher() {
	[[ -n $publisher_pid ]] || return 0
	kill -TERM "$publisher_pid" 2>/dev/null || true
	wait "$publisher_pid" 2>/dev/null || true
	publisher_pid=
}
probe() { # KEY
	[[ $(net timeout 8 ffprobe -v error -select_streams v:0 -show_entries stream=codec_name \
		-of csv=p=0 "rtmp://127.0.0.1:$port/live/$1" 2>>"$work/ffprobe.log") == h264 ]]
}
stream() { # KEY
	publish "$1"
	local ok=1
	wait_for 20 probe "$1" && ok=0
	stop_publisher
	return $ok
}

service_uid() {
	local pid
	pid=$(prop rtmp-server.service MainPID)
	[[ $pid != 0 ]] || return 1
	ctr cat "/proc/$pid/status" | awk '/^Uid:/ { print $2 }'
}
runs_as_service_user() {
	local uid
	uid=$(service_uid) || return 1
	[[ $uid == "$(ctr id -u rtmp-server)" && $uid != 0 ]]
}

env_file_is() { [[ $(ctr stat -c '%U:%G %a' /etc/rtmp-server.env 2>/dev/null) == "$1" ]]; }

# common_install_checks: what both formats must give after a first install.
common_install_checks() {
	check "system user rtmp-server exists" ctr getent passwd rtmp-server
	check "/etc/rtmp-server.env is root:rtmp-server 0640" env_file_is "root:rtmp-server 640"
	check "rtmp-server.socket is enabled" enabled_state rtmp-server.socket enabled
	check "rtmp-server.socket is active" is_active rtmp-server.socket
	check "rtmp-server-admin.socket is enabled with it" enabled_state rtmp-server-admin.socket enabled
	check "rtmp-server-admin.socket is active" is_active rtmp-server-admin.socket
	check "rtmp-server-rtmps.socket stays disabled" enabled_state rtmp-server-rtmps.socket disabled
	check "the service is not started before the first connection" is_inactive rtmp-server.service
	check "port $port accepts connections" wait_for 10 listening
	check "ffmpeg publishes and ffprobe plays through the socket-activated service" stream first
	check "the service runs as user rtmp-server (MainPID's Uid)" runs_as_service_user
	check "the service is active after the stream" is_active rtmp-server.service
}

version_is() { [[ $(ctr /usr/bin/rtmp-server --version) == "rtmp-server $1" ]]; }

# --- streaming through a restart and an upgrade --------------------------------
# A publisher (ffmpeg), two players (ffmpeg and rtmpdump, writing FLV) and a
# connect loop (one attempt every 20 ms, counting refusals) run across
# `systemctl restart` and the package upgrade; afterwards the players'
# files must decode without error and have no gap over 1 s.
running_new() {
	local pid
	pid=$(prop rtmp-server.service MainPID)
	[[ $pid != 0 && $pid != "$pid_before" ]] && is_active rtmp-server.service
}
ho_pids=()
# netexec COMMAND...: net, but the command replaces the (background)
# subshell, so that $! is its pid and a signal reaches it.
netexec() { exec nsenter -t "$pid1" -n -- "$@"; }
ho_url=rtmp://127.0.0.1:$port/ho/key
ho_probe() {
	[[ $(net timeout 8 ffprobe -v error -select_streams v:0 -show_entries stream=codec_name \
		-of csv=p=0 "$ho_url" 2>>"$work/ffprobe.log") == h264 ]]
}
ho_start() {
	local url=$ho_url
	netexec ffmpeg -hide_banner -loglevel error -nostdin -re -f lavfi -i testsrc2=size=320x240:rate=25 \
		-f lavfi -i sine=frequency=440:sample_rate=44100 -c:v libx264 -preset ultrafast -tune zerolatency \
		-g 25 -pix_fmt yuv420p -c:a aac -b:a 64k -f flv "$url" >"$work/ho-publisher.log" 2>&1 &
	ho_pub=$!
	# Also waits for the reload that allows 127.0.0.1 to play.
	wait_for 30 ho_probe || true
	netexec ffmpeg -hide_banner -loglevel error -nostdin -i "$url" -c copy -flush_packets 1 -f flv -y "$work/ho-ffmpeg.flv" \
		>"$work/ho-ffmpeg.log" 2>&1 &
	ho_ffmpeg=$!
	netexec rtmpdump -q --live -r "$url" -o "$work/ho-rtmpdump.flv" >"$work/ho-rtmpdump.log" 2>&1 &
	ho_rtmpdump=$!
	: >"$work/ho-connects"
	net bash -c 'while [[ ! -e '"$work"'/ho-stop ]]; do
		if exec 3<>/dev/tcp/127.0.0.1/'"$port"'; then echo ok; exec 3>&-; else echo refused; fi
		sleep 0.02
	done' >>"$work/ho-connects" 2>/dev/null &
	ho_loop=$!
	# What the players receive, against the clock: every 50 ms, the time
	# and the sizes of both recordings.
	while [[ ! -e $work/ho-stop ]]; do
		echo "$(date +%s%3N) $(stat -c %s "$work/ho-ffmpeg.flv" 2>/dev/null || echo 0) $(stat -c %s "$work/ho-rtmpdump.flv" 2>/dev/null || echo 0)"
		sleep 0.05
	done >"$work/ho-sizes" &
	ho_sampler=$!
	ho_pids=("$ho_pub" "$ho_ffmpeg" "$ho_rtmpdump" "$ho_loop" "$ho_sampler")
}
# ho_max_stall COLUMN: the longest time, in ms, that a recording did not
# grow (column 2: ffmpeg's, 3: rtmpdump's), from its first growth on.
ho_max_stall() {
	awk -v c="$1" '$c > 0 { if (last != "" && $c != size) { d = $1 - last; if (d > max) max = d } if ($c != size) { last = $1; size = $c } }
		END { printf "%d\n", max + 0 }' "$work/ho-sizes"
}
ho_alive() {
	local pid
	for pid in "$ho_pub" "$ho_ffmpeg" "$ho_rtmpdump"; do kill -0 "$pid" 2>/dev/null || return 1; done
}
ho_file_has() { [[ $(stat -c %s "$1" 2>/dev/null || echo 0) -gt $2 ]]; }
ho_growing() { # FILE: it grows within 3 s
	wait_for 3 ho_file_has "$1" "$(stat -c %s "$1" 2>/dev/null || echo 0)"
}
ho_stop() {
	touch "$work/ho-stop"
	local pid
	for pid in "$ho_pub" "$ho_ffmpeg" "$ho_rtmpdump"; do kill -TERM "$pid" 2>/dev/null || true; done
	# ffmpeg writes its trailer on TERM; whatever has not ended in 10 s is killed.
	(sleep 10 && kill -KILL "${ho_pids[@]}" 2>/dev/null) &
	local killer=$!
	for pid in "${ho_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	kill "$killer" 2>/dev/null || true
	wait "$killer" 2>/dev/null || true
	ho_pids=()
}
# ho_max_gap FILE: the largest step between two video timestamps, in ms.
ho_max_gap() {
	{ ffprobe -v error -select_streams v:0 -show_entries packet=pts_time -of csv=p=0 "$1" 2>/dev/null || true; } |
		awk 'NR > 1 { d = ($1 - last) * 1000; if (d > max) max = d } { last = $1 } END { printf "%d\n", max + 0 }'
}
ho_decodes() { # FILE: ffmpeg decodes it without a message; any goes to checks.log
	local out
	out=$(ffmpeg -hide_banner -nostdin -v error -i "$1" -f null - 2>&1)
	[[ -z $out ]] || { echo "$1: $out" >&2; return 1; }
}
# ho_results PATH: what the connect loop and the players saw, once ho_stop
# ended them (PATH names the package path in the check lines).
ho_results() {
	local refused attempts column=2 player stall gap
	refused=$(grep -c refused "$work/ho-connects" || true)
	attempts=$(wc -l <"$work/ho-connects")
	check "$1: the connect loop saw 0 refused of $attempts attempts" [ "$refused" = 0 -a "$attempts" -gt 50 ]
	for player in ffmpeg rtmpdump; do
		stall=$(ho_max_stall "$column")
		column=3
		check "$1: $player player: longest time without data ${stall} ms (at most 1000)" [ "$stall" -gt 0 -a "$stall" -le 1000 ]
		gap=$(ho_max_gap "$work/ho-$player.flv")
		check "$1: $player player: largest gap between video frames ${gap} ms (at most 1000)" [ "$gap" -gt 0 -a "$gap" -le 1000 ]
		check "$1: $player player: the recording decodes without an error" ho_decodes "$work/ho-$player.flv"
	done
}
# logged_handing_over: the old process logged its hand-over. Matched by the
# entries' SYSLOG_IDENTIFIER, not by unit: journald can miss the unit of a
# line that arrives as its process exits.
# At least the stream's publisher and two players: another session still
# open from an earlier check is handed over too.
logged_handing_over() {
	ctr sh -c 'journalctl -t rtmp-server --no-pager -q -o cat' |
		grep -E '^handing over [0-9]+ sessions \([0-9]+ publishers, [0-9]+ players\)' |
		sed -E 's/^handing over [0-9]+ sessions \(([0-9]+) publishers, ([0-9]+) players\).*/\1 \2/' |
		awk '$1 >= 1 && $2 >= 2 { found = 1 } END { exit !found }'
}
# handed_over_logged waits for that line; without it, it shows what the
# journal says about hand-overs instead.
handed_over_logged() {
	wait_for 10 logged_handing_over && return
	ctr sh -c 'journalctl --no-pager -q -o short-monotonic | grep -i -e "handing over" -e "hand-over" -e "resumed" -e "sessions"' >&2 || true
	return 1
}
resumed_count() {
	ctr journalctl -u rtmp-server.service --no-pager -q -o cat | grep -c '^resumed [0-9]* sessions' || true
}

# --- the upgrade from the old env file format --------------------------------------
# Packages before $version1's format shipped a long /etc/rtmp-server.env; the
# upgrade from one of them changes the conffile once. Over an edited file,
# dpkg would ask (and fail without a terminal): preinst keeps it out of the
# question (see packaging/deb/preinst).

# edit_old_env: edits the env file of $version0 and keeps a copy to compare.
edit_old_env() {
	ctr sh -c 'printf "\n# edited\nLOG_DEBUG=YES\n" >>/etc/rtmp-server.env'
	ctr cat /etc/rtmp-server.env >"$work/env-edited"
}
same_env() { cmp "$1" <(ctr cat /etc/rtmp-server.env); }
no_env_leftovers() { ! ctr sh -c 'ls -d /etc/rtmp-server.env?*' 2>/dev/null; }

deb_old_format_upgrade() {
	local t0=$SECONDS
	log "deb: upgrade from the old env file format ($version0 -> $version2)"
	step "dpkg -i $version0 (old env file format)" dpkg -i "/pkgs/$(basename "$deb0")"
	edit_old_env
	ctr systemctl start rtmp-server.service >/dev/null 2>&1 || true
	pid_before=$(prop rtmp-server.service MainPID)
	step "apt-get install $version2 over an edited old-format env file (stdin closed, no question)" \
		env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "/pkgs/$(basename "$deb2")"
	check "the edited env file is byte for byte what it was" same_env "$work/env-edited"
	check "the env file is still root:rtmp-server 0640" env_file_is "root:rtmp-server 640"
	check "no file left beside it (.dpkg-keep, .dpkg-new, .dpkg-dist, .dpkg-old)" no_env_leftovers
	check "the binary is $version2" version_is "$version2"
	if [[ $pid_before != 0 ]]; then
		check "the upgrade restarted the service (MainPID $pid_before -> new)" wait_for 10 running_new
	else
		fail "the upgrade restarted the service (it was not running before the upgrade)"
	fi
	check "ffmpeg publishes and ffprobe plays after the upgrade" stream old-format
	step "dpkg -P" dpkg -P rtmp-server
	step "dpkg -i $version0 (old env file format, left unedited)" dpkg -i "/pkgs/$(basename "$deb0")"
	step "apt-get install $version2 over the unedited old-format env file" \
		env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "/pkgs/$(basename "$deb2")"
	check "the unedited env file is replaced by the new one" same_env <(conffile_of "$deb2")
	check "no file left beside it" no_env_leftovers
	step "dpkg -P" dpkg -P rtmp-server
	echo "($((SECONDS - t0)) s)"
}

# rpm_old_format_upgrade: %config(noreplace) keeps the edited file and writes
# the new one as .rpmnew, without a question.
rpm_old_format_upgrade() {
	local t0=$SECONDS
	log "rpm: upgrade from the old env file format ($version0 -> $version2)"
	step "rpm -i --nodeps $version0 (old env file format)" rpm -i --nodeps "/pkgs/$(basename "$rpm0")"
	edit_old_env
	step "rpm -U --nodeps $version2 over an edited old-format env file" rpm -U --nodeps "/pkgs/$(basename "$rpm2")"
	check "the edited env file is byte for byte what it was" same_env "$work/env-edited"
	check "the new env file is beside it as .rpmnew" same_env_rpmnew
	check "the binary is $version2" version_is "$version2"
	step "rpm -e" rpm -e rtmp-server
	echo "($((SECONDS - t0)) s)"
}
same_env_rpmnew() { cmp <(conffile_of "$deb2") <(ctr cat /etc/rtmp-server.env.rpmnew); }

# --- .deb ------------------------------------------------------------------------------

start=$SECONDS
log "deb: boot"
boot
echo "booted in $((SECONDS - start)) s"

log "deb: install $version1"
step "dpkg -i $version1" dpkg -i "/pkgs/$(basename "$deb1")"
common_install_checks

journal_has_fields() {
	[[ -n $(ctr journalctl -u rtmp-server.service --no-pager -q -o cat CHANNEL=live 2>/dev/null) ]]
}
check "journalctl -u rtmp-server CHANNEL=live shows the publish (structured fields)" wait_for 5 journal_has_fields

log "deb: reload an edited env file"
ctr sh -c 'printf "\n# added by the test\nRTMP_PLAY_WHITELIST=10.0.0.0/8\n" >>/etc/rtmp-server.env'
pid_before=$(prop rtmp-server.service MainPID)
since=$(ctr date +%s)
ctr systemctl reload rtmp-server.service >"$work/reload.log" 2>&1 || true
# reload is asynchronous (no Type=notify-reload on systemd 252): poll for
# its effect, a play refused with the whitelist named.
refused() {
	! probe first &&
		ctr journalctl -u rtmp-server.service --no-pager -q -o cat --since "@$since" | grep -q RTMP_PLAY_WHITELIST
}
publish first 20
check "after reload, a play from 127.0.0.1 is refused (RTMP_PLAY_WHITELIST=10.0.0.0/8)" wait_for 20 refused
stop_publisher
pid_after=$(prop rtmp-server.service MainPID)
check "reload kept the process (MainPID $pid_before -> $pid_after)" \
	[ "$pid_before" != 0 -a "$pid_before" = "$pid_after" ]

log "deb: watchdog"
ctr mkdir -p /run/systemd/system/rtmp-server.service.d
ctr sh -c 'printf "[Service]\nWatchdogSec=2\n" >/run/systemd/system/rtmp-server.service.d/50-test-watchdog.conf'
ctr systemctl daemon-reload
# A restart makes the process see the new WATCHDOG_USEC.
ctr systemctl restart rtmp-server.service >"$work/watchdog.log" 2>&1 || true
if wait_for 10 is_active rtmp-server.service; then
	sleep 3 # three watchdog periods: a process that pings stays up
	restarts_before=$(prop rtmp-server.service NRestarts)
	frozen_pid=$(prop rtmp-server.service MainPID)
	ctr systemctl kill -s SIGSTOP --kill-who=main rtmp-server.service
	restarted() {
		local pid n
		pid=$(prop rtmp-server.service MainPID)
		n=$(prop rtmp-server.service NRestarts)
		[[ $(prop rtmp-server.service Result) == watchdog ]] && seen_watchdog=1
		((n > restarts_before)) && [[ $pid != 0 && $pid != "$frozen_pid" ]]
	}
	seen_watchdog=0
	if wait_for 20 restarted; then
		pass "a frozen process is restarted (NRestarts $restarts_before -> $(prop rtmp-server.service NRestarts), MainPID $frozen_pid -> $(prop rtmp-server.service MainPID))"
	else
		fail "a frozen process is restarted (NRestarts $(prop rtmp-server.service NRestarts), MainPID $(prop rtmp-server.service MainPID), Result $(prop rtmp-server.service Result))"
	fi
	check "the stop was the watchdog's (Result=watchdog)" [ "$seen_watchdog" = 1 ]
else
	fail "service active with WatchdogSec=2 ($(prop rtmp-server.service Result))"
	fail "a frozen process is restarted (not run)"
	fail "the stop was the watchdog's (not run)"
fi
ctr rm -rf /run/systemd/system/rtmp-server.service.d
ctr systemctl daemon-reload
ctr systemctl restart rtmp-server.service >>"$work/watchdog.log" 2>&1 || true

log "deb: stream through systemctl restart"
# Players from 127.0.0.1 again (the reload above allowed 10.0.0.0/8 only).
# All the peers here come from 127.0.0.1: no per-address limit.
ctr sed -i 's#^RTMP_PLAY_WHITELIST=10.0.0.0/8$#RTMP_PLAY_WHITELIST=10.0.0.0/8,127.0.0.1#' /etc/rtmp-server.env
ctr sh -c 'echo MAX_IP_CONCURRENT_CONNECTIONS=0 >>/etc/rtmp-server.env'
# RTMPS as well: its sessions cannot be handed over and must end cleanly.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
	-keyout "$work/pkgs/tls.key" -out "$work/pkgs/tls.crt" >/dev/null 2>&1
ctr sh -c 'install -d -m 0755 /etc/rtmp-server && install -m 0640 -g rtmp-server /pkgs/tls.crt /pkgs/tls.key /etc/rtmp-server/'
ctr sh -c 'printf "SSL_CERT=/etc/rtmp-server/tls.crt\nSSL_KEY=/etc/rtmp-server/tls.key\n" >>/etc/rtmp-server.env'
ctr systemctl stop rtmp-server.service >>"$work/reload.log" 2>&1 || true
ctr systemctl enable --now rtmp-server-rtmps.socket >>"$work/reload.log" 2>&1 || true
ctr systemctl start rtmp-server.service >>"$work/reload.log" 2>&1 || true
tls_url=rtmps://127.0.0.1:443/tls/key
tls_publish() {
	netexec ffmpeg -hide_banner -loglevel error -nostdin -re -f lavfi -i testsrc2=size=320x240:rate=25 \
		-c:v libx264 -preset ultrafast -tune zerolatency -g 25 -pix_fmt yuv420p -t "$1" -f flv "$tls_url" \
		>>"$work/tls-publisher.log" 2>&1 &
	tls_pub=$!
}
tls_probe() {
	[[ $(net timeout 8 ffprobe -v error -select_streams v:0 -show_entries stream=codec_name \
		-of csv=p=0 "$tls_url" 2>>"$work/ffprobe.log") == h264 ]]
}
tls_pub_ended() { ! kill -0 "$tls_pub" 2>/dev/null || [[ $(ps -o stat= -p "$tls_pub") == Z* ]]; }
tls_publish 120
check "an RTMPS publisher streams before the restart" wait_for 20 tls_probe
ho_start
check "players receive the stream before the restart" wait_for 20 ho_file_has "$work/ho-ffmpeg.flv" 100000
resumed_before=$(resumed_count)
pid_before=$(prop rtmp-server.service MainPID)
ctr systemctl restart rtmp-server.service >"$work/restart.log" 2>&1 || true
resumed_once() { (($(resumed_count) > resumed_before)); }
check "the new process resumed the sessions (journal: resumed N sessions)" wait_for 20 resumed_once
check "the restart replaced the process (MainPID $pid_before -> new)" running_new
check "the restart logged: handing over the publisher and both players" handed_over_logged
status_says_resumed() {
	ctr systemctl show -P StatusText rtmp-server.service | grep -q "^resumed 3 sessions (1 publishers, 2 players)"
}
check "STATUS= says what was resumed" wait_for 5 status_says_resumed
check "after the restart, the ffmpeg player still receives" ho_growing "$work/ho-ffmpeg.flv"
check "after the restart, the rtmpdump player still receives" ho_growing "$work/ho-rtmpdump.flv"
check "publisher and players still run after the restart" ho_alive
check "the RTMPS publisher's session ended at the restart" wait_for 10 tls_pub_ended
wait "$tls_pub" 2>/dev/null || true
tls_ended_cleanly() {
	ctr journalctl -u rtmp-server.service --no-pager -q -o cat | grep 'channel=tls' >"$work/tls-journal.log"
	grep -q 'unpublish.*server shutting down' "$work/tls-journal.log"
}
check "the RTMPS publication ended as at a stop (unpublish, server shutting down)" wait_for 10 tls_ended_cleanly
tls_publish 60
check "an RTMPS publisher connects again after the restart" wait_for 20 tls_probe

log "deb: upgrade to $version2"
# Files of the admin's that no step may touch.
ctr sh -c 'mkdir -p /etc/rtmp-server && echo mine >/etc/rtmp-server/fullchain.pem'
wait_for 10 is_active rtmp-server.service || true
pid_before=$(prop rtmp-server.service MainPID)
resumed_before=$(resumed_count)
sockets_since=$(prop rtmp-server.socket ActiveEnterTimestampMonotonic)
# As unattended-upgrades runs it: no terminal, nothing on stdin, the
# configuration file edited. A conffile question would fail the step
# ("end of file on stdin at conffile prompt").
step "apt-get install $version2 (upgrade, non-interactive, edited env file)" \
	env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "/pkgs/$(basename "$deb2")"
check "the upgrade keeps the edited env file" ctr grep -qx 'RTMP_PLAY_WHITELIST=10.0.0.0/8,127.0.0.1' /etc/rtmp-server.env
check "no .dpkg-dist/.dpkg-new left beside it" no_dpkg_leftovers
check "the env file is still root:rtmp-server 0640" env_file_is "root:rtmp-server 640"
check "the binary is $version2" version_is "$version2"
if [[ $pid_before != 0 ]]; then
	check "the upgrade restarted the running service (MainPID $pid_before -> new)" wait_for 10 running_new
else
	fail "the upgrade restarted the running service (it was not running before the upgrade)"
fi
check "rtmp-server.socket is still enabled" enabled_state rtmp-server.socket enabled
check "rtmp-server.socket is still active" is_active rtmp-server.socket
check "the upgrade did not restart rtmp-server.socket (its listening socket stayed open)" \
	[ "$(prop rtmp-server.socket ActiveEnterTimestampMonotonic)" = "$sockets_since" ]
check "the upgraded process resumed the sessions" wait_for 20 resumed_once
check "after the upgrade, the ffmpeg player still receives" ho_growing "$work/ho-ffmpeg.flv"
check "after the upgrade, the rtmpdump player still receives" ho_growing "$work/ho-rtmpdump.flv"
check "publisher and players ran through the restart and the upgrade" ho_alive
check "systemd holds no stored descriptor afterwards (NFileDescriptorStore=0)" \
	[ "$(prop rtmp-server.service NFileDescriptorStore)" = 0 ]
ho_stop
kill -TERM "$tls_pub" 2>/dev/null || true
wait "$tls_pub" 2>/dev/null || true
ctr systemctl disable --now rtmp-server-rtmps.socket >>"$work/reload.log" 2>&1 || true
ho_results deb

log "deb: remove"
step "dpkg -r" dpkg -r rtmp-server
check "nothing listens on $port after remove" wait_for 5 not_listening
check "the service is stopped" is_inactive rtmp-server.service
check "rtmp-server.socket is no longer enabled" not_enabled rtmp-server.socket
check "the binary is gone" absent /usr/bin/rtmp-server
check "remove keeps the env file" ctr test -f /etc/rtmp-server.env

log "deb: purge"
step "dpkg -P" dpkg -P rtmp-server
check "purge removes the env file" absent /etc/rtmp-server.env
check "purge leaves the admin's other files" ctr grep -qx mine /etc/rtmp-server/fullchain.pem
leftovers=$(ctr find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
	/var/lib/systemd/deb-systemd-helper-masked -name '*rtmp-server*' 2>/dev/null || true)
check "purge leaves no unit links or masks${leftovers:+: $leftovers}" [ -z "$leftovers" ]
deb_old_format_upgrade
stop_container

# --- .rpm ------------------------------------------------------------------------------

start=$SECONDS
log "rpm: boot a fresh container"
boot
echo "booted in $((SECONDS - start)) s"

log "rpm: install $version1"
# Debian's rpm has its own, empty database: it knows no package that
# provides systemd or util-linux, hence --nodeps.
step "rpm -i --nodeps $version1" rpm -i --nodeps "/pkgs/$(basename "$rpm1")"
no_warning() { ! grep -qi warning "$1"; }
check "rpm -i printed no warning (the group existed at unpack time)" no_warning "$work/step-$steps.log"
common_install_checks

log "rpm: upgrade to $version2"
ctr sh -c 'printf "\nLOG_DEBUG=YES\n" >>/etc/rtmp-server.env'
ctr sh -c 'mkdir -p /etc/rtmp-server && echo mine >/etc/rtmp-server/fullchain.pem'
# Streaming across the upgrade, as for the .deb: players from 127.0.0.1,
# no per-address limit (the restart applies both).
ctr sed -i 's#^RTMP_PLAY_WHITELIST=10.0.0.0/8$#RTMP_PLAY_WHITELIST=10.0.0.0/8,127.0.0.1#' /etc/rtmp-server.env
ctr sh -c 'echo MAX_IP_CONCURRENT_CONNECTIONS=0 >>/etc/rtmp-server.env'
ctr systemctl restart rtmp-server.service >>"$work/reload.log" 2>&1 || true
wait_for 10 is_active rtmp-server.service || true
rm -f "$work/ho-stop" "$work/ho-ffmpeg.flv" "$work/ho-rtmpdump.flv" "$work/ho-sizes" "$work/ho-connects"
ho_start
check "rpm: players receive the stream before the upgrade" wait_for 20 ho_file_has "$work/ho-ffmpeg.flv" 100000
resumed_before=$(resumed_count)
pid_before=$(prop rtmp-server.service MainPID)
sockets_since=$(prop rtmp-server.socket ActiveEnterTimestampMonotonic)
step "rpm -U --nodeps $version2" rpm -U --nodeps "/pkgs/$(basename "$rpm2")"
check "rpm -U left no .rpmnew (the shipped env file did not change)" absent /etc/rtmp-server.env.rpmnew
check "the upgrade keeps the edited env file" ctr grep -qx 'LOG_DEBUG=YES' /etc/rtmp-server.env
check "the binary is $version2" version_is "$version2"
if [[ $pid_before != 0 ]]; then
	check "the upgrade restarted the running service (MainPID $pid_before -> new)" wait_for 10 running_new
else
	fail "the upgrade restarted the running service (it was not running before the upgrade)"
fi
check "rtmp-server.socket is still enabled" enabled_state rtmp-server.socket enabled
check "the upgrade did not restart rtmp-server.socket (its listening socket stayed open)" \
	[ "$(prop rtmp-server.socket ActiveEnterTimestampMonotonic)" = "$sockets_since" ]
check "rpm: the upgraded process resumed the sessions" wait_for 20 resumed_once
check "rpm: the upgrade logged: handing over the publisher and both players" handed_over_logged
check "rpm: after the upgrade, the ffmpeg player still receives" ho_growing "$work/ho-ffmpeg.flv"
check "rpm: after the upgrade, the rtmpdump player still receives" ho_growing "$work/ho-rtmpdump.flv"
check "rpm: publisher and players ran through the upgrade" ho_alive
check "rpm: systemd holds no stored descriptor afterwards (NFileDescriptorStore=0)" \
	[ "$(prop rtmp-server.service NFileDescriptorStore)" = 0 ]
ho_stop
ho_results rpm

log "rpm: erase"
step "rpm -e" rpm -e rtmp-server
check "nothing listens on $port after erase" wait_for 5 not_listening
check "the service is stopped" is_inactive rtmp-server.service
check "rtmp-server.socket is no longer enabled" not_enabled rtmp-server.socket
check "the binary is gone" absent /usr/bin/rtmp-server
# RPM has no purge: an edited %config(noreplace) file is saved, not deleted.
check "erase saves the edited env file as /etc/rtmp-server.env.rpmsave" ctr grep -qx 'LOG_DEBUG=YES' /etc/rtmp-server.env.rpmsave
check "erase leaves no /etc/rtmp-server.env" absent /etc/rtmp-server.env
check "erase leaves the admin's other files" ctr grep -qx mine /etc/rtmp-server/fullchain.pem
rpm_old_format_upgrade
stop_container

echo
echo "nspawn: $passes passed, $failures failed"
((failures == 0))
