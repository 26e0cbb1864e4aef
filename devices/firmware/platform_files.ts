/**
 * The fw_cfg items and files SeaBIOS reads to learn the machine (src/fw/paravirt.c,
 * src/boot.c, src/fw/biostables.c): CPU counts, the e820 map, the boot order, the serial
 * console port, how long to wait after a failed boot, and SMBIOS tables.
 *
 * `installPlatformFiles` fills an `FwCfg` from a `PlatformDescription`; ACPI tables come
 * separately from `acpi/` through `installAcpiFiles`.
 *
 * @module
 */

import {
  FW_CFG_ACPI_TABLES,
  FW_CFG_BOOT_MENU,
  FW_CFG_E820_TABLE,
  FW_CFG_IRQ0_OVERRIDE,
  FW_CFG_MAX_CPUS,
  FW_CFG_NB_CPUS,
  FW_CFG_NOGRAPHIC,
  FW_CFG_NUMA,
  FW_CFG_RAM_SIZE,
  FW_CFG_SMBIOS_ENTRIES,
  FW_CFG_UUID,
  type FwCfg,
  FwCfgError,
  le,
} from "./fw_cfg.ts";

/** e820 entry types. */
export const E820_RAM = 1;
export const E820_RESERVED = 2;

/** One range of the e820 map. */
export interface E820Entry {
  readonly address: number;
  readonly length: number;
  readonly type: number;
}

/** Where a boot device sits, for the `bootorder` file (OpenFirmware paths, as QEMU writes). */
export type BootDevice =
  /** A PCI function of its own, e.g. a virtio-blk disk in slot 5. */
  | { readonly kind: "pci"; readonly slot: number }
  /** A disk or CD-ROM on port `port` of the AHCI controller in slot `slot`. */
  | { readonly kind: "ahci"; readonly slot: number; readonly port: number };

/** What SeaBIOS must know about the machine. */
export interface PlatformDescription {
  readonly cpus: number;
  /** RAM ranges and reservations; RAM above 4 GiB included. */
  readonly e820: readonly E820Entry[];
  /** Boot devices, first tried first; empty lets SeaBIOS choose. */
  readonly bootOrder: readonly BootDevice[];
  /** The UART SeaBIOS mirrors its text screen to (sercon), usually COM1 at 0x3f8. */
  readonly serconPort?: number;
  /** Milliseconds before SeaBIOS retries after no device booted; default 5000. */
  readonly bootFailWaitMs?: number;
  /** The machine's UUID (16 bytes), for SMBIOS type 1. */
  readonly uuid?: Uint8Array;
}

/** Most vCPUs SeaBIOS and the MADT's xAPIC entries can name. */
const MAX_CPUS = 255;
/** The PCI root as SeaBIOS names it (FW_PCI_DOMAIN). */
const PCI_ROOT = "/pci@i0cf8";

/** Fills `fwCfg` with the items and files SeaBIOS reads at boot. */
export function installPlatformFiles(fwCfg: FwCfg, platform: PlatformDescription): void {
  if (!Number.isInteger(platform.cpus) || platform.cpus < 1 || platform.cpus > MAX_CPUS) {
    throw new FwCfgError(`Firmware boot supports 1-${MAX_CPUS} vCPUs, not ${platform.cpus}`);
  }
  const ramBytes = platform.e820
    .filter((e) => e.type === E820_RAM)
    .reduce((sum, e) => sum + e.length, 0);
  fwCfg.setItem(FW_CFG_NB_CPUS, le(platform.cpus, 2));
  fwCfg.setItem(FW_CFG_MAX_CPUS, le(platform.cpus, 2));
  fwCfg.setItem(FW_CFG_RAM_SIZE, le(ramBytes, 8));
  fwCfg.setItem(FW_CFG_NOGRAPHIC, le(platform.serconPort === undefined ? 0 : 1, 2));
  fwCfg.setItem(FW_CFG_UUID, platform.uuid ?? new Uint8Array(16));
  // No boot menu: it costs a 2.5 s wait for a key on every boot.
  fwCfg.setItem(FW_CFG_BOOT_MENU, le(0, 2));
  fwCfg.setItem(FW_CFG_NUMA, le(0, 8));
  // The legacy tables are empty: ACPI and SMBIOS come as files, e820 as etc/e820.
  fwCfg.setItem(FW_CFG_ACPI_TABLES, le(0, 2));
  fwCfg.setItem(FW_CFG_SMBIOS_ENTRIES, le(0, 2));
  fwCfg.setItem(FW_CFG_E820_TABLE, le(0, 4));
  // The MADT routes ISA IRQ 0 to GSI 2: SeaBIOS's MP table must say the same.
  fwCfg.setItem(FW_CFG_IRQ0_OVERRIDE, le(1, 1));
  fwCfg.addFile("etc/e820", e820File(platform.e820));
  fwCfg.addFile("bootorder", bootOrderFile(platform.bootOrder));
  fwCfg.addFile("etc/boot-fail-wait", le(platform.bootFailWaitMs ?? 5000, 4));
  if (platform.serconPort !== undefined) {
    fwCfg.addFile("etc/sercon-port", le(platform.serconPort, 2));
  }
  const smbios = smbiosFiles(platform.uuid ?? new Uint8Array(16));
  fwCfg.addFile("etc/smbios/smbios-anchor", smbios.anchor);
  fwCfg.addFile("etc/smbios/smbios-tables", smbios.tables);
}

/** The `etc/e820` file: packed { u64 address, u64 length, u32 type } entries. */
export function e820File(entries: readonly E820Entry[]): Uint8Array {
  const out = new Uint8Array(entries.length * 20);
  const view = new DataView(out.buffer);
  entries.forEach((entry, i) => {
    if (
      !Number.isSafeInteger(entry.address) || !Number.isSafeInteger(entry.length) ||
      entry.address < 0 || entry.length <= 0
    ) {
      throw new FwCfgError(`e820 entry ${i} has an invalid range; give a start and a length > 0`);
    }
    view.setBigUint64(i * 20, BigInt(entry.address), true);
    view.setBigUint64(i * 20 + 8, BigInt(entry.length), true);
    view.setUint32(i * 20 + 16, entry.type, true);
  });
  return out;
}

/**
 * The `bootorder` file: one OpenFirmware device path per line, in the form SeaBIOS
 * builds for its own devices (src/boot.c), then HALT so SeaBIOS tries nothing else.
 */
export function bootOrderFile(devices: readonly BootDevice[]): Uint8Array {
  const lines = devices.map((device) => {
    if (!Number.isInteger(device.slot) || device.slot < 0 || device.slot > 31) {
      throw new FwCfgError(`Boot device slot ${device.slot} is not a PCI slot (0-31)`);
    }
    const pci = `${PCI_ROOT}/*@${device.slot.toString(16)}`;
    if (device.kind === "pci") return pci;
    return `${pci}/drive@${device.port.toString(16)}/disk@0`;
  });
  if (lines.length > 0) lines.push("HALT");
  return new TextEncoder().encode(lines.map((line) => line + "\n").join(""));
}

/**
 * SMBIOS 3.0 tables: type 1 (system: maker, product, UUID) and the end marker. SeaBIOS
 * adds its own type 0 (BIOS) and fills in the entry point's table address.
 */
export function smbiosFiles(uuid: Uint8Array): { anchor: Uint8Array; tables: Uint8Array } {
  if (uuid.length !== 16) throw new FwCfgError("The machine UUID must be 16 bytes");
  const strings = ["Denovisor", "Denovisor VM", "1.0"];
  const type1 = new Uint8Array(27);
  type1.set([1, 27, 0x00, 0x01, 1, 2, 3, 0]); // type, length, handle 0x100, strings 1-3, no serial
  type1.set(uuid, 8);
  type1[24] = 6; // wake-up type: power switch
  const table1 = concat(type1, stringSet(strings));
  const end = concat(Uint8Array.from([127, 4, 0x01, 0x01]), Uint8Array.from([0, 0]));
  const tables = concat(table1, end);
  const anchor = new Uint8Array(24);
  const view = new DataView(anchor.buffer);
  anchor.set(new TextEncoder().encode("_SM3_"));
  anchor[6] = 24; // length
  anchor[7] = 3; // SMBIOS 3.0.0
  anchor[8] = 0;
  anchor[10] = 1; // entry point revision
  view.setUint32(12, tables.length, true);
  // The structure table address (offset 16) is SeaBIOS's to fill; it fixes the checksum.
  anchor[5] = (256 - anchor.reduce((s, b) => s + b, 0) % 256) % 256;
  return { anchor, tables };
}

function stringSet(strings: string[]): Uint8Array {
  return new TextEncoder().encode(strings.map((s) => s + "\0").join("") + "\0");
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
