/**
 * Host memory mappings for guest RAM and page advice, without handing pointers above
 * ffi/: a mapping is its host address (a bigint, as vCPU Workers and KVM want it) and a
 * byte view; guest pages are returned to the host by byte view.
 *
 * @module
 */

import {
  addressOf,
  bytesAt,
  libc,
  mmap,
  munmap,
  pointerFrom,
  pointerOf,
  pointerValue,
} from "./libc.ts";
import {
  MADV_DONTDUMP,
  MADV_MERGEABLE,
  MAP_ANONYMOUS,
  MAP_NORESERVE,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from "./libc_symbols.ts";

/** The host page size Denovisor assumes (x86-64). */
export const HOST_PAGE_SIZE = 4096;

/** An anonymous private mapping of host memory. */
export class HostMapping implements Disposable {
  /** Its size in bytes. */
  readonly size: number;
  /** Its host address, for KVM memory slots and for views made in other threads. */
  readonly address: bigint;
  /** Private anonymous memory: a page never touched (nor swapped) reads as zeroes. */
  readonly anonymous: boolean;
  #pointer: Deno.PointerObject | undefined;

  private constructor(pointer: Deno.PointerObject, size: number, anonymous: boolean) {
    this.#pointer = pointer;
    this.size = size;
    this.address = pointerValue(pointer);
    this.anonymous = anonymous;
  }

  /**
   * Maps `size` bytes of private anonymous memory, reserved lazily (untouched pages cost
   * nothing). `guestRam` keeps them out of core dumps and lets KSM merge them: guest RAM
   * is the guest's business. Throws a `SyscallError` naming mmap.
   */
  static anonymous(size: number, options: { guestRam?: boolean } = {}): HostMapping {
    const pointer = mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    if (options.guestRam) {
      // Best effort: a kernel without KSM refuses MADV_MERGEABLE, and that is fine.
      libc().madvise(pointer, BigInt(size), MADV_DONTDUMP);
      libc().madvise(pointer, BigInt(size), MADV_MERGEABLE);
    }
    return new HostMapping(pointer, size, true);
  }

  /**
   * Maps `size` bytes of the open file `fd` from `offset` (page aligned) copy-on-write
   * (MAP_PRIVATE): reads come from the file's pages, writes stay in this process and
   * never reach the file, so several machines can map one memory file. Restore maps a
   * memory file this way instead of reading it. The mapping holds its own reference to
   * the file: `fd` may be closed afterwards. Throws a `SyscallError` naming mmap.
   */
  static privateFile(
    fd: number,
    size: number,
    offset: number,
    options: { guestRam?: boolean } = {},
  ): HostMapping {
    if (offset % HOST_PAGE_SIZE !== 0) throw new RangeError("mmap offset must be page aligned");
    const pointer = mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, offset);
    // KSM merges only anonymous pages, so a file mapping gets no MADV_MERGEABLE.
    if (options.guestRam) libc().madvise(pointer, BigInt(size), MADV_DONTDUMP);
    return new HostMapping(pointer, size, false);
  }

  /** A byte view of the whole mapping. */
  bytes(): Uint8Array {
    if (this.#pointer === undefined) throw new Error("The host mapping is unmapped");
    return bytesAt(this.#pointer, this.size);
  }

  /** Unmaps it; idempotent. Views of it must not be used afterwards. */
  unmap(): void {
    if (this.#pointer === undefined) return;
    munmap(this.#pointer, this.size);
    this.#pointer = undefined;
  }

  [Symbol.dispose](): void {
    this.unmap();
  }
}

/**
 * A byte view of `size` bytes at host address `address`, mapped by another thread of
 * this process (vCPU Workers view guest RAM this way). The mapping must outlive the view.
 */
export function bytesAtAddress(address: bigint, size: number): Uint8Array {
  return bytesAt(pointerFrom(address), size);
}

/**
 * madvise(2) over the host memory of `bytes`, which must start on a page boundary
 * (`isPageAligned`): 0, or -1 (see `errno()`).
 */
export function madviseBytes(bytes: Uint8Array, advice: number): number {
  return libc().madvise(pointerOf(bytes), BigInt(bytes.length), advice);
}

/** Whether `bytes` starts on a host page boundary (plain JS arrays usually do not). */
export function isPageAligned(bytes: Uint8Array): boolean {
  return addressOf(bytes) % HOST_PAGE_SIZE === 0;
}
