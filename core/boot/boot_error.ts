/**
 * The error every boot loader in this folder throws for a kernel, initrd or command line
 * that cannot be booted: the message says what is wrong with the file and what to do.
 *
 * @module
 */

/** A kernel image, initrd or boot configuration that cannot be loaded into the guest. */
export class BootImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BootImageError";
  }
}

/** `0x1234` formatting for error messages. */
export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}

/** Bytes as MiB with at most one decimal, for error messages about sizes. */
export function mib(bytes: number): string {
  const value = bytes / (1024 * 1024);
  return Number.isInteger(value) ? `${value}` : value.toFixed(1);
}
