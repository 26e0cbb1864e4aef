/**
 * A domain as the daemon holds it in memory, and its API views (DomainSummary,
 * DomainInfo).
 *
 * @module
 */

import type {
  DomainDefinition,
  DomainInfo,
  DomainState,
  DomainSummary,
  MigrationProgress,
} from "../api_types.ts";
import { definitionMemoryBytes } from "../domain/definition.ts";
import type { VmmRun } from "./vmm_run.ts";
import { fileIdentity } from "../../storage/image.ts";

/** One domain known to the daemon. */
export interface DomainEntry {
  /** The current definition (for a running domain, what applies at its next start). */
  definition: DomainDefinition;
  /** False for `create` without `define`: the domain vanishes when it stops. */
  persistent: boolean;
  state: DomainState;
  /** The VMM, while there is one. */
  run?: VmmRun;
  /** The domain id of the current run (domain_ids.ts). */
  id?: number;
  /** Why the last run ended. */
  lastEnd?: string;
  /** Times of recent automatic restarts (crash-loop guard). */
  restarts: number[];
  /** The log file (console output and VMM log lines). */
  logFile: string;
  /** A live migration under way, to or from here (migration_ops.ts). */
  migration?: MigrationProgress;
}

/** The list view of `entry`. */
export function summarize(entry: DomainEntry): DomainSummary {
  const definition = entry.definition;
  // A running domain has what it started with; an edit, vcpu-set or mem-set --config
  // since then shows as `next`.
  const running = entry.run?.record.definition ?? definition;
  const summary: DomainSummary = {
    name: definition.name,
    uuid: definition.uuid ?? "",
    state: entry.state,
    vcpus: running.vcpus ?? 1,
    memoryBytes: definitionMemoryBytes(running),
    autostart: definition.autostart ?? false,
    persistent: entry.persistent,
  };
  const next: NonNullable<DomainSummary["next"]> = {};
  if ((definition.vcpus ?? 1) !== summary.vcpus) next.vcpus = definition.vcpus ?? 1;
  const memoryBytes = definitionMemoryBytes(definition);
  if (memoryBytes !== summary.memoryBytes) next.memoryBytes = memoryBytes;
  if (Object.keys(next).length > 0) summary.next = next;
  if (entry.run) summary.pid = entry.run.pid;
  if (entry.run && entry.id !== undefined) summary.id = entry.id;
  return summary;
}

/** The detailed view of `entry`; `note` says something about the request just made. */
export function describe(entry: DomainEntry, note?: string): DomainInfo {
  const info: DomainInfo = {
    ...summarize(entry),
    definition: entry.definition,
    logFile: entry.logFile,
  };
  if (entry.run) {
    info.startedAt = entry.run.record.startedAt;
    info.consoleSocket = entry.run.consoleSocket;
  }
  if (entry.lastEnd !== undefined) info.lastEnd = entry.lastEnd;
  if (note !== undefined) info.note = note;
  if (entry.migration !== undefined) info.migration = { ...entry.migration };
  return info;
}

/**
 * The domain whose VMM has the image at `path` open, compared by device and inode: a
 * hardlink (or any other name) of a disk in use is in use too.
 */
export function diskUser(entries: Iterable<DomainEntry>, path: string): string | undefined {
  const wanted = identity(path);
  for (const entry of entries) {
    const paths = entry.run?.diskPaths ?? [];
    if (paths.includes(path)) return entry.definition.name;
    if (wanted !== undefined && paths.some((p) => identity(p) === wanted)) {
      return entry.definition.name;
    }
  }
  return undefined;
}

/** The device and inode of `path`, or undefined when it cannot be stat'ed. */
function identity(path: string): string | undefined {
  try {
    return fileIdentity(path);
  } catch {
    return undefined;
  }
}
