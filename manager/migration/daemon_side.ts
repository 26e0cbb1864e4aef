/**
 * The daemon's two halves of a migration, around the relay:
 * - outgoing: connect to the destination's listener (mutual TLS), open a unix relay
 *   socket in the domain's run directory, ask the VMM to migrate through it, relay;
 * - incoming: read and check START from an authenticated peer, let the daemon refuse it
 *   or start a VMM receiving on a relay socket, hand START on and relay; tell the daemon
 *   whether the guest ended up running here.
 *
 * The daemon's own policy (which names it accepts, how it defines the domain, how it
 * starts a VMM) comes in through small hooks, so this is tested with stand-in VMMs.
 *
 * @module
 */

import { join } from "node:path";
import { DenovisorError } from "../../common/errors.ts";
import { FrameReader, FrameWriter } from "../../vmm/migration/frames.ts";
import {
  Command,
  decodeJson,
  encodeJson,
  MigrationProtocolError,
} from "../../vmm/migration/protocol.ts";
import { parseStartRequest, type StartRequest } from "../../vmm/migration/start_request.ts";
import { connectMigration, type MigrationChannel, type MigrationSecurity } from "./channel.ts";
import { type FrameEnd, relayFrames, type RelayProgress } from "./relay.ts";

/** How long a VMM has to connect to its relay socket. */
export const VMM_CONNECT_MS = 30_000;

/**
 * A relay socket in `dir` (the VMM's run directory), private to the daemon and the VMM:
 * 0600, or 0660 for the directory's group when the daemon is root and the directory
 * belongs to a sandboxed VMM's group (its jail sees the run directory, and nothing else
 * of the daemon's). It is made under another name and renamed into place once its owner
 * and mode are set: a VMM already waiting for it (a pre-started one polls every 20 ms)
 * would otherwise find it still root's and fail with EACCES.
 */
async function relaySocket(
  dir: string,
  name: string,
): Promise<{ path: string; listener: Deno.UnixListener }> {
  const path = join(dir, name);
  // Not longer than `name`: a unix socket's path must fit in 108 bytes.
  const making = join(dir, ".relay.new");
  await Deno.remove(path).catch(() => {});
  await Deno.remove(making).catch(() => {});
  const listener = Deno.listen({ transport: "unix", path: making });
  try {
    const gid = (await Deno.stat(dir)).gid ?? 0;
    if (Deno.uid() === 0 && gid !== 0) {
      await Deno.chown(making, 0, gid);
      await Deno.chmod(making, 0o660);
    } else {
      await Deno.chmod(making, 0o600);
    }
    await Deno.rename(making, path);
  } catch (error) {
    listener.close();
    await Deno.remove(making).catch(() => {});
    throw error;
  }
  return { path, listener };
}

function unixEnd(conn: Deno.Conn): FrameEnd {
  return {
    reader: new FrameReader(conn.readable),
    writer: new FrameWriter(async (bytes) => {
      for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
    }),
    close: () => {
      try {
        conn.close();
      } catch {
        // closed already
      }
    },
  };
}

/** Waits for the VMM's connection, or for `vmm` to fail first (it never connected). */
async function acceptVmm(listener: Deno.UnixListener, vmm: Promise<unknown>): Promise<Deno.Conn> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      listener.accept(),
      vmm.then(() => {
        throw new DenovisorError("internal", "The VMM answered without connecting to its relay");
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new DenovisorError("timeout", `The VMM did not connect in ${VMM_CONNECT_MS} ms`),
            ),
          VMM_CONNECT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The outgoing half. */
export interface OutgoingMigration {
  /** The domain's run directory (the relay socket goes there). */
  runDir: string;
  host: string;
  port: number;
  security: MigrationSecurity;
  /** Asks the VMM to migrate through `socket` (POST /vm/migrate-send); resolves with its answer. */
  startVmm(socket: string): Promise<unknown>;
  onProgress?: (progress: RelayProgress) => void;
}

/**
 * Runs the outgoing half; resolves with the VMM's answer (the guest runs on the
 * destination) or throws the VMM's error (the source runs on, or is paused when the
 * outcome is unknown: the VMM's error says which).
 */
export async function migrateOutgoing(options: OutgoingMigration): Promise<unknown> {
  // The peer first: a refused certificate or an unreachable host touches nothing here.
  const peer = await connectMigration({
    host: options.host,
    port: options.port,
    security: options.security,
  });
  let relay: { path: string; listener: Deno.UnixListener } | undefined;
  try {
    relay = await relaySocket(options.runDir, "migrate-out.sock");
    const vmm = options.startVmm(relay.path);
    vmm.catch(() => {}); // awaited below
    const conn = await acceptVmm(relay.listener, vmm);
    relay.listener.close();
    const outcome = await relayFrames(unixEnd(conn), peer, options.onProgress);
    try {
      return await vmm;
    } catch (error) {
      if (outcome.answered) throw error;
      // Nothing ever came back, not even START's answer: with TLS 1.3 the client's
      // handshake ends before the server has checked its certificate, so a refused
      // certificate shows up here as a link closed at once. The guest runs on here.
      const detail = outcome.error ? ` (${outcome.error.message})` : "";
      throw new DenovisorError(
        "unavailable",
        `${options.host}:${options.port} closed the migration channel before answering` +
          `${detail}: it refused this host's certificate (is its --migration-ca the CA that ` +
          `signed this host's --migration-cert?), its daemon failed (see its log) or the ` +
          `link broke; ` +
          (error as Error).message,
        { cause: error },
      );
    }
  } finally {
    peer.close();
    if (relay) {
      try {
        relay.listener.close();
      } catch {
        // closed once the VMM connected
      }
      await Deno.remove(relay.path).catch(() => {});
    }
  }
}

/** What the daemon does with an accepted incoming migration. */
export interface IncomingVmm {
  /** The run directory of the VMM to start (the relay socket goes there). */
  runDir: string;
  /**
   * Starts a VMM whose config has `migrateIn: { socket }`; resolves once it is ready,
   * which for an incoming VMM is once the guest runs (rejects if it could not start).
   */
  spawn(socket: string): Promise<void>;
  /**
   * Resolves once the spawned VMM's launch has (re)made `runDir`, when the launch empties
   * it: the relay socket is made only then. Without it, the socket is made before spawn.
   */
  launched?(): Promise<void>;
  /** The guest runs here: define the domain (the rule: defined here, undefined there). */
  succeeded(start: StartRequest): Promise<void>;
  /** It did not happen: stop the VMM, leave nothing defined. */
  failed(reason: string): Promise<void>;
}

/** The daemon's checks: throws (with a message for both sides) to refuse. */
export type IncomingPolicy = (start: StartRequest) => Promise<IncomingVmm>;

async function refuse(channel: MigrationChannel, error: unknown): Promise<void> {
  const code = error instanceof DenovisorError ? error.code : "internal";
  const message = (error as Error).message.slice(0, 1000);
  await channel.writer.send(Command.ERROR, encodeJson({ code, message })).catch(() => {});
}

/**
 * Runs the incoming half over an authenticated channel. Resolves with the domain's name
 * once the guest runs here; throws when it was refused or failed (the source resumes).
 */
export async function handleIncoming(
  channel: MigrationChannel,
  policy: IncomingPolicy,
  onProgress?: (progress: RelayProgress) => void,
): Promise<string> {
  let start: StartRequest;
  let startPayload: Uint8Array;
  let vmm: IncomingVmm;
  try {
    const first = await channel.reader.next();
    if (first === null || first.command !== Command.START) {
      throw new MigrationProtocolError("a migration starts with START");
    }
    startPayload = first.payload;
    start = parseStartRequest(decodeJson(first.payload, "START"));
    vmm = await policy(start);
  } catch (error) {
    await refuse(channel, error);
    channel.close();
    throw error;
  }
  let relay: { path: string; listener: Deno.UnixListener } | undefined;
  try {
    const socket = join(vmm.runDir, "migrate-in.sock");
    let spawned: Promise<void>;
    if (vmm.launched) {
      spawned = vmm.spawn(socket);
      spawned.catch(() => {}); // raced below
      await Promise.race([vmm.launched(), spawned.then(() => new Promise(() => {}))]);
      relay = await relaySocket(vmm.runDir, "migrate-in.sock");
    } else {
      relay = await relaySocket(vmm.runDir, "migrate-in.sock");
      spawned = vmm.spawn(relay.path);
    }
    const conn = await acceptVmm(relay.listener, spawned.then(() => new Promise(() => {})));
    relay.listener.close();
    const end = unixEnd(conn);
    await end.writer.send(Command.START, startPayload);
    const outcome = await relayFrames(channel, end, onProgress);
    const running = outcome.completeSent && outcome.finalAnswer?.command === Command.ACK;
    if (!running) {
      throw outcome.error ?? new DenovisorError("unavailable", "The migration did not complete");
    }
    await vmm.succeeded(start);
    return start.domain;
  } catch (error) {
    await refuse(channel, error);
    await vmm.failed((error as Error).message);
    throw error;
  } finally {
    channel.close();
    if (relay) {
      try {
        relay.listener.close();
      } catch {
        // closed once the VMM connected
      }
      await Deno.remove(relay.path).catch(() => {});
    }
  }
}
