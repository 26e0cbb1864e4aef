/**
 * Saved state and jailed VMMs. A jailed VMM sees only its run directory: it cannot write
 * a state file where the daemon wants it, nor read one to restore from. So a save goes to
 * `<runDir>/save/` (group-writable by the VMM's group) and the daemon moves the two files
 * to their place, owned by root; a restore binds the state and memory files read-only
 * into its jail at their own paths and lets the VMM's group read them until it is up.
 *
 * A run directory with a descriptor table (`descriptors.json`) belongs to a jailed VMM.
 *
 * @module
 */

import { basename, join } from "node:path";
import type { VmmConfig, VmmSaveResult } from "../../vmm/vmm_config.ts";

/** Whether the VMM of `runDir` runs in a jail (./vmm_sandbox.ts wrote its descriptor table). */
export function jailed(runDir: string): boolean {
  try {
    return Deno.statSync(join(runDir, "descriptors.json")).isFile;
  } catch {
    return false;
  }
}

/**
 * Runs `save(target)`, where `target` is `stateFile` for a VMM outside a jail, else a
 * path in its run directory whose files are then moved to `stateFile` (and `.mem`).
 */
export async function withSaveStaging(
  runDir: string,
  stateFile: string,
  save: (target: string) => Promise<VmmSaveResult>,
): Promise<VmmSaveResult> {
  if (!jailed(runDir)) return await save(stateFile);
  const staging = join(runDir, "save");
  await Deno.remove(staging, { recursive: true }).catch(() => {});
  const gid = Deno.statSync(runDir).gid ?? 0;
  await Deno.mkdir(staging, { mode: 0o770 });
  await Deno.chown(staging, 0, gid);
  await Deno.chmod(staging, 0o770);
  const target = join(staging, basename(stateFile));
  try {
    const result = await save(target);
    const memoryFile = result.memoryFile === undefined ? undefined : `${stateFile}.mem`;
    if (memoryFile !== undefined) await moveFile(result.memoryFile!, memoryFile);
    await moveFile(target, stateFile);
    return { ...result, stateFile, ...(memoryFile === undefined ? {} : { memoryFile }) };
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}

/** Moves `from` to `to` (a copy then a rename across file systems), owned by root, 0600. */
async function moveFile(from: string, to: string): Promise<void> {
  await Deno.chown(from, 0, 0);
  await Deno.chmod(from, 0o600);
  try {
    await Deno.rename(from, to);
    return;
  } catch (error) {
    if (!/cross-device|EXDEV/i.test((error as Error).message)) throw error;
  }
  const temporary = `${to}.moving-${Deno.pid}`;
  try {
    await Deno.copyFile(from, temporary);
    const file = await Deno.open(temporary, { write: true });
    try {
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.chmod(temporary, 0o600);
    await Deno.rename(temporary, to);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
  await Deno.remove(from);
}

/**
 * The files a jailed VMM restoring from `config` reads: the state file and its memory
 * file beside it (`<state>.mem`, as the daemon names it), bound read-only into its jail.
 */
export function restoreFiles(config: VmmConfig): string[] {
  if (config.restore === undefined) return [];
  const state = config.restore.stateFile;
  return [state, `${state}.mem`].filter((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
}

/** Files whose read grant is out, with how many starts hold it and what to put back. */
const grants = new Map<string, { holders: number; uid: number; gid: number; mode: number }>();

/**
 * Lets group `gid` read `paths` (root-owned 0600 saves) until the returned function puts
 * back their owners and modes: the VMM opens and maps them while it starts, as libvirt
 * relabels a saved state for QEMU while it restores. Counted per file: VMMs restoring one
 * state together (clones) keep it readable until the last of them is up.
 */
export function grantRead(paths: readonly string[], gid: number): () => void {
  const held: string[] = [];
  for (const path of paths) {
    const grant = grants.get(path);
    if (grant !== undefined) {
      grant.holders++;
    } else {
      const info = Deno.statSync(path);
      grants.set(path, {
        holders: 1,
        uid: info.uid ?? 0,
        gid: info.gid ?? 0,
        mode: (info.mode ?? 0o600) & 0o7777,
      });
      Deno.chownSync(path, null, gid);
      Deno.chmodSync(path, 0o640);
    }
    held.push(path);
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    for (const path of held) {
      const grant = grants.get(path);
      if (grant === undefined || --grant.holders > 0) continue;
      grants.delete(path);
      try {
        Deno.chownSync(path, grant.uid, grant.gid);
        Deno.chmodSync(path, grant.mode);
      } catch {
        // removed meanwhile
      }
    }
  };
}
