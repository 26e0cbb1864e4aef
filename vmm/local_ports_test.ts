import assert from "node:assert/strict";
import type { VmEndReason } from "../core/vm_end.ts";
import { localPortBus } from "./local_ports.ts";

Deno.test("localPortBus() serves the POST-code port: writes are taken, reads are all ones", () => {
  const ends: VmEndReason[] = [];
  const bus = localPortBus((end) => ends.push(end));
  assert.equal(bus.write(0x80, new Uint8Array([0x12])), true);
  const data = new Uint8Array([0]);
  assert.equal(bus.read(0x80, data), true);
  assert.deepEqual([...data], [0xff]);
  assert.deepEqual(ends, []);
});

Deno.test("localPortBus() ends the VM with the status written to the debug-exit port", () => {
  const ends: VmEndReason[] = [];
  const bus = localPortBus((end) => ends.push(end));
  assert.equal(bus.write(0xf4, new Uint8Array([7])), true);
  assert.equal(bus.write(0xf4, new Uint8Array([0x34, 0x12])), true);
  assert.deepEqual(ends, [
    { kind: "debugExit", status: 7 },
    { kind: "debugExit", status: 0x1234 },
  ]);
});

Deno.test("localPortBus() leaves every other port to the main thread", () => {
  const bus = localPortBus(() => assert.fail("no port here ends the VM"));
  for (const port of [0x3f8, 0x60, 0x70, 0xcf8, 0x81, 0xf8]) {
    assert.equal(bus.write(port, new Uint8Array([1])), false, `port 0x${port.toString(16)}`);
  }
});
