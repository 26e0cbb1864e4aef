import assert from "node:assert/strict";
import { Bus } from "../../core/bus.ts";
import { type PciConfigAccess, PciConfigMechanism } from "./config_mechanism.ts";
import { PciBus } from "./pci_bus.ts";
import { conf1Slot, FakeMsiController } from "./testing/fakes.ts";

type Access = {
  op: string;
  bus: number;
  device: number;
  fn: number;
  register: number;
  bytes: number[];
};

/** Records config accesses and answers reads with 0x10 + register per byte. */
function recordingAccess(): PciConfigAccess & { log: Access[] } {
  const log: Access[] = [];
  return {
    log,
    readConfig(bus, device, fn, register, data) {
      for (let i = 0; i < data.length; i++) data[i] = 0x10 + register + i;
      log.push({ op: "read", bus, device, fn, register, bytes: [...data] });
    },
    writeConfig(bus, device, fn, register, data) {
      log.push({ op: "write", bus, device, fn, register, bytes: [...data] });
    },
  };
}

function u32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, true);
  return bytes;
}

function readU32(device: PciConfigMechanism, offset: number): number {
  const data = new Uint8Array(4);
  device.read(offset, data);
  return new DataView(data.buffer).getUint32(0, true);
}

Deno.test("PciConfigMechanism passes Linux's type-1 probe: a dword address reads back, byte writes do not land", () => {
  const ports = new PciConfigMechanism(recordingAccess());
  ports.write(0, u32(0x8000_1234));
  ports.write(3, Uint8Array.of(0x01)); // outb(0x01, 0xcfb)
  assert.equal(readU32(ports, 0), 0x8000_1234);
  ports.write(0, u32(0x8000_0000));
  assert.equal(readU32(ports, 0), 0x8000_0000);
  const byte = new Uint8Array(1);
  ports.read(0, byte);
  assert.equal(byte[0], 0xff, "a byte read of 0xcf8 is not the address register");
});

Deno.test("PciConfigMechanism decodes bus, device, function, register and the data byte lane", () => {
  const access = recordingAccess();
  const ports = new PciConfigMechanism(access);
  // Bus 1, device 3, function 2, register 0x44; the low two bits of the address are ignored.
  ports.write(0, u32(0x8000_0000 | (1 << 16) | (3 << 11) | (2 << 8) | 0x47));
  const byte = new Uint8Array(1);
  ports.read(6, byte); // inb(0xcfe)
  const word = new Uint8Array(2);
  ports.read(6, word); // inw(0xcfe)
  assert.equal(readU32(ports, 4), 0x57565554); // inl(0xcfc)
  ports.write(5, Uint8Array.of(0xaa)); // outb(0xcfd)
  assert.deepEqual(access.log, [
    { op: "read", bus: 1, device: 3, fn: 2, register: 0x46, bytes: [0x56] },
    { op: "read", bus: 1, device: 3, fn: 2, register: 0x46, bytes: [0x56, 0x57] },
    { op: "read", bus: 1, device: 3, fn: 2, register: 0x44, bytes: [0x54, 0x55, 0x56, 0x57] },
    { op: "write", bus: 1, device: 3, fn: 2, register: 0x45, bytes: [0xaa] },
  ]);
});

Deno.test("PciConfigMechanism reads all ones and drops writes while the enable bit is clear", () => {
  const access = recordingAccess();
  const ports = new PciConfigMechanism(access);
  ports.write(0, u32(0x0000_0800)); // device 1, not enabled
  assert.equal(readU32(ports, 4), 0xffff_ffff);
  ports.write(4, u32(0x1234));
  assert.deepEqual(access.log, []);
});

Deno.test("PciConfigMechanism answers extended registers and accesses past 0xcff with all ones", () => {
  const access = recordingAccess();
  const ports = new PciConfigMechanism(access);
  ports.write(0, u32(0x8100_0000)); // AMD extended register bits: register 0x100
  assert.equal(readU32(ports, 4), 0xffff_ffff);
  ports.write(0, u32(0x8000_0000));
  const word = new Uint8Array(2);
  ports.read(7, word);
  assert.deepEqual([...word], [0xff, 0xff]);
  assert.deepEqual(access.log, []);
});

Deno.test("PciConfigMechanism on a PciBus shows the host bridge and all ones for absent functions", () => {
  const bus = new PciBus({ mmio: new Bus(), msi: new FakeMsiController(), setIrqLevel() {} });
  const ports = new PciConfigMechanism(bus);
  const bridge = conf1Slot(ports, 0);
  assert.equal(bridge.read32(0x00), 0x0008_1b36);
  assert.equal(bridge.read16(0x0a), 0x0600, "class: host bridge (Linux's sanity check)");
  assert.equal(conf1Slot(ports, 1).read32(0x00), 0xffff_ffff, "empty slot");
  assert.equal(conf1Slot(ports, 31).read16(0x02), 0xffff, "empty slot, word read");
  ports.write(0, u32(0x8000_0100)); // 00:00.1
  assert.equal(readU32(ports, 4), 0xffff_ffff, "function 1 does not exist");
  ports.write(0, u32(0x8001_0000)); // 01:00.0
  assert.equal(readU32(ports, 4), 0xffff_ffff, "bus 1 does not exist");
});
