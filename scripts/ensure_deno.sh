#!/usr/bin/env bash
# Makes sure Deno 2.9.6 is on PATH, installing it from the npm registry if it is missing.
set -euo pipefail
want=2.9.6
if command -v deno >/dev/null 2>&1 && deno --version | head -1 | grep -q "deno $want"; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "ensure_deno: npm is needed to install Deno $want (apt-get install npm)" >&2
  exit 1
fi
echo "ensure_deno: installing Deno $want from the npm registry" >&2
npm install -g --allow-scripts=deno "deno@$want" >&2 2>/dev/null || npm install -g "deno@$want" >&2
deno --version | head -1 >&2
