#!/usr/bin/env bash
# Runs every fuzz target of the module briefly and fails if one finds a
# crash. The targets are found with `go test -list '^Fuzz'`, so a new one is
# picked up without touching this script.
#
#   FUZZ_TIME            fuzzing time per target (default 5s)
#   FUZZ_MINIMIZE_TIME   time to minimise a crashing input (default 5s)
#
#   FUZZ_JOBS            targets fuzzed at once (default: the number of CPUs)
#
# With the defaults the whole run takes about a minute and a half on two
# cores. A crashing input is written under the package's
# testdata/fuzz/<Target>/ and printed; rerun it with
#   go test ./internal/<pkg> -run '<Target>/<file>'
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz_time=${FUZZ_TIME:-5s}
minimize_time=${FUZZ_MINIMIZE_TIME:-5s}
start=$SECONDS

# `go test -list` prints a package's matching names, then its "ok" line.
targets=()
names=()
while IFS= read -r line; do
  case $line in
    Fuzz*) names+=("$line") ;;
    ok*)
      pkg=$(awk '{print $2}' <<<"$line")
      for name in "${names[@]}"; do targets+=("$pkg $name"); done
      names=()
      ;;
    "?"*) names=() ;;
  esac
done < <(go test -list '^Fuzz' ./...)

if ((${#targets[@]} == 0)); then
  echo "fuzz-ci: no fuzz targets found" >&2
  exit 1
fi
echo "== fuzz-ci: ${#targets[@]} targets, $fuzz_time each"

# Targets run FUZZ_JOBS at a time (default: the number of CPUs), each with
# one fuzzing worker: the same fuzzing work as one target at a time with a
# worker per CPU, but the builds and start-ups of the targets overlap. Each
# target's output is kept in its own file and printed when it ends.
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
((jobs >= 1)) || jobs=1
workers=1
if ((jobs == 1)); then
  workers=$(nproc 2>/dev/null || echo 1)
fi
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# fuzz runs one target for $3, appending its output to $4.
fuzz() {
  go test -run='^$' -fuzz="^${2}\$" -fuzztime="$3" -fuzzminimizetime="$minimize_time" -parallel="$workers" "$1" >>"$4" 2>&1
}

# run_target fuzzes one target and records its result in $logs/N.failed
# when it found a crash.
run_target() {
  local n=$1 pkg=$2 name=$3 log=$logs/$1.log
  echo "== $pkg $name" >"$log"
  if fuzz "$pkg" "$name" "$fuzz_time" "$log"; then
    return
  fi
  # When the time runs out in the middle of a slow input, go test can end
  # with "context deadline exceeded" and no failing input: that is the
  # fuzzing engine's timer, not a crash. Run the target again for a fixed
  # number of inputs instead, which has no deadline to hit.
  if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
    echo "== $pkg $name: the time ran out inside an input; running 2000 inputs instead" >>"$log"
    if fuzz "$pkg" "$name" 2000x "$log"; then
      return
    fi
  fi
  echo "$pkg $name" >"$logs/$n.failed"
}

n=0
for target in "${targets[@]}"; do
  read -r pkg name <<<"$target"
  while (($(jobs -rp | wc -l) >= jobs)); do
    wait -n || true
  done
  n=$((n + 1))
  run_target "$n" "$pkg" "$name" &
done
wait
failed=()
for i in $(seq "$n"); do
  cat "$logs/$i.log"
  if [[ -f $logs/$i.failed ]]; then
    failed+=("$(cat "$logs/$i.failed")")
  fi
done

echo "== fuzz-ci: $((SECONDS - start)) s"
if ((${#failed[@]})); then
  echo "fuzz-ci: crashes found by:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  git status --short -- '*/testdata/fuzz/*' >&2 || true
  exit 1
fi
echo "fuzz-ci: ${#targets[@]} passed, 0 failed"
