/**
 * The saved state of the 16550A UART (serial.ts) and its validation: every register,
 * the receive FIFO and the host input backlog behind it, the interrupt conditions
 * (THR-empty pending, modem status deltas, line errors), the IRQ line level and the
 * counters. Transmission is instantaneous, so there is no transmit FIFO to save.
 *
 * @module
 */

import {
  encodeBase64,
  StateError,
  StateReader,
  type VersionedState,
} from "../../common/persist.ts";
import { readCounters } from "../state_fields.ts";
import type { SerialStats } from "./serial.ts";

/** Receive FIFO depth of a 16550A. */
export const RX_FIFO_SIZE = 16;
/** Receive trigger levels FCR bits 7:6 select. */
export const RX_TRIGGER_LEVELS = [1, 4, 8, 14] as const;

const STAT_KEYS = [
  "bytesTransmitted",
  "bytesReceived",
  "bytesDropped",
  "overruns",
  "interrupts",
] as const;

/** A 16550A as plain JSON. */
export interface Serial16550State extends VersionedState {
  readonly version: 1;
  /** Interrupt enable (bits 0-3). */
  readonly ier: number;
  readonly lcr: number;
  /** Modem control (bits 0-4). */
  readonly mcr: number;
  readonly scr: number;
  /** Divisor latch (DLL | DLM << 8). */
  readonly divisor: number;
  readonly fifoEnabled: boolean;
  /** 1, 4, 8 or 14. */
  readonly rxTriggerLevel: number;
  /** Pending LSR error bits (only OE, 0x02, is ever raised). */
  readonly lineErrors: number;
  readonly thrInterruptPending: boolean;
  /** Pending MSR delta bits (0-3). */
  readonly msrDeltas: number;
  /** Whether the IRQ line is high (the next rising edge triggers). */
  readonly irqLineHigh: boolean;
  /** What RBR reads when the FIFO is empty. */
  readonly lastReceived: number;
  /** Receive FIFO contents, oldest first, base64. */
  readonly rxFifo: string;
  /** Host input not yet in the FIFO, oldest first, base64. */
  readonly backlog: string;
  readonly stats: SerialStats;
}

/** The validated fields, with the FIFOs as bytes. */
export interface ParsedSerialState {
  readonly state: Serial16550State;
  readonly rxFifo: Uint8Array;
  readonly backlog: Uint8Array;
}

/** Builds the JSON state from the live fields. */
export function serialState(
  fields: Omit<Serial16550State, "version" | "rxFifo" | "backlog">,
  rxFifo: Uint8Array,
  backlog: Uint8Array,
): Serial16550State {
  return {
    version: 1,
    ...fields,
    stats: { ...fields.stats },
    rxFifo: encodeBase64(rxFifo),
    backlog: encodeBase64(backlog),
  };
}

/** Checks untrusted state for a UART whose input backlog holds `backlogCapacity` bytes. */
export function parseSerialState(
  value: unknown,
  path: string,
  backlogCapacity: number,
): ParsedSerialState {
  const r = new StateReader(value, path);
  r.version([1]);
  const fifoEnabled = r.boolean("fifoEnabled");
  const rxTriggerLevel = r.integer("rxTriggerLevel", 1, 14);
  if (!(RX_TRIGGER_LEVELS as readonly number[]).includes(rxTriggerLevel)) {
    throw new StateError(
      r.fieldPath("rxTriggerLevel"),
      `expected 1, 4, 8 or 14, got ${rxTriggerLevel}`,
    );
  }
  const rxFifo = r.bytes("rxFifo", { max: fifoEnabled ? RX_FIFO_SIZE : 1 });
  const backlog = r.bytes("backlog", { max: backlogCapacity });
  const state: Serial16550State = {
    version: 1,
    ier: r.integer("ier", 0, 0x0f),
    lcr: r.integer("lcr", 0, 0xff),
    mcr: r.integer("mcr", 0, 0x1f),
    scr: r.integer("scr", 0, 0xff),
    divisor: r.integer("divisor", 0, 0xffff),
    fifoEnabled,
    rxTriggerLevel,
    lineErrors: bits(r, "lineErrors", 0x02),
    thrInterruptPending: r.boolean("thrInterruptPending"),
    msrDeltas: r.integer("msrDeltas", 0, 0x0f),
    irqLineHigh: r.boolean("irqLineHigh"),
    lastReceived: r.integer("lastReceived", 0, 0xff),
    rxFifo: r.string("rxFifo"),
    backlog: r.string("backlog"),
    stats: readCounters(r, "stats", STAT_KEYS),
  };
  return { state, rxFifo, backlog };
}

/** An integer that only has bits of `mask` set. */
function bits(r: StateReader, name: string, mask: number): number {
  const value = r.integer(name, 0, mask);
  if ((value & ~mask) !== 0) {
    throw new StateError(
      r.fieldPath(name),
      `only bits 0x${mask.toString(16)} may be set, got ${value}`,
    );
  }
  return value;
}
