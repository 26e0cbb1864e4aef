/**
 * The VMM's device event loop: epoll on the main thread over the fds devices care about
 * (ioeventfds for queue notifications, tap fds, timers). `epoll_wait` runs off-thread
 * (a nonblocking FFI call), so the main thread's JavaScript keeps serving vCPU exits and
 * timers while it waits; callbacks run on the main thread.
 *
 * @module
 */

import { Epoll } from "../ffi/epoll.ts";
import { EventFd } from "../ffi/eventfd.ts";

const MAX_EVENTS = 64;
/** Token of the loop's own wake-up eventfd. */
const WAKE_TOKEN = 0;

/** Called on the main thread when a watched fd is readable. */
export type ReadyCallback = () => void;

/** An epoll loop on the main thread. */
export class EventLoop {
  readonly #epoll = new Epoll(MAX_EVENTS);
  readonly #wake = new EventFd();
  readonly #callbacks = new Map<number, ReadyCallback>();
  readonly #tokens = new Map<number, number>();
  #nextToken = WAKE_TOKEN + 1;
  #running: Promise<void> | undefined;
  #stopping = false;
  #held: Promise<void> | undefined;
  #release: (() => void) | undefined;

  constructor() {
    this.#epoll.add(this.#wake.fd, WAKE_TOKEN);
  }

  /** Calls `callback` whenever `fd` is readable (level-triggered: drain it in the callback). */
  add(fd: number, callback: ReadyCallback): void {
    if (this.#tokens.has(fd)) throw new Error(`fd ${fd} is already watched`);
    const token = this.#nextToken++;
    this.#epoll.add(fd, token);
    this.#tokens.set(fd, token);
    this.#callbacks.set(token, callback);
  }

  /** Stops watching `fd`. */
  remove(fd: number): void {
    const token = this.#tokens.get(fd);
    if (token === undefined) return;
    this.#epoll.delete(fd);
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
    // A machine that stays paused after its state left (a migration's source) is closed
    // with the loop still held: the stop ends the hold, and no held callback runs.
    this.#release?.();
    this.#wake.signal();
    await this.#running;
    this.#epoll.close();
    this.#wake.close();
  }

  /**
   * Defers every callback until the returned function is called: a machine save holds
   * the loop so that no device touches guest RAM while its state and RAM are written.
   * Readiness is level-triggered, so nothing is lost; the callbacks run after release.
   */
  hold(): () => void {
    if (this.#held) throw new Error("The event loop is already held");
    let release!: () => void;
    const held = new Promise<void>((resolve) => release = resolve);
    const end = () => {
      if (this.#held === held) {
        this.#held = undefined;
        this.#release = undefined;
      }
      release();
    };
    this.#held = held;
    this.#release = end;
    return end;
  }

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      // -1: a failed wait (EINTR is the only one expected); wait again.
      const count = await this.#epoll.wait();
      while (this.#held) await this.#held;
      if (this.#stopping) break;
      for (let i = 0; i < count; i++) {
        const token = this.#epoll.token(i);
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
}
