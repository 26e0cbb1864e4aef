/**
 * The state both virtio transports (PCI and MMIO) share: the device status state machine,
 * the feature select windows, per-queue configuration, MSI-X vectors, the config
 * generation counter and activation on DRIVER_OK (virtio 1.2, sections 2.1-2.4 and 3.1).
 * The transports only map registers onto it. Everything the driver writes is untrusted:
 * bad values are ignored or put the device in DEVICE_NEEDS_RESET, and each kind of
 * offence is logged once.
 *
 * @module
 */

import type { GuestMemory } from "../../core/guest_memory.ts";
import {
  type CreateQueue,
  newQueueRegisters,
  NO_VECTOR,
  type QueueAddressField,
  queueConfigOf,
  type QueueRegisters,
} from "./transport_queue_registers.ts";
import type { VirtQueue } from "./queue_types.ts";
import { formatU64, type Persistable } from "../../common/persist.ts";
import { parseTransportState, queueState, type VirtioTransportState } from "./transport_persist.ts";
import { OnceLog } from "./once_log.ts";
import { FeatureNegotiation } from "./transport_features.ts";
import {
  type ActivateContext,
  VIRTIO_STATUS,
  type VirtioDevice,
  type VirtioInterrupt,
} from "./virtio_device.ts";

/** MSI-X "no vector" (virtio 1.2, section 4.1.4.3). */
export const VIRTIO_MSI_NO_VECTOR = NO_VECTOR;

export type { VirtioQueueState, VirtioTransportState } from "./transport_persist.ts";
export type {
  CreateQueue,
  NotifyRegion,
  QueueAddressField,
  QueueConfig,
} from "./transport_queue_registers.ts";

/** What a transport hands to its `TransportState`. */
export interface TransportStateOptions {
  readonly device: VirtioDevice;
  readonly memory: GuestMemory;
  readonly createQueue: CreateQueue;
  /** The transport's raw signalling (ISR/InterruptStatus bits, MSI-X, INTx, edge IRQ). */
  readonly interrupt: VirtioInterrupt;
  /** MSI-X vectors the function has (PCI); 0 when there is no MSI-X (MMIO). */
  readonly msixVectors?: number;
  /** Called after a device reset so the transport can clear its interrupt state. */
  readonly onReset?: () => void;
  /** Where offences and failures go; defaults to console.warn. */
  readonly log?: (message: string) => void;
}

const DRIVER_STATUS_BITS = VIRTIO_STATUS.ACKNOWLEDGE | VIRTIO_STATUS.DRIVER |
  VIRTIO_STATUS.FEATURES_OK | VIRTIO_STATUS.DRIVER_OK | VIRTIO_STATUS.FAILED;

/** Device status, features, queues and activation of one virtio device on one transport. */
export class TransportState implements Persistable<VirtioTransportState> {
  readonly device: VirtioDevice;
  /** The feature select windows (spec 2.2). */
  readonly features: FeatureNegotiation;
  readonly #memory: GuestMemory;
  readonly #createQueue: CreateQueue;
  readonly #interrupt: VirtioInterrupt;
  readonly #msixVectors: number;
  readonly #onReset?: () => void;
  readonly #log: OnceLog;
  readonly #queues: QueueRegisters[];

  #status = 0;
  #needsReset = false;
  #queueSelect = 0;
  #configMsixVector = VIRTIO_MSI_NO_VECTOR;
  #configGeneration = 0;
  /** Bumped on every reset: contexts from an older activation lose their power. */
  #epoch = 0;
  #activeQueues: ReadonlyArray<VirtQueue | undefined> | undefined;

  constructor(options: TransportStateOptions) {
    this.device = options.device;
    this.#memory = options.memory;
    this.#createQueue = options.createQueue;
    this.#interrupt = options.interrupt;
    this.#msixVectors = options.msixVectors ?? 0;
    this.#onReset = options.onReset;
    this.#log = new OnceLog(options.log);
    this.features = new FeatureNegotiation(
      this.device.features,
      (kind, message) => this.#offence(kind, message),
    );
    this.#queues = this.device.queueSizes.map((max) => newQueueRegisters(max));
  }

  /** Number of queues the device has. */
  get queueCount(): number {
    return this.#queues.length;
  }

  // ---- Status (spec 2.1, 3.1) ----

  /** The status register: the driver's bits plus DEVICE_NEEDS_RESET when the device broke. */
  get status(): number {
    return this.#status | (this.#needsReset ? VIRTIO_STATUS.DEVICE_NEEDS_RESET : 0);
  }

  /** Whether DRIVER_OK was accepted and the device is serving queues. */
  get activated(): boolean {
    return this.#activeQueues !== undefined;
  }

  /** Whether the device declared itself broken (DEVICE_NEEDS_RESET). */
  get needsReset(): boolean {
    return this.#needsReset;
  }

  /** A driver write to the status register: 0 resets, otherwise bits are only added. */
  writeStatus(value: number): void {
    value &= 0xff;
    if (value === 0) {
      this.reset();
      return;
    }
    const requested = value & DRIVER_STATUS_BITS;
    if ((this.#status & ~requested) !== 0) {
      this.#offence("status-clear", "the driver cleared status bits without a reset (ignored)");
      return;
    }
    const added = requested & ~this.#status;
    let next = this.#status | added;
    if (added & VIRTIO_STATUS.FEATURES_OK && !this.features.settle()) {
      // Leaving FEATURES_OK clear tells the driver its feature set was refused.
      next &= ~VIRTIO_STATUS.FEATURES_OK;
    }
    this.#status = next;
    if (added & VIRTIO_STATUS.DRIVER_OK) this.#activate();
  }

  /** Resets the device and all transport state (status 0, or a host-side reset). */
  reset(): void {
    this.#epoch++;
    this.#activeQueues = undefined;
    this.#status = 0;
    this.#needsReset = false;
    this.features.reset();
    this.#queueSelect = 0;
    this.#configMsixVector = VIRTIO_MSI_NO_VECTOR;
    this.device.queueSizes.forEach((max, i) => this.#queues[i] = newQueueRegisters(max));
    this.#guard("reset", () => this.device.reset());
    this.#onReset?.();
  }

  // ---- Persistence (see transport_persist.ts) ----

  /**
   * Status, features, queue registers, the running queues' indices and the device's own
   * state, as plain JSON. Take it with the machine paused.
   */
  save(): VirtioTransportState {
    const running = this.#activeQueues !== undefined && !this.#needsReset;
    return {
      version: 1,
      status: this.#status,
      needsReset: this.#needsReset,
      deviceFeatureSelect: this.features.deviceSelect,
      driverFeatureSelect: this.features.driverSelect,
      driverFeatures: formatU64(this.features.accepted),
      queueSelect: this.#queueSelect,
      configMsixVector: this.#configMsixVector,
      configGeneration: this.#configGeneration,
      queues: this.#queues.map((registers, i) =>
        queueState(registers, running ? this.#activeQueues?.[i] : undefined)
      ),
      device: this.device.save?.() ?? null,
    };
  }

  /** Restores a saved state; a bad one throws `StateError` and changes nothing. */
  restore(state: unknown, path = "state"): void {
    this.prepareRestore(state, path)();
  }

  /**
   * Checks a saved state (untrusted) and returns the function that applies it: the device
   * is reset, given its own saved state, and, when it was running, activated again over
   * the rebuilt queues without serving them (`kick()` does that on resume; see
   * transport_persist.ts on in-flight requests). Nothing touches guest memory or raises
   * an interrupt. The function triggers no reset callback: the transport restores its own
   * interrupt state.
   */
  prepareRestore(state: unknown, path: string): () => void {
    const parsed = parseTransportState(state, path, {
      device: this.device,
      memory: this.#memory,
      createQueue: this.#createQueue,
      msixVectors: this.#msixVectors,
    });
    return () => {
      this.#epoch++;
      this.#activeQueues = undefined;
      this.#guard("reset", () => this.device.reset());
      parsed.commitDevice();
      this.#status = parsed.status;
      this.#needsReset = parsed.needsReset;
      this.features.load(parsed.features);
      this.#queueSelect = parsed.queueSelect;
      this.#configMsixVector = parsed.configMsixVector;
      this.#configGeneration = parsed.configGeneration;
      parsed.registers.forEach((registers, i) => this.#queues[i] = registers);
      if (parsed.queues) this.#start(parsed.queues, true);
    };
  }

  /**
   * Notifies every enabled queue of a running device, as if the driver had: what a
   * restored machine needs when its vCPUs resume, since the driver kicked before the
   * snapshot and a restored device does not serve until kicked.
   */
  kick(): void {
    if (!this.#activeQueues || this.#needsReset) return;
    this.#activeQueues.forEach((queue, index) => {
      if (queue !== undefined) this.notify(index);
    });
  }

  // ---- Queues (spec 2.6, 4.1.4.3, 4.2.2) ----

  get queueSelect(): number {
    return this.#queueSelect;
  }

  set queueSelect(value: number) {
    this.#queueSelect = value >>> 0;
  }

  /** Maximum size of the selected queue; 0 when it does not exist. */
  readQueueMaxSize(): number {
    return this.device.queueSizes[this.#queueSelect] ?? 0;
  }

  /** Size of the selected queue (its maximum until the driver writes one); 0 if none. */
  readQueueSize(): number {
    return this.#selected()?.size ?? 0;
  }

  /** Sets the selected queue's size; checked (power of two, <= maximum) on activation. */
  writeQueueSize(value: number): void {
    const queue = this.#writableQueue();
    if (queue) queue.size = value & 0xffff;
  }

  readQueueReady(): boolean {
    return this.#selected()?.ready ?? false;
  }

  /**
   * Enables or disables the selected queue before DRIVER_OK (virtio-mmio drivers write 0
   * when they tear a queue down; a live queue cannot stop without VIRTIO_F_RING_RESET).
   */
  writeQueueReady(ready: boolean): void {
    const queue = this.#writableQueue();
    if (queue) queue.ready = ready;
  }

  /** Reads half (0 low, 1 high) of one of the selected queue's addresses. */
  readQueueAddress(field: QueueAddressField, half: 0 | 1): number {
    return this.#selected()?.address[field][half] ?? 0;
  }

  /** Writes half (0 low, 1 high) of one of the selected queue's addresses. */
  writeQueueAddress(field: QueueAddressField, half: 0 | 1, value: number): void {
    const queue = this.#writableQueue();
    if (queue) queue.address[field][half] = value >>> 0;
  }

  /** MSI-X vector of the selected queue (VIRTIO_MSI_NO_VECTOR if none or no queue). */
  readQueueMsixVector(): number {
    return this.#selected()?.msixVector ?? VIRTIO_MSI_NO_VECTOR;
  }

  /** Assigns a vector to the selected queue; one the function lacks becomes NO_VECTOR. */
  writeQueueMsixVector(value: number): void {
    const queue = this.#selected();
    if (queue) queue.msixVector = this.#checkVector(value);
  }

  /** The MSI-X vector of queue `index`, for the transport's interrupt path. */
  queueMsixVector(index: number): number {
    return this.#queues[index]?.msixVector ?? VIRTIO_MSI_NO_VECTOR;
  }

  get configMsixVector(): number {
    return this.#configMsixVector;
  }

  /** Assigns the configuration-change vector; one the function lacks becomes NO_VECTOR. */
  writeConfigMsixVector(value: number): void {
    this.#configMsixVector = this.#checkVector(value);
  }

  // ---- Notifications ----

  /** The driver notified queue `index` (register write or ioeventfd). */
  notify(index: number): void {
    if (this.#needsReset) return; // Already logged by fail(); the device waits for a reset.
    if (!this.#activeQueues) {
      this.#offence("notify-inactive", `the driver notified queue ${index} before DRIVER_OK`);
      return;
    }
    if (this.#activeQueues[index] === undefined) {
      this.#offence("notify-queue", `the driver notified queue ${index}, which is not enabled`);
      return;
    }
    this.#guard("notify", () => this.device.notify(index));
  }

  // ---- Device configuration (spec 2.5) ----

  /** The configuration generation; changes whenever the device configuration did. */
  get configGeneration(): number {
    return this.#configGeneration;
  }

  /** Reads device configuration; an access past `configSize` reads zeros. */
  readConfig(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (!this.#configInRange(offset, data.length, "read")) return;
    this.#guard("config read", () => this.device.readConfig(offset, data));
  }

  /** Writes device configuration; an access past `configSize` is ignored. */
  writeConfig(offset: number, data: Uint8Array): void {
    if (!this.#configInRange(offset, data.length, "write")) return;
    this.#guard("config write", () => this.device.writeConfig(offset, data));
  }

  /**
   * The device configuration changed (from the device or the host, e.g. a disk resize):
   * bumps the generation so a driver's multi-field read retries, and interrupts the driver
   * once it is running (before DRIVER_OK it reads the configuration fresh anyway).
   */
  configChanged(): void {
    this.#configGeneration = (this.#configGeneration + 1) & 0xff;
    if (this.#status & VIRTIO_STATUS.DRIVER_OK) this.#interrupt.configChanged();
  }

  /** Declares the device broken: DEVICE_NEEDS_RESET plus a configuration interrupt. */
  fail(reason: string): void {
    this.#log.log(`fail:${reason}`, `${this.device.name}: device needs reset: ${reason}`);
    if (this.#needsReset) return;
    this.#needsReset = true;
    if (this.#status & VIRTIO_STATUS.DRIVER_OK) this.#interrupt.configChanged();
  }

  // ---- Internals ----

  #activate(): void {
    if (!(this.#status & VIRTIO_STATUS.FEATURES_OK)) {
      this.fail("the driver set DRIVER_OK without FEATURES_OK");
      return;
    }
    if (this.#needsReset) return;
    const queues: Array<VirtQueue | undefined> = [];
    for (let i = 0; i < this.#queues.length; i++) {
      const registers = this.#queues[i];
      if (!registers.ready) {
        queues.push(undefined);
        continue;
      }
      const queue = this.#buildQueue(i, registers);
      if (!queue) return;
      queues.push(queue);
    }
    this.#start(queues);
  }

  /** Hands the device its queues and a context bound to the current epoch. */
  #start(queues: ReadonlyArray<VirtQueue | undefined>, restoring = false): void {
    const epoch = this.#epoch;
    const current = () => epoch === this.#epoch;
    const context: ActivateContext = {
      memory: this.#memory,
      features: this.features.accepted,
      queues,
      restoring,
      interrupt: {
        usedBuffer: (index) => {
          if (current()) this.#interrupt.usedBuffer(index);
        },
        configChanged: () => {
          if (current()) this.configChanged();
        },
      },
      fail: (reason) => {
        if (current()) this.fail(reason);
      },
    };
    this.#activeQueues = queues;
    this.#guard("activate", () => this.device.activate(context));
  }

  #buildQueue(index: number, registers: QueueRegisters): VirtQueue | undefined {
    const config = queueConfigOf(registers, this.device.queueSizes[index]);
    if (typeof config === "string") {
      this.fail(`queue ${index} ${config}`);
      return undefined;
    }
    try {
      return this.#createQueue(this.#memory, config, this.features.accepted);
    } catch (error) {
      this.fail(`queue ${index} cannot be used: ${messageOf(error)}`);
      return undefined;
    }
  }

  #selected(): QueueRegisters | undefined {
    return this.#queues[this.#queueSelect];
  }

  /** The selected queue if its configuration may still change (not enabled, no DRIVER_OK). */
  #writableQueue(): QueueRegisters | undefined {
    const queue = this.#selected();
    if (!queue) {
      this.#offence(
        "queue-select",
        `the driver configured queue ${this.#queueSelect}, which does not exist`,
      );
      return undefined;
    }
    if (this.#status & VIRTIO_STATUS.DRIVER_OK) {
      this.#offence("queue-live", "the driver changed a queue after DRIVER_OK (ignored)");
      return undefined;
    }
    return queue;
  }

  #checkVector(value: number): number {
    value &= 0xffff;
    return value < this.#msixVectors ? value : VIRTIO_MSI_NO_VECTOR;
  }

  #configInRange(offset: number, length: number, access: string): boolean {
    if (offset >= 0 && offset + length <= this.device.configSize) return true;
    this.#offence(
      `config-${access}`,
      `the driver tried to ${access} ${length} configuration bytes at ${offset} past ${this.device.configSize}`,
    );
    return false;
  }

  /** Runs device code; an exception (a device bug) breaks the device, not the VMM. */
  #guard(what: string, action: () => void): void {
    try {
      action();
    } catch (error) {
      this.fail(`${what} threw: ${messageOf(error)}`);
    }
  }

  #offence(kind: string, message: string): void {
    this.#log.log(kind, `${this.device.name}: ${message}`);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
