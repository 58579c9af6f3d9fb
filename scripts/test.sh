#!/usr/bin/env bash
# Installs what is missing, then runs the tests on every supported containerd:
#   the whole suite (unit and end-to-end) on 1.6.20, then the end-to-end files
#   (tests/e2e_*_test.ts) on 1.7.24 and on 2.1.9,
# and ends with ONE line "N passed, N failed, N skipped" (the sum of the three runs; skipped are
# the tests registered with `ignore:`, each naming why). Exits non-zero if any run failed. Extra arguments go to every `deno test` (e.g. --filter prune).
#
# With CTRE_TEST_CONTAINERD set (1.6.20, 1.7.24 or 2.1.9) it runs once, on that version only:
# the given test files, or the whole suite.
#   CTRE_TEST_CONTAINERD=2.1.9 bash scripts/test.sh tests/e2e_prune_test.ts
#
# Each run puts that version's usr/bin (scripts/containerd_bin.sh) first on PATH, so the test
# harness, the tests' ctr and ctre's own ctr calls all use the same containerd; the harness
# (tests/support/containerd.ts) checks the version it gets against CTRE_TEST_CONTAINERD.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
perms=(--allow-read --allow-write --allow-run --allow-env --allow-sys)
total_passed=0 total_failed=0 total_skipped=0 rc=0 lines=() failures=()

# run VERSION DENO_TEST_ARGS...: one deno test on one containerd; adds up its counts.
run() {
  local version=$1 bin log start secs summary passed failed skipped code
  shift
  if ! bin=$(bash scripts/containerd_bin.sh "$version"); then
    lines+=("containerd $version: no binaries (scripts/containerd_bin.sh failed)")
    total_failed=$((total_failed + 1)) rc=1
    return
  fi
  echo "=== containerd $version ($bin) ===" >&2
  log=$(mktemp)
  start=$SECONDS
  CTRE_TEST_CONTAINERD=$version PATH="$bin:$PATH" deno test "${perms[@]}" "$@" 2>&1 | tee "$log"
  code=${PIPESTATUS[0]}
  secs=$((SECONDS - start))
  # Deno's summary: "ok | 41 passed (120 steps) | 0 failed | 2 ignored (12s)" or
  # "FAILED | 40 passed | 1 failed" (the ignored part only when some test was ignored).
  summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1)
  # Deno's closing " FAILURES " list names each failed test ("name => ./tests/x_test.ts:12:6");
  # repeat it beside the counts, so the last lines of a long CI log say what failed.
  while IFS= read -r f; do
    [ -n "$f" ] && failures+=("containerd $version failed: $f")
  done < <(sed 's/\x1b\[[0-9;]*m//g' "$log" | sed -n '/^ FAILURES *$/,/^FAILED |/p' | grep ' => ')
  rm -f "$log"
  passed=0 failed=0 skipped=0
  if [ -n "$summary" ]; then
    passed=$(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$summary")
    failed=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")
    if grep -qE '\| [0-9]+ ignored' <<<"$summary"; then
      skipped=$(sed -E 's/.*\| ([0-9]+) ignored.*/\1/' <<<"$summary")
    fi
  fi
  if [ "$code" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi # crashed before its summary
  if [ "$code" -ne 0 ]; then rc=1; fi
  total_passed=$((total_passed + passed)) total_failed=$((total_failed + failed))
  total_skipped=$((total_skipped + skipped))
  lines+=("containerd $version: $passed passed, $failed failed, $skipped skipped in ${secs}s")
}

if [ -n "${CTRE_TEST_CONTAINERD:-}" ]; then
  files=() flags=()
  for a in "$@"; do
    if [[ $a == -* ]]; then flags+=("$a"); else files+=("$a"); fi
  done
  [ ${#files[@]} -gt 0 ] || files=(tests/)
  run "$CTRE_TEST_CONTAINERD" "${flags[@]}" "${files[@]}"
else
  run 1.6.20 "$@" tests/
  e2e=(tests/e2e_*_test.ts)
  for v in 1.7.24 2.1.9; do run "$v" "$@" "${e2e[@]}"; done
fi
for l in "${failures[@]}" "${lines[@]}"; do echo "$l"; done
echo "${total_passed} passed, ${total_failed} failed, ${total_skipped} skipped"
exit "$rc"
