# Shell helpers shared by the packaging tests (nspawn.sh, fresh.sh,
# image.sh) and scripts/test.sh. Source it after setting `work` (a scratch
# directory) if you use rootfs_tarball; the caller defines die MESSAGE
# (exits) and log MESSAGE where a helper says it uses them.

# test_cache: where built root filesystems are kept between runs.
test_cache() {
	echo "${RTMP_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rtmp-server-test}"
}

# apt_install PACKAGE...: installs the packages from Debian's archive (as
# root), without recommends and without letting them start their services
# (a policy-rc.d that refuses every start, removed afterwards).
apt_install() {
	local policy=/usr/sbin/policy-rc.d had_policy=0 rc=0
	[[ -e $policy ]] && had_policy=1
	DEBIAN_FRONTEND=noninteractive apt-get update -qq || return
	if ((!had_policy)); then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" || return
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
	((had_policy)) || rm -f "$policy"
	return "$rc"
}

# wait_for SECONDS COMMAND...: runs the command every 0.2 s until it
# succeeds (0) or the time is up (1).
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	while ((SECONDS < deadline)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	"$@" >/dev/null 2>&1
}

# install_host_tools CMD=PACKAGE...: installs from Debian's archive the
# packages of the commands that are missing on the host (uses log).
install_host_tools() {
	local pair missing=()
	for pair in "$@"; do
		command -v "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}")
	done
	((${#missing[@]})) || return 0
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	log "installing ${missing[*]}"
	apt_install "${missing[@]}"
}

# mirror: the first Debian mirror in the host's apt sources.
mirror() {
	local m
	m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		sed -nE 's/^deb +(\[[^]]*\] +)?(https?:[^ ]+) +[a-z-]+ .*main.*/\2/p' | grep -v security | head -n1)
	if [[ -z $m ]]; then
		m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
			sed -nE 's/^URIs: *(https?:[^ ]+).*/\1/p' | grep -v security | head -n1)
	fi
	[[ -n $m ]] || die "no Debian mirror in /etc/apt/sources.list*"
	echo "$m"
}

# rootfs_tarball SUITE INCLUDE: prints the path of a cached tarball of a
# debootstrap --variant=minbase root of SUITE with the comma-separated
# packages INCLUDE (may be empty) added, building it first if there is none.
# The tarball holds no apt lists and no downloaded .debs.
rootfs_tarball() {
	local suite=$1 include=$2 cache tarball start m
	cache=$(test_cache)
	tarball=$cache/$suite-minbase-$(echo "$include" | md5sum | cut -c1-8).tar.zst
	if [[ ! -f $tarball ]]; then
		start=$SECONDS
		m=$(mirror)
		log "debootstrap $suite${include:+ with $include} from $m (once; cached in $tarball)" >&2
		mkdir -p "$cache"
		rm -rf "$work/bootstrap"
		mkdir -p "$work/bootstrap"
		debootstrap --variant=minbase ${include:+--include="$include"} "$suite" "$work/bootstrap" "$m" \
			>"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
		rm -rf "$work/bootstrap/var/cache/apt/archives/"*.deb "$work/bootstrap/var/lib/apt/lists/"*
		tar -C "$work/bootstrap" --zstd -cf "$tarball.$$.tmp" .
		mv "$tarball.$$.tmp" "$tarball"
		rm -rf "$work/bootstrap"
		echo "rootfs built in $((SECONDS - start)) s" >&2
	fi
	echo "$tarball"
}
