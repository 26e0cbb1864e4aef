/**
 * The guest binaries are ordinary PVH kernels: QEMU boots the same files, which makes
 * side-by-side comparison (and the start-up benchmark) fair.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { guest } from "./cli_support.ts";

async function qemu(elf: string, append: string): Promise<{ code: number; stdout: string }> {
  const child = new Deno.Command("qemu-system-x86_64", {
    args: [
      "-accel",
      "kvm",
      "-m",
      "128",
      "-nographic",
      "-nodefaults",
      "-no-reboot",
      "-serial",
      "stdio",
      "-device",
      "isa-debug-exit,iobase=0xf4,iosize=0x04",
      "-kernel",
      elf,
      "-append",
      append,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const { code, stdout } = await child.output();
  clearTimeout(timer);
  return { code, stdout: new TextDecoder().decode(stdout) };
}

kvmTest("QEMU boots the same exit_status guest and reports (status << 1) | 1", async () => {
  const r = await qemu(guest("exit_status"), "status=5");
  assert.match(r.stdout, /exit_status: exiting with status 5/);
  assert.equal(r.code, (5 << 1) | 1);
});
