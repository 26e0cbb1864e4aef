/**
 * Live migration of a running machine inside one process, without daemons: the `ticks`
 * guest (PIT through the IOAPIC, its count in guest RAM) runs on a source machine, the
 * pre-copy sender streams it over an in-memory link (KVM's dirty log ORed with the
 * devices' bitmap) to a receiver that builds a second machine from the stream, and the
 * guest counts on there without booting again while the source stays paused.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { guest } from "./cli_support.ts";
import { TextSink } from "./text_sink.ts";
import { Kvm } from "../core/kvm.ts";
import { build, loadBootImage } from "../vmm/builder.ts";
import type { Machine } from "../vmm/machine.ts";
import type { VmmMachineConfig } from "../vmm/vmm_config.ts";
import { DEFAULT_CONVERGENCE } from "../vmm/migration/convergence.ts";
import { MachineMigrationSource } from "../vmm/migration/machine_source.ts";
import { MachineMigrationTarget } from "../vmm/migration/machine_target.ts";
import { receiveMigration } from "../vmm/migration/receiver.ts";
import { sendMigration } from "../vmm/migration/sender.ts";
import { link } from "../vmm/migration/testing/fakes.ts";
import { Command, decodeJson, encodeJson, PROTOCOL_VERSION } from "../vmm/migration/protocol.ts";
import { guestRamRegions } from "../core/boot/e820.ts";

const config = (): VmmMachineConfig => ({
  vcpus: 2,
  memoryBytes: 32 * 1024 * 1024,
  boot: { kind: "linux", kernel: guest("ticks"), cmdline: "" },
  disks: [],
  nics: [],
  balloon: false,
});

function migrationTest(name: string, fn: () => Promise<void>, timeoutMs: number): void {
  kvmTest(name, fn, timeoutMs);
}

migrationTest(
  "a running machine migrates live over a link and counts on in the new machine",
  async () => {
    using kvm = Kvm.open();
    const boot = await loadBootImage(config().boot);
    const sourceConsole = new TextSink();
    const destinationConsole = new TextSink();
    const source = build(config(), { kvm, console: sourceConsole, boot });
    const target = new MachineMigrationTarget(config(), {
      kvm,
      console: destinationConsole,
      boot,
    });
    let destination: Machine | null = null;
    try {
      source.start();
      await sourceConsole.waitForTick(20, 60_000);
      const l = link();
      const start = {
        domain: "ticks",
        config: config(),
        ram: source.ram.memory.regions.map((r) => ({
          guestAddress: r.start,
          size: r.bytes.length,
        })),
        disks: [],
      };
      const [result] = await Promise.all([
        sendMigration(new MachineMigrationSource(source, config(), kvm), l.source, start, {
          ...DEFAULT_CONVERGENCE,
          maxDowntimeMs: 300, // generous: CI hosts are loaded
          timeoutMs: 120_000,
          offline: false,
          bandwidth: 0,
          completeTimeoutMs: 60_000,
        }),
        receiveMigration(l.destination, target),
      ]);
      destination = target.machine;
      assert.ok(source.isPaused, "the source stays paused once the destination runs");
      const lastTick = Math.max(...sourceConsole.ticks());
      await destinationConsole.waitForTick(lastTick + 20, 60_000);
      const ticks = destinationConsole.ticks();
      assert.ok(ticks[0] > lastTick, `the count goes on from ${lastTick}: ${ticks.join(", ")}`);
      assert.deepEqual(ticks, [...ticks].sort((x, y) => x - y), "ticks only go up");
      assert.ok(
        !destinationConsole.text.includes("ticks: PIT at"),
        `no second boot:\n${destinationConsole.text}`,
      );
      console.log(
        `migrated in ${result.totalMs} ms, ${result.iterations} rounds, ` +
          `${result.bytesSent} bytes, downtime ${result.downtimeMs} ms`,
      );
    } finally {
      source.stop("test over");
      await source.close();
      destination?.stop("test over");
      await destination?.close();
    }
  },
  240_000,
);

migrationTest(
  "a destination whose KVM lacks a CPU feature the guest has seen refuses at START, before any page",
  async () => {
    using kvm = Kvm.open();
    const boot = await loadBootImage(config().boot);
    const target = new MachineMigrationTarget(config(), { kvm, console: new TextSink(), boot });
    // The source's guest was shown every leaf-1 feature bit (AVX, XSAVE...): this host's
    // KVM offers far fewer (HOST_FACTS.md).
    const cpuid = kvm.supportedCpuid().map((leaf) =>
      leaf.function === 1 ? { ...leaf, ecx: 0x7fff_ffff, edx: 0xffff_ffff } : leaf
    );
    const l = link();
    const received = receiveMigration(l.destination, target).then(() => null, (e) => e);
    await l.source.writer.send(
      Command.START,
      encodeJson({
        protocolVersion: PROTOCOL_VERSION,
        mode: "live",
        domain: "ticks",
        config: config(),
        ram: guestRamRegions(config().memoryBytes).map((r) => ({
          guestAddress: r.start,
          size: r.size,
        })),
        disks: [],
        cpuid,
      }),
    );
    const answer = await l.source.reader.next();
    assert.equal(answer?.command, Command.ERROR);
    const message = String((decodeJson(answer!.payload, "ERROR") as { message: string }).message);
    assert.match(message, /avx|xsave|feature|CPU/i);
    assert.ok((await received) instanceof Error, "the receiver went on");
    assert.equal(target.machine, null, "a machine was built");
  },
  60_000,
);
