/**
 * Test doubles for the transport tests: a small virtio device that records what the
 * transport asked of it, and a queue factory that records layouts and can refuse them.
 *
 * @module
 */

import { GuestMemory } from "../../core/guest_memory.ts";
import { VirtQueueError } from "./queue_types.ts";
import { FakeQueue } from "./testing/fake_queue.ts";
import type { CreateQueue, QueueConfig } from "./transport_state.ts";
import { type ActivateContext, VIRTIO_F, VIRTIO_ID, type VirtioDevice } from "./virtio_device.ts";

/** A device-specific feature bit the fake device offers. */
export const FAKE_FEATURE = 1n << 5n;

/** A two-queue device with 8 bytes of configuration (0x10, 0x11, ... 0x17). */
export class RecordingDevice implements VirtioDevice {
  readonly type = VIRTIO_ID.BLOCK;
  readonly name = "fake-blk";
  readonly queueSizes = [256, 128];
  readonly features = VIRTIO_F.VERSION_1 | VIRTIO_F.RING_EVENT_IDX | FAKE_FEATURE;
  readonly configSize = 8;
  readonly config = Uint8Array.from([0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17]);
  readonly activations: ActivateContext[] = [];
  readonly notified: number[] = [];
  resets = 0;

  readConfig(offset: number, data: Uint8Array): void {
    data.set(this.config.subarray(offset, offset + data.length));
  }

  writeConfig(offset: number, data: Uint8Array): void {
    this.config.set(data, offset);
  }

  activate(context: ActivateContext): void {
    this.activations.push(context);
  }

  notify(queueIndex: number): void {
    this.notified.push(queueIndex);
  }

  reset(): void {
    this.resets++;
  }

  /** The context of the latest activation (fails the test when there was none). */
  get context(): ActivateContext {
    const context = this.activations.at(-1);
    if (!context) throw new Error("the device was never activated");
    return context;
  }
}

/** A queue factory that records every layout it was given. */
export class QueueFactory {
  readonly built: Array<{ config: QueueConfig; features: bigint }> = [];
  /** When set, building a queue throws this VirtQueueError message. */
  refuse?: string;
  readonly memory = GuestMemory.ofSize(1 << 20);

  readonly create: CreateQueue = (_memory, config, features) => {
    if (this.refuse) throw new VirtQueueError(this.refuse);
    this.built.push({ config, features });
    return new FakeQueue(config.size);
  };
}

/** Collects log lines. */
export function logSink(): { lines: string[]; log: (message: string) => void } {
  const lines: string[] = [];
  return { lines, log: (message) => lines.push(message) };
}

/** Queue layout addresses used by the tests (aligned, inside the fake memory). */
export const LAYOUT = { descTable: 0x10000, availRing: 0x11000, usedRing: 0x12000 } as const;
