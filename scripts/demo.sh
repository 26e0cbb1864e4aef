#!/usr/bin/env bash
# The main job on a fresh machine: install Deno if needed, then boot the embedded demo guest.
# Extra arguments go to `denovisor run` (e.g. --cpus 2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_deno.sh
exec deno run --allow-all main.ts run "$@"
