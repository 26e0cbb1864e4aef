/**
 * KVM_GET_DIRTY_LOG: the bitmap of pages the guest wrote in one memory slot since the
 * last call (the kernel clears it and write-protects the pages again as it returns it,
 * without KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2). The slot must have been registered with
 * KVM_MEM_LOG_DIRTY_PAGES.
 *
 * @module
 */

import { ioctlBytes, pointerOf, pointerValue } from "../libc.ts";
import { KVM, KVM_STRUCT_SIZE } from "./ioctls.ts";

/**
 * The number of 32-bit words of a slot's dirty bitmap: the kernel writes
 * ALIGN(pages, 64) / 8 bytes, so the buffer is rounded up to whole 64-bit words.
 */
export function dirtyBitmapWords(pages: number): number {
  return Math.ceil(pages / 64) * 2;
}

/** struct kvm_dirty_log { u32 slot; u32 padding; u64 dirty_bitmap pointer }. */
export function encodeDirtyLog(slot: number, bitmapAddress: bigint): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(KVM_STRUCT_SIZE.dirtyLog);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, slot, true);
  view.setBigUint64(8, bitmapAddress, true);
  return bytes;
}

/**
 * Fills `bitmap` (bit n of word n/32 = page n of the slot; `dirtyBitmapWords(pages)`
 * long) with the slot's dirty log. The ioctl is synchronous, so the buffer cannot move
 * while the kernel writes it.
 */
export function getDirtyLog(vmFd: number, slot: number, bitmap: Uint32Array): void {
  const bytes = new Uint8Array(bitmap.buffer, bitmap.byteOffset, bitmap.byteLength);
  const address = pointerValue(pointerOf(bytes));
  ioctlBytes(vmFd, KVM.GET_DIRTY_LOG, encodeDirtyLog(slot, address), "ioctl(KVM_GET_DIRTY_LOG)");
}
