/**
 * Save and restore (xl save / xl restore) and the one primitive snapshots and clones are
 * built on: a running domain's VMM can let go of its disks only by ending, so the daemon
 * saves the domain (paused), stops its VMM, changes the disks through the pools, and
 * starts a new VMM from the saved state (the memory file mapped copy-on-write). The
 * guest sees a pause.
 *
 * The VMM's side (vmm/control_api.ts, vmm/snapshot/): `POST /vm/save { stateFile,
 * memoryFile, resume }` writes the memory file, then the state file atomically; a
 * `restore` member in the VMM config makes a new VMM restore instead of boot.
 *
 * @module
 */

import { dirname, isAbsolute, join } from "node:path";
import type { DomainInfo, RestoreRequest, SaveRequest, SaveResult } from "../api_types.ts";
import { ApiError, parseRequest } from "../../common/http/mod.ts";
import * as schema from "../api_schema.ts";
import { diskName } from "../../vmm/device_names.ts";
import { readStateFile } from "../../vmm/snapshot/state_file.ts";
import { validateDefinition } from "../domain/definition.ts";
import {
  describeDisks,
  diskChanges,
  readSavedDomain,
  savedDomainPath,
  writeSavedDomain,
} from "../snapshots/saved_domain.ts";
import type { DomainEntry } from "./domain_entry.ts";
import type { DomainManager } from "./domains.ts";
import type { VmmRun } from "./vmm_run.ts";
import { withSaveStaging } from "../sandbox/save_staging.ts";
import type { VmmRestoreConfig, VmmSaveResult } from "../../vmm/vmm_config.ts";

/** What the VMM config's `restore` member holds: restore this state instead of booting. */
export type VmmRestore = VmmRestoreConfig;

/** A save writes all of guest RAM: give it minutes, not the 5 s of a control call. */
export const SAVE_TIMEOUT_MS = 30 * 60_000;

/**
 * Asks the VMM of `run` to write its state; stays paused unless `resume`. A jailed VMM
 * writes into its run directory (the only place it can) and the daemon moves the files
 * (../sandbox/save_staging.ts).
 */
export async function vmmSave(
  run: VmmRun,
  stateFile: string,
  resume: boolean,
): Promise<VmmSaveResult> {
  return await withSaveStaging(run.runDir, stateFile, (target) =>
    run.control.call<VmmSaveResult>(
      "POST",
      "/vm/save",
      { stateFile: target, memoryFile: `${target}.mem`, resume },
      SAVE_TIMEOUT_MS,
    ));
}

/** The writable disks of a running VMM, by id, from its config (what it has open). */
export function runDisks(run: VmmRun): { id: string; path: string }[] {
  try {
    const config = JSON.parse(Deno.readTextFileSync(join(run.runDir, "config.json")));
    return (config.disks ?? [])
      .map((disk: { id?: string; path: string; readOnly?: boolean }, index: number) => ({
        id: disk.id ?? diskName(index),
        path: String(disk.path),
        readOnly: disk.readOnly === true,
      }))
      .filter((disk: { readOnly: boolean }) => !disk.readOnly)
      .map(({ id, path }: { id: string; path: string }) => ({ id, path }));
  } catch {
    return [];
  }
}

/**
 * Saves the running domain of `entry` to `stateFile` (paused), stops its VMM, runs
 * `change` (the disks are free), then starts a VMM from the state again, paused if it
 * was. The caller holds the domain's mutex. `change` failing still brings the domain
 * back (and its error is thrown). When `change` succeeded but the domain does not come
 * back, `restartError` says why: the change is done and the caller records it first.
 */
export async function withVmmStopped<T>(
  domains: DomainManager,
  entry: DomainEntry,
  stateFile: string,
  change: (saved: VmmSaveResult) => Promise<T>,
): Promise<{ result: T; saved: VmmSaveResult; restartError?: ApiError }> {
  const run = needRunning(entry, "take its disks away from");
  if (!entry.persistent) {
    // Its VMM's end would end the domain itself (a transient domain lives in its VMM).
    throw new ApiError(
      "conflict",
      `Domain '${entry.definition.name}' is transient (made by create); define it first`,
    );
  }
  const wasPaused = entry.state === "paused";
  // The machine in the state is the one that runs, not an edit pending for the next start.
  const running = run.record.definition;
  const restart = async () => {
    const pending = entry.definition;
    entry.definition = running;
    try {
      await domains.lifecycle.start(entry, { stateFile, paused: wasPaused, force: true });
    } finally {
      entry.definition = pending;
    }
  };
  const saved = await vmmSave(run, stateFile, false).catch(async (error) => {
    if (!wasPaused) await run.control.call("POST", "/vm/resume", {}).catch(() => {});
    throw error;
  });
  await domains.lifecycle.destroy(entry);
  let result: T;
  try {
    result = await change(saved);
  } catch (error) {
    await restart()
      .catch((startError) => {
        throw new ApiError(
          "internal",
          `${(error as Error).message}; and domain '${entry.definition.name}' could not be ` +
            `resumed from ${stateFile}: ${(startError as Error).message}`,
        );
      });
    throw error;
  }
  try {
    await restart();
  } catch (error) {
    const restartError = new ApiError(
      "internal",
      `domain '${entry.definition.name}' could not be resumed from ${stateFile} and is shut ` +
        `off: ${(error as Error).message}`,
    );
    return { result, saved, restartError };
  }
  return { result, saved };
}

/** The VMM of a running or paused domain, or a 409 that says what state it is in. */
export function needRunning(entry: DomainEntry, verb: string): VmmRun {
  const name = entry.definition.name;
  if (entry.run === undefined || (entry.state !== "running" && entry.state !== "paused")) {
    throw new ApiError(
      "conflict",
      `Domain '${name}' is ${entry.state}; only a running or paused domain has state to ` +
        `${verb}`,
    );
  }
  return entry.run;
}

/** A boolean field (absent: false). */
export function booleanField(body: Record<string, unknown>, key: string): boolean {
  const value = body[key];
  if (value === undefined) return false;
  if (typeof value !== "boolean") {
    throw new ApiError("invalid", `${key}: expected true or false, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** An absolute file path field whose directory exists. */
async function fileField(body: Record<string, unknown>): Promise<string> {
  const file = body.file;
  if (typeof file !== "string" || !isAbsolute(file) || file.endsWith("/")) {
    throw new ApiError(
      "invalid",
      `file: expected the absolute path of a state file, got ${JSON.stringify(file)}`,
    );
  }
  const dir = await Deno.stat(dirname(file)).catch(() => undefined);
  if (!dir?.isDirectory) {
    throw new ApiError("invalid", `file: the directory ${dirname(file)} does not exist`);
  }
  return file;
}

/** POST /v1/domains/{name}/save. */
export async function saveDomain(
  domains: DomainManager,
  name: string,
  body: unknown,
): Promise<SaveResult> {
  const request: SaveRequest = parseRequest(schema.SaveRequest, body);
  const file = await fileField(request as Record<string, unknown>);
  const keep = booleanField(request as Record<string, unknown>, "keep");
  return await domains.locked(name, async (entry) => {
    const run = needRunning(entry, "save");
    for (const path of [file, `${file}.mem`, savedDomainPath(file)]) {
      if (await Deno.lstat(path).then(() => true, () => false)) {
        throw new ApiError(
          "conflict",
          `${path} exists; remove it or save to another file (a save never overwrites)`,
        );
      }
    }
    const wasPaused = entry.state === "paused";
    // The disks as the VMM has them open, taken before the save: they cannot change while
    // the domain is paused, and after a destroying save nothing writes them.
    const disks = describeDisks(runDisks(run));
    const resume = async () => {
      if (!wasPaused) await run.control.call("POST", "/vm/resume", {}).catch(() => {});
    };
    const saved = await vmmSave(run, file, keep && !wasPaused).catch(async (error) => {
      await resume();
      throw error;
    });
    let definitionFile: string;
    try {
      const written = await readStateFile(file);
      written.close();
      definitionFile = await writeSavedDomain(file, {
        savedAt: new Date().toISOString(),
        stateCreatedAt: written.document.createdAt,
        persistent: entry.persistent,
        definition: run.record.definition,
        disks,
      });
    } catch (error) {
      // Without its definition the state is no use: remove it, leave the domain as it was.
      await Deno.remove(file).catch(() => {});
      await Deno.remove(saved.memoryFile ?? `${file}.mem`).catch(() => {});
      if (!keep) await resume();
      throw error;
    }
    if (!keep) await domains.lifecycle.destroy(entry);
    return {
      domain: name,
      stateFile: saved.stateFile ?? file,
      memoryFile: saved.memoryFile ?? `${file}.mem`,
      definitionFile,
      stateBytes: saved.stateBytes,
      memoryDataBytes: saved.memoryDataBytes,
      pausedMs: saved.pausedMs,
      kept: keep,
    };
  });
}

/** POST /v1/restore. */
export async function restoreDomain(domains: DomainManager, body: unknown): Promise<DomainInfo> {
  const request: RestoreRequest = parseRequest(schema.RestoreRequest, body);
  const fields = request as Record<string, unknown>;
  const file = await fileField(fields);
  const paused = booleanField(fields, "paused");
  const force = booleanField(fields, "force");
  if (request.name !== undefined && typeof request.name !== "string") {
    throw new ApiError(
      "invalid",
      `name: expected a domain name, got ${JSON.stringify(request.name)}`,
    );
  }
  // The reader checks everything (header, checksum, every section's frame) before a VMM
  // exists: a bad file is a 400 that names the part, not a VMM dying at start-up.
  const state = await readStateFile(file);
  state.close();
  const memory = state.document.memory;
  if (memory.storage === "file") {
    const memoryFile = join(dirname(file), memory.file!);
    const info = await Deno.stat(memoryFile).catch(() => undefined);
    if (!info?.isFile) {
      throw new ApiError("invalid", `The memory file ${memoryFile} of ${file} is missing`);
    }
  }
  const saved = await readSavedDomain(file);
  if (saved.stateCreatedAt !== state.document.createdAt) {
    throw new ApiError(
      "invalid",
      `${savedDomainPath(file)} belongs to a state taken at ${saved.stateCreatedAt}, but ` +
        `${file} was taken at ${state.document.createdAt}; keep each state file with the ` +
        `definition file its save wrote`,
    );
  }
  const changes = diskChanges(saved.disks);
  if (changes.length > 0 && !force) {
    throw new ApiError(
      "conflict",
      `The disks changed since the save: ${changes.join("; ")}; restore with --force to ` +
        `run the saved guest on them anyway (its view of the disks may be wrong)`,
    );
  }
  const restore: VmmRestore = { stateFile: file, paused, force: force || undefined };
  if (request.name !== undefined) {
    const { uuid: _uuid, nics, ...rest } = saved.definition;
    const definition = validateDefinition({
      ...rest,
      name: request.name,
      nics: (nics ?? []).map(({ mac: _mac, ...nic }) => nic),
      autostart: false,
    });
    // A new identity: the VMM takes name, uuid and MACs from the config, not the state.
    return await defineAndRestore(domains, definition, saved.persistent, {
      ...restore,
      force: true,
    });
  }
  const existing = (() => {
    try {
      return domains.get(saved.definition.name);
    } catch {
      return undefined;
    }
  })();
  if (existing === undefined) {
    return await defineAndRestore(domains, saved.definition, saved.persistent, restore);
  }
  return await domains.locked(saved.definition.name, async (entry) => {
    if (entry.definition.uuid !== saved.definition.uuid) {
      throw new ApiError(
        "conflict",
        `Another domain named '${entry.definition.name}' exists (uuid ${entry.definition.uuid}); ` +
          `restore under a new name with --name`,
      );
    }
    if (entry.state !== "shutoff") {
      throw new ApiError(
        "conflict",
        `Domain '${entry.definition.name}' is ${entry.state}; destroy it before restoring it`,
      );
    }
    await domains.lifecycle.start(entry, restore);
    return domains.info(entry.definition.name);
  });
}

/**
 * Defines `definition` and starts it from `restore`; when the start fails, the definition
 * is removed again, so a failed restore leaves nothing behind.
 */
export async function defineAndRestore(
  domains: DomainManager,
  definition: unknown,
  persistent: boolean,
  restore: VmmRestore,
): Promise<DomainInfo> {
  const name = (definition as { name: string }).name;
  let defined = false;
  try {
    if (persistent) {
      await domains.define(definition);
      defined = true;
      return await domains.locked(name, async (entry) => {
        await domains.lifecycle.start(entry, restore);
        return domains.info(name);
      });
    }
    return await domains.define(definition, { start: true, transient: true, restore });
  } catch (error) {
    if (defined) await domains.undefine(name).catch(() => {});
    throw error;
  }
}
