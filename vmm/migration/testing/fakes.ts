/**
 * Test doubles for the migration state machines: an in-memory duplex link, a source
 * machine whose "guest" writes through a tracked `GuestMemory`, and a destination that
 * records what it was asked to do.
 *
 * @module
 */

import { DeviceDirtyBitmap, type RangeBitmap } from "../../../core/dirty_log.ts";
import { GuestMemory } from "../../../core/guest_memory.ts";
import { FrameReader, FrameWriter } from "../frames.ts";
import { MIGRATION_PAGE_SIZE, type PageBlock } from "../protocol.ts";
import type { MigrationTarget } from "../receiver.ts";
import { DEFAULT_CONVERGENCE } from "../convergence.ts";
import type { MigrationSource, SendOptions } from "../sender.ts";
import type { StartRequest } from "../start_request.ts";

/**
 * Send options for tests over `link()`: no bandwidth limit, and converging only on an
 * empty dirty set (a zero downtime budget), so the rounds are predictable.
 */
export const TEST_SEND_OPTIONS: SendOptions = {
  ...DEFAULT_CONVERGENCE,
  offline: false,
  bandwidth: 0,
  completeTimeoutMs: 2_000,
  maxDowntimeMs: 0,
};

/** The START request of domain "web1" whose guest RAM is `ranges`. */
export function testStart(
  ranges: readonly { start: number; size: number }[],
  config: Record<string, unknown> = {},
): {
  domain: string;
  config: Record<string, unknown>;
  ram: { guestAddress: number; size: number }[];
  disks: never[];
} {
  return {
    domain: "web1",
    config,
    ram: ranges.map((r) => ({ guestAddress: r.start, size: r.size })),
    disks: [],
  };
}

/** A one-way byte pipe; `cut()` ends it as a dropped link would. */
export class Pipe {
  #queue: Uint8Array[] = [];
  #wake: (() => void) | null = null;
  #ended = false;
  /** Stops delivering (bytes written later vanish) after this many bytes, if set. */
  cutAfter = Infinity;
  /** Delivers each write this long after the previous one (a slow relay), if set. */
  latencyMs = 0;
  #delivered = 0;

  write = (bytes: Uint8Array): Promise<void> => {
    if (this.#ended) return Promise.reject(new Error("link closed"));
    if (this.#delivered + bytes.length > this.cutAfter) {
      this.cut();
      return Promise.reject(new Error("link cut"));
    }
    this.#delivered += bytes.length;
    this.#queue.push(bytes.slice());
    this.#wake?.();
    return Promise.resolve();
  };

  cut(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const next = this.#queue.shift();
      if (next) {
        if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
        yield next;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = null;
    }
  }
}

/** Two ends of a link. */
export function link() {
  const toDestination = new Pipe();
  const toSource = new Pipe();
  return {
    toDestination,
    toSource,
    source: { reader: new FrameReader(toSource), writer: new FrameWriter(toDestination.write) },
    destination: {
      reader: new FrameReader(toDestination),
      writer: new FrameWriter(toSource.write),
    },
  };
}

export const PAGE = MIGRATION_PAGE_SIZE;

/** A source whose guest is a function called between rounds (it writes through `memory`). */
export class FakeSource implements MigrationSource {
  readonly memory: GuestMemory;
  readonly ram;
  readonly calls: string[] = [];
  readonly #dirty: DeviceDirtyBitmap;
  running = true;
  /** Runs while the guest "runs", before each takeDirty. */
  guest: (memory: GuestMemory, round: number) => void = () => {};
  #round = 0;

  constructor(ranges: Array<{ start: number; size: number }>) {
    this.memory = new GuestMemory(
      ranges.map((r) => ({ start: r.start, bytes: new Uint8Array(r.size) })),
    );
    this.ram = this.memory.regions.map((r) => ({ guestAddress: r.start, bytes: r.bytes }));
    this.#dirty = new DeviceDirtyBitmap(ranges);
  }

  startDirtyLog(): void {
    this.calls.push("startDirtyLog");
    this.memory.trackWrites(this.#dirty);
  }
  takeDirty(): RangeBitmap[] {
    if (this.running) this.guest(this.memory, this.#round++);
    return this.#dirty.take();
  }
  stopDirtyLog(): void {
    this.calls.push("stopDirtyLog");
    this.memory.trackWrites(null);
  }
  throttle(percent: number): void {
    this.calls.push(`throttle ${percent}`);
  }
  pause(): Promise<void> {
    this.calls.push("pause");
    this.running = false;
    return Promise.resolve();
  }
  resume(): Promise<void> {
    this.calls.push("resume");
    this.running = true;
    return Promise.resolve();
  }
  saveState(): Promise<unknown> {
    this.calls.push("saveState");
    return Promise.resolve({ sections: [{ id: "vm", ram: this.memory.size }] });
  }
  releaseDisks(): Promise<void> {
    this.calls.push("releaseDisks");
    return Promise.resolve();
  }
  reacquireDisks(): Promise<void> {
    this.calls.push("reacquireDisks");
    return Promise.resolve();
  }
}

/** A destination that writes pages into a plain `GuestMemory` and records its steps. */
export class FakeTarget implements MigrationTarget {
  memory: GuestMemory | null = null;
  readonly calls: string[] = [];
  state: unknown;
  refuse: string | null = null;
  failRestore = false;

  accept(start: StartRequest): Promise<void> {
    this.calls.push(`accept ${start.domain}`);
    if (this.refuse) return Promise.reject(new Error(this.refuse));
    this.memory = new GuestMemory(
      start.ram.map((r) => ({ start: r.guestAddress, bytes: new Uint8Array(r.size) })),
    );
    return Promise.resolve();
  }
  writePages(blocks: readonly PageBlock[]): void {
    for (const block of blocks) {
      if (block.data) this.memory!.write(block.guestAddress, block.data);
      else this.memory!.fill(block.guestAddress, block.pageCount * PAGE, 0);
    }
  }
  restore(state: unknown): Promise<void> {
    this.calls.push("restore");
    this.state = state;
    return this.failRestore ? Promise.reject(new Error("restore failed")) : Promise.resolve();
  }
  resume(): Promise<void> {
    this.calls.push("resume");
    return Promise.resolve();
  }
  abandon(reason: string): Promise<void> {
    this.calls.push(`abandon: ${reason}`);
    return Promise.resolve();
  }
}
