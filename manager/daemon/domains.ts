/**
 * The daemon's domain table: every defined (and every transient, running) domain with
 * its state, and the API operations on it. Operations on one domain are serialized by a
 * per-name mutex; different domains proceed in parallel. Definitions are validated fully
 * (fields, then clashes with the other domains) before anything is written, so a refused
 * request leaves nothing behind. Running a domain (VMMs, ends, actions) is lifecycle.ts.
 *
 * @module
 */

import type { DomainDefinition, DomainInfo, DomainSummary } from "../api_types.ts";
import {
  DefinitionError,
  definitionMemoryBytes,
  validateDefinition,
} from "../domain/definition.ts";
import type { OtherDomain } from "../domain/conflicts.ts";
import { ApiError } from "../../common/http/mod.ts";
import { describe, diskUser, type DomainEntry, summarize } from "./domain_entry.ts";
import { Lifecycle, type LifecycleContext } from "./lifecycle.ts";
import { KeyedMutex } from "./keyed_mutex.ts";
import { autostartAll, reattachAll } from "./takeover.ts";
import { domainNameTooLong } from "../paths.ts";
import { removeLog } from "./console_log.ts";
import { conflicts } from "./start_checks.ts";
import type { VmmRestore } from "./save_restore.ts";

/** The domains of one daemon. */
export class DomainManager {
  readonly #entries = new Map<string, DomainEntry>();
  readonly #mutex = new KeyedMutex();
  #reattached: Promise<void> = Promise.resolve();
  readonly #context: LifecycleContext;
  readonly lifecycle: Lifecycle;

  constructor(context: Omit<LifecycleContext, "entries" | "mutex">) {
    this.#context = { ...context, entries: this.#entries, mutex: this.#mutex };
    this.lifecycle = new Lifecycle(this.#context);
  }

  /** Loads the stored definitions (at daemon start, before anything else). */
  async load(): Promise<void> {
    const { definitions, unreadable } = await this.#context.store.load();
    for (const { file, reason } of unreadable) {
      this.#context.log(`skipping ${file}: ${reason}; fix or remove the file`);
    }
    for (const stored of definitions) {
      try {
        const definition = validateDefinition(stored);
        this.#entries.set(definition.name, this.#newEntry(definition, true));
      } catch (error) {
        this.#context.log(
          `skipping the stored definition of '${stored.name}': ${(error as Error).message}`,
        );
      }
    }
  }

  /**
   * Takes over the VMMs a previous daemon left running. Call it before serving: every
   * domain it concerns is locked on return, so serving may begin while it runs.
   */
  reattach(): Promise<void> {
    this.#reattached = reattachAll(this.#context, this.lifecycle);
    return this.#reattached;
  }

  /** Resolves once the start-up re-attach is over (for listings, which take no lock). */
  settled(): Promise<void> {
    return this.#reattached;
  }

  /** Starts the autostart domains that are not running. */
  autostart(): Promise<void> {
    return autostartAll(this.#context, this.lifecycle);
  }

  /** Every domain, sorted by name. */
  list(): DomainSummary[] {
    return [...this.#entries.values()].map(summarize).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** How many domains there are, and how many have a VMM. */
  counts(): { defined: number; running: number } {
    const all = [...this.#entries.values()];
    return { defined: all.length, running: all.filter((e) => e.run !== undefined).length };
  }

  /** One domain's details. */
  info(name: string): DomainInfo {
    return describe(this.get(name));
  }

  /** The entry of `name`, or a 404 that says how to list the domains. */
  get(name: string): DomainEntry {
    const entry = this.#entries.get(name);
    if (entry === undefined) {
      throw new ApiError(
        "not_found",
        `No domain named '${name}'; 'denovisor list' shows the defined domains`,
      );
    }
    return entry;
  }

  /**
   * The running domain whose VMM has the image at `path` open (for the pool manager,
   * which refuses to delete, wipe or roll back such a volume).
   */
  userOfPath(path: string): string | undefined {
    return diskUser(this.#entries.values(), path);
  }

  /**
   * Defines a domain (POST /v1/domains): persistent unless `transient`; started at once
   * when `start` (a transient domain always starts: it exists only while it runs).
   */
  async define(
    input: unknown,
    options: {
      start?: boolean;
      transient?: boolean;
      restore?: VmmRestore;
      /** Receive the guest from a migration (migration_ops.ts): the VMM's launch options. */
      migrateIn?: { socket: string; timeoutMs: number };
    } = {},
  ) {
    const definition = validate(input);
    const name = definition.name;
    const tooLong = domainNameTooLong(this.#context.paths, name);
    if (tooLong !== undefined) throw new ApiError("invalid", tooLong);
    return await this.#mutex.run(name, async () => {
      if (this.#entries.has(name)) {
        throw new ApiError(
          "conflict",
          `name: a domain named '${name}' already exists; choose another name or edit that one`,
        );
      }
      conflicts(definition, this.#others(name));
      const persistent = !options.transient;
      const entry = this.#newEntry(definition, persistent);
      // A definition that could not start is refused before anything is stored.
      if (options.start) await this.lifecycle.preflight(definition, entry.logFile);
      // A new domain starts with a clean log, not a former same-named domain's output.
      await removeLog(entry.logFile);
      if (!persistent) {
        // Nothing is stored for a transient domain: it exists once its VMM runs.
        this.#entries.set(name, entry);
        try {
          const incoming = options.migrateIn;
          await this.lifecycle.start(
            entry,
            options.restore,
            incoming && { migrateIn: { socket: incoming.socket }, timeoutMs: incoming.timeoutMs },
          );
        } catch (error) {
          if (this.#entries.get(name) === entry && entry.run === undefined) {
            this.#entries.delete(name);
          }
          throw error;
        }
        return describe(entry);
      }
      await this.#context.store.save(definition);
      this.#entries.set(name, entry);
      this.#context.events.emit(name, "defined");
      if (options.start) await this.lifecycle.start(entry, options.restore);
      return describe(entry);
    });
  }

  /**
   * Stores a running transient domain's definition, making it persistent (a domain that
   * was persistent on the host it migrated from is persistent here).
   */
  async makePersistent(name: string): Promise<void> {
    await this.#mutex.run(name, async () => {
      const entry = this.get(name);
      if (entry.persistent) return;
      await this.#context.store.save(entry.definition);
      entry.persistent = true;
      this.#context.events.emit(name, "defined", "kept after its migration here");
    });
  }

  /** Replaces a domain's definition (PUT /v1/domains/{name}); a running domain keeps running. */
  async edit(name: string, input: unknown): Promise<DomainInfo> {
    const definition = validate(input);
    if (definition.name !== name) {
      throw new ApiError(
        "invalid",
        `name: '${definition.name}' differs from the domain being edited ('${name}'); ` +
          `renaming is not supported: define a new domain and undefine this one`,
      );
    }
    return await this.#mutex.run(name, async () => {
      const entry = this.get(name);
      conflicts(definition, this.#others(name));
      if (entry.persistent) await this.#context.store.save(definition);
      entry.definition = definition;
      this.#context.events.emit(name, "defined", "definition changed");
      return describe(
        entry,
        entry.run ? "the domain is running; the changes apply at its next start" : undefined,
      );
    });
  }

  /** Removes a stopped domain's definition (DELETE /v1/domains/{name}). */
  async undefine(name: string): Promise<void> {
    await this.#mutex.run(name, async () => {
      const entry = this.get(name);
      if (entry.state !== "shutoff") {
        throw new ApiError(
          "conflict",
          `Domain '${name}' is ${entry.state}; stop it first ('denovisor destroy ${name}' ` +
            `or 'denovisor shutdown ${name}'), then undefine it`,
        );
      }
      await this.#context.store.remove(name);
      this.#entries.delete(name);
      await removeLog(entry.logFile);
      this.#context.events.emit(name, "undefined");
    });
  }

  /**
   * Changes the vCPU count (PUT /v1/domains/{name}/vcpus): in the definition (`config`,
   * the default), or of the running guest (`live`), which Denovisor cannot do (no vCPU
   * hotplug) and so refuses; `current` is live while the domain runs, config when not.
   */
  async setVcpus(name: string, count: unknown, scope: Scope = {}): Promise<DomainInfo> {
    return await this.#mutex.run(name, async () => {
      const entry = this.get(name);
      const { live } = resolveScope(entry, scope, "config");
      if (live) {
        throw new ApiError(
          "conflict",
          entry.run
            ? `Domain '${name}' is running and Denovisor has no vCPU hotplug: its vCPUs cannot ` +
              `change live; --config sets them from its next start`
            : `Domain '${name}' is not running; --live changes a running guest: use --config`,
        );
      }
      refuseTransientConfig(entry);
      const definition = validate({ ...entry.definition, vcpus: count });
      if (entry.persistent) await this.#context.store.save(definition);
      entry.definition = definition;
      return describe(
        entry,
        entry.run
          ? `the domain is running; the new vCPU count (${definition.vcpus}) applies at its next start`
          : undefined,
      );
    });
  }

  /** Turns autostart on or off (PUT /v1/domains/{name}/autostart). */
  async setAutostart(name: string, enabled: unknown): Promise<DomainInfo> {
    if (typeof enabled !== "boolean") {
      throw new ApiError(
        "invalid",
        `enabled: expected true or false, got ${JSON.stringify(enabled)}`,
      );
    }
    return await this.#mutex.run(name, async () => {
      const entry = this.get(name);
      if (!entry.persistent) {
        throw new ApiError(
          "conflict",
          `Domain '${name}' is transient (made by create); define it to give it autostart`,
        );
      }
      const definition = { ...entry.definition, autostart: enabled };
      await this.#context.store.save(definition);
      entry.definition = definition;
      return describe(entry);
    });
  }

  /**
   * Sets a domain's memory (PUT /v1/domains/{name}/memory): the balloon target of the
   * running guest (`live`), the guest RAM of its definition from the next start (`config`),
   * or both; `current` (the default) is live while the domain runs, config when not.
   */
  async setMemory(name: string, targetBytes: unknown, scope: Scope = {}): Promise<DomainInfo> {
    return await this.#mutex.run(name, async () => {
      const entry = this.get(name);
      const { live, config } = resolveScope(entry, scope, "current");
      if (
        typeof targetBytes !== "number" || !Number.isSafeInteger(targetBytes) || targetBytes <= 0
      ) {
        throw new ApiError(
          "invalid",
          `targetBytes: expected a whole number of bytes above 0, got ${
            JSON.stringify(targetBytes)
          }`,
        );
      }
      let definition: DomainDefinition | undefined;
      if (config) {
        refuseTransientConfig(entry);
        if (targetBytes % MIB !== 0) {
          throw new ApiError(
            "invalid",
            `targetBytes: ${targetBytes} is not a whole number of MiB; the guest's RAM ` +
              `(--config) is set in MiB`,
          );
        }
        definition = validate({ ...entry.definition, memory: targetBytes / MIB });
      }
      if (live) {
        if (!entry.run) {
          throw new ApiError(
            "conflict",
            `Domain '${name}' is not running; --live sets a running guest's balloon: use --config`,
          );
        }
        const memory = definitionMemoryBytes(entry.run.record.definition);
        if (targetBytes > memory) {
          throw new ApiError(
            "invalid",
            `targetBytes: ${targetBytes} is above the domain's memory (${memory} bytes); ` +
              `the balloon can only give memory back` +
              (config ? "" : " (--config sets the memory of its next start)"),
          );
        }
        await this.lifecycle.setBalloon(entry, memory - targetBytes);
      }
      if (definition !== undefined) {
        if (entry.persistent) await this.#context.store.save(definition);
        entry.definition = definition;
      }
      return describe(
        entry,
        entry.run && config
          ? `the domain is running; its memory becomes ${targetBytes / MIB} MiB at its next start`
          : undefined,
      );
    });
  }

  /** Runs `fn` on the entry of `name` under its mutex. */
  locked<T>(name: string, fn: (entry: DomainEntry) => Promise<T>): Promise<T> {
    return this.#mutex.run(name, () => fn(this.get(name)));
  }

  /** Every entry (for start-up tasks: re-attach, autostart). */
  entries(): DomainEntry[] {
    return [...this.#entries.values()];
  }

  #newEntry(definition: DomainDefinition, persistent: boolean): DomainEntry {
    return {
      definition,
      persistent,
      state: "shutoff",
      restarts: [],
      logFile: this.#context.store.logFile(definition.name),
    };
  }

  /**
   * The other domains for the clash check of define and edit: names, uuids and MACs
   * only; disks are checked against the running domains when a domain starts, so that
   * (as in libvirt) a domain may be defined on an image another one uses now.
   */
  #others(name: string): OtherDomain[] {
    return [...this.#entries.values()]
      .filter((e) => e.definition.name !== name)
      .map((e) => ({ definition: e.definition, running: false }));
  }
}

/** validateDefinition with its errors as 400s. */
/**
 * Where a change of vCPUs or memory applies, as virsh's --live, --config and --current
 * (PUT .../vcpus and .../memory): none given is `fallback`.
 */
export interface Scope {
  live?: boolean;
  config?: boolean;
  current?: boolean;
}

const MIB = 1024 * 1024;

/** Whether a change goes to the running guest, the definition, or both. */
function resolveScope(
  entry: DomainEntry,
  scope: Scope,
  fallback: "config" | "current",
): { live: boolean; config: boolean } {
  if (scope.current && (scope.live || scope.config)) {
    throw new ApiError("invalid", "current: not with live or config (current is one of them)");
  }
  if (scope.live || scope.config) return { live: !!scope.live, config: !!scope.config };
  const current = scope.current || fallback === "current";
  return current && entry.run !== undefined
    ? { live: true, config: false }
    : { live: false, config: true };
}

/** A transient domain has no definition beyond its run: --config cannot apply to it. */
function refuseTransientConfig(entry: DomainEntry): void {
  if (!entry.persistent && entry.run !== undefined) {
    throw new ApiError(
      "conflict",
      `Domain '${entry.definition.name}' is transient (made by create): it has no next start ` +
        `for --config to change; define it first`,
    );
  }
}

function validate(input: unknown): DomainDefinition {
  try {
    return validateDefinition(input);
  } catch (error) {
    if (error instanceof DefinitionError) {
      throw new ApiError("invalid", error.message, { cause: error });
    }
    throw error;
  }
}
