#!/usr/bin/env bash
# Reads what `deno test` printed (LOG) and its exit status; prints the tests it ignored, the
# counts, and last, alone on the final line, "N passed, N failed". Exits with the status, or
# 1 when deno test printed no summary. With DENOVISOR_FAIL_ON_SKIP=1 an ignored test counts
# as a failed one: a CI host that lost /dev/kvm, root or a tool must not go green by skipping.
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
  echo "test.sh: $skipped tests were skipped and DENOVISOR_FAIL_ON_SKIP=1 counts them as failed" >&2
  failed=$((failed + skipped))
  [ "$status" -ne 0 ] || status=1
fi
echo "$skipped skipped"
echo "$passed passed, $failed failed"
exit "$status"
