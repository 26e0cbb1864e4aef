/**
 * The saved state of virtio-blk (block.ts) and its validation.
 *
 * @module
 */

import { StateError, StateReader, type VersionedState } from "../../common/persist.ts";
import { isDiskSerial } from "../../common/validators.ts";
import { readCounters } from "../state_fields.ts";
import type { BlockStats } from "./block.ts";
import { BLOCK_ID_BYTES } from "./block_request.ts";
import { prepareLimiter } from "./device_persist.ts";
import type { DeviceRateLimiter, RateLimiterState } from "./rate_limiter.ts";

const STAT_KEYS = [
  "reads",
  "writes",
  "bytesRead",
  "bytesWritten",
  "flushes",
  "discards",
  "writeZeroes",
  "errors",
  "unsupported",
  "throttled",
] as const;

/**
 * virtio-blk's own state (its queue is the transport's). The configuration the guest
 * read (capacity, read-only, serial) comes from the disk, which is not saved: it is kept
 * to check that the restoring device has the same disk, as the guest's view would
 * otherwise change under it. No request is in flight at a snapshot: requests are served
 * to completion synchronously, and one held back by the rate limiter is handed back to
 * the queue (see transport_persist.ts).
 */
export interface VirtioBlockState extends VersionedState {
  readonly version: 1;
  /** Capacity in 512-byte sectors, a u64 string. */
  readonly capacity: string;
  readonly readOnly: boolean;
  /** The GET_ID answer without its NUL padding. */
  readonly serial: string;
  readonly stats: BlockStats;
  readonly rateLimiter: RateLimiterState | null;
}

/** What the restoring device has, for the checks. */
export interface BlockIdentity {
  /** The disk's path, for messages. */
  readonly path: string;
  /** Capacity in sectors. */
  readonly capacity: number;
  readonly readOnly: boolean;
  readonly serial: string;
  /**
   * Whether the configuration named the serial. One that did not is derived from the
   * image file's identity, which a rollback or a clone changes; the guest keeps the
   * serial it read at boot instead.
   */
  readonly serialConfigured: boolean;
  readonly limiter?: DeviceRateLimiter;
}

/**
 * Checks untrusted state: it must describe the same disk as `device` (capacity,
 * read-only, serial) and the same rate limiting. Changes nothing.
 */
export function parseBlockState(
  state: unknown,
  path: string,
  device: BlockIdentity,
): { stats: BlockStats; serial: string; commitLimiter: () => void } {
  const r = new StateReader(state, path);
  r.version([1]);
  const capacity = r.u64("capacity");
  if (capacity !== BigInt(device.capacity)) {
    throw new StateError(
      r.fieldPath("capacity"),
      `the saved disk had ${capacity} sectors but ${device.path} has ${device.capacity}; ` +
        `restore with the same disk`,
    );
  }
  if (r.boolean("readOnly") !== device.readOnly) {
    throw new StateError(
      r.fieldPath("readOnly"),
      `the saved disk was ${device.readOnly ? "writable" : "read-only"}; open it the same way`,
    );
  }
  const serial = r.string("serial", BLOCK_ID_BYTES);
  if (!isDiskSerial(serial)) {
    throw new StateError(r.fieldPath("serial"), `${JSON.stringify(serial)} is not a disk serial`);
  }
  if (device.serialConfigured && serial !== device.serial) {
    throw new StateError(
      r.fieldPath("serial"),
      `the saved serial ${JSON.stringify(serial)} differs from ${JSON.stringify(device.serial)}`,
    );
  }
  return {
    stats: readCounters(r, "stats", STAT_KEYS),
    serial,
    commitLimiter: prepareLimiter(r, "rateLimiter", device.limiter),
  };
}
