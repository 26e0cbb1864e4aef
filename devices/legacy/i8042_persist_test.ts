import assert from "node:assert/strict";
import { I8042, I8042_COMMAND_OFFSET as CMD, I8042_DATA_OFFSET as DATA } from "./i8042.ts";
import { assertRoundTrip, fuzzRestore, viaJson } from "../testing/persist_fuzz.ts";

function makeController() {
  const irq1 = {
    count: 0,
    trigger() {
      this.count++;
    },
  };
  const kbc = new I8042({ onReset: () => {}, keyboardInterrupt: irq1 });
  const inb = (offset: number) => {
    const data = new Uint8Array(1);
    kbc.read(offset, data);
    return data[0];
  };
  const outb = (offset: number, value: number) => kbc.write(offset, Uint8Array.of(value));
  return { kbc, irq1, inb, outb };
}

/** Output bytes queued (self-test, echo, an AUX byte), a keyboard command awaiting its parameter. */
function busyController() {
  const port = makeController();
  const { outb } = port;
  outb(CMD, 0x60);
  outb(DATA, 0x47); // command byte: translation, both IRQs, system flag
  outb(CMD, 0xaa); // self test: 0x55
  outb(DATA, 0xee); // keyboard echo
  outb(CMD, 0xd3);
  outb(DATA, 0x99); // a byte as if from the AUX port
  outb(DATA, 0xf0); // scan-set command: ACK now, parameter pending
  outb(CMD, 0xd1); // write output port: waits for its data byte
  return port;
}

Deno.test("i8042 state round-trips and the restored controller answers the same", () => {
  const source = busyController();
  const target = makeController();
  const state = assertRoundTrip(source.kbc, target.kbc);
  assert.equal(state.pendingControllerCommand, 0xd1);
  assert.equal(state.pendingKeyboardCommand, 0xf0);
  assert.equal(target.kbc.commandByte, 0x47);
  const drain = (port: ReturnType<typeof makeController>) => {
    const bytes: number[] = [];
    while (port.inb(CMD) & 0x01) bytes.push(port.inb(DATA) | (port.inb(CMD) & 0x20 ? 0x100 : 0));
    return bytes;
  };
  assert.deepEqual(drain(target), drain(source));
  for (const port of [source, target]) {
    port.outb(DATA, 0x03); // completes the output-port write
    port.outb(DATA, 0x01); // scan set 1 for the pending keyboard command
    port.outb(DATA, 0xf0);
    port.outb(DATA, 0x00); // query the scan set
  }
  assert.deepEqual(drain(target), drain(source));
});

Deno.test("i8042 restore refuses malformed state and changes nothing", () => {
  const good = viaJson(busyController().kbc.save());
  const report = fuzzRestore(makeController().kbc, good, {
    lenient: ["state.pendingControllerCommand", "state.pendingKeyboardCommand"],
    mustRefuse: [
      { ...good, pendingControllerCommand: 0xaa },
      { ...good, pendingKeyboardCommand: 0xff },
      { ...good, scanSet: 4 },
      { ...good, output: Array(17).fill({ value: 1, fromAux: false }) },
      { ...good, ram: btoa("x".repeat(31)) },
    ],
  });
  assert.ok(report.refused > 30, `only ${report.refused} of ${report.tried} refused`);
});
