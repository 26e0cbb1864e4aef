/**
 * Decoding of a vCPU's `kvm_run` page into a typed exit. Pure: it reads bytes, so tests
 * can feed it hand-made pages.
 *
 * @module
 */

import {
  KVM_EXIT,
  KVM_EXIT_IO_OUT,
  KVM_INTERNAL_ERROR,
  KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES,
  RUN,
} from "../ffi/kvm/run.ts";

/** Why KVM_RUN returned, one variant per exit the VMM handles. */
export type VcpuExit =
  | {
    kind: "io";
    direction: "in" | "out";
    port: number;
    size: 1 | 2 | 4;
    count: number;
    /** The data area in the run page: `size * count` bytes. */
    data: Uint8Array;
  }
  | {
    kind: "mmio";
    isWrite: boolean;
    address: number;
    /** The data area in the run page: `len` bytes. */
    data: Uint8Array;
  }
  | { kind: "hlt" }
  | { kind: "shutdown" }
  | { kind: "failEntry"; hardwareReason: bigint; cpu: number }
  | {
    kind: "internalError";
    suberror: number;
    /** Instruction bytes KVM could not emulate, when it reported them. */
    instruction?: Uint8Array;
    data: bigint[];
  }
  | { kind: "systemEvent"; type: number; data: bigint[] }
  | { kind: "intr" }
  | { kind: "irqWindowOpen" }
  | { kind: "unknown"; reason: number; hardwareReason: bigint };

/**
 * Decodes the exit recorded in `run` (the whole mmap'd kvm_run area). The vCPU thread
 * passes a `view` it keeps over the same bytes: this runs once per exit.
 */
export function decodeExit(
  run: Uint8Array,
  view: DataView = new DataView(run.buffer, run.byteOffset, run.byteLength),
): VcpuExit {
  const reason = view.getUint32(RUN.EXIT_REASON, true);
  switch (reason) {
    case KVM_EXIT.IO: {
      const size = view.getUint8(RUN.IO_SIZE);
      const count = view.getUint32(RUN.IO_COUNT, true);
      const offset = Number(view.getBigUint64(RUN.IO_DATA_OFFSET, true));
      const length = size * count;
      if (![1, 2, 4].includes(size) || offset + length > run.length || offset < RUN.EXIT) {
        return { kind: "unknown", reason, hardwareReason: 0n };
      }
      return {
        kind: "io",
        direction: view.getUint8(RUN.IO_DIRECTION) === KVM_EXIT_IO_OUT ? "out" : "in",
        port: view.getUint16(RUN.IO_PORT, true),
        size: size as 1 | 2 | 4,
        count,
        data: run.subarray(offset, offset + length),
      };
    }
    case KVM_EXIT.MMIO: {
      const len = Math.min(view.getUint32(RUN.MMIO_LEN, true), 8);
      return {
        kind: "mmio",
        isWrite: view.getUint8(RUN.MMIO_IS_WRITE) !== 0,
        address: Number(view.getBigUint64(RUN.MMIO_PHYS_ADDR, true)),
        data: run.subarray(RUN.MMIO_DATA, RUN.MMIO_DATA + len),
      };
    }
    case KVM_EXIT.HLT:
      return { kind: "hlt" };
    case KVM_EXIT.SHUTDOWN:
      return { kind: "shutdown" };
    case KVM_EXIT.FAIL_ENTRY:
      return {
        kind: "failEntry",
        hardwareReason: view.getBigUint64(RUN.FAIL_ENTRY_REASON, true),
        cpu: view.getUint32(RUN.FAIL_ENTRY_CPU, true),
      };
    case KVM_EXIT.INTERNAL_ERROR:
      return decodeInternalError(run, view);
    case KVM_EXIT.SYSTEM_EVENT: {
      const ndata = Math.min(view.getUint32(RUN.SYSTEM_EVENT_NDATA, true), 16);
      return {
        kind: "systemEvent",
        type: view.getUint32(RUN.SYSTEM_EVENT_TYPE, true),
        data: readU64s(view, RUN.INTERNAL_DATA, ndata),
      };
    }
    case KVM_EXIT.INTR:
      return { kind: "intr" };
    case KVM_EXIT.IRQ_WINDOW_OPEN:
      return { kind: "irqWindowOpen" };
    default:
      return {
        kind: "unknown",
        reason,
        hardwareReason: view.getBigUint64(RUN.HW_EXIT_REASON, true),
      };
  }
}

function decodeInternalError(run: Uint8Array, view: DataView): VcpuExit {
  const suberror = view.getUint32(RUN.INTERNAL_SUBERROR, true);
  const ndata = Math.min(view.getUint32(RUN.INTERNAL_NDATA, true), 16);
  const data = readU64s(view, RUN.INTERNAL_DATA, ndata);
  if (
    suberror === KVM_INTERNAL_ERROR.EMULATION && ndata >= 2 &&
    (data[0] & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) !== 0n
  ) {
    const size = Math.min(view.getUint8(RUN.EMULATION_INSN_SIZE), 15);
    const start = RUN.EMULATION_INSN_BYTES;
    return { kind: "internalError", suberror, data, instruction: run.slice(start, start + size) };
  }
  return { kind: "internalError", suberror, data };
}

function readU64s(view: DataView, offset: number, count: number): bigint[] {
  return Array.from({ length: count }, (_, i) => view.getBigUint64(offset + i * 8, true));
}
