/**
 * The daemon's relay between a VMM's unix socket and the TLS channel to the peer daemon.
 * A VMM has no network (its seccomp policy allows AF_UNIX only) and never reads the
 * migration keys, so the daemon carries the frames. It forwards whole frames, each one
 * checked by `FrameReader` on the way (a hostile peer's oversized or unknown frame stops
 * at the daemon and never reaches the VMM), and watches them for progress.
 *
 * @module
 */

import type { Frame, FrameReader, FrameWriter } from "../../vmm/migration/frames.ts";
import { Command, decodeDirtyRound } from "../../vmm/migration/protocol.ts";

/** One side of a relay. */
export interface FrameEnd {
  reader: FrameReader;
  writer: FrameWriter;
  close(): void;
}

/** What the relay saw going from the source to the destination. */
export interface RelayProgress {
  iteration: number;
  /** Dirty bytes announced by the last DIRTY_ROUND. */
  dirtyBytes: number;
  /** The source's vCPU throttle (auto-converge) announced by the last DIRTY_ROUND, in %. */
  throttlePercent: number;
  /** Bytes forwarded towards the destination. */
  bytes: number;
  /** The last command forwarded that way. */
  command: number;
}

/** How a relay ended. */
export interface RelayOutcome {
  /** The destination's answer to COMPLETE (ACK: the guest runs there), if one came. */
  finalAnswer: Frame | null;
  /** Whether COMPLETE went towards the destination. */
  completeSent: boolean;
  /** Whether the destination sent anything at all (an ACK or ERROR of START at least). */
  answered: boolean;
  /** The first error on either direction, if any. */
  error?: Error;
}

/**
 * Forwards frames `source` -> `destination` and back until either side closes or
 * fails, then closes both. Resolves (never rejects) with what it saw.
 */
export async function relayFrames(
  source: FrameEnd,
  destination: FrameEnd,
  onProgress: (progress: RelayProgress) => void = () => {},
): Promise<RelayOutcome> {
  const outcome: RelayOutcome = {
    finalAnswer: null,
    completeSent: false,
    answered: false,
  };
  const progress: RelayProgress = {
    iteration: 0,
    dirtyBytes: 0,
    throttlePercent: 0,
    bytes: 0,
    command: 0,
  };
  const fail = (error: unknown) => {
    outcome.error ??= error instanceof Error ? error : new Error(String(error));
  };
  let closed = false;
  const closeBoth = () => {
    if (closed) return;
    closed = true;
    source.close();
    destination.close();
  };
  const forward = async (
    from: FrameEnd,
    to: FrameEnd,
    seen: (frame: Frame) => void,
  ) => {
    try {
      for (let frame = await from.reader.next(); frame; frame = await from.reader.next()) {
        seen(frame);
        await to.writer.send(frame.command, frame.payload);
      }
    } catch (error) {
      fail(error);
    } finally {
      // One side ended: the other learns it by its link closing.
      closeBoth();
    }
  };
  await Promise.all([
    forward(source, destination, (frame) => {
      progress.bytes += frame.payload.length + 16;
      progress.command = frame.command;
      if (frame.command === Command.DIRTY_ROUND) {
        const round = decodeDirtyRound(frame.payload);
        progress.iteration = round.iteration;
        progress.dirtyBytes = round.dirtyBytes;
        progress.throttlePercent = round.throttlePercent ?? 0;
      }
      if (frame.command === Command.COMPLETE) outcome.completeSent = true;
      onProgress({ ...progress });
    }),
    forward(destination, source, (frame) => {
      outcome.answered = true;
      // The source sends nothing after START until START's answer, so any answer seen
      // once COMPLETE went out answers COMPLETE.
      if (outcome.completeSent) outcome.finalAnswer ??= frame;
    }),
  ]);
  return outcome;
}
