import assert from "node:assert/strict";
import { DenovisorError } from "../common/errors.ts";
import { describeVirtioPlan, DevicePlanError, planDevices } from "./device_plan.ts";
import type { VmmDiskConfig, VmmMachineConfig, VmmNicConfig } from "./vmm_config.ts";

const disk = (transport: "pci" | "mmio", id?: string): VmmDiskConfig => ({
  ...(id === undefined ? {} : { id }),
  path: "/images/a.raw",
  format: "raw",
  readOnly: false,
  transport,
});
const nic = (transport: "pci" | "mmio", id?: string): VmmNicConfig => ({
  ...(id === undefined ? {} : { id }),
  tap: "auto",
  mac: "52:54:00:00:00:01",
  transport,
});

function machine(overrides: Partial<VmmMachineConfig> = {}): VmmMachineConfig {
  return {
    vcpus: 1,
    memoryBytes: 256 << 20,
    boot: { kind: "demo" },
    disks: [],
    nics: [],
    balloon: false,
    ...overrides,
  };
}

Deno.test("planDevices() gives the legacy devices fixed ids, ports and IRQs", () => {
  const { legacy, virtio } = planDevices(machine());
  assert.deepEqual(virtio, []);
  assert.deepEqual(legacy, [
    { id: "pci-host", kind: "pci-host", ports: [{ base: 0xcf8, count: 8 }], irqs: [] },
    { id: "serial0", kind: "serial", ports: [{ base: 0x3f8, count: 8 }], irqs: [4] },
    {
      id: "i8042",
      kind: "i8042",
      ports: [{ base: 0x60, count: 1 }, { base: 0x64, count: 1 }],
      irqs: [1, 12],
    },
    { id: "rtc", kind: "rtc", ports: [{ base: 0x70, count: 2 }], irqs: [8] },
  ]);
});

Deno.test("planDevices() orders disks, NICs, rng, balloon, console; ids, slots and windows", () => {
  const plan = planDevices(machine({
    disks: [disk("pci"), disk("mmio", "data"), disk("pci")],
    nics: [nic("mmio"), nic("pci", "uplink")],
    rng: {},
    balloon: true,
    virtioConsole: true,
    transport: "mmio",
  }));
  assert.deepEqual(
    plan.virtio.map(({ id, kind, transport }) => ({ id, kind, transport })),
    [
      { id: "vda", kind: "disk", transport: { kind: "pci", slot: 1 } },
      {
        id: "data",
        kind: "disk",
        transport: { kind: "mmio", base: 0xd000_0000, size: 0x1000, irq: 5 },
      },
      { id: "vdc", kind: "disk", transport: { kind: "pci", slot: 2 } },
      {
        id: "net0",
        kind: "nic",
        transport: { kind: "mmio", base: 0xd000_1000, size: 0x1000, irq: 6 },
      },
      { id: "uplink", kind: "nic", transport: { kind: "pci", slot: 3 } },
      {
        id: "rng0",
        kind: "rng",
        transport: { kind: "mmio", base: 0xd000_2000, size: 0x1000, irq: 7 },
      },
      {
        id: "balloon0",
        kind: "balloon",
        transport: { kind: "mmio", base: 0xd000_3000, size: 0x1000, irq: 9 },
      },
      {
        id: "console0",
        kind: "console",
        transport: { kind: "mmio", base: 0xd000_4000, size: 0x1000, irq: 10 },
      },
    ],
  );
});

Deno.test("planDevices() puts rng, balloon and console on PCI unless told otherwise", () => {
  const plan = planDevices(machine({ rng: { rateLimit: { ops: { size: 1, refillTimeMs: 1 } } } }));
  assert.deepEqual(plan.virtio, [{
    kind: "rng",
    rateLimit: { ops: { size: 1, refillTimeMs: 1 } },
    id: "rng0",
    transport: { kind: "pci", slot: 1 },
  }]);
});

Deno.test("planDevices() names the 27th disk vdaa and keeps the disk's config", () => {
  const disks = Array.from({ length: 28 }, () => disk("pci"));
  const plan = planDevices(machine({ disks }));
  assert.deepEqual(plan.virtio.slice(25).map((p) => p.id), ["vdz", "vdaa", "vdab"]);
  const last = plan.virtio[27];
  assert.equal(last.kind === "disk" && last.disk, disks[27]);
});

Deno.test("planDevices() is the same for the same config (a rebuild or restore matches)", () => {
  const config = machine({ disks: [disk("mmio"), disk("pci")], nics: [nic("pci")], rng: {} });
  assert.deepEqual(planDevices(config), planDevices(structuredClone(config)));
});

Deno.test("planDevices() refuses a ninth virtio-mmio device and a 32nd PCI device", () => {
  const mmio = Array.from({ length: 9 }, () => disk("mmio"));
  assert.throws(
    () => planDevices(machine({ disks: mmio })),
    (e) =>
      e instanceof DevicePlanError && e instanceof DenovisorError && e.code === "invalid" &&
      /^Cannot add vdi on virtio-mmio: at most 8 virtio-mmio devices fit; put the others on PCI/
        .test(e.message),
  );
  assert.equal(planDevices(machine({ disks: mmio.slice(1) })).virtio.length, 8);
  const pci = Array.from({ length: 32 }, () => disk("pci"));
  assert.throws(
    () => planDevices(machine({ disks: pci })),
    /Cannot add vdaf on PCI: at most 31 PCI devices fit on bus 0/,
  );
  assert.equal(planDevices(machine({ disks: pci.slice(1) })).virtio.at(-1)?.transport.kind, "pci");
});

Deno.test("planDevices() refuses an id twice, or a built-in device's id", () => {
  assert.throws(
    () => planDevices(machine({ disks: [disk("pci"), disk("pci", "vda")] })),
    /Device id 'vda' is taken/,
  );
  assert.throws(
    () => planDevices(machine({ disks: [disk("pci", "net0")], nics: [nic("pci")] })),
    /Device id 'net0' is taken/,
  );
  assert.throws(
    () => planDevices(machine({ nics: [nic("pci", "serial0")] })),
    /Device id 'serial0' is taken/,
  );
});

Deno.test("describeVirtioPlan() names each device by id with its slot or window", () => {
  assert.equal(describeVirtioPlan(planDevices(machine())), "no virtio devices");
  const plan = planDevices(machine({ disks: [disk("pci"), disk("mmio", "data")], rng: {} }));
  assert.equal(
    describeVirtioPlan(plan),
    "vda (pci 00:01.0), data (mmio 0xd0000000 irq 5), rng0 (pci 00:02.0)",
  );
});
