/**
 * The host bridge at 00:00.0. Linux's conf1 probe (arch/x86/pci/direct.c) accepts a bus 0
 * that holds a host bridge class device, and the bridge itself needs no driver.
 *
 * The ID is Red Hat's 1b36:0008, QEMU's generic "PCIe host bridge": a virtual-machine ID
 * that Linux has no quirks for (unlike Intel's 440FX 8086:1237, which triggers the
 * Natoma and passive-release quirks meant for real chipsets) and that guests already
 * know from QEMU's virt machines.
 *
 * @module
 */

import type { PciFunction } from "./pci_device.ts";

/** Red Hat, Inc. (QEMU's PCI vendor ID for its own devices). */
export const HOST_BRIDGE_VENDOR_ID = 0x1b36;
/** QEMU's "PCIe host bridge". */
export const HOST_BRIDGE_DEVICE_ID = 0x0008;
/** Bridge device, host bridge. */
export const HOST_BRIDGE_CLASS = 0x060000;

/** A host bridge function: identity only, no BARs, capabilities or interrupt. */
export function hostBridge(): PciFunction {
  return {
    vendorId: HOST_BRIDGE_VENDOR_ID,
    deviceId: HOST_BRIDGE_DEVICE_ID,
    subsystemVendorId: HOST_BRIDGE_VENDOR_ID,
    subsystemId: 0x1100, // QEMU's subsystem ID for its devices
    classCode: HOST_BRIDGE_CLASS,
    revisionId: 0,
    bars: [],
    capabilities: [],
    interruptPin: 0,
    attach() {},
  };
}
