/**
 * `clone DOMAIN NEW [--count N] [--snapshot NAME] [--start]`: new domains with new names,
 * uuids and MACs, whose writable disks are new volumes in the source's pools and whose
 * memory (when the source runs, or the snapshot has memory) is the saved state's memory
 * file, which every clone's VMM maps copy-on-write: N clones share its pages until they
 * write them.
 *
 * Disks: the state to clone must never change under the clones, so it is first copied
 * once into a base volume (`<NEW>-base-<disk>`: a full clone, reflinked where the file
 * system can; for --snapshot, the snapshot's image imported), then each clone gets a
 * linked clone of it (`<clone>-<disk>`, a qcow2 overlay). A single clone gets the copy
 * itself. The base stays while clones need it (the pool refuses to delete it until then).
 *
 * @module
 */

import { join } from "node:path";
import type { CloneRequest, DomainDefinition, DomainInfo, SnapshotDisk } from "../api_types.ts";
import { ApiError } from "../../common/http/mod.ts";
import { isObjectName, isVolumeName, OBJECT_NAME_RULE } from "../../common/validators.ts";
import { checkSnapshotName } from "../snapshots/snapshot_store.ts";
import { diskName } from "../../vmm/device_names.ts";
import { parseRequest } from "../../common/http/mod.ts";
import * as schema from "../api_schema.ts";
import { booleanField, defineAndRestore, withVmmStopped } from "./save_restore.ts";
import { type SnapshotContext, snapshotDisks, snapshotOf } from "./snapshot_ops.ts";

/** At most this many clones per request. */
export const MAX_CLONES = schema.MAX_CLONES;

/**
 * Clones whose VMMs start at the same time. One after another, 20 jailed clones took
 * 6-9 s each on a loaded 2-core host (a VMM's start is mostly waiting: process, sandbox,
 * Deno start-up, Workers); all at once, each start competes for the same two cores and
 * can overrun the daemon's start-up timeout (8 at once at a load average of 38: one
 * was not ready in 30 s). The read grant of the state and memory files is counted per
 * file (manager/sandbox/save_staging.ts grantRead), so starts may overlap.
 */
const CLONE_STARTS_AT_ONCE = 4;

/**
 * `run` over `items`, at most `limit` at a time, results in order. Every call settles
 * before the first failure is thrown, so that an undo never races a start still under way.
 */
async function inParallel<T, R>(
  items: readonly T[],
  limit: number,
  run: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await run(items[index]).then(
        (value) => ({ status: "fulfilled", value }),
        (reason) => ({ status: "rejected", reason }),
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  const failed = results.find((result) => result.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return results.map((result) => (result as PromiseFulfilledResult<R>).value);
}

/** What clone needs: the snapshot context and where to keep a running source's state. */
export interface CloneContext extends SnapshotContext {
  stateDir: string;
}

/** Where the disks and memory of the clones come from. */
interface CloneSource {
  definition: DomainDefinition;
  disks: SnapshotDisk[];
  /** The state file the clones restore (absent: they boot, or stay off). */
  stateFile?: string;
}

/** POST /v1/domains/{name}/clone: the new domains. */
export async function cloneDomain(
  ctx: CloneContext,
  source: string,
  body: unknown,
): Promise<DomainInfo[]> {
  const request: CloneRequest = parseRequest(schema.CloneRequest, body);
  const fields = request as Record<string, unknown>;
  const base = request.name;
  if (typeof base !== "string" || !isObjectName(base)) {
    throw new ApiError(
      "invalid",
      `name: ${JSON.stringify(base)} is not a valid name; use ${OBJECT_NAME_RULE}`,
    );
  }
  const count = request.count;
  const start = booleanField(fields, "start");
  const names = count === undefined
    ? [base]
    : Array.from({ length: count }, (_, index) => `${base}-${index + 1}`);
  for (const name of names) {
    if (!isObjectName(name)) {
      throw new ApiError("invalid", `name: '${name}' would be too long; use ${OBJECT_NAME_RULE}`);
    }
    if (ctx.domains.list().some((domain) => domain.name === name)) {
      throw new ApiError("conflict", `A domain named '${name}' exists; choose another name`);
    }
  }
  ctx.domains.get(source);
  const created = new Created(ctx);
  const tempDir = join(ctx.stateDir, "clones", `${base}-${crypto.randomUUID()}`);
  try {
    const from = request.snapshot === undefined
      ? await fromDomain(ctx, source, base, names.length, tempDir, created)
      : await fromSnapshot(
        ctx,
        source,
        checkSnapshotName(request.snapshot, "snapshot"),
        base,
        names.length,
        created,
      );
    const definitions: DomainDefinition[] = [];
    for (const name of names) {
      definitions.push(await cloneDefinition(ctx, from, base, name, names.length, created));
      created.domains.push(name);
    }
    return await inParallel(
      definitions,
      CLONE_STARTS_AT_ONCE,
      (definition) =>
        from.stateFile === undefined
          ? ctx.domains.define(definition, { start })
          : defineAndRestore(ctx.domains, definition, true, {
            stateFile: from.stateFile,
            paused: !start,
            // Other disk files and another identity than the saved machine's, on purpose.
            force: true,
          }),
    );
  } catch (error) {
    await created.undo();
    throw error;
  } finally {
    // Every clone's VMM has mapped the memory file by now: its names can go.
    await Deno.remove(tempDir, { recursive: true }).catch(() => {});
  }
}

/** The source domain as it is now: a running one is saved and resumed around the copy. */
async function fromDomain(
  ctx: CloneContext,
  source: string,
  base: string,
  count: number,
  tempDir: string,
  created: Created,
): Promise<CloneSource> {
  return await ctx.domains.locked(source, async (entry) => {
    const definition = entry.run?.record.definition ?? entry.definition;
    const disks = snapshotDisks(definition, "clone");
    const copyDisks = async () => {
      for (const disk of disks) {
        const target = baseVolume(base, disk, count);
        await ctx.pools.volumeAction(disk.pool, disk.volume, "clone", { target, mode: "full" });
        created.volumes.push({ pool: disk.pool, volume: target });
      }
    };
    if (entry.state === "shutoff") {
      await copyDisks();
      return { definition, disks };
    }
    if (entry.state !== "running" && entry.state !== "paused") {
      throw new ApiError(
        "conflict",
        `Domain '${source}' is ${entry.state}; clone it when it is running, paused or shut off`,
      );
    }
    await Deno.mkdir(tempDir, { recursive: true, mode: 0o700 });
    const stateFile = join(tempDir, "state");
    const { restartError } = await withVmmStopped(ctx.domains, entry, stateFile, copyDisks);
    // The copies are whole and the clones could be made, but a source that did not come
    // back is the first thing to hear about: stop here (the copies are removed again).
    if (restartError !== undefined) throw restartError;
    return { definition, disks, stateFile };
  });
}

/** A snapshot of the source: its disk images imported once, its memory file shared. */
async function fromSnapshot(
  ctx: CloneContext,
  source: string,
  snapshot: string,
  base: string,
  count: number,
  created: Created,
): Promise<CloneSource> {
  const meta = await snapshotOf(ctx, ctx.domains.get(source), snapshot);
  for (const disk of meta.disks) {
    // Dir and shared pools keep an external snapshot's image at this documented place
    // (storage/pool/snapshots.ts); btrfs keeps a subvolume the pool API does not expose.
    const image = join(ctx.pools.info(disk.pool).path, ".snapshots", disk.volume, snapshot);
    if (!(await Deno.stat(image).then((info) => info.isFile, () => false))) {
      throw new ApiError(
        "conflict",
        `clone --snapshot needs the image of disk ${disk.id}'s snapshot at ${image}, which ` +
          `pool '${disk.pool}' does not keep (only dir and shared pools do); clone the ` +
          `domain as it is instead, after 'denovisor snapshot revert ${source} ${snapshot}'`,
      );
    }
    const target = baseVolume(base, disk, count);
    await ctx.pools.createVolume(disk.pool, { name: target, format: "qcow2", import: image });
    created.volumes.push({ pool: disk.pool, volume: target });
  }
  return {
    definition: meta.definition,
    disks: meta.disks,
    stateFile: meta.memory ? ctx.store.stateFile(source, snapshot) : undefined,
  };
}

/** The copy of `disk` the clones share (or the only clone's own volume). */
function baseVolume(base: string, disk: SnapshotDisk, count: number): string {
  return checkedVolumeName(count === 1 ? `${base}-${disk.id}` : `${base}-base-${disk.id}`);
}

/** Clone `name`'s definition, with its linked clones made when there are several. */
async function cloneDefinition(
  ctx: CloneContext,
  from: CloneSource,
  base: string,
  name: string,
  count: number,
  created: Created,
): Promise<DomainDefinition> {
  const { uuid: _uuid, nics, disks, ...rest } = from.definition;
  const newDisks = [];
  for (const [index, disk] of (disks ?? []).entries()) {
    const captured = from.disks.find((d) => d.id === diskName(index));
    if (disk.readOnly || captured === undefined) {
      newDisks.push(disk); // Read-only: shared as it is.
      continue;
    }
    const shared = baseVolume(base, captured, count);
    let volume = shared;
    if (count > 1) {
      volume = checkedVolumeName(`${name}-${captured.id}`);
      await ctx.pools.createVolume(captured.pool, { name: volume, backingVolume: shared });
      created.volumes.push({ pool: captured.pool, volume });
    }
    // The format is probed again: a full copy keeps the source's, a linked clone is qcow2.
    const { path: _path, format: _format, ...kept } = disk;
    newDisks.push({ ...kept, pool: captured.pool, volume });
  }
  return {
    ...rest,
    name,
    disks: newDisks,
    // New MACs come from the new uuid; a named tap belongs to the source, so clones get their own.
    nics: (nics ?? []).map(({ mac: _mac, tap: _tap, ...nic }) => nic),
    autostart: false,
  };
}

function checkedVolumeName(name: string): string {
  if (!isVolumeName(name)) {
    throw new ApiError(
      "invalid",
      `name: the clone's volume name '${name}' would be too long (64 at most); choose a shorter name`,
    );
  }
  return name;
}

/** What a clone request made so far, removed again when it fails. */
class Created {
  readonly domains: string[] = [];
  readonly volumes: { pool: string; volume: string }[] = [];
  readonly #ctx: CloneContext;

  constructor(ctx: CloneContext) {
    this.#ctx = ctx;
  }

  async undo(): Promise<void> {
    for (const name of this.domains.reverse()) {
      await this.#ctx.domains.locked(name, async (entry) => {
        if (entry.state !== "shutoff") await this.#ctx.domains.lifecycle.destroy(entry);
      }).catch(() => {});
      await this.#ctx.domains.undefine(name).catch(() => {});
    }
    // Newest first: the linked clones before the base they stand on.
    for (const { pool, volume } of this.volumes.reverse()) {
      await this.#ctx.pools.deleteVolume(pool, volume).catch(() => {});
    }
  }
}
