/**
 * The saved state of `TransportState` (the part both virtio transports share) and its
 * validation. A restore is prepared in full before anything changes: the registers are
 * checked, and for a device that was running each enabled queue is rebuilt over guest
 * memory (its rings must lie inside guest RAM) and given its saved indices, and the
 * device's own state is checked. Only then does the transport commit.
 *
 * In-flight requests: a snapshot is taken with the machine paused, and a chain a device
 * still holds at that moment (a request held back by the rate limiter, receive buffers
 * waiting for a packet) has not been served. The queue's saved state hands such chains
 * back by rewinding the next-available index over them (see `VirtQueue.saveState`), so
 * the restored device pops and serves them anew once the VMM kicks it on resume (the
 * transport's `kick()`; a restore itself serves nothing, as Firecracker's devices do). Nothing a device started and did not finish is lost or done twice, because
 * the devices here serve a chain to completion synchronously once they start it.
 *
 * @module
 */

import type { GuestMemory } from "../../core/guest_memory.ts";
import { formatU64, StateError, StateReader, type VersionedState } from "../../common/persist.ts";
import { readNullable } from "../state_fields.ts";
import type { SplitQueueState } from "./queue_state.ts";
import type { VirtQueue } from "./queue_types.ts";
import {
  type CreateQueue,
  NO_VECTOR,
  type QueueAddressField,
  queueConfigOf,
  type QueueRegisters,
} from "./transport_queue_registers.ts";
import { VIRTIO_F, VIRTIO_STATUS, type VirtioDevice } from "./virtio_device.ts";

/** One queue's registers and, while the device runs, its device-side indices. */
export interface VirtioQueueState {
  /** Queue size as the driver wrote it (16 bits). */
  readonly size: number;
  readonly ready: boolean;
  /** MSI-X vector, or 0xffff for none. */
  readonly msixVector: number;
  /** Guest addresses as u64 strings (the driver may have written anything before enabling). */
  readonly descTable: string;
  readonly availRing: string;
  readonly usedRing: string;
  /** The split queue's indices while the device runs and the queue is enabled, else null. */
  readonly queue: SplitQueueState | null;
}

/** The transport-independent state of one virtio device's transport. */
export interface VirtioTransportState extends VersionedState {
  readonly version: 1;
  /** The driver's status bits (without DEVICE_NEEDS_RESET). */
  readonly status: number;
  /** Whether the device declared itself broken (DEVICE_NEEDS_RESET). */
  readonly needsReset: boolean;
  readonly deviceFeatureSelect: number;
  readonly driverFeatureSelect: number;
  /** The features the driver accepted, a u64 string. */
  readonly driverFeatures: string;
  readonly queueSelect: number;
  readonly configMsixVector: number;
  /** 0-255. */
  readonly configGeneration: number;
  readonly queues: readonly VirtioQueueState[];
  /** The device's own state (`VirtioDevice.save`), null for a stateless device. */
  readonly device: VersionedState | null;
}

/** What `parseTransportState` needs of the transport. */
export interface TransportPersistContext {
  readonly device: VirtioDevice;
  readonly memory: GuestMemory;
  readonly createQueue: CreateQueue;
  readonly msixVectors: number;
}

/** A checked state, with the running queues already rebuilt. */
export interface ParsedTransportState {
  readonly status: number;
  readonly needsReset: boolean;
  readonly features: {
    deviceSelect: number;
    driverSelect: number;
    accepted: bigint;
    locked: boolean;
  };
  readonly queueSelect: number;
  readonly configMsixVector: number;
  readonly configGeneration: number;
  readonly registers: QueueRegisters[];
  /** Set when the device was running: one entry per queue, undefined when not enabled. */
  readonly queues?: Array<VirtQueue | undefined>;
  /** Applies the device's own state (a no-op for a stateless device). */
  readonly commitDevice: () => void;
}

const DRIVER_STATUS_BITS = VIRTIO_STATUS.ACKNOWLEDGE | VIRTIO_STATUS.DRIVER |
  VIRTIO_STATUS.FEATURES_OK | VIRTIO_STATUS.DRIVER_OK | VIRTIO_STATUS.FAILED;
const FIELDS: readonly QueueAddressField[] = ["descTable", "availRing", "usedRing"];
const TWO_32 = 0x1_0000_0000n;

/** The JSON form of one queue's registers and, when running, its indices. */
export function queueState(
  registers: QueueRegisters,
  queue: VirtQueue | undefined,
): VirtioQueueState {
  const address = (field: QueueAddressField) => {
    const [low, high] = registers.address[field];
    return formatU64((BigInt(high) << 32n) | BigInt(low));
  };
  return {
    size: registers.size,
    ready: registers.ready,
    msixVector: registers.msixVector,
    descTable: address("descTable"),
    availRing: address("availRing"),
    usedRing: address("usedRing"),
    queue: queue?.saveState() ?? null,
  };
}

/** Checks untrusted transport state against `context`; builds the queues of a running device. */
export function parseTransportState(
  value: unknown,
  path: string,
  context: TransportPersistContext,
): ParsedTransportState {
  const { device } = context;
  const r = new StateReader(value, path);
  r.version([1]);
  const status = r.integer("status", 0, 0xff);
  if ((status & ~DRIVER_STATUS_BITS) !== 0) {
    throw new StateError(
      r.fieldPath("status"),
      `bits 0x${(status & ~DRIVER_STATUS_BITS).toString(16)} are not driver status bits`,
    );
  }
  const needsReset = r.boolean("needsReset");
  const locked = (status & VIRTIO_STATUS.FEATURES_OK) !== 0;
  const accepted = r.u64("driverFeatures");
  if (locked && ((accepted & ~device.features) !== 0n || (accepted & VIRTIO_F.VERSION_1) === 0n)) {
    throw new StateError(
      r.fieldPath("driverFeatures"),
      `the accepted features ${formatU64(accepted)} are not all offered by this device ` +
        `(${formatU64(device.features)}) or lack VERSION_1; restore into a device built ` +
        `with the same configuration`,
    );
  }
  const running = (status & VIRTIO_STATUS.DRIVER_OK) !== 0 && !needsReset;
  if (running && !locked) {
    throw new StateError(
      r.fieldPath("status"),
      "DRIVER_OK without FEATURES_OK on a working device",
    );
  }
  const vector = (reader: StateReader, name: string) => {
    const v = reader.integer(name, 0, 0xffff);
    if (v !== NO_VECTOR && v >= context.msixVectors) {
      throw new StateError(
        reader.fieldPath(name),
        `vector ${v} does not exist (the function has ${context.msixVectors})`,
      );
    }
    return v;
  };
  const maxSizes = device.queueSizes;
  const saved = r.array("queues", maxSizes.length, (entry, entryPath) => {
    const q = new StateReader(entry, entryPath);
    const address = Object.fromEntries(FIELDS.map((field) => {
      const full = q.u64(field);
      return [field, [Number(full % TWO_32), Number(full / TWO_32)]];
    })) as Record<QueueAddressField, [number, number]>;
    const registers: QueueRegisters = {
      size: q.integer("size", 0, 0xffff),
      ready: q.boolean("ready"),
      msixVector: vector(q, "msixVector"),
      address,
    };
    return { registers, reader: q };
  });
  if (saved.length !== maxSizes.length) {
    throw new StateError(
      r.fieldPath("queues"),
      `expected ${maxSizes.length} queues, got ${saved.length}`,
    );
  }
  const queues = running
    ? saved.map(({ registers, reader }, index) =>
      buildQueue(registers, reader, index, context, accepted)
    )
    : undefined;
  if (!running) {
    for (const { reader } of saved) {
      if (reader.raw("queue") !== null) {
        throw new StateError(
          reader.fieldPath("queue"),
          "must be null while the device is not running",
        );
      }
    }
  }
  const deviceState = r.raw("device");
  let commitDevice = () => {};
  if (device.prepareRestore) {
    commitDevice = device.prepareRestore(deviceState, r.fieldPath("device"));
  } else if (deviceState !== null) {
    throw new StateError(
      r.fieldPath("device"),
      `${device.name} keeps no state of its own; expected null`,
    );
  }
  return {
    status,
    needsReset,
    features: {
      deviceSelect: r.integer("deviceFeatureSelect", 0, 0xffff_ffff),
      driverSelect: r.integer("driverFeatureSelect", 0, 0xffff_ffff),
      accepted,
      locked,
    },
    queueSelect: r.integer("queueSelect", 0, 0xffff_ffff),
    configMsixVector: vector(r, "configMsixVector"),
    configGeneration: r.integer("configGeneration", 0, 0xff),
    registers: saved.map(({ registers }) => registers),
    queues,
    commitDevice,
  };
}

/** Rebuilds an enabled queue of a running device over guest memory, with its saved indices. */
function buildQueue(
  registers: QueueRegisters,
  reader: StateReader,
  index: number,
  context: TransportPersistContext,
  features: bigint,
): VirtQueue | undefined {
  const saved = readNullable(reader, "queue", (name) => reader.raw(name));
  if (!registers.ready) {
    if (saved !== undefined) {
      throw new StateError(
        reader.fieldPath("queue"),
        "must be null for a queue that is not enabled",
      );
    }
    return undefined;
  }
  if (saved === undefined) {
    throw new StateError(
      reader.fieldPath("queue"),
      "is null but the queue is enabled on a running device",
    );
  }
  const config = queueConfigOf(registers, context.device.queueSizes[index]);
  if (typeof config === "string") throw new StateError(reader.path, `queue ${index} ${config}`);
  try {
    const queue = context.createQueue(context.memory, config, features);
    queue.restoreState(saved);
    return queue;
  } catch (error) {
    // VirtQueueError for a bad layout or indices; anything else from the factory is a
    // layout it could not build either, and must not escape as a crash.
    const message = error instanceof Error ? error.message : String(error);
    throw new StateError(reader.path, `queue ${index} cannot be restored: ${message}`);
  }
}
