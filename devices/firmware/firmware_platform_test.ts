import assert from "node:assert/strict";
import { Bus } from "../../core/bus.ts";
import { GuestMemory } from "../../core/guest_memory.ts";
import { PCI_CONFIG_ADDRESS_PORT, PCI_CONFIG_PORT_COUNT } from "../../core/layout.ts";
import { PciConfigMechanism } from "../pci/config_mechanism.ts";
import { PciBus } from "../pci/pci_bus.ts";
import { conf1Slot, FakeMsiController } from "../pci/testing/fakes.ts";
import { MemoryDisk } from "../storage/ahci/_test_support.ts";
import { parseTableLoader } from "./acpi/table_loader.ts";
import { ACPI_PM_BASE, FirmwarePlatform } from "./firmware_platform.ts";

function machine(cdroms: number, disks = 0) {
  const memory = GuestMemory.ofSize(16 << 20);
  const pio = new Bus();
  const lines: [number, boolean][] = [];
  const events: string[] = [];
  const platform = new FirmwarePlatform({
    memory,
    cpus: 2,
    ram: [{ start: 0, size: 16 << 20 }],
    setIrqLine: (gsi, high) => lines.push([gsi, high]),
    onReset: () => events.push("reset"),
    onPowerOff: () => events.push("poweroff"),
    cdroms: Array.from({ length: cdroms }, () => new MemoryDisk(new Uint8Array(8 * 2048), true)),
    disks: Array.from({ length: disks }, () => new MemoryDisk(new Uint8Array(1 << 20))),
    log: () => {},
  });
  const pci = new PciBus({
    mmio: new Bus(),
    pio,
    msi: new FakeMsiController(),
    setIrqLevel() {},
    hostBridge: platform.hostBridge,
  });
  const mechanism = new PciConfigMechanism(pci);
  pio.insert(
    PCI_CONFIG_ADDRESS_PORT,
    PCI_CONFIG_PORT_COUNT,
    "pci",
    platform.configPorts(mechanism),
  );
  return { memory, pio, pci, platform, lines, events };
}

function pioRead(pio: Bus, port: number, size: number): number {
  const data = new Uint8Array(size);
  pio.read(port, data);
  return data.reduceRight((v, b) => v * 256 + b, 0);
}

function pioWrite(pio: Bus, port: number, size: number, value: number): void {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = Math.floor(value / 256 ** i) & 0xff;
  pio.write(port, data);
}

Deno.test("the firmware platform answers where SeaBIOS looks: 0x510, 0xcf8, 0xcf9 and 0x600", () => {
  const { pio, pci, platform, lines, events } = machine(1);
  platform.install({ pio, pci, diskSlots: [3], order: ["cdrom", "disk"] });
  pioWrite(pio, 0x510, 2, 0);
  assert.equal(String.fromCharCode(...[0, 1, 2, 3].map(() => pioRead(pio, 0x511, 1))), "QEMU");
  const ports = {
    read: (o: number, d: Uint8Array) => pio.read(0xcf8 + o, d),
    write: (o: number, d: Uint8Array) => pio.write(0xcf8 + o, d),
  };
  assert.equal(conf1Slot(ports, 0).read32(0), 0x1237_8086);
  assert.equal(
    conf1Slot(ports, 1).read32(0),
    0x7000_8086,
    "the ISA bridge takes the first free slot",
  );
  assert.equal(conf1Slot(ports, 2).read32(8) >>> 8, 0x010601, "AHCI after it");
  assert.equal(
    new TextDecoder().decode(platform.fwCfg.file("bootorder")),
    "/pci@i0cf8/*@2/drive@0/disk@0\n/pci@i0cf8/*@3\nHALT\n",
  );
  assert.ok(parseTableLoader(platform.fwCfg.file("etc/table-loader")!).length > 10);
  assert.deepEqual([...platform.fwCfg.file("etc/sercon-port")!], [0xf8, 0x03]);
  pioWrite(pio, 0xcf9, 1, 0x06);
  assert.deepEqual(events, ["reset"]);
  assert.equal(platform.pressPowerButton(), false, "no ACPI OS yet");
  pioWrite(pio, ACPI_PM_BASE + 2, 2, 0x0100); // PWRBTN_EN
  assert.deepEqual(lines, [], "nothing was latched by the unheard press");
  assert.equal(platform.pressPowerButton(), true);
  assert.deepEqual(lines, [[9, true]], "the press raises the SCI");
  pioWrite(pio, ACPI_PM_BASE + 4, 2, 0x2001); // SLP_TYP 0 (S5) | SLP_EN
  assert.deepEqual(events, ["reset", "poweroff"]);
});

Deno.test("without CD-ROMs there is no AHCI controller and disks boot first", () => {
  const { pio, pci, platform } = machine(0);
  platform.install({ pio, pci, diskSlots: [2, 3] });
  assert.equal(platform.ahci, undefined);
  assert.equal(
    new TextDecoder().decode(platform.fwCfg.file("bootorder")),
    "/pci@i0cf8/*@2\n/pci@i0cf8/*@3\nHALT\n",
  );
});

Deno.test("SATA disks take the first AHCI ports and boot with the disks", () => {
  const { pio, pci, platform } = machine(1, 2);
  platform.install({ pio, pci, diskSlots: [5], order: ["disk", "cdrom"] });
  assert.equal(platform.ahci?.ports.length, 3);
  assert.equal(
    new TextDecoder().decode(platform.fwCfg.file("bootorder")),
    "/pci@i0cf8/*@5\n/pci@i0cf8/*@2/drive@0/disk@0\n/pci@i0cf8/*@2/drive@1/disk@0\n" +
      "/pci@i0cf8/*@2/drive@2/disk@0\nHALT\n",
  );
});

Deno.test("the platform saves and restores its devices as one state, or refuses it whole", () => {
  const first = machine(1);
  first.platform.install({ pio: first.pio, pci: first.pci, diskSlots: [] });
  pioWrite(first.pio, 0x510, 2, 0x19); // select the file directory
  pioRead(first.pio, 0x511, 1);
  pioWrite(first.pio, ACPI_PM_BASE + 2, 2, 0x0100);
  first.platform.hostBridge.writeConfig(0x58, 0x0000_1000, 0x0000_ff00); // PAM0 (0x59) read-only
  const state = JSON.parse(JSON.stringify(first.platform.save()));
  const second = machine(1);
  second.platform.install({ pio: second.pio, pci: second.pci, diskSlots: [] });
  second.platform.restore(state);
  assert.equal(second.platform.pm.powerButtonEnabled, true);
  assert.equal(second.platform.hostBridge.pam[0], 0x10);
  assert.equal(pioRead(second.pio, 0x511, 1), 0, "the directory cursor moved on by one byte");
  const bad = structuredClone(state);
  bad.fwCfg.offset = -1;
  const third = machine(1);
  third.platform.install({ pio: third.pio, pci: third.pci, diskSlots: [] });
  assert.throws(() => third.platform.restore(bad), /offset/);
  assert.equal(third.platform.pm.powerButtonEnabled, false, "the PM block was put back");
  assert.equal(third.platform.hostBridge.pam[0], 0x30);
  const noAhci = machine(0);
  noAhci.platform.install({ pio: noAhci.pio, pci: noAhci.pci, diskSlots: [] });
  assert.throws(() => noAhci.platform.restore(state), /no AHCI controller/);
});
