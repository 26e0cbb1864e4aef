/**
 * QEMU's firmware configuration device (fw_cfg), as SeaBIOS and OVMF drive it: the
 * selector port (0x510, 16-bit write), the data port (0x511, byte reads that walk the
 * selected item) and the DMA interface (0x514-0x51b, the big-endian guest address of a
 * `FWCfgDmaAccess`; the write of its low half starts the transfer).
 *
 * Register the device for `FW_CFG_PORT_COUNT` ports at `FW_CFG_PORT_BASE`: it sees
 * offset 0 (selector), 1 (data) and 4-11 (DMA address).
 *
 * Items are the legacy numbered ones (signature, feature bitmap, CPU count...) and named
 * files, listed in the file directory at selector 0x19 and numbered from 0x20. A guest
 * that selects an unknown item reads zeros; a DMA request whose access structure or
 * buffer is not inside guest RAM fails with the error bit (or, when not even the access
 * structure can be reached, is dropped) and never touches anything else.
 *
 * @module
 */

import type { GuestMemory } from "../../core/guest_memory.ts";
import { DenovisorError } from "../../common/errors.ts";
import { type Persistable, StateError, StateReader } from "../../common/persist.ts";
import type { BusDevice } from "../../core/bus_device.ts";

/** First port of the device (the selector). */
export const FW_CFG_PORT_BASE = 0x510;
/** Ports 0x510-0x51b: selector, data, two unused, 8 bytes of DMA address. */
export const FW_CFG_PORT_COUNT = 12;
/** Offsets within the port range. */
export const FW_CFG_SELECTOR_OFFSET = 0;
export const FW_CFG_DATA_OFFSET = 1;
export const FW_CFG_DMA_OFFSET = 4;

/** Legacy item selectors (QEMU's include/standard-headers/linux/qemu_fw_cfg.h). */
export const FW_CFG_SIGNATURE = 0x00;
export const FW_CFG_ID = 0x01;
export const FW_CFG_UUID = 0x02;
export const FW_CFG_RAM_SIZE = 0x03;
export const FW_CFG_NOGRAPHIC = 0x04;
export const FW_CFG_NB_CPUS = 0x05;
export const FW_CFG_NUMA = 0x0d;
export const FW_CFG_BOOT_MENU = 0x0e;
export const FW_CFG_MAX_CPUS = 0x0f;
export const FW_CFG_FILE_DIR = 0x19;
export const FW_CFG_FILE_FIRST = 0x20;
export const FW_CFG_ACPI_TABLES = 0x8000;
export const FW_CFG_SMBIOS_ENTRIES = 0x8001;
export const FW_CFG_IRQ0_OVERRIDE = 0x8002;
export const FW_CFG_E820_TABLE = 0x8003;

/** Feature bitmap at FW_CFG_ID: the traditional interface and DMA. */
export const FW_CFG_FEATURE_TRADITIONAL = 1;
export const FW_CFG_FEATURE_DMA = 2;

/** DMA control bits (big-endian in the access structure). */
export const FW_CFG_DMA_ERROR = 0x01;
export const FW_CFG_DMA_READ = 0x02;
export const FW_CFG_DMA_SKIP = 0x04;
export const FW_CFG_DMA_SELECT = 0x08;
export const FW_CFG_DMA_WRITE = 0x10;

/** Size of a file directory entry: size (4), select (2), reserved (2), name (56). */
export const FW_CFG_FILE_ENTRY_SIZE = 64;
/** Longest file name, without its terminating NUL. */
export const FW_CFG_MAX_NAME = 55;
/** A read of ports 0x514-0x51b: the DMA interface's signature. */
const DMA_SIGNATURE = new TextEncoder().encode("QEMU CFG");
/** Bit 14 of a selector asks for write access (ignored since QEMU 2.4; so here). */
const SELECTOR_WRITE_FLAG = 0x4000;
/** Size of FWCfgDmaAccess: control (4), length (4), address (8). */
const DMA_ACCESS_SIZE = 16;
/** Files are numbered 0x20..0x3fff; above that the write flag and the arch bit begin. */
const MAX_FILES = SELECTOR_WRITE_FLAG - FW_CFG_FILE_FIRST;

/** A file or item was added in a way fw_cfg cannot represent. */
export class FwCfgError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** Options of `FwCfg.addFile`. */
export interface FwCfgFileOptions {
  /** The guest may write the file through DMA (within its current size). */
  readonly writable?: boolean;
}

/** The saved state of an fw_cfg device: the cursor, not the contents the builder supplies. */
export interface FwCfgState {
  readonly version: 1;
  readonly selector: number;
  readonly offset: number;
  /** The DMA address's high half the guest wrote, not yet consumed. */
  readonly dmaAddressHigh: number;
  /** Names of the files, in selector order: restore checks the machine matches. */
  readonly files: readonly string[];
  /** Contents of writable files (base64 is not needed: they are few and small). */
  readonly writable: Readonly<Record<string, readonly number[]>>;
}

interface Item {
  data: Uint8Array;
  writable: boolean;
}

/** The fw_cfg device. */
export class FwCfg implements BusDevice, Persistable<FwCfgState> {
  readonly #memory: GuestMemory;
  readonly #log: (message: string) => void;
  readonly #items = new Map<number, Item>();
  readonly #files: { name: string; selector: number }[] = [];
  #selector = 0;
  #offset = 0;
  #dmaAddress = new Uint8Array(8);

  /**
   * A device with the signature, the feature bitmap (traditional and DMA) and an empty
   * file directory; DMA reaches guest RAM through `memory` only.
   */
  constructor(memory: GuestMemory, log: (message: string) => void = console.warn) {
    this.#memory = memory;
    this.#log = log;
    this.setItem(FW_CFG_SIGNATURE, new TextEncoder().encode("QEMU"));
    this.setItem(FW_CFG_ID, le(FW_CFG_FEATURE_TRADITIONAL | FW_CFG_FEATURE_DMA, 4));
    this.#updateDirectory();
  }

  /** Sets legacy item `selector` (below 0x20, or an arch-local 0x8000+ one). */
  setItem(selector: number, data: Uint8Array): void {
    const plain = selector & ~SELECTOR_WRITE_FLAG;
    if (
      !Number.isInteger(selector) || selector < 0 || selector > 0xffff ||
      (plain >= FW_CFG_FILE_FIRST && plain < 0x8000) || plain === FW_CFG_FILE_DIR
    ) {
      throw new FwCfgError(
        `fw_cfg item 0x${selector.toString(16)} is not a legacy selector; add it as a file`,
      );
    }
    this.#items.set(plain, { data, writable: false });
  }

  /**
   * Adds (or replaces) file `name` and returns its selector. Names are at most 55 bytes,
   * e.g. "etc/e820" or "bootorder".
   */
  addFile(name: string, data: Uint8Array, options: FwCfgFileOptions = {}): number {
    const nameBytes = new TextEncoder().encode(name);
    if (nameBytes.length === 0 || nameBytes.length > FW_CFG_MAX_NAME || nameBytes.includes(0)) {
      throw new FwCfgError(
        `fw_cfg file name ${JSON.stringify(name)} must be 1-${FW_CFG_MAX_NAME} bytes without NUL`,
      );
    }
    const existing = this.#files.find((f) => f.name === name);
    const selector = existing?.selector ?? FW_CFG_FILE_FIRST + this.#files.length;
    if (existing === undefined) {
      if (this.#files.length >= MAX_FILES) {
        throw new FwCfgError(`fw_cfg holds at most ${MAX_FILES} files; ${name} does not fit`);
      }
      this.#files.push({ name, selector });
    }
    this.#items.set(selector, { data, writable: options.writable ?? false });
    this.#updateDirectory();
    return selector;
  }

  /** The current contents of file `name`, or undefined. */
  file(name: string): Uint8Array | undefined {
    const entry = this.#files.find((f) => f.name === name);
    return entry && this.#items.get(entry.selector)?.data;
  }

  /** File names in selector order. */
  get fileNames(): string[] {
    return this.#files.map((f) => f.name);
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset === FW_CFG_DATA_OFFSET) {
      // A wider read of the data port returns consecutive bytes, as QEMU's does.
      for (let i = 0; i < data.length; i++) data[i] = this.#nextByte();
    } else if (offset >= FW_CFG_DMA_OFFSET && offset < FW_CFG_PORT_COUNT) {
      for (let i = 0; i < data.length && offset + i < FW_CFG_PORT_COUNT; i++) {
        data[i] = DMA_SIGNATURE[offset + i - FW_CFG_DMA_OFFSET];
      }
    }
  }

  write(offset: number, data: Uint8Array): void {
    if (offset === FW_CFG_SELECTOR_OFFSET && data.length >= 2) {
      this.#select(data[0] | (data[1] << 8));
    } else if (offset >= FW_CFG_DMA_OFFSET && offset + data.length <= FW_CFG_PORT_COUNT) {
      // The address is big-endian: port 0x514 holds the high half, 0x518 the low half.
      this.#dmaAddress.set(data, offset - FW_CFG_DMA_OFFSET);
      if (offset + data.length === FW_CFG_PORT_COUNT) {
        const view = new DataView(this.#dmaAddress.buffer);
        const address = view.getUint32(0) * 2 ** 32 + view.getUint32(4);
        this.#dmaAddress.fill(0); // the high half must be written again for the next request
        this.#dma(address);
      }
    }
    // Data-port writes have been ignored since QEMU 2.4; firmware writes through DMA.
  }

  save(): FwCfgState {
    const writable: Record<string, number[]> = {};
    for (const file of this.#files) {
      const item = this.#items.get(file.selector)!;
      if (item.writable) writable[file.name] = [...item.data];
    }
    return {
      version: 1,
      selector: this.#selector,
      offset: this.#offset,
      dmaAddressHigh: new DataView(this.#dmaAddress.buffer).getUint32(0),
      files: this.fileNames,
      writable,
    };
  }

  restore(state: unknown): void {
    const reader = new StateReader(state);
    reader.version([1]);
    const selector = reader.integer("selector", 0, 0xffff);
    const offset = reader.integer("offset", 0, 0xffff_ffff);
    const high = reader.integer("dmaAddressHigh", 0, 0xffff_ffff);
    const files = reader.array("files", MAX_FILES, (entry, path) => {
      if (typeof entry !== "string") throw new StateError(path, "expected a file name");
      return entry;
    });
    if (files.join("\n") !== this.fileNames.join("\n")) {
      throw new StateError(
        reader.fieldPath("files"),
        "the saved fw_cfg files differ from this machine's; restore into the same configuration",
      );
    }
    const writableReader = reader.object("writable");
    const updates: [Item, Uint8Array][] = [];
    for (const file of this.#files) {
      const item = this.#items.get(file.selector)!;
      if (!item.writable) continue;
      const values = writableReader.integers(file.name, 0, 255, { exact: item.data.length });
      updates.push([item, Uint8Array.from(values)]);
    }
    for (const [item, bytes] of updates) item.data.set(bytes);
    this.#selector = selector;
    this.#offset = offset;
    new DataView(this.#dmaAddress.buffer).setUint32(0, high);
  }

  #select(selector: number): void {
    this.#selector = selector & ~SELECTOR_WRITE_FLAG;
    this.#offset = 0;
  }

  #nextByte(): number {
    const data = this.#items.get(this.#selector)?.data;
    if (data === undefined || this.#offset >= data.length) return 0;
    return data[this.#offset++];
  }

  #dma(accessAddress: number): void {
    if (!this.#memory.contains(accessAddress, DMA_ACCESS_SIZE)) {
      // Nowhere to report the failure: drop the request, as QEMU does.
      this.#log(`fw_cfg: DMA access structure at 0x${accessAddress.toString(16)} is outside RAM`);
      return;
    }
    const access = new DataView(this.#memory.read(accessAddress, DMA_ACCESS_SIZE).buffer);
    const control = access.getUint32(0);
    const length = access.getUint32(4);
    const address = Number(access.getBigUint64(8));
    if (control & FW_CFG_DMA_SELECT) this.#select(control >>> 16);
    let ok = true;
    if (control & FW_CFG_DMA_READ) ok = this.#dmaRead(address, length);
    else if (control & FW_CFG_DMA_WRITE) ok = this.#dmaWrite(address, length);
    else if (control & FW_CFG_DMA_SKIP) this.#offset = Math.min(this.#offset + length, 2 ** 32);
    // Completion: control reads back 0, or just the error bit.
    this.#memory.write(accessAddress, be32(ok ? 0 : FW_CFG_DMA_ERROR));
  }

  #dmaRead(address: number, length: number): boolean {
    if (length === 0) return true;
    if (!this.#memory.contains(address, length)) {
      this.#log(
        `fw_cfg: DMA read of ${length} bytes to 0x${address.toString(16)} is outside guest RAM`,
      );
      return false;
    }
    const target = this.#memory.slice(address, length);
    const data = this.#items.get(this.#selector)?.data ?? new Uint8Array();
    // Past the end of the item the guest reads zeros, as from the data port.
    const available = Math.max(0, Math.min(length, data.length - this.#offset));
    target.set(data.subarray(this.#offset, this.#offset + available));
    target.fill(0, available);
    this.#offset += length;
    return true;
  }

  #dmaWrite(address: number, length: number): boolean {
    const item = this.#items.get(this.#selector);
    if (item === undefined || !item.writable || this.#offset + length > item.data.length) {
      this.#log(
        `fw_cfg: DMA write of ${length} bytes to item 0x${this.#selector.toString(16)} refused`,
      );
      return false;
    }
    if (!this.#memory.contains(address, length)) {
      this.#log(`fw_cfg: DMA write source 0x${address.toString(16)} is outside guest RAM`);
      return false;
    }
    item.data.set(this.#memory.read(address, length), this.#offset);
    this.#offset += length;
    return true;
  }

  #updateDirectory(): void {
    const sorted = [...this.#files].sort((
      a,
      b,
    ) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const dir = new Uint8Array(4 + sorted.length * FW_CFG_FILE_ENTRY_SIZE);
    const view = new DataView(dir.buffer);
    view.setUint32(0, sorted.length);
    sorted.forEach((file, i) => {
      const at = 4 + i * FW_CFG_FILE_ENTRY_SIZE;
      view.setUint32(at, this.#items.get(file.selector)?.data.length ?? 0);
      view.setUint16(at + 4, file.selector);
      dir.set(new TextEncoder().encode(file.name), at + 8);
    });
    this.#items.set(FW_CFG_FILE_DIR, { data: dir, writable: false });
  }
}

/** `value` as `size` little-endian bytes (legacy items are little-endian). */
export function le(value: number | bigint, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let v = BigInt(value);
  for (let i = 0; i < size; i++, v >>= 8n) bytes[i] = Number(v & 0xffn);
  return bytes;
}

function be32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value);
  return bytes;
}
