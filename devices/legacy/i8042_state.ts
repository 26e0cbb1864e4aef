/**
 * The saved state of the i8042 controller (i8042.ts) and its validation: controller RAM
 * (byte 0 is the command byte), the output buffer with the port each byte came from, the
 * output port, a command waiting for its parameter (controller or keyboard), the scan-code
 * set, the IRQ line levels and the reset counter.
 *
 * @module
 */

import {
  encodeBase64,
  StateError,
  StateReader,
  type VersionedState,
} from "../../common/persist.ts";
import { MAX_COUNTER, readNullable } from "../state_fields.ts";

/** Bytes the output buffer holds at most. */
export const OUTPUT_BUFFER_SIZE = 16;
/** Bytes of controller RAM. */
export const CONTROLLER_RAM_SIZE = 32;

/** Controller commands that wait for a data byte: write RAM 0x60-0x7f, 0xd1-0xd4. */
function isControllerCommandWithParameter(command: number): boolean {
  return (command >= 0x60 && command <= 0x7f) || (command >= 0xd1 && command <= 0xd4);
}

/** Keyboard commands that wait for a parameter byte: LEDs, scan set, typematic. */
const KEYBOARD_COMMANDS_WITH_PARAMETER = [0xed, 0xf0, 0xf3];

/** One byte waiting in the output buffer. */
export interface I8042OutputByte {
  readonly value: number;
  /** Whether it came from the AUX (mouse) port rather than the keyboard. */
  readonly fromAux: boolean;
}

/** An i8042 as plain JSON. */
export interface I8042State extends VersionedState {
  readonly version: 1;
  /** Controller RAM, base64 of 32 bytes; byte 0 is the command byte. */
  readonly ram: string;
  /** Output buffer, oldest first. */
  readonly output: readonly I8042OutputByte[];
  readonly outputPort: number;
  readonly lastWriteWasCommand: boolean;
  /** A controller command waiting for its data byte, or null. */
  readonly pendingControllerCommand: number | null;
  /** A keyboard command waiting for its parameter, or null. */
  readonly pendingKeyboardCommand: number | null;
  /** Scan-code set 1-3. */
  readonly scanSet: number;
  readonly kbdLineHigh: boolean;
  readonly auxLineHigh: boolean;
  /** Resets the guest asked for. */
  readonly resets: number;
}

/** Builds the JSON state from the live fields. */
export function i8042State(
  fields: Omit<I8042State, "version" | "ram" | "output">,
  ram: Uint8Array,
  output: readonly I8042OutputByte[],
): I8042State {
  return {
    version: 1,
    ...fields,
    ram: encodeBase64(ram),
    output: output.map(({ value, fromAux }) => ({ value, fromAux })),
  };
}

/** Checks untrusted state; returns it with the RAM as bytes. */
export function parseI8042State(
  value: unknown,
  path: string,
): { state: I8042State; ram: Uint8Array } {
  const r = new StateReader(value, path);
  r.version([1]);
  const ram = r.bytes("ram", { exact: CONTROLLER_RAM_SIZE });
  const output = r.array("output", OUTPUT_BUFFER_SIZE, (entry, entryPath) => {
    const e = new StateReader(entry, entryPath);
    return { value: e.integer("value", 0, 0xff), fromAux: e.boolean("fromAux") };
  });
  const pendingControllerCommand = readNullable(r, "pendingControllerCommand", (name) => {
    const command = r.integer(name, 0, 0xff);
    if (!isControllerCommandWithParameter(command)) {
      throw new StateError(
        r.fieldPath(name),
        `command 0x${command.toString(16)} takes no parameter`,
      );
    }
    return command;
  }) ?? null;
  const pendingKeyboardCommand = readNullable(r, "pendingKeyboardCommand", (name) => {
    const command = r.integer(name, 0, 0xff);
    if (!KEYBOARD_COMMANDS_WITH_PARAMETER.includes(command)) {
      throw new StateError(
        r.fieldPath(name),
        `keyboard command 0x${command.toString(16)} takes no parameter`,
      );
    }
    return command;
  }) ?? null;
  const state: I8042State = {
    version: 1,
    ram: r.string("ram"),
    output,
    outputPort: r.integer("outputPort", 0, 0xff),
    lastWriteWasCommand: r.boolean("lastWriteWasCommand"),
    pendingControllerCommand,
    pendingKeyboardCommand,
    scanSet: r.integer("scanSet", 1, 3),
    kbdLineHigh: r.boolean("kbdLineHigh"),
    auxLineHigh: r.boolean("auxLineHigh"),
    resets: r.integer("resets", 0, MAX_COUNTER),
  };
  return { state, ram };
}
