/**
 * eventfd(2): the counters KVM signals (ioeventfd) and listens to (irqfd).
 *
 * @module
 */

import { closeFd, errno, libc, unwrap } from "./libc.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK } from "./libc_symbols.ts";
import { EAGAIN, SyscallError } from "./errno.ts";

/** A non-blocking eventfd. */
export class EventFd implements Disposable {
  #fd: number;
  readonly #buffer = new BigUint64Array(1);

  constructor() {
    this.#fd = unwrap(libc().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd");
  }

  get fd(): number {
    return this.#fd;
  }

  /** Adds `value` to the counter (wakes whoever waits on it). */
  signal(value = 1n): void {
    this.#buffer[0] = value;
    const bytes = new Uint8Array(this.#buffer.buffer);
    unwrap(libc().write(this.#fd, bytes, 8n), "write(eventfd)");
  }

  /** Reads and resets the counter; 0 when nothing was signalled. */
  take(): bigint {
    const bytes = new Uint8Array(this.#buffer.buffer);
    if (libc().read(this.#fd, bytes, 8n) < 0) {
      const code = errno();
      if (code === EAGAIN) return 0n;
      throw new SyscallError("read(eventfd)", code);
    }
    return this.#buffer[0];
  }

  close(): void {
    closeFd(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
