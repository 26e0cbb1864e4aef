import assert from "node:assert/strict";
import { I8042, I8042_COMMAND_OFFSET, I8042_DATA_OFFSET } from "./i8042.ts";

const STR_OBF = 0x01, STR_IBF = 0x02, STR_KEYLOCK = 0x10, STR_AUXDATA = 0x20;
const CTR_KBDINT = 0x01, CTR_AUXINT = 0x02, CTR_KBDDIS = 0x10, CTR_AUXDIS = 0x20;
const CTR_XLATE = 0x40;

function makeController() {
  const irq1 = {
    count: 0,
    trigger() {
      this.count++;
    },
  };
  const irq12 = {
    count: 0,
    trigger() {
      this.count++;
    },
  };
  let resets = 0;
  const kbc = new I8042({
    onReset: () => resets++,
    keyboardInterrupt: irq1,
    auxInterrupt: irq12,
  });
  const inb = (offset: number) => {
    const data = new Uint8Array(1);
    kbc.read(offset, data);
    return data[0];
  };
  const outb = (offset: number, value: number) => kbc.write(offset, Uint8Array.of(value));
  const status = () => inb(I8042_COMMAND_OFFSET);
  /** Linux's __i8042_command(): command, parameters, then poll for each result byte. */
  const command = (cmd: number, params: number[] = [], results = 0, auxLoop = false) => {
    assert.equal(status() & STR_IBF, 0, "input buffer must drain at once");
    outb(I8042_COMMAND_OFFSET, cmd);
    for (const p of params) outb(I8042_DATA_OFFSET, p);
    const out: number[] = [];
    for (let i = 0; i < results; i++) {
      const str = status();
      assert.ok(str & STR_OBF, `command 0x${cmd.toString(16)} must answer at once`);
      if (auxLoop) assert.ok(str & STR_AUXDATA, "AUX loop data must come from the AUX port");
      out.push(inb(I8042_DATA_OFFSET));
    }
    return out;
  };
  /** Linux's i8042_flush(): drains at most 16 bytes, fails if more keep coming. */
  const flush = () => {
    let count = 0;
    while (status() & STR_OBF) {
      assert.ok(count++ < 16, "flush must terminate");
      inb(I8042_DATA_OFFSET);
    }
  };
  return { kbc, irq1, irq12, inb, outb, status, command, flush, resets: () => resets };
}

Deno.test("Linux's i8042 controller probe succeeds", () => {
  const { command, flush, status, kbc } = makeController();
  flush(); // i8042_controller_check()
  assert.deepEqual(command(0xaa, [], 1), [0x55]); // i8042_controller_selftest()
  // i8042_controller_init(): two equal CTR reads, keylock check, CTR write-back.
  const [ctr] = command(0x20, [], 1);
  assert.deepEqual(command(0x20, [], 1), [ctr]);
  assert.ok(status() & STR_KEYLOCK, "no 'Keylock active' warning");
  assert.equal(ctr & CTR_XLATE, 0, "untranslated: atkbd sees the real keyboard ID");
  const newCtr = (ctr | CTR_KBDDIS) & ~CTR_KBDINT;
  command(0x60, [newCtr]);
  flush();
  assert.equal(kbc.commandByte, newCtr);
});

Deno.test("Linux's AUX port checks pass and no multiplexer is reported", () => {
  const { command, flush, irq12, kbc } = makeController();
  flush();
  // i8042_check_aux(): internal loopback returns the byte with AUXDATA set.
  assert.deepEqual(command(0xd3, [0x5a], 1, true), [0x5a]);
  // i8042_toggle_aux(): the CTR must follow AUX disable/enable.
  command(0xa7);
  assert.ok(command(0x20, [], 1)[0] & CTR_AUXDIS);
  command(0xa8);
  assert.equal(command(0x20, [], 1)[0] & CTR_AUXDIS, 0);
  // IRQ delivery test: enable AUX interrupts, loop 0xa5, expect IRQ 12 with it pending.
  const ctr = (kbc.commandByte & ~CTR_AUXDIS) | CTR_AUXINT;
  command(0x60, [ctr]);
  const before = irq12.count;
  command(0xd3, [0xa5], 0);
  assert.equal(irq12.count, before + 1, "the AUX IRQ must be delivered");
  assert.deepEqual(command(0x00, [], 0), []); // unknown command: ignored
  flush();
  assert.deepEqual(command(0xa9, [], 1), [0x00]); // AUX interface test
  // i8042_set_mux_mode(): a plain controller echoes 0xa4 unchanged, so no MUX.
  assert.deepEqual(command(0xd3, [0xf0], 1, true), [0xf0]);
  assert.deepEqual(command(0xd3, [0x56], 1, true), [0x56]);
  assert.deepEqual(command(0xd3, [0xa4], 1, true), [0xa4]);
});

Deno.test("keyboard interface test passes and the keyboard identifies itself", () => {
  const { command, outb, inb, status, irq1, kbc } = makeController();
  assert.deepEqual(command(0xab, [], 1), [0x00]);
  command(0x60, [(kbc.commandByte & ~CTR_KBDDIS) | CTR_KBDINT]);
  const before = irq1.count;
  outb(I8042_DATA_OFFSET, 0xf2); // atkbd GETID
  const bytes: number[] = [];
  while (status() & STR_OBF) {
    assert.equal(status() & STR_AUXDATA, 0);
    bytes.push(inb(I8042_DATA_OFFSET));
  }
  assert.deepEqual(bytes, [0xfa, 0xab, 0x83]);
  assert.equal(irq1.count - before, 3, "one IRQ 1 edge per byte");
});

Deno.test("keyboard acknowledges commands and their parameters", () => {
  const { outb, inb } = makeController();
  const send = (...bytes: number[]) => {
    const out: number[] = [];
    for (const b of bytes) {
      outb(I8042_DATA_OFFSET, b);
      while (inb(I8042_COMMAND_OFFSET) & STR_OBF) out.push(inb(I8042_DATA_OFFSET));
    }
    return out;
  };
  assert.deepEqual(send(0xed, 0x00), [0xfa, 0xfa]); // set LEDs
  assert.deepEqual(send(0xf0, 0x00), [0xfa, 0xfa, 0x02]); // get scan set
  assert.deepEqual(send(0xf3, 0x20), [0xfa, 0xfa]); // typematic
  assert.deepEqual(send(0xf4), [0xfa]); // enable
  assert.deepEqual(send(0xff), [0xfa, 0xaa]); // reset + self-test passed
  assert.deepEqual(send(0xee), [0xee]); // echo
});

Deno.test("bytes sent to the absent mouse are NAKed from the AUX port", () => {
  const { command } = makeController();
  assert.deepEqual(command(0xd4, [0xf2], 1, true), [0xfe]);
});

Deno.test("no IRQ is raised while the command byte disables it", () => {
  const { command, irq1, kbc } = makeController();
  command(0x60, [kbc.commandByte & ~(CTR_KBDINT | CTR_AUXINT)]);
  command(0xaa, [], 1);
  command(0xd3, [0x11], 1, true);
  assert.equal(irq1.count, 0);
});

Deno.test("command 0xFE resets the machine", () => {
  const { outb, resets, kbc } = makeController();
  outb(I8042_COMMAND_OFFSET, 0xfe);
  assert.equal(resets(), 1);
  outb(I8042_COMMAND_OFFSET, 0xff); // pulses no line: not a reset
  assert.equal(resets(), 1);
  outb(I8042_COMMAND_OFFSET, 0xd1); // write output port with the reset bit low
  outb(I8042_DATA_OFFSET, 0x02);
  assert.equal(resets(), 2);
  assert.equal(kbc.resetCount, 2);
});

Deno.test("one-port views reach the data and command ports", () => {
  const { kbc } = makeController();
  kbc.commandPort.write(0, Uint8Array.of(0xaa));
  const data = new Uint8Array(1);
  kbc.commandPort.read(0, data);
  assert.equal(data[0] & STR_OBF, STR_OBF);
  kbc.dataPort.read(0, data);
  assert.equal(data[0], 0x55);
});

Deno.test("a stuck output buffer holds at most 16 bytes so Linux's flush ends", () => {
  const { outb, flush, status } = makeController();
  for (let i = 0; i < 40; i++) outb(I8042_DATA_OFFSET, 0xf4);
  flush();
  assert.equal(status() & STR_OBF, 0);
});
