/**
 * The VMM's migration endpoints. A VMM never opens a network socket (its seccomp policy
 * allows AF_UNIX only) and never reads the migration keys: the daemon holds the TLS
 * channel and relays frames over a unix socket it creates in the domain's run directory.
 *
 * - Source: `POST /vm/migrate-send { socket, domain, disks?, offline?, maxDowntimeMs?,
 *   bandwidth?, timeoutMs? }` connects to `socket` and runs the sender; it answers when
 *   the guest runs on the destination (this VMM then ends, "destroyed (migrated...)"),
 *   or with an error once the source runs on (or, outcome unknown, stays paused).
 *   `POST /vm/migrate-abort` stops a migration before its switch-over.
 * - Destination: the config's `migrateIn: { socket }` makes the VMM build its first
 *   machine from the stream on `socket` instead of booting.
 *
 * @module
 */

import { ApiError } from "../../common/http/mod.ts";
import type { Kvm } from "../../core/kvm.ts";
import type { BuildContext } from "../builder.ts";
import type { Machine } from "../machine.ts";
import type { VmmMachineConfig } from "../vmm_config.ts";
import { DEFAULT_CONVERGENCE } from "./convergence.ts";
import { configDisks, diskClaim } from "./disk_claims.ts";
import { FrameReader, FrameWriter } from "./frames.ts";
import { MachineMigrationSource } from "./machine_source.ts";
import { MachineMigrationTarget } from "./machine_target.ts";
import { receiveMigration } from "./receiver.ts";
import { type MigrationResult, sendMigration } from "./sender.ts";

/** POST /vm/migrate-send's body. */
export interface MigrateSendRequest {
  /** The daemon's relay socket (absolute path). */
  socket: string;
  /** The domain's name, for the destination. */
  domain: string;
  /** The domain definition the destination defines when the guest runs there. */
  definition?: unknown;
  offline: boolean;
  maxDowntimeMs: number;
  /** Bytes per second; 0 for no limit. */
  bandwidth: number;
  timeoutMs: number;
}

const FIELDS = [
  "socket",
  "domain",
  "definition",
  "offline",
  "maxDowntimeMs",
  "bandwidth",
  "timeoutMs",
];

/** Checks POST /vm/migrate-send's body (from the daemon, still checked). */
export function parseMigrateSendRequest(body: unknown): MigrateSendRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ApiError("invalid", "The body must be an object: { socket, domain, ... }");
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).find((key) => !FIELDS.includes(key));
  if (unknown !== undefined) throw new ApiError("invalid", `${unknown}: unknown field`);
  const { socket, domain } = fields;
  if (typeof socket !== "string" || !socket.startsWith("/")) {
    throw new ApiError("invalid", "socket: must be the absolute path of the relay socket");
  }
  if (typeof domain !== "string" || domain === "") {
    throw new ApiError("invalid", "domain: must be the domain's name");
  }
  const integer = (name: string, fallback: number, max: number) => {
    const value = fields[name] ?? fallback;
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > max) {
      throw new ApiError("invalid", `${name}: must be a whole number from 0 to ${max}`);
    }
    return value;
  };
  const offline = fields.offline ?? false;
  if (typeof offline !== "boolean") throw new ApiError("invalid", "offline: must be true or false");
  return {
    socket,
    domain,
    ...(fields.definition === undefined ? {} : { definition: fields.definition }),
    offline,
    maxDowntimeMs: integer("maxDowntimeMs", DEFAULT_CONVERGENCE.maxDowntimeMs, 3_600_000),
    bandwidth: integer("bandwidth", 0, Number.MAX_SAFE_INTEGER),
    timeoutMs: integer("timeoutMs", DEFAULT_CONVERGENCE.timeoutMs, 7 * 24 * 3_600_000),
  };
}

/** A frame channel over the daemon's unix relay socket. */
export async function unixChannel(path: string, waitMs = RELAY_WAIT_MS) {
  const conn = await connectWhenThere(path, waitMs);
  const write = async (bytes: Uint8Array) => {
    for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
  };
  return {
    reader: new FrameReader(conn.readable),
    writer: new FrameWriter(write),
    close: () => {
      try {
        conn.close();
      } catch {
        // already closed by the peer
      }
    },
  };
}

/** How long a VMM waits for its daemon's relay socket to appear. */
export const RELAY_WAIT_MS = 30_000;

/**
 * Connects to the relay socket, waiting for it to appear: the daemon of a sandboxed VMM
 * makes it in the run directory only after the VMM's launch has emptied that directory.
 */
async function connectWhenThere(path: string, waitMs: number): Promise<Deno.UnixConn> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await Deno.connect({ transport: "unix", path });
    } catch (error) {
      const absent = error instanceof Deno.errors.NotFound ||
        error instanceof Deno.errors.ConnectionRefused;
      if (!absent || Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Runs the source side for `machine`; see `sendMigration` for the switch-over rule. */
export async function migrateOut(
  machine: Machine,
  config: VmmMachineConfig,
  kvm: Kvm,
  request: MigrateSendRequest,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<MigrationResult> {
  const source = new MachineMigrationSource(machine, config, kvm);
  const disks = await Promise.all(configDisks(config).map((d) => diskClaim(d.id, d.path)));
  const channel = await unixChannel(request.socket);
  let lastIteration = -1;
  try {
    const result = await sendMigration(source, channel, {
      domain: request.domain,
      config,
      ...(request.definition === undefined ? {} : { definition: request.definition }),
      ram: source.ram.map((r) => ({ guestAddress: r.guestAddress, size: r.bytes.length })),
      disks,
      cpuid: source.cpuid(),
    }, {
      ...DEFAULT_CONVERGENCE,
      maxDowntimeMs: request.maxDowntimeMs,
      timeoutMs: request.timeoutMs,
      offline: request.offline,
      bandwidth: request.bandwidth,
      completeTimeoutMs: 60_000,
      signal,
      onProgress: (p) => {
        if (p.iteration === lastIteration && p.phase === "copying") return;
        lastIteration = p.iteration;
        log(
          `migration ${p.phase}: round ${p.iteration}, ${p.dirtyBytes} bytes dirty, ` +
            `${Math.round(p.bandwidth / 1e6)} MB/s, expected downtime ${p.expectedDowntimeMs} ms` +
            (p.throttlePercent ? `, vCPUs throttled ${p.throttlePercent} %` : ""),
        );
      },
    });
    const steps = result.switchOver;
    log(
      `migrated in ${result.totalMs} ms (${result.iterations} rounds, ${result.bytesSent} bytes, ` +
        `downtime ${result.downtimeMs} ms` +
        (steps
          ? `: pause ${steps.pause}, last pages ${steps.lastPages}, state ${steps.state}, ` +
            `disks ${steps.disks}, destination ${steps.destination}`
          : "") +
        ")",
    );
    return result;
  } finally {
    channel.close();
  }
}

/**
 * Receives the first machine from the relay socket at `path`. Resolves with the
 * restored machine (not started); `started` must be called once the caller has started
 * it, which answers the source.
 */
export async function migrateIn(
  config: VmmMachineConfig,
  context: BuildContext,
  path: string,
  log: (line: string) => void,
): Promise<{ machine: Machine; started: () => void; done: Promise<unknown> }> {
  const channel = await unixChannel(path);
  let restored!: (machine: Machine) => void;
  let failed!: (error: unknown) => void;
  const ready = new Promise<Machine>((resolve, reject) => {
    restored = resolve;
    failed = reject;
  });
  let started!: () => void;
  const running = new Promise<void>((resolve) => started = resolve);
  // The caller starts the machine (its domain's run loop); the ACK waits for that.
  const target = new MachineMigrationTarget(config, context, { restored, started: running });
  const done = receiveMigration(channel, target, (p) => {
    if (p.phase !== "copying") log(`incoming migration: ${p.phase}, ${p.bytesReceived} bytes`);
  }).catch((error) => {
    failed(error);
    throw error;
  }).finally(() => channel.close());
  done.catch(() => {}); // reported through `ready`
  return { machine: await ready, started, done };
}
