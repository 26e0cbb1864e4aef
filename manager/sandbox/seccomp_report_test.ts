import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { describeSeccompKill, findSeccompKill, readKernelLog } from "./seccomp_report.ts";

const LOGGED =
  '6,900,3525086283,-;audit: type=1326 audit(1796236185.452:6): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=18954 comm="deno" exe="/usr/bin/deno" sig=0 arch=c000003e syscall=157 compat=0 ip=0x7f90055b345d code=0x7ffc0000';
const KILLED =
  '6,901,3532735287,-;audit: type=1326 audit(1796236193.100:8): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=19359 comm="deno" exe="/usr/bin/deno" sig=31 arch=c000003e syscall=101 compat=0 ip=0x7f21923b1829 code=0x80000000';

Deno.test("findSeccompKill() finds the killing call of a pid and ignores logged calls and other pids", () => {
  assert.deepEqual(findSeccompKill([LOGGED, KILLED], 19359), { nr: 101, name: "ptrace" });
  assert.equal(findSeccompKill([LOGGED, KILLED], 18954), undefined);
  assert.equal(findSeccompKill([KILLED], 1935), undefined);
  assert.equal(
    describeSeccompKill(19359, [KILLED]),
    "VMM killed by seccomp: system call ptrace (101)",
  );
  assert.match(describeSeccompKill(1, []), /SIGSYS/);
});

const PROBE = fileURLToPath(new URL("../../vmm/sandbox/testing/seccomp_probe.ts", import.meta.url));

Deno.test("a child killed by the strict filter is reported with the call it made", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-prompt", PROBE, "strict", "mount"],
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const status = await child.status;
  assert.equal(status.signal, "SIGSYS");
  const text = describeSeccompKill(child.pid);
  // The kernel log may be taken by an audit daemon or rate-limited (the printk limit of
  // audit records) when many tests run at once: then the report says where to look.
  const logged = readKernelLog().some((line) => line.includes(` pid=${child.pid} `));
  if (logged) assert.equal(text, "VMM killed by seccomp: system call mount (165)");
  else assert.match(text, /SIGSYS/);
});
