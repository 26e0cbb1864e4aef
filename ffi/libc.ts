/**
 * The opened libc and thin, typed wrappers around it. Each thread (the main thread and
 * every vCPU Worker) opens its own handle, so errno is always read on the calling thread.
 *
 * @module
 */

import { LIBC_SYMBOLS, MAP_FAILED } from "./libc_symbols.ts";
import { SyscallError } from "./errno.ts";

type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

let opened: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | undefined;

/** The libc symbols, opened on first use in this thread. */
export function libc(): Libc {
  opened ??= Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  return opened.symbols;
}

/** errno of the calling thread; call it right after the failing call. */
export function errno(): number {
  const location = libc().__errno_location();
  return location === null ? 0 : new Deno.UnsafePointerView(location).getInt32();
}

/** Throws a `SyscallError` naming `call` when `result` is negative; returns `result`. */
export function unwrap<T extends number | bigint>(result: T, call: string): T {
  if (result < 0) throw new SyscallError(call, errno());
  return result;
}

/** A C string for path arguments. */
export function cString(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(text + "\0");
}

/** The pointer to the first byte of `bytes` (whose buffer must outlive the call). */
export function pointerOf(bytes: Uint8Array): Deno.PointerValue {
  return Deno.UnsafePointer.of(bytes as Uint8Array<ArrayBuffer>);
}

/** A pointer from its numeric value (as handed between threads). */
export function pointerFrom(value: bigint): Deno.PointerObject {
  const pointer = Deno.UnsafePointer.create(value);
  if (pointer === null) throw new TypeError("Null pointer");
  return pointer;
}

/** The numeric value of a pointer, to hand to another thread. */
export function pointerValue(pointer: Deno.PointerValue): bigint {
  return BigInt(Deno.UnsafePointer.value(pointer));
}

/** Opens `path` with `flags`, throwing a `SyscallError` that names the path. */
export function openFile(path: string, flags: number, mode = 0): number {
  return unwrap(libc().open(cString(path), flags, mode), `open(${path})`);
}

/** Closes `fd`; closing is best effort and never throws. */
export function closeFd(fd: number): void {
  if (fd >= 0) libc().close(fd);
}

/** Maps `length` bytes; throws on failure. */
export function mmap(
  length: number,
  prot: number,
  flags: number,
  fd = -1,
  offset = 0,
): Deno.PointerObject {
  const pointer = libc().mmap(null, BigInt(length), prot, flags, fd, BigInt(offset));
  if (pointer === null || pointerValue(pointer) === MAP_FAILED) {
    throw new SyscallError("mmap", errno());
  }
  return pointer;
}

/** Unmaps a mapping made by `mmap`. */
export function munmap(pointer: Deno.PointerObject, length: number): void {
  unwrap(libc().munmap(pointer, BigInt(length)), "munmap");
}

/** A byte view of `length` bytes of host memory at `pointer`. */
export function bytesAt(pointer: Deno.PointerObject, length: number): Uint8Array {
  return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(pointer, length));
}

/** ioctl(fd, request, &bytes): throws a `SyscallError` naming `call` on failure. */
export function ioctlBytes(fd: number, request: bigint, bytes: Uint8Array, call: string): number {
  return unwrap(libc().ioctl(fd, request, pointerOf(bytes)), call);
}

/** ioctl(fd, request, value): throws a `SyscallError` naming `call` on failure. */
export function ioctlValue(
  fd: number,
  request: bigint,
  value: number | bigint,
  call: string,
): number {
  return unwrap(libc().ioctl_value(fd, request, BigInt(value)), call);
}

/**
 * Buffers at least this large are never on V8's heap, so their memory does not move and
 * their base address can be cached.
 */
export const STABLE_BUFFER_BYTES = 64 * 1024;
const baseAddresses = new WeakMap<ArrayBufferLike, number>();

/**
 * The host address of `bytes[0]`. `Deno.UnsafePointer.of` costs about a microsecond on a
 * view of external memory (guest RAM is mmap'd), so the address of a large buffer's start
 * is cached and the view's offset added.
 */
export function addressOf(bytes: Uint8Array): number {
  const buffer = bytes.buffer;
  if (buffer.byteLength < STABLE_BUFFER_BYTES) {
    return Number(Deno.UnsafePointer.value(pointerOf(bytes)));
  }
  let base = baseAddresses.get(buffer);
  if (base === undefined) {
    base = Number(Deno.UnsafePointer.value(pointerOf(new Uint8Array(buffer))));
    baseAddresses.set(buffer, base);
  }
  return base + bytes.byteOffset;
}
