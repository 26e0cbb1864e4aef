/**
 * The shared memory between a vCPU Worker and the main thread: run control (pause,
 * resume, stop) and a one-slot mailbox for the exits the Worker hands to the main
 * thread's devices. Both sides use Atomics on one SharedArrayBuffer, so a hand-off
 * costs tens of microseconds instead of a postMessage round trip.
 *
 * @module
 */

/** Int32 slots in the channel. */
export const SLOT = {
  /** Mailbox state: MAILBOX values. */
  MAILBOX: 0,
  /** 0: port I/O, 1: MMIO. */
  SPACE: 1,
  /** 0: read, 1: write. */
  IS_WRITE: 2,
  SIZE: 3,
  ADDRESS_LOW: 4,
  ADDRESS_HIGH: 5,
  /** What the main thread wants: RUN_REQUEST values. */
  REQUEST: 6,
  /** What the Worker is doing: WORKER_STATE values. */
  STATE: 7,
  /** The Worker's kernel thread id, for tgkill. */
  TID: 8,
  /** Exits handled so far (wraps), for statistics. */
  EXITS: 9,
} as const;

export const MAILBOX = { EMPTY: 0, REQUEST: 1, ANSWERED: 2, CLOSED: 3 } as const;
export const RUN_REQUEST = { RUN: 0, PAUSE: 1, STOP: 2 } as const;
export const WORKER_STATE = { STARTING: 0, RUNNING: 1, PAUSED: 2, STOPPED: 3 } as const;

/** Address spaces of a forwarded access. */
export const SPACE = { PIO: 0, MMIO: 1 } as const;

const SLOTS_BYTES = 64;
const DATA_BYTES = 8;

/** Typed views over one channel buffer, usable on either side. */
export class VcpuChannel {
  readonly buffer: SharedArrayBuffer;
  readonly slots: Int32Array;
  /** The data of the access in the mailbox (up to 8 bytes). */
  readonly data: Uint8Array;

  constructor(buffer = new SharedArrayBuffer(SLOTS_BYTES + DATA_BYTES)) {
    this.buffer = buffer;
    this.slots = new Int32Array(buffer, 0, SLOTS_BYTES / 4);
    this.data = new Uint8Array(buffer, SLOTS_BYTES, DATA_BYTES);
  }

  get request(): number {
    return Atomics.load(this.slots, SLOT.REQUEST);
  }

  get state(): number {
    return Atomics.load(this.slots, SLOT.STATE);
  }

  /** Address of the mailbox access. */
  get address(): number {
    return (this.slots[SLOT.ADDRESS_HIGH] >>> 0) * 0x1_0000_0000 +
      (this.slots[SLOT.ADDRESS_LOW] >>> 0);
  }

  set address(value: number) {
    this.slots[SLOT.ADDRESS_LOW] = value % 0x1_0000_0000;
    this.slots[SLOT.ADDRESS_HIGH] = Math.floor(value / 0x1_0000_0000);
  }

  setState(state: number): void {
    Atomics.store(this.slots, SLOT.STATE, state);
    Atomics.notify(this.slots, SLOT.STATE);
  }

  setRequest(request: number): void {
    Atomics.store(this.slots, SLOT.REQUEST, request);
    Atomics.notify(this.slots, SLOT.REQUEST);
  }
}
