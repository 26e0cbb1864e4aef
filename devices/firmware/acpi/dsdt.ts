/**
 * The DSDT: the PCI root bridge with its resources and its `_PRT` (each slot's INTA-D
 * to the IOAPIC pins the PCI bus drives), the legacy ISA devices (RTC, i8042, COM1),
 * one processor device per vCPU, and `_S5` so the guest can power off through the PM1
 * control register.
 *
 * @module
 */

import {
  COM1_IRQ,
  COM1_PORT,
  I8042_COMMAND_PORT,
  I8042_DATA_PORT,
  I8042_KEYBOARD_IRQ,
  PCI_CONFIG_ADDRESS_PORT,
  PCI_CONFIG_PORT_COUNT,
  RTC_PORT,
} from "../../../core/layout.ts";
import {
  type Aml,
  cat,
  device,
  dwordMemory,
  eisaId,
  int,
  ioPort,
  irqNoFlags,
  name,
  pkg,
  resourceTemplate,
  scope,
  str,
  wordBusNumber,
  wordIo,
} from "./aml.ts";
import { ACPI_HEADER_SIZE, tableWithHeader } from "./tables.ts";

/** Value of SLP_TYP the `_S5` object announces and the PM device treats as power-off. */
export const S5_SLEEP_TYPE = 0;

/** What the DSDT describes. */
export interface DsdtOptions {
  readonly cpus: number;
  /** 32-bit PCI MMIO window for BARs (inclusive start, size in bytes). */
  readonly pciMmio: { readonly start: number; readonly size: number };
  /** The IOAPIC pin that INTx `pin` (1 = INTA#) of `slot` reaches. */
  readonly intxGsi: (slot: number, pin: number) => number;
  /** PCI slot of the ISA bridge, when there is one (the legacy devices go under it). */
  readonly isaBridgeSlot?: number;
}

/** The DSDT, checksum not yet set (the linker or `fixChecksum` does it). */
export function dsdt(options: DsdtOptions): Uint8Array {
  const legacy = [
    device("RTC", [
      name("_HID", eisaId("PNP0B00")),
      name("_CRS", resourceTemplate([ioPort(RTC_PORT, 2), irqNoFlags(8)])),
    ]),
    device("KBD", [
      name("_HID", eisaId("PNP0303")),
      name(
        "_CRS",
        resourceTemplate([
          ioPort(I8042_DATA_PORT, 1),
          ioPort(I8042_COMMAND_PORT, 1),
          irqNoFlags(I8042_KEYBOARD_IRQ),
        ]),
      ),
    ]),
    device("COM1", [
      name("_HID", eisaId("PNP0501")),
      name("_UID", int(1)),
      name("_CRS", resourceTemplate([ioPort(COM1_PORT, 8), irqNoFlags(COM1_IRQ)])),
    ]),
  ];
  const isa = options.isaBridgeSlot === undefined
    ? legacy
    : [device("ISA", [name("_ADR", int(options.isaBridgeSlot << 16)), ...legacy])];
  const pci = device("PCI0", [
    name("_HID", eisaId("PNP0A03")),
    name("_ADR", int(0)),
    name("_UID", int(0)),
    name("_CRS", pciResources(options.pciMmio)),
    name("_PRT", pciRouting(options.intxGsi)),
    ...isa,
  ]);
  const cpus: Aml[] = [];
  for (let cpu = 0; cpu < options.cpus; cpu++) {
    const id = cpu.toString(16).toUpperCase().padStart(3, "0");
    cpus.push(device(`C${id}`, [name("_HID", str("ACPI0007")), name("_UID", int(cpu))]));
  }
  const aml = cat(
    scope("\\_SB", [pci, ...cpus]),
    // _S5: SLP_TYPa, SLP_TYPb and two reserved entries.
    name("_S5", pkg([int(S5_SLEEP_TYPE), int(S5_SLEEP_TYPE), int(0), int(0)])),
  );
  // Revision 2: integers are 64-bit.
  const table = tableWithHeader("DSDT", ACPI_HEADER_SIZE + aml.length, 2);
  table.set(aml, ACPI_HEADER_SIZE);
  return table;
}

/** The root bridge's resources: bus 0-255, the config ports, I/O, VGA hole and MMIO window. */
function pciResources(mmio: { start: number; size: number }): Aml {
  return resourceTemplate([
    wordBusNumber(0, 0xff),
    ioPort(PCI_CONFIG_ADDRESS_PORT, PCI_CONFIG_PORT_COUNT),
    wordIo(0, PCI_CONFIG_ADDRESS_PORT - 1),
    wordIo(PCI_CONFIG_ADDRESS_PORT + PCI_CONFIG_PORT_COUNT, 0xffff),
    dwordMemory(0xa0000, 0xbffff),
    dwordMemory(mmio.start, mmio.start + mmio.size - 1),
  ]);
}

/** _PRT: Package { address 0xSSSSFFFF, pin 0-3, source 0 (a GSI), the GSI } per slot pin. */
function pciRouting(intxGsi: (slot: number, pin: number) => number): Aml {
  const entries: Aml[] = [];
  for (let slot = 1; slot < 32; slot++) {
    for (let pin = 0; pin < 4; pin++) {
      entries.push(
        pkg([int(((slot << 16) | 0xffff) >>> 0), int(pin), int(0), int(intxGsi(slot, pin + 1))]),
      );
    }
  }
  return pkg(entries);
}
