/**
 * What /proc says about this process: CPU time of one thread (a vCPU's) and the
 * resident set size.
 *
 * @module
 */

/**
 * Clock ticks per second of /proc's utime/stime (USER_HZ). It is 100 on every x86-64
 * Linux (the kernel's ABI fixes it, whatever CONFIG_HZ is), so no sysconf call is needed.
 */
export const USER_HZ = 100;
const NS_PER_TICK = 1e9 / USER_HZ;

/**
 * utime + stime of thread `tid` of this process in nanoseconds, or undefined when the
 * thread is gone. Parses after the last ')' since the thread name may hold spaces and
 * parentheses.
 */
export function threadCpuTimeNs(tid: number): number | undefined {
  if (!Number.isInteger(tid) || tid <= 0) return undefined;
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/self/task/${tid}/stat`);
  } catch {
    return undefined;
  }
  return parseStatCpuTicks(text) * NS_PER_TICK;
}

/** utime + stime (fields 14 and 15 of /proc/.../stat) in clock ticks. */
export function parseStatCpuTicks(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state), so field N is fields[N - 3].
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) {
    throw new Error(`Unexpected /proc stat line: ${stat.slice(0, 80)}`);
  }
  return utime + stime;
}

/** VmRSS of this process in bytes (0 if /proc has no such line). */
export function residentBytes(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}
