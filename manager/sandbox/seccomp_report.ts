/**
 * Which system call a VMM killed with SIGSYS made. The process cannot say (it is gone
 * before any handler runs); the kernel logs the seccomp action instead, to the audit
 * daemon when one runs, otherwise to the kernel log (/dev/kmsg):
 * `audit: type=1326 ... pid=1234 comm="deno" ... sig=31 arch=c000003e syscall=101 ...`.
 *
 * @module
 */

import { closeFd, errno } from "../../ffi/libc.ts";
import { read, tryOpen } from "../../ffi/fs.ts";
import { O_CLOEXEC, O_NONBLOCK, O_RDONLY } from "../../ffi/libc_symbols.ts";
import { EAGAIN, EINTR } from "../../ffi/errno.ts";
import { syscallName } from "../../vmm/sandbox/syscall_numbers.ts";

/** The call that killed a process, as the kernel logged it. */
export interface SeccompKill {
  nr: number;
  name: string;
}

/** The last seccomp kill of process `pid` in `lines` of kernel log, if any. */
export function findSeccompKill(lines: Iterable<string>, pid: number): SeccompKill | undefined {
  let found: SeccompKill | undefined;
  for (const line of lines) {
    if (!line.includes("type=1326") || !line.includes(` pid=${pid} `)) continue;
    const nr = line.match(/ syscall=(\d+) /);
    // sig=31 (SIGSYS) marks a kill; sig=0 is a logged call the process survived.
    if (nr && / sig=31 /.test(line)) {
      found = { nr: Number(nr[1]), name: syscallName(Number(nr[1])) };
    }
  }
  return found;
}

/** The records of /dev/kmsg now in the kernel's buffer; empty when it cannot be read. */
export function readKernelLog(path = "/dev/kmsg"): string[] {
  const fd = tryOpen(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return [];
  const lines: string[] = [];
  const buffer = new Uint8Array(8192); // a record is at most 1 KiB of text plus its header
  const decoder = new TextDecoder();
  try {
    for (let reads = 0; reads < 1_000_000; reads++) {
      const n = read(fd, buffer);
      if (n > 0) {
        lines.push(decoder.decode(buffer.subarray(0, n)));
        continue;
      }
      // EPIPE: a record was overwritten while reading; the next read goes on after it.
      if (n < 0 && errno() !== EAGAIN && errno() !== EINTR && errno() !== 32) return lines;
      if (n === 0 || errno() === EAGAIN) return lines;
    }
    return lines;
  } finally {
    closeFd(fd);
  }
}

/** Words for a VMM killed by SIGSYS: "VMM killed by seccomp: system call ptrace (101)". */
export function describeSeccompKill(pid: number, lines = readKernelLog()): string {
  const kill = findSeccompKill(lines, pid);
  return kill
    ? `VMM killed by seccomp: system call ${kill.name} (${kill.nr})`
    : "VMM killed by seccomp (SIGSYS; the call is in the audit log)";
}
