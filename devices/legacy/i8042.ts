/**
 * An i8042 keyboard controller, complete enough for Linux's i8042 and atkbd probes to
 * succeed quickly and quietly, and for the guest to reboot through it (command 0xFE).
 *
 * What is there: the controller commands Linux uses (self-test, command byte, interface
 * tests, port enable/disable, AUX loopback, output port, pulse reset lines), a keyboard
 * that answers PS/2 commands (ACK, reset, identify, echo) but never produces keys, and an
 * AUX port with no mouse behind it (bytes sent to it are answered with NAK so psmouse
 * gives up at once instead of waiting for timeouts).
 *
 * Ports: the controller answers on two ports, data at 0x60 and command/status at 0x64.
 * Either register the object itself for the 5-port range 0x60..0x64 (it decodes offsets
 * 0 and 4; offsets 1..3 read 0xff and ignore writes, and 0x61 is normally served by
 * KVM's in-kernel PIT anyway), or register `dataPort` at 0x60 and `commandPort` at 0x64,
 * each a one-port device that sees offset 0.
 *
 * @module
 */

import type { BusDevice, InterruptTrigger } from "../bus_device.ts";
import type { Persistable } from "../../common/persist.ts";
import {
  CONTROLLER_RAM_SIZE,
  type I8042State,
  i8042State,
  OUTPUT_BUFFER_SIZE,
  parseI8042State,
} from "./i8042_state.ts";

export type { I8042State } from "./i8042_state.ts";

/** Offset of the data port (0x60) when the device covers 0x60..0x64. */
export const I8042_DATA_OFFSET = 0;
/** Offset of the command/status port (0x64) when the device covers 0x60..0x64. */
export const I8042_COMMAND_OFFSET = 4;
/** Length of the port range 0x60..0x64. */
export const I8042_RANGE_LENGTH = 5;

const STR_OBF = 0x01;
const STR_SYSFLAG = 0x04;
const STR_CMDDAT = 0x08;
const STR_KEYLOCK = 0x10; // set = keyboard not inhibited by the key lock
const STR_AUXDATA = 0x20;

const CTR_KBDINT = 0x01;
const CTR_AUXINT = 0x02;
const CTR_SYSFLAG = 0x04;
const CTR_KBDDIS = 0x10;
const CTR_AUXDIS = 0x20;
const CTR_XLATE = 0x40;
/**
 * Power-on command byte: interrupts on, system flag set as after a BIOS POST, scan-code
 * translation off so the keyboard's identify answer reaches atkbd untranslated.
 */
const INITIAL_CTR = CTR_KBDINT | CTR_AUXINT | CTR_SYSFLAG;

const OUTPUT_PORT_RESET = 0x01; // 0 = hold the CPU in reset
const OUTPUT_PORT_A20 = 0x02;

const CMD_READ_RAM = 0x20; // 0x20..0x3f
const CMD_WRITE_RAM = 0x60; // 0x60..0x7f
const CMD_PASSWORD_INSTALLED = 0xa4;
const CMD_AUX_DISABLE = 0xa7;
const CMD_AUX_ENABLE = 0xa8;
const CMD_AUX_TEST = 0xa9;
const CMD_SELF_TEST = 0xaa;
const CMD_KBD_TEST = 0xab;
const CMD_KBD_DISABLE = 0xad;
const CMD_KBD_ENABLE = 0xae;
const CMD_READ_INPUT_PORT = 0xc0;
const CMD_READ_OUTPUT_PORT = 0xd0;
const CMD_WRITE_OUTPUT_PORT = 0xd1;
const CMD_WRITE_KBD_BUFFER = 0xd2;
const CMD_WRITE_AUX_BUFFER = 0xd3;
const CMD_WRITE_AUX_DEVICE = 0xd4;
const CMD_PULSE_FIRST = 0xf0; // 0xf0..0xff pulse output lines; bit 0 clear pulses reset

const SELF_TEST_PASSED = 0x55;
const INTERFACE_TEST_PASSED = 0x00;
const NO_PASSWORD = 0xf1;

const KBD_ACK = 0xfa;
const KBD_NAK = 0xfe;
const KBD_BAT_PASSED = 0xaa;
const KBD_ID = [0xab, 0x83];
const KBD_SET_LEDS = 0xed;
const KBD_ECHO = 0xee;
const KBD_SCAN_SET = 0xf0;
const KBD_GET_ID = 0xf2;
const KBD_SET_TYPEMATIC = 0xf3;
const KBD_RESET = 0xff;
/** Left Ctrl, left Alt, Del (extended) make codes in scan-code sets 2 and 1. */
const CTRL_ALT_DEL_SET2 = [0x14, 0x11, 0xe0, 0x71];
const CTRL_ALT_DEL_SET1 = [0x1d, 0x38, 0xe0, 0x53];
/** Keyboard commands followed by one parameter byte. */
const KBD_COMMANDS_WITH_PARAMETER = new Set([KBD_SET_LEDS, KBD_SCAN_SET, KBD_SET_TYPEMATIC]);

/** The controller's output buffer: Linux's flush reads up to 16 bytes before giving up. */

interface OutputByte {
  value: number;
  fromAux: boolean;
}

/** What an i8042 needs from its surroundings. */
export interface I8042Options {
  /** Called when the guest asks the controller to reset the CPU (e.g. command 0xFE). */
  onReset: () => void;
  /** IRQ 1, raised when a keyboard byte arrives and the command byte enables it. */
  keyboardInterrupt?: InterruptTrigger;
  /** IRQ 12, raised when an AUX byte arrives and the command byte enables it. */
  auxInterrupt?: InterruptTrigger;
}

/** An i8042 PS/2 controller with an idle keyboard and an empty AUX port. */
export class I8042 implements BusDevice, Persistable<I8042State> {
  /** A one-port view of the data port, for registering at 0x60 on its own. */
  readonly dataPort: BusDevice;
  /** A one-port view of the command/status port, for registering at 0x64 on its own. */
  readonly commandPort: BusDevice;

  #options: I8042Options;
  #output: OutputByte[] = [];
  #ram = new Uint8Array(CONTROLLER_RAM_SIZE); // controller RAM; byte 0 is the command byte (CTR)
  #outputPort = OUTPUT_PORT_RESET | OUTPUT_PORT_A20;
  #lastWriteWasCommand = false;
  #pendingControllerCommand: number | undefined;
  #pendingKeyboardCommand: number | undefined;
  #scanSet = 2;
  #kbdLineHigh = false;
  #auxLineHigh = false;
  #resets = 0;

  /** Creates a controller in its post-POST state. */
  constructor(options: I8042Options) {
    this.#options = options;
    this.#ram[0] = INITIAL_CTR;
    this.dataPort = portView(this, I8042_DATA_OFFSET);
    this.commandPort = portView(this, I8042_COMMAND_OFFSET);
  }

  /** The controller command byte (CTR), for tests and diagnostics. */
  get commandByte(): number {
    return this.#ram[0];
  }

  /** Controller RAM, output buffer, pending commands and line levels as plain JSON. */
  save(): I8042State {
    return i8042State(
      {
        outputPort: this.#outputPort,
        lastWriteWasCommand: this.#lastWriteWasCommand,
        pendingControllerCommand: this.#pendingControllerCommand ?? null,
        pendingKeyboardCommand: this.#pendingKeyboardCommand ?? null,
        scanSet: this.#scanSet,
        kbdLineHigh: this.#kbdLineHigh,
        auxLineHigh: this.#auxLineHigh,
        resets: this.#resets,
      },
      this.#ram,
      this.#output,
    );
  }

  /**
   * Replaces the controller state with a saved one (untrusted: checked first, a bad one
   * throws `StateError` and changes nothing). Raises no interrupt: the saved line levels
   * are taken as they are.
   */
  restore(state: unknown, path = "state"): void {
    const { state: s, ram } = parseI8042State(state, path);
    this.#ram.set(ram);
    this.#output = s.output.map(({ value, fromAux }) => ({ value, fromAux }));
    this.#outputPort = s.outputPort;
    this.#lastWriteWasCommand = s.lastWriteWasCommand;
    this.#pendingControllerCommand = s.pendingControllerCommand ?? undefined;
    this.#pendingKeyboardCommand = s.pendingKeyboardCommand ?? undefined;
    this.#scanSet = s.scanSet;
    this.#kbdLineHigh = s.kbdLineHigh;
    this.#auxLineHigh = s.auxLineHigh;
    this.#resets = s.resets;
  }

  /** How many times the guest asked for a reset. */
  get resetCount(): number {
    return this.#resets;
  }

  /**
   * Presses Ctrl, Alt and Del on the keyboard (make codes only, as Firecracker's
   * SendCtrlAltDel) and raises IRQ 1: the guest's request to shut down. The codes are
   * scan-code set 1 when the guest turned on translation (or chose set 1), else set 2.
   * Returns false, queueing nothing, when the output buffer has no room for all four bytes.
   */
  sendCtrlAltDel(): boolean {
    if (this.#output.length + 4 > OUTPUT_BUFFER_SIZE) return false;
    const set1 = (this.#ram[0] & CTR_XLATE) !== 0 || this.#scanSet === 1;
    for (const byte of set1 ? CTRL_ALT_DEL_SET1 : CTRL_ALT_DEL_SET2) this.#queue(byte, false);
    this.#updateIrqLines();
    return true;
  }

  /** Byte-wide ports: a wider read returns the value in byte 0, zeros above. */
  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset === I8042_DATA_OFFSET) data[0] = this.#readData();
    else if (offset === I8042_COMMAND_OFFSET) data[0] = this.#readStatus();
    else data[0] = 0xff;
  }

  /** Byte-wide ports: a wider write uses byte 0 only. */
  write(offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    if (offset === I8042_DATA_OFFSET) this.#writeData(data[0]);
    else if (offset === I8042_COMMAND_OFFSET) this.#writeCommand(data[0]);
    this.#updateIrqLines();
  }

  #readStatus(): number {
    const head = this.#output[0];
    let status = STR_KEYLOCK | (this.#ram[0] & CTR_SYSFLAG ? STR_SYSFLAG : 0);
    if (this.#lastWriteWasCommand) status |= STR_CMDDAT;
    if (head) status |= STR_OBF | (head.fromAux ? STR_AUXDATA : 0);
    return status;
  }

  #readData(): number {
    const head = this.#output.shift();
    // Reading empties the output buffer, so the IRQ line drops before the next byte
    // (if any) is loaded: that byte makes a fresh edge.
    this.#kbdLineHigh = false;
    this.#auxLineHigh = false;
    this.#updateIrqLines();
    return head?.value ?? 0;
  }

  #writeCommand(command: number): void {
    this.#lastWriteWasCommand = true;
    this.#pendingControllerCommand = undefined;
    const ctr = this.#ram[0];
    if (command >= CMD_READ_RAM && command < CMD_READ_RAM + 0x20) {
      this.#queue(this.#ram[command - CMD_READ_RAM], false);
    } else if (command >= CMD_WRITE_RAM && command < CMD_WRITE_RAM + 0x20) {
      this.#pendingControllerCommand = command;
    } else if (command >= CMD_PULSE_FIRST) {
      if (!(command & OUTPUT_PORT_RESET)) this.#reset();
    } else {
      switch (command) {
        case CMD_PASSWORD_INSTALLED:
          return this.#queue(NO_PASSWORD, false);
        case CMD_AUX_DISABLE:
          this.#ram[0] = ctr | CTR_AUXDIS;
          return;
        case CMD_AUX_ENABLE:
          this.#ram[0] = ctr & ~CTR_AUXDIS;
          return;
        case CMD_AUX_TEST:
        case CMD_KBD_TEST:
          return this.#queue(INTERFACE_TEST_PASSED, false);
        case CMD_SELF_TEST:
          this.#ram[0] = ctr | CTR_SYSFLAG;
          return this.#queue(SELF_TEST_PASSED, false);
        case CMD_KBD_DISABLE:
          this.#ram[0] = ctr | CTR_KBDDIS;
          return;
        case CMD_KBD_ENABLE:
          this.#ram[0] = ctr & ~CTR_KBDDIS;
          return;
        case CMD_READ_INPUT_PORT:
          return this.#queue(0x80, false); // bit 7: keyboard not inhibited
        case CMD_READ_OUTPUT_PORT:
          return this.#queue(this.#outputPort, false);
        case CMD_WRITE_OUTPUT_PORT:
        case CMD_WRITE_KBD_BUFFER:
        case CMD_WRITE_AUX_BUFFER:
        case CMD_WRITE_AUX_DEVICE:
          this.#pendingControllerCommand = command;
          return;
          // Anything else (MUX prefixes, vendor commands) is ignored, as old chips do.
      }
    }
  }

  #writeData(value: number): void {
    this.#lastWriteWasCommand = false;
    const command = this.#pendingControllerCommand;
    this.#pendingControllerCommand = undefined;
    if (command === undefined) return this.#keyboardReceive(value);
    if (command >= CMD_WRITE_RAM && command < CMD_WRITE_RAM + 0x20) {
      this.#ram[command - CMD_WRITE_RAM] = value;
      return;
    }
    switch (command) {
      case CMD_WRITE_OUTPUT_PORT:
        this.#outputPort = value;
        if (!(value & OUTPUT_PORT_RESET)) this.#reset();
        return;
      case CMD_WRITE_KBD_BUFFER:
        return this.#queue(value, false);
      case CMD_WRITE_AUX_BUFFER:
        return this.#queue(value, true);
      case CMD_WRITE_AUX_DEVICE:
        // No mouse: a NAK makes libps2 fail the command now rather than time out.
        return this.#queue(KBD_NAK, true);
    }
  }

  /** The keyboard's side of a byte the guest sent to it. */
  #keyboardReceive(value: number): void {
    const command = this.#pendingKeyboardCommand;
    if (command !== undefined) {
      this.#pendingKeyboardCommand = undefined;
      this.#queue(KBD_ACK, false);
      if (command === KBD_SCAN_SET) {
        if (value === 0) this.#queue(this.#scanSet, false);
        else if (value <= 3) this.#scanSet = value;
      }
      return;
    }
    switch (value) {
      case KBD_RESET:
        this.#scanSet = 2;
        this.#queue(KBD_ACK, false);
        return this.#queue(KBD_BAT_PASSED, false);
      case KBD_GET_ID:
        this.#queue(KBD_ACK, false);
        for (const byte of KBD_ID) this.#queue(byte, false);
        return;
      case KBD_ECHO:
        return this.#queue(KBD_ECHO, false);
      default:
        if (KBD_COMMANDS_WITH_PARAMETER.has(value)) this.#pendingKeyboardCommand = value;
        // Enable, disable, set defaults, typematic modes, resend: all acknowledged.
        return this.#queue(KBD_ACK, false);
    }
  }

  #queue(value: number, fromAux: boolean): void {
    // A full buffer means the guest is not reading: the newest byte is lost, as on hardware.
    if (this.#output.length < OUTPUT_BUFFER_SIZE) this.#output.push({ value, fromAux });
  }

  #reset(): void {
    this.#resets++;
    this.#options.onReset();
  }

  #updateIrqLines(): void {
    const head = this.#output[0];
    const ctr = this.#ram[0];
    const kbdHigh = head !== undefined && !head.fromAux && (ctr & CTR_KBDINT) !== 0;
    const auxHigh = head !== undefined && head.fromAux && (ctr & CTR_AUXINT) !== 0;
    if (kbdHigh && !this.#kbdLineHigh) this.#options.keyboardInterrupt?.trigger();
    if (auxHigh && !this.#auxLineHigh) this.#options.auxInterrupt?.trigger();
    this.#kbdLineHigh = kbdHigh;
    this.#auxLineHigh = auxHigh;
  }
}

function portView(device: I8042, offset: number): BusDevice {
  return {
    read: (_offset, data) => device.read(offset, data),
    write: (_offset, data) => device.write(offset, data),
  };
}
