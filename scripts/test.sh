#!/usr/bin/env bash
# Runs every test: installs what is missing (Deno, Debian packages), builds the guest
# programs, fetches the Debian kernel used by the bzImage tests, builds (or reuses) the
# Linux test kernel, then runs `deno test` and prints "N passed, N failed" alone on the last
# line (scripts/test_summary.sh; DENOVISOR_FAIL_ON_SKIP=1 makes skipped tests fail the run).
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
bash scripts/test_summary.sh "$log" "$status"
