/**
 * Runs an assembled seccomp program on a system call, as the kernel would: tests use it
 * to check every rule of a policy without installing anything, and `denovisor` could use
 * it to explain an action. Only the opcodes ./bpf.ts emits are known; any other one is
 * a bug in the assembler and throws.
 *
 * @module
 */

import { AUDIT_ARCH_X86_64, BPF, type Instruction, SECCOMP_DATA } from "./bpf.ts";

/** The system call a filter sees: number, architecture and up to six arguments. */
export interface SyscallProbe {
  nr: number;
  arch?: number;
  args?: readonly (number | bigint)[];
}

function word(probe: SyscallProbe, offset: number): number {
  if (offset === SECCOMP_DATA.nr) return probe.nr >>> 0;
  if (offset === SECCOMP_DATA.arch) return (probe.arch ?? AUDIT_ARCH_X86_64) >>> 0;
  const index = (offset - SECCOMP_DATA.args) >> 3;
  if (offset < SECCOMP_DATA.args || index > 5) throw new RangeError(`BPF load at ${offset}`);
  const value = BigInt.asUintN(64, BigInt(probe.args?.[index] ?? 0));
  return Number((offset - SECCOMP_DATA.args) % 8 === 0 ? value & 0xffffffffn : value >> 32n);
}

/** The action `program` returns for `probe`. */
export function runBpf(program: readonly Instruction[], probe: SyscallProbe): number {
  return traceBpf(program, probe).action;
}

/** The action `program` returns for `probe`, and how many instructions it ran to get there. */
export function traceBpf(
  program: readonly Instruction[],
  probe: SyscallProbe,
): { action: number; steps: number } {
  let accumulator = 0;
  let steps = 0;
  for (let pc = 0; pc < program.length; pc++) {
    steps++;
    const { code, jt, jf, k } = program[pc];
    switch (code) {
      case BPF.LD_W_ABS:
        accumulator = word(probe, k);
        break;
      case BPF.JMP_JA:
        pc += k;
        break;
      case BPF.JMP_JEQ_K:
        pc += accumulator === k ? jt : jf;
        break;
      case BPF.JMP_JGE_K:
        pc += accumulator >= k ? jt : jf;
        break;
      case BPF.JMP_JSET_K:
        pc += (accumulator & k) !== 0 ? jt : jf;
        break;
      case BPF.RET_K:
        return { action: k >>> 0, steps };
      default:
        throw new Error(`Unknown BPF opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error("BPF program ran off its end");
}
