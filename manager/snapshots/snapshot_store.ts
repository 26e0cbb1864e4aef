/**
 * Domain snapshots on disk, in the daemon's state directory:
 *
 * ```
 * <stateDir>/snapshots/<domain>/current             name of the snapshot the domain is at
 * <stateDir>/snapshots/<domain>/<name>/snapshot.json SnapshotMeta, written last, atomically
 * <stateDir>/snapshots/<domain>/<name>/state         the VMM's state file (memory snapshots)
 * <stateDir>/snapshots/<domain>/<name>/state.mem     guest RAM (sparse), mapped on revert
 * ```
 *
 * A snapshot exists once its `snapshot.json` does: the metadata is written after every
 * other file of the snapshot, by rename, so a create that fails or a daemon killed midway
 * leaves a folder without metadata, which listings skip and the next create of that name
 * clears. Names follow the volume-name rule because every disk's pool snapshot is named
 * after them.
 *
 * @module
 */

import { join } from "node:path";
import type { DomainDefinition, SnapshotInfo } from "../api_types.ts";
import { removeFileDurably, syncDirectory, writeFileAtomic } from "../store/atomic_file.ts";
import { isVolumeName } from "../../common/validators.ts";
import { ApiError } from "../../common/http/mod.ts";

/** The longest snapshot name (each disk's pool snapshot carries the same name). */
const MAX_SNAPSHOT_NAME = 64;

/** What `snapshot.json` holds: the API's SnapshotInfo plus what revert needs. */
export interface SnapshotMeta extends SnapshotInfo {
  /** The domain's definition when the snapshot was taken (shown, and for clones). */
  definition: DomainDefinition;
}

/** The snapshots of every domain under one state directory. */
export class SnapshotStore {
  readonly root: string;

  constructor(stateDir: string) {
    this.root = join(stateDir, "snapshots");
  }

  /** The folder of `domain`'s snapshot `name` (names checked). */
  dir(domain: string, name: string): string {
    return join(this.root, domain, checkSnapshotName(name));
  }

  /** The state file of a snapshot (its memory file is `state.mem` beside it). */
  stateFile(domain: string, name: string): string {
    return join(this.dir(domain, name), "state");
  }

  /** Every complete snapshot of `domain`, oldest first. */
  async list(domain: string): Promise<SnapshotMeta[]> {
    const found: SnapshotMeta[] = [];
    try {
      for await (const entry of Deno.readDir(join(this.root, domain))) {
        if (!entry.isDirectory || !isVolumeName(entry.name)) continue;
        const meta = await this.#read(domain, entry.name);
        if (meta !== undefined) found.push(meta);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return found.sort((a, b) =>
      a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name)
    );
  }

  /** One snapshot, or a 404 that lists the domain's snapshots. */
  async get(domain: string, name: string): Promise<SnapshotMeta> {
    checkSnapshotName(name);
    const meta = await this.#read(domain, name);
    if (meta === undefined) {
      const names = (await this.list(domain)).map((s) => s.name);
      throw new ApiError(
        "not_found",
        `Domain '${domain}' has no snapshot '${name}' (snapshots: ${
          names.join(", ") || "none"
        }); ` +
          `'denovisor snapshot list ${domain}' shows them`,
      );
    }
    return meta;
  }

  /**
   * Makes the (empty) folder of a new snapshot: 409 if a complete snapshot of that name
   * exists; the leftovers of a create that did not finish are removed first.
   */
  async reserve(domain: string, name: string): Promise<string> {
    const dir = this.dir(domain, name);
    if (await this.#read(domain, name) !== undefined) {
      throw new ApiError(
        "conflict",
        `Domain '${domain}' already has a snapshot '${name}'; choose another name or delete ` +
          `that one ('denovisor snapshot delete ${domain} ${name}')`,
      );
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(join(this.root, domain), { recursive: true, mode: 0o700 });
    await Deno.mkdir(dir, { mode: 0o700 });
    return dir;
  }

  /**
   * Writes the metadata: from now on the snapshot exists. A new snapshot becomes the
   * domain's current one (`current`, default true).
   */
  async commit(meta: SnapshotMeta, current = true): Promise<void> {
    const dir = this.dir(meta.domain, meta.name);
    await writeFileAtomic(join(dir, "snapshot.json"), JSON.stringify(meta, null, 2) + "\n");
    if (current) await this.setCurrent(meta.domain, meta.name);
  }

  /**
   * Removes a snapshot: the metadata first (so a removal cut short leaves no snapshot
   * that looks complete), then its files.
   */
  async remove(domain: string, name: string): Promise<void> {
    const dir = this.dir(domain, name);
    const wasCurrent = await this.current(domain) === name;
    await removeFileDurably(join(dir, "snapshot.json"));
    await Deno.remove(dir, { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    if (wasCurrent) await removeFileDurably(join(this.root, domain, "current"));
    await this.#dropEmptyDomainDir(domain);
  }

  /** The snapshot the domain was last taken at or reverted to (the next one's parent). */
  async current(domain: string): Promise<string | undefined> {
    try {
      const name = (await Deno.readTextFile(join(this.root, domain, "current"))).trim();
      return isVolumeName(name) && await this.#read(domain, name) !== undefined ? name : undefined;
    } catch {
      return undefined;
    }
  }

  /** Records the snapshot the domain is now at. */
  async setCurrent(domain: string, name: string): Promise<void> {
    await writeFileAtomic(join(this.root, domain, "current"), name + "\n");
  }

  async #read(domain: string, name: string): Promise<SnapshotMeta | undefined> {
    let text: string;
    try {
      text = await Deno.readTextFile(join(this.root, domain, name, "snapshot.json"));
    } catch {
      return undefined;
    }
    const meta = JSON.parse(text) as SnapshotMeta;
    if (meta?.name !== name || meta?.domain !== domain || !Array.isArray(meta?.disks)) {
      throw new ApiError(
        "internal",
        `${join(this.root, domain, name, "snapshot.json")} is damaged (its name, domain or ` +
          `disks do not match); remove that snapshot's folder by hand`,
      );
    }
    return meta;
  }

  async #dropEmptyDomainDir(domain: string): Promise<void> {
    const dir = join(this.root, domain);
    try {
      for await (const _ of Deno.readDir(dir)) return;
      await Deno.remove(dir);
      await syncDirectory(this.root);
    } catch {
      // Gone already, or not empty after all: nothing to tidy.
    }
  }
}

/** A snapshot name as the API accepts it (400 otherwise). */
export function checkSnapshotName(name: unknown, field = "name"): string {
  if (typeof name !== "string" || !isVolumeName(name) || name.length > MAX_SNAPSHOT_NAME) {
    throw new ApiError(
      "invalid",
      `${field}: ${JSON.stringify(name)} is not a valid snapshot name; use 1-64 letters, ` +
        `digits, '.', '_', '+' or '-', starting with a letter or digit`,
    );
  }
  return name;
}
