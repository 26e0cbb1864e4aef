#!/usr/bin/env bash
# Host-side tests of runtime parsers that need no VM (run as root: they map memory at the
# guest-physical addresses the parsers read).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/build/host_test"
mkdir -p "$out"
gcc -std=gnu11 -O1 -Wall -Wextra -fno-builtin -fno-delete-null-pointer-checks \
  --param=min-pagesize=0 -I "$here/runtime" -o "$out/mptable_test" \
  "$here/runtime/host_test/mptable_test.c" "$here/runtime/cpus.c" "$here/runtime/boot_info.c" \
  "$here/runtime/apic.c" "$here/runtime/string.c"
"$out/mptable_test"
