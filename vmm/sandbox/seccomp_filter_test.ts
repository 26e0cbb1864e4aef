import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runBpf } from "./bpf_run.ts";
import { encodeFilter, SECCOMP_RET, X32_SYSCALL_BIT } from "./bpf.ts";
import { compileFilter, parseSeccompMode, SeccompModeError } from "./seccomp_filter.ts";
import {
  ALLOWED_CALLS,
  CLONE_NAMESPACE_FLAGS,
  FORBIDDEN_CALLS,
  OTHER_IOCTLS,
} from "./seccomp_policy.ts";
import { syscallName, syscallNumber } from "./syscall_numbers.ts";
import { KVM } from "../../ffi/kvm/ioctls.ts";
import { BPF_MAX_INSTRUCTIONS } from "../../ffi/seccomp.ts";

const PID = 4242;
const strict = compileFilter("strict", PID);
const log = compileFilter("log", PID);
const nr = syscallNumber;

Deno.test("compileFilter() allows every listed call and fits the kernel's limit", () => {
  assert.ok(strict.length < BPF_MAX_INSTRUCTIONS);
  assert.equal(encodeFilter(strict).length, strict.length * 8);
  for (const call of ALLOWED_CALLS) {
    if (call.oneOf || call.ownPid) continue;
    assert.equal(runBpf(strict, { nr: nr(call.name) }), SECCOMP_RET.ALLOW, call.name);
  }
});

Deno.test("compileFilter() checks ioctl requests: KVM_RUN and TCGETS pass, others get the mode's default", () => {
  const ioctl = (request: number | bigint) => ({ nr: nr("ioctl"), args: [3, request] });
  assert.equal(runBpf(strict, ioctl(KVM.RUN)), SECCOMP_RET.ALLOW);
  assert.equal(runBpf(strict, ioctl(KVM.SET_USER_MEMORY_REGION)), SECCOMP_RET.ALLOW);
  assert.equal(runBpf(strict, ioctl(OTHER_IOCTLS.TCGETS)), SECCOMP_RET.ALLOW);
  // TIOCSTI (0x5412) pushes input into a terminal: never the VMM's business.
  assert.equal(runBpf(strict, ioctl(0x5412)), SECCOMP_RET.KILL_PROCESS);
  assert.equal(runBpf(log, ioctl(0x5412)), SECCOMP_RET.LOG);
  // The kernel reads cmd as an unsigned int: the upper half of the register is ignored.
  assert.equal(runBpf(strict, ioctl((1n << 32n) | KVM.RUN)), SECCOMP_RET.ALLOW);
});

Deno.test("compileFilter() allows unix sockets only and refuses the others with EACCES", () => {
  assert.equal(runBpf(strict, { nr: nr("socket"), args: [1, 1, 0] }), SECCOMP_RET.ALLOW);
  assert.equal(runBpf(strict, { nr: nr("socket"), args: [2, 1, 0] }), SECCOMP_RET.ERRNO | 13);
  assert.equal(runBpf(strict, { nr: nr("socket"), args: [17, 3, 0] }), SECCOMP_RET.ERRNO | 13);
  assert.equal(runBpf(log, { nr: nr("socket"), args: [2, 1, 0] }), SECCOMP_RET.ERRNO | 13);
});

Deno.test("compileFilter() lets clone make threads, never namespaces, and sends clone3 to clone", () => {
  const threadFlags = 0x3d0f00; // glibc's pthread_create flags
  assert.equal(runBpf(strict, { nr: nr("clone"), args: [threadFlags] }), SECCOMP_RET.ALLOW);
  for (const mode of [strict, log]) {
    assert.equal(
      runBpf(mode, { nr: nr("clone"), args: [threadFlags | 0x10000000] }),
      SECCOMP_RET.KILL_PROCESS,
    );
    assert.equal(runBpf(mode, { nr: nr("clone3") }), SECCOMP_RET.ERRNO | 38);
  }
  assert.ok((CLONE_NAMESPACE_FLAGS & threadFlags) === 0);
});

Deno.test("compileFilter() limits tgkill to its own process", () => {
  assert.equal(runBpf(strict, { nr: nr("tgkill"), args: [PID, 7, 12] }), SECCOMP_RET.ALLOW);
  assert.equal(runBpf(strict, { nr: nr("tgkill"), args: [1, 1, 9] }), SECCOMP_RET.KILL_PROCESS);
});

Deno.test("compileFilter() kills forbidden calls in both modes and unknown ones only in strict", () => {
  for (const call of FORBIDDEN_CALLS) {
    assert.equal(runBpf(strict, { nr: nr(call.name) }), SECCOMP_RET.KILL_PROCESS, call.name);
    assert.equal(runBpf(log, { nr: nr(call.name) }), SECCOMP_RET.KILL_PROCESS, call.name);
  }
  assert.equal(runBpf(strict, { nr: nr("getpriority") }), SECCOMP_RET.KILL_PROCESS);
  assert.equal(runBpf(log, { nr: nr("getpriority") }), SECCOMP_RET.LOG);
  assert.equal(runBpf(log, { nr: 1000 }), SECCOMP_RET.LOG);
});

Deno.test("compileFilter() kills other architectures and the x32 ABI", () => {
  const i386 = 0x40000003;
  assert.equal(runBpf(log, { nr: nr("read"), arch: i386 }), SECCOMP_RET.KILL_PROCESS);
  assert.equal(runBpf(log, { nr: X32_SYSCALL_BIT | nr("read") }), SECCOMP_RET.KILL_PROCESS);
});

Deno.test("the policy names only real calls, each once, each with a reason", () => {
  const names = [...ALLOWED_CALLS, ...FORBIDDEN_CALLS].map((call) => call.name);
  assert.equal(new Set(names).size, names.length);
  for (const call of [...ALLOWED_CALLS, ...FORBIDDEN_CALLS]) {
    assert.equal(syscallName(syscallNumber(call.name)), call.name);
    assert.ok(call.why.length > 3, call.name);
  }
  assert.throws(() => syscallNumber("toString"), RangeError);
  assert.equal(syscallName(9999), "syscall 9999");
});

Deno.test("parseSeccompMode() takes strict, log and off only", () => {
  assert.equal(parseSeccompMode("strict"), "strict");
  assert.throws(() => parseSeccompMode("on"), SeccompModeError);
});

const PROBE = fileURLToPath(new URL("./testing/seccomp_probe.ts", import.meta.url));

/** Runs the probe in a child Deno process; its exit status and output. */
async function probe(mode: string, call: string) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-prompt", PROBE, mode, call],
    // The update check would open an AF_INET socket from a runtime thread.
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  return { ...output, text, err: new TextDecoder().decode(output.stderr) };
}

Deno.test("a child under the strict filter does a VMM's work (files, Worker, sockets, timers, ioctl, kick)", async () => {
  const result = await probe("strict", "none");
  assert.equal(result.signal, null, result.err);
  assert.equal(result.code, 0, result.err);
  assert.match(result.text, /allowed ok\nsurvived/);
});

for (const call of ["ptrace", "mount", "execve", "getpriority"]) {
  Deno.test(`a child under the strict filter is killed with SIGSYS by ${call}`, async () => {
    const result = await probe("strict", call);
    assert.match(result.text, /allowed ok/, result.err);
    assert.equal(result.signal, "SIGSYS", result.err);
  });
}

Deno.test("a child under the strict filter is refused network sockets and survives", async () => {
  const result = await probe("strict", "inet");
  assert.equal(result.code, 0, result.err);
  assert.match(result.text, /inet refused: PermissionDenied/);
});

Deno.test("a child under the log filter survives unknown calls, is refused network sockets and killed by ptrace", async () => {
  for (const call of ["getpriority", "inet"]) {
    const result = await probe("log", call);
    assert.equal(result.code, 0, result.err);
    assert.match(result.text, /survived/);
  }
  assert.match((await probe("log", "inet")).text, /inet refused: PermissionDenied/);
  assert.equal((await probe("log", "ptrace")).signal, "SIGSYS");
});
