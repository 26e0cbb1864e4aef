/**
 * The destination side of a migration: a state machine over frames from an untrusted
 * source. START is checked and accepted (or refused with ERROR), MEMORY frames are
 * written into the new machine's RAM (every block inside the RAM START declared), STATE
 * is kept, COMPLETE restores and resumes the guest and answers ACK. Anything out of
 * order, malformed, an ABANDON, a cut link or a failed restore tears the new machine
 * down (disks closed first) and, where the link still works, answers ERROR: the source
 * then resumes.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";
import type { FrameReader, FrameWriter } from "./frames.ts";
import {
  Command,
  decodeDirtyRound,
  decodeJson,
  decodeMemory,
  encodeJson,
  MigrationProtocolError,
  negotiatedVersion,
  type PageBlock,
  SYNC_VERSION,
} from "./protocol.ts";
import { parseStartRequest, type StartRequest } from "./start_request.ts";

/** What the receiver needs of the machine being built here. */
export interface MigrationTarget {
  /**
   * Checks the proposal (free memory, name not running here, every disk seen with the
   * same identity, host features) and prepares guest RAM; throws to refuse.
   */
  accept(start: StartRequest): Promise<void>;
  /** Writes received pages (a block without data is zeroed). */
  writePages(blocks: readonly PageBlock[]): void;
  /** Builds the machine from the state over the received RAM, opening the disks (paused). */
  restore(state: unknown): Promise<void>;
  /** Starts the vCPUs; the guest runs here from now on. */
  resume(): Promise<void>;
  /** Tears down whatever was prepared, disks closed; never throws. */
  abandon(reason: string): Promise<void>;
}

/** Progress seen by the destination. */
export interface ReceiveProgress {
  phase: "accepted" | "copying" | "restoring" | "running";
  iteration: number;
  bytesReceived: number;
}

/** The source gave up, or the migration failed here; the source resumes. */
export class MigrationAbandonedError extends DenovisorError {}

/** Runs the destination side; resolves once the guest runs here and the source was told. */
export async function receiveMigration(
  channel: { reader: FrameReader; writer: FrameWriter },
  target: MigrationTarget,
  onProgress: (progress: ReceiveProgress) => void = () => {},
): Promise<StartRequest> {
  const { reader, writer } = channel;
  let start: StartRequest | null = null;
  let version = 0;
  let state: unknown = undefined;
  let iteration = 0;
  let received = 0;
  try {
    for (;;) {
      const frame = await reader.next();
      if (frame === null) {
        throw new MigrationProtocolError("the source closed the link mid-migration");
      }
      received += frame.payload.length + 16;
      if (frame.command === Command.ABANDON) {
        const body = decodeJson(frame.payload, "ABANDON") as { reason?: unknown };
        const reason = typeof body?.reason === "string" ? body.reason.slice(0, 1000) : "no reason";
        throw new MigrationAbandonedError(
          "conflict",
          `The source abandoned the migration: ${reason}`,
        );
      }
      if (start === null) {
        if (frame.command !== Command.START) {
          throw new MigrationProtocolError(`expected START first, got command ${frame.command}`);
        }
        start = parseStartRequest(decodeJson(frame.payload, "START"));
        await target.accept(start);
        // The version this migration uses; a version 1 source ignores the field.
        version = negotiatedVersion(start);
        await writer.send(
          Command.ACK,
          encodeJson({ accepted: start.domain, protocolVersion: version }),
        );
        onProgress({ phase: "accepted", iteration, bytesReceived: received });
        continue;
      }
      switch (frame.command) {
        case Command.MEMORY:
          if (state !== undefined) throw new MigrationProtocolError("MEMORY after STATE");
          target.writePages(decodeMemory(frame.payload, start.ram));
          break;
        case Command.DIRTY_ROUND:
          iteration = decodeDirtyRound(frame.payload).iteration;
          onProgress({ phase: "copying", iteration, bytesReceived: received });
          break;
        case Command.SYNC:
          // Every frame before it is in: the source may pause the guest now.
          if (version < SYNC_VERSION) {
            throw new MigrationProtocolError(`SYNC in a protocol version ${version} migration`);
          }
          if (state !== undefined) throw new MigrationProtocolError("SYNC after STATE");
          await writer.send(Command.ACK, encodeJson({ synced: true }));
          break;
        case Command.STATE:
          if (state !== undefined) throw new MigrationProtocolError("a second STATE");
          state = decodeJson(frame.payload, "STATE");
          break;
        case Command.COMPLETE: {
          if (state === undefined) throw new MigrationProtocolError("COMPLETE before STATE");
          onProgress({ phase: "restoring", iteration, bytesReceived: received });
          await target.restore(state);
          await target.resume();
          // From here the guest runs here: a failure to answer leaves the source paused
          // (outcome unknown there), never two running copies.
          await writer.send(Command.ACK, encodeJson({ running: start.domain })).catch(() => {});
          onProgress({ phase: "running", iteration, bytesReceived: received });
          return start;
        }
        default:
          throw new MigrationProtocolError(`command ${frame.command} is not expected here`);
      }
    }
  } catch (error) {
    const message = (error as Error).message;
    await target.abandon(message).catch(() => {});
    // Only after the disks are closed: the source takes them back when it reads this.
    const code = error instanceof DenovisorError ? error.code : "internal";
    await writer.send(Command.ERROR, encodeJson({ code, message: message.slice(0, 1000) }))
      .catch(() => {});
    throw error;
  }
}
