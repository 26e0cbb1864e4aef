#!/usr/bin/env bash
# Reads what `deno test` printed (LOG) and its exit status; prints the tests it ignored, the
# counts, and last, alone on the final line, "N passed, N failed". Exits with the status, or
# 1 when deno test printed no summary. With DENOVISOR_FAIL_ON_SKIP=1 an ignored test counts
# as a failed one (but for the few listed, with their reason, in scripts/allowed_skips): a
# CI host that lost /dev/kvm, root or a tool must not go green by skipping.
# Usage: test_summary.sh LOG STATUS
set -euo pipefail
log=$1
status=$2
text=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
# Deno's summary: "ok | 230 passed | 0 failed | 2 ignored (1m40s)" (or FAILED).
summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' <<<"$text" | tail -1 || true)
count() { grep -oE "[0-9]+ $1" <<<"$summary" | head -1 | grep -oE '[0-9]+' || echo 0; }
passed=$(count passed)
failed=$(count failed)
skipped=$(count ignored)
if [ -z "$summary" ]; then
  echo "test.sh: deno test printed no summary line" >&2
  failed=$((failed + 1))
  [ "$status" -ne 0 ] || status=1
fi
# One line per ignored test or step: "name ... ignored (0ms)".
ignored=$(grep -E ' \.\.\. ignored \([^)]*\)$' <<<"$text" |
  sed -E 's/^ +//; s/ \.\.\. ignored \([^)]*\)$//' || true)
if [ -n "$ignored" ]; then
  # Deno's count leaves out ignored steps; they were skipped all the same.
  listed=$(wc -l <<<"$ignored")
  [ "$listed" -le "$skipped" ] || skipped=$listed
  echo "Ignored tests:"
  sed 's/^/  /' <<<"$ignored"
fi
if [ "$skipped" -gt 0 ] && [ "${DENOVISOR_FAIL_ON_SKIP:-}" = 1 ]; then
  # Tolerated skips: scripts/allowed_skips (MARKER | WHEN | WHY).
  allowed_file=${DENOVISOR_ALLOWED_SKIPS:-$(dirname "$0")/allowed_skips}
  kvm_device=${DENOVISOR_KVM_DEVICE:-/dev/kvm}
  tolerated=0
  refused=""
  while IFS= read -r name; do
    [ -n "$name" ] || continue
    ok=0
    while IFS='|' read -r marker when _why; do
      marker=$(sed -E 's/^ +| +$//g' <<<"$marker")
      when=$(sed -E 's/^ +| +$//g' <<<"$when")
      case "$marker" in '' | '#'*) continue ;; esac
      [[ "$name" == *"$marker"* ]] || continue
      if [ "$when" = always ] || { [ "$when" = no-kvm-device ] && [ ! -e "$kvm_device" ]; }; then
        ok=1
        break
      fi
    done <"$allowed_file"
    if [ "$ok" = 1 ]; then tolerated=$((tolerated + 1)); else refused+="  $name"$'\n'; fi
  done <<<"$ignored"
  # Ignored tests Deno counted but did not list by name are refused too.
  unlisted=$((skipped - $(grep -c . <<<"$ignored" || true)))
  [ "$unlisted" -ge 0 ] || unlisted=0
  refused_count=$(($(grep -c . <<<"$refused" || true) + unlisted))
  if [ "$tolerated" -gt 0 ]; then
    echo "test.sh: $tolerated skipped tests are tolerated by scripts/allowed_skips" >&2
  fi
  if [ "$refused_count" -gt 0 ]; then
    echo "test.sh: $refused_count tests were skipped and DENOVISOR_FAIL_ON_SKIP=1 counts them as failed:" >&2
    printf '%s' "$refused" >&2
    failed=$((failed + refused_count))
    [ "$status" -ne 0 ] || status=1
  fi
fi
echo "$skipped skipped"
echo "$passed passed, $failed failed"
exit "$status"
