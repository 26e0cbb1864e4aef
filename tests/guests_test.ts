/**
 * Each guest in guests/ boots under `denovisor run`; its serial output and exit status
 * are asserted.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { denovisor, guest } from "./cli_support.ts";

kvmTest(
  "the embedded demo guest boots with no arguments and reports CPUs, memory and ticks",
  async () => {
    const r = await denovisor(["run", "--cpus", "2", "--memory", "128M"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Denovisor demo guest/);
    assert.match(r.stdout, /cpus: 2 found via mptable, apic ids: 0 1/);
    assert.match(r.stdout, /cpu 1 online \(apic id 1\)/);
    assert.match(r.stdout, /0000000000100000-0000000007ffffff usable/);
    assert.match(r.stdout, /memory: 127 MiB usable/);
    assert.match(r.stdout, /timer: 20\/20 ticks/);
    assert.match(r.stdout, /demo: done, exiting/);
  },
);

kvmTest("hello prints over the serial port and exits 0", async () => {
  const r = await denovisor(["run", "--kernel", guest("hello")]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "hello from guest");
});

kvmTest("the debug-exit status becomes the exit status of denovisor run", async () => {
  for (const status of [0, 3, 42]) {
    const r = await denovisor([
      "run",
      "--kernel",
      guest("exit_status"),
      "--cmdline",
      `status=${status}`,
    ]);
    assert.equal(r.code, status, r.stdout + r.stderr);
  }
});

kvmTest("an SMP guest sees and runs code on every vCPU", async () => {
  for (const cpus of [4, 8]) {
    const r = await denovisor(["run", "--kernel", guest("smp"), "--cpus", String(cpus)]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`smp: ${cpus}/${cpus} cpus online`));
    assert.match(r.stdout, new RegExp(`smp: cpu ${cpus - 1} apic id ${cpus - 1}`));
  }
});

kvmTest(
  "a triple fault ends the VM with status 120 and a report naming RIP, CPL and bytes",
  async () => {
    const r = await denovisor(["run", "--kernel", guest("fault"), "--cmdline", "fault=triple"]);
    assert.equal(r.code, 120, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /guest triple fault: vCPU 0 at RIP 0x[0-9a-f]+ \(CPL 0, long mode\), instruction bytes: [0-9a-f]{2}( [0-9a-f]{2})*/,
    );
  },
);

kvmTest("an instruction KVM cannot emulate ends the VM with status 121 and a report", async () => {
  const r = await denovisor(["run", "--kernel", guest("fault"), "--cmdline", "fault=mmio-exec"]);
  assert.equal(r.code, 121, r.stdout + r.stderr);
  assert.match(r.stderr, /could not emulate an instruction .*vCPU 0 at RIP 0xd0000000 \(CPL 0/);
});

kvmTest("a guest exception is caught by the guest runtime and reported", async () => {
  const r = await denovisor(["run", "--kernel", guest("fault"), "--cmdline", "fault=exception"]);
  assert.equal(r.code, 99, r.stdout + r.stderr);
  assert.match(r.stdout, /vector 0/i);
});

kvmTest("the console can go to a file", async () => {
  const path = await Deno.makeTempFile({ suffix: ".log" });
  try {
    const r = await denovisor(["run", "--kernel", guest("hello"), "--console", `file:${path}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "");
    assert.equal((await Deno.readTextFile(path)).trim(), "hello from guest");
  } finally {
    await Deno.remove(path);
  }
});

kvmTest(
  "a console file that cannot be written (/dev/full) is reported and fails the run",
  async () => {
    const r = await denovisor(["run", "--kernel", guest("hello"), "--console", "file:/dev/full"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /cannot write the console file \/dev\/full: No space left on device.*; \d+ bytes of guest output were lost/,
    );
  },
);

kvmTest("a console FIFO is refused before boot instead of waiting for a reader", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fifo = `${dir}/console.fifo`;
    assert.equal((await new Deno.Command("mkfifo", { args: [fifo] }).output()).code, 0);
    // Unfixed, the open waits for a reader forever: the timeout turns that into a failure.
    const r = await denovisor(["run", "--kernel", guest("hello"), "--console", `file:${fifo}`], {
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /it is a FIFO \(opening it would wait for a reader\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

kvmTest(
  "each vCPU sees its own APIC ID, the CPU count and the KVM signature in CPUID",
  async () => {
    const r = await denovisor(["run", "--kernel", guest("cpuid"), "--cpus", "3"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // Leaf 1 EBX: [31:24] initial APIC ID, [23:16] logical processor count.
    assert.match(r.stdout, /cpu 0: leaf 0x00000001 eax=[0-9a-f]{8} ebx=0003[0-9a-f]{4}/);
    assert.match(r.stdout, /hypervisor signature "KVMKVMKVM", max hypervisor leaf 0x40000001/);
    for (const id of [1, 2]) {
      assert.match(
        r.stdout,
        new RegExp(`cpu ${id}: leaf 0x00000001 initial apic id ${id} \\(lapic id ${id}\\)`),
      );
    }
  },
);

kvmTest("RAM beyond the 32-bit MMIO hole is mapped above 4 GiB and in the memory map", async () => {
  const r = await denovisor(["run", "--memory", "5G"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /0000000000100000-00000000bfffffff usable/);
  assert.match(r.stdout, /0000000100000000-000000017fffffff usable/);
  assert.match(r.stdout, /memory: 5119 MiB usable/);
});
