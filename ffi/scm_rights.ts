/**
 * File descriptors handed between processes over a unix socket (SCM_RIGHTS): how a
 * privileged daemon gives an unprivileged VMM what it cannot open itself (/dev/kvm, disk
 * images, taps). The receiver gets a new descriptor for the same open file description,
 * so file offsets, flags and OFD locks travel with it (a disk's lock stays held).
 *
 * @module
 */

import { closeFd, errno, libc, pointerOf } from "./libc.ts";
import { SyscallError } from "./errno.ts";
import { AF_UNIX, SOCK_CLOEXEC } from "./libc_symbols.ts";

const SOCK_SEQPACKET = 5;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_CTRUNC = 0x8;
const MSG_CMSG_CLOEXEC = 0x40000000;
const MSG_NOSIGNAL = 0x4000;
/** SCM_MAX_FD: the kernel refuses more descriptors in one message. */
export const MAX_FDS_PER_MESSAGE = 253;

/** A connected pair of AF_UNIX SOCK_SEQPACKET sockets (message boundaries kept), close-on-exec. */
export function socketPair(): [number, number] {
  const fds = new Int32Array(2);
  const result = libc().socketpair(
    AF_UNIX,
    SOCK_SEQPACKET | SOCK_CLOEXEC,
    0,
    new Uint8Array(fds.buffer),
  );
  if (result !== 0) throw new SyscallError("socketpair(AF_UNIX)", errno());
  return [fds[0], fds[1]];
}

const F_SETFD = 2;

/**
 * Clears close-on-exec on `fd`, so that the next child spawned inherits it (the daemon's
 * end of a pooled VMM's socket pair). Call it right before the spawn and close the
 * descriptor right after: any other child spawned meanwhile would inherit it too.
 */
export function setInheritable(fd: number): void {
  if (libc().fcntl_int(fd, F_SETFD, 0n) < 0) throw new SyscallError("fcntl(F_SETFD)", errno());
}

const align8 = (n: number) => (n + 7) & ~7;

/** struct msghdr (56 bytes on x86_64) over one iovec and a control buffer. */
function messageHeader(iovec: BigUint64Array, control: Uint8Array): Uint8Array<ArrayBuffer> {
  const header = new Uint8Array(56);
  const view = new DataView(header.buffer);
  // msg_name NULL, msg_namelen 0
  view.setBigUint64(16, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(iovec))), true);
  view.setBigUint64(24, 1n, true); // msg_iovlen
  const controlPointer = control.length === 0 ? 0n : BigInt(
    Deno.UnsafePointer.value(pointerOf(control)),
  );
  view.setBigUint64(32, controlPointer, true);
  view.setBigUint64(40, BigInt(control.length), true); // msg_controllen
  return header;
}

function iovecOf(bytes: Uint8Array): BigUint64Array {
  const iovec = new BigUint64Array(2);
  iovec[0] = BigInt(Deno.UnsafePointer.value(pointerOf(bytes)));
  iovec[1] = BigInt(bytes.length);
  return iovec;
}

/**
 * Sends `payload` (at least one byte: a message with descriptors must carry data) and
 * `fds` in one message; returns the bytes sent. The caller keeps its descriptors.
 */
export function sendFds(socket: number, payload: Uint8Array, fds: readonly number[]): number {
  if (payload.length === 0) throw new RangeError("An SCM_RIGHTS message needs a payload byte");
  if (fds.length > MAX_FDS_PER_MESSAGE) {
    throw new RangeError(`At most ${MAX_FDS_PER_MESSAGE} descriptors per message`);
  }
  const data = new Uint8Array(payload);
  const iovec = iovecOf(data);
  // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; int fds[]; } padded.
  const control = new Uint8Array(fds.length === 0 ? 0 : align8(16 + 4 * fds.length));
  if (fds.length > 0) {
    const view = new DataView(control.buffer);
    view.setBigUint64(0, BigInt(16 + 4 * fds.length), true);
    view.setInt32(8, SOL_SOCKET, true);
    view.setInt32(12, SCM_RIGHTS, true);
    fds.forEach((fd, i) => view.setInt32(16 + 4 * i, fd, true));
  }
  const header = messageHeader(iovec, control);
  const sent = Number(libc().sendmsg(socket, header, MSG_NOSIGNAL));
  if (sent < 0) throw new SyscallError("sendmsg(SCM_RIGHTS)", errno());
  return sent;
}

/** A message that brought more descriptors than the receiver takes. */
export class TooManyFdsError extends Error {
  constructor(readonly maxFds: number) {
    super(`A message brought more than ${maxFds} descriptors; it was refused and they were closed`);
    this.name = "TooManyFdsError";
  }
}

/** One received message: its bytes and the descriptors that came with it (close-on-exec). */
export interface ReceivedMessage {
  bytes: Uint8Array;
  fds: number[];
}

/**
 * Receives one message of at most `maxBytes` bytes with at most `maxFds` descriptors. A
 * message that brought more descriptors than that is refused whole (the kernel closed the
 * excess; the ones that arrived are closed here): a sender that does not keep to the
 * protocol gets nothing through.
 */
export function receiveFds(socket: number, maxBytes: number, maxFds: number): ReceivedMessage {
  const data = new Uint8Array(maxBytes);
  const iovec = iovecOf(data);
  const control = new Uint8Array(align8(16 + 4 * Math.max(1, maxFds)));
  const header = messageHeader(iovec, control);
  const received = Number(libc().recvmsg(socket, header, MSG_CMSG_CLOEXEC));
  if (received < 0) throw new SyscallError("recvmsg(SCM_RIGHTS)", errno());
  const view = new DataView(header.buffer);
  const controlLength = Number(view.getBigUint64(40, true));
  const flags = view.getInt32(48, true);
  const fds: number[] = [];
  const controlView = new DataView(control.buffer);
  for (let offset = 0; offset + 16 <= controlLength;) {
    const length = Number(controlView.getBigUint64(offset, true));
    if (length < 16 || offset + length > controlLength) break;
    const level = controlView.getInt32(offset + 8, true);
    const type = controlView.getInt32(offset + 12, true);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let at = offset + 16; at + 4 <= offset + length; at += 4) {
        fds.push(controlView.getInt32(at, true));
      }
    }
    offset += align8(length);
  }
  // The control buffer is rounded up to 8 bytes and may hold one more than asked for.
  if ((flags & MSG_CTRUNC) !== 0 || fds.length > maxFds) {
    fds.forEach(closeFd);
    throw new TooManyFdsError(maxFds);
  }
  return { bytes: data.subarray(0, received), fds };
}
