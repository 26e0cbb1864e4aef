/**
 * virtio-net on a Linux tap (virtio 1.2, 5.1): queue 0 receives, queue 1 transmits.
 * Frames move with readv/writev straight between the tap fd and the guest's buffers (the
 * tap speaks the same 12-byte virtio_net_hdr), offloads are offered only when the tap
 * accepted them, and mergeable receive buffers (MRG_RXBUF) spread a large frame over
 * several chains. With no receive buffers the tap is left unread (frames queue in the
 * kernel) until the driver posts more.
 *
 * @module
 */

import type { DeviceRateLimiter } from "./rate_limiter.ts";
import { errno } from "../../ffi/libc.ts";
import { EAGAIN } from "../../ffi/errno.ts";
import { IovecArray, readv, writev } from "../../ffi/iovec.ts";
import { parseMac } from "../../common/validators.ts";
import { ReadinessGate } from "../net/readiness_gate.ts";
import { rarpAnnouncement } from "../net/announce.ts";
import type { ActivateContext, EventSource, VirtioDevice } from "./virtio_device.ts";
import { VIRTIO_F, VIRTIO_ID } from "./virtio_device.ts";
import { ChainBuffers, type VirtQueue } from "./queue_types.ts";
import { limiterState } from "./device_persist.ts";
import { parseNetState, type VirtioNetState } from "./net_state.ts";

export type { VirtioNetState } from "./net_state.ts";
import {
  MAX_FRAME,
  MAX_PLAIN_FRAME,
  NET_F,
  NET_HEADER_SIZE,
  NUM_BUFFERS_OFFSET,
  offloadFeatures,
  receivesLargeFrames,
  tapOffloadsFor,
  txHeaderProblem,
} from "./net_header.ts";

const RX_QUEUE = 0;
const TX_QUEUE = 1;
const CONFIG_SIZE = 8;
const VIRTIO_NET_S_LINK_UP = 1;
/** Frames received per wake-up before yielding to the event loop (which calls again). */
const RX_BUDGET = 256;

/** What virtio-net needs of a tap (devices/net/tap.ts `Tap`). */
export interface NetTap {
  readonly name: string;
  readonly fd: number;
  readonly supportedOffloads: number;
  setOffloads(flags: number): void;
  close?(): void;
}

/** What virtio-net needs of a rate limiter (one per direction). */
export type NetRateLimiter = DeviceRateLimiter;

/** Options of a virtio-net device. */
export interface VirtioNetOptions {
  tap: NetTap;
  /** The MAC address, "52:54:00:12:34:56" style; a random local one by default. */
  mac?: string;
  /** Maximum size of both queues (a power of two); 256 by default. */
  queueSize?: number;
  /** Offer VIRTIO_NET_F_MRG_RXBUF; true by default. */
  mergeableRxBuffers?: boolean;
  rxRateLimiter?: NetRateLimiter;
  txRateLimiter?: NetRateLimiter;
  /** Where offences by the driver are reported (once each); console.warn by default. */
  log?: (message: string) => void;
}

/** Frame and byte counters. */
export interface NetCounters {
  rxFrames: number;
  rxBytes: number;
  /** Frames read from the tap that did not fit the guest's buffers. */
  rxDropped: number;
  txFrames: number;
  txBytes: number;
  /** Frames refused for a bad header or by the kernel. */
  txDropped: number;
}

/** Parses "aa:bb:cc:dd:ee:ff" into 6 bytes (common/validators.ts: unicast, not zero). */
export { parseMac };

function randomMac(): Uint8Array {
  const mac = crypto.getRandomValues(new Uint8Array(6));
  mac[0] = (mac[0] & 0xfe) | 0x02; // unicast, locally administered
  return mac;
}

/** A virtio-net device backed by a tap. */
export class VirtioNet implements VirtioDevice {
  readonly type = VIRTIO_ID.NET;
  readonly name: string;
  readonly queueSizes: readonly number[];
  readonly features: bigint;
  readonly configSize = CONFIG_SIZE;

  readonly #tap: NetTap;
  readonly #config = new Uint8Array(CONFIG_SIZE);
  readonly #gate: ReadinessGate;
  /** The transmitted frame's buffers (one entry stays free, as on receive). */
  readonly #iovecs = new IovecArray();
  /**
   * The held receive chains' writable buffers, oldest first, then the overflow detector:
   * kept across frames (a delivered frame's chains are dropped from the front, new chains
   * appended), since with mergeable buffers every read offers ~43 chains.
   */
  readonly #rxList = new IovecArray();
  /** Held chains whose buffers are all in `#rxList`, and their bytes. */
  #rxListed = 0;
  #rxListedCapacity = 0;
  /** Whether `#rxList` holds part of a chain (too many buffers): it is rebuilt each frame. */
  #rxListPartial = false;
  /** Whether `#rxList` ends with the overflow detector. */
  #rxOverflowListed = false;
  /** Writable bytes of all held chains. */
  #rxHeldCapacity = 0;
  readonly #header = new Uint8Array(NET_HEADER_SIZE);
  /**
   * Catches the part of a frame that does not fit the guest's buffers: the tap reports
   * only what it copied, so a frame that overflows into here is known to be too large.
   */
  readonly #overflow = new Uint8Array(NET_HEADER_SIZE + MAX_FRAME);
  readonly #rxLimiter?: NetRateLimiter;
  readonly #txLimiter?: NetRateLimiter;
  readonly #log: (message: string) => void;
  readonly #logged = new Set<string>();
  readonly #counters: NetCounters = {
    rxFrames: 0,
    rxBytes: 0,
    rxDropped: 0,
    txFrames: 0,
    txBytes: 0,
    txDropped: 0,
  };
  #context?: ActivateContext;
  #closed = false;
  #mergeable = false;
  #rxNeed = 0;
  /**
   * Receive chains popped but not yet used, oldest first (they keep their place across
   * wake-ups): a ring of reusable lists, as many as the queue has descriptors.
   */
  #rxRing: ChainBuffers[] = [];
  #rxFirst = 0;
  #rxHeld = 0;
  /** The transmit chain being served (reused for every frame). */
  readonly #txChain = new ChainBuffers();
  /** Whether `#txChain` is held back by the rate limiter. */
  #txHeld = false;
  #rxTimer?: ReturnType<typeof setTimeout>;
  /** Length of a frame read into the held chains that the rx limiter has not admitted yet. */
  #heldRxLength: number | undefined;
  #txTimer?: ReturnType<typeof setTimeout>;

  constructor(options: VirtioNetOptions) {
    this.#tap = options.tap;
    this.name = `virtio-net ${options.tap.name}`;
    const size = options.queueSize ?? 256;
    if (!Number.isInteger(size) || size < 2 || size > 32768 || (size & (size - 1)) !== 0) {
      throw new RangeError(`Invalid virtio-net queue size ${size}: use a power of two up to 32768`);
    }
    this.queueSizes = [size, size];
    this.features = VIRTIO_F.VERSION_1 | VIRTIO_F.RING_INDIRECT_DESC | VIRTIO_F.RING_EVENT_IDX |
      NET_F.MAC | NET_F.STATUS | offloadFeatures(options.tap.supportedOffloads) |
      (options.mergeableRxBuffers === false ? 0n : NET_F.MRG_RXBUF);
    this.#config.set(options.mac === undefined ? randomMac() : parseMac(options.mac));
    this.#setStatus(VIRTIO_NET_S_LINK_UP);
    this.#rxLimiter = options.rxRateLimiter;
    this.#txLimiter = options.txRateLimiter;
    this.#log = options.log ?? ((message) => console.warn(message));
    this.#gate = new ReadinessGate(options.tap.fd);
  }

  /** The name of the tap behind the device. */
  get tapName(): string {
    return this.#tap.name;
  }

  /** The MAC address as "aa:bb:cc:dd:ee:ff". */
  get mac(): string {
    return [...this.#config.subarray(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join(":");
  }

  /** A snapshot of the counters. */
  get counters(): NetCounters {
    return { ...this.#counters };
  }

  /** Sets the link status the driver sees and tells it the configuration changed. */
  setLinkUp(up: boolean): void {
    this.#setStatus(up ? VIRTIO_NET_S_LINK_UP : 0);
    this.#context?.interrupt.configChanged();
  }

  /**
   * Announces the guest's MAC on the tap's network (a broadcast RARP, as QEMU sends
   * after a migration) so that bridges and switches learn its new port; true if the tap
   * took the frame. Not a guest frame: the counters do not change.
   */
  announce(): boolean {
    if (this.#closed) return false; // its fd number may belong to another file by now
    const frame = new Uint8Array(NET_HEADER_SIZE + 60); // a zero header: no offloads
    frame.set(rarpAnnouncement(this.#config.subarray(0, 6)), NET_HEADER_SIZE);
    const iovecs = new IovecArray();
    iovecs.add(frame);
    return writev(this.#tap.fd, iovecs) === frame.length;
  }

  /** MAC, link status, counters and rate limiters, for the transport's state. */
  save(): VirtioNetState {
    return {
      version: 1,
      mac: this.mac,
      linkUp: (new DataView(this.#config.buffer).getUint16(6, true) & VIRTIO_NET_S_LINK_UP) !== 0,
      counters: this.counters,
      rxRateLimiter: limiterState(this.#rxLimiter),
      txRateLimiter: limiterState(this.#txLimiter),
    };
  }

  /** Checks a saved state (untrusted) and returns the function that applies it. */
  prepareRestore(state: unknown, path: string): () => void {
    const saved = parseNetState(state, path, this.#rxLimiter, this.#txLimiter);
    return () => {
      this.#config.set(saved.mac);
      this.#setStatus(saved.linkUp ? VIRTIO_NET_S_LINK_UP : 0);
      Object.assign(this.#counters, saved.counters);
      saved.commitLimiters();
    };
  }

  readConfig(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset < 0 || offset >= CONFIG_SIZE) return;
    data.set(this.#config.subarray(offset, Math.min(CONFIG_SIZE, offset + data.length)));
  }

  writeConfig(_offset: number, _data: Uint8Array): void {
    // mac and status are read-only for a VERSION_1 driver.
  }

  activate(context: ActivateContext): void {
    this.#context = context;
    this.#mergeable = (context.features & NET_F.MRG_RXBUF) !== 0n;
    // With mergeable buffers, read only when a whole frame of the largest size can land.
    this.#rxNeed = NET_HEADER_SIZE +
      (receivesLargeFrames(context.features) ? MAX_FRAME : MAX_PLAIN_FRAME);
    this.#rxRing = new Array(context.queues[RX_QUEUE]?.size ?? 0);
    this.#forgetRxChains();
    try {
      this.#tap.setOffloads(tapOffloadsFor(context.features & this.features));
    } catch (error) {
      context.fail(`${this.name}: cannot set tap offloads: ${(error as Error).message}`);
      return;
    }
    if (context.restoring) return; // served from the resume kick
    this.#processRx();
    this.#processTx();
  }

  notify(queueIndex: number): void {
    if (this.#context === undefined) return;
    if (queueIndex === RX_QUEUE) this.#processRx();
    else if (queueIndex === TX_QUEUE) this.#processTx();
  }

  reset(): void {
    this.#context = undefined;
    this.#forgetRxChains();
    this.#heldRxLength = undefined;
    this.#txHeld = false;
    clearTimeout(this.#rxTimer);
    clearTimeout(this.#txTimer);
    this.#rxTimer = this.#txTimer = undefined;
    this.#gate.close();
    try {
      this.#tap.setOffloads(0);
    } catch {
      // The tap may already be closed; nothing is offloaded to a reset device anyway.
    }
  }

  eventSources(): EventSource[] {
    return [{ fd: this.#gate.fd, onReadable: () => this.#processRx() }];
  }

  close(): void {
    this.#closed = true;
    this.reset();
    this.#gate.dispose();
    this.#tap.close?.();
  }

  #setStatus(status: number): void {
    new DataView(this.#config.buffer).setUint16(6, status, true);
  }

  #processRx(): void {
    const context = this.#context;
    const queue = context?.queues[RX_QUEUE];
    if (context === undefined || queue === undefined || this.#rxTimer !== undefined) {
      this.#gate.close();
      return;
    }
    let delivered = false;
    // A frame the limiter refused waits in the held chains, unpublished, until it admits it.
    const held = this.#heldRxLength;
    if (held !== undefined && this.#admitRx(held)) {
      this.#heldRxLength = undefined;
      this.#deliverRx(queue, held);
      delivered = true;
    }
    for (let frames = 0; frames < RX_BUDGET && this.#heldRxLength === undefined; frames++) {
      if (!this.#gatherRxChains(queue, context)) {
        this.#gate.close();
        break;
      }
      this.#gate.open();
      const capacity = this.#rxIovecs();
      const length = readv(this.#tap.fd, this.#rxList);
      if (length < 0) {
        const code = errno();
        if (code !== EAGAIN) {
          this.#logOnce(`${this.#tap.name}: readv from the tap failed (errno ${code})`);
        }
        break;
      }
      if (length > capacity || length < NET_HEADER_SIZE) {
        this.#counters.rxDropped++;
        continue;
      }
      if (!this.#admitRx(length)) {
        this.#heldRxLength = length;
        break;
      }
      this.#deliverRx(queue, length);
      delivered = true;
    }
    if (delivered && queue.needsInterrupt()) context.interrupt.usedBuffer(RX_QUEUE);
  }

  /**
   * Whether the receive limiter lets a `length`-byte frame (header included) through; if
   * not, reception stops (the tap's readability no longer wakes it) and the limiter's retry
   * timer alone resumes it.
   */
  #admitRx(length: number): boolean {
    if (this.#rxLimiter === undefined || this.#rxLimiter.consume(length - NET_HEADER_SIZE)) {
      return true;
    }
    this.#gate.close();
    this.#rxTimer = setTimeout(() => {
      this.#rxTimer = undefined;
      this.#processRx();
    }, this.#rxLimiter.retryDelayMs());
    return false;
  }

  /** Drops the held receive chains (the queue's state decides what the driver gets back). */
  #forgetRxChains(): void {
    this.#rxFirst = this.#rxHeld = this.#rxHeldCapacity = 0;
    this.#rxList.clear();
    this.#rxListed = this.#rxListedCapacity = 0;
    this.#rxListPartial = this.#rxOverflowListed = false;
  }

  /** Held receive chain `i` (0 is the oldest). */
  #rxAt(i: number): ChainBuffers {
    return this.#rxRing[(this.#rxFirst + i) % this.#rxRing.length];
  }

  /** Pops receive chains until a frame can land; false when the driver must post more. */
  #gatherRxChains(queue: VirtQueue, context: ActivateContext): boolean {
    let capacity = this.#rxHeldCapacity;
    const ring = this.#rxRing;
    while (
      (this.#mergeable ? capacity < this.#rxNeed : this.#rxHeld === 0) &&
      this.#rxHeld < ring.length
    ) {
      const slot = (this.#rxFirst + this.#rxHeld) % ring.length;
      const chain = ring[slot] ??= new ChainBuffers();
      if (!this.#popInto(queue, context, chain)) break;
      if (chain.writableLength < NET_HEADER_SIZE || chain.readableCount > 0) {
        this.#logOnce(`${this.name}: receive chain without a writable header; returned unused`);
        queue.push(chain.head, 0);
        continue;
      }
      this.#rxHeld++;
      capacity += chain.writableLength;
    }
    this.#rxHeldCapacity = capacity;
    if (!this.#mergeable) return this.#rxHeld > 0;
    // A ring too small for the largest frame still takes full-sized plain frames.
    return capacity >= this.#rxNeed || capacity >= NET_HEADER_SIZE + MAX_PLAIN_FRAME;
  }

  /**
   * Brings `#rxList` up to date: the buffers of the held chains a frame may land in (all
   * of them with mergeable buffers, else the oldest), then the overflow detector. Returns
   * the bytes the chains offer.
   */
  #rxIovecs(): number {
    const list = this.#rxList;
    if (this.#rxListPartial) {
      list.clear();
      this.#rxListed = this.#rxListedCapacity = 0;
      this.#rxListPartial = false;
    } else if (this.#rxOverflowListed) {
      list.truncate(list.count - 1); // the overflow entry goes back at the end
    }
    const chains = this.#mergeable ? this.#rxHeld : Math.min(1, this.#rxHeld);
    while (this.#rxListed < chains && !this.#rxListPartial) {
      const chain = this.#rxAt(this.#rxListed);
      for (let i = chain.readableCount; i < chain.count; i++) {
        const length = chain.lengths[i];
        if (!list.tryAddRange(chain.sources[i], chain.offsets[i], length, 1)) {
          this.#rxListPartial = true;
          break;
        }
        this.#rxListedCapacity += length;
      }
      this.#rxListed++;
    }
    list.tryAddRange(this.#overflow, 0, this.#overflow.length);
    this.#rxOverflowListed = true;
    return this.#rxListedCapacity;
  }

  /** Hands the chains holding a `length`-byte frame (header included) to the driver. */
  #deliverRx(queue: VirtQueue, length: number): void {
    let count = 0;
    for (let left = length; left > 0; count++) left -= this.#rxAt(count).writableLength;
    // The tap leaves num_buffers alone; VERSION_1 requires it (1 without MRG_RXBUF).
    writeU16(this.#rxAt(0), NUM_BUFFERS_OFFSET, count);
    let remaining = length;
    let entries = 0;
    let listedBytes = 0;
    for (let i = 0; i < count; i++) {
      const chain = this.#rxAt(0);
      const take = Math.min(chain.writableLength, remaining);
      queue.push(chain.head, take);
      remaining -= take;
      entries += chain.count - chain.readableCount;
      listedBytes += chain.writableLength;
      this.#rxFirst = (this.#rxFirst + 1) % this.#rxRing.length;
      this.#rxHeld--;
      this.#rxHeldCapacity -= chain.writableLength;
    }
    // The frame landed in listed chains only: drop them from the front of the list.
    if (this.#rxListPartial) {
      this.#rxList.clear();
      this.#rxListed = this.#rxListedCapacity = 0;
      this.#rxListPartial = false;
    } else {
      if (this.#rxOverflowListed) this.#rxList.truncate(this.#rxList.count - 1);
      this.#rxList.dropFront(entries);
      this.#rxListed -= count;
      this.#rxListedCapacity -= listedBytes;
    }
    this.#rxOverflowListed = false;
    this.#counters.rxFrames++;
    this.#counters.rxBytes += length - NET_HEADER_SIZE;
  }

  #processTx(): void {
    const context = this.#context;
    const queue = context?.queues[TX_QUEUE];
    if (context === undefined || queue === undefined || this.#txTimer !== undefined) return;
    const chain = this.#txChain;
    let completed = false;
    for (;;) {
      if (!this.#txHeld && !this.#popInto(queue, context, chain)) break;
      this.#txHeld = false;
      const frameLength = chain.readableLength - NET_HEADER_SIZE;
      if (this.#txLimiter !== undefined && !this.#txLimiter.consume(Math.max(0, frameLength))) {
        this.#txHeld = true;
        this.#txTimer = setTimeout(() => {
          this.#txTimer = undefined;
          this.#processTx();
        }, this.#txLimiter.retryDelayMs());
        break;
      }
      this.#transmit(chain, context.features);
      queue.push(chain.head, 0);
      completed = true;
    }
    if (completed && queue.needsInterrupt()) context.interrupt.usedBuffer(TX_QUEUE);
  }

  #transmit(chain: ChainBuffers, features: bigint): void {
    const frameLength = chain.readableLength - NET_HEADER_SIZE;
    const problem = frameLength < 0
      ? "chain shorter than the virtio-net header"
      : (readHeader(chain, this.#header), txHeaderProblem(this.#header, frameLength, features));
    if (problem !== undefined) {
      this.#logOnce(`${this.name}: transmit frame dropped: ${problem}`);
      this.#counters.txDropped++;
      return;
    }
    const iovecs = this.#iovecs;
    iovecs.clear();
    for (let i = 0; i < chain.readableCount; i++) {
      if (!iovecs.tryAddRange(chain.sources[i], chain.offsets[i], chain.lengths[i], 1)) {
        this.#logOnce(`${this.name}: transmit frame dropped: too many buffers`);
        this.#counters.txDropped++;
        return;
      }
    }
    const written = writev(this.#tap.fd, iovecs);
    if (written < 0) {
      // EAGAIN (tap queue full) and EINVAL (the kernel refused the header) both drop.
      this.#counters.txDropped++;
      return;
    }
    this.#counters.txFrames++;
    this.#counters.txBytes += frameLength;
  }

  #popInto(queue: VirtQueue, context: ActivateContext, out: ChainBuffers): boolean {
    try {
      return queue.popInto(out);
    } catch (error) {
      context.fail(`${this.name}: ${(error as Error).message}`);
      this.#context = undefined;
      this.#gate.close();
      return false;
    }
  }

  #logOnce(message: string): void {
    if (this.#logged.has(message)) return;
    this.#logged.add(message);
    this.#log(message);
  }
}

/** Copies the first bytes of `chain`'s readable buffers into `header` (a byte loop: no view). */
function readHeader(chain: ChainBuffers, header: Uint8Array): void {
  let copied = 0;
  for (let i = 0; i < chain.readableCount && copied < header.length; i++) {
    const source = chain.sources[i];
    const offset = chain.offsets[i];
    const take = Math.min(chain.lengths[i], header.length - copied);
    for (let j = 0; j < take; j++) header[copied + j] = source[offset + j];
    copied += take;
  }
}

/** Writes a little-endian u16 at `at` of `chain`'s writable bytes (it may span buffers). */
function writeU16(chain: ChainBuffers, at: number, value: number): void {
  let position = 0;
  for (let i = chain.readableCount; i < chain.count && position < at + 2; i++) {
    const length = chain.lengths[i];
    for (let k = 0; k < 2; k++) {
      const inside = at + k - position;
      if (inside >= 0 && inside < length) {
        chain.sources[i][chain.offsets[i] + inside] = k === 0 ? value & 0xff : value >> 8;
      }
    }
    position += length;
  }
}
