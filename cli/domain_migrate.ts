/**
 * `migrate` (xl migrate, virsh migrate --live): moves a running domain to the daemon
 * listening on DEST (its --migration-listen), with one progress line updated in place
 * on a terminal and a summary at the end; `migrate --abort NAME` stops one before its
 * switch-over. The daemons do the work (manager/daemon/migration_ops.ts).
 *
 * @module
 */

import type {
  DomainInfo,
  MigrateRequest,
  MigrationProgress,
  MigrationResult,
} from "../manager/api_types.ts";
import { describeProgress } from "../manager/migration/progress.ts";
import { abortable, domainPath, type DomainVerb } from "./domain_verb.ts";
import { CLIENT_EXIT, formatJson, printable } from "./output.ts";
import { parseSizeArgument, UsageError } from "./usage_error.ts";

/** How often the progress line is refreshed. */
const PROGRESS_INTERVAL_MS = 500;

const encoder = new TextEncoder();

/** Builds the request from the flags; throws UsageError for a bad one. */
export function migrateRequest(
  dest: string | undefined,
  values: Record<string, unknown>,
): MigrateRequest {
  // No destination only in a farm: the farm places the domain.
  const body = (dest === undefined ? {} : { dest }) as MigrateRequest;
  const whole = (flag: string, min: number): number | undefined => {
    const text = values[flag];
    if (typeof text !== "string") return undefined;
    const value = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min) {
      throw new UsageError(`--${flag} ${text}: expected a whole number of at least ${min}`);
    }
    return value;
  };
  const downtime = whole("max-downtime", 0);
  if (downtime !== undefined) body.maxDowntimeMs = downtime;
  const timeout = whole("timeout", 1);
  if (timeout !== undefined) body.timeoutS = timeout;
  const rate = values.bandwidth;
  if (typeof rate === "string") body.bandwidth = parseSizeArgument(rate, "--bandwidth", "m");
  if (values.offline === true) body.offline = true;
  return body;
}

/** The summary line of a finished migration. */
export function migrationSummary(result: MigrationResult): string {
  const mib = (result.bytesSent / 1048576).toFixed(1);
  // In a farm the answer names the host too.
  const host = (result as { host?: unknown }).host;
  const to = typeof host === "string"
    ? `host '${printable(host)}' (${printable(result.dest)})`
    : printable(result.dest);
  return `Domain '${printable(result.domain)}' migrated to ${to} in ` +
    `${(result.totalMs / 1000).toFixed(2)} s: ${result.iterations} rounds, ${mib} MiB sent, ` +
    `downtime ${Math.round(result.downtimeMs)} ms`;
}

const migrate: DomainVerb = {
  name: "migrate",
  summary: "Move a running domain to another host's daemon (live migration)",
  help: `Usage: denovisor migrate NAME DEST [options]
       denovisor migrate NAME [HOST] [options]     (in a farm)
       denovisor migrate --abort NAME

Moves the running domain NAME to the daemon whose --migration-listen is DEST
(HOST:PORT, [v6]:PORT), as 'xl migrate' does: its memory is copied while it runs,
then it pauses for at most about --max-downtime while the rest and its devices move,
and it runs on there. Its disks must be on storage both hosts see, at the same paths.
The daemons authenticate each other with their --migration-cert/-key/-ca (mutual TLS).

In a farm (a daemon started with --etcd), any host's daemon takes the command: DEST
may be a host's name, and without DEST the domain goes to the host placement picks
(as 'start --host auto' would, its current host excluded); the farm's record of
which host runs it moves with it.

Afterwards the domain is defined on DEST (persistent if it was here, transient if it
was) and no longer here. If anything fails before the switch-over it keeps running
here; if the answer from DEST is lost after it, it stays paused here and the error
says so: check 'denovisor list' on DEST, then resume or destroy it here.

Options:
  --max-downtime MS   Longest pause at the switch-over (default 100)
  --bandwidth RATE    Link limit per second: 100M, 1G (a bare number is MiB/s)
  --timeout SECONDS   Give up after this long, leaving it running here (default 3600)
  --offline           Pause, move, resume: no copying while it runs
  --abort             Stop the migration of NAME (before its switch-over)
  --json              Print the result as JSON

Example:
  denovisor migrate web 10.0.0.2:4789 --max-downtime 300
  denovisor migrate web host2        # in a farm; or no destination at all`,
  options: {
    "max-downtime": { type: "string" },
    bandwidth: { type: "string" },
    timeout: { type: "string" },
    offline: { type: "boolean" },
    abort: { type: "boolean" },
  },
  json: true,
  args: ["domain", "host"],
  optional: 1,
  completes: ["running", "paused"],
  async run(context, values, [name, dest]) {
    if (values.abort === true) {
      if (dest !== undefined) {
        throw new UsageError(`migrate --abort takes only the domain name, not '${dest}'`);
      }
      const progress = await context.client.post<MigrationProgress>(
        domainPath(name, "/migrate-abort"),
      );
      context.io.out(
        values.json
          ? formatJson(progress)
          : `Migration of '${printable(name)}' to ${printable(progress.peer)} aborted; ` +
            `it keeps running here`,
      );
      return CLIENT_EXIT.OK;
    }
    if (dest === undefined && !(await inFarm(context.client))) {
      throw new UsageError(
        "migrate: missing the destination HOST:PORT (only a farm places a domain by itself); " +
          "usage: denovisor migrate NAME DEST",
      );
    }
    const body = migrateRequest(dest, values);
    const line = progressLine(context.client, name, values.json !== true);
    try {
      const result = await abortable(
        context.client.post<MigrationResult>(domainPath(name, "/migrate"), body),
        context.signal,
      );
      line.stop();
      context.io.out(values.json ? formatJson(result) : migrationSummary(result));
      return CLIENT_EXIT.OK;
    } finally {
      line.stop();
    }
  },
};

/** Whether the daemon belongs to a farm (its GET /v1/farm is not a 404; no daemon: no). */
async function inFarm(client: { get<T>(path: string): Promise<T> }): Promise<boolean> {
  try {
    await client.get("/v1/farm");
    return true;
  } catch (error) {
    const status = (error as { status?: number }).status;
    return status !== undefined && status !== 404;
  }
}

/**
 * On a terminal (stderr), one line rewritten in place with the domain's migration
 * progress while the request runs; nothing elsewhere.
 */
function progressLine(
  client: { get<T>(path: string): Promise<T> },
  name: string,
  wanted: boolean,
): { stop(): void } {
  if (!wanted || !Deno.stderr.isTerminal()) return { stop() {} };
  let shown = false;
  let stopped = false;
  const write = (text: string) => Deno.stderr.writeSync(encoder.encode(text));
  const timer = setInterval(async () => {
    const info = await client.get<DomainInfo>(domainPath(name)).catch(() => undefined);
    if (stopped || info?.migration === undefined) return;
    write(`\r\x1b[K${printable(name)}: ${describeProgress(info.migration)}`);
    shown = true;
  }, PROGRESS_INTERVAL_MS);
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      if (shown) write("\r\x1b[K");
    },
  };
}

/** migrate. */
export const MIGRATE_VERBS: DomainVerb[] = [migrate];
