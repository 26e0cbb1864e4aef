/**
 * Taps for jailed VMMs. A VMM without CAP_NET_ADMIN, in a network namespace of its own,
 * can neither create a tap, bring it up nor put it on a bridge; it can attach to a
 * persistent tap its user owns through a /dev/net/tun opened in the host's namespace
 * (./jail.ts hands it one). So the daemon does the privileged part: it creates the tap
 * persistent (or takes the existing one the definition names), gives it to the VMM's user
 * (TUNSETOWNER, TUNSETGROUP), brings it up and bridges it; and it removes the taps it
 * created once the VMM has gone (`<runDir>/taps.json` lists them).
 *
 * @module
 */

import { join } from "node:path";
import type { VmmNicConfig } from "../../vmm/vmm_config.ts";
import { Tap } from "../../devices/net/tap.ts";

const TAPS_FILE = "taps.json";

/**
 * Makes the taps of `nics` ready for a VMM running as `uid`:`gid` and returns the NICs
 * with their real tap names ("auto" resolved to the kernel's "dvN") and no bridge (done).
 * Taps created here are written to `runDir`/taps.json before anything can fail after.
 */
export function prepareTaps(
  nics: readonly VmmNicConfig[],
  user: { uid: number; gid: number },
  runDir: string,
): VmmNicConfig[] {
  const created: string[] = [];
  const ready: VmmNicConfig[] = [];
  try {
    for (const nic of nics) {
      const create = nic.tap === "auto" || !tapExists(nic.tap);
      const tap = Tap.open({
        name: nic.tap,
        create,
        persist: true,
        bridge: nic.bridge,
        vnetHeader: true,
      });
      try {
        if (create) created.push(tap.name);
        tap.setOwner(user.uid, user.gid);
      } finally {
        tap.close();
      }
      const { bridge: _bridge, ...rest } = nic;
      ready.push({ ...rest, tap: tap.name });
    }
  } catch (error) {
    removeTaps(created);
    throw error;
  }
  Deno.writeTextFileSync(join(runDir, TAPS_FILE), JSON.stringify(created) + "\n", { mode: 0o644 });
  return ready;
}

/** Removes the taps the daemon created for the VMM of `runDir`; best effort. */
export function releaseTaps(runDir: string): void {
  let names: unknown;
  try {
    names = JSON.parse(Deno.readTextFileSync(join(runDir, TAPS_FILE)));
    Deno.removeSync(join(runDir, TAPS_FILE));
  } catch {
    return;
  }
  if (Array.isArray(names)) removeTaps(names.filter((n): n is string => typeof n === "string"));
}

/** Whether a network interface called `name` exists in the daemon's namespace. */
function tapExists(name: string): boolean {
  try {
    Deno.statSync(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}

function removeTaps(names: readonly string[]): void {
  for (const name of names) {
    try {
      const tap = Tap.open({ name, create: false, vnetHeader: true });
      tap.setPersistent(false);
      tap.close(); // the last reference: the interface goes
    } catch {
      // gone already, or held by a VMM that outlived its daemon's view
    }
  }
}
