/**
 * The x86-64 guest physical memory map and fixed I/O ports used by Denovisor. Only
 * constants live here, so that loaders, devices and tests agree on one map.
 *
 * @module
 */

/** End of the real-mode area that Linux treats as usable low memory (start of the EBDA). */
export const EBDA_START = 0x9fc00;
/** Start of the legacy VGA/BIOS hole, reserved in the e820 map up to HIMEM_START. */
export const LEGACY_HOLE_START = 0xa0000;
/** Start of "high" memory, where kernels are loaded. */
export const HIMEM_START = 0x100000;

/** Boot GDT (flat code/data segments for protected and long mode). */
export const BOOT_GDT_START = 0x500;
/** Boot IDT (empty: interrupts are off until the kernel sets up its own). */
export const BOOT_IDT_START = 0x520;
/** PVH `hvm_start_info` structure, followed by its memory map and module list. */
export const PVH_INFO_START = 0x6000;
/** Linux `boot_params` ("zero page"). */
export const ZERO_PAGE_START = 0x7000;
/** Identity page tables for 64-bit entry: PML4, PDPT, then PDs mapping the first 4 GiB. */
export const PML4_START = 0x9000;
export const PDPT_START = 0xa000;
export const PD_START = 0xb000;
/** Boot stack top for guests that start in 32-bit or 64-bit mode. */
export const BOOT_STACK_POINTER = 0x8ff0;
/** Kernel command line. */
export const CMDLINE_START = 0x20000;
/** Longest command line Denovisor passes (Linux x86 accepts up to 2048 by default). */
export const CMDLINE_MAX_SIZE = 0x10000;
/**
 * MP floating pointer and configuration table, in the BIOS area (0xF0000-0xFFFFF) where
 * Linux and other kernels scan for it; its 64 KiB leave room for the most CPUs xAPIC IDs
 * can name.
 */
export const MPTABLE_START = 0xf0000;
export const MPTABLE_END = HIMEM_START;

/** The 32-bit MMIO hole: guest RAM below 4 GiB stops here; devices live above it. */
export const MMIO_HOLE_START = 0xc000_0000;
export const MMIO_HOLE_END = 0x1_0000_0000;
/** Where RAM continues above the hole. */
export const HIGH_RAM_START = MMIO_HOLE_END;
/** Window for PCI memory BARs (32-bit), at the start of the MMIO hole. */
export const PCI_MMIO_WINDOW_START = 0xc000_0000;
export const PCI_MMIO_WINDOW_SIZE = 0x1000_0000;
/** PCI configuration mechanism #1 ports (address at 0xcf8, data at 0xcfc-0xcff). */
export const PCI_CONFIG_ADDRESS_PORT = 0xcf8;
export const PCI_CONFIG_PORT_COUNT = 8;
/** virtio-mmio devices: one 4 KiB window each from here, announced on the command line. */
export const VIRTIO_MMIO_START = 0xd000_0000;
export const VIRTIO_MMIO_WINDOW = 0x1000;
/**
 * Interrupt lines for virtio-mmio devices, in order: the ISA lines nothing else uses (not
 * the PIT, keyboard, cascade, COM1, RTC or mouse). ISA lines are edge-triggered and the
 * MP table already describes them, so Linux maps them without ACPI.
 */
export const VIRTIO_MMIO_IRQS = [5, 6, 7, 9, 10, 11, 14, 15] as const;
/** IOAPIC pins 20-23 carry PCI INTA#-INTD# (swizzled by slot), as the MP table says. */
export const PCI_INTX_FIRST_GSI = 20;
/** First GSI handed out for MSI routes (after the 24 IOAPIC pins). */
export const MSI_FIRST_GSI = 24;

/** KVM's TSS and identity-map pages (needed by Intel VMX), just below the IOAPIC/LAPIC. */
export const KVM_TSS_ADDRESS = 0xfffb_d000;
export const KVM_IDENTITY_MAP_ADDRESS = 0xfffb_c000;
/** Interrupt controllers, as the MP table announces them. */
export const IOAPIC_ADDRESS = 0xfec0_0000;
export const LAPIC_ADDRESS = 0xfee0_0000;

/** Fixed I/O ports. */
export const COM1_PORT = 0x3f8;
export const COM1_IRQ = 4;
export const I8042_DATA_PORT = 0x60;
export const I8042_COMMAND_PORT = 0x64;
export const I8042_KEYBOARD_IRQ = 1;
export const I8042_AUX_IRQ = 12;
export const RTC_PORT = 0x70;
export const RTC_IRQ = 8;
export const POST_CODE_PORT = 0x80;
/**
 * Debug-exit port, QEMU's `isa-debug-exit` address: a guest writes a status byte here and
 * the VM ends with that status (QEMU reports `(status << 1) | 1` instead).
 */
export const DEBUG_EXIT_PORT = 0xf4;
