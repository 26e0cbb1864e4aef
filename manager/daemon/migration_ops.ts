/**
 * Live migration in the daemon (manager/migration/README.md): the outgoing side behind
 * `POST /v1/domains/{name}/migrate` and `/migrate-abort`, and the policy of the incoming
 * side behind `--migration-listen`.
 *
 * The definition moves with the guest: once it runs on the destination it is defined
 * there (persistent if it was persistent here, transient if it was transient) and the
 * source undefines it once its VMM has ended. Until the destination confirms, it exists
 * only here; the destination keeps its copy transient (gone if the migration fails).
 *
 * @module
 */

import { join } from "node:path";
import type { DomainDefinition, MigrationProgress, MigrationResult } from "../api_types.ts";
import { ApiError, parseRequest } from "../../common/http/mod.ts";
import { MigrateRequest } from "../api_schema.ts";
import { DenovisorError } from "../../common/errors.ts";
import {
  DefinitionError,
  definitionMemoryBytes,
  validateDefinition,
} from "../domain/definition.ts";
import { checkFreeMemory } from "../migration/free_memory.ts";
import { type DenovisorPaths, domainNameTooLong, domainRunDir } from "../paths.ts";
import { DEFAULT_CONVERGENCE } from "../../vmm/migration/convergence.ts";
import type { StartRequest } from "../../vmm/migration/start_request.ts";
import type { MigrationSecurity } from "../migration/channel.ts";
import {
  type IncomingPolicy,
  type IncomingVmm,
  migrateOutgoing,
} from "../migration/daemon_side.ts";
import {
  type MigrationFlags,
  MigrationOptionError,
  migrationSecurity,
  parseHostPort,
} from "../migration/listen_options.ts";
import { describeProgress, ProgressTracker } from "../migration/progress.ts";
import type { RelayProgress } from "../migration/relay.ts";
import type { DomainManager } from "./domains.ts";
import type { EventHub } from "./events.ts";
import { settlesWithin } from "./vmm_run.ts";

/** How long an incoming VMM may take to become ready: the whole transfer, at most. */
export const INCOMING_READY_TIMEOUT_MS = 24 * 3600 * 1000;
/** Beyond the migration's own timeout, what the VMM gets to answer migrate-send. */
const SEND_ANSWER_MARGIN_MS = 10 * 60 * 1000;
/** How long the source's VMM has to end once the guest runs on the destination. */
const SOURCE_END_MS = 30_000;

/** What goes in START's `definition`: the definition and whether it is stored. */
export interface MigratedDefinition {
  definition: DomainDefinition;
  persistent: boolean;
}

/** What the migrations need of the daemon. */
export interface MigrationContext {
  domains: DomainManager;
  events: EventHub;
  paths: DenovisorPaths;
  /** The daemon's --migration-* flags (credentials for outgoing migrations too). */
  flags: MigrationFlags;
  log: (line: string) => void;
}

/** The checked body of POST /v1/domains/{name}/migrate. */
interface MigratePlan {
  dest: string;
  host: string;
  port: number;
  maxDowntimeMs: number;
  bandwidth: number;
  timeoutMs: number;
  offline: boolean;
  wait: boolean;
}

/** Checks a MigrateRequest; every problem is a 400 that names the field. */
export function parseMigrateRequest(body: unknown): MigratePlan {
  const request = parseRequest(MigrateRequest, body);
  let address: { host: string; port: number };
  try {
    address = parseHostPort(request.dest, "dest");
  } catch (error) {
    throw new ApiError("invalid", (error as Error).message);
  }
  return {
    dest: request.dest,
    ...address,
    maxDowntimeMs: request.maxDowntimeMs ?? DEFAULT_CONVERGENCE.maxDowntimeMs,
    bandwidth: request.bandwidth ?? 0,
    timeoutMs: (request.timeoutS ?? DEFAULT_CONVERGENCE.timeoutMs / 1000) * 1000,
    offline: request.offline ?? false,
    wait: request.wait ?? true,
  };
}

/** The migrations of one daemon, to and from it. */
export class DomainMigrations {
  readonly #context: MigrationContext;
  /** Outgoing migrations under way, by domain name. */
  readonly #outgoing = new Set<string>();

  constructor(context: MigrationContext) {
    this.#context = context;
  }

  /**
   * Moves a running domain (POST /v1/domains/{name}/migrate). With `wait` (default)
   * resolves with the result once the guest runs on the destination; otherwise with the
   * first progress, the outcome then coming as events.
   */
  async migrate(name: string, body: unknown): Promise<MigrationResult | MigrationProgress> {
    const plan = parseMigrateRequest(body);
    const { domains, events } = this.#context;
    const prepared = await domains.locked(name, async (entry) => {
      const run = entry.run;
      if (run === undefined || (entry.state !== "running" && entry.state !== "paused")) {
        throw new ApiError(
          "conflict",
          `Domain '${name}' is ${entry.state}; only a running or paused domain can migrate` +
            (entry.state === "shutoff" ? " (a stopped one: define it on the other host)" : ""),
        );
      }
      if (this.#outgoing.has(name) || entry.migration !== undefined) {
        throw new ApiError(
          "conflict",
          `Domain '${name}' is already migrating; 'denovisor migrate --abort ${name}' stops it`,
        );
      }
      const security = await this.#security(plan.host);
      this.#outgoing.add(name);
      const tracker = new ProgressTracker("outgoing", plan.dest);
      entry.migration = tracker.current;
      return { entry, run, security, tracker };
    });
    const { entry, run, security, tracker } = prepared;
    const moved: MigratedDefinition = {
      definition: run.record.definition,
      persistent: entry.persistent,
    };
    events.emit(name, "migrating", `to ${plan.dest}`);
    const started = performance.now();
    const outcome = (async (): Promise<MigrationResult> => {
      try {
        // The relay socket goes in the VMM's run directory: a sandboxed VMM's jail shows it
        // that directory and nothing else of the daemon's.
        const answer = await migrateOutgoing({
          runDir: run.runDir,
          host: plan.host,
          port: plan.port,
          security,
          startVmm: (socket) =>
            run.control.call("POST", "/vm/migrate-send", {
              socket,
              domain: name,
              definition: moved,
              offline: plan.offline,
              maxDowntimeMs: plan.maxDowntimeMs,
              bandwidth: plan.bandwidth,
              timeoutMs: plan.timeoutMs,
            }, plan.timeoutMs + SEND_ANSWER_MARGIN_MS),
          onProgress: (relay) => {
            const ended = tracker.update(relay);
            if (entry.run === run) entry.migration = tracker.current;
            if (ended) events.emit(name, "migrating", describeProgress(tracker.current));
          },
        }) as Partial<MigrationResult>;
        const result: MigrationResult = {
          domain: name,
          dest: plan.dest,
          iterations: answer.iterations ?? tracker.current.iteration,
          bytesSent: answer.bytesSent ?? tracker.current.bytesSent,
          totalMs: answer.totalMs ?? Math.round(performance.now() - started),
          downtimeMs: answer.downtimeMs ?? 0,
          ...(answer.switchOver ? { switchOver: answer.switchOver } : {}),
        };
        entry.migration = undefined;
        events.emit(
          name,
          "migrated",
          `to ${plan.dest} in ${Math.round(result.totalMs)} ms, ${result.iterations} rounds, ` +
            `downtime ${Math.round(result.downtimeMs)} ms`,
        );
        await this.#undefineMoved(name, run);
        return result;
      } catch (error) {
        entry.migration = undefined;
        const message = (error as Error).message;
        events.emit(name, "migration-failed", message);
        // The VMM resumed the guest, or left it paused when the outcome is unknown.
        if (entry.run === run) {
          await domains.locked(name, async (current) => {
            if (current.run === run) current.state = await run.state().catch(() => current.state);
          }).catch(() => {});
        }
        throw error;
      } finally {
        this.#outgoing.delete(name);
      }
    })();
    if (plan.wait) return await outcome;
    outcome.catch((error) => this.#context.log(`migration of '${name}': ${error.message}`));
    return tracker.current;
  }

  /** Stops an outgoing migration before its switch-over (POST .../migrate-abort). */
  async abort(name: string): Promise<MigrationProgress> {
    const entry = this.#context.domains.get(name);
    const progress = entry.migration;
    if (!this.#outgoing.has(name) || progress === undefined || entry.run === undefined) {
      throw new ApiError(
        "conflict",
        `Domain '${name}' is not migrating from this host; nothing to abort` +
          (progress?.direction === "incoming" ? " (abort it on the source host)" : ""),
      );
    }
    const answer = await entry.run.control.call<{ aborted: boolean }>(
      "POST",
      "/vm/migrate-abort",
      {},
    );
    if (!answer.aborted) {
      throw new ApiError(
        "conflict",
        `The migration of '${name}' is past its switch-over (or already over); it cannot be aborted`,
      );
    }
    return progress;
  }

  /**
   * The incoming side of one authenticated peer, for `handleIncoming`: a policy that
   * refuses a name defined here and a definition that does not validate or could not
   * start here (before any memory moves), then starts a VMM that receives the guest;
   * and the progress that shows in the domain's info while it lasts.
   */
  incoming(peer: string): {
    policy: IncomingPolicy;
    onProgress: (progress: RelayProgress) => void;
  } {
    const { domains, events, paths } = this.#context;
    const tracker = new ProgressTracker("incoming", peer);
    let name: string | undefined;
    const onProgress = (progress: RelayProgress) => {
      tracker.update(progress);
      const entry = name === undefined
        ? undefined
        : domains.entries().find((e) => e.definition.name === name);
      if (entry !== undefined) entry.migration = tracker.current;
    };
    const policy = async (start: StartRequest): Promise<IncomingVmm> => {
      const moved = readMovedDefinition(start);
      const domain = moved.definition.name;
      const tooLong = domainNameTooLong(paths, domain);
      if (tooLong !== undefined) throw new ApiError("invalid", tooLong);
      if (domains.list().some((d) => d.name === domain)) {
        throw new ApiError(
          "conflict",
          `A domain named '${domain}' is already defined on the destination; undefine it ` +
            `there or migrate to another host`,
        );
      }
      // Memory, files, volumes, clashes with the running domains, boot: refused before
      // any page moves.
      const ramBytes = start.ram.reduce((sum, range) => sum + range.size, 0);
      checkFreeMemory(domain, Math.max(ramBytes, definitionMemoryBytes(moved.definition)));
      await domains.lifecycle.preflight(moved.definition, "/dev/null");
      // The relay socket goes in the run directory, which the VMM's launch empties first
      // (and a sandboxed VMM's jail shows): made once the launch has made it again.
      const runDir = domainRunDir(paths, domain);
      const launchedMark = join(runDir, "domain.json");
      await Deno.remove(runDir, { recursive: true }).catch(() => {}); // nothing runs it here
      let started: Promise<unknown> | undefined;
      const cleanup = () => Deno.remove(join(runDir, "migrate-in.sock")).catch(() => {});
      events.emit(domain, "migrating", `from ${peer}`);
      return {
        runDir,
        launched: async () => {
          for (let waited = 0; waited < INCOMING_READY_TIMEOUT_MS; waited += 20) {
            if (await Deno.stat(launchedMark).then(() => true, () => false)) return;
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          throw new DenovisorError("timeout", `The VMM of '${domain}' was not launched`);
        },
        spawn: (socket: string) => {
          name = domain;
          // Transient until the guest runs here: a failure leaves nothing defined.
          started = domains.define(moved.definition, {
            start: true,
            transient: true,
            migrateIn: { socket, timeoutMs: INCOMING_READY_TIMEOUT_MS },
          });
          started.catch(() => {}); // awaited by succeeded or failed
          // A VMM that cannot start (a hook, a locked disk) fails the relay at once, with
          // its reason, rather than after the relay's connect timeout.
          return started.then(() => {});
        },
        succeeded: async () => {
          await started;
          domains.get(domain).migration = undefined;
          if (moved.persistent) await domains.makePersistent(domain);
          events.emit(domain, "migrated", `from ${peer}; it runs here`);
          await cleanup();
        },
        failed: async (reason: string) => {
          name = undefined;
          events.emit(domain, "migration-failed", `from ${peer}: ${reason}`);
          // A VMM that never became ready has ended with its relay (define dropped the
          // transient entry); one that did is destroyed, which drops it.
          if (started !== undefined && await started.then(() => true, () => false)) {
            await domains.locked(domain, (entry) => domains.lifecycle.destroy(entry)).catch(
              (error) => this.#context.log(`after a failed migration of '${domain}': ${error}`),
            );
          }
          await cleanup();
        },
      };
    };
    return { policy, onProgress };
  }

  /** Credentials for dialling `host`, from the daemon's flags. */
  async #security(host: string): Promise<MigrationSecurity> {
    try {
      return await migrationSecurity(this.#context.flags, host);
    } catch (error) {
      if (error instanceof MigrationOptionError) {
        throw new ApiError(
          "conflict",
          `This daemon cannot migrate to ${host}: ${error.message} (daemon flags)`,
        );
      }
      throw error;
    }
  }

  /**
   * The guest runs on the destination: once the source VMM has ended (it ends itself as
   * "destroyed (migrated to another host)"), the definition goes (a transient domain is
   * gone already). A VMM that lingers is destroyed first.
   */
  async #undefineMoved(name: string, run: { handled: Promise<void> }): Promise<void> {
    const { domains, log } = this.#context;
    try {
      if (!(await settlesWithin(run.handled, SOURCE_END_MS))) {
        log(`the VMM of '${name}' did not end after its migration; destroying it`);
        await domains.locked(name, (entry) => domains.lifecycle.destroy(entry));
      }
      if (domains.list().some((d) => d.name === name)) await domains.undefine(name);
    } catch (error) {
      log(`'${name}' migrated but is still defined here: ${(error as Error).message}`);
    }
  }
}

/** START's definition, checked as a define would check it. */
function readMovedDefinition(start: StartRequest): MigratedDefinition {
  const moved = start.definition as Partial<MigratedDefinition> | undefined;
  if (typeof moved !== "object" || moved === null || typeof moved.persistent !== "boolean") {
    throw new DenovisorError(
      "invalid",
      "The migration carries no domain definition ({definition, persistent}); " +
        "the source must be a Denovisor daemon",
    );
  }
  let definition: DomainDefinition;
  try {
    definition = validateDefinition(moved.definition);
  } catch (error) {
    if (error instanceof DefinitionError) {
      throw new ApiError("invalid", `The migrated definition is invalid here: ${error.message}`);
    }
    throw error;
  }
  if (definition.name !== start.domain) {
    throw new ApiError(
      "invalid",
      `The migrated definition names '${definition.name}', START '${start.domain}'`,
    );
  }
  return { definition, persistent: moved.persistent };
}
