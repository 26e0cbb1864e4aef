/**
 * A private epoll fd that forwards one fd's readability only while open. The VMM's event
 * loop is level-triggered, so a tap with frames queued but no guest buffers to put them
 * in would wake it forever; the device instead hands the loop this gate and closes it
 * until the driver posts buffers. An epoll fd is itself pollable: it reads as readable
 * exactly when a registered fd is, and an empty one never is.
 *
 * @module
 */

import { closeFd, libc, unwrap } from "../../ffi/libc.ts";
import { EPOLL_CLOEXEC, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLLIN } from "../../ffi/libc_symbols.ts";

/** struct epoll_event (packed on x86-64): u32 events, u64 data. */
const EVENT_SIZE = 12;

/** Gates the readability of `target` behind an epoll fd. Starts closed. */
export class ReadinessGate {
  readonly #target: number;
  readonly #event = new Uint8Array(EVENT_SIZE);
  #epfd: number;
  #open = false;

  constructor(target: number) {
    this.#target = target;
    this.#epfd = unwrap(libc().epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
    new DataView(this.#event.buffer).setUint32(0, EPOLLIN, true);
  }

  /** The fd to watch: readable while the gate is open and the target is readable. */
  get fd(): number {
    return this.#epfd;
  }

  /** Whether the target's readability is forwarded. */
  get isOpen(): boolean {
    return this.#open;
  }

  /** Forwards the target's readability (idempotent). */
  open(): void {
    if (this.#open || this.#epfd < 0) return;
    unwrap(
      libc().epoll_ctl(this.#epfd, EPOLL_CTL_ADD, this.#target, this.#event),
      "epoll_ctl(ADD)",
    );
    this.#open = true;
  }

  /** Stops forwarding until `open()` (idempotent). */
  close(): void {
    if (!this.#open || this.#epfd < 0) return;
    unwrap(
      libc().epoll_ctl(this.#epfd, EPOLL_CTL_DEL, this.#target, this.#event),
      "epoll_ctl(DEL)",
    );
    this.#open = false;
  }

  /** Releases the epoll fd; idempotent. */
  dispose(): void {
    closeFd(this.#epfd);
    this.#epfd = -1;
    this.#open = false;
  }
}
