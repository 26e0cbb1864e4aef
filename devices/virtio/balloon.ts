/**
 * virtio-balloon (virtio 1.2, 5.5): the host sets a target number of 4 KiB pages, the
 * driver gives pages back through the inflate queue and the host drops them with
 * madvise(MADV_DONTNEED) so its RSS falls; deflated pages come back on first touch. The
 * stats queue reports guest memory statistics when the host asks.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";
import { isPageAligned, madviseBytes } from "../../ffi/mman.ts";
import { MADV_DONTNEED } from "../../ffi/libc_symbols.ts";
import type { GuestMemory } from "../../core/guest_memory.ts";
import type { ActivateContext, VirtioDevice } from "./virtio_device.ts";
import { VIRTIO_F, VIRTIO_ID } from "./virtio_device.ts";
import type { DescriptorChain, VirtQueue } from "./queue_types.ts";
import { formatU64, StateError, StateReader, type VersionedState } from "../../common/persist.ts";
import { MAX_COUNTER, readNullable } from "../state_fields.ts";

/**
 * virtio-balloon's own state: the target the host set, the size the guest reported, the
 * pages given back so far and the guest's last statistics. The stats buffer the device
 * holds between requests is handed back to the queue at a snapshot, and the restored
 * device takes it again (re-reading the same statistics) on the resume kick.
 */
export interface VirtioBalloonState extends VersionedState {
  readonly version: 1;
  readonly targetPages: number;
  readonly actualPages: number;
  readonly inflatedPages: number;
  readonly discardFailures: number;
  /** The last statistics: when (ms since 1970) and [tag, u64 string] pairs; null if none. */
  readonly stats:
    | { readonly receivedAt: number; readonly values: ReadonlyArray<[number, string]> }
    | null;
}

/** Most statistics entries a stats buffer carries (see parseStats). */
const MAX_STAT_ENTRIES = 64;

/** virtio-balloon feature bits. */
export const BALLOON_F = {
  MUST_TELL_HOST: 1n << 0n,
  STATS_VQ: 1n << 1n,
  DEFLATE_ON_OOM: 1n << 2n,
} as const;

/** Statistics tags (virtio 1.2, 5.5.6.3). */
export const BALLOON_STAT = {
  SWAP_IN: 0,
  SWAP_OUT: 1,
  MAJFLT: 2,
  MINFLT: 3,
  MEMFREE: 4,
  MEMTOT: 5,
  AVAIL: 6,
  CACHES: 7,
  HTLB_PGALLOC: 8,
  HTLB_PGFAIL: 9,
} as const;

const INFLATE_QUEUE = 0;
const DEFLATE_QUEUE = 1;
const STATS_QUEUE = 2;
const PAGE_SIZE = 4096;
const CONFIG_SIZE = 8;
const STAT_ENTRY_SIZE = 10;

/** Options of a virtio-balloon device. */
export interface VirtioBalloonOptions {
  /** Guest RAM size in bytes: the target can never exceed it. */
  memorySize: number;
  /** Maximum queue size; 256 by default. */
  queueSize?: number;
  /** Where offences by the driver are reported (once each); console.warn by default. */
  log?: (message: string) => void;
}

/** The last statistics the driver reported. */
export interface BalloonStats {
  /** Milliseconds since the epoch when they arrived. */
  receivedAt: number;
  /** Value by tag (see BALLOON_STAT); unknown tags are kept too. */
  values: Map<number, bigint>;
}

/** A bad host-side balloon request (the target). */
export class BalloonError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** A virtio-balloon device. */
export class VirtioBalloon implements VirtioDevice {
  readonly type = VIRTIO_ID.BALLOON;
  readonly name = "virtio-balloon";
  readonly queueSizes: readonly number[];
  readonly features = VIRTIO_F.VERSION_1 | BALLOON_F.STATS_VQ | BALLOON_F.DEFLATE_ON_OOM;
  readonly configSize = CONFIG_SIZE;

  readonly #config = new Uint8Array(CONFIG_SIZE);
  readonly #configView = new DataView(this.#config.buffer);
  readonly #maxPages: number;
  readonly #log: (message: string) => void;
  readonly #logged = new Set<string>();
  #context?: ActivateContext;
  #inflatedPages = 0;
  #discardFailures = 0;
  #stats?: BalloonStats;
  /** The stats buffer the driver handed over; returning it asks for fresh stats. */
  #statsChain?: DescriptorChain;

  constructor(options: VirtioBalloonOptions) {
    const size = options.queueSize ?? 256;
    if (!Number.isInteger(size) || size < 1 || size > 32768 || (size & (size - 1)) !== 0) {
      throw new RangeError(`Invalid balloon queue size ${size}: use a power of two up to 32768`);
    }
    this.queueSizes = [size, size, size];
    this.#maxPages = Math.floor(options.memorySize / PAGE_SIZE);
    this.#log = options.log ?? ((message) => console.warn(message));
  }

  /** The target balloon size in pages (config num_pages). */
  get targetPages(): number {
    return this.#configView.getUint32(0, true);
  }

  /** The size the driver reports (config actual). */
  get actualPages(): number {
    return this.#configView.getUint32(4, true);
  }

  /** Pages currently given to the host by inflation, as counted by this device. */
  get inflatedPages(): number {
    return this.#inflatedPages;
  }

  /** The last statistics the driver reported, if any. */
  get stats(): BalloonStats | undefined {
    return this.#stats;
  }

  /** Asks the driver to hold `pages` 4 KiB pages in the balloon. */
  setTarget(pages: number): void {
    if (!Number.isSafeInteger(pages) || pages < 0 || pages > this.#maxPages) {
      throw new BalloonError(
        `Invalid balloon target ${pages}: use a page count from 0 to ${this.#maxPages} (guest RAM)`,
      );
    }
    this.#configView.setUint32(0, pages, true);
    this.#context?.interrupt.configChanged();
  }

  /** Returns the stats buffer to the driver so it sends fresh statistics; false if it holds none. */
  requestStats(): boolean {
    const context = this.#context;
    const queue = context?.queues[STATS_QUEUE];
    const chain = this.#statsChain;
    if (context === undefined || queue === undefined || chain === undefined) return false;
    this.#statsChain = undefined;
    queue.push(chain.head, 0);
    if (queue.needsInterrupt()) context.interrupt.usedBuffer(STATS_QUEUE);
    return true;
  }

  /** Target, actual and inflated pages and the last statistics, for the transport's state. */
  save(): VirtioBalloonState {
    const stats = this.#stats;
    return {
      version: 1,
      targetPages: this.targetPages,
      actualPages: this.actualPages,
      inflatedPages: this.#inflatedPages,
      discardFailures: this.#discardFailures,
      stats: stats === undefined ? null : {
        receivedAt: stats.receivedAt,
        values: [...stats.values].map(([tag, value]) => [tag, formatU64(value)]),
      },
    };
  }

  /** Checks a saved state (untrusted) and returns the function that applies it. */
  prepareRestore(state: unknown, path: string): () => void {
    const r = new StateReader(state, path);
    r.version([1]);
    const targetPages = r.integer("targetPages", 0, this.#maxPages);
    const actualPages = r.integer("actualPages", 0, 0xffff_ffff);
    const inflatedPages = r.integer("inflatedPages", 0, MAX_COUNTER);
    const discardFailures = r.integer("discardFailures", 0, MAX_COUNTER);
    const stats = readNullable(r, "stats", (name) => {
      const s = r.object(name);
      const values = new Map<number, bigint>();
      s.array("values", MAX_STAT_ENTRIES, (entry, entryPath) => {
        if (!Array.isArray(entry) || entry.length !== 2) {
          throw new StateError(entryPath, "expected a [tag, value] pair");
        }
        const pair = new StateReader({ tag: entry[0], value: entry[1] }, entryPath);
        const tag = pair.integer("tag", 0, 0xffff);
        if (values.has(tag)) throw new StateError(entryPath, `tag ${tag} appears twice`);
        values.set(tag, pair.u64("value"));
      });
      return { receivedAt: s.integer("receivedAt", 0, Number.MAX_SAFE_INTEGER), values };
    });
    return () => {
      this.#configView.setUint32(0, targetPages, true);
      this.#configView.setUint32(4, actualPages, true);
      this.#inflatedPages = inflatedPages;
      this.#discardFailures = discardFailures;
      this.#stats = stats;
    };
  }

  readConfig(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset < 0 || offset >= CONFIG_SIZE) return;
    data.set(this.#config.subarray(offset, Math.min(CONFIG_SIZE, offset + data.length)));
  }

  writeConfig(offset: number, data: Uint8Array): void {
    // Only `actual` (bytes 4..7) belongs to the driver.
    for (let i = 0; i < data.length; i++) {
      const at = offset + i;
      if (at >= 4 && at < CONFIG_SIZE) this.#config[at] = data[i];
    }
  }

  activate(context: ActivateContext): void {
    this.#context = context;
    if (context.restoring) return; // served from the resume kick
    for (let q = 0; q < 3; q++) this.notify(q);
  }

  notify(queueIndex: number): void {
    const context = this.#context;
    const queue = context?.queues[queueIndex];
    if (context === undefined || queue === undefined) return;
    if (queueIndex === STATS_QUEUE) {
      if ((context.features & BALLOON_F.STATS_VQ) !== 0n) this.#takeStats(queue, context);
      return;
    }
    let completed = false;
    for (;;) {
      const chain = this.#pop(queue, context);
      if (chain === undefined) break;
      const pfns = this.#pfns(chain);
      if (queueIndex === INFLATE_QUEUE) this.#inflate(pfns, context.memory);
      else if (queueIndex === DEFLATE_QUEUE) this.#deflate(pfns, context.memory);
      queue.push(chain.head, 0);
      completed = true;
    }
    if (completed && queue.needsInterrupt()) context.interrupt.usedBuffer(queueIndex);
  }

  reset(): void {
    this.#context = undefined;
    this.#statsChain = undefined;
    this.#configView.setUint32(4, 0, true);
  }

  close(): void {
    this.reset();
  }

  /** The PFNs (u32 each) of a chain's readable buffers, trailing partial entries ignored. */
  #pfns(chain: DescriptorChain): number[] {
    const pfns: number[] = [];
    for (const { bytes } of chain.readable) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let at = 0; at + 4 <= bytes.length; at += 4) pfns.push(view.getUint32(at, true));
      if (bytes.length % 4 !== 0) {
        this.#logOnce(`${this.name}: PFN buffer length is not a multiple of 4`);
      }
    }
    if (chain.writable.length > 0) {
      this.#logOnce(`${this.name}: writable buffers on a PFN queue ignored`);
    }
    return pfns;
  }

  #inflate(pfns: number[], memory: GuestMemory): void {
    // Sorted runs of adjacent pages become one madvise call each.
    const valid = this.#validPages(pfns, memory).sort((a, b) => a - b);
    let runStart = 0;
    for (let i = 1; i <= valid.length; i++) {
      if (
        i < valid.length && valid[i] === valid[i - 1] + 1 &&
        sameRegion(memory, valid[runStart], valid[i])
      ) {
        continue;
      }
      if (i > runStart) this.#discard(memory, valid[runStart], i - runStart);
      runStart = i;
    }
    this.#inflatedPages += valid.length;
  }

  #deflate(pfns: number[], memory: GuestMemory): void {
    // Nothing to do: a page the host dropped comes back zeroed when the guest touches it.
    const count = this.#validPages(pfns, memory).length;
    this.#inflatedPages = Math.max(0, this.#inflatedPages - count);
  }

  #validPages(pfns: number[], memory: GuestMemory): number[] {
    const valid = [];
    const seen = new Set<number>();
    for (const pfn of pfns) {
      if (!memory.contains(pfn * PAGE_SIZE, PAGE_SIZE)) {
        this.#logOnce(
          `${this.name}: PFNs outside guest RAM ignored (first: 0x${pfn.toString(16)})`,
          "pfn",
        );
      } else if (!seen.has(pfn)) {
        seen.add(pfn);
        valid.push(pfn);
      }
    }
    return valid;
  }

  #discard(memory: GuestMemory, firstPfn: number, pages: number): void {
    const bytes = memory.slice(firstPfn * PAGE_SIZE, pages * PAGE_SIZE);
    // Plain-array guest memory (tests, tools) is not page-aligned host memory: skip it.
    if (!isPageAligned(bytes)) {
      this.#logOnce(`${this.name}: guest RAM is not page-aligned host memory; pages not returned`);
      return;
    }
    if (madviseBytes(bytes, MADV_DONTNEED) !== 0) {
      this.#discardFailures++;
      this.#logOnce(`${this.name}: madvise(MADV_DONTNEED) failed; pages not returned to the host`);
    }
  }

  #takeStats(queue: VirtQueue, context: ActivateContext): void {
    for (;;) {
      const chain = this.#pop(queue, context);
      if (chain === undefined) return;
      if (this.#statsChain !== undefined) {
        // The driver keeps one buffer outstanding; a second one replaces the first.
        queue.push(this.#statsChain.head, 0);
      }
      this.#statsChain = chain;
      this.#stats = { receivedAt: Date.now(), values: parseStats(chain) };
    }
  }

  #pop(queue: VirtQueue, context: ActivateContext): DescriptorChain | undefined {
    try {
      return queue.pop();
    } catch (error) {
      context.fail(`${this.name}: ${(error as Error).message}`);
      this.#context = undefined;
      return undefined;
    }
  }

  /** Logs `message` the first time something of kind `key` (default: the message) happens. */
  #logOnce(message: string, key = message): void {
    if (this.#logged.has(key)) return;
    this.#logged.add(key);
    this.#log(message);
  }
}

/** Parses packed (tag u16, value u64) entries from a stats chain. */
function parseStats(chain: DescriptorChain): Map<number, bigint> {
  const bytes = new Uint8Array(Math.min(chain.readableLength, 64 * STAT_ENTRY_SIZE));
  let at = 0;
  for (const buffer of chain.readable) {
    if (at === bytes.length) break;
    const take = Math.min(buffer.bytes.length, bytes.length - at);
    bytes.set(buffer.bytes.subarray(0, take), at);
    at += take;
  }
  const view = new DataView(bytes.buffer);
  const values = new Map<number, bigint>();
  for (let off = 0; off + STAT_ENTRY_SIZE <= bytes.length; off += STAT_ENTRY_SIZE) {
    values.set(view.getUint16(off, true), view.getBigUint64(off + 2, true));
  }
  return values;
}

function sameRegion(memory: GuestMemory, first: number, last: number): boolean {
  return memory.contains(first * PAGE_SIZE, (last - first + 1) * PAGE_SIZE);
}
