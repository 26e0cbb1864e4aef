/**
 * The VMM's seccomp filter: the policy of ./seccomp_policy.ts assembled for a mode and
 * installed on every thread of the process (SECCOMP_FILTER_FLAG_TSYNC: V8's and the
 * runtime's threads exist long before the VMM's code runs; Workers started later
 * inherit the filter from their creator).
 *
 * Modes:
 * - `strict` (the default, since the end-to-end suite ran under it on a KVM host): a
 *   call outside the allow-list kills the process (SIGSYS).
 *
 * In both enforcing modes a network socket fails with EACCES.
 * - `log`: a call outside the allow-list is allowed and logged by the kernel (audit,
 *   `dmesg`: `type=1326 ... sig=0 ... syscall=N`); the forbidden calls still kill. For
 *   measuring the list (see the README's security section).
 * - `off`: no filter.
 *
 * In both enforcing modes `clone3` fails with ENOSYS, so glibc falls back to `clone`,
 * whose flags the filter can see (clone3 passes them in memory): threads yes, namespaces
 * no. This is what Docker's default profile does.
 *
 * @module
 */

import {
  installSeccompFilter,
  SECCOMP_FILTER_FLAG_TSYNC,
  seccompMode,
  setNoNewPrivs,
} from "../../ffi/seccomp.ts";
import { DenovisorError } from "../../common/errors.ts";
import {
  assembleFilter,
  encodeFilter,
  type Instruction,
  SECCOMP_RET,
  type SyscallBlock,
} from "./bpf.ts";
import { ALLOWED_CALLS, FORBIDDEN_CALLS } from "./seccomp_policy.ts";
import { syscallNumber } from "./syscall_numbers.ts";

/** How the VMM's system calls are filtered. */
export type SeccompMode = "strict" | "log" | "off";

/** Every mode, for flag and config validation. */
export const SECCOMP_MODES: readonly SeccompMode[] = ["strict", "log", "off"];

/** The mode the daemon's VMMs and `denovisor run` use when none is given (see the module doc). */
export const DEFAULT_SECCOMP_MODE: SeccompMode = "strict";

const ENOSYS = 38;

/** A seccomp mode that is not one of `SECCOMP_MODES`. */
export class SeccompModeError extends DenovisorError {
  constructor(value: unknown) {
    super("invalid", `Seccomp mode '${String(value)}' is not one of ${SECCOMP_MODES.join(", ")}`);
  }
}

/** `value` as a seccomp mode; throws `SeccompModeError` for anything else. */
export function parseSeccompMode(value: unknown): SeccompMode {
  if (typeof value === "string" && (SECCOMP_MODES as readonly string[]).includes(value)) {
    return value as SeccompMode;
  }
  throw new SeccompModeError(value);
}

/** The filter for `mode` (not `off`) in a process whose pid is `pid`. */
export function compileFilter(mode: Exclude<SeccompMode, "off">, pid: number): Instruction[] {
  const unknown = mode === "strict" ? SECCOMP_RET.KILL_PROCESS : SECCOMP_RET.LOG;
  const blocks: SyscallBlock[] = ALLOWED_CALLS.map((call): SyscallBlock => {
    const block: SyscallBlock = { nr: syscallNumber(call.name), action: SECCOMP_RET.ALLOW };
    if (call.oneOf) {
      const refusal = call.oneOf.refuseWith;
      return {
        ...block,
        check: { arg: call.oneOf.arg, oneOf: call.oneOf.values },
        otherwise: refusal !== undefined ? SECCOMP_RET.ERRNO | refusal : unknown,
      };
    }
    if (call.ownPid) {
      return { ...block, check: { arg: call.ownPid.arg, oneOf: [pid] }, otherwise: unknown };
    }
    if (call.clearBits) {
      const check = { arg: call.clearBits.arg, clearBits: call.clearBits.bits };
      return { ...block, check, otherwise: SECCOMP_RET.KILL_PROCESS };
    }
    return block;
  });
  blocks.push({ nr: syscallNumber("clone3"), action: SECCOMP_RET.ERRNO | ENOSYS });
  for (const call of FORBIDDEN_CALLS) {
    blocks.push({ nr: syscallNumber(call.name), action: SECCOMP_RET.KILL_PROCESS });
  }
  return assembleFilter(blocks, unknown);
}

/** A filter that could not be installed. */
export class SeccompError extends DenovisorError {
  constructor(message: string, options?: ErrorOptions) {
    super("unavailable", message, options);
  }
}

/**
 * Sets no_new_privs and installs the filter of `mode` on every thread of this process;
 * does nothing for `off`. Call it once, after start-up and before the guest runs: a
 * filter cannot be removed, and a second one would stack on the first.
 */
export function applySeccomp(mode: SeccompMode): void {
  if (mode === "off") return;
  const program = encodeFilter(compileFilter(mode, Deno.pid));
  try {
    setNoNewPrivs();
    installSeccompFilter(program, SECCOMP_FILTER_FLAG_TSYNC);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new SeccompError(
      `Cannot install the seccomp filter (${why}); the kernel needs CONFIG_SECCOMP_FILTER, or use --seccomp=off`,
      { cause: error },
    );
  }
  if (seccompMode() !== 2) throw new SeccompError("The seccomp filter did not take effect");
}

/**
 * Enters `mode` at the end of start-up, before the guest runs: `strict` fails the start
 * when the filter cannot be installed; `log`, an audit aid, only warns then; `off` warns
 * that every call is allowed. `warn` receives one line for the log.
 */
export function enterSeccomp(mode: SeccompMode, warn: (line: string) => void): void {
  if (mode === "off") {
    warn("seccomp filter off (--seccomp=off): the VMM may make any system call");
    return;
  }
  try {
    applySeccomp(mode);
  } catch (error) {
    if (mode === "strict") throw error;
    warn(`running without a seccomp filter: ${error instanceof Error ? error.message : error}`);
  }
}
