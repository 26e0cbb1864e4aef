/**
 * Offsets and bits of the PCI type-0 configuration header (PCI Local Bus 3.0, section 6.2)
 * and of the capabilities this layer builds, named as Linux's `pci_regs.h` names them so a
 * reader can compare with the guest side.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";

/** Bytes of configuration space per function (conventional PCI, no extended space). */
export const PCI_CONFIG_SPACE_SIZE = 256;
/** Devices (slots) on one bus. */
export const PCI_SLOT_COUNT = 32;

export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_REVISION_ID = 0x08;
export const PCI_CLASS_PROG = 0x09;
export const PCI_CACHE_LINE_SIZE = 0x0c;
export const PCI_LATENCY_TIMER = 0x0d;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_ROM_ADDRESS = 0x30;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;
/** First byte after the standard header: capabilities are placed from here. */
export const PCI_CAPABILITIES_START = 0x40;

/** Command register bits. */
export const PCI_COMMAND_IO = 0x0001;
export const PCI_COMMAND_MEMORY = 0x0002;
export const PCI_COMMAND_MASTER = 0x0004;
export const PCI_COMMAND_PARITY = 0x0040;
export const PCI_COMMAND_SERR = 0x0100;
export const PCI_COMMAND_INTX_DISABLE = 0x0400;
/** The command bits this layer stores; the others read as 0 (not implemented). */
export const PCI_COMMAND_WRITABLE = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
  PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE;

/** Status register bits. */
export const PCI_STATUS_INTERRUPT = 0x0008;
export const PCI_STATUS_CAP_LIST = 0x0010;

/** BAR low bits. */
export const PCI_BASE_ADDRESS_SPACE_IO = 0x1;
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x4;
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x8;
/** Number of BAR registers in a type-0 header. */
export const PCI_BAR_COUNT = 6;

/** Capability IDs. */
export const PCI_CAP_ID_MSIX = 0x11;

/** MSI-X capability registers (offsets from the capability) and bits. */
export const PCI_MSIX_FLAGS = 2;
export const PCI_MSIX_TABLE = 4;
export const PCI_MSIX_PBA = 8;
export const PCI_MSIX_CAP_SIZE = 12;
export const PCI_MSIX_FLAGS_QSIZE = 0x07ff;
export const PCI_MSIX_FLAGS_MASKALL = 0x4000;
export const PCI_MSIX_FLAGS_ENABLE = 0x8000;
/** MSI-X table entry layout and the vector control mask bit. */
export const PCI_MSIX_ENTRY_SIZE = 16;
export const PCI_MSIX_ENTRY_LOWER_ADDR = 0;
export const PCI_MSIX_ENTRY_UPPER_ADDR = 4;
export const PCI_MSIX_ENTRY_DATA = 8;
export const PCI_MSIX_ENTRY_VECTOR_CTRL = 12;
export const PCI_MSIX_ENTRY_CTRL_MASKBIT = 0x1;
/** Most vectors an MSI-X capability can announce (an 11-bit table size field). */
export const PCI_MSIX_MAX_VECTORS = 2048;

/** A PCI function description the bus cannot honour (a configuration error, not a guest one). */
export class PciConfigError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** `0x…` for log and error messages. */
export function hex(value: number): string {
  return `0x${value.toString(16)}`;
}
