/**
 * The saved state of a split virtqueue (what the device side knows that guest memory does
 * not) and its validation: a snapshot file is untrusted input.
 *
 * @module
 */

import { VirtQueueError } from "./queue_types.ts";

/** Device-side queue state as plain JSON. The layout itself is saved by the transport. */
export interface SplitQueueState {
  /** Free-running 16-bit index of the next available ring entry the device will read. */
  readonly nextAvail: number;
  /** Free-running 16-bit used.idx the device has published. */
  readonly nextUsed: number;
  /** Chains pushed since the last interrupt decision (0..65536). */
  readonly usedSinceInterruptCheck: number;
  /** Chains popped and not yet pushed, with their writable bytes. */
  readonly inFlight: ReadonlyArray<{ readonly head: number; readonly writableLength: number }>;
}

/** Checks untrusted saved state against a queue of `size` entries. */
export function parseQueueState(
  state: unknown,
  size: number,
  maxChainBytes: number,
): SplitQueueState {
  const fail = (reason: string): never => {
    throw new VirtQueueError(`Saved queue state is invalid: ${reason}`);
  };
  if (typeof state !== "object" || state === null) return fail("it is not an object");
  const record = state as Record<string, unknown>;
  const integer = (name: string, value: unknown, max: number): number => {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
      return fail(`${name} ${String(value)} is not an integer in 0..${max}`);
    }
    return value;
  };
  const nextAvail = integer("nextAvail", record.nextAvail, 0xffff);
  const nextUsed = integer("nextUsed", record.nextUsed, 0xffff);
  const usedSinceInterruptCheck = integer(
    "usedSinceInterruptCheck",
    record.usedSinceInterruptCheck,
    0x10000,
  );
  if (!Array.isArray(record.inFlight)) return fail("inFlight is not an array");
  if (record.inFlight.length > size) {
    return fail(`${record.inFlight.length} chains in flight in a queue of ${size}`);
  }
  const seen = new Set<number>();
  const inFlight = record.inFlight.map((entry: unknown) => {
    if (typeof entry !== "object" || entry === null) {
      return fail("an inFlight entry is not an object");
    }
    const { head, writableLength } = entry as Record<string, unknown>;
    const checkedHead = integer("inFlight head", head, size - 1);
    if (seen.has(checkedHead)) fail(`chain ${checkedHead} is in flight twice`);
    seen.add(checkedHead);
    return {
      head: checkedHead,
      writableLength: integer("inFlight writableLength", writableLength, maxChainBytes),
    };
  });
  return { nextAvail, nextUsed, usedSinceInterruptCheck, inFlight };
}
