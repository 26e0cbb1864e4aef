import assert from "node:assert/strict";
import {
  decodeIoapic,
  decodePic,
  decodePitState,
  encodeIoapic,
  encodePic,
  encodePitState,
  IOAPIC_NUM_PINS,
  type PitState,
} from "./irqchip_structs.ts";
import { decodeClock, encodeClock, KVM_CLOCK_REALTIME } from "./vm_structs.ts";

// Offsets below were printed with offsetof() from <linux/kvm.h> on x86-64.

Deno.test("kvm_pic_state is 16 u8 fields in the header's order", () => {
  const pic = decodePic(Uint8Array.from({ length: 512 }, (_, i) => i < 16 ? i + 1 : 0));
  assert.equal(pic.lastIrr, 1);
  assert.equal(pic.imr, 3);
  assert.equal(pic.irqBase, 6);
  assert.equal(pic.elcrMask, 16);
  const bytes = encodePic(pic);
  assert.equal(bytes.length, 512, "the union inside struct kvm_irqchip");
  assert.deepEqual(decodePic(bytes), pic);
});

Deno.test("kvm_ioapic_state puts id at 12, irr at 16 and the redirection table at 24", () => {
  const ioapic = {
    baseAddress: 0xfec00000n,
    ioregsel: 0x10,
    id: 2,
    irr: 0x5,
    redirtbl: Array.from({ length: IOAPIC_NUM_PINS }, (_, i) => BigInt(i) << 56n | 0x10000n),
  };
  const bytes = encodeIoapic(ioapic);
  const view = new DataView(bytes.buffer);
  assert.equal(view.getBigUint64(0, true), 0xfec00000n);
  assert.equal(view.getUint32(8, true), 0x10, "ioregsel");
  assert.equal(view.getUint32(12, true), 2, "id");
  assert.equal(view.getUint32(16, true), 5, "irr");
  assert.equal(view.getBigUint64(24 + 23 * 8, true), 23n << 56n | 0x10000n, "redirtbl[23]");
  assert.deepEqual(decodeIoapic(bytes), ioapic);
});

Deno.test("kvm_pit_state2 is three 24-byte channels then flags at 72", () => {
  const channel = (i: number) => ({
    count: 0x10000 - i,
    latchedCount: 0x1234 + i,
    countLatched: 0,
    statusLatched: 1,
    status: 0x34,
    readState: 3,
    writeState: 4,
    writeLatch: 0x9b,
    rwMode: 3,
    mode: 2 + i,
    bcd: 0,
    gate: 1,
  });
  const pit: PitState = { channels: [channel(0), channel(1), channel(2)], flags: 2 };
  const bytes = encodePitState(pit);
  const view = new DataView(bytes.buffer);
  assert.equal(bytes.length, 112);
  assert.equal(view.getUint32(24, true), 0xffff, "channels[1].count");
  assert.equal(view.getUint16(24 + 4, true), 0x1235, "channels[1].latched_count");
  assert.equal(view.getUint8(24 + 9), 3, "channels[1].read_state");
  assert.equal(view.getUint8(24 + 13), 3, "channels[1].mode");
  assert.equal(view.getUint8(48 + 15), 1, "channels[2].gate");
  assert.equal(view.getBigInt64(16, true), 0n, "count_load_time is left to KVM");
  assert.equal(view.getUint32(72, true), 2, "flags");
  assert.deepEqual(decodePitState(bytes), pit);
});

Deno.test("kvm_clock_data keeps realtime at 16 only when KVM_CLOCK_REALTIME says it is valid", () => {
  const bytes = encodeClock({ clock: 123n, flags: KVM_CLOCK_REALTIME, realtime: 456n });
  const view = new DataView(bytes.buffer);
  assert.equal(bytes.length, 48);
  assert.equal(view.getBigUint64(16, true), 456n);
  assert.deepEqual(decodeClock(bytes), { clock: 123n, flags: KVM_CLOCK_REALTIME, realtime: 456n });
  view.setUint32(8, 2, true);
  assert.deepEqual(decodeClock(bytes), { clock: 123n, flags: 2 });
});
