/**
 * The PC platform a firmware boot adds to a machine, put together for the VMM builder:
 * the i440FX host bridge (given to the PCI bus as its slot 0), the reset register at
 * 0xcf9 (sharing the PCI configuration ports), the PIIX3 ISA bridge, an AHCI controller
 * for the CD-ROMs, the ACPI PM block at 0x600 and fw_cfg at 0x510 with the files SeaBIOS
 * reads (e820, boot order, sercon, SMBIOS, and the ACPI tables through the linker).
 *
 * Two steps, because the PCI bus is built in between: construct (host bridge ready),
 * then `install` once the other PCI devices have their slots.
 *
 * @module
 */

import type { BiosAreaControl } from "../../core/bios_area.ts";
import type { Bus } from "../../core/bus.ts";
import type { BusDevice } from "../../core/bus_device.ts";
import type { GuestMemory } from "../../core/guest_memory.ts";
import { COM1_PORT, HIGH_RAM_START } from "../../core/layout.ts";
import type { Disk } from "../../storage/disk.ts";
import {
  type Persistable,
  StateError,
  StateReader,
  type VersionedState,
} from "../../common/persist.ts";
import { AcpiPm, PM_BLOCK_SIZE } from "../chipset/acpi_pm.ts";
import { I440fxHostBridge } from "../chipset/i440fx.ts";
import { Piix3IsaBridge } from "../chipset/piix3.ts";
import {
  RESET_CONTROL_PORT,
  RESET_VALUE,
  ResetControl,
  withResetControl,
} from "../chipset/reset_control.ts";
import type { PciBus } from "../pci/pci_bus.ts";
import { pciIntxGsi } from "../pci/pci_bus.ts";
import { AhciController } from "../storage/ahci/ahci_controller.ts";
import { AtaDisk } from "../storage/ahci/ata_disk.ts";
import { AtapiCdrom } from "../storage/ahci/atapi_cdrom.ts";
import { buildAcpi, installAcpiFiles } from "./acpi/acpi_tables.ts";
import { FW_CFG_PORT_BASE, FW_CFG_PORT_COUNT, FwCfg } from "./fw_cfg.ts";
import {
  type BootDevice,
  E820_RAM,
  type E820Entry,
  installPlatformFiles,
} from "./platform_files.ts";

/** I/O base of the ACPI PM block: where SeaBIOS puts it when ACPI comes from fw_cfg. */
export const ACPI_PM_BASE = 0x600;
/** The SCI: ISA IRQ 9, as on a PIIX4. */
export const ACPI_SCI_IRQ = 9;
/** SeaBIOS's own 32-bit PCI window ends below the IOAPIC. */
const SEABIOS_PCI_WINDOW_END = 0xfec0_0000;

/** A boot device class in the order the user gave. */
export type BootKind = "disk" | "cdrom";

/** What the platform needs from the machine. */
export interface FirmwarePlatformOptions {
  readonly memory: GuestMemory;
  readonly cpus: number;
  /** Guest RAM ranges, for the e820 map. */
  readonly ram: readonly { readonly start: number; readonly size: number }[];
  /** Drives a GSI of the in-kernel irqchip (the SCI is level-triggered). */
  readonly setIrqLine: (gsi: number, high: boolean) => void;
  readonly onReset: () => void;
  readonly onPowerOff: () => void;
  /** The CD-ROM images (opened read-only), on the AHCI ports after the disks. */
  readonly cdroms: readonly Disk[];
  /** SATA disks (opened images), on the first AHCI ports in order. */
  readonly disks?: readonly Disk[];
  readonly log?: (message: string) => void;
  /**
   * What the host bridge's PAM registers change (core/bios_shadow.ts on a VM). Without it
   * the area stays plain RAM, read-write whatever PAM says, and the first other setting
   * is logged once.
   */
  readonly biosArea?: BiosAreaControl;
}

/** What `install` needs: the buses, and where the virtio disks ended up. */
export interface FirmwareInstallOptions {
  readonly pio: Bus;
  readonly pci: PciBus;
  /** PCI slots of the virtio-blk disks, first disk first. */
  readonly diskSlots: readonly number[];
  /** Boot device classes, first tried first (default: disk, then cdrom). */
  readonly order?: readonly BootKind[];
}

/** Saved state of the platform's devices (their PCI config spaces are the PCI bus's). */
export interface FirmwarePlatformState extends VersionedState {
  readonly version: 1;
  readonly hostBridge: VersionedState;
  readonly isaBridge: VersionedState;
  readonly pm: VersionedState;
  readonly reset: VersionedState;
  readonly fwCfg: VersionedState;
  readonly ahci?: VersionedState;
}

/** The firmware platform of one machine. */
export class FirmwarePlatform implements Persistable<FirmwarePlatformState> {
  /** The PCI bus's slot 0. */
  readonly hostBridge: I440fxHostBridge;
  readonly fwCfg: FwCfg;
  readonly pm: AcpiPm;
  readonly reset: ResetControl;
  readonly isaBridge: Piix3IsaBridge = new Piix3IsaBridge();
  readonly ahci: AhciController | undefined;
  readonly #options: FirmwarePlatformOptions;
  #isaSlot: number | undefined;
  #ahciSlot: number | undefined;

  constructor(options: FirmwarePlatformOptions) {
    this.#options = options;
    const log = options.log ?? ((message: string) => console.warn(message));
    // The VMM copied the BIOS into RAM at 0xE0000, so PAM starts as "RAM".
    let noted = false;
    const biosArea: BiosAreaControl = options.biosArea ?? {
      setAccess: (start, size, access) => {
        if (access === "read-write" || noted) return;
        noted = true;
        log(
          `i440fx: PAM ${access} for 0x${start.toString(16)}+0x${
            size.toString(16)
          } is not enforced`,
        );
      },
    };
    this.hostBridge = new I440fxHostBridge(biosArea, { preloaded: true });
    this.fwCfg = new FwCfg(options.memory, log);
    this.pm = new AcpiPm({
      sci: { setLevel: (high) => options.setIrqLine(ACPI_SCI_IRQ, high) },
      onPowerOff: options.onPowerOff,
    });
    this.reset = new ResetControl(options.onReset);
    const disks = options.disks ?? [];
    const drives = [
      ...disks.map((disk, i) =>
        new AtaDisk(disk, { serial: `DNVHD${i}`, model: "Denovisor SATA disk" }, log)
      ),
      ...options.cdroms.map((media, i) =>
        new AtapiCdrom(media, { serial: `DNVCD${i}`, model: "Denovisor DVD-ROM" }, log)
      ),
    ];
    this.ahci = drives.length === 0 ? undefined : new AhciController(options.memory, drives, log);
  }

  /** The PCI configuration ports with the reset register at 0xcf9 among them. */
  configPorts(mechanism: BusDevice): BusDevice {
    return withResetControl(mechanism, this.reset);
  }

  /** Puts the ISA bridge, the AHCI controller, fw_cfg and the PM block on the machine. */
  install(options: FirmwareInstallOptions): void {
    const isaSlot = options.pci.add(this.isaBridge);
    this.#isaSlot = isaSlot;
    if (this.ahci) this.#ahciSlot = options.pci.add(this.ahci);
    const cpus = this.#options.cpus;
    const lowRamEnd = Math.max(
      0,
      ...this.#options.ram.filter((r) => r.start < HIGH_RAM_START).map((r) => r.start + r.size),
    );
    const e820: E820Entry[] = this.#options.ram.map((r) => ({
      address: r.start,
      length: r.size,
      type: E820_RAM,
    }));
    installPlatformFiles(this.fwCfg, {
      cpus,
      e820,
      bootOrder: this.#bootDevices(options),
      serconPort: COM1_PORT,
    });
    // SeaBIOS puts PCI BARs from 2 or 3 GiB (by RAM size) up to the IOAPIC: the root
    // bridge's window in the DSDT must cover that.
    const windowStart = lowRamEnd <= 0x8000_0000 ? 0x8000_0000 : 0xc000_0000;
    installAcpiFiles(
      this.fwCfg,
      buildAcpi({
        cpus,
        pciMmio: { start: windowStart, size: SEABIOS_PCI_WINDOW_END - windowStart },
        intxGsi: pciIntxGsi,
        isaBridgeSlot: isaSlot,
        pm: {
          base: ACPI_PM_BASE,
          sciIrq: ACPI_SCI_IRQ,
          resetPort: RESET_CONTROL_PORT,
          resetValue: RESET_VALUE,
        },
      }),
    );
    options.pio.insert(FW_CFG_PORT_BASE, FW_CFG_PORT_COUNT, "fw_cfg", this.fwCfg);
    options.pio.insert(ACPI_PM_BASE, PM_BLOCK_SIZE, "acpi-pm", this.pm);
  }

  /**
   * The PCI slots `install` gave the ISA bridge and the AHCI controller (absent before,
   * or without CD-ROMs and SATA disks): their configuration spaces are the PCI bus's, so
   * a machine's state saves them beside `save()`.
   */
  get pciSlots(): { isaBridge?: number; ahci?: number } {
    return { isaBridge: this.#isaSlot, ahci: this.#ahciSlot };
  }

  /**
   * Presses the ACPI power button if the guest listens for it (an ACPI OS enabled the
   * event); returns false, pressing nothing, otherwise: a press latched now would shut
   * down an OS that enables the event later.
   */
  pressPowerButton(): boolean {
    if (!this.pm.powerButtonEnabled) return false;
    this.pm.pressPowerButton();
    return true;
  }

  save(): FirmwarePlatformState {
    return {
      version: 1,
      hostBridge: this.hostBridge.save(),
      isaBridge: this.isaBridge.save(),
      pm: this.pm.save(),
      reset: this.reset.save(),
      fwCfg: this.fwCfg.save(),
      ...(this.ahci ? { ahci: this.ahci.save() } : {}),
    };
  }

  /**
   * Restores every device, or none: each checks its own state before it changes, and a
   * later refusal puts the earlier ones back as they were.
   */
  restore(state: unknown): void {
    const reader = new StateReader(state);
    reader.version([1]);
    if (reader.has("ahci") !== (this.ahci !== undefined)) {
      throw new StateError(
        reader.fieldPath("ahci"),
        this.ahci
          ? "missing; this machine has an AHCI controller"
          : "this machine has no AHCI controller",
      );
    }
    const pieces: [string, Persistable][] = [
      ["hostBridge", this.hostBridge],
      ["isaBridge", this.isaBridge],
      ["pm", this.pm],
      ["reset", this.reset],
      ["fwCfg", this.fwCfg],
      ...(this.ahci ? [["ahci", this.ahci] as [string, Persistable]] : []),
    ];
    const before = pieces.map(([, piece]) => piece.save());
    const done: number[] = [];
    try {
      pieces.forEach(([name, piece], index) => {
        piece.restore(reader.raw(name));
        done.push(index);
      });
    } catch (error) {
      for (const index of done) pieces[index][1].restore(before[index]);
      throw error;
    }
  }

  /** Closes the SATA disk and CD-ROM images. */
  close(): void {
    this.#options.disks?.forEach((disk) => disk.close());
    for (const port of this.ahci?.ports ?? []) {
      const device = port.device;
      if (device instanceof AtapiCdrom) device.media?.close();
    }
  }

  #bootDevices(options: FirmwareInstallOptions): BootDevice[] {
    const devices: BootDevice[] = [];
    for (const kind of options.order ?? ["disk", "cdrom"]) {
      const slot = this.#ahciSlot;
      const sataDisks = this.#options.disks?.length ?? 0;
      if (kind === "disk") {
        devices.push(...options.diskSlots.map((slot): BootDevice => ({ kind: "pci", slot })));
        for (let port = 0; slot !== undefined && port < sataDisks; port++) {
          devices.push({ kind: "ahci", slot, port });
        }
      } else if (slot !== undefined) {
        this.#options.cdroms.forEach((_, i) =>
          devices.push({ kind: "ahci", slot, port: sataDisks + i })
        );
      }
    }
    return devices;
  }
}
