/**
 * Test-only program: installs the VMM's seccomp filter in its own process, does what a
 * VMM does after start-up (file I/O with fsync and fallocate, a Worker thread, a unix
 * socket server and client, timers, ioctls on non-KVM descriptors, the kick signal to a
 * thread), prints "allowed ok", then makes the call named on its command line. The
 * production VMM has no such trigger.
 *
 * Usage: deno run -A seccomp_probe.ts MODE CALL   (CALL: none, ptrace, mount, execve,
 * inet, getpriority)
 *
 * @module
 */

import { join } from "node:path";
import { applySeccomp, parseSeccompMode } from "../seccomp_filter.ts";
import { rawSyscall } from "../../../ffi/raw_syscall.ts";
import { syscallNumber } from "../syscall_numbers.ts";
import { fallocate, ioctl } from "../../../ffi/fs.ts";
import { currentThreadId, signalThread } from "../../../ffi/thread.ts";
import { closeFd, openFile } from "../../../ffi/libc.ts";
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  O_CLOEXEC,
  O_RDWR,
  SIGUSR2,
} from "../../../ffi/libc_symbols.ts";

const [modeArg, call] = Deno.args;
// Made before the filter: the VMM's directory exists before it starts too.
const dir = Deno.makeTempDirSync({ prefix: "seccomp-probe-" });
applySeccomp(parseSeccompMode(modeArg));

async function allowedWork(): Promise<void> {
  const path = join(dir, "image");
  const file = await Deno.open(path, { read: true, write: true, create: true });
  await file.write(new Uint8Array(4096).fill(7));
  await file.syncData();
  await file.truncate(8192);
  file.close();
  const back = await Deno.readFile(path);
  if (back.length !== 8192 || back[0] !== 7) throw new Error("file I/O went wrong");
  const fd = openFile(path, O_RDWR | O_CLOEXEC);
  if (fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, 4096) !== 0) {
    throw new Error("fallocate failed");
  }
  closeFd(fd);
  await Deno.rename(path, `${path}.renamed`);
  await Deno.remove(`${path}.renamed`);

  const worker = new Worker(new URL("./seccomp_probe_worker.ts", import.meta.url), {
    type: "module",
  });
  const answer = await new Promise<unknown>((resolve, reject) => {
    worker.onmessage = (event) => resolve(event.data);
    worker.onerror = (event) => reject(new Error(event.message));
    worker.postMessage(20);
  });
  worker.terminate();
  if (answer !== 6765) throw new Error(`worker answered ${answer}`);

  const socketPath = join(dir, "control.sock");
  const listener = Deno.listen({ transport: "unix", path: socketPath });
  const served = (async () => {
    const conn = await listener.accept();
    const buffer = new Uint8Array(5);
    await conn.read(buffer);
    await conn.write(buffer);
    conn.close();
  })();
  const client = await Deno.connect({ transport: "unix", path: socketPath });
  await client.write(new TextEncoder().encode("hello"));
  const echo = new Uint8Array(5);
  await client.read(echo);
  client.close();
  await served;
  listener.close();
  if (new TextDecoder().decode(echo) !== "hello") throw new Error("socket echo went wrong");

  await new Promise((resolve) => setTimeout(resolve, 20));
  // ioctl(TCGETS) on a descriptor that is no terminal: allowed, and fails with ENOTTY.
  const devNull = openFile("/dev/null", O_RDWR | O_CLOEXEC);
  if (ioctl(devNull, 0x5401n, new Uint8Array(64)) !== -1) throw new Error("/dev/null is a tty");
  closeFd(devNull);
  Deno.stdin.isTerminal();
  // The vCPU kick: SIGUSR2 to one thread with tgkill (handled, so it only interrupts).
  Deno.addSignalListener("SIGUSR2", () => {});
  if (signalThread(currentThreadId(), SIGUSR2) !== 0) throw new Error("tgkill failed");
}

await allowedWork();
console.log("allowed ok");
switch (call) {
  case "none":
    break;
  case "ptrace":
    rawSyscall(syscallNumber("ptrace"), 0n, 0n); // PTRACE_TRACEME
    break;
  case "mount":
    rawSyscall(syscallNumber("mount"), 0n, 0n);
    break;
  case "execve":
    rawSyscall(syscallNumber("execve"), 0n, 0n);
    break;
  case "inet":
    try {
      Deno.listen({ hostname: "127.0.0.1", port: 0 }).close();
    } catch (error) {
      console.log(`inet refused: ${(error as Error).name}`);
    }
    break;
  case "getpriority":
    rawSyscall(syscallNumber("getpriority"), 0n, 0n);
    break;
  default:
    throw new Error(`Unknown call ${call}`);
}
console.log("survived");
Deno.removeSync(dir, { recursive: true });
Deno.exit(0);
