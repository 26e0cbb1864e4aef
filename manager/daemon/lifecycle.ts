/**
 * Running domains: starting a VMM, the requests that change a running domain, watching
 * for its end and applying on_poweroff / on_reboot / on_crash, and taking over the VMMs
 * a previous daemon left running. Every method that takes an entry runs under that
 * domain's mutex (the caller holds it); the end of a run is handled under it too.
 *
 * @module
 */

import {
  type ActionRequest,
  type DomainDefinition,
  type DomainEventKind,
  type DomainStats,
  FORCED_SHUTDOWN_END,
} from "../api_types.ts";
import type { DenovisorPaths } from "../paths.ts";
import { domainRunDir } from "../paths.ts";
import type { VmmConfig, VmmStatus } from "../../vmm/vmm_config.ts";
import { DefinitionError, validateDefinition } from "../domain/definition.ts";
import { resolveVmmConfig, type VolumeLookup } from "../domain/resolve.ts";
import type { DomainStore } from "../store/domain_store.ts";
import { ApiError } from "../../common/http/mod.ts";
import { vmmCgroupStats } from "../sandbox/vmm_sandbox.ts";
import type { DomainEntry } from "./domain_entry.ts";
import type { EventHub } from "./events.ts";
import type { KeyedMutex } from "./keyed_mutex.ts";
import { allowRestart, decideEnd, MAX_RESTARTS, RESTART_WINDOW_MS } from "./end_policy.ts";
import { type RunEnd, VmmRun } from "./vmm_run.ts";
import { backingConfined, bootFits, conflictsWithRunning } from "./start_checks.ts";
import type { VmmRestore } from "./save_restore.ts";
import { DomainHooks, hooksDirectory } from "./hooks.ts";
import { DomainIds } from "./domain_ids.ts";

/** Default seconds a guest gets to power off before `shutdown` destroys it. */
export const DEFAULT_SHUTDOWN_TIMEOUT_S = 60;

/** What the lifecycle needs from the daemon. */
export interface LifecycleContext {
  entries: Map<string, DomainEntry>;
  mutex: KeyedMutex;
  store: DomainStore;
  events: EventHub;
  paths: DenovisorPaths;
  /** Resolves pool volumes to images (the pool manager). */
  volumes: VolumeLookup;
  /** Where backing files of domain disks may live besides their image's own directory. */
  backingDirectories?: () => readonly string[];
  log: (line: string) => void;
}

/** Starts, stops and supervises the VMMs of the domains. */
export class Lifecycle {
  readonly #context: LifecycleContext;
  readonly #shutdownTimers = new Map<VmmRun, ReturnType<typeof setTimeout>>();
  /** `<state dir>/hooks/domain`, run at prepare, start, started, stopped, release. */
  readonly #hooks: DomainHooks;
  readonly #ids: DomainIds;

  constructor(context: LifecycleContext) {
    this.#context = context;
    this.#hooks = new DomainHooks(hooksDirectory(context.paths.stateDir), context.log);
    this.#ids = new DomainIds(context.paths.stateDir);
  }

  /**
   * Starts the domain's VMM and waits until it answers; with `restore`, the VMM restores
   * that saved state instead of booting (manager/daemon/save_restore.ts); with
   * `launch.migrateIn`, it receives the guest from a migration relay socket, and answers
   * only once the whole transfer is over, hence `launch.timeoutMs`.
   */
  async start(
    entry: DomainEntry,
    restore?: VmmRestore,
    launch: { migrateIn?: { socket: string }; timeoutMs?: number } = {},
  ): Promise<void> {
    const name = entry.definition.name;
    if (entry.state !== "shutoff") {
      throw new ApiError(
        "conflict",
        entry.state === "crashed"
          ? `Domain '${name}' is crashed (kept by on_crash=preserve); run 'denovisor destroy ${name}' first`
          : `Domain '${name}' is already ${entry.state}; nothing to start`,
      );
    }
    const definition = entry.definition;
    const resolved = await this.preflight(definition, entry.logFile);
    const config: VmmConfig = restore
      ? { ...resolved, restore }
      : launch.migrateIn
      ? { ...resolved, migrateIn: launch.migrateIn }
      : resolved;
    // A failing prepare or start hook refuses the start (hooks.ts).
    await this.#hooks.check("prepare", definition);
    try {
      await this.#hooks.check("start", definition);
    } catch (error) {
      this.#hooks.notify("release", definition);
      throw error;
    }
    entry.state = "starting";
    let run: VmmRun;
    try {
      run = await VmmRun.launch(config, definition, entry.persistent, launch.timeoutMs);
    } catch (error) {
      this.#hooks.notify("stopped", definition);
      this.#hooks.notify("release", definition);
      entry.state = "shutoff";
      entry.lastEnd = `failed to start: ${(error as Error).message.split("\n")[0]}`;
      throw error;
    }
    entry.run = run;
    entry.id = await this.#ids.assign(run.runDir).catch((error) => {
      this.#context.log(`no domain id for '${name}': ${(error as Error).message}`);
      return undefined;
    });
    entry.state = restore?.paused ? "paused" : "running";
    const from = restore
      ? `, restored from ${restore.stateFile}`
      : launch.migrateIn
      ? ", received by migration"
      : "";
    this.#context.events.emit(name, "started", `VMM pid ${run.pid}${from}`);
    this.#hooks.notify("started", definition);
    this.#watch(entry, run);
  }

  /**
   * Everything that can refuse a start before a VMM exists: clashes with the running
   * domains, then files, volumes and limits (resolveVmmConfig), then whether the kernel
   * fits in the domain's memory. Returns the VMM config.
   */
  async preflight(definition: DomainDefinition, logFile: string): Promise<VmmConfig> {
    await conflictsWithRunning(definition, this.#context.entries, this.#context.volumes);
    let config: VmmConfig;
    try {
      config = await resolveVmmConfig(definition, {
        runDir: domainRunDir(this.#context.paths, definition.name),
        logFile,
        volumes: this.#context.volumes,
      });
    } catch (error) {
      if (error instanceof DefinitionError) throw new ApiError("invalid", error.message);
      throw error;
    }
    backingConfined(config, this.#context.backingDirectories?.() ?? []);
    await bootFits(config);
    return config;
  }

  /** Stops the domain now (the VM dies); a crashed domain is cleared. */
  async destroy(entry: DomainEntry): Promise<void> {
    const name = entry.definition.name;
    const run = entry.run;
    if (run === undefined) {
      if (entry.state !== "crashed") {
        throw new ApiError("conflict", `Domain '${name}' is not running; nothing to destroy`);
      }
      this.#finish(entry, "destroyed", "the preserved crash was cleared");
      return;
    }
    const end = await run.destroy();
    await this.#release(entry, run);
    this.#finish(entry, "destroyed", end.record?.detail || end.exit);
  }

  /**
   * Asks the guest to power off (Ctrl-Alt-Del); destroys it if it has not after
   * `timeoutSeconds`. With `wait` (default) answers once the domain is off.
   */
  async shutdown(entry: DomainEntry, request: ActionRequest): Promise<{ done?: Promise<void> }> {
    const name = entry.definition.name;
    const timeout = request.timeoutSeconds ?? DEFAULT_SHUTDOWN_TIMEOUT_S;
    if (typeof timeout !== "number" || !(timeout >= 0) || timeout > 86400) {
      throw new ApiError(
        "invalid",
        `timeoutSeconds: expected 0-86400, got ${JSON.stringify(timeout)}`,
      );
    }
    const run = this.#needRun(entry, "shut down");
    if (entry.state === "paused") {
      throw new ApiError(
        "conflict",
        `Domain '${name}' is paused and cannot see a shutdown request; resume it first, or destroy it`,
      );
    }
    if (entry.state !== "shutting-down") {
      await run.control.call<VmmStatus>("POST", "/vm/shutdown", {});
      run.intent = "shutdown";
      entry.state = "shutting-down";
      this.#armShutdownTimer(entry, run, timeout);
    }
    // Wrapped: an async function returning the promise itself would wait for it, and the
    // end is handled under the mutex the caller holds.
    return { done: request.wait === false ? undefined : run.handled };
  }

  /**
   * Asks the guest to reboot (Ctrl-Alt-Del, which Linux and most guests take as a
   * reboot, as `virsh reboot`); the guest decides, as with shutdown.
   */
  async reboot(entry: DomainEntry): Promise<void> {
    const run = this.#needRun(entry, "reboot");
    if (entry.state !== "running") {
      throw new ApiError(
        "conflict",
        `Domain '${entry.definition.name}' is ${entry.state}, so its guest cannot see a ` +
          `reboot request; resume it first, or reset it with 'denovisor reset'`,
      );
    }
    await run.control.call<VmmStatus>("POST", "/vm/ctrl-alt-del", {});
  }

  /** Hard reset (`virsh reset`): the VMM rebuilds the machine in its process. */
  async reset(entry: DomainEntry): Promise<void> {
    const run = this.#needRun(entry, "reset");
    await run.control.call<VmmStatus>("POST", "/vm/reboot", {});
    entry.state = "running";
    this.#context.events.emit(entry.definition.name, "rebooted", "reset by request");
  }

  /** Pauses the vCPUs. */
  async pause(entry: DomainEntry): Promise<void> {
    const run = this.#needRun(entry, "pause");
    if (entry.state === "paused") return;
    const status = await run.control.call<VmmStatus>("POST", "/vm/pause", {});
    entry.state = status?.state ?? "paused";
    this.#context.events.emit(entry.definition.name, "paused");
  }

  /** Resumes paused vCPUs. */
  async resume(entry: DomainEntry): Promise<void> {
    const run = this.#needRun(entry, "resume");
    if (entry.state !== "paused") {
      throw new ApiError(
        "conflict",
        `Domain '${entry.definition.name}' is ${entry.state}, not paused`,
      );
    }
    const status = await run.control.call<VmmStatus>("POST", "/vm/resume", {});
    entry.state = status?.state ?? "running";
    this.#context.events.emit(entry.definition.name, "resumed");
  }

  /** The VMM's counters. */
  async stats(entry: DomainEntry): Promise<DomainStats> {
    const run = this.#needRun(entry, "report statistics for");
    const stats = await run.control.call<DomainStats>("GET", "/vm/stats");
    return {
      ...stats,
      name: entry.definition.name,
      state: entry.state,
      ...vmmCgroupStats(run.runDir),
    };
  }

  /** Sets how much memory the balloon holds back from the guest. */
  async setBalloon(entry: DomainEntry, balloonBytes: number): Promise<void> {
    const run = this.#needRun(entry, "change the memory of");
    if (!run.record.definition.balloon) {
      throw new ApiError(
        "conflict",
        `Domain '${entry.definition.name}' has no balloon device; set "balloon": true ` +
          `in its definition and restart it`,
      );
    }
    // The VMM's targetBytes is the balloon's size: what it takes back from the guest.
    await run.control.call("PUT", "/vm/balloon", { targetBytes: balloonBytes });
  }

  /**
   * Takes over `run`, a VMM a previous daemon started (the caller holds the mutex): a
   * VMM that ended while no daemon watched is handled as an end now, before the API
   * serves, so it is never shown running.
   */
  async adopt(entry: DomainEntry, run: VmmRun): Promise<void> {
    const name = entry.definition.name;
    entry.run = run;
    entry.id = await this.#ids.recall(run.runDir);
    entry.state = "running";
    if (!run.alive()) {
      await this.#ended(entry, run, await run.exited);
      return;
    }
    try {
      const state = await run.state();
      entry.state = state === "shutoff" ? "running" : state;
      if (state === "shutting-down") {
        run.intent = "shutdown";
        this.#armShutdownTimer(entry, run, DEFAULT_SHUTDOWN_TIMEOUT_S);
      }
    } catch (error) {
      this.#context.log(
        `re-attached '${name}' but its VMM did not answer: ${(error as Error).message}`,
      );
    }
    this.#context.log(`re-attached domain '${name}' (VMM pid ${run.pid})`);
    this.#watch(entry, run);
  }

  #needRun(entry: DomainEntry, verb: string): VmmRun {
    if (entry.run === undefined) {
      const name = entry.definition.name;
      throw new ApiError(
        "conflict",
        `Domain '${name}' is ${entry.state}; cannot ${verb} it${
          entry.state === "shutoff" ? ` (start it with 'denovisor start ${name}')` : ""
        }`,
      );
    }
    return entry.run;
  }

  #armShutdownTimer(entry: DomainEntry, run: VmmRun, seconds: number): void {
    const timer = setTimeout(() => {
      this.#shutdownTimers.delete(run);
      this.#context.mutex.run(entry.definition.name, async () => {
        if (entry.run !== run) return;
        this.#context.log(
          `'${entry.definition.name}' did not power off within ${seconds} s; destroying it`,
        );
        const end = await run.destroy();
        await this.#release(entry, run);
        this.#finish(
          entry,
          "destroyed",
          `${FORCED_SHUTDOWN_END}: the guest did not power off within ${seconds} s (${end.exit})`,
        );
      }).catch((error) => this.#context.log(`shutdown timeout: ${error.message}`));
    }, seconds * 1000);
    this.#shutdownTimers.set(run, timer);
  }

  /** Handles the end of `run` once its process has gone. */
  #watch(entry: DomainEntry, run: VmmRun): void {
    run.exited.then((end) =>
      this.#context.mutex.run(entry.definition.name, () => this.#ended(entry, run, end))
    ).catch((error) => this.#context.log(`handling the end of '${run.name}': ${error.message}`));
  }

  async #ended(entry: DomainEntry, run: VmmRun, end: RunEnd): Promise<void> {
    if (entry.run !== run) return; // Already handled by the request that ended it.
    const name = entry.definition.name;
    const decision = decideEnd(run.record.definition, end.record, end.exit, run.intent);
    await this.#release(entry, run);
    switch (decision.action) {
      case "stop":
      case "destroy":
        this.#finish(entry, decision.event, decision.detail);
        return;
      case "preserve":
        if (decision.event === "crashed") {
          entry.state = "crashed";
          entry.lastEnd = decision.detail;
          this.#context.events.emit(name, "crashed", decision.detail);
        } else {
          this.#finish(entry, decision.event, decision.detail);
        }
        return;
      case "rename-restart":
      case "restart": {
        this.#context.events.emit(name, decision.event, decision.detail);
        if (decision.action === "rename-restart") this.#keepRenamedCopy(entry, decision.detail);
        entry.state = "shutoff";
        entry.lastEnd = decision.detail;
        if (!allowRestart(entry.restarts)) {
          this.#finish(
            entry,
            "stopped",
            `restarted ${MAX_RESTARTS} times within ${RESTART_WINDOW_MS / 1000} s; left stopped`,
          );
          return;
        }
        try {
          await this.start(entry);
        } catch (error) {
          this.#finish(entry, "stopped", `restart failed: ${(error as Error).message}`);
        }
        return;
      }
    }
  }

  /** Drops the daemon's handle on an ended run. */
  async #release(entry: DomainEntry, run: VmmRun): Promise<void> {
    clearTimeout(this.#shutdownTimers.get(run));
    this.#shutdownTimers.delete(run);
    if (entry.run === run) {
      entry.run = undefined;
      entry.id = undefined;
    }
    run.dispose();
    await run.removeRunDir();
    this.#hooks.notify("stopped", run.record.definition);
    this.#hooks.notify("release", run.record.definition);
  }

  /** The domain is off: record why, report it; a transient domain vanishes. */
  #finish(entry: DomainEntry, event: DomainEventKind, detail: string): void {
    const name = entry.definition.name;
    entry.state = "shutoff";
    entry.lastEnd = detail;
    this.#context.events.emit(name, event, detail);
    if (!entry.persistent && this.#context.entries.get(name) === entry) {
      this.#context.entries.delete(name);
      this.#context.events.emit(name, "undefined", "transient domain stopped");
    }
  }

  /** rename-restart: the ended run is kept, as a crashed transient domain, under a new name. */
  #keepRenamedCopy(entry: DomainEntry, detail: string): void {
    const base = entry.definition.name.slice(0, 56);
    let n = 1;
    while (this.#context.entries.has(`${base}--${n}`)) n++;
    const { uuid: _uuid, nics, ...rest } = entry.definition;
    const copy = revalidate({
      ...rest,
      name: `${base}--${n}`,
      nics: (nics ?? []).map(({ mac: _mac, ...nic }) => nic),
      autostart: false,
    });
    this.#context.entries.set(copy.name, {
      definition: copy,
      persistent: false,
      state: "crashed",
      restarts: [],
      lastEnd: detail,
      logFile: entry.logFile,
    });
    this.#context.events.emit(
      copy.name,
      "crashed",
      `kept by on_*=rename-restart of '${entry.definition.name}'`,
    );
  }
}

/** A definition validated again (defaults filled), or as it was if it no longer passes. */
export function revalidate(definition: DomainDefinition): DomainDefinition {
  try {
    return validateDefinition(definition);
  } catch {
    return definition; // Kept as it ran; it is only shown and destroyed.
  }
}
