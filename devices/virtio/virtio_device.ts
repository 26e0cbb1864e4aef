/**
 * The contract between virtio devices (block, net, console, rng, balloon) and the
 * transports that put them on a bus (virtio-pci, virtio-mmio). A device knows its queues,
 * features and configuration space; a transport knows registers, status and interrupts.
 * Virtio 1.2, modern interface only.
 *
 * @module
 */

import type { GuestMemory } from "../../core/guest_memory.ts";
import type { VersionedState } from "../../common/persist.ts";
import type { VirtQueue } from "./queue_types.ts";

/** Virtio device IDs (virtio 1.2, section 5). */
export const VIRTIO_ID = {
  NET: 1,
  BLOCK: 2,
  CONSOLE: 3,
  RNG: 4,
  BALLOON: 5,
  VSOCK: 19,
} as const;

/** Device-independent feature bits (virtio 1.2, section 6). */
export const VIRTIO_F = {
  RING_INDIRECT_DESC: 1n << 28n,
  RING_EVENT_IDX: 1n << 29n,
  VERSION_1: 1n << 32n,
  ACCESS_PLATFORM: 1n << 33n,
  RING_PACKED: 1n << 34n,
} as const;

/** Device status bits (virtio 1.2, section 2.1). */
export const VIRTIO_STATUS = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 64,
  FAILED: 128,
} as const;

/** How a device tells the driver something happened; each transport implements it. */
export interface VirtioInterrupt {
  /** Buffers were used in queue `queueIndex` (MSI-X: that queue's vector; else ISR bit 0). */
  usedBuffer(queueIndex: number): void;
  /** The device configuration changed (MSI-X: the config vector; else ISR bit 1). */
  configChanged(): void;
}

/** A host fd a device wants watched by the VMM's event loop (a tap device, a timer). */
export interface EventSource {
  readonly fd: number;
  /** Called on the main thread when `fd` is readable. */
  onReadable(): void;
}

/** What a device receives when the driver sets DRIVER_OK. */
export interface ActivateContext {
  readonly memory: GuestMemory;
  /** The features both sides agreed on. */
  readonly features: bigint;
  /** One entry per queue of the device, in order; undefined for a queue the driver did not enable. */
  readonly queues: ReadonlyArray<VirtQueue | undefined>;
  readonly interrupt: VirtioInterrupt;
  /**
   * Set when the device continues from a snapshot: set up (host-side state such as tap
   * offloads) but do not serve the queues yet. The machine is still being assembled; the
   * VMM kicks every queue (the transport's `kick()`) when it resumes the vCPUs.
   */
  readonly restoring?: boolean;
  /**
   * Declares the device broken (hostile or buggy driver): the transport sets
   * DEVICE_NEEDS_RESET, notifies the driver and stops calling `notify()` until reset.
   * The reason is logged once.
   */
  fail(reason: string): void;
}

/** A virtio device backend (the guest's virtio driver is its frontend). */
export interface VirtioDevice {
  /** One of VIRTIO_ID. */
  readonly type: number;
  /** For logs and errors, e.g. "virtio-blk vda". */
  readonly name: string;
  /** Maximum size of each queue (powers of two); the length is the queue count. */
  readonly queueSizes: readonly number[];
  /**
   * Features offered: device-specific bits plus VIRTIO_F_VERSION_1 and the ring features
   * the device supports. Offer only what is implemented.
   */
  readonly features: bigint;
  /** Size of the device-specific configuration space in bytes. */
  readonly configSize: number;
  /** Reads device configuration; `offset + data.length <= configSize` is checked by the transport. */
  readConfig(offset: number, data: Uint8Array): void;
  /** Writes device configuration (most fields are read-only: ignore those writes). */
  writeConfig(offset: number, data: Uint8Array): void;
  /** The driver set DRIVER_OK: start serving queues. */
  activate(context: ActivateContext): void;
  /** The driver notified queue `queueIndex` (through an ioeventfd or a register write). */
  notify(queueIndex: number): void;
  /** The driver reset the device (status 0): drop queues and in-flight state. */
  reset(): void;
  /**
   * The device's own state for a snapshot (configuration that can change, counters,
   * its rate limiters), without its id: the transport nests it in its own state. Queues
   * are the transport's. Taken while the machine is paused; a device must hold no chain
   * it has started to serve (held chains are handed back by the queue, see
   * `VirtQueue.saveState`). Stateless devices leave both methods out.
   */
  save?(): VersionedState;
  /**
   * Checks a saved device state (untrusted) and returns the function that applies it;
   * throws `StateError` naming `path` and changes nothing when it is bad. The transport
   * calls the returned function after `reset()` and before `activate()`.
   */
  prepareRestore?(state: unknown, path: string): () => void;
  /** Host fds to watch while active (e.g. the tap fd of virtio-net). */
  eventSources?(): EventSource[];
  /** Releases host resources (files, taps). */
  close?(): void;
}
