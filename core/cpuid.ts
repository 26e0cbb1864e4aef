/**
 * The CPUID table each vCPU gets: what KVM supports, with the topology (APIC IDs, CPU
 * count) filled in per vCPU and the hypervisor leaves announcing KVM's paravirt
 * features. Pure, so the table can be checked without KVM.
 *
 * @module
 */

import type { CpuidEntry } from "../ffi/kvm/cpuid.ts";

/** Where this vCPU sits in the VM. */
export interface CpuTopology {
  /** This vCPU's APIC ID (Denovisor numbers vCPUs 0..n-1 and uses the index as ID). */
  apicId: number;
  /** vCPUs in the VM, all presented as cores of one socket. */
  cpuCount: number;
}

const LEAF = {
  FEATURES: 0x1,
  CACHE_PARAMETERS: 0x4,
  PERFMON: 0xa,
  EXTENDED_TOPOLOGY: 0xb,
  V2_EXTENDED_TOPOLOGY: 0x1f,
  HYPERVISOR: 0x4000_0000,
  AMD_SIZE_IDENTIFIERS: 0x8000_0008,
  AMD_EXTENDED_APIC_ID: 0x8000_001e,
} as const;

const ECX_HYPERVISOR = 1 << 31;
const EDX_HTT = 1 << 28;
/** Topology level types in leaf 0xB/0x1F ECX[15:8]. */
const LEVEL_SMT = 1;
const LEVEL_CORE = 2;

/** Bits needed to number `count` items (the APIC ID shift of a topology level). */
export function idBits(count: number): number {
  return count <= 1 ? 0 : Math.ceil(Math.log2(count));
}

/** The CPUID table for one vCPU, derived from KVM's supported table. */
export function vcpuCpuid(supported: readonly CpuidEntry[], topology: CpuTopology): CpuidEntry[] {
  const { apicId, cpuCount } = topology;
  const entries = supported.map((entry) => ({ ...entry }));
  for (const e of entries) {
    switch (e.function) {
      case LEAF.FEATURES:
        // EBX[31:24] initial APIC ID, EBX[23:16] addressable logical processor IDs.
        e.ebx = ((apicId & 0xff) << 24) | (Math.min(cpuCount, 0xff) << 16) | (e.ebx & 0xffff);
        e.ecx |= ECX_HYPERVISOR;
        e.edx = cpuCount > 1 ? e.edx | EDX_HTT : e.edx & ~EDX_HTT;
        break;
      case LEAF.CACHE_PARAMETERS: {
        // EAX[31:26]: cores per package - 1; EAX[25:14]: threads sharing the cache - 1.
        const level = (e.eax >>> 5) & 0x7;
        const sharing = level >= 3 ? cpuCount - 1 : 0;
        if ((e.eax & 0x1f) !== 0) {
          e.eax = (e.eax & 0x3fff) | (((cpuCount - 1) & 0x3f) << 26) | ((sharing & 0xfff) << 14);
        }
        break;
      }
      case LEAF.PERFMON:
        // No virtual PMU is promised: a guest must not program counters that are not there.
        e.eax =
          e.ebx =
          e.ecx =
          e.edx =
            0;
        break;
      case LEAF.EXTENDED_TOPOLOGY:
      case LEAF.V2_EXTENDED_TOPOLOGY:
        Object.assign(e, topologyLevel(e.index, apicId, cpuCount));
        break;
      case LEAF.HYPERVISOR:
        e.eax = Math.max(e.eax, LEAF.HYPERVISOR + 1);
        break;
      case LEAF.AMD_SIZE_IDENTIFIERS:
        // ECX[7:0]: cores - 1; ECX[15:12]: APIC ID bits for cores.
        e.ecx = (e.ecx & ~0xf0ff) | ((cpuCount - 1) & 0xff) | (idBits(cpuCount) << 12);
        break;
      case LEAF.AMD_EXTENDED_APIC_ID:
        e.eax = apicId;
        e.ebx = (e.ebx & ~0xff) | (apicId & 0xff);
        e.ecx = 0;
        break;
    }
  }
  return entries;
}

function topologyLevel(
  index: number,
  apicId: number,
  cpuCount: number,
): Pick<CpuidEntry, "eax" | "ebx" | "ecx" | "edx"> {
  switch (index) {
    case 0:
      return { eax: 0, ebx: 1, ecx: (LEVEL_SMT << 8) | index, edx: apicId };
    case 1:
      return { eax: idBits(cpuCount), ebx: cpuCount, ecx: (LEVEL_CORE << 8) | index, edx: apicId };
    default:
      // An invalid level ends the enumeration.
      return { eax: 0, ebx: 0, ecx: index, edx: apicId };
  }
}
