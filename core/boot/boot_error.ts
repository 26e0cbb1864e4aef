/**
 * The error every boot loader in this folder throws for a kernel, initrd or command line
 * that cannot be booted: the message says what is wrong with the file and what to do.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";

/** How more guest memory fixes an image that does not fit. */
export type MemoryRemedy = "raise" | "raise-or-check-load-address";

/**
 * A kernel image, initrd or boot configuration that cannot be loaded into the guest
 * (code `invalid`). When more guest memory is the fix, the remedy is kept apart from the
 * problem, so each front end names its own memory setting: the message says `--memory`
 * (denovisor run); `messageFor("memory")` words it for a domain definition.
 */
export class BootImageError extends DenovisorError {
  /** What is wrong, without the memory remedy. */
  readonly problem: string;
  /** Set when more guest memory fixes it. */
  readonly memoryRemedy?: MemoryRemedy;

  constructor(problem: string, memoryRemedy?: MemoryRemedy) {
    super("invalid", withRemedy(problem, memoryRemedy, "--memory"));
    this.problem = problem;
    this.memoryRemedy = memoryRemedy;
  }

  /** The message with the guest memory setting named `setting` (e.g. "memory"). */
  messageFor(setting: string): string {
    return withRemedy(this.problem, this.memoryRemedy, setting);
  }

  /** The same error about the file at `path`, for loaders that do not know its name. */
  about(path: string): BootImageError {
    return new BootImageError(`${path}: ${this.problem}`, this.memoryRemedy);
  }
}

function withRemedy(problem: string, remedy: MemoryRemedy | undefined, setting: string): string {
  if (remedy === "raise") return `${problem}; raise ${setting}`;
  if (remedy === "raise-or-check-load-address") {
    return `${problem}; raise ${setting} or check the kernel's load address`;
  }
  return problem;
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
