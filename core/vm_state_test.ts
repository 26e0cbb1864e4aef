import assert from "node:assert/strict";
import { StateError } from "../common/persist.ts";
import { sampleVmState } from "./testing/kvm_state_samples.ts";
import { parseVmState, type VmState, vmStateFrom } from "./vm_state.ts";

const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value));

Deno.test("a VM state round-trips: parse(JSON(state)) gives back the same state", () => {
  const state = sampleVmState();
  const parts = parseVmState(viaJson(state));
  // Restore sets the clock with flags 0: kvmclock resumes from the saved value.
  assert.equal(parts.clock.flags, 0);
  assert.equal(parts.clock.clock, 123_456_789_000n);
  assert.deepEqual(vmStateFrom(parts), state);
});

Deno.test("a PIT channel no guest programmed (KVM's mode 0xff) round-trips", () => {
  const state = sampleVmState();
  state.pit.channels[1].mode = 0xff;
  assert.deepEqual(vmStateFrom(parseVmState(viaJson(state))), state);
});

Deno.test("a VM state without KVM's realtime reads back with realtime null", () => {
  const state = { ...sampleVmState(), clock: { clock: "0x10", realtime: null } };
  assert.deepEqual(vmStateFrom(parseVmState(viaJson(state))).clock, state.clock);
});

function refuses(edit: (state: VmState) => void, path: string, reason: RegExp): void {
  const state = viaJson(sampleVmState()) as VmState;
  edit(state);
  assert.throws(() => parseVmState(state), (error: unknown) => {
    assert.ok(error instanceof StateError, String(error));
    assert.equal(error.path, path);
    assert.match(error.message, reason);
    return true;
  });
}

Deno.test("parseVmState() refuses states KVM could never have produced, naming the field", () => {
  refuses((s) => s.version = 2 as 1, "state.version", /not supported/);
  refuses((s) => s.pics.pop(), "state.pics", /expected 2 PICs/);
  refuses((s) => s.pics[1].initState = 4, "state.pics[1].initState", /0\.\.3/);
  refuses((s) => s.pics[0].imr = 256, "state.pics[0].imr", /0\.\.255/);
  refuses((s) => s.pit.channels[2].mode = 6, "state.pit.channels[2].mode", /0\.\.5 or 255/);
  refuses((s) => s.pit.channels[2].mode = 256, "state.pit.channels[2].mode", /0\.\.255/);
  refuses((s) => s.pit.channels[0].count = 0x10001, "state.pit.channels[0].count", /65536/);
  refuses((s) => s.pit.channels.push(s.pit.channels[0]), "state.pit.channels", /at most 3/);
  refuses((s) => s.pit.flags = 4, "state.pit.flags", /0\.\.3/);
  refuses((s) => s.ioapic.baseAddress = "0xfed00000", "state.ioapic.baseAddress", /fec00000/);
  refuses((s) => s.ioapic.redirtbl.pop(), "state.ioapic.redirtbl", /24 entries/);
  refuses((s) => s.ioapic.redirtbl[3] = "-1", "state.ioapic.redirtbl[3]", /64-bit/);
  refuses((s) => s.ioapic.id = 16, "state.ioapic.id", /0\.\.15/);
  refuses((s) => s.clock.clock = "0x1" + "0".repeat(16), "state.clock.clock", /64-bit/);
  refuses((s) => (s as { clock: unknown }).clock = 5, "state.clock", /object/);
});
