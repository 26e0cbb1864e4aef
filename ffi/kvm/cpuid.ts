/**
 * Codecs for struct kvm_cpuid2 / kvm_cpuid_entry2 and struct kvm_msrs / kvm_msr_entry.
 *
 * @module
 */

/** struct kvm_cpuid_entry2. */
export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/** kvm_cpuid_entry2.flags: the leaf has sub-leaves selected by ECX. */
export const KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1;

const CPUID_HEADER = 8;
const CPUID_ENTRY = 40;
/** Room KVM_GET_SUPPORTED_CPUID gets; it fails with E2BIG if the table is bigger. */
export const CPUID_MAX_ENTRIES = 256;

/** A kvm_cpuid2 buffer with room for `capacity` entries, as KVM_GET_*_CPUID wants it. */
export function cpuidBuffer(capacity = CPUID_MAX_ENTRIES): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(CPUID_HEADER + capacity * CPUID_ENTRY);
  new DataView(bytes.buffer).setUint32(0, capacity, true);
  return bytes;
}

export function encodeCpuid(entries: CpuidEntry[]): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(CPUID_HEADER + entries.length * CPUID_ENTRY);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, entries.length, true);
  entries.forEach((e, i) => {
    const o = CPUID_HEADER + i * CPUID_ENTRY;
    [e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx].forEach((value, j) =>
      view.setUint32(o + j * 4, value >>> 0, true)
    );
  });
  return bytes;
}

export function decodeCpuid(bytes: Uint8Array): CpuidEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true);
  return Array.from({ length: count }, (_, i) => {
    const o = CPUID_HEADER + i * CPUID_ENTRY;
    const u32 = (j: number) => view.getUint32(o + j * 4, true);
    return {
      function: u32(0),
      index: u32(1),
      flags: u32(2),
      eax: u32(3),
      ebx: u32(4),
      ecx: u32(5),
      edx: u32(6),
    };
  });
}

/** struct kvm_msr_entry. */
export interface MsrEntry {
  index: number;
  data: bigint;
}

const MSRS_HEADER = 8;
const MSR_ENTRY = 16;

export function encodeMsrs(entries: MsrEntry[]): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(MSRS_HEADER + entries.length * MSR_ENTRY);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, entries.length, true);
  entries.forEach((e, i) => {
    view.setUint32(MSRS_HEADER + i * MSR_ENTRY, e.index, true);
    view.setBigUint64(MSRS_HEADER + i * MSR_ENTRY + 8, e.data, true);
  });
  return bytes;
}

export function decodeMsrs(bytes: Uint8Array, count?: number): MsrEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = count ?? view.getUint32(0, true);
  return Array.from({ length: n }, (_, i) => ({
    index: view.getUint32(MSRS_HEADER + i * MSR_ENTRY, true),
    data: view.getBigUint64(MSRS_HEADER + i * MSR_ENTRY + 8, true),
  }));
}
