import assert from "node:assert/strict";
import { Serial16550 } from "./serial.ts";

const RX = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

class CountingTrigger {
  count = 0;
  trigger(): void {
    this.count++;
  }
}

class CapturingOutput {
  bytes: number[] = [];
  write(bytes: Uint8Array): void {
    this.bytes.push(...bytes);
  }
  get text(): string {
    return new TextDecoder().decode(Uint8Array.from(this.bytes));
  }
}

function makeUart(inputBufferSize?: number) {
  const irq = new CountingTrigger();
  const output = new CapturingOutput();
  const uart = new Serial16550({ interrupt: irq, output, inputBufferSize });
  const inb = (offset: number) => {
    const data = new Uint8Array(1);
    uart.read(offset, data);
    return data[0];
  };
  const outb = (offset: number, value: number) => uart.write(offset, Uint8Array.of(value));
  return { uart, irq, output, inb, outb };
}

type Port = ReturnType<typeof makeUart>;

/**
 * The register sequence of Linux 6.1's autoconfig() and autoconfig_16550a() (with
 * CONFIG_SERIAL_8250_16550A_VARIANTS), returning the type the driver would pick.
 */
function linuxAutoconfig({ inb, outb }: Port): string {
  const saveIer = inb(IER);
  outb(IER, 0);
  const scratch2 = inb(IER) & 0x0f;
  outb(IER, 0x0f);
  const scratch3 = inb(IER) & 0x0f;
  outb(IER, saveIer);
  if (scratch2 !== 0 || scratch3 !== 0x0f) return "none (IER test)";

  const saveMcr = inb(MCR);
  const saveLcr = inb(LCR);
  outb(MCR, 0x10 | 0x0a);
  const status1 = inb(MSR) & 0xf0;
  outb(MCR, saveMcr);
  if (status1 !== 0x90) return "none (loop test)";

  outb(LCR, 0xbf);
  outb(2, 0); // EFR
  outb(LCR, 0);
  outb(FCR, 0x01);
  const iir = inb(IIR);
  let type: string;
  switch (iir >> 6) {
    case 0:
      type = "8250/16450";
      break;
    case 1:
      type = "unknown";
      break;
    case 2:
      type = "16550";
      break;
    default:
      type = autoconfig16550a({ inb, outb } as Port);
  }
  outb(LCR, saveLcr);
  outb(MCR, saveMcr);
  outb(FCR, 0x01); // serial8250_clear_fifos()
  outb(FCR, 0x07);
  outb(FCR, 0);
  inb(RX);
  outb(IER, 0);
  return type;
}

function autoconfig16550a({ inb, outb }: Port): string {
  outb(LCR, 0x80);
  if (inb(2) === 0) return "EFR v1 (16650 or FSL64)";
  outb(LCR, 0xbf);
  if (inb(2) === 0) return "EFR v2 (16650V2/16750-ish)";
  outb(LCR, 0);
  const mcr = inb(MCR);
  outb(LCR, 0xe0);
  let excr1 = inb(2);
  if (!((excr1 ^ mcr) & 0x10)) {
    outb(LCR, 0);
    outb(MCR, mcr ^ 0x10);
    outb(LCR, 0xe0);
    excr1 = inb(2);
    outb(LCR, 0);
    outb(MCR, mcr);
    if ((excr1 ^ mcr) & 0x10) return "NS16550A";
  }
  outb(LCR, 0);
  outb(FCR, 0x21);
  const s1 = inb(IIR) >> 5;
  outb(FCR, 0x01);
  outb(LCR, 0x80);
  outb(FCR, 0x21);
  const s2 = inb(IIR) >> 5;
  outb(FCR, 0x01);
  outb(LCR, 0);
  if (s1 === 6 && s2 === 7) return "16750";
  const ier = inb(IER);
  outb(IER, ier & ~0x40);
  if (!(inb(IER) & 0x40)) {
    outb(IER, ier | 0x40);
    if (inb(IER) & 0x40) return "XScale";
  }
  outb(IER, ier);
  return sizeFifo({ inb, outb } as Port) === 64 ? "U6_16550A" : "16550A";
}

/** Linux's size_fifo(): count what comes back through loopback after 256 writes. */
function sizeFifo({ inb, outb }: Port): number {
  const oldLcr = inb(LCR);
  outb(LCR, 0);
  const oldFcr = inb(FCR);
  const oldMcr = inb(MCR);
  outb(FCR, 0x07);
  outb(MCR, 0x10);
  outb(LCR, 0x80);
  const oldDl = inb(0) | (inb(1) << 8);
  outb(0, 1);
  outb(1, 0);
  outb(LCR, 0x03);
  for (let i = 0; i < 256; i++) outb(RX, i);
  let count = 0;
  for (; (inb(LSR) & 0x01) && count < 256; count++) inb(RX);
  outb(FCR, oldFcr);
  outb(MCR, oldMcr);
  outb(LCR, 0x80);
  outb(0, oldDl & 0xff);
  outb(1, oldDl >> 8);
  outb(LCR, oldLcr);
  return count;
}

Deno.test("Linux 8250 autoconfig detects a 16550A", () => {
  const port = makeUart();
  assert.equal(linuxAutoconfig(port), "16550A");
  assert.equal(port.output.bytes.length, 0, "probing must not print anything");
});

Deno.test("size_fifo() sees the 16-byte receive FIFO and an overrun through loopback", () => {
  const port = makeUart();
  assert.equal(sizeFifo(port), 16);
  assert.equal(port.uart.stats.overruns, 240);
  assert.equal(port.uart.stats.bytesTransmitted, 0);
});

Deno.test("Linux startup THRE and TXEN tests find no UART bugs", () => {
  const port = makeUart();
  const { inb, outb } = port;
  assert.equal(linuxAutoconfig(port), "16550A");
  outb(IER, 0x02);
  const iir1 = inb(IIR);
  outb(IER, 0);
  outb(IER, 0x02);
  const iir2 = inb(IIR);
  outb(IER, 0);
  // UART_BUG_THRE is set when the first read shows THRE but the second does not.
  assert.equal(iir1 & 0x0f, 0x02);
  assert.equal(iir2 & 0x0f, 0x02);
  outb(IER, 0x02);
  const lsr = inb(LSR);
  const iir = inb(IIR);
  outb(IER, 0);
  // UART_BUG_TXEN is set when TEMT is set but no interrupt is reported.
  assert.ok(lsr & 0x40);
  assert.equal(iir & 0x01, 0);
});

Deno.test("scratch register and divisor latch hold their values", () => {
  const { inb, outb } = makeUart();
  outb(SCR, 0xa5);
  assert.equal(inb(SCR), 0xa5);
  outb(LCR, 0x83);
  outb(0, 0x01);
  outb(1, 0x02);
  assert.equal(inb(0), 0x01);
  assert.equal(inb(1), 0x02);
  outb(LCR, 0x03);
  outb(IER, 0xff);
  assert.equal(inb(IER), 0x0f, "IER bits 7:4 do not exist on a 16550A");
  outb(LCR, 0x83);
  assert.equal(inb(1), 0x02, "the IER write did not touch DLM");
});

Deno.test("IIR shows FIFO-enabled bits only while FCR enables the FIFO", () => {
  const { inb, outb } = makeUart();
  assert.equal(inb(IIR), 0x01);
  outb(FCR, 0x01);
  assert.equal(inb(IIR), 0xc1);
  outb(FCR, 0x21); // the 64-byte bit of a 16750 must not show up as IIR bit 5
  assert.equal(inb(IIR), 0xc1);
  outb(FCR, 0);
  assert.equal(inb(IIR), 0x01);
});

Deno.test("transmitted bytes reach the output and LSR always reports THR empty", () => {
  const { uart, inb, outb, output } = makeUart();
  for (const c of new TextEncoder().encode("hi\n")) {
    assert.equal(inb(LSR) & 0x60, 0x60);
    outb(RX, c);
  }
  assert.equal(output.text, "hi\n");
  assert.equal(uart.stats.bytesTransmitted, 3);
});

Deno.test("received bytes flow through a 16-byte FIFO fed by the backlog", () => {
  const { uart, inb, outb } = makeUart();
  outb(FCR, 0x01);
  uart.receive(new TextEncoder().encode("abcdefghijklmnopqrstuvwxyz"));
  let text = "";
  while (inb(LSR) & 0x01) text += String.fromCharCode(inb(RX));
  assert.equal(text, "abcdefghijklmnopqrstuvwxyz");
  assert.equal(inb(LSR) & 0x01, 0);
});

Deno.test("input beyond the backlog is dropped and counted", () => {
  const { uart, inb } = makeUart(32);
  // FIFOs are off at power-on: 1 byte in the holding register, 32 in the backlog.
  uart.receive(new Uint8Array(40).fill(0x41));
  assert.equal(uart.stats.bytesReceived, 32);
  assert.equal(uart.stats.bytesDropped, 8);
  let count = 0;
  while (inb(LSR) & 0x01) {
    inb(RX);
    count++;
  }
  assert.equal(count, 32);
});

Deno.test("clearing the receive FIFO drops only what the FIFO holds", () => {
  const { uart, inb, outb } = makeUart();
  outb(FCR, 0x01);
  uart.receive(new Uint8Array(20).map((_, i) => i));
  outb(FCR, 0x03);
  assert.equal(inb(RX), 16, "the 4 bytes still in the backlog arrive after the clear");
});

Deno.test("loopback mode routes modem control to modem status and sets deltas", () => {
  const { inb, outb } = makeUart();
  assert.equal(inb(MSR), 0xb0, "DCD, DSR and CTS are set outside loopback");
  outb(MCR, 0x10 | 0x01); // LOOP | DTR
  assert.equal(inb(MSR), 0x20 | 0x01 | 0x08, "DSR, plus deltas for CTS and DCD dropping");
  assert.equal(inb(MSR), 0x20);
  outb(MCR, 0x10 | 0x04); // OUT1 -> RI
  assert.equal(inb(MSR) & 0xf0, 0x40);
  outb(MCR, 0x10);
  assert.equal(inb(MSR) & 0x04, 0x04, "trailing edge of RI");
});

Deno.test("IIR reports the highest-priority condition first", () => {
  const { uart, inb, outb } = makeUart();
  outb(MCR, 0x10); // loopback, to create an overrun
  for (let i = 0; i < 3; i++) outb(RX, i); // FIFO off: 1 byte fits, 2 overruns
  outb(MCR, 0x0b); // leave loopback: modem status deltas arise too
  outb(IER, 0x0f);
  assert.equal(inb(IIR) & 0x0f, 0x06, "line status first");
  inb(LSR);
  assert.equal(inb(IIR) & 0x0f, 0x04, "then received data");
  inb(RX);
  assert.equal(inb(IIR) & 0x0f, 0x02, "then THR empty, acknowledged by this read");
  assert.equal(inb(IIR) & 0x0f, 0x00, "then modem status");
  inb(MSR);
  assert.equal(inb(IIR) & 0x0f, 0x01);
  assert.equal(uart.stats.overruns, 2);
});

Deno.test("IIR reports a character timeout below the FIFO trigger level", () => {
  const { uart, inb, outb } = makeUart();
  outb(FCR, 0x81); // trigger at 8 bytes
  outb(IER, 0x01);
  uart.receive(new Uint8Array(3));
  assert.equal(inb(IIR), 0xcc);
  uart.receive(new Uint8Array(5));
  assert.equal(inb(IIR), 0xc4);
});

Deno.test("interrupts fire on each new condition and not while one is pending", () => {
  const { uart, irq, inb, outb } = makeUart();
  uart.receive(Uint8Array.of(1));
  assert.equal(irq.count, 0, "nothing is enabled yet");
  outb(IER, 0x01);
  assert.equal(irq.count, 1, "enabling RDI with data waiting raises the line");
  uart.receive(Uint8Array.of(2));
  assert.equal(irq.count, 1, "the line is already high");
  inb(RX);
  inb(RX);
  assert.equal(inb(IIR), 0x01);
  uart.receive(Uint8Array.of(3));
  assert.equal(irq.count, 2, "new data after the line dropped");
  inb(RX);
  outb(IER, 0x03);
  assert.equal(irq.count, 3, "enabling THRI with THR empty");
  assert.equal(inb(IIR), 0x02);
  outb(RX, 0x41);
  assert.equal(irq.count, 4, "THR empties again after a write");
  outb(RX, 0x42);
  assert.equal(irq.count, 4, "THRE still pending: no new edge");
  outb(IER, 0);
  outb(IER, 0x02);
  assert.equal(irq.count, 5);
  assert.equal(uart.stats.interrupts, 5);
});

Deno.test("a wider access sees the register in the low byte", () => {
  const { uart, outb } = makeUart();
  outb(SCR, 0x5a);
  const data = new Uint8Array(4).fill(0xee);
  uart.read(SCR, data);
  assert.deepEqual([...data], [0x5a, 0, 0, 0]);
});
