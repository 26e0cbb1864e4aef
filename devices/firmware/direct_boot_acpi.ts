/**
 * ACPI for a machine booted without firmware (bzImage, vmlinux, PVH), as Firecracker and
 * Cloud Hypervisor give their direct-boot guests: the tables a firmware boot gets (RSDP,
 * RSDT/XSDT, FADT, FACS, MADT, a DSDT with the PCI root and its `_PRT`, the ISA devices
 * and `_S5`), linked by the VMM itself into the BIOS area, and the hardware the FADT
 * points at: the PM block at 0x600 (power button, S5 power-off, PM timer, SCI on IRQ 9)
 * and the reset register at 0xcf9. A kernel built without ACPI keeps using the MP table,
 * which stays where it was.
 *
 * The RSDP sits at 0xE0000 (16-byte aligned, where Linux scans when it is not told) and
 * the tables after it, below the MP table at 0xF0000; the e820 map reserves the whole
 * area, so the kernel never takes it for free RAM.
 *
 * @module
 */

import type { Bus } from "../../core/bus.ts";
import type { BusDevice } from "../../core/bus_device.ts";
import type { GuestMemory } from "../../core/guest_memory.ts";
import { MPTABLE_START, PCI_MMIO_WINDOW_SIZE, PCI_MMIO_WINDOW_START } from "../../core/layout.ts";
import { AcpiPm, PM_BLOCK_SIZE } from "../chipset/acpi_pm.ts";
import {
  RESET_CONTROL_PORT,
  RESET_VALUE,
  ResetControl,
  withResetControl,
} from "../chipset/reset_control.ts";
import { pciIntxGsi } from "../pci/pci_bus.ts";
import { type AcpiBlobs, buildAcpi, placeAcpi } from "./acpi/acpi_tables.ts";
import { TableLoaderError } from "./acpi/table_loader.ts";
import { ACPI_PM_BASE, ACPI_SCI_IRQ } from "./firmware_platform.ts";

/** Where the RSDP goes: the start of the BIOS area Linux scans for it. */
export const DIRECT_BOOT_RSDP_ADDRESS = 0xe_0000;
/** Where the tables go: after the RSDP (64-byte aligned for the FACS), below the MP table. */
export const DIRECT_BOOT_TABLES_ADDRESS = 0xe_0040;

/** What the ACPI hardware needs from the machine. */
export interface DirectBootAcpiOptions {
  readonly cpus: number;
  /** Drives a GSI of the in-kernel irqchip (the SCI is level-triggered). */
  readonly setIrqLine: (gsi: number, high: boolean) => void;
  /** The guest wrote the FADT's reset register. */
  readonly onReset: () => void;
  /** The guest entered S5. */
  readonly onPowerOff: () => void;
}

/** The tables, the PM block and the reset register of a direct-boot machine. */
export class DirectBootAcpi {
  readonly pm: AcpiPm;
  readonly reset: ResetControl;
  readonly #cpus: number;
  #blobs: AcpiBlobs | undefined;

  /**
   * The two devices. The tables are built when first asked for (`blobs`, `writeTables`):
   * a restore, whose RAM holds them already, never builds them (2-27 ms of its time here).
   */
  constructor(options: DirectBootAcpiOptions) {
    this.pm = new AcpiPm({
      sci: { setLevel: (high) => options.setIrqLine(ACPI_SCI_IRQ, high) },
      onPowerOff: options.onPowerOff,
    });
    this.reset = new ResetControl(options.onReset);
    this.#cpus = options.cpus;
  }

  /** The tables, built on first use and checked to fit below the MP table. */
  get blobs(): AcpiBlobs {
    if (this.#blobs !== undefined) return this.#blobs;
    const blobs = buildAcpi({
      cpus: this.#cpus,
      pciMmio: { start: PCI_MMIO_WINDOW_START, size: PCI_MMIO_WINDOW_SIZE },
      intxGsi: pciIntxGsi,
      pm: {
        base: ACPI_PM_BASE,
        sciIrq: ACPI_SCI_IRQ,
        resetPort: RESET_CONTROL_PORT,
        resetValue: RESET_VALUE,
      },
    });
    const end = DIRECT_BOOT_TABLES_ADDRESS + blobs.tables.length;
    if (end > MPTABLE_START) {
      throw new TableLoaderError(
        `ACPI tables for ${this.#cpus} vCPUs take ${blobs.tables.length} bytes and ` +
          `do not fit below the MP table at 0x${MPTABLE_START.toString(16)}`,
      );
    }
    return this.#blobs = blobs;
  }

  /** The PCI configuration ports with the reset register at 0xcf9 among them. */
  configPorts(mechanism: BusDevice): BusDevice {
    return withResetControl(mechanism, this.reset);
  }

  /** Puts the PM block on the I/O bus (a boot and a restore alike). */
  attach(pio: Bus): void {
    pio.insert(ACPI_PM_BASE, PM_BLOCK_SIZE, "acpi-pm", this.pm);
  }

  /** Links the tables into guest RAM (a boot; a restore has them in its RAM); returns the RSDP. */
  writeTables(memory: GuestMemory): number {
    return placeAcpi(memory, this.blobs, {
      tablesAddress: DIRECT_BOOT_TABLES_ADDRESS,
      rsdpAddress: DIRECT_BOOT_RSDP_ADDRESS,
    });
  }

  /**
   * Presses the power button if the guest's ACPI enabled its event; false, pressing
   * nothing, otherwise (the caller falls back to Ctrl-Alt-Del).
   */
  pressPowerButton(): boolean {
    if (!this.pm.powerButtonEnabled) return false;
    this.pm.pressPowerButton();
    return true;
  }
}
