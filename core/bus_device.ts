/**
 * The contracts between the machine and the devices on it, owned here so that core
 * depends on no device: a device answers accesses at offsets into its own range and
 * raises interrupts through a trigger it is given. It knows nothing about buses or
 * addresses, like rust-vmm's vm-superio devices.
 *
 * @module
 */

/** A device that answers port-I/O or MMIO accesses within its own range. */
export interface BusDevice {
  /** Fills `data` (1, 2, 4 or 8 bytes) with the value read at `offset`. */
  read(offset: number, data: Uint8Array): void;
  /** Handles a write of `data` (1, 2, 4 or 8 bytes, little-endian) at `offset`. */
  write(offset: number, data: Uint8Array): void;
}

/**
 * An edge-triggered interrupt towards the guest (an ISA IRQ line through the in-kernel
 * PIC/IOAPIC, or an irqfd). Devices call `trigger()` when a new interrupt condition arises.
 */
export interface InterruptTrigger {
  trigger(): void;
}
