import assert from "node:assert/strict";
import { KVM_MEM_READONLY, type UserMemoryRegion } from "../ffi/kvm/vm_structs.ts";
import { BIOS_SHADOW_FIRST_SLOT, BiosShadow, BiosShadowError } from "./bios_shadow.ts";
import { GuestMemory } from "./guest_memory.ts";
import type { Vm } from "./vm.ts";

const MIB = 1024 * 1024;
const RAM_HOST = 0x7f00_0000_0000n;
const ROM_HOST = 0x7e00_0000_0000n;
const ROM_SIZE = 256 * 1024;

/** A VM that keeps its slots as KVM would, refusing to delete a slot that is not there. */
function fakeVm() {
  const slots = new Map<number, UserMemoryRegion>();
  const vm = {
    setUserMemoryRegion(region: UserMemoryRegion) {
      if (region.memorySize === 0) {
        assert.ok(slots.delete(region.slot), `slot ${region.slot} deleted but not there`);
      } else {
        assert.ok(!slots.has(region.slot), `slot ${region.slot} changed without a delete`);
        slots.set(region.slot, { ...region });
      }
    },
  } as unknown as Vm;
  /** The slot backing guest address `address`, if any. */
  const at = (address: number) =>
    [...slots.values()].find((s) =>
      address >= s.guestPhysAddr && address < s.guestPhysAddr + s.memorySize
    );
  return { vm, slots, at };
}

function shadow(ramSize = 8 * MIB) {
  const kvm = fakeVm();
  kvm.vm.setUserMemoryRegion({
    slot: 0,
    flags: 0,
    guestPhysAddr: 0,
    memorySize: ramSize,
    userspaceAddr: RAM_HOST,
  });
  const memory = GuestMemory.ofSize(2 * MIB);
  const bios = new BiosShadow(kvm.vm, {
    slot: 0,
    ram: { start: 0, size: ramSize, hostAddress: RAM_HOST },
    memory,
    rom: { address: ROM_HOST, size: ROM_SIZE },
  });
  return { ...kvm, bios, memory };
}

Deno.test("BiosShadow splits low RAM into [0, 0xC0000), 13 PAM ranges and RAM above 1 MiB", () => {
  const { slots, at, bios } = shadow();
  assert.equal(slots.size, 15);
  assert.deepEqual(slots.get(0), {
    slot: 0,
    flags: 0,
    guestPhysAddr: 0,
    memorySize: 0xc0000,
    userspaceAddr: RAM_HOST,
  });
  assert.equal(at(0x100000)?.slot, BIOS_SHADOW_FIRST_SLOT);
  assert.equal(at(0x7fffff)?.userspaceAddr, RAM_HOST + 0x100000n);
  assert.equal(bios.ranges.length, 13);
  assert.ok(bios.ranges.every((r) => r.access === "read-write"));
  // Every byte of the first 8 MiB is backed by the same host byte as before.
  for (const address of [0, 0xbffff, 0xc0000, 0xe4000, 0xfffff, 0x100000]) {
    const slot = at(address)!;
    assert.equal(
      slot.userspaceAddr - BigInt(slot.guestPhysAddr),
      RAM_HOST,
      `0x${address.toString(16)}`,
    );
    assert.equal(slot.flags, 0);
  }
});

Deno.test("read-only keeps the RAM behind a read-only slot; writes that exit are dropped", () => {
  const { at, bios, memory } = shadow();
  bios.setAccess(0xf0000, 0x10000, "read-only");
  const f = at(0xf0000)!;
  assert.equal(f.flags, KVM_MEM_READONLY);
  assert.equal(f.userspaceAddr, RAM_HOST + 0xf0000n);
  assert.equal(at(0xeffff)!.flags, 0, "the E segment is untouched");
  memory.writeU8(0xf0010, 0x11);
  bios.write(0xf0010 - 0xc0000, Uint8Array.of(0x22));
  assert.equal(memory.readU8(0xf0010), 0x11);
  bios.setAccess(0xf0000, 0x10000, "read-write");
  assert.equal(at(0xf0000)!.flags, 0);
});

Deno.test("write-only and rom read the firmware's tail; write-only writes reach RAM", () => {
  const { at, bios, memory } = shadow();
  bios.setAccess(0xe0000, 0x4000, "write-only");
  const e = at(0xe0000)!;
  assert.equal(e.flags, KVM_MEM_READONLY);
  assert.equal(e.userspaceAddr, ROM_HOST + BigInt(ROM_SIZE - 0x20000), "the ROM's last 128 KiB");
  bios.write(0xe0004 - 0xc0000, Uint8Array.of(0xab, 0xcd));
  assert.deepEqual([...memory.read(0xe0004, 2)], [0xab, 0xcd]);
  bios.setAccess(0xe0000, 0x4000, "rom");
  bios.write(0xe0004 - 0xc0000, Uint8Array.of(0));
  assert.equal(memory.readU8(0xe0004), 0xab, "rom drops writes");
});

Deno.test("the C and D segments read as an empty bus without RAM, and come back", () => {
  const { at, bios } = shadow();
  bios.setAccess(0xc0000, 0x8000, "rom");
  assert.equal(at(0xc0000), undefined, "no slot: reads exit to the device");
  const data = new Uint8Array(4);
  bios.read(0, data);
  assert.deepEqual([...data], [0xff, 0xff, 0xff, 0xff]);
  bios.setAccess(0xc0000, 0x8000, "write-only");
  assert.equal(at(0xc4000), undefined);
  bios.setAccess(0xc0000, 0x8000, "read-write");
  assert.equal(at(0xc4000)?.userspaceAddr, RAM_HOST + 0xc4000n);
});

Deno.test("BiosShadow refuses RAM that does not start at 0 and cover 1 MiB", () => {
  assert.throws(() => shadow(512 * 1024), BiosShadowError);
});
