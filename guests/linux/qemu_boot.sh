#!/usr/bin/env bash
# Boots the test kernel under QEMU+KVM (the reference peer while Denovisor's
# own VMM cannot) and prefixes every console line with the wall-clock seconds
# since QEMU started, to measure how far and how fast the kernel gets here.
#
# Usage: guests/linux/qemu_boot.sh [vmlinux|bzImage] [timeout-seconds] [extra cmdline...]
#   The kernel paths come from build.sh (built first if needed).
#   QEMU_ARGS   extra QEMU options, e.g. "-initrd /tmp/init.cpio" or
#               "-nic none" (skips the iPXE ROM: about 4 s less firmware time)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
image=${1:-vmlinux}
seconds=${2:-120}
shift $(($# > 2 ? 2 : $#))

case $image in
vmlinux | bzImage) ;;
*)
  echo "qemu_boot: unknown image '$image'; use vmlinux or bzImage" >&2
  exit 2
  ;;
esac
kernel=$("$here/build.sh" | sed -n "s/^$image=//p")

# Why each option (see README.md): noxsave because the host leaks XSAVE in
# CPUID leaf 1 but cannot emulate xrstor; smap/smep/popcnt because clac/stac
# and popcnt are not emulated at CPL0; one UART because probing is slow.
cmdline="console=ttyS0 earlyprintk=serial,ttyS0,115200 noxsave clearcpuid=smap,smep,popcnt 8250.nr_uarts=1 panic=-1 $*"

# QEMU_ARGS is split into words on purpose.
# shellcheck disable=SC2086
timeout "$seconds" qemu-system-x86_64 -accel kvm -m 256 -nographic -no-reboot \
  -kernel "$kernel" -append "$cmdline" ${QEMU_ARGS:-} </dev/null 2>&1 |
  perl -MTime::HiRes=time -ne 'BEGIN { $| = 1; $t = time } printf "[%7.2f] %s", time - $t, $_' ||
  true
