/**
 * A classic-BPF assembler for seccomp allow-lists, the shape Firecracker's seccompiler
 * emits: check the architecture, refuse the x32 ABI, then one block per system call —
 * `nr == N` jumps into the block, which either returns its action at once or checks
 * arguments (the low 32 bits of one argument against a set of values, or a set of bits
 * that must be clear) and returns the block's fallback action when none matches.
 *
 * Blocks are tested in table order, so the hot calls (ioctl for KVM_RUN, futex,
 * epoll_wait, read, write) go first. Calls whose block needs no argument are also
 * answered from the kernel's per-filter action cache (Linux >= 5.11) without running the
 * program at all.
 *
 * The output is `struct sock_filter` records (8 bytes each, little-endian) for
 * ffi/seccomp.ts; `runBpf` in ./bpf_run.ts executes them for tests.
 *
 * @module
 */

/** struct seccomp_data offsets. */
export const SECCOMP_DATA = { nr: 0, arch: 4, args: 16 } as const;
/** AUDIT_ARCH_X86_64: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE. */
export const AUDIT_ARCH_X86_64 = 0xc000003e;
/** System calls of the x32 ABI have this bit set in nr; a 64-bit filter must refuse them. */
export const X32_SYSCALL_BIT = 0x40000000;

/** seccomp return actions (the high 16 bits; SECCOMP_RET_ERRNO carries errno below). */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

/** BPF opcodes used here. */
export const BPF = {
  LD_W_ABS: 0x20, // BPF_LD | BPF_W | BPF_ABS
  JMP_JA: 0x05, // BPF_JMP | BPF_JA
  JMP_JEQ_K: 0x15, // BPF_JMP | BPF_JEQ | BPF_K
  JMP_JGE_K: 0x35, // BPF_JMP | BPF_JGE | BPF_K
  JMP_JSET_K: 0x45, // BPF_JMP | BPF_JSET | BPF_K
  RET_K: 0x06, // BPF_RET | BPF_K
} as const;

/** One BPF instruction. */
export interface Instruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** What one argument must look like (its low 32 bits: ioctl requests and socket families fit). */
export type ArgCheck =
  | { arg: number; oneOf: readonly number[] }
  | { arg: number; clearBits: number };

/** One system call's block. */
export interface SyscallBlock {
  nr: number;
  /** Returned when `check` is absent or passes. */
  action: number;
  /** Arguments to check before `action`; `otherwise` is returned when the check fails. */
  check?: ArgCheck;
  otherwise?: number;
}

const ld = (offset: number): Instruction => ({ code: BPF.LD_W_ABS, jt: 0, jf: 0, k: offset });
const ret = (action: number): Instruction => ({ code: BPF.RET_K, jt: 0, jf: 0, k: action >>> 0 });
const jump = (code: number, k: number, jt: number, jf: number): Instruction => {
  if (jt > 255 || jf > 255) throw new RangeError(`BPF jump too far (${jt}, ${jf})`);
  return { code, jt, jf, k: k >>> 0 };
};

/** The instructions of one block, entered when nr matched. */
function blockBody(block: SyscallBlock): Instruction[] {
  if (block.check === undefined) return [ret(block.action)];
  const otherwise = block.otherwise ?? SECCOMP_RET.KILL_PROCESS;
  const check = block.check;
  if (check.arg < 0 || check.arg > 5) throw new RangeError(`No argument ${check.arg}`);
  const load = ld(SECCOMP_DATA.args + 8 * check.arg); // little-endian: the low word first
  if ("clearBits" in check) {
    // jset: any forbidden bit set -> otherwise, else the action.
    return [load, jump(BPF.JMP_JSET_K, check.clearBits, 0, 1), ret(otherwise), ret(block.action)];
  }
  const values = [...new Set(check.oneOf.map((v) => v >>> 0))];
  const body = [load];
  // Value i jumps over the remaining compares and the `otherwise` return to the action.
  values.forEach((value, i) => body.push(jump(BPF.JMP_JEQ_K, value, values.length - i, 0)));
  body.push(ret(otherwise), ret(block.action));
  return body;
}

/**
 * Assembles a filter: a foreign architecture or an x32 call gets `KILL_PROCESS`, each
 * block's call its block's answer, and any other call `defaultAction`.
 */
export function assembleFilter(
  blocks: readonly SyscallBlock[],
  defaultAction: number,
): Instruction[] {
  const seen = new Set<number>();
  const program: Instruction[] = [
    ld(SECCOMP_DATA.arch),
    jump(BPF.JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
    ret(SECCOMP_RET.KILL_PROCESS),
    ld(SECCOMP_DATA.nr),
    jump(BPF.JMP_JGE_K, X32_SYSCALL_BIT, 0, 1),
    ret(SECCOMP_RET.KILL_PROCESS),
  ];
  for (const block of blocks) {
    if (seen.has(block.nr)) throw new RangeError(`System call ${block.nr} has two blocks`);
    seen.add(block.nr);
    const body = blockBody(block);
    // A block with argument checks clobbered the accumulator: reload nr after it.
    const reload = block.check === undefined ? [] : [ld(SECCOMP_DATA.nr)];
    program.push(jump(BPF.JMP_JEQ_K, block.nr, 0, body.length), ...body, ...reload);
  }
  program.push(ret(defaultAction));
  return program;
}

/** The `struct sock_filter` records of `program`, as the kernel reads them. */
export function encodeFilter(program: readonly Instruction[]): Uint8Array {
  const bytes = new Uint8Array(program.length * 8);
  const view = new DataView(bytes.buffer);
  program.forEach((insn, i) => {
    view.setUint16(i * 8, insn.code, true);
    view.setUint8(i * 8 + 2, insn.jt);
    view.setUint8(i * 8 + 3, insn.jf);
    view.setUint32(i * 8 + 4, insn.k, true);
  });
  return bytes;
}
