#!/usr/bin/env bash
# Installs the Debian packages the build and the tests use, where missing.
#   gcc/binutils: the guest programs; qemu: the peer the benchmarks compare against and
#   qemu-img, the independent judge of disk images; xfsprogs/btrfs-progs: the storage-pool
#   tests make real filesystems; systemd: systemd-analyze verifies the unit; the rest builds
#   the Linux test kernel; seabios is the firmware of "run --firmware", acpica-tools (iasl)
#   judges the ACPI tables, xorriso makes the El Torito CD-ROM images of the tests;
#   etcd-server is the farm tests' etcd (tests/etcd_support.ts starts its own on loopback),
#   openssl makes its TLS test certificates.
set -euo pipefail
packages=(gcc binutils make qemu-system-x86 qemu-utils bc bison flex libelf-dev libssl-dev cpio xz-utils
  xfsprogs btrfs-progs util-linux systemd seabios acpica-tools xorriso etcd-server openssl)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure_packages: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${missing[@]}" >&2
fi
