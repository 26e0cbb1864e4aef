#!/usr/bin/env bash
# Runs every test: installs what is missing (Deno, Debian packages), builds the guest
# programs, fetches the Debian kernel used by the bzImage tests, builds (or reuses) the
# Linux test kernel, then runs `deno test` and prints "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_deno.sh
bash scripts/ensure_packages.sh
bash guests/build.sh
bash tests/fixtures/fetch_debian_kernel.sh
bash guests/linux/build.sh
if [ ! -e /dev/kvm ]; then
  echo "=================================================================" >&2
  echo "WARNING: /dev/kvm is missing: every test that runs a VM is SKIPPED" >&2
  echo "=================================================================" >&2
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
NO_COLOR=1 deno test --allow-all --no-prompt "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# Deno's summary: "ok | 230 passed | 0 failed | 2 ignored (1m40s)" (or FAILED).
summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -1)
set -e
count() { echo "$summary" | grep -oE "[0-9]+ $1" | grep -oE '[0-9]+' || echo 0; }
passed=$(count passed)
failed=$(count failed)
skipped=$(count ignored)
if [ -z "$summary" ]; then
  echo "test.sh: deno test printed no summary line" >&2
  failed=$((failed + 1))
  [ "$status" -ne 0 ] || status=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
