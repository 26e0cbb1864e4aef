/**
 * A 16550A UART, as Linux's 8250 driver expects to find at COM1.
 *
 * Transmission is instantaneous: a byte written to THR goes straight to the console
 * output, so THR is always empty (LSR THRE and TEMT stay set). Reception goes through a
 * real 16-byte FIFO (1 byte when FIFOs are off) fed from a larger host-side backlog, so
 * the guest sees the FIFO semantics Linux probes for while a burst of typed or pasted
 * input is not lost as long as it fits in the backlog.
 *
 * Interrupts: the device models the UART's INTR line as "IIR reports something" and
 * calls `trigger()` on each rising edge, which is what an edge-triggered ISA IRQ sees on
 * a PC. Linux's handler loops until IIR reads "no interrupt", so no condition is lost.
 * Like QEMU, the line is not gated by MCR OUT2.
 *
 * @module
 */

import type { BusDevice, InterruptTrigger } from "../bus_device.ts";
import type { ConsoleOutput } from "../console/console.ts";
import { ByteQueue } from "./byte_queue.ts";
import type { Persistable } from "../../common/persist.ts";
import {
  parseSerialState,
  RX_FIFO_SIZE,
  RX_TRIGGER_LEVELS,
  type Serial16550State,
  serialState,
} from "./serial_state.ts";

export type { Serial16550State } from "./serial_state.ts";

/** Number of I/O ports the UART decodes (register offsets 0..7). */
export const SERIAL_PORT_COUNT = 8;
/** Default size of the host-side input backlog behind the 16-byte receive FIFO. */
export const SERIAL_DEFAULT_INPUT_BUFFER = 4096;

/** Register offsets. Offsets 0 and 1 are the divisor latch while LCR.DLAB is set. */
const RBR_THR_DLL = 0;
const IER_DLM = 1;
const IIR_FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

const IER_RDI = 0x01; // received data available
const IER_THRI = 0x02; // transmitter holding register empty
const IER_RLSI = 0x04; // receiver line status
const IER_MSI = 0x08; // modem status
/** A 16550A has no IER bits above 3; Linux's XScale probe checks that bit 6 does not stick. */
const IER_MASK = 0x0f;

const IIR_NO_INT = 0x01;
const IIR_MSI = 0x00;
const IIR_THRI = 0x02;
const IIR_RDI = 0x04;
const IIR_RLSI = 0x06;
const IIR_RX_TIMEOUT = 0x0c;
const IIR_FIFOS_ENABLED = 0xc0;

const FCR_ENABLE_FIFO = 0x01;
const FCR_CLEAR_RCVR = 0x02;
const FCR_TRIGGER_MASK = 0xc0;
/** Receive trigger levels selected by FCR bits 7:6. */

const LCR_DLAB = 0x80;

const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;
const MCR_MASK = 0x1f;

const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;

const MSR_DCTS = 0x01;
const MSR_DDSR = 0x02;
const MSR_TERI = 0x04;
const MSR_DDCD = 0x08;
const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
/** Outside loopback a terminal is always "there": carrier, data set ready, clear to send. */
const MSR_TERMINAL_PRESENT = MSR_DCD | MSR_DSR | MSR_CTS;

/** Counters the UART keeps. */
export interface SerialStats {
  /** Bytes the guest transmitted to the console output (loopback bytes excluded). */
  readonly bytesTransmitted: number;
  /** Host input bytes accepted into the input backlog. */
  readonly bytesReceived: number;
  /** Host input bytes dropped because the backlog was full. */
  readonly bytesDropped: number;
  /** Loopback bytes lost because the receive FIFO was full (reported to the guest as LSR.OE). */
  readonly overruns: number;
  /** Times `trigger()` was called. */
  readonly interrupts: number;
}

/** What a UART needs from its surroundings. */
export interface SerialOptions {
  /** The UART's IRQ line (COM1: IRQ 4). */
  interrupt: InterruptTrigger;
  /** Where transmitted bytes go. */
  output: ConsoleOutput;
  /** Size of the host input backlog in bytes; default 4096. */
  inputBufferSize?: number;
}

/** A 16550A UART; a `BusDevice` for an 8-port range (COM1 at 0x3f8). */
export class Serial16550 implements BusDevice, Persistable<Serial16550State> {
  #interrupt: InterruptTrigger;
  #output: ConsoleOutput;
  #backlog: ByteQueue;
  #rxFifo = new ByteQueue(RX_FIFO_SIZE);
  #lastReceived = 0;

  #ier = 0;
  #lcr = 0x03; // 8N1, as firmware would leave it
  #mcr = MCR_OUT2;
  #scr = 0;
  #divisor = 0x0c; // 9600 baud
  #fifoEnabled = false;
  #rxTriggerLevel = 1;
  #lineErrors = 0;
  #thrInterruptPending = false;
  #msrDeltas = 0;
  #irqLineHigh = false;

  #bytesTransmitted = 0;
  #bytesReceived = 0;
  #bytesDropped = 0;
  #overruns = 0;
  #interrupts = 0;

  /** Creates a UART in its power-on state. */
  constructor(options: SerialOptions) {
    this.#interrupt = options.interrupt;
    this.#output = options.output;
    this.#backlog = new ByteQueue(options.inputBufferSize ?? SERIAL_DEFAULT_INPUT_BUFFER);
  }

  /** Current counters. */
  get stats(): SerialStats {
    return {
      bytesTransmitted: this.#bytesTransmitted,
      bytesReceived: this.#bytesReceived,
      bytesDropped: this.#bytesDropped,
      overruns: this.#overruns,
      interrupts: this.#interrupts,
    };
  }

  /** Registers, FIFOs, pending interrupt conditions and counters as plain JSON. */
  save(): Serial16550State {
    return serialState(
      {
        ier: this.#ier,
        lcr: this.#lcr,
        mcr: this.#mcr,
        scr: this.#scr,
        divisor: this.#divisor,
        fifoEnabled: this.#fifoEnabled,
        rxTriggerLevel: this.#rxTriggerLevel,
        lineErrors: this.#lineErrors,
        thrInterruptPending: this.#thrInterruptPending,
        msrDeltas: this.#msrDeltas,
        irqLineHigh: this.#irqLineHigh,
        lastReceived: this.#lastReceived,
        stats: this.stats,
      },
      this.#rxFifo.toBytes(),
      this.#backlog.toBytes(),
    );
  }

  /**
   * Replaces the whole UART state with a saved one (untrusted: checked first, a bad one
   * throws `StateError` and changes nothing). No interrupt is triggered: the saved line
   * level is taken as is, the interrupt controller's own state carries any pending edge.
   */
  restore(state: unknown, path = "state"): void {
    const { state: s, rxFifo, backlog } = parseSerialState(state, path, this.#backlog.capacity);
    this.#ier = s.ier;
    this.#lcr = s.lcr;
    this.#mcr = s.mcr;
    this.#scr = s.scr;
    this.#divisor = s.divisor;
    this.#fifoEnabled = s.fifoEnabled;
    this.#rxTriggerLevel = s.rxTriggerLevel;
    this.#lineErrors = s.lineErrors;
    this.#thrInterruptPending = s.thrInterruptPending;
    this.#msrDeltas = s.msrDeltas;
    this.#irqLineHigh = s.irqLineHigh;
    this.#lastReceived = s.lastReceived;
    this.#rxFifo.replace(rxFifo);
    this.#backlog.replace(backlog);
    ({
      bytesTransmitted: this.#bytesTransmitted,
      bytesReceived: this.#bytesReceived,
      bytesDropped: this.#bytesDropped,
      overruns: this.#overruns,
      interrupts: this.#interrupts,
    } = s.stats);
  }

  /** Room left in the input backlog; a console backend can use it to apply back-pressure. */
  get inputSpace(): number {
    return this.#backlog.free;
  }

  /**
   * Queues host input for the guest. Bytes that do not fit in the backlog are dropped and
   * counted in `stats.bytesDropped`. While the UART is in loopback its receiver is
   * disconnected from the outside, so input waits in the backlog.
   */
  receive(bytes: Uint8Array): void {
    const taken = this.#backlog.push(bytes);
    this.#bytesReceived += taken;
    this.#bytesDropped += bytes.length - taken;
    this.#refillRxFifo();
    this.#updateIrqLine();
  }

  /** Registers are byte-wide: a wider read returns the register in byte 0, zeros above. */
  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    data[0] = this.#readRegister(offset);
    this.#updateIrqLine();
  }

  /** Registers are byte-wide: a wider write uses byte 0 only. */
  write(offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    this.#writeRegister(offset, data[0]);
    this.#updateIrqLine();
  }

  #readRegister(offset: number): number {
    const dlab = (this.#lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case RBR_THR_DLL:
        return dlab ? this.#divisor & 0xff : this.#readReceiveBuffer();
      case IER_DLM:
        return dlab ? this.#divisor >> 8 : this.#ier;
      case IIR_FCR:
        return this.#readInterruptIdentification();
      case LCR:
        return this.#lcr;
      case MCR:
        return this.#mcr;
      case LSR:
        return this.#readLineStatus();
      case MSR:
        return this.#readModemStatus();
      case SCR:
        return this.#scr;
      default:
        return 0xff;
    }
  }

  #writeRegister(offset: number, value: number): void {
    const dlab = (this.#lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case RBR_THR_DLL:
        if (dlab) this.#divisor = (this.#divisor & 0xff00) | value;
        else this.#transmit(value);
        return;
      case IER_DLM:
        if (dlab) this.#divisor = (this.#divisor & 0xff) | (value << 8);
        else this.#writeInterruptEnable(value);
        return;
      case IIR_FCR:
        // With LCR = 0xBF this offset is the EFR of later chips; a 16550A has no EFR and
        // treats the write as FCR, which is what Linux's probe expects of a 16550A.
        this.#writeFifoControl(value);
        return;
      case LCR:
        this.#lcr = value;
        return;
      case MCR:
        this.#writeModemControl(value);
        return;
      case SCR:
        this.#scr = value;
        return;
        // LSR and MSR are read-only (writes are a factory test mode); ignore them.
    }
  }

  #readReceiveBuffer(): number {
    const byte = this.#rxFifo.shift();
    if (byte !== undefined) this.#lastReceived = byte;
    this.#refillRxFifo();
    return this.#lastReceived;
  }

  #readInterruptIdentification(): number {
    const id = this.#pendingInterrupt();
    // Reading IIR acknowledges a THRE interrupt (and only that one) when it is reported.
    if (id === IIR_THRI) this.#thrInterruptPending = false;
    return id | (this.#fifoEnabled ? IIR_FIFOS_ENABLED : 0);
  }

  #readLineStatus(): number {
    const value = (this.#rxFifo.length > 0 ? LSR_DR : 0) | this.#lineErrors | LSR_THRE |
      LSR_TEMT;
    this.#lineErrors = 0;
    return value;
  }

  #readModemStatus(): number {
    const value = this.#modemStatusLines() | this.#msrDeltas;
    this.#msrDeltas = 0;
    return value;
  }

  #transmit(byte: number): void {
    if (this.#mcr & MCR_LOOP) {
      // Loopback: the transmitter feeds the receiver; Linux's size_fifo() counts on it.
      if (this.#rxFifo.length < this.#rxLimit()) {
        this.#rxFifo.pushByte(byte);
      } else {
        this.#lineErrors |= LSR_OE;
        this.#overruns++;
      }
    } else {
      this.#output.write(Uint8Array.of(byte));
      this.#bytesTransmitted++;
    }
    // The byte left THR at once, so THR is empty again and THRE is (re)asserted.
    this.#thrInterruptPending = true;
  }

  #writeInterruptEnable(value: number): void {
    const before = this.#ier;
    this.#ier = value & IER_MASK;
    // Enabling THRI while THR is empty raises THRE at once; Linux's THRE and TXEN bug
    // tests in serial8250_do_startup() rely on it.
    if ((this.#ier & IER_THRI) && !(before & IER_THRI)) this.#thrInterruptPending = true;
    if (!(this.#ier & IER_THRI)) this.#thrInterruptPending = false;
  }

  #writeFifoControl(value: number): void {
    const enable = (value & FCR_ENABLE_FIFO) !== 0;
    // Changing the FIFO enable bit empties the FIFOs; so does the receiver reset bit.
    if (enable !== this.#fifoEnabled || (value & FCR_CLEAR_RCVR)) this.#rxFifo.clear();
    this.#fifoEnabled = enable;
    this.#rxTriggerLevel = RX_TRIGGER_LEVELS[(value & FCR_TRIGGER_MASK) >> 6];
    this.#refillRxFifo();
  }

  #writeModemControl(value: number): void {
    const linesBefore = this.#modemStatusLines();
    this.#mcr = value & MCR_MASK;
    const linesAfter = this.#modemStatusLines();
    const changed = linesBefore ^ linesAfter;
    if (changed & MSR_CTS) this.#msrDeltas |= MSR_DCTS;
    if (changed & MSR_DSR) this.#msrDeltas |= MSR_DDSR;
    if ((linesBefore & MSR_RI) && !(linesAfter & MSR_RI)) this.#msrDeltas |= MSR_TERI;
    if (changed & MSR_DCD) this.#msrDeltas |= MSR_DDCD;
    this.#refillRxFifo();
  }

  #modemStatusLines(): number {
    if (!(this.#mcr & MCR_LOOP)) return MSR_TERMINAL_PRESENT;
    // In loopback the modem control outputs are wired to the modem status inputs.
    return ((this.#mcr & MCR_RTS) ? MSR_CTS : 0) | ((this.#mcr & MCR_DTR) ? MSR_DSR : 0) |
      ((this.#mcr & MCR_OUT1) ? MSR_RI : 0) | ((this.#mcr & MCR_OUT2) ? MSR_DCD : 0);
  }

  #rxLimit(): number {
    return this.#fifoEnabled ? RX_FIFO_SIZE : 1;
  }

  /** Moves backlog bytes into the receive FIFO, as if they had just come down the wire. */
  #refillRxFifo(): void {
    if (this.#mcr & MCR_LOOP) return;
    const limit = this.#rxLimit();
    while (this.#rxFifo.length < limit && this.#backlog.length > 0) {
      this.#rxFifo.pushByte(this.#backlog.shift()!);
    }
  }

  /** The highest-priority enabled interrupt condition, as an IIR identification code. */
  #pendingInterrupt(): number {
    if ((this.#ier & IER_RLSI) && this.#lineErrors) return IIR_RLSI;
    if ((this.#ier & IER_RDI) && this.#rxFifo.length > 0) {
      // Below the trigger level a real 16550A reports the character timeout instead.
      return this.#fifoEnabled && this.#rxFifo.length < this.#rxTriggerLevel
        ? IIR_RX_TIMEOUT
        : IIR_RDI;
    }
    if ((this.#ier & IER_THRI) && this.#thrInterruptPending) return IIR_THRI;
    if ((this.#ier & IER_MSI) && this.#msrDeltas) return IIR_MSI;
    return IIR_NO_INT;
  }

  #updateIrqLine(): void {
    const high = this.#pendingInterrupt() !== IIR_NO_INT;
    if (high && !this.#irqLineHigh) {
      this.#interrupts++;
      this.#interrupt.trigger();
    }
    this.#irqLineHigh = high;
  }
}
