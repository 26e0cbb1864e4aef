/** Machines give back every fd and mapping they took, whether they ran or failed to build. */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { guest } from "./cli_support.ts";
import { Kvm } from "../core/kvm.ts";
import { Machine } from "../core/machine.ts";
import { TextSink } from "./text_sink.ts";

const openFds = () => [...Deno.readDirSync("/proc/self/fd")].length;
const mappings = () => Deno.readTextFileSync("/proc/self/maps").split("\n").length;

kvmTest("a machine that fails to build leaves no fd or mapping behind", () => {
  using kvm = Kvm.open();
  const fds = openFds();
  const maps = mappings();
  for (let i = 0; i < 5; i++) {
    assert.throws(() =>
      Machine.build(kvm, {
        kernel: new TextEncoder().encode("not a kernel".repeat(100)),
        cmdline: "",
        memoryBytes: 64 << 20,
        cpus: 2,
        console: new TextSink(),
      }), /not a kernel/);
  }
  assert.equal(openFds(), fds);
  assert.equal(mappings(), maps);
});

kvmTest("a machine that ran and was closed leaves no fd or mapping behind", async () => {
  using kvm = Kvm.open();
  const kernel = await Deno.readFile(guest("hello"));
  const run = async () => {
    const machine = Machine.build(kvm, {
      kernel,
      cmdline: "",
      memoryBytes: 64 << 20,
      cpus: 2,
      console: new TextSink(),
    });
    machine.start();
    assert.deepEqual(await machine.ended, { kind: "debugExit", status: 0 });
    await machine.close();
  };
  await run(); // the first run loads the Worker code and libc mappings for good
  const fds = openFds();
  const maps = mappings();
  for (let i = 0; i < 3; i++) await run();
  assert.equal(openFds(), fds);
  assert.ok(mappings() <= maps + 2, `mappings grew from ${maps} to ${mappings()}`);
});
