/**
 * Helpers for the virtio-blk, rng and console unit tests: a recording activation context
 * and request builders.
 *
 * @module
 */

import { GuestMemory } from "../../core/guest_memory.ts";
import type { VirtQueue } from "./queue_types.ts";
import type { ActivateContext } from "./virtio_device.ts";

/** An ActivateContext that records interrupts and failures. */
export class RecordingContext implements ActivateContext {
  readonly memory = GuestMemory.ofSize(4096);
  readonly features: bigint;
  readonly queues: ReadonlyArray<VirtQueue | undefined>;
  readonly usedInterrupts: number[] = [];
  readonly failures: string[] = [];
  configChanges = 0;
  readonly interrupt = {
    usedBuffer: (queueIndex: number) => this.usedInterrupts.push(queueIndex),
    configChanged: () => this.configChanges++,
  };

  constructor(queues: Array<VirtQueue | undefined>, features: bigint) {
    this.queues = queues;
    this.features = features;
  }

  fail(reason: string): void {
    this.failures.push(reason);
  }
}

/** A virtio-blk request header. */
export function blockHeader(type: number, sector: number | bigint): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, type, true);
  view.setBigUint64(8, BigInt(sector), true);
  return bytes;
}

/** Discard / write-zeroes segments. */
export function blockSegments(
  ...segments: Array<{ sector: number; sectors: number; flags?: number }>
): Uint8Array {
  const bytes = new Uint8Array(segments.length * 16);
  const view = new DataView(bytes.buffer);
  segments.forEach((s, i) => {
    view.setBigUint64(i * 16, BigInt(s.sector), true);
    view.setUint32(i * 16 + 8, s.sectors, true);
    view.setUint32(i * 16 + 12, s.flags ?? 0, true);
  });
  return bytes;
}
