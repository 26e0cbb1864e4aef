/**
 * What the VMM's seccomp filter adds to a system call: the same calls timed in a child
 * process without a filter (the baseline) and in children under the `log` and `strict`
 * filters. Needs no KVM: the filter sees only the call's number and arguments, so an
 * ioctl carrying KVM_RUN's request on /dev/null runs the very instructions a real
 * KVM_RUN runs through (then fails with ENOTTY at once, which keeps the call itself
 * cheap and the filter's share visible).
 *
 * deno run -A bench/seccomp_cost.ts [--count 200000] [--rounds 5]
 *
 * Target: under 5% of an exit round trip (about 5-10 µs here), i.e. under 250 ns a call.
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { closeFd, openFile } from "../ffi/libc.ts";
import { ioctlWithValue, read } from "../ffi/fs.ts";
import { O_CLOEXEC, O_RDONLY } from "../ffi/libc_symbols.ts";
import { KVM } from "../ffi/kvm/ioctls.ts";
import { applySeccomp, compileFilter, parseSeccompMode } from "../vmm/sandbox/seccomp_filter.ts";
import { traceBpf } from "../vmm/sandbox/bpf_run.ts";
import { syscallNumber } from "../vmm/sandbox/syscall_numbers.ts";
import { OTHER_IOCTLS } from "../vmm/sandbox/seccomp_policy.ts";

/** The calls timed, by name: each returns ns per call over `count` calls. */
function measure(count: number): Record<string, number> {
  const devNull = openFile("/dev/null", O_RDONLY | O_CLOEXEC);
  const devZero = openFile("/dev/zero", O_RDONLY | O_CLOEXEC);
  const buffer = new Uint8Array(8);
  const time = (call: () => void) => {
    for (let i = 0; i < 1000; i++) call(); // warm the JIT and the call path
    const start = performance.now();
    for (let i = 0; i < count; i++) call();
    return (performance.now() - start) * 1e6 / count;
  };
  try {
    return {
      // The first request the filter compares: the vCPU exit path.
      "ioctl(KVM_RUN)": time(() => ioctlWithValue(devNull, KVM.RUN, 0)),
      // The last request of the list: the filter's worst case for an allowed ioctl.
      "ioctl(BLKGETSIZE64)": time(() =>
        ioctlWithValue(devNull, BigInt(OTHER_IOCTLS.BLKGETSIZE64), 0)
      ),
      // An unconditional call early in the table: an eventfd read on the device loop.
      "read(8 bytes)": time(() => read(devZero, buffer)),
    };
  } finally {
    closeFd(devNull);
    closeFd(devZero);
  }
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    child: { type: "string" },
    count: { type: "string", default: "200000" },
    rounds: { type: "string", default: "5" },
  },
});
const count = Number(values.count);

if (values.child !== undefined) {
  applySeccomp(parseSeccompMode(values.child));
  console.log(JSON.stringify(measure(count)));
  Deno.exit(0);
}

async function run(mode: string): Promise<Record<string, number>> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", fileURLToPath(import.meta.url), "--child", mode, "--count", `${count}`],
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`The ${mode} child failed (status ${output.code})`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const modes = ["off", "log", "strict"];
const samples = new Map<string, Map<string, number[]>>(modes.map((m) => [m, new Map()]));
for (let round = 0; round < Number(values.rounds); round++) {
  for (const mode of modes) {
    for (const [call, ns] of Object.entries(await run(mode))) {
      const list = samples.get(mode)!.get(call) ?? [];
      list.push(ns);
      samples.get(mode)!.set(call, list);
    }
  }
}
// The filter's work is deterministic: how many BPF instructions each call runs through.
const strictProgram = compileFilter("strict", Deno.pid);
const steps = (nr: number, args: (number | bigint)[] = []) =>
  traceBpf(strictProgram, { nr, args }).steps;
console.log(
  `filter instructions per call (of ${strictProgram.length}): ioctl(KVM_RUN) ${
    steps(syscallNumber("ioctl"), [0, KVM.RUN])
  }, ioctl(BLKGETSIZE64) ${steps(syscallNumber("ioctl"), [0, OTHER_IOCTLS.BLKGETSIZE64])}, futex ${
    steps(syscallNumber("futex"))
  }, read ${steps(syscallNumber("read"))}, exit_group ${steps(syscallNumber("exit_group"))}`,
);
console.log(`seccomp cost, median of ${values.rounds} runs of ${count} calls (ns per call):`);
for (const call of samples.get("off")!.keys()) {
  const base = median(samples.get("off")!.get(call)!);
  const parts = modes.slice(1).map((mode) => {
    const ns = median(samples.get(mode)!.get(call)!);
    return `${mode} ${ns.toFixed(0)} (+${(ns - base).toFixed(0)}, x${(ns / base).toFixed(2)})`;
  });
  console.log(`  ${call.padEnd(20)} off ${base.toFixed(0)}  ${parts.join("  ")}`);
}
