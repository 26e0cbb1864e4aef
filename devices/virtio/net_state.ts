/**
 * The saved state of virtio-net (net.ts) and its validation.
 *
 * @module
 */

import { StateError, StateReader, type VersionedState } from "../../common/persist.ts";
import { readCounters } from "../state_fields.ts";
import { prepareLimiter } from "./device_persist.ts";
import type { NetCounters } from "./net.ts";
import { parseMac } from "../../common/validators.ts";
import type { DeviceRateLimiter, RateLimiterState } from "./rate_limiter.ts";

/**
 * virtio-net's own state. The MAC is restored, not checked: a NIC configured without one
 * got a random MAC the guest already uses. Receive buffers and a transmit chain the device
 * holds are handed back to their queues at a snapshot (see transport_persist.ts), and the
 * mergeable-buffers mode follows from the features, restored with the transport. The tap
 * is the restoring host's, found by name from the configuration.
 */
export interface VirtioNetState extends VersionedState {
  readonly version: 1;
  /** "52:54:00:12:34:56". */
  readonly mac: string;
  /** VIRTIO_NET_S_LINK_UP as the guest reads it. */
  readonly linkUp: boolean;
  readonly counters: NetCounters;
  readonly rxRateLimiter: RateLimiterState | null;
  readonly txRateLimiter: RateLimiterState | null;
}

const COUNTER_KEYS = [
  "rxFrames",
  "rxBytes",
  "rxDropped",
  "txFrames",
  "txBytes",
  "txDropped",
] as const;

/** A checked state. */
export interface ParsedNetState {
  readonly mac: Uint8Array;
  readonly linkUp: boolean;
  readonly counters: NetCounters;
  /** Applies both limiters' saved levels. */
  readonly commitLimiters: () => void;
}

/** Checks untrusted state against the device's limiters (same presence); changes nothing. */
export function parseNetState(
  state: unknown,
  path: string,
  rxLimiter: DeviceRateLimiter | undefined,
  txLimiter: DeviceRateLimiter | undefined,
): ParsedNetState {
  const r = new StateReader(state, path);
  r.version([1]);
  let mac: Uint8Array;
  try {
    mac = parseMac(r.string("mac", 17));
  } catch (error) {
    if (error instanceof StateError) throw error;
    throw new StateError(r.fieldPath("mac"), (error as Error).message);
  }
  const linkUp = r.boolean("linkUp");
  const counters = readCounters(r, "counters", COUNTER_KEYS);
  const commitRx = prepareLimiter(r, "rxRateLimiter", rxLimiter);
  const commitTx = prepareLimiter(r, "txRateLimiter", txLimiter);
  return {
    mac,
    linkUp,
    counters,
    commitLimiters: () => {
      commitRx();
      commitTx();
    },
  };
}
