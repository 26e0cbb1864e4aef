/**
 * The one message a pooled VMM waits for: which domain it is to run. A pooled VMM is a
 * `denovisor vmm --pool-socket FD` that the daemon started ahead of time, already jailed
 * (manager/sandbox/vmm_pool.ts): it loads its modules and one vCPU Worker, then blocks
 * on its end of a socket pair until the daemon sends the order (the config's path, the
 * seccomp mode and the descriptors of /dev/kvm, images, kernels and taps over
 * SCM_RIGHTS), or until the daemon's end closes (the daemon died or drained its pool),
 * in which case it exits.
 *
 * A pooled process serves exactly one domain: it takes one order, closes the socket and
 * becomes that domain's VMM as `--config FILE --descriptors FILE` would.
 *
 * @module
 */

import { closeFd } from "../ffi/libc.ts";
import { receiveFds } from "../ffi/scm_rights.ts";
import { type HandedDescriptors, parseHandedDescriptors } from "../common/handed_descriptors.ts";
import { DenovisorError } from "../common/errors.ts";
import { parseSeccompMode, type SeccompMode } from "./sandbox/seccomp_filter.ts";

/** What the daemon sends; descriptor numbers are indexes into the message's descriptors. */
export interface PoolOrder {
  /** The domain's VMM config (an absolute path, bound into the jail before the order). */
  config: string;
  seccomp: SeccompMode;
  /** As `--descriptors FILE`, each number an index into the descriptors sent along. */
  descriptors: HandedDescriptors;
}

/** The order's size limit: a config path and a descriptor table. */
export const MAX_ORDER_BYTES = 256 * 1024;
/** The most descriptors one order carries (the kernel's SCM_MAX_FD). */
export const MAX_ORDER_FDS = 253;

/** An order that is not well-formed. */
export class PoolOrderError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** The order as bytes plus the descriptors in index order (for the sender). */
export function encodePoolOrder(order: PoolOrder): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(order));
}

/**
 * Validates `bytes` and puts the real descriptor numbers `fds` in place of the indexes.
 * Every descriptor must be used exactly as sent: an index out of range is refused.
 */
export function parsePoolOrder(
  bytes: Uint8Array,
  fds: readonly number[],
): { config: string; seccomp: SeccompMode; descriptors: HandedDescriptors } {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new PoolOrderError("The pool order is not JSON");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new PoolOrderError("The pool order must be a JSON object");
  }
  const { config, seccomp, descriptors } = json;
  if (typeof config !== "string" || !config.startsWith("/")) {
    throw new PoolOrderError("The pool order's config must be an absolute path");
  }
  const real = (index: number) => {
    // Indexes are offset by 3 so that the table's own checks (3..65535) apply unchanged.
    const fd = fds[index - 3];
    if (fd === undefined) throw new PoolOrderError(`Descriptor index ${index - 3} was not sent`);
    return fd;
  };
  const table = parseHandedDescriptors(descriptors);
  const mapped: HandedDescriptors = { files: {}, taps: {} };
  if (table.kvm !== undefined) mapped.kvm = real(table.kvm);
  for (const [path, index] of Object.entries(table.files)) mapped.files[path] = real(index);
  for (const [tap, index] of Object.entries(table.taps)) mapped.taps[tap] = real(index);
  return { config, seccomp: parseSeccompMode(seccomp), descriptors: mapped };
}

/** The index of the `i`th descriptor sent, as written into an order's table. */
export function orderIndex(i: number): number {
  return i + 3;
}

/**
 * Blocks until the order arrives on `socket` and returns it, or undefined when the
 * daemon's end closed first. The socket is closed either way; a malformed order closes
 * the descriptors that came with it and throws.
 */
export function awaitPoolOrder(
  socket: number,
): ReturnType<typeof parsePoolOrder> | undefined {
  try {
    const message = receiveFds(socket, MAX_ORDER_BYTES, MAX_ORDER_FDS);
    if (message.bytes.length === 0) {
      message.fds.forEach(closeFd);
      return undefined;
    }
    try {
      return parsePoolOrder(message.bytes, message.fds);
    } catch (error) {
      message.fds.forEach(closeFd);
      throw error;
    }
  } finally {
    closeFd(socket);
  }
}
