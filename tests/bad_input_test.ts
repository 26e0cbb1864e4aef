/**
 * Bad input to `denovisor run`: one clear line on stderr, a non-zero status, nothing
 * left behind.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { denovisor, guest } from "./cli_support.ts";

async function tempFile(bytes: Uint8Array): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "denovisor-test-" });
  await Deno.writeFile(path, bytes);
  return path;
}

/** Asserts one error line (no stack trace) matching `pattern`, and `code`. */
function assertFails(
  r: { code: number; stderr: string; stdout: string },
  code: number,
  pattern: RegExp,
) {
  assert.equal(r.code, code, r.stdout + r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line expected, got:\n${r.stderr}`);
  assert.match(lines[0], pattern);
}

Deno.test("run refuses unknown flags with status 2", async () => {
  assertFails(
    await denovisor(["run", "--kernal", "x"]),
    2,
    /^denovisor: run: Unknown option '--kernal'/,
  );
  assertFails(await denovisor(["frobnicate"]), 2, /Unknown command 'frobnicate'/);
});

Deno.test("run refuses malformed numbers and sizes with status 2", async () => {
  assertFails(await denovisor(["run", "--cpus", "two"]), 2, /--cpus: 'two' is not a whole number/);
  assertFails(await denovisor(["run", "--memory", "12X"]), 2, /--memory: cannot read size '12X'/);
  assertFails(await denovisor(["run", "--console", "tty"]), 2, /--console: /);
  assertFails(await denovisor(["run", "--on-reboot", "maybe"]), 2, /--on-reboot: 'maybe'/);
});

Deno.test("run names a missing kernel file", async () => {
  assertFails(
    await denovisor(["run", "--kernel", "/nonexistent/vmlinux"]),
    1,
    /Cannot read kernel \/nonexistent\/vmlinux: no such file/,
  );
});

Deno.test("run explains that KVM is missing", async () => {
  assertFails(
    await denovisor(["run"], { env: { DENOVISOR_KVM_DEVICE: "/nonexistent/kvm" } }),
    1,
    /Cannot open \/nonexistent\/kvm: no such device; load the kvm module/,
  );
});

kvmTest("run refuses a file that is not a kernel", async () => {
  const path = await tempFile(
    new TextEncoder().encode("#!/bin/sh\necho not a kernel\n".repeat(50)),
  );
  try {
    assertFails(await denovisor(["run", "--kernel", path]), 1, /is not a kernel/);
  } finally {
    await Deno.remove(path);
  }
});

kvmTest("run refuses a truncated ELF kernel", async () => {
  const elf = await Deno.readFile(guest("hello"));
  for (const length of [40, 100, Math.floor(elf.length / 2)]) {
    const path = await tempFile(elf.subarray(0, length));
    try {
      const r = await denovisor(["run", "--kernel", path]);
      assertFails(r, 1, /ELF|truncated|past the end|outside/i);
    } finally {
      await Deno.remove(path);
    }
  }
});

kvmTest("run refuses a corrupt bzImage header", async () => {
  const image = new Uint8Array(64 * 1024);
  image[0x1fe] = 0x55;
  image[0x1ff] = 0xaa;
  image.set(new TextEncoder().encode("HdrS"), 0x202);
  image[0x1f1] = 200; // setup_sects past the end of the file
  new DataView(image.buffer).setUint16(0x206, 0x020f, true);
  const path = await tempFile(image);
  try {
    assertFails(await denovisor(["run", "--kernel", path]), 1, /bzImage/);
  } finally {
    await Deno.remove(path);
  }
});

kvmTest("run refuses a kernel and initrd larger than guest memory", async () => {
  const initrd = await tempFile(new Uint8Array(24 * 1024 * 1024));
  try {
    const r = await denovisor([
      "run",
      "--kernel",
      guest("hello"),
      "--initrd",
      initrd,
      "--memory",
      "16M",
    ]);
    assertFails(r, 1, /do not fit in 16 MiB of guest memory; raise --memory/);
  } finally {
    await Deno.remove(initrd);
  }
});

kvmTest("run refuses more vCPUs than the host allows, and zero", async () => {
  assertFails(
    await denovisor(["run", "--cpus", "5000"]),
    1,
    /Cannot give the VM 5000 vCPUs: this host allows 1 to \d+/,
  );
  assertFails(await denovisor(["run", "--cpus", "0"]), 1, /Cannot give the VM 0 vCPUs/);
});

kvmTest("run refuses guest memory too small to boot", async () => {
  assertFails(await denovisor(["run", "--memory", "1M"]), 1, /too small/);
});

kvmTest("a failed start leaves no temporary files behind", async () => {
  // A temporary directory of its own (TMPDIR): /tmp is shared with tests running beside.
  const tmp = await Deno.makeTempDir({ prefix: "bad-input-tmp-" });
  try {
    const env = { TMPDIR: tmp };
    assertFails(await denovisor(["run", "--cpus", "5000"], { env }), 1, /5000 vCPUs/);
    assertFails(await denovisor(["run", "--kernel", "/nonexistent"], { env }), 1, /nonexistent/);
    assert.deepEqual([...Deno.readDirSync(tmp)].map((e) => e.name), []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test({
  name: "run explains a /dev/kvm the user may not open" +
    (Deno.uid() === 0 ? "" : " [SKIPPED: needs root to become nobody]"),
  // Needs root (to become nobody). The device is a root-only stand-in named by
  // DENOVISOR_KVM_DEVICE, so the test runs whether or not this host has a /dev/kvm, and
  // whatever its mode.
  ignore: Deno.uid() !== 0,
}, async () => {
  // nobody needs its own copy of the sources: the checkout may sit in a private directory.
  const home = await Deno.makeTempDir({ prefix: "denovisor-test-nobody-" });
  try {
    const root = new URL("..", import.meta.url).pathname;
    const copy = await new Deno.Command("cp", { args: ["-r", root, `${home}/src`] }).output();
    assert.equal(copy.code, 0, new TextDecoder().decode(copy.stderr));
    await Deno.chmod(home, 0o777);
    const device = `${home}/kvm`;
    await Deno.writeFile(device, new Uint8Array(), { mode: 0o600 });
    await Deno.chmod(device, 0o600);
    await new Deno.Command("chmod", { args: ["-R", "a+rX", `${home}/src`] }).output();
    const { code, stderr } = await new Deno.Command("setpriv", {
      args: [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "env",
        `DENO_DIR=${home}/deno`,
        `HOME=${home}`,
        `DENOVISOR_KVM_DEVICE=${device}`,
        Deno.execPath(),
        "run",
        "--allow-all",
        `${home}/src/main.ts`,
        "run",
      ],
      stdin: "null",
    }).output();
    assertFails(
      { code, stdout: "", stderr: new TextDecoder().decode(stderr) },
      1,
      new RegExp(
        `Cannot open ${device}: permission denied; run as root or add the user to the kvm group`,
      ),
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
