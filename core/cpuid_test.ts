import assert from "node:assert/strict";
import { idBits, vcpuCpuid } from "./cpuid.ts";
import type { CpuidEntry } from "../ffi/kvm/cpuid.ts";

const leaf = (fn: number, index = 0, regs: Partial<CpuidEntry> = {}): CpuidEntry => ({
  function: fn,
  index,
  flags: 0,
  eax: 0,
  ebx: 0,
  ecx: 0,
  edx: 0,
  ...regs,
});

const supported = [
  leaf(1, 0, { eax: 0xa00f11, ebx: 0x00000800, ecx: 0x8000_0000 >>> 0, edx: EDX_ALL() }),
  leaf(0xa, 0, { eax: 0x07300403, ebx: 0xff }),
  leaf(0xb, 0),
  leaf(0xb, 1),
  leaf(0xb, 2),
  leaf(0x40000000, 0, { eax: 0x40000000 }),
  leaf(0x80000008, 0, { eax: 0x3030, ecx: 0xffff }),
];
function EDX_ALL() {
  return 0x178bfbff;
}

const get = (t: CpuidEntry[], fn: number, index = 0) =>
  t.find((e) => e.function === fn && e.index === index)!;

Deno.test("vcpuCpuid() puts each vCPU's APIC ID and the CPU count in leaf 1", () => {
  const t = vcpuCpuid(supported, { apicId: 3, cpuCount: 4 });
  const l1 = get(t, 1);
  assert.equal(l1.ebx >>> 24, 3);
  assert.equal((l1.ebx >>> 16) & 0xff, 4);
  assert.equal(l1.ebx & 0xffff, 0x0800, "CLFLUSH line size is kept");
  assert.notEqual(l1.ecx & (1 << 31), 0, "hypervisor bit set");
  assert.notEqual(l1.edx & (1 << 28), 0, "HTT set for several CPUs");
  assert.equal(get(vcpuCpuid(supported, { apicId: 0, cpuCount: 1 }), 1).edx & (1 << 28), 0);
});

Deno.test("vcpuCpuid() describes the topology in leaf 0xB with x2APIC IDs", () => {
  const t = vcpuCpuid(supported, { apicId: 5, cpuCount: 6 });
  assert.deepEqual([get(t, 0xb, 0).ebx, get(t, 0xb, 0).ecx >> 8, get(t, 0xb, 0).edx], [1, 1, 5]);
  const core = get(t, 0xb, 1);
  assert.deepEqual([core.eax, core.ebx, core.ecx >> 8, core.edx], [3, 6, 2, 5]);
  assert.equal(get(t, 0xb, 2).ecx >> 8, 0, "level 2 ends the enumeration");
});

Deno.test("vcpuCpuid() hides the PMU and announces the KVM leaves", () => {
  const t = vcpuCpuid(supported, { apicId: 0, cpuCount: 2 });
  assert.deepEqual([get(t, 0xa).eax, get(t, 0xa).ebx], [0, 0]);
  assert.equal(get(t, 0x40000000).eax, 0x40000001);
  assert.equal(get(t, 0x80000008).ecx & 0xff, 1);
  assert.equal((get(t, 0x80000008).ecx >> 12) & 0xf, 1);
});

Deno.test("vcpuCpuid() does not modify KVM's supported table", () => {
  const before = JSON.stringify(supported);
  vcpuCpuid(supported, { apicId: 7, cpuCount: 8 });
  assert.equal(JSON.stringify(supported), before);
});

Deno.test("idBits() counts the bits needed for an ID", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 8, 9].map(idBits), [0, 1, 2, 2, 3, 3, 4]);
});
