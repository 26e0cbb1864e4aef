/**
 * What a jailed VMM is given: the descriptors its launcher opens for it as root (the
 * files it could not open as its own user, or that are not in its jail), and the paths
 * bound into its jail (a per-domain directory that becomes its root).
 *
 * Descriptors: `/dev/kvm`; every disk image and each file of its backing chain (read-only
 * below the top, as the VMM opens them; the VMM takes the images' OFD locks on them as
 * before, and the locks last while it holds the description); the kernel, initrd,
 * firmware and CD-ROM images; one `/dev/net/tun` per NIC, opened in the host's network
 * namespace so that TUNSETIFF finds the tap there (./tap_setup.ts made it, owned by the
 * VMM's user). The VMM finds them by path (common/handed_descriptors.ts).
 *
 * Bound read-only at the same paths: the program (the compiled `denovisor`, or `deno`
 * with the source tree and Deno's cache when run from source) and the shared libraries
 * it needs, and a restore's state and memory files; read-write: the domain's run directory and its log. Nothing else of the host
 * is there: no /etc, no /home, no other domain's files.
 *
 * @module
 */

import { dirname, isAbsolute, join } from "node:path";
import type { VmmConfig } from "../../vmm/vmm_config.ts";
import type { HandedDescriptors } from "../../common/handed_descriptors.ts";
import { imageInfo } from "../../storage/image_info.ts";
import { kvmDevicePath } from "../../core/kvm.ts";

/** A file the launcher opens before the jail and the VMM inherits. */
export interface HandedOpen {
  fd: number;
  path: string;
  write: boolean;
}

/** The first descriptor handed over (0-2 are stdio). */
const FIRST_FD = 3;

/**
 * The opens of `config`'s VMM and the table that tells it which is which. A path that
 * does not exist is left out: the VMM then says what is missing, as it would outside a
 * jail.
 */
export function planDescriptors(
  config: VmmConfig,
): { opens: HandedOpen[]; table: HandedDescriptors } {
  const opens: HandedOpen[] = [];
  const table: HandedDescriptors = { files: {}, taps: {} };
  const add = (path: string, write: boolean): number => {
    const fd = FIRST_FD + opens.length;
    opens.push({ fd, path, write });
    return fd;
  };
  if (exists(kvmDevicePath())) table.kvm = add(kvmDevicePath(), true);
  const file = (path: string, write: boolean) => {
    if (!Object.hasOwn(table.files, path) && exists(path)) table.files[path] = add(path, write);
  };
  const image = (path: string, readOnly: boolean, format?: "raw" | "qcow2") => {
    file(path, !readOnly);
    let info;
    try {
      info = imageInfo(path, { format });
    } catch {
      return; // the VMM reports what is wrong with it when it opens it
    }
    for (let layer = info.backing; layer !== undefined; layer = layer.backing) {
      file(layer.path, false);
    }
  };
  const boot = config.boot;
  if (boot.kind === "linux") file(boot.kernel, false);
  if (boot.kind !== "firmware" && boot.initrd !== undefined) file(boot.initrd, false);
  if (boot.kind === "firmware") file(boot.firmware, false);
  for (const disk of config.disks) image(disk.path, disk.readOnly, disk.format);
  for (const disk of config.sataDisks ?? []) image(disk.path, disk.readOnly, disk.format);
  for (const iso of config.cdroms ?? []) file(iso, false);
  if (exists("/dev/net/tun")) {
    for (const nic of config.nics) table.taps[nic.tap] = add("/dev/net/tun", true);
  }
  return { opens, table };
}

/** The paths bound into a jail. */
export interface JailBinds {
  readOnly: string[];
  readWrite: string[];
}

let libraries: string[] | undefined;

/** The shared libraries `executable` loads (ldd), or the usual directories when ldd fails. */
export async function sharedLibraries(executable: string): Promise<string[]> {
  if (libraries !== undefined) return libraries;
  try {
    const out = await new Deno.Command("ldd", { args: [executable], stderr: "null" }).output();
    const text = new TextDecoder().decode(out.stdout);
    const found = [...text.matchAll(/(?:=>\s*|^\s*)(\/\S+)\s+\(0x/gm)].map((m) => m[1]);
    if (out.success) return libraries = found;
    // "not a dynamic executable": a static binary needs none.
    if (/not a dynamic executable/.test(text)) return libraries = [];
  } catch {
    // no ldd on this host
  }
  return libraries = ["/lib64", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"].filter(
    exists,
  );
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Deno's cache directory, as deno finds it ($DENO_DIR, $XDG_CACHE_HOME/deno, ~/.cache/deno). */
export function denoCacheDir(env: Record<string, string | undefined> = Deno.env.toObject()) {
  if (env.DENO_DIR) return env.DENO_DIR;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, "deno");
  return join(env.HOME ?? "/root", ".cache", "deno");
}

/**
 * What the jail of a VMM run with `command` (its argv) in `runDir`, logging to `logFile`,
 * holds. `sourceRoot` is the source tree when run from source (undefined for the compiled
 * program).
 */
export async function jailBinds(
  command: readonly string[],
  runDir: string,
  logFile: string,
  sourceRoot: string | undefined,
  extra: readonly string[] = [],
): Promise<JailBinds> {
  const readOnly = new Set<string>([command[0], ...await sharedLibraries(command[0]), ...extra]);
  if (sourceRoot !== undefined) {
    readOnly.add(sourceRoot);
    const cache = denoCacheDir();
    if (exists(cache)) readOnly.add(cache);
    // A stand-in VMM of a test may live outside the tree.
    for (const arg of command.slice(1)) {
      if (isAbsolute(arg) && exists(arg) && !arg.startsWith(sourceRoot + "/")) {
        readOnly.add(dirname(arg));
      }
    }
  }
  readOnly.add("/dev/null");
  readOnly.add("/dev/urandom");
  return { readOnly: [...readOnly], readWrite: [runDir, logFile] };
}
