/**
 * Pieces the virtio devices' states share: the rate limiter a device was given, saved
 * with the device and checked against the one the restoring device was built with.
 *
 * @module
 */

import { StateError, type StateReader } from "../../common/persist.ts";
import type { DeviceRateLimiter, RateLimiterState } from "./rate_limiter.ts";

/** The limiter's state, or null for no limiter (or one that keeps no state). */
export function limiterState(limiter: DeviceRateLimiter | undefined): RateLimiterState | null {
  return limiter?.save?.() ?? null;
}

/**
 * Checks the saved limiter `name` against `limiter` (same presence) and returns the
 * function that applies it.
 */
export function prepareLimiter(
  reader: StateReader,
  name: string,
  limiter: DeviceRateLimiter | undefined,
): () => void {
  const saved = reader.raw(name);
  const path = reader.fieldPath(name);
  if (limiter?.prepareRestore === undefined) {
    if (saved !== null) {
      throw new StateError(
        path,
        "this device has no rate limiter; restore into one built with the same limits",
      );
    }
    return () => {};
  }
  if (saved === null) {
    throw new StateError(
      path,
      "is null but this device has a rate limiter; build it with the same limits",
    );
  }
  return limiter.prepareRestore(saved, path);
}
