#!/usr/bin/env bash
# Builds the Denovisor test kernel (x86-64, minimal, PVH-bootable) from
# Debian's linux-source-6.1 package and caches it outside the repository.
#
# Usage: guests/linux/build.sh
#   DENOVISOR_LINUX_CACHE        cache root (default /var/cache/denovisor/linux)
#   DENOVISOR_LINUX_KEEP_SOURCE  1 keeps the built source tree in the cache entry
#
# The cache entry is keyed by a hash of everything that shapes the kernel: the
# config fragment, the patches, the source package version, the compiler
# version and BUILD_RECIPE below. A second run with the same inputs builds
# nothing. The last two lines of stdout are always:
#   vmlinux=/path/to/vmlinux
#   bzImage=/path/to/bzImage
# Progress goes to stderr; the full build output to <entry>/build.log.
set -euo pipefail

# Bump when a change to this script changes the kernel it produces.
readonly BUILD_RECIPE=1
readonly SOURCE_PACKAGE=linux-source-6.1
readonly SOURCE_TARBALL=/usr/src/linux-source-6.1.tar.xz
readonly HOST_PACKAGES=(
  "$SOURCE_PACKAGE" bc binutils bison cpio flex gcc kmod libc6-dev libelf-dev
  libssl-dev make patch perl xz-utils
)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly here
readonly fragment="$here/denovisor.config"
readonly cache_root="${DENOVISOR_LINUX_CACHE:-/var/cache/denovisor/linux}"

log() { printf 'linux: %s\n' "$*" >&2; }
fail() {
  printf 'linux: error: %s\n' "$*" >&2
  exit 1
}

print_outputs() {
  printf 'vmlinux=%s\n' "$1/vmlinux"
  printf 'bzImage=%s\n' "$1/bzImage"
}

ensure_host_packages() {
  local missing=() package
  for package in "${HOST_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null |
      grep -q 'install ok installed'; then
      missing+=("$package")
    fi
  done
  ((${#missing[@]} == 0)) && return 0
  if ((EUID != 0)); then
    fail "missing packages: ${missing[*]}; install them with apt-get or run this script as root"
  fi
  log "installing ${missing[*]}"
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
}

# Everything that changes the produced kernel goes into the key.
compute_cache_key() {
  local source_version=$1 patch
  {
    printf 'recipe %s\n' "$BUILD_RECIPE"
    printf 'source %s %s\n' "$SOURCE_PACKAGE" "$source_version"
    printf 'gcc %s\n' "$(gcc -dumpfullversion)"
    printf 'fragment\n'
    cat "$fragment"
    for patch in "$here"/patches/*.patch; do
      [[ -e $patch ]] || continue
      printf 'patch %s\n' "$(basename "$patch")"
      cat "$patch"
    done
  } | sha256sum | cut -c1-16
}

# merge_config.sh only warns when Kconfig drops a requested value; here a
# dropped value is an error, so a dependency change cannot go unnoticed.
verify_config() {
  local config=$1 line symbol dropped=0
  while IFS= read -r line; do
    if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=.*$ ]]; then
      if ! grep -qxF -- "$line" "$config"; then
        log "config: wanted '$line', got '$(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$config" || echo absent)'"
        dropped=1
      fi
    elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
      symbol=${BASH_REMATCH[1]}
      if grep -qE "^${symbol}=" "$config"; then
        log "config: wanted $symbol off, got '$(grep -E "^${symbol}=" "$config")'"
        dropped=1
      fi
    fi
  done <"$fragment"
  ((dropped == 0)) || fail "Kconfig dropped values from $fragment (see above); fix their dependencies in the fragment"
}

# A VMM can only enter vmlinux directly if it carries the PVH entry note
# (Xen ELF note type 18, XEN_ELFNOTE_PHYS32_ENTRY).
verify_pvh_note() {
  readelf --notes "$1" | grep -E '^\s*Xen\s' | grep -qE '\(0x0*12\)|PHYS32_ENTRY' ||
    fail "$1 has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); check CONFIG_PVH in $fragment"
}

build_into() {
  local work=$1 tree="$1/$SOURCE_PACKAGE" build_log="$1/build.log" patch started
  started=$(date +%s)
  log "extracting $SOURCE_TARBALL"
  tar -xf "$SOURCE_TARBALL" -C "$work"
  for patch in "$here"/patches/*.patch; do
    [[ -e $patch ]] || continue
    log "applying $(basename "$patch")"
    patch -d "$tree" -p1 --forward --batch --quiet <"$patch" ||
      fail "$(basename "$patch") does not apply to $SOURCE_PACKAGE; refresh it against the installed source"
  done

  export ARCH=x86_64
  log "configuring: tinyconfig + $(basename "$fragment")"
  make -C "$tree" tinyconfig >>"$build_log" 2>&1
  # -n: re-run allnoconfig over tinyconfig + fragment, so anything the
  # fragment newly enables pulls in no defaults that were not asked for.
  (cd "$tree" && scripts/kconfig/merge_config.sh -n .config "$fragment") >>"$build_log" 2>&1
  verify_config "$tree/.config"

  log "compiling with $(nproc) jobs (log: $build_log)"
  if ! make -C "$tree" -j"$(nproc)" bzImage >>"$build_log" 2>&1; then
    tail -n 30 "$build_log" >&2
    fail "kernel build failed; the full output is in $build_log"
  fi

  cp "$tree/vmlinux" "$work/vmlinux"
  cp "$tree/arch/x86/boot/bzImage" "$work/bzImage"
  cp "$tree/.config" "$work/config"
  cp "$tree/System.map" "$work/System.map"
  verify_pvh_note "$work/vmlinux"
  if [[ ${DENOVISOR_LINUX_KEEP_SOURCE:-0} != 1 ]]; then
    rm -rf "$tree"
  fi
  log "built in $(($(date +%s) - started)) s"
}

main() {
  ensure_host_packages
  [[ -r $SOURCE_TARBALL ]] || fail "$SOURCE_TARBALL is missing; reinstall $SOURCE_PACKAGE"
  local source_version key entry work
  source_version=$(dpkg-query -W -f='${Version}' "$SOURCE_PACKAGE")
  key=$(compute_cache_key "$source_version")
  entry="$cache_root/$key"

  if [[ ! -f $entry/vmlinux || ! -f $entry/bzImage ]]; then
    mkdir -p "$cache_root" ||
      fail "cannot create cache directory $cache_root; set DENOVISOR_LINUX_CACHE to a writable directory"
    # One builder per key: a second concurrent run waits, then finds the entry.
    exec {lock_fd}>"$cache_root/.$key.lock"
    flock "$lock_fd"
    if [[ ! -f $entry/vmlinux || ! -f $entry/bzImage ]]; then
      work="$cache_root/.$key.partial"
      rm -rf "$work"
      mkdir -p "$work"
      log "building $SOURCE_PACKAGE $source_version into $entry"
      build_into "$work"
      printf 'key=%s\nsource=%s %s\ngcc=%s\nrecipe=%s\nbuilt=%s\n' \
        "$key" "$SOURCE_PACKAGE" "$source_version" "$(gcc -dumpfullversion)" \
        "$BUILD_RECIPE" "$(date -u +%FT%TZ)" >"$work/build-info.txt"
      # The entry appears complete or not at all.
      rm -rf "$entry"
      mv "$work" "$entry"
      ln -sfn "$key" "$cache_root/.latest.tmp" && mv -T "$cache_root/.latest.tmp" "$cache_root/latest"
    fi
    flock -u "$lock_fd"
  else
    log "cached: $entry"
  fi
  print_outputs "$entry"
}

main "$@"
