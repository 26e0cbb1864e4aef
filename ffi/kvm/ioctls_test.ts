import assert from "node:assert/strict";
import { KVM, KVM_CAP } from "./ioctls.ts";

Deno.test("KVM ioctl numbers match the values <linux/kvm.h> produces", () => {
  // Values as the kernel headers compute them on x86-64.
  const expected: Partial<Record<keyof typeof KVM, bigint>> = {
    GET_API_VERSION: 0xae00n,
    CREATE_VM: 0xae01n,
    CHECK_EXTENSION: 0xae03n,
    GET_VCPU_MMAP_SIZE: 0xae04n,
    GET_SUPPORTED_CPUID: 0xc008ae05n,
    CREATE_VCPU: 0xae41n,
    SET_USER_MEMORY_REGION: 0x4020ae46n,
    SET_TSS_ADDR: 0xae47n,
    SET_IDENTITY_MAP_ADDR: 0x4008ae48n,
    CREATE_IRQCHIP: 0xae60n,
    IRQ_LINE: 0x4008ae61n,
    GET_IRQCHIP: 0xc208ae62n,
    SET_IRQCHIP: 0x8208ae63n,
    SET_GSI_ROUTING: 0x4008ae6an,
    IRQFD: 0x4020ae76n,
    CREATE_PIT2: 0x4040ae77n,
    IOEVENTFD: 0x4040ae79n,
    SET_CLOCK: 0x4030ae7bn,
    GET_CLOCK: 0x8030ae7cn,
    GET_PIT2: 0x8070ae9fn,
    SET_PIT2: 0x4070aea0n,
    RUN: 0xae80n,
    GET_REGS: 0x8090ae81n,
    SET_REGS: 0x4090ae82n,
    GET_SREGS: 0x8138ae83n,
    SET_SREGS: 0x4138ae84n,
    TRANSLATE: 0xc018ae85n,
    GET_MSRS: 0xc008ae88n,
    SET_MSRS: 0x4008ae89n,
    GET_FPU: 0x81a0ae8cn,
    SET_FPU: 0x41a0ae8dn,
    GET_LAPIC: 0x8400ae8en,
    SET_LAPIC: 0x4400ae8fn,
    SET_CPUID2: 0x4008ae90n,
    GET_MP_STATE: 0x8004ae98n,
    SET_MP_STATE: 0x4004ae99n,
    GET_VCPU_EVENTS: 0x8040ae9fn,
    SET_VCPU_EVENTS: 0x4040aea0n,
    ENABLE_CAP: 0x4068aea3n,
    GET_XSAVE: 0x9000aea4n,
    KVMCLOCK_CTRL: 0xaeadn,
    // The state a save/restore moves (printed by a C program from the same header).
    GET_MSR_INDEX_LIST: 0xc004ae02n,
    SET_XSAVE: 0x5000aea5n,
    GET_XSAVE2: 0x9000aecfn,
    GET_XCRS: 0x8188aea6n,
    SET_XCRS: 0x4188aea7n,
    GET_DEBUGREGS: 0x8080aea1n,
    SET_DEBUGREGS: 0x4080aea2n,
    GET_CPUID2: 0xc008ae91n,
    GET_TSC_KHZ: 0xaea3n,
    SET_TSC_KHZ: 0xaea2n,
  };
  for (const [name, value] of Object.entries(expected)) {
    assert.equal(KVM[name as keyof typeof KVM], value, name);
  }
});

Deno.test("KVM capability numbers match <linux/kvm.h>", () => {
  assert.deepEqual(
    [KVM_CAP.XSAVE, KVM_CAP.XCRS, KVM_CAP.DEBUGREGS, KVM_CAP.KVMCLOCK_CTRL, KVM_CAP.XSAVE2],
    [0x37, 0x38, 0x32, 0x4c, 0xd0],
  );
  assert.deepEqual(
    [KVM_CAP.ADJUST_CLOCK, KVM_CAP.VCPU_EVENTS, KVM_CAP.PIT_STATE2, KVM_CAP.TSC_CONTROL],
    [0x27, 0x29, 0x23, 60],
  );
});
