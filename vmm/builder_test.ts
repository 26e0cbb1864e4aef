/** The builder on a real VM: every planned device in place, by id; a failed build leaks nothing. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Kvm } from "../core/kvm.ts";
import { MachineConfigError } from "../core/machine.ts";
import { NullConsole } from "../devices/console/null_console.ts";
import { MmioTransport } from "../devices/virtio/mmio_transport.ts";
import { PciTransport } from "../devices/virtio/pci_transport.ts";
import { VirtioBlock } from "../devices/virtio/block.ts";
import { kvmTest } from "../tests/kvm_support.ts";
import { build, loadBootImage } from "./builder.ts";
import type { VmmMachineConfig } from "./vmm_config.ts";

async function withImages(count: number, use: (paths: string[]) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-builder-test-" });
  try {
    const paths = Array.from({ length: count }, (_, i) => join(dir, `disk${i}.raw`));
    for (const path of paths) await Deno.writeFile(path, new Uint8Array(1 << 20));
    await use(paths);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function config(paths: string[], overrides: Partial<VmmMachineConfig> = {}): VmmMachineConfig {
  return {
    vcpus: 1,
    memoryBytes: 128 << 20,
    boot: { kind: "demo" },
    disks: [
      { id: "data", path: paths[0], format: "raw", readOnly: false, transport: "mmio" },
      { path: paths[1], format: "raw", readOnly: true, transport: "pci" },
    ],
    nics: [],
    rng: {},
    balloon: true,
    virtioConsole: true,
    ...overrides,
  };
}

kvmTest(
  "build() puts every planned device on the machine, by id, where the plan says",
  async () => {
    await withImages(2, async (paths) => {
      using kvm = Kvm.open();
      const boot = await loadBootImage({ kind: "demo" });
      const machine = build(config(paths), { kvm, console: new NullConsole(), boot });
      try {
        const entries = [...machine.devices.entries()];
        assert.deepEqual(entries.map(([id, entry]) => [id, entry.kind]), [
          ["pci-host", "pci-host"],
          ["data", "disk"],
          ["vdb", "disk"],
          ["rng0", "rng"],
          ["balloon0", "balloon"],
          ["console0", "console"],
          ["serial0", "serial"],
          ["i8042", "i8042"],
          ["rtc", "rtc"],
        ]);
        for (const [id, entry] of entries) assert.equal(entry.id, id);
        assert.ok(machine.devices.disk("data") instanceof VirtioBlock);
        assert.ok(machine.devices.disk("vdb") instanceof VirtioBlock);
        assert.equal(machine.devices.disk("rng0"), undefined);
        assert.equal(machine.devices.nic("net0"), undefined);
        const data = machine.devices.get("data");
        assert.ok(data?.kind === "disk" && data.transport instanceof MmioTransport);
        const vdb = machine.devices.get("vdb");
        assert.ok(vdb?.kind === "disk" && vdb.transport instanceof PciTransport);
        // The one virtio-mmio device is announced to the guest at the plan's window and IRQ.
        assert.deepEqual(machine.devices.cmdline, ["virtio_mmio.device=4K@0xd0000000:5"]);
        // The four PCI devices took slots 1-4, after the host bridge in slot 0.
        const host = machine.devices.get("pci-host");
        assert.ok(host?.kind === "pci-host");
        for (const slot of [0, 1, 2, 3, 4]) assert.ok(host.device.slot(slot), `slot ${slot}`);
        assert.equal(host.device.slot(5), undefined);
        assert.ok(machine.devices.balloon);
        assert.ok(machine.devices.virtioConsole);
        assert.equal(machine.serial, machine.devices.serial);
      } finally {
        await machine.close();
      }
    });
  },
);

kvmTest(
  "a build that fails releases the disks it opened, so the next build can open them",
  async () => {
    await withImages(2, async (paths) => {
      using kvm = Kvm.open();
      const boot = await loadBootImage({ kind: "demo" });
      const context = { kvm, console: new NullConsole(), boot };
      for (let i = 0; i < 2; i++) {
        assert.throws(
          () => build(config(paths, { vcpus: 100_000 }), context),
          (e) =>
            e instanceof MachineConfigError && /Cannot give the VM 100000 vCPUs/.test(e.message),
        );
      }
      // Each image is locked while open: a leaked one would refuse this build.
      const machine = build(config(paths), context);
      await machine.close();
      await machine.close(); // idempotent
    });
  },
);
