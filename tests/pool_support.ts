/**
 * Helpers for the storage-pool tests: real filesystems on loop devices, made and torn down
 * in `finally`, and qemu-img/qemu-io as the independent judges of the images. Tests that
 * lack a tool or root are skipped loudly, never passed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { addPoolRoutes } from "../manager/daemon/pool_routes.ts";
import { Router } from "../common/http/mod.ts";
import { PoolError, PoolManager } from "../storage/pool/mod.ts";

/** Asserts that `work` rejects (or throws) a PoolError with `code` and a message matching `pattern`. */
export function rejectsWithPoolError(
  work: () => unknown,
  code: string,
  pattern: RegExp,
): Promise<void> {
  return assert.rejects(
    async () => await work(),
    (error: unknown) => {
      assert.ok(error instanceof PoolError, `expected a PoolError, got ${error}`);
      assert.equal(error.code, code, error.message);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

/** Runs a tool; returns stdout, throws with stderr on failure. */
export function sh(command: string, ...args: string[]): string {
  const out = new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).outputSync();
  if (!out.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

function hasTool(tool: string): boolean {
  return new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" })
    .outputSync().success;
}

/** Why the tools a test needs are not usable here, or undefined when they are. */
export function missingTools(tools: string[]): string | undefined {
  if (Deno.uid() !== 0) return "not running as root";
  const missing = tools.filter((tool) => !hasTool(tool));
  if (missing.length > 0) return `missing ${missing.join(", ")}`;
  if (tools.includes("losetup") && !hasLoopDevices()) return "loop devices do not work here";
  return undefined;
}

let loopWorks: boolean | undefined;
function hasLoopDevices(): boolean {
  if (loopWorks !== undefined) return loopWorks;
  const file = Deno.makeTempFileSync();
  try {
    Deno.truncateSync(file, 1024 * 1024);
    const dev = sh("losetup", "-f", "--show", file).trim();
    sh("losetup", "-d", dev);
    loopWorks = true;
  } catch {
    loopWorks = false;
  } finally {
    Deno.removeSync(file);
  }
  return loopWorks;
}

/** A Deno.test that is skipped, with a loud warning, when `tools` (or root) are missing. */
export function poolTest(name: string, tools: string[], fn: () => Promise<void> | void): void {
  const reason = missingTools(tools);
  if (reason) {
    console.error(
      `\n*** SKIPPING "${name}": ${reason} (install xfsprogs, btrfs-progs, qemu-utils) ***\n`,
    );
  }
  Deno.test({ name, ignore: reason !== undefined, fn });
}

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "denovisor-pool-" });
  try {
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Runs `fn` with a loop device (partition scanning on) over a sparse file of `mib` MiB. */
export async function withLoopDevice(
  dir: string,
  mib: number,
  fn: (device: string) => Promise<void> | void,
): Promise<void> {
  const file = `${dir}/disk-${crypto.randomUUID()}.img`;
  Deno.writeFileSync(file, new Uint8Array());
  Deno.truncateSync(file, mib * 1024 * 1024);
  const device = sh("losetup", "-fP", "--show", file).trim();
  try {
    await fn(device);
  } finally {
    sh("losetup", "-d", device);
    Deno.removeSync(file);
  }
}

/** Runs `fn` with a fresh XFS (reflink=1) or btrfs filesystem mounted in `dir`. */
export async function withFilesystem(
  dir: string,
  kind: "xfs" | "btrfs",
  mib: number,
  fn: (mountPoint: string) => Promise<void> | void,
): Promise<void> {
  await withLoopDevice(dir, mib, async (device) => {
    if (kind === "xfs") sh("mkfs.xfs", "-q", "-f", "-m", "reflink=1", device);
    else sh("mkfs.btrfs", "-q", "-f", device);
    const mountPoint = `${dir}/mnt-${kind}`;
    Deno.mkdirSync(mountPoint);
    sh("mount", device, mountPoint);
    try {
      await fn(mountPoint);
    } finally {
      sh("umount", mountPoint);
    }
  });
}

/** Asserts `qemu-img check` finds no errors or leaks (qcow2), and returns `qemu-img info`. */
export function judgeImage(path: string): { format: string; "virtual-size": number } {
  const info = JSON.parse(sh("qemu-img", "info", "-U", "--output", "json", path));
  if (info.format === "qcow2") {
    const check = JSON.parse(sh("qemu-img", "check", "-U", "--output", "json", path));
    assert.equal(check["check-errors"], 0, `qemu-img check errors in ${path}`);
    assert.equal(check.leaks ?? 0, 0, `qemu-img check leaks in ${path}`);
    assert.equal(check.corruptions ?? 0, 0, `qemu-img check corruptions in ${path}`);
  }
  return info;
}

/** Writes `length` bytes of `byte` at `offset` through qemu-io (any format, through the chain). */
export function writePattern(path: string, offset: number, length: number, byte: number): void {
  const format = JSON.parse(sh("qemu-img", "info", "-U", "--output", "json", path)).format;
  sh("qemu-io", "-f", format, "-c", `write -P ${byte} ${offset} ${length}`, path);
}

/** Whether `length` bytes at `offset` all read as `byte` (through the backing chain). */
export function hasPattern(path: string, offset: number, length: number, byte: number): boolean {
  const format = JSON.parse(sh("qemu-img", "info", "-U", "--output", "json", path)).format;
  const out = new Deno.Command("qemu-io", {
    args: ["-r", "-U", "-f", format, "-c", `read -P ${byte} ${offset} ${length}`, path],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (/Pattern verification failed/.test(text)) return false;
  if (!out.success) throw new Error(`qemu-io read of ${path} failed: ${text.trim()}`);
  return true;
}

/** Serves the pool routes of a fresh state dir on `<dir>/api.sock` while `fn` runs. */
export async function withPoolApi(
  dir: string,
  users: Record<string, string>,
  fn: (socket: string, router: Router) => Promise<void>,
): Promise<void> {
  const pools = new PoolManager({ stateDir: `${dir}/state`, volumeUser: (path) => users[path] });
  const router = addPoolRoutes(new Router(), pools);
  const socket = `${dir}/api.sock`;
  const server = Deno.serve(
    { path: socket, onListen: () => {} },
    (request) => router.handle(request),
  );
  try {
    await fn(socket, router);
  } finally {
    await server.shutdown();
  }
}
