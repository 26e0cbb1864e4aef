/**
 * Domain snapshots: the disks through the pools (each writable disk must be a pool
 * volume; its pool snapshot takes the domain snapshot's name) and, for a running or
 * paused domain, the memory and devices through the VMM, all at one instant: the domain
 * is saved (paused) into the snapshot's folder, its VMM stops so that the disks are
 * free, the pools snapshot them, and a new VMM resumes the guest from that very state.
 * Metadata lives in the state directory (manager/snapshots/snapshot_store.ts).
 *
 * Revert rolls the disks back (the pools drop their snapshots newer than the target, so
 * domain snapshots taken after it go too, as the answer's note says) and restores the
 * memory; delete merges each disk's snapshot as `vol delete-snapshot` does.
 *
 * @module
 */

import { join } from "node:path";
import type { DomainDefinition, DomainInfo, SnapshotDisk, SnapshotInfo } from "../api_types.ts";
import type { PoolManager } from "../../storage/pool/mod.ts";
import { ApiError } from "../../common/http/mod.ts";
import { diskName } from "../../vmm/device_names.ts";
import {
  checkSnapshotName,
  type SnapshotMeta,
  type SnapshotStore,
} from "../snapshots/snapshot_store.ts";
import type { DomainEntry } from "./domain_entry.ts";
import type { DomainManager } from "./domains.ts";
import { parseRequest } from "../../common/http/mod.ts";
import * as schema from "../api_schema.ts";
import { booleanField, withVmmStopped } from "./save_restore.ts";

/** What snapshot operations need from the daemon. */
export interface SnapshotContext {
  domains: DomainManager;
  pools: PoolManager;
  store: SnapshotStore;
}

/** The writable pool disks of `definition`; a writable plain-path disk is refused. */
export function snapshotDisks(definition: DomainDefinition, verb: string): SnapshotDisk[] {
  const disks: SnapshotDisk[] = [];
  (definition.disks ?? []).forEach((disk, index) => {
    if (disk.readOnly) return; // Never changes: nothing to capture.
    const id = diskName(index);
    if (disk.volume === undefined) {
      throw new ApiError(
        "conflict",
        `Cannot ${verb} domain '${definition.name}': disk ${id} is the plain file ` +
          `${disk.path}, and only pool volumes can be snapshotted; import it into a pool ` +
          `('denovisor vol create --import') or make it read-only`,
      );
    }
    disks.push({ id, pool: disk.pool ?? "default", volume: disk.volume });
  });
  return disks;
}

/**
 * The snapshots of the domain `entry` is, oldest first. Snapshots are kept by domain name,
 * and undefining a domain leaves them: those of a former domain of the same name (another
 * uuid) are not this one's, and are left out.
 */
async function snapshotsOf(ctx: SnapshotContext, entry: DomainEntry): Promise<SnapshotMeta[]> {
  return (await ctx.store.list(entry.definition.name)).filter((meta) => ownedBy(meta, entry));
}

/** Snapshot `name` of the domain `entry` is (404 when it has none of that name). */
export async function snapshotOf(
  ctx: SnapshotContext,
  entry: DomainEntry,
  name: string,
): Promise<SnapshotMeta> {
  const domain = entry.definition.name;
  const meta = await ctx.store.get(domain, name);
  if (!ownedBy(meta, entry)) {
    throw new ApiError(
      "not_found",
      `Domain '${domain}' has no snapshot '${name}': the one in ${ctx.store.dir(domain, name)} ` +
        `belongs to a former domain of that name (uuid ${meta.definition.uuid}); remove that ` +
        `folder if it is no longer needed`,
    );
  }
  return meta;
}

function ownedBy(meta: SnapshotMeta, entry: DomainEntry): boolean {
  return meta.definition.uuid === undefined || meta.definition.uuid === entry.definition.uuid;
}

/** GET /v1/domains/{name}/snapshots. */
export async function listSnapshots(ctx: SnapshotContext, domain: string) {
  const entry = ctx.domains.get(domain);
  const current = await ctx.store.current(domain);
  return (await snapshotsOf(ctx, entry)).map((meta) => view(meta, current));
}

/** GET /v1/domains/{name}/snapshots/{snapshot}. */
export async function snapshotInfo(ctx: SnapshotContext, domain: string, name: string) {
  const entry = ctx.domains.get(domain);
  return view(await snapshotOf(ctx, entry, name), await ctx.store.current(domain));
}

/** POST /v1/domains/{name}/snapshots. */
export async function createSnapshot(
  ctx: SnapshotContext,
  domain: string,
  body: unknown,
): Promise<SnapshotInfo> {
  const request = parseRequest(schema.SnapshotCreateRequest, body);
  const name = checkSnapshotName(request.name);
  const diskOnly = booleanField(request, "diskOnly");
  const description = request.description;
  return await ctx.domains.locked(domain, async (entry) => {
    refuseTransient(entry, "take snapshots of");
    const state = entry.state;
    if (!["shutoff", "running", "paused"].includes(state)) {
      throw new ApiError(
        "conflict",
        `Domain '${domain}' is ${state}; snapshot it when it is running, paused or shut off`,
      );
    }
    const definition = entry.run?.record.definition ?? entry.definition;
    const disks = snapshotDisks(definition, "snapshot");
    const dir = await ctx.store.reserve(domain, name);
    const meta: SnapshotMeta = {
      name,
      domain,
      createdAt: new Date().toISOString(),
      ...(description ? { description } : {}),
      domainState: state,
      memory: state !== "shutoff" && !diskOnly,
      disks,
      definition,
    };
    let restartError: ApiError | undefined;
    const parent = await ctx.store.current(domain);
    if (parent !== undefined && (await snapshotsOf(ctx, entry)).some((s) => s.name === parent)) {
      meta.parent = parent;
    }
    try {
      if (state === "shutoff") {
        await snapshotAll(ctx.pools, disks, name);
      } else {
        // Disk-only still needs the guest's state for the moment its VMM is away.
        const stateFile = diskOnly ? join(dir, ".resume") : join(dir, "state");
        const stopped = await withVmmStopped(
          ctx.domains,
          entry,
          stateFile,
          () => snapshotAll(ctx.pools, disks, name),
        );
        const saved = stopped.saved;
        restartError = stopped.restartError;
        if (diskOnly) {
          // The new VMM has mapped the memory file; the names can go.
          await Deno.remove(stateFile).catch(() => {});
          await Deno.remove(saved.memoryFile ?? `${stateFile}.mem`).catch(() => {});
        } else {
          meta.stateBytes = saved.stateBytes;
          meta.memoryDataBytes = saved.memoryDataBytes;
        }
      }
    } catch (error) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw error;
    }
    await ctx.store.commit(meta);
    if (restartError !== undefined) {
      // The snapshot is whole (disks and state): keep it, and say how to get the guest back.
      throw new ApiError(
        "internal",
        `Snapshot '${name}' was taken, but ${restartError.message}` +
          (meta.memory ? `; 'denovisor snapshot revert ${domain} ${name}' tries again` : ""),
      );
    }
    return view(meta, name);
  });
}

/** POST /v1/domains/{name}/snapshots/{snapshot}/revert. */
export async function revertSnapshot(
  ctx: SnapshotContext,
  domain: string,
  name: string,
): Promise<DomainInfo> {
  const entry = ctx.domains.get(domain);
  const meta = await snapshotOf(ctx, entry, name);
  refuseTransient(entry, "revert");
  // The definition goes back too (as libvirt's snapshots carry the domain XML): the saved
  // machine needs the memory size, vCPUs and devices it was taken with.
  if (JSON.stringify(entry.definition) !== JSON.stringify(meta.definition)) {
    await ctx.domains.edit(domain, meta.definition);
  }
  return await ctx.domains.locked(domain, async (entry) => {
    const all = await snapshotsOf(ctx, entry);
    const volumes = new Set(meta.disks.map((d) => `${d.pool}/${d.volume}`));
    // The pools drop a volume's snapshots newer than the one rolled back to.
    const dropped = all.filter((other) =>
      other.createdAt > meta.createdAt &&
      other.disks.some((d) => volumes.has(`${d.pool}/${d.volume}`))
    );
    // Every disk's snapshot must be there before anything is stopped or rolled back.
    for (const disk of meta.disks) {
      if (!ctx.pools.volumeInfo(disk.pool, disk.volume).snapshots.includes(name)) {
        throw new ApiError(
          "conflict",
          `Cannot revert domain '${domain}' to '${name}': volume '${disk.volume}' of pool ` +
            `'${disk.pool}' (disk ${disk.id}) no longer has a snapshot '${name}'`,
        );
      }
    }
    if (entry.state !== "shutoff") await ctx.domains.lifecycle.destroy(entry);
    for (const disk of meta.disks) {
      // The revert says which later snapshots went (below), so the pools may drop them.
      await ctx.pools.volumeAction(disk.pool, disk.volume, "rollback", {
        snapshot: name,
        dropNewer: true,
      });
    }
    for (const other of dropped) await ctx.store.remove(domain, other.name);
    await ctx.store.setCurrent(domain, name);
    if (meta.memory) {
      await ctx.domains.lifecycle.start(entry, {
        stateFile: ctx.store.stateFile(domain, name),
        paused: meta.domainState === "paused",
        // The rolled-back disks are new overlays on the snapshot: other files, same data.
        force: true,
      });
    }
    const info = ctx.domains.info(domain);
    const notes = [
      meta.memory ? undefined : "a disk-only snapshot: the domain is left shut off",
      dropped.length > 0
        ? `the later snapshots ${
          dropped.map((s) => `'${s.name}'`).join(", ")
        } were deleted with the disks' newer states`
        : undefined,
    ].filter((note) => note !== undefined);
    return notes.length > 0 ? { ...info, note: notes.join("; ") } : info;
  });
}

/** DELETE /v1/domains/{name}/snapshots/{snapshot}. */
export async function deleteSnapshot(
  ctx: SnapshotContext,
  domain: string,
  name: string,
): Promise<void> {
  await ctx.domains.locked(domain, async (entry) => {
    const meta = await snapshotOf(ctx, entry, name);
    const merge = async () => {
      const remaining = [...meta.disks];
      while (remaining.length > 0) {
        const disk = remaining[0];
        try {
          await ctx.pools.volumeAction(disk.pool, disk.volume, "delete-snapshot", {
            snapshot: name,
          });
        } catch (error) {
          // Keep the snapshot, listing only the disks still to merge; the pool says why.
          await ctx.store.commit({ ...meta, disks: remaining }, false);
          throw error;
        }
        remaining.shift();
      }
    };
    if (meta.disks.length > 0 && (entry.state === "running" || entry.state === "paused")) {
      // The newest disk snapshot merges into the image the VMM writes: it must let go.
      const dir = join(ctx.store.root, domain, `.delete-${crypto.randomUUID()}`);
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      try {
        const { restartError } = await withVmmStopped(
          ctx.domains,
          entry,
          join(dir, "state"),
          merge,
        );
        if (restartError !== undefined) {
          await ctx.store.remove(domain, name);
          throw new ApiError(
            "internal",
            `Snapshot '${name}' was deleted (its disks merged), but ${restartError.message}`,
          );
        }
      } finally {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    } else if (meta.disks.length > 0 && entry.state !== "shutoff") {
      throw new ApiError(
        "conflict",
        `Domain '${domain}' is ${entry.state}; delete its snapshots when it is running, paused or shut off`,
      );
    } else {
      await merge();
    }
    await ctx.store.remove(domain, name);
  });
}

/** Snapshots every disk under `name`; if one fails, the ones taken are deleted again. */
async function snapshotAll(pools: PoolManager, disks: SnapshotDisk[], name: string) {
  const taken: SnapshotDisk[] = [];
  try {
    for (const disk of disks) {
      await pools.volumeAction(disk.pool, disk.volume, "snapshot", { target: name });
      taken.push(disk);
    }
  } catch (error) {
    for (const disk of taken.reverse()) {
      await pools.volumeAction(disk.pool, disk.volume, "delete-snapshot", { snapshot: name })
        .catch(() => {});
    }
    throw error;
  }
}

function refuseTransient(entry: DomainEntry, verb: string): void {
  if (!entry.persistent) {
    const name = entry.definition.name;
    throw new ApiError(
      "conflict",
      `Domain '${name}' is transient (made by create); define it to ${verb} it`,
    );
  }
}

/** The API view of a snapshot. */
function view(meta: SnapshotMeta, current: string | undefined): SnapshotInfo {
  const { definition: _definition, ...info } = meta;
  return { ...info, current: meta.name === current };
}
