/**
 * Socket calls for the code that needs more than Deno's sockets: the systemd notify
 * datagram, the control socket interface ioctls need, AF_PACKET sockets in tests, and
 * poll(2). Addresses are the caller's struct sockaddr bytes. Each returns what the C call
 * returns (-1 with the reason in `errno()`).
 *
 * @module
 */

import { cString, libc } from "./libc.ts";

export {
  AF_INET,
  AF_PACKET,
  AF_UNIX,
  ETH_P_ALL_BE,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_RAW,
} from "./libc_symbols.ts";

/** socket(2): a descriptor, or -1. */
export function socket(domain: number, type: number, protocol = 0): number {
  return libc().socket(domain, type, protocol);
}

/** bind(2) to the first `length` bytes of `address` (a struct sockaddr): 0, or -1. */
export function bind(fd: number, address: Uint8Array, length = address.length): number {
  return libc().bind(fd, address as Uint8Array<ArrayBuffer>, length);
}

/** sendto(2) of `message` to the first `length` bytes of `address`: bytes sent, or -1. */
export function sendto(
  fd: number,
  message: Uint8Array,
  address: Uint8Array,
  length = address.length,
): number {
  return Number(
    libc().sendto(
      fd,
      message as Uint8Array<ArrayBuffer>,
      BigInt(message.length),
      0,
      address as Uint8Array<ArrayBuffer>,
      length,
    ),
  );
}

/** The ifindex of network interface `name`, or 0 when there is none (if_nametoindex). */
export function interfaceIndex(name: string): number {
  return libc().if_nametoindex(cString(name));
}

/** poll(2) event: data to read. */
export const POLLIN = 1;

/** Whether `fd` is readable within `timeoutMs` (0: right now) by poll(2). */
export function pollReadable(fd: number, timeoutMs = 0): boolean {
  const pollfd = new Uint8Array(8); // struct pollfd: int fd, short events, short revents
  const view = new DataView(pollfd.buffer);
  view.setInt32(0, fd, true);
  view.setInt16(4, POLLIN, true);
  return libc().poll(pollfd, 1n, timeoutMs) > 0 && (view.getInt16(6, true) & POLLIN) !== 0;
}
