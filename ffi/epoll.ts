/**
 * epoll(7) for the device event loop and readiness gates: an epoll fd watching fds for
 * readability, each reported with a numeric token, and a wait that runs off-thread (a
 * nonblocking FFI call) so the main thread's JavaScript keeps running meanwhile.
 *
 * @module
 */

import { closeFd, errno, libc, unwrap } from "./libc.ts";
import { EPOLL_CLOEXEC, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLLIN } from "./libc_symbols.ts";
import { SyscallError } from "./errno.ts";

/** struct epoll_event is packed on x86-64: u32 events, u64 data. */
const EVENT_SIZE = 12;

/** An epoll fd. Tokens are the caller's numbers (below 2^53), reported back by `wait`. */
export class Epoll implements Disposable {
  #fd: number;
  readonly #events: Uint8Array<ArrayBuffer>;
  readonly #view: DataView;
  readonly #maxEvents: number;
  #waiting = false;

  /** A new epoll fd (close-on-exec) whose `wait` reports at most `maxEvents` fds. */
  constructor(maxEvents = 64) {
    this.#fd = unwrap(libc().epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
    this.#maxEvents = maxEvents;
    this.#events = new Uint8Array(EVENT_SIZE * maxEvents);
    this.#view = new DataView(this.#events.buffer);
  }

  /** The epoll fd: itself pollable, readable exactly when a watched fd is. */
  get fd(): number {
    return this.#fd;
  }

  /** Watches `fd` for readability (level-triggered), reported as `token`. */
  add(fd: number, token = 0): void {
    this.#control(EPOLL_CTL_ADD, fd, token, "epoll_ctl(ADD)");
  }

  /** Stops watching `fd`. */
  delete(fd: number): void {
    this.#control(EPOLL_CTL_DEL, fd, 0, "epoll_ctl(DEL)");
  }

  /**
   * Waits off-thread until a watched fd is readable (forever when `timeoutMs` is -1);
   * returns how many are, read with `token(i)`. A failure returns -1: errno cannot be
   * read after an off-thread call, and EINTR is the only one expected. One wait at a
   * time: the events buffer belongs to the pending call.
   */
  async wait(timeoutMs = -1): Promise<number> {
    if (this.#waiting) throw new Error("Epoll.wait() is already pending");
    this.#waiting = true;
    try {
      const count = await libc().epoll_wait(this.#fd, this.#events, this.#maxEvents, timeoutMs);
      return count < 0 ? -1 : count;
    } finally {
      this.#waiting = false;
    }
  }

  /** The token of the `index`th ready fd of the last `wait`. */
  token(index: number): number {
    return Number(this.#view.getBigUint64(index * EVENT_SIZE + 4, true));
  }

  /** Closes the epoll fd; idempotent. Do not close while a `wait` is pending. */
  close(): void {
    closeFd(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #control(op: number, fd: number, token: number, call: string): void {
    const event = new Uint8Array(EVENT_SIZE);
    const view = new DataView(event.buffer);
    view.setUint32(0, EPOLLIN, true);
    view.setBigUint64(4, BigInt(token), true);
    if (libc().epoll_ctl(this.#fd, op, fd, event) < 0) throw new SyscallError(call, errno());
  }
}
