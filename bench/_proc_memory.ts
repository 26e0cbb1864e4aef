/**
 * Memory figures of a running process from /proc: its peak resident set (VmHWM) and the
 * resident part of its guest-RAM mapping (from smaps), so that a benchmark can report a
 * VMM's own memory without the guest's.
 *
 * @module
 */

/** One sample of a process's memory, in KiB. */
export interface MemorySample {
  /** Peak resident set so far (VmHWM). */
  vmHwmKiB: number;
  /** Resident set now (VmRSS). */
  vmRssKiB: number;
  /** Resident part of the guest-RAM mapping, or undefined if it could not be told apart. */
  guestRssKiB?: number;
  /** Resident anonymous memory (RssAnon): the process's own, guest RAM included. */
  rssAnonKiB?: number;
  /**
   * Resident file pages (RssFile): mostly the executable's and libraries' text and data,
   * which every process running the same binary shares through the page cache.
   */
  rssFileKiB?: number;
}

/** A `VmXxx:   123 kB` field of /proc/<pid>/status, in KiB. */
export function statusFieldKiB(status: string, field: string): number | undefined {
  const match = status.match(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m"));
  return match ? Number(match[1]) : undefined;
}

/**
 * The Rss of the one private, anonymous, read-write mapping of exactly `sizeKiB` in
 * /proc/<pid>/smaps text: how guest RAM is mapped by Denovisor and by QEMU. Undefined
 * when no mapping or more than one fits, since then the guest's share is unknown.
 */
export function guestMappingRssKiB(smaps: string, sizeKiB: number): number | undefined {
  const candidates: number[] = [];
  let anonymousReadWrite = false;
  let size = -1;
  for (const line of smaps.split("\n")) {
    const header = line.match(/^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/);
    if (header) {
      anonymousReadWrite = header[1].startsWith("rw") && header[1].endsWith("p") &&
        header[2] === "";
      size = -1;
      continue;
    }
    const field = line.match(/^(Size|Rss):\s+(\d+) kB$/);
    if (!field) continue;
    if (field[1] === "Size") size = Number(field[2]);
    else if (anonymousReadWrite && size === sizeKiB) candidates.push(Number(field[2]));
  }
  return candidates.length === 1 ? candidates[0] : undefined;
}

/** Samples process `pid`; undefined once it has gone. */
export async function sampleMemory(
  pid: number,
  guestSizeKiB: number,
): Promise<MemorySample | undefined> {
  try {
    const [status, smaps] = await Promise.all([
      Deno.readTextFile(`/proc/${pid}/status`),
      Deno.readTextFile(`/proc/${pid}/smaps`),
    ]);
    const vmHwmKiB = statusFieldKiB(status, "VmHWM");
    const vmRssKiB = statusFieldKiB(status, "VmRSS");
    // A zombie has no memory fields: it has gone as far as memory is concerned.
    if (vmHwmKiB === undefined || vmRssKiB === undefined) return undefined;
    return {
      vmHwmKiB,
      vmRssKiB,
      guestRssKiB: guestMappingRssKiB(smaps, guestSizeKiB),
      rssAnonKiB: statusFieldKiB(status, "RssAnon"),
      rssFileKiB: statusFieldKiB(status, "RssFile"),
    };
  } catch {
    return undefined;
  }
}
