/** Machines give back every fd and mapping they took, whether they ran or failed to build. */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { guest } from "./cli_support.ts";
import { Kvm } from "../core/kvm.ts";
import { buildMachine } from "../vmm/builder.ts";
import type { Machine } from "../vmm/machine.ts";
import { TextSink } from "./text_sink.ts";

const GUEST_RAM = 48 << 20;

/** KVM VM and vCPU fds this process holds (the /dev/kvm fd itself is kept by the test). */
function kvmObjectFds(): string[] {
  return [...Deno.readDirSync("/proc/self/fd")]
    .map((e) => {
      try {
        return Deno.readLinkSync(`/proc/self/fd/${e.name}`);
      } catch {
        return ""; // the directory's own fd, gone by now
      }
    })
    .filter((target) => /anon_inode:kvm-(vm|vcpu)/.test(target));
}

/** Mappings of vCPU run areas, and anonymous mappings exactly the size of the guest RAM. */
function vmMappings(): { runAreas: number; guestRam: number } {
  const lines = Deno.readTextFileSync("/proc/self/maps").trim().split("\n");
  const size = (line: string) => {
    const [start, end] = line.split(" ")[0].split("-").map((hex) => parseInt(hex, 16));
    return end - start;
  };
  return {
    runAreas: lines.filter((l) => l.includes("kvm-vcpu")).length,
    guestRam: lines.filter((l) => size(l) === GUEST_RAM && l.trim().split(/\s+/).length === 5)
      .length,
  };
}

function build(kvm: Kvm, kernel: Uint8Array): Machine {
  return buildMachine(kvm, {
    kernel,
    cmdline: "",
    memoryBytes: GUEST_RAM,
    cpus: 2,
    console: new TextSink(),
  });
}

kvmTest("a machine that fails to build leaves no KVM fd or mapping behind", () => {
  using kvm = Kvm.open();
  const before = vmMappings();
  for (let i = 0; i < 3; i++) {
    assert.throws(
      () => build(kvm, new TextEncoder().encode("not a kernel".repeat(100))),
      /not a kernel/,
    );
  }
  assert.deepEqual(kvmObjectFds(), []);
  assert.deepEqual(vmMappings(), before);
});

kvmTest("a machine that ran and was closed leaves no KVM fd or mapping behind", async () => {
  using kvm = Kvm.open();
  const before = vmMappings();
  const kernel = await Deno.readFile(guest("hello"));
  for (let i = 0; i < 3; i++) {
    const machine = build(kvm, kernel);
    assert.equal(kvmObjectFds().length, 3, "a VM fd and two vCPU fds while it exists");
    assert.equal(vmMappings().runAreas, before.runAreas + 2);
    machine.start();
    assert.deepEqual(await machine.ended, { kind: "debugExit", status: 0 });
    await machine.close();
    assert.deepEqual(kvmObjectFds(), []);
    assert.deepEqual(vmMappings(), before);
  }
});
