/**
 * The pool manager: pool definitions (persisted atomically in
 * `<stateDir>/pools/<name>.json`), their lifecycle (define, build, start, stop, refresh,
 * undefine, delete, autostart) and the volume operations of each active pool. One
 * operation at a time per volume: a second one meanwhile is refused as a conflict.
 *
 * @module
 */

import { checkPoolRequest, VolumeActionRequest as VolumeActionSchema } from "./pool_schema.ts";
import { join, resolve } from "node:path";
import type {
  PoolDefinition,
  PoolInfo,
  VolumeActionRequest,
  VolumeInfo,
  VolumeProgress,
} from "./pool_types.ts";
import { backendFor, checkDefinition } from "./pool_definition.ts";
import { PoolError } from "./pool_error.ts";
import { VolumeBusy } from "./volume_busy.ts";
import { readJsonFile, removeDurably, writeJsonAtomic } from "./state_file.ts";
import {
  checkName,
  describeVolume,
  type ProgressOptions,
  refuseChange,
  refuseInUse,
  type VolumeContext,
  type VolumeUser,
} from "./volume_context.ts";
import { VolumeMetaStore } from "./volume_meta.ts";
import { recoverIntents } from "./journal.ts";
import { removeTemporaries } from "./temporaries.ts";
import {
  cloneVolume,
  convertVolume,
  createVolume,
  deleteVolume,
  resizeVolume,
  wipeVolume,
} from "./volume_ops.ts";
import { exportVolume } from "./volume_copy.ts";
import {
  commitVolume,
  deleteSnapshot,
  refuseDroppingNewer,
  rollbackVolume,
  snapshotVolume,
} from "./snapshots.ts";

/** Options of `new PoolManager`. */
export interface PoolManagerOptions {
  stateDir: string;
  /** Names the domain using the image at a path (the daemon knows); default: none. */
  volumeUser?: VolumeUser;
  /**
   * Directories beyond each pool's own where backing files of imported images may live;
   * default none (storage/image_probe.ts BackingPolicy).
   */
  allowedBackingDirectories?: readonly string[];
}

/** The volume actions of POST /v1/pools/{pool}/volumes/{vol}/{action}. */
export const VOLUME_ACTIONS = [
  "wipe",
  "resize",
  "clone",
  "snapshot",
  "rollback",
  "commit",
  "delete-snapshot",
  "convert",
  "export",
] as const;
export type VolumeAction = typeof VOLUME_ACTIONS[number];

/** What is stored per pool: the definition and whether it is started. */
interface PoolRecord extends PoolDefinition {
  active: boolean;
}

/** Storage pools and their volumes. */
export class PoolManager {
  readonly stateDir: string;
  readonly #dir: string;
  readonly #volumeUser: VolumeUser;
  readonly #busy = new VolumeBusy();
  readonly #allowedBacking: readonly string[];

  constructor(options: PoolManagerOptions) {
    this.stateDir = options.stateDir;
    this.#dir = join(options.stateDir, "pools");
    this.#volumeUser = options.volumeUser ?? (() => undefined);
    this.#allowedBacking = options.allowedBackingDirectories ?? [];
    Deno.mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
  }

  #recordPath(name: string): string {
    return join(this.#dir, `${name}.json`);
  }

  #record(name: string): PoolRecord {
    checkName(name, "pool");
    const record = readJsonFile<PoolRecord>(this.#recordPath(name));
    if (!record) {
      throw new PoolError("not_found", `No pool '${name}'; 'denovisor pool list' shows them`);
    }
    return record;
  }

  #save(record: PoolRecord): void {
    writeJsonAtomic(this.#recordPath(record.name), record);
  }

  #names(): string[] {
    return [...Deno.readDirSync(this.#dir)]
      .filter((e) => e.isFile && e.name.endsWith(".json") && !e.name.startsWith("."))
      .map((e) => e.name.slice(0, -5))
      .sort();
  }

  /** Every pool, by name. */
  list(): PoolInfo[] {
    return this.#names().map((name) => this.info(name));
  }

  /** One pool's definition, state and, when active, capacity and volume count. */
  info(name: string): PoolInfo {
    const record = this.#record(name);
    const { active, ...definition } = record;
    const info: PoolInfo = {
      ...definition,
      autostart: definition.autostart ?? false,
      state: active ? "active" : "inactive",
      volumes: 0,
    };
    if (active) {
      try {
        const backend = backendFor(record);
        const capacity = backend.capacity();
        info.capacityBytes = capacity.capacity;
        info.allocationBytes = capacity.allocation;
        info.availableBytes = capacity.available;
        info.volumes = backend.listVolumes().length;
        const skipped = backend.skippedEntries?.() ?? [];
        if (skipped.length > 0) info.skipped = skipped;
      } catch {
        // The storage vanished under an active pool: report what is known; refresh says why.
      }
    }
    if (backendFor(record).shared) info.shared = true;
    return info;
  }

  /** Validates and stores a new pool definition (inactive). */
  define(body: unknown): PoolInfo {
    const definition = checkDefinition(body);
    if (readJsonFile(this.#recordPath(definition.name))) {
      throw new PoolError("conflict", `Pool '${definition.name}' is already defined`);
    }
    for (const other of this.#names()) {
      const record = this.#record(other);
      if (resolve(record.path) === resolve(definition.path)) {
        throw new PoolError("conflict", `Pool '${other}' already uses ${definition.path}`);
      }
    }
    this.#save({ ...definition, active: false });
    return this.info(definition.name);
  }

  /** Makes the pool's storage (directory, GPT label). A block device is only relabelled with `overwrite`. */
  build(name: string, options: { overwrite?: boolean } = {}): PoolInfo {
    const record = this.#record(name);
    if (record.active && record.type === "block") {
      throw new PoolError(
        "conflict",
        `Pool '${name}' is active; stop it before relabelling its disk`,
      );
    }
    backendFor(record).build(options);
    return this.info(name);
  }

  /**
   * Checks the storage and makes the pool active. Operations a crash interrupted are
   * completed or undone first (journal.ts) and their temporary files removed.
   */
  start(name: string): PoolInfo {
    const record = this.#record(name);
    backendFor(record).start();
    if (!record.active) {
      this.#recover(record);
      this.#save({ ...record, active: true });
    }
    return this.info(name);
  }

  /** Lines saying what the last starts recovered (for the daemon's log). */
  readonly recovered: string[] = [];

  /** Never throws: what cannot be recovered now is reported and tried at the next start. */
  #recover(record: PoolRecord): void {
    const pool = `pool '${record.name}'`;
    try {
      const lines = recoverIntents(new VolumeMetaStore(this.#metaDir(record.name)));
      this.recovered.push(...lines.map((line) => `${pool}: ${line}`));
      if (!backendFor(record).fileBased) return;
      for (const file of removeTemporaries(record.path)) {
        this.recovered.push(`${pool}: removed ${file}, left by an interrupted operation`);
      }
    } catch (error) {
      this.recovered.push(`${pool}: recovery failed: ${(error as Error).message}`);
    }
  }

  /** Makes the pool inactive; refused while a domain uses one of its volumes. */
  stop(name: string): PoolInfo {
    const record = this.#record(name);
    if (record.active) {
      const ctx = this.#context(record);
      for (const volume of ctx.backend.listVolumes()) refuseInUse(ctx, volume);
      this.#save({ ...record, active: false });
    }
    return this.info(name);
  }

  /** Re-reads the storage: checks it is still there and forgets volumes removed behind our back. */
  refresh(name: string): PoolInfo {
    const record = this.#requireActive(name);
    const backend = backendFor(record);
    backend.start();
    const present = new Set(backend.listVolumes());
    const meta = new VolumeMetaStore(this.#metaDir(name));
    try {
      for (const entry of Deno.readDirSync(meta.dir)) {
        const volume = entry.name.replace(/\.json$/, "");
        if (entry.name.endsWith(".json") && !present.has(volume)) meta.remove(volume);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return this.info(name);
  }

  /** Sets whether the daemon starts the pool when it starts. */
  setAutostart(name: string, enabled: boolean): PoolInfo {
    if (typeof enabled !== "boolean") throw new PoolError("invalid", "enabled: give true or false");
    this.#save({ ...this.#record(name), autostart: enabled });
    return this.info(name);
  }

  /**
   * Starts every autostart pool and re-checks the pools recorded as active (after a reboot
   * a mount or a loop device may be gone: such a pool becomes inactive), finishing what
   * a crash interrupted in them. Returns the failures, one message per pool, then what
   * was recovered, one line per operation, for the daemon's log.
   */
  startAutostart(): string[] {
    const failures: string[] = [];
    const before = this.recovered.length;
    for (const name of this.#names()) {
      const record = this.#record(name);
      if (record.active) {
        try {
          backendFor(record).start();
        } catch (error) {
          this.#save({ ...record, active: false });
          failures.push(`pool '${name}' stopped: ${(error as Error).message}`);
          continue;
        }
        this.#recover(record);
        continue;
      }
      if (!record.autostart) continue;
      try {
        this.start(name);
      } catch (error) {
        failures.push(`pool '${name}': ${(error as Error).message}`);
      }
    }
    return [...failures, ...this.recovered.slice(before)];
  }

  /** Removes the pool's storage (its empty directory, or its label); the pool must be inactive. */
  delete(name: string): void {
    const record = this.#record(name);
    if (record.active) throw new PoolError("conflict", `Pool '${name}' is active; stop it first`);
    backendFor(record).destroy();
  }

  /** Forgets the pool (and with `delete`, removes its storage first); it must be inactive. */
  undefine(name: string, options: { delete?: boolean } = {}): void {
    const record = this.#record(name);
    if (record.active) throw new PoolError("conflict", `Pool '${name}' is active; stop it first`);
    if (options.delete) this.delete(name);
    new VolumeMetaStore(this.#metaDir(name)).removeAll();
    removeDurably(this.#recordPath(name));
  }

  #metaDir(name: string): string {
    return join(this.#dir, `${name}.volumes`);
  }

  #requireActive(name: string): PoolRecord {
    const record = this.#record(name);
    if (!record.active) {
      throw new PoolError(
        "conflict",
        `Pool '${name}' is not active; start it with 'denovisor pool start ${name}'`,
      );
    }
    return record;
  }

  #context(record: PoolRecord): VolumeContext {
    return {
      pool: record.name,
      poolPath: record.path,
      backend: backendFor(record),
      meta: new VolumeMetaStore(this.#metaDir(record.name)),
      volumeUser: this.#volumeUser,
      backingPolicy: { allowedDirectories: [record.path, ...this.#allowedBacking] },
    };
  }

  /** Runs `operation` on an active pool, holding volume `volume` busy meanwhile. */
  async #withVolume<T>(
    pool: string,
    volume: string,
    what: string,
    operation: (ctx: VolumeContext, progress: ProgressOptions) => T | Promise<T>,
    caller: ProgressOptions = {},
  ): Promise<T> {
    const ctx = this.#context(this.#requireActive(pool));
    return await this.#busy.run(pool, volume, what, (progress) => operation(ctx, progress), caller);
  }

  /** What runs on a volume now, and how far a copy has come (bytes). */
  volumeProgress(pool: string, volume: string): VolumeProgress {
    return this.#busy.progress(pool, volume);
  }

  /**
   * Snapshots every volume of the pool under one name (btrfs: subvolume snapshots; dir and
   * shared: external snapshots). All volumes are checked first; if one snapshot fails, the
   * ones already taken are deleted again.
   */
  async snapshotPool(pool: string, body: unknown): Promise<PoolInfo> {
    const snapshot = checkName((body as { target?: unknown } | null)?.target, "target");
    const ctx = this.#context(this.#requireActive(pool));
    const volumes = ctx.backend.listVolumes();
    for (const volume of volumes) {
      refuseChange(ctx, volume, "snapshot");
      if (ctx.meta.get(volume).snapshots.some((s) => s.name === snapshot)) {
        throw new PoolError("conflict", `Volume '${volume}' already has a snapshot '${snapshot}'`);
      }
    }
    const taken: string[] = [];
    try {
      for (const volume of volumes) {
        await this.#withVolume(
          pool,
          volume,
          "snapshot",
          (c) => snapshotVolume(c, volume, { target: snapshot }),
        );
        taken.push(volume);
      }
    } catch (error) {
      for (const volume of taken) {
        await deleteSnapshot(ctx, volume, { snapshot }).catch(() => {});
      }
      throw error;
    }
    return this.info(pool);
  }

  /** Rolls every volume that has snapshot `body.snapshot` back to it. */
  async rollbackPool(pool: string, body: unknown): Promise<PoolInfo> {
    const { snapshot, dropNewer } = (body ?? {}) as { snapshot?: unknown; dropNewer?: unknown };
    if (dropNewer !== undefined && typeof dropNewer !== "boolean") {
      throw new PoolError("invalid", `dropNewer: expected true or false, got ${dropNewer}`);
    }
    const ctx = this.#context(this.#requireActive(pool));
    const volumes = ctx.backend.listVolumes()
      .filter((v) => ctx.meta.get(v).snapshots.some((s) => s.name === snapshot));
    if (volumes.length === 0) {
      throw new PoolError(
        "not_found",
        `No volume of pool '${pool}' has a snapshot ${JSON.stringify(snapshot)}`,
      );
    }
    for (const volume of volumes) refuseChange(ctx, volume, "roll back");
    // Every volume is checked before any is rolled back: all or none.
    if (ctx.backend.nativeSnapshots === undefined) {
      for (const volume of volumes) {
        const list = ctx.meta.get(volume).snapshots;
        const index = list.findIndex((s) => s.name === snapshot);
        refuseDroppingNewer(volume, snapshot as string, list.slice(index + 1), dropNewer);
      }
    }
    for (const volume of volumes) {
      await this.#withVolume(
        pool,
        volume,
        "rollback",
        (c) => rollbackVolume(c, volume, { snapshot: snapshot as string, dropNewer: true }),
      );
    }
    return this.info(pool);
  }

  /** The volumes of an active pool. */
  listVolumes(pool: string): VolumeInfo[] {
    const ctx = this.#context(this.#requireActive(pool));
    return ctx.backend.listVolumes().map((name) => describeVolume(ctx, name));
  }

  /** One volume. */
  volumeInfo(pool: string, volume: string): VolumeInfo {
    return describeVolume(this.#context(this.#requireActive(pool)), volume);
  }

  /** Where a domain's disk `{pool, volume}` is, for the daemon: path and format. */
  resolveVolume(pool: string, volume: string): { path: string; format: "raw" | "qcow2" } {
    const info = this.volumeInfo(pool, volume);
    return { path: info.path, format: info.format };
  }

  /** Creates a volume from a VolumeCreateRequest (validated here). */
  createVolume(pool: string, body: unknown, options: ProgressOptions = {}): Promise<VolumeInfo> {
    const name = (body as { name?: unknown } | null)?.name;
    return this.#withVolume(
      pool,
      String(name),
      "create",
      (ctx, progress) => createVolume(ctx, body, progress),
      options,
    );
  }

  /** Deletes a volume and its snapshots. */
  deleteVolume(pool: string, volume: string): Promise<void> {
    return this.#withVolume(pool, volume, "delete", (ctx) => deleteVolume(ctx, volume));
  }

  /** Runs one of VOLUME_ACTIONS on a volume. */
  volumeAction(
    pool: string,
    volume: string,
    action: string,
    body: unknown,
    options: ProgressOptions = {},
  ): Promise<VolumeInfo> {
    if (!(VOLUME_ACTIONS as readonly string[]).includes(action)) {
      throw new PoolError(
        "invalid",
        `Unknown volume action '${action}'; use ${VOLUME_ACTIONS.join(", ")}`,
      );
    }
    const request: VolumeActionRequest = checkPoolRequest(
      VolumeActionSchema,
      body,
      `The body of a volume ${action}`,
    );
    return this.#withVolume(pool, volume, action, (ctx, progress) => {
      switch (action as VolumeAction) {
        case "wipe":
          return wipeVolume(ctx, volume);
        case "resize":
          return resizeVolume(ctx, volume, request);
        case "clone":
          return cloneVolume(ctx, volume, request, progress);
        case "snapshot":
          return snapshotVolume(ctx, volume, request);
        case "rollback":
          return rollbackVolume(ctx, volume, request);
        case "commit":
          return commitVolume(ctx, volume);
        case "delete-snapshot":
          return deleteSnapshot(ctx, volume, request);
        case "convert":
          return convertVolume(ctx, volume, request, progress);
        case "export":
          return exportVolume(ctx, volume, request, progress);
      }
    }, options);
  }
}
