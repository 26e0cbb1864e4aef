/**
 * The PCI layer: configuration mechanism #1 on ports 0xcf8-0xcff, bus 0 with its host
 * bridge, type-0 headers, BAR placement and relocation on the MMIO bus, MSI-X and INTx.
 *
 * @example
 * ```ts ignore
 * import { PciBus, PciConfigMechanism } from "./mod.ts";
 *
 * const pci = new PciBus({ mmio, pio, msi, setIrqLevel: (gsi, high) => vm.setIrqLine(gsi, high) });
 * pio.insert(PCI_CONFIG_ADDRESS_PORT, PCI_CONFIG_PORT_COUNT, "pci-conf1", new PciConfigMechanism(pci));
 * const slot = pci.add(virtioPciTransport);
 * writeMpTable(mem, cpus, { pciIntx: pci.intxSources() });
 * ```
 *
 * @module
 */

export { type PciConfigAccess, PciConfigMechanism } from "./config_mechanism.ts";
export { ConfigSpace } from "./config_space.ts";
export { HOST_BRIDGE_DEVICE_ID, HOST_BRIDGE_VENDOR_ID, hostBridge } from "./host_bridge.ts";
export { type MsiMessage, Msix } from "./msix.ts";
export { PciBars } from "./pci_bars.ts";
export { PciBus, type PciBusOptions, pciIntxGsi, type PciIntxSource } from "./pci_bus.ts";
export type * from "./pci_device.ts";
export { PciConfigError } from "./pci_registers.ts";
