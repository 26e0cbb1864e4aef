/**
 * What the daemon does once at start, while it already serves: take over the VMMs a
 * previous daemon left running (`<runDir>/domains/<name>/domain.json`), then start the
 * autostart domains.
 *
 * @module
 */

import { join } from "node:path";
import { type Lifecycle, type LifecycleContext, revalidate } from "./lifecycle.ts";
import { VmmRun } from "./vmm_run.ts";
import { releaseVmmSandbox } from "../sandbox/vmm_sandbox.ts";

/**
 * Re-attaches every VMM recorded in the run directory; a record whose VMM has gone is
 * handled as that run's end (its on_* action applies). Damaged records are removed.
 *
 * Every domain's lock is taken before this returns its promise (synchronously), so the
 * daemon can listen at once: a request for a domain being re-attached waits for it
 * instead of, say, starting a second VMM. The VMMs are asked in parallel, so hung
 * (stopped) VMMs cost one control timeout in all, not one each.
 */
export function reattachAll(context: LifecycleContext, lifecycle: Lifecycle): Promise<void> {
  const domainsDir = join(context.paths.runDir, "domains");
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(domainsDir)].filter((e) => e.isDirectory).map((e) => e.name);
  } catch {
    return Promise.resolve(); // No run directory yet: nothing ran.
  }
  const runs = names.map((name) =>
    context.mutex.run(name, async () => {
      const runDir = join(domainsDir, name);
      const record = await VmmRun.readRecord(runDir);
      if (record === undefined || record.definition.name !== name) {
        // Its taps are made non-persistent first, or they would outlive the directory
        // that names them (a VMM still holding one keeps it until it exits).
        releaseVmmSandbox(runDir);
        await Deno.remove(runDir, { recursive: true }).catch(() => {});
        return;
      }
      let entry = context.entries.get(name);
      if (entry === undefined) {
        // A transient domain (or one undefined by hand while it ran): known from its record.
        entry = {
          definition: revalidate(record.definition),
          persistent: false,
          state: "shutoff",
          restarts: [],
          logFile: context.store.logFile(name),
        };
        context.entries.set(name, entry);
      }
      await lifecycle.adopt(entry, VmmRun.attach(name, runDir, record));
    }).catch((error) => context.log(`cannot re-attach '${name}': ${(error as Error).message}`))
  );
  return Promise.all(runs).then(() => {});
}

/** Starts every persistent domain with autostart that is not running. */
export async function autostartAll(context: LifecycleContext, lifecycle: Lifecycle): Promise<void> {
  const wanted = [...context.entries.values()].filter((e) =>
    e.persistent && e.definition.autostart && e.state === "shutoff"
  );
  await Promise.all(wanted.map((entry) => {
    const name = entry.definition.name;
    return context.mutex.run(name, async () => {
      if (entry.state !== "shutoff" || context.entries.get(name) !== entry) return;
      try {
        await lifecycle.start(entry);
        context.log(`autostarted domain '${name}'`);
      } catch (error) {
        context.log(`autostart of '${name}' failed: ${(error as Error).message}`);
      }
    });
  }));
}
