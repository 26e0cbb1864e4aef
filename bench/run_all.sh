#!/usr/bin/env bash
# Runs every benchmark in sequence: builds the test guests first (the C baseline is
# compiled by exit_roundtrip.ts itself, into bench/.build/). Exits non-zero if any
# benchmark could not measure; the figures are printed, never judged as pass/fail.
#
# Usage: bash bench/run_all.sh   (or: deno task bench)
set -uo pipefail
cd "$(dirname "$0")/.."

bash guests/build.sh || {
  echo "bench/run_all.sh: building the test guests failed" >&2
  exit 1
}
echo "host: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r)"
echo "deno $(deno --version | head -1 | cut -d' ' -f2), $(qemu-system-x86_64 --version | head -1)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

failed=()
for bench in exit_roundtrip startup block_backend net guest_block guest_net vmm_overhead qcow2 domains restore; do
  echo
  echo "== bench/$bench.ts"
  deno run --allow-all "bench/$bench.ts" || failed+=("$bench")
done

echo
if ((${#failed[@]} > 0)); then
  echo "bench/run_all.sh: could not measure: ${failed[*]}" >&2
  exit 1
fi
echo "bench/run_all.sh: all benchmarks measured"
