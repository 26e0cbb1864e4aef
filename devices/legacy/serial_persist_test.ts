import assert from "node:assert/strict";
import { Serial16550 } from "./serial.ts";
import { assertRoundTrip, fuzzRestore, viaJson } from "../testing/persist_fuzz.ts";

const RX = 0, IER = 1, FCR = 2, IIR = 2, LCR = 3, MCR = 4, LSR = 5, SCR = 7;

function makeUart() {
  const irq = {
    count: 0,
    trigger() {
      this.count++;
    },
  };
  const output: number[] = [];
  const uart = new Serial16550({
    interrupt: irq,
    output: { write: (bytes: Uint8Array) => output.push(...bytes) },
    inputBufferSize: 64,
  });
  const inb = (offset: number) => {
    const data = new Uint8Array(1);
    uart.read(offset, data);
    return data[0];
  };
  const outb = (offset: number, value: number) => uart.write(offset, Uint8Array.of(value));
  return { uart, irq, output, inb, outb };
}

/** A UART with FIFOs on, a divisor set, input in the FIFO and the backlog, interrupts pending. */
function busyUart() {
  const port = makeUart();
  const { uart, outb, inb } = port;
  outb(LCR, 0x83);
  outb(RX, 0x01); // divisor 115200
  outb(IER, 0x00);
  outb(LCR, 0x03);
  outb(FCR, 0xc1); // FIFOs on, trigger at 14
  outb(SCR, 0x5a);
  outb(IER, 0x07);
  uart.receive(new TextEncoder().encode("hello, restored world: the backlog is longer than 16"));
  inb(RX); // 'h' leaves
  return port;
}

Deno.test("UART state round-trips and the restored UART reads the same bytes", () => {
  const source = busyUart();
  const target = makeUart();
  const state = assertRoundTrip(source.uart, target.uart);
  assert.equal(state.fifoEnabled, true);
  assert.equal(target.irq.count, 0, "restoring raises no interrupt");
  const drain = (port: ReturnType<typeof makeUart>) => {
    const bytes: number[] = [];
    while (port.inb(LSR) & 0x01) bytes.push(port.inb(RX));
    return new TextDecoder().decode(Uint8Array.from(bytes));
  };
  assert.equal(target.inb(IIR), source.inb(IIR));
  assert.equal(drain(target), drain(source));
  assert.equal(drain(target), "");
  assert.equal(target.inb(SCR), 0x5a);
  target.outb(LCR, 0x83);
  assert.equal(target.inb(RX), 0x01, "the divisor latch survives");
});

Deno.test("UART loopback state (MCR loop, an overrun) round-trips", () => {
  const source = makeUart();
  source.outb(MCR, 0x1f);
  source.outb(RX, 0x41);
  source.outb(RX, 0x42); // FIFOs off: one byte fits, the second overruns
  const target = makeUart();
  assertRoundTrip(source.uart, target.uart);
  assert.equal(target.inb(LSR) & 0x02, 0x02, "the overrun is still reported");
  assert.equal(target.inb(RX), 0x41);
});

Deno.test("UART restore refuses malformed state and changes nothing", () => {
  const source = busyUart();
  const good = viaJson(source.uart.save());
  const report = fuzzRestore(makeUart().uart, good, {
    mustRefuse: [
      { ...good, rxFifo: btoa("x".repeat(17)) },
      { ...good, fifoEnabled: false }, // 16 FIFO bytes do not fit a 1-byte receiver
      { ...good, backlog: btoa("x".repeat(65)) },
      { ...good, rxTriggerLevel: 5 },
      { ...good, lineErrors: 0x01 },
      { ...good, ier: 0x40 },
    ],
  });
  assert.ok(report.refused > 50, `only ${report.refused} of ${report.tried} refused`);
});
