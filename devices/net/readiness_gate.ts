/**
 * A private epoll fd that forwards one fd's readability only while open. The VMM's event
 * loop is level-triggered, so a tap with frames queued but no guest buffers to put them
 * in would wake it forever; the device instead hands the loop this gate and closes it
 * until the driver posts buffers. An epoll fd is itself pollable: it reads as readable
 * exactly when a registered fd is, and an empty one never is.
 *
 * @module
 */

import { Epoll } from "../../ffi/epoll.ts";

/** Gates the readability of `target` behind an epoll fd. Starts closed. */
export class ReadinessGate {
  readonly #target: number;
  readonly #epoll = new Epoll(1);
  #open = false;

  constructor(target: number) {
    this.#target = target;
  }

  /** The fd to watch: readable while the gate is open and the target is readable. */
  get fd(): number {
    return this.#epoll.fd;
  }

  /** Whether the target's readability is forwarded. */
  get isOpen(): boolean {
    return this.#open;
  }

  /** Forwards the target's readability (idempotent). */
  open(): void {
    if (this.#open || this.#epoll.fd < 0) return;
    this.#epoll.add(this.#target);
    this.#open = true;
  }

  /** Stops forwarding until `open()` (idempotent). */
  close(): void {
    if (!this.#open || this.#epoll.fd < 0) return;
    this.#epoll.delete(this.#target);
    this.#open = false;
  }

  /** Releases the epoll fd; idempotent. */
  dispose(): void {
    this.#epoll.close();
    this.#open = false;
  }
}
