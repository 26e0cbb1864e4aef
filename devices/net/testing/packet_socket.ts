/**
 * A raw AF_PACKET socket bound to one interface: the host side of a tap in tests and the
 * net benchmark. Frames written to the tap fd arrive here; frames sent here leave through
 * the tap fd. Root only.
 *
 * @module
 */

import { closeFd, errno } from "../../../ffi/libc.ts";
import { read, write } from "../../../ffi/fs.ts";
import { EAGAIN } from "../../../ffi/errno.ts";
import { SyscallError } from "../../../ffi/errno.ts";
import {
  AF_PACKET,
  bind,
  ETH_P_ALL_BE,
  interfaceIndex,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  socket,
} from "../../../ffi/socket.ts";

const SOCKADDR_LL_SIZE = 20;

/** A non-blocking raw packet socket on one interface. */
export class PacketSocket {
  #fd: number;
  readonly #buffer = new Uint8Array(65536);

  constructor(interfaceName: string) {
    const index = interfaceIndex(interfaceName);
    if (index === 0) throw new Error(`Interface ${interfaceName} does not exist; create it first`);
    const fd = socket(
      AF_PACKET,
      SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
      ETH_P_ALL_BE,
    );
    if (fd < 0) throw new SyscallError("socket(AF_PACKET)", errno());
    const address = new Uint8Array(SOCKADDR_LL_SIZE);
    const view = new DataView(address.buffer);
    view.setUint16(0, AF_PACKET, true);
    view.setUint16(2, ETH_P_ALL_BE, true);
    view.setInt32(4, index, true);
    if (bind(fd, address, SOCKADDR_LL_SIZE) < 0) {
      const code = errno();
      closeFd(fd);
      throw new SyscallError(`bind(AF_PACKET, ${interfaceName})`, code);
    }
    this.#fd = fd;
  }

  /** The socket fd. */
  get fd(): number {
    return this.#fd;
  }

  /** Sends one Ethernet frame out of the interface (into the tap's fd). */
  send(frame: Uint8Array): void {
    const sent = write(this.#fd, frame);
    if (sent < 0) throw new SyscallError("write(AF_PACKET)", errno());
  }

  /** The next frame seen on the interface (a copy), or undefined when none is queued. */
  receive(): Uint8Array | undefined {
    const length = read(this.#fd, this.#buffer);
    if (length < 0) {
      const code = errno();
      if (code === EAGAIN) return undefined;
      throw new SyscallError("read(AF_PACKET)", code);
    }
    return this.#buffer.slice(0, Number(length));
  }

  /** Waits up to `timeoutMs` for a frame matching `accept` (other traffic is skipped). */
  async receiveMatching(
    accept: (frame: Uint8Array) => boolean,
    timeoutMs = 2000,
  ): Promise<Uint8Array | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const frame = this.receive();
      if (frame === undefined) await new Promise((resolve) => setTimeout(resolve, 1));
      else if (accept(frame)) return frame;
    }
    return undefined;
  }

  /** Closes the socket; idempotent. */
  close(): void {
    closeFd(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
