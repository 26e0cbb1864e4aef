/**
 * Whether this host can run a saved guest: the CPU features the saved vCPUs were shown
 * (their CPUID, saved with them rather than re-derived) must all be features this host's
 * KVM offers (KVM_GET_SUPPORTED_CPUID), and the CPU vendor must be the same. A guest
 * that found AVX-512 at boot and uses it would die of #UD on a host without it, long
 * after the restore "worked"; so the restore is refused before anything is built.
 *
 * Only feature-flag registers are compared, minus the bits the OS or the VMM sets at
 * run time (OSXSAVE, OSPKE follow CR4; HYPERVISOR and HTT are Denovisor's own).
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";
import type { CpuidEntry } from "../../ffi/kvm/cpuid.ts";

/** A state that needs CPU features this host lacks (code conflict: another host may do). */
export class CpuidMismatchError extends DenovisorError {
  constructor(message: string) {
    super("conflict", message);
  }
}

type Register = "eax" | "ebx" | "ecx" | "edx";

interface FeatureRegister {
  leaf: number;
  index: number;
  register: Register;
  /** Bits set at run time (by the guest OS or by the VMM), not host features. */
  dynamic: number;
  /** Names of well-known bits, for the message. */
  names: Readonly<Record<number, string>>;
}

/** The feature-flag registers compared. */
const FEATURE_REGISTERS: readonly FeatureRegister[] = [
  {
    leaf: 0x1,
    index: 0,
    register: "ecx",
    dynamic: (1 << 27) | (1 << 31), // OSXSAVE, HYPERVISOR
    names: {
      0: "sse3",
      1: "pclmulqdq",
      9: "ssse3",
      12: "fma",
      13: "cx16",
      19: "sse4.1",
      20: "sse4.2",
      22: "movbe",
      23: "popcnt",
      25: "aes",
      26: "xsave",
      28: "avx",
      29: "f16c",
      30: "rdrand",
    },
  },
  {
    leaf: 0x1,
    index: 0,
    register: "edx",
    dynamic: (1 << 9) | (1 << 28), // APIC (cleared while the guest disables it), HTT
    names: { 25: "sse", 26: "sse2" },
  },
  {
    leaf: 0x7,
    index: 0,
    register: "ebx",
    dynamic: 0,
    names: {
      0: "fsgsbase",
      3: "bmi1",
      5: "avx2",
      8: "bmi2",
      9: "erms",
      10: "invpcid",
      16: "avx512f",
      18: "rdseed",
      19: "adx",
      29: "sha",
    },
  },
  { leaf: 0x7, index: 0, register: "ecx", dynamic: 1 << 4, names: { 3: "pku", 8: "gfni" } }, // OSPKE
  { leaf: 0x7, index: 0, register: "edx", dynamic: 0, names: { 26: "ibrs", 27: "stibp" } },
  { leaf: 0xd, index: 1, register: "eax", dynamic: 0, names: { 0: "xsaveopt", 3: "xsaves" } },
  { leaf: 0x8000_0001, index: 0, register: "ecx", dynamic: 0, names: { 5: "lzcnt" } },
  { leaf: 0x8000_0001, index: 0, register: "edx", dynamic: 0, names: { 27: "rdtscp" } },
];

function find(entries: readonly CpuidEntry[], leaf: number, index: number): CpuidEntry | undefined {
  // Leaves without sub-leaves ignore ECX: match them by function alone.
  return entries.find((e) => e.function === leaf && e.index === index) ??
    (index === 0 ? entries.find((e) => e.function === leaf) : undefined);
}

function vendor(entries: readonly CpuidEntry[]): string {
  const leaf0 = find(entries, 0, 0);
  if (leaf0 === undefined) return "unknown";
  const bytes = new Uint8Array(12);
  const view = new DataView(bytes.buffer);
  [leaf0.ebx, leaf0.edx, leaf0.ecx].forEach((value, i) => view.setUint32(i * 4, value >>> 0, true));
  return new TextDecoder().decode(bytes).replace(/\0+$/, "");
}

/**
 * Refuses `saved` (one vCPU's CPUID from a state) on a host whose KVM supports
 * `supported`, naming the first register with missing features and what they are.
 */
export function checkCpuidCompatible(
  saved: readonly CpuidEntry[],
  supported: readonly CpuidEntry[],
  vcpu = 0,
): void {
  const savedVendor = vendor(saved);
  const hostVendor = vendor(supported);
  if (savedVendor !== hostVendor) {
    throw new CpuidMismatchError(
      `The state was saved on a ${savedVendor} CPU and this host has a ${hostVendor} one: ` +
        `restore it on a host with the same kind of CPU`,
    );
  }
  for (const feature of FEATURE_REGISTERS) {
    const used = find(saved, feature.leaf, feature.index);
    if (used === undefined) continue;
    const offered = find(supported, feature.leaf, feature.index);
    const missing = ((used[feature.register] >>> 0) & ~feature.dynamic &
      ~((offered?.[feature.register] ?? 0) >>> 0)) >>> 0;
    if (missing === 0) continue;
    const bits: string[] = [];
    for (let bit = 0; bit < 32; bit++) {
      if (missing & (1 << bit)) {
        bits.push(feature.names[bit] ? `${bit} (${feature.names[bit]})` : String(bit));
      }
    }
    const where = `CPUID.(EAX=0x${feature.leaf.toString(16)},ECX=${feature.index}).` +
      feature.register.toUpperCase();
    throw new CpuidMismatchError(
      `vCPU ${vcpu} of the state uses CPU features this host's KVM does not offer: ` +
        `${where} bit${bits.length > 1 ? "s" : ""} ${bits.join(", ")}; ` +
        `restore it on a host with the same CPU features`,
    );
  }
}
