/**
 * The persistent half of the daemon's state: one JSON file per defined domain,
 * `<stateDir>/domains/<name>.json`, each written atomically, and the per-domain log
 * files under `<stateDir>/logs/`. The store keeps no cache; the daemon's domain table
 * is the live copy.
 *
 * @module
 */

import { join } from "node:path";
import type { DomainDefinition } from "../api_types.ts";
import { removeFileDurably, writeFileAtomic } from "./atomic_file.ts";
import { isObjectName, OBJECT_NAME_RULE } from "../../common/validators.ts";

/** Names that are safe as file names; the definition validator enforces the same rule. */

/** A definition file that could not be read back, with the reason. */
export interface UnreadableDefinition {
  file: string;
  reason: string;
}

/** Domain definitions on disk. */
export class DomainStore {
  readonly stateDir: string;
  readonly domainsDir: string;
  readonly logsDir: string;

  constructor(stateDir: string) {
    this.stateDir = stateDir;
    this.domainsDir = join(stateDir, "domains");
    this.logsDir = join(stateDir, "logs");
  }

  /** Creates the state directory tree (0700: definitions name host paths). */
  async init(): Promise<void> {
    for (const dir of [this.stateDir, this.domainsDir, this.logsDir]) {
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    }
    await Deno.chmod(this.stateDir, 0o700);
  }

  /** Every stored definition, by file; files that do not parse are returned apart. */
  async load(): Promise<{ definitions: DomainDefinition[]; unreadable: UnreadableDefinition[] }> {
    const definitions: DomainDefinition[] = [];
    const unreadable: UnreadableDefinition[] = [];
    const names: string[] = [];
    for await (const entry of Deno.readDir(this.domainsDir)) {
      if (entry.isFile && entry.name.endsWith(".json") && !entry.name.startsWith(".")) {
        names.push(entry.name);
      }
    }
    for (const file of names.sort()) {
      const path = join(this.domainsDir, file);
      try {
        const definition = JSON.parse(await Deno.readTextFile(path)) as DomainDefinition;
        if (definition?.name !== file.slice(0, -".json".length)) {
          throw new Error(`its name is not '${file.slice(0, -5)}'`);
        }
        definitions.push(definition);
      } catch (error) {
        unreadable.push({
          file: path,
          reason: error instanceof Error ? error.message : `${error}`,
        });
      }
    }
    return { definitions, unreadable };
  }

  /** Writes (or replaces) the definition of `definition.name`. */
  async save(definition: DomainDefinition): Promise<void> {
    await writeFileAtomic(this.#file(definition.name), JSON.stringify(definition, null, 2) + "\n");
  }

  /** Deletes the definition of `name`; nothing happens if there is none. */
  async remove(name: string): Promise<void> {
    await removeFileDurably(this.#file(name));
  }

  /** The log file of `name` (console output and the VMM's log lines). */
  logFile(name: string): string {
    checkName(name);
    return join(this.logsDir, `${name}.log`);
  }

  #file(name: string): string {
    checkName(name);
    return join(this.domainsDir, `${name}.json`);
  }
}

/** Refuses names that would escape the state directory; the validator says it better first. */
function checkName(name: string): void {
  if (!isObjectName(name)) {
    throw new Error(`Domain name '${name}' is not allowed: use ${OBJECT_NAME_RULE}`);
  }
}
