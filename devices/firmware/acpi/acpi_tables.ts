/**
 * The machine's ACPI tables as two blobs and a linker script, QEMU's layout:
 * `etc/acpi/tables` (FACS, DSDT, FADT, MADT, RSDT, XSDT, pointers as offsets) and
 * `etc/acpi/rsdp`, placed by the commands of `etc/table-loader`. SeaBIOS loads them from
 * fw_cfg (`installAcpiFiles`); for a direct boot the VMM runs the same commands itself
 * (`placeAcpi`) so both boot paths give the guest the same tables.
 *
 * @module
 */

import type { GuestMemory } from "../../../core/guest_memory.ts";
import type { FwCfg } from "../fw_cfg.ts";
import { dsdt, type DsdtOptions } from "./dsdt.ts";
import {
  ACPI_CHECKSUM_OFFSET,
  ACPI_HEADER_SIZE,
  facs,
  fadt,
  FADT_DSDT_OFFSET,
  FADT_FIRMWARE_CTRL_OFFSET,
  FADT_X_DSDT_OFFSET,
  madt,
  type PmLayout,
  rsdp,
  RSDP_CHECKSUM_OFFSET,
  RSDP_EXT_CHECKSUM_OFFSET,
  RSDP_RSDT_OFFSET,
  RSDP_XSDT_OFFSET,
  rsdt,
  xsdt,
} from "./tables.ts";
import {
  runTableLoader,
  TableLoader,
  TableLoaderError,
  ZONE_FSEG,
  ZONE_HIGH,
} from "./table_loader.ts";

/** fw_cfg file names, as SeaBIOS and OVMF look them up. */
export const ACPI_TABLES_FILE = "etc/acpi/tables";
export const ACPI_RSDP_FILE = "etc/acpi/rsdp";
export const TABLE_LOADER_FILE = "etc/table-loader";

/** Everything the tables describe. */
export interface AcpiOptions extends DsdtOptions {
  readonly pm: PmLayout;
  /** IOAPIC pin of ISA IRQ 0; 2 by default. */
  readonly irq0Gsi?: number;
}

/** The blobs and the loader script. */
export interface AcpiBlobs {
  readonly tables: Uint8Array;
  readonly rsdp: Uint8Array;
  readonly loader: Uint8Array;
  /** Offset of each table in `tables`, by signature (FACS, DSDT, FACP, APIC, RSDT, XSDT). */
  readonly offsets: Readonly<Record<string, number>>;
}

/** Builds the tables and the commands that link them. */
export function buildAcpi(options: AcpiOptions): AcpiBlobs {
  const parts: [string, Uint8Array][] = [
    ["FACS", facs()],
    ["DSDT", dsdt(options)],
    ["FACP", fadt(options.pm)],
    ["APIC", madt({ cpus: options.cpus, sciIrq: options.pm.sciIrq, irq0Gsi: options.irq0Gsi })],
  ];
  const listed = ["FACP", "APIC"]; // the RSDT and XSDT list these; the FADT points at the rest
  parts.push(["RSDT", rsdt(listed.length)], ["XSDT", xsdt(listed.length)]);
  const offsets: Record<string, number> = {};
  let size = 0;
  for (const [signature, table] of parts) {
    size = align(size, signature === "FACS" ? 64 : 8);
    offsets[signature] = size;
    size += table.length;
  }
  const tables = new Uint8Array(size);
  for (const [signature, table] of parts) tables.set(table, offsets[signature]);
  const view = new DataView(tables.buffer);
  const T = ACPI_TABLES_FILE;
  const loader = new TableLoader()
    .allocate(ACPI_RSDP_FILE, 16, ZONE_FSEG)
    .allocate(T, 64, ZONE_HIGH);
  // Pointer fields hold offsets into the tables blob; the loader adds the blob's address.
  const pointer = (table: string, field: number, target: string, width: 4 | 8) => {
    const at = offsets[table] + field;
    if (width === 4) view.setUint32(at, offsets[target], true);
    else view.setBigUint64(at, BigInt(offsets[target]), true);
    loader.addPointer(T, T, at, width);
  };
  pointer("FACP", FADT_FIRMWARE_CTRL_OFFSET, "FACS", 4);
  pointer("FACP", FADT_DSDT_OFFSET, "DSDT", 4);
  pointer("FACP", FADT_X_DSDT_OFFSET, "DSDT", 8);
  listed.forEach((target, i) => {
    pointer("RSDT", ACPI_HEADER_SIZE + 4 * i, target, 4);
    pointer("XSDT", ACPI_HEADER_SIZE + 8 * i, target, 8);
  });
  // Checksums after the pointers they cover (the FACS has none).
  for (const [signature, table] of parts) {
    if (signature === "FACS") continue;
    loader.addChecksum(
      T,
      offsets[signature] + ACPI_CHECKSUM_OFFSET,
      offsets[signature],
      table.length,
    );
  }
  const rsdpBlob = rsdp();
  const rsdpView = new DataView(rsdpBlob.buffer);
  rsdpView.setUint32(RSDP_RSDT_OFFSET, offsets.RSDT, true);
  rsdpView.setBigUint64(RSDP_XSDT_OFFSET, BigInt(offsets.XSDT), true);
  loader
    .addPointer(ACPI_RSDP_FILE, T, RSDP_RSDT_OFFSET, 4)
    .addPointer(ACPI_RSDP_FILE, T, RSDP_XSDT_OFFSET, 8)
    .addChecksum(ACPI_RSDP_FILE, RSDP_CHECKSUM_OFFSET, 0, 20)
    .addChecksum(ACPI_RSDP_FILE, RSDP_EXT_CHECKSUM_OFFSET, 0, rsdpBlob.length);
  return { tables, rsdp: rsdpBlob, loader: loader.bytes(), offsets };
}

/** Adds the three files SeaBIOS reads to `fwCfg`. */
export function installAcpiFiles(fwCfg: FwCfg, blobs: AcpiBlobs): void {
  fwCfg.addFile(ACPI_TABLES_FILE, blobs.tables);
  fwCfg.addFile(ACPI_RSDP_FILE, blobs.rsdp);
  fwCfg.addFile(TABLE_LOADER_FILE, blobs.loader);
}

/** Where a direct boot puts the tables. */
export interface AcpiPlacement {
  /** Start of a free RAM range for the tables blob (64-byte aligned). */
  readonly tablesAddress: number;
  /** Where the RSDP goes: 16-byte aligned, in 0xE0000-0xFFFFF where OSes scan for it. */
  readonly rsdpAddress: number;
}

/**
 * Links and writes the tables into guest memory for a boot without firmware, running the
 * loader commands as SeaBIOS would. Returns the RSDP's address.
 */
export function placeAcpi(memory: GuestMemory, blobs: AcpiBlobs, at: AcpiPlacement): number {
  const files = new Map([[ACPI_TABLES_FILE, blobs.tables], [ACPI_RSDP_FILE, blobs.rsdp]]);
  const placed = runTableLoader(blobs.loader, files, (file, _size, alignment, zone) => {
    const address = zone === ZONE_FSEG ? at.rsdpAddress : at.tablesAddress;
    if (address % alignment !== 0) {
      throw new TableLoaderError(
        `${file} at 0x${address.toString(16)} is not ${alignment}-aligned`,
      );
    }
    return address;
  });
  for (const { address, data } of placed.values()) {
    if (!memory.contains(address, data.length)) {
      throw new TableLoaderError(
        `${data.length} bytes of ACPI tables at 0x${address.toString(16)} do not fit guest RAM`,
      );
    }
    memory.write(address, data);
  }
  return placed.get(ACPI_RSDP_FILE)!.address;
}

function align(value: number, to: number): number {
  return Math.ceil(value / to) * to;
}
