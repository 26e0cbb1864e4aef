/**
 * QEMU's BIOS linker/loader (`etc/table-loader`): 128-byte commands that tell firmware
 * to ALLOCATE a fw_cfg file in memory, ADD_POINTER (add one file's address to a pointer
 * field of another) and ADD_CHECKSUM (fix a checksum byte). SeaBIOS runs them in
 * src/fw/romfile_loader.c; `runTableLoader` below runs the same commands in the VMM, for
 * a direct (firmware-less) boot and as the tests' independent check that the commands
 * and the blobs agree.
 *
 * @module
 */

import { DenovisorError } from "../../../common/errors.ts";
import { byteSum } from "./tables.ts";

/** Command types. */
export const LOADER_ALLOCATE = 1;
export const LOADER_ADD_POINTER = 2;
export const LOADER_ADD_CHECKSUM = 3;
/** Where ALLOCATE places a file: anywhere in high RAM, or in the 0xF0000 segment. */
export const ZONE_HIGH = 1;
export const ZONE_FSEG = 2;
/** Size of one command and of a file name field. */
export const LOADER_COMMAND_SIZE = 128;
const NAME_SIZE = 56;

/** The commands are inconsistent with the files they name. */
export class TableLoaderError extends DenovisorError {
  constructor(message: string) {
    super("invalid", `ACPI table loader: ${message}`);
  }
}

/** One decoded command. */
export type LoaderCommand =
  | {
    readonly kind: "allocate";
    readonly file: string;
    readonly align: number;
    readonly zone: number;
  }
  | {
    readonly kind: "pointer";
    readonly dest: string;
    readonly src: string;
    readonly offset: number;
    readonly size: number;
  }
  | {
    readonly kind: "checksum";
    readonly file: string;
    readonly offset: number;
    readonly start: number;
    readonly length: number;
  };

/** Builds the `etc/table-loader` file. */
export class TableLoader {
  readonly #commands: Uint8Array[] = [];

  /** ALLOCATE `file` aligned to `align` (a power of two) in `zone`. */
  allocate(file: string, align: number, zone: number): this {
    const command = this.#command(LOADER_ALLOCATE, file);
    const view = new DataView(command.buffer);
    view.setUint32(4 + NAME_SIZE, align, true);
    command[8 + NAME_SIZE] = zone;
    return this;
  }

  /** ADD_POINTER: the `size`-byte field at `offset` of `dest` gets `src`'s address added. */
  addPointer(dest: string, src: string, offset: number, size: 1 | 2 | 4 | 8): this {
    const command = this.#command(LOADER_ADD_POINTER, dest);
    command.set(nameField(src), 4 + NAME_SIZE);
    const view = new DataView(command.buffer);
    view.setUint32(4 + 2 * NAME_SIZE, offset, true);
    command[8 + 2 * NAME_SIZE] = size;
    return this;
  }

  /** ADD_CHECKSUM: the byte at `offset` makes `[start, start + length)` of `file` sum to 0. */
  addChecksum(file: string, offset: number, start: number, length: number): this {
    const command = this.#command(LOADER_ADD_CHECKSUM, file);
    const view = new DataView(command.buffer);
    view.setUint32(4 + NAME_SIZE, offset, true);
    view.setUint32(8 + NAME_SIZE, start, true);
    view.setUint32(12 + NAME_SIZE, length, true);
    return this;
  }

  /** The file's bytes. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#commands.length * LOADER_COMMAND_SIZE);
    this.#commands.forEach((c, i) => out.set(c, i * LOADER_COMMAND_SIZE));
    return out;
  }

  #command(type: number, file: string): Uint8Array {
    const command = new Uint8Array(LOADER_COMMAND_SIZE);
    new DataView(command.buffer).setUint32(0, type, true);
    command.set(nameField(file), 4);
    this.#commands.push(command);
    return command;
  }
}

/** Decodes a loader file; unknown command types are skipped, as SeaBIOS does. */
export function parseTableLoader(bytes: Uint8Array): LoaderCommand[] {
  if (bytes.length % LOADER_COMMAND_SIZE !== 0) {
    throw new TableLoaderError(`${bytes.length} bytes is not a whole number of commands`);
  }
  const commands: LoaderCommand[] = [];
  for (let at = 0; at < bytes.length; at += LOADER_COMMAND_SIZE) {
    const c = bytes.subarray(at, at + LOADER_COMMAND_SIZE);
    const view = new DataView(c.buffer, c.byteOffset, c.length);
    const type = view.getUint32(0, true);
    const file = readName(c, 4);
    if (type === LOADER_ALLOCATE) {
      commands.push({
        kind: "allocate",
        file,
        align: view.getUint32(4 + NAME_SIZE, true),
        zone: c[8 + NAME_SIZE],
      });
    } else if (type === LOADER_ADD_POINTER) {
      commands.push({
        kind: "pointer",
        dest: file,
        src: readName(c, 4 + NAME_SIZE),
        offset: view.getUint32(4 + 2 * NAME_SIZE, true),
        size: c[8 + 2 * NAME_SIZE],
      });
    } else if (type === LOADER_ADD_CHECKSUM) {
      commands.push({
        kind: "checksum",
        file,
        offset: view.getUint32(4 + NAME_SIZE, true),
        start: view.getUint32(8 + NAME_SIZE, true),
        length: view.getUint32(12 + NAME_SIZE, true),
      });
    }
  }
  return commands;
}

/** A file placed by `runTableLoader`: its guest address and its patched bytes. */
export interface PlacedFile {
  readonly address: number;
  readonly data: Uint8Array;
}

/**
 * Runs the loader commands over copies of `files` as SeaBIOS would, with `place`
 * choosing each allocated file's address. Every offset is checked against the file it
 * names. Returns the placed files; the caller copies them into guest memory.
 */
export function runTableLoader(
  loader: Uint8Array,
  files: ReadonlyMap<string, Uint8Array>,
  place: (file: string, size: number, align: number, zone: number) => number,
): Map<string, PlacedFile> {
  const placed = new Map<string, PlacedFile>();
  const get = (file: string) => {
    const entry = placed.get(file);
    if (entry === undefined) throw new TableLoaderError(`${file} is used before it is allocated`);
    return entry;
  };
  for (const command of parseTableLoader(loader)) {
    if (command.kind === "allocate") {
      const data = files.get(command.file);
      if (data === undefined) throw new TableLoaderError(`no file named ${command.file}`);
      if (command.align === 0 || (command.align & (command.align - 1)) !== 0) {
        throw new TableLoaderError(
          `alignment ${command.align} of ${command.file} is not a power of two`,
        );
      }
      const address = place(command.file, data.length, command.align, command.zone);
      placed.set(command.file, { address, data: data.slice() });
    } else if (command.kind === "pointer") {
      const dest = get(command.dest);
      const src = get(command.src);
      if (
        ![1, 2, 4, 8].includes(command.size) || command.offset + command.size > dest.data.length
      ) {
        throw new TableLoaderError(
          `pointer of ${command.size} bytes at ${command.offset} does not fit ${command.dest}`,
        );
      }
      const view = new DataView(dest.data.buffer, command.offset, command.size);
      let value = 0n;
      for (let i = command.size - 1; i >= 0; i--) value = (value << 8n) | BigInt(view.getUint8(i));
      value += BigInt(src.address);
      for (let i = 0; i < command.size; i++) {
        view.setUint8(i, Number((value >> BigInt(8 * i)) & 0xffn));
      }
    } else {
      const file = get(command.file);
      const { offset, start, length } = command;
      if (offset >= file.data.length || start + length > file.data.length) {
        throw new TableLoaderError(`checksum range of ${command.file} is outside the file`);
      }
      file.data[offset] = (file.data[offset] - byteSum(file.data.subarray(start, start + length))) &
        0xff;
    }
  }
  return placed;
}

function nameField(file: string): Uint8Array {
  const bytes = new TextEncoder().encode(file);
  if (bytes.length >= NAME_SIZE) throw new TableLoaderError(`file name ${file} is too long`);
  const field = new Uint8Array(NAME_SIZE);
  field.set(bytes);
  return field;
}

function readName(command: Uint8Array, at: number): string {
  const field = command.subarray(at, at + NAME_SIZE);
  const end = field.indexOf(0);
  return new TextDecoder().decode(field.subarray(0, end < 0 ? NAME_SIZE : end));
}
