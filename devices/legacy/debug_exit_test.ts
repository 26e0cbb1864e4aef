import assert from "node:assert/strict";
import { DebugExit } from "./debug_exit.ts";

Deno.test("a byte write reports its value as the exit status", () => {
  const statuses: number[] = [];
  const port = new DebugExit({ onExit: (s) => statuses.push(s) });
  port.write(0, Uint8Array.of(0x31));
  assert.deepEqual(statuses, [0x31]);
  assert.equal(port.lastStatus, 0x31);
});

Deno.test("word and dword writes are read little-endian", () => {
  const statuses: number[] = [];
  const port = new DebugExit({ onExit: (s) => statuses.push(s) });
  port.write(0, Uint8Array.of(0x34, 0x12));
  port.write(0, Uint8Array.of(0x78, 0x56, 0x34, 0xf2));
  assert.deepEqual(statuses, [0x1234, 0xf2345678]);
});

Deno.test("reads of the debug-exit port return all ones", () => {
  const port = new DebugExit({ onExit: () => assert.fail("a read must not exit") });
  const data = new Uint8Array(2);
  port.read(0, data);
  assert.deepEqual([...data], [0xff, 0xff]);
});
