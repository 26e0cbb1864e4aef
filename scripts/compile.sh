#!/usr/bin/env bash
# Builds the single `denovisor` executable with `deno compile`.
# deno compile needs `denort`, Deno's runtime without the tooling. It downloads it from
# Deno's own download host unless DENORT_BIN points at a local copy; on hosts that cannot
# reach that host (the build machines here), set DENORT_BIN. The full `deno` binary is not
# a valid DENORT_BIN: the result would start Deno's REPL instead of Denovisor.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_deno.sh
out=${1:-dist/denovisor}
mkdir -p "$(dirname "$out")"
if [ -n "${DENORT_BIN:-}" ] && [ ! -x "$DENORT_BIN" ]; then
  echo "compile: DENORT_BIN=$DENORT_BIN is not an executable file" >&2
  exit 1
fi
# The vCPU Worker module is loaded by URL at run time, so it must be named explicitly.
if ! deno compile --allow-all --include vmm/vcpu_worker_main.ts --output "$out" main.ts; then
  echo "compile: deno compile failed; if it could not download denort, set DENORT_BIN to" \
    "the denort binary of Deno $(deno --version | head -1 | cut -d' ' -f2)" >&2
  exit 1
fi
echo "compile: wrote $out" >&2
