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
deno test --allow-all --no-prompt "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
summary=$(grep -E '(ok|FAILED) \| [0-9]+ passed' "$log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g')
passed=$(echo "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
failed=$(echo "$summary" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || echo 0)
ignored=$(echo "$summary" | grep -oE '[0-9]+ ignored' | grep -oE '[0-9]+' || echo 0)
if [ -z "$summary" ]; then failed=$((failed + 1)); fi
echo "${passed:-0} passed, ${failed:-0} failed, ${ignored:-0} skipped"
exit "$status"
