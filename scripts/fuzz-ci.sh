#!/usr/bin/env bash
# Runs every fuzz target of the module briefly and fails if one finds a
# crash. The targets are found with `go test -list '^Fuzz'`, so a new one is
# picked up without touching this script.
#
#   FUZZ_TIME            fuzzing time per target (default 5s)
#   FUZZ_MINIMIZE_TIME   time to minimise a crashing input (default 5s)
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

failed=()
for target in "${targets[@]}"; do
  read -r pkg name <<<"$target"
  echo "== $pkg $name"
  if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzz_time" \
    -fuzzminimizetime="$minimize_time" "$pkg"; then
    failed+=("$pkg $name")
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
