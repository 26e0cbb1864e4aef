/**
 * A virtio device behind a real virtio-mmio transport and real split queues, brought up
 * through the registers the way Linux's driver does, for persist tests: build a source
 * rig, drive requests, save; build a second rig over the same guest memory (as a restored
 * machine maps the saved memory file) without bringing it up, restore, and keep driving
 * the same guest-side queue drivers.
 *
 * @module
 */

import { GuestMemory } from "../../../core/guest_memory.ts";
import { MmioTransport, VIRTIO_MMIO } from "../mmio_transport.ts";
import { createSplitQueue } from "../queue.ts";
import { VIRTIO_F, VIRTIO_STATUS, type VirtioDevice } from "../virtio_device.ts";
import { SplitQueueDriver } from "./driver_harness.ts";

/** Where the rig's queues live: queue i at QUEUE_BASE + i * QUEUE_STRIDE. */
const QUEUE_BASE = 0x10000;
const QUEUE_STRIDE = 0x8000;
/** Where tests may put buffers: above the queues. */
export const BUFFER_BASE = 0x80000;

/** A device on an MMIO transport, with the guest's side of each queue. */
export interface MmioRig {
  readonly memory: GuestMemory;
  readonly transport: MmioTransport;
  readonly drivers: SplitQueueDriver[];
  /** Interrupt edges so far. */
  edges(): number;
  readRegister(offset: number): number;
  writeRegister(offset: number, value: number): void;
}

/** Options of `mmioRig`. */
export interface MmioRigOptions {
  /** Shared guest memory (a second rig restores over the first one's memory). */
  readonly memory?: GuestMemory;
  /** Bring the device up (status, features, queues, DRIVER_OK); default true. */
  readonly start?: boolean;
  /** Size of every queue the driver sets up (default 16). */
  readonly queueSize?: number;
  /** Device-specific features the driver refuses. */
  readonly refuse?: bigint;
}

/** Builds the rig; with `start` the driver accepts every offered feature but the ring ones. */
export function mmioRig(device: VirtioDevice, options: MmioRigOptions = {}): MmioRig {
  const memory = options.memory ?? GuestMemory.ofSize(1 << 21);
  let edges = 0;
  const transport = new MmioTransport(device, {
    memory,
    createQueue: createSplitQueue,
    base: 0xd000_0000,
    irq: { trigger: () => edges++ },
    log: () => {},
  });
  const readRegister = (offset: number) => {
    const data = new Uint8Array(4);
    transport.read(offset, data);
    return new DataView(data.buffer).getUint32(0, true);
  };
  const writeRegister = (offset: number, value: number) => {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, value >>> 0, true);
    transport.write(offset, data);
  };
  const rig = { memory, transport, drivers: [] as SplitQueueDriver[], edges: () => edges };
  if (options.start === false) return { ...rig, readRegister, writeRegister };
  const R = VIRTIO_MMIO;
  const S = VIRTIO_STATUS;
  writeRegister(R.STATUS, S.ACKNOWLEDGE | S.DRIVER);
  const features = device.features &
    ~(VIRTIO_F.RING_EVENT_IDX | VIRTIO_F.RING_INDIRECT_DESC | (options.refuse ?? 0n));
  writeRegister(R.DRIVER_FEATURES_SEL, 1);
  writeRegister(R.DRIVER_FEATURES, Number(features >> 32n));
  writeRegister(R.DRIVER_FEATURES_SEL, 0);
  writeRegister(R.DRIVER_FEATURES, Number(features & 0xffff_ffffn));
  writeRegister(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  const size = options.queueSize ?? 16;
  device.queueSizes.forEach((_, index) => {
    const driver = new SplitQueueDriver(memory, { base: QUEUE_BASE + index * QUEUE_STRIDE, size });
    rig.drivers.push(driver);
    writeRegister(R.QUEUE_SEL, index);
    writeRegister(R.QUEUE_NUM, size);
    const { descTable, availRing, usedRing } = driver.config;
    for (
      const [low, address] of [
        [R.QUEUE_DESC_LOW, descTable],
        [R.QUEUE_DRIVER_LOW, availRing],
        [R.QUEUE_DEVICE_LOW, usedRing],
      ]
    ) {
      writeRegister(low, address % 0x1_0000_0000);
      writeRegister(low + 4, Math.floor(address / 0x1_0000_0000));
    }
    writeRegister(R.QUEUE_READY, 1);
  });
  writeRegister(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  return { ...rig, readRegister, writeRegister };
}
