/**
 * The VMM's device event loop: epoll on the main thread over the fds devices care about
 * (ioeventfds for queue notifications, tap fds, timers). `epoll_wait` runs off-thread
 * (a nonblocking FFI call), so the main thread's JavaScript keeps serving vCPU exits and
 * timers while it waits; callbacks run on the main thread.
 *
 * @module
 */

import { closeFd, errno, libc, unwrap } from "../ffi/libc.ts";
import { EPOLL_CLOEXEC, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLLIN } from "../ffi/libc_symbols.ts";
import { SyscallError } from "../ffi/errno.ts";
import { EventFd } from "../ffi/eventfd.ts";

/** struct epoll_event is packed on x86-64: u32 events, u64 data. */
const EVENT_SIZE = 12;
const MAX_EVENTS = 64;
/** Token of the loop's own wake-up eventfd. */
const WAKE_TOKEN = 0;

/** Called on the main thread when a watched fd is readable. */
export type ReadyCallback = () => void;

/** An epoll loop on the main thread. */
export class EventLoop {
  readonly #epfd: number;
  readonly #wake = new EventFd();
  readonly #callbacks = new Map<number, ReadyCallback>();
  readonly #tokens = new Map<number, number>();
  readonly #events = new Uint8Array(EVENT_SIZE * MAX_EVENTS);
  #nextToken = WAKE_TOKEN + 1;
  #running: Promise<void> | undefined;
  #stopping = false;

  constructor() {
    this.#epfd = unwrap(libc().epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
    this.#control(EPOLL_CTL_ADD, this.#wake.fd, WAKE_TOKEN);
  }

  /** Calls `callback` whenever `fd` is readable (level-triggered: drain it in the callback). */
  add(fd: number, callback: ReadyCallback): void {
    if (this.#tokens.has(fd)) throw new Error(`fd ${fd} is already watched`);
    const token = this.#nextToken++;
    this.#control(EPOLL_CTL_ADD, fd, token);
    this.#tokens.set(fd, token);
    this.#callbacks.set(token, callback);
  }

  /** Stops watching `fd`. */
  remove(fd: number): void {
    const token = this.#tokens.get(fd);
    if (token === undefined) return;
    this.#control(EPOLL_CTL_DEL, fd, token);
    this.#tokens.delete(fd);
    this.#callbacks.delete(token);
  }

  /** Starts dispatching; resolves when `stop()` is called. */
  start(): Promise<void> {
    this.#running ??= this.#loop();
    return this.#running;
  }

  /** Stops the loop and closes the epoll fd; idempotent. */
  async stop(): Promise<void> {
    if (this.#stopping) return await this.#running;
    this.#stopping = true;
    this.#wake.signal();
    await this.#running;
    closeFd(this.#epfd);
    this.#wake.close();
  }

  async #loop(): Promise<void> {
    const view = new DataView(this.#events.buffer);
    while (!this.#stopping) {
      const count = await libc().epoll_wait(this.#epfd, this.#events, MAX_EVENTS, -1);
      // errno is not readable after an off-thread call; EINTR is the only expected failure.
      if (count < 0) continue;
      for (let i = 0; i < count; i++) {
        const token = Number(view.getBigUint64(i * EVENT_SIZE + 4, true));
        if (token === WAKE_TOKEN) {
          this.#wake.take();
          continue;
        }
        const callback = this.#callbacks.get(token);
        if (callback === undefined) continue; // removed while the wait was pending
        try {
          callback();
        } catch (error) {
          console.error(`denovisor: event handler failed: ${error}`);
        }
      }
    }
  }

  #control(op: number, fd: number, token: number): void {
    const event = new Uint8Array(EVENT_SIZE);
    const view = new DataView(event.buffer);
    view.setUint32(0, EPOLLIN, true);
    view.setBigUint64(4, BigInt(token), true);
    if (libc().epoll_ctl(this.#epfd, op, fd, event) < 0) {
      throw new SyscallError("epoll_ctl", errno());
    }
  }
}
