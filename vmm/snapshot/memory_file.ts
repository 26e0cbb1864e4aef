/**
 * The companion memory file of a state file: guest RAM ranges laid end to end, each page
 * at a fixed offset (as QEMU's mapped-ram and Firecracker's memory file), all-zero pages
 * left as holes. Restore maps it MAP_PRIVATE instead of reading it, so restore time does
 * not grow with RAM size and clones share its pages until they write.
 *
 * @module
 */

import type { MemoryRangeRecord } from "./state_document.ts";
import type { RamSource } from "./inline_memory.ts";
import { nonZeroRuns } from "./page_runs.ts";
import { StateFileError } from "./state_format.ts";
import { writeAtomically } from "./atomic_write.ts";

/** What a memory file write produced. */
export interface MemoryFileResult {
  ranges: MemoryRangeRecord[];
  /** The file's apparent size: all of RAM. */
  fileSize: number;
  /** The bytes actually written (non-zero pages); the rest are holes. */
  dataBytes: number;
}

/** The ranges of `sources` laid end to end, as the document records them. */
export function layoutRanges(sources: readonly RamSource[]): MemoryRangeRecord[] {
  let fileOffset = 0;
  return sources.map((source) => {
    const record = { guestAddress: source.guestAddress, size: source.bytes.length, fileOffset };
    fileOffset += source.bytes.length;
    return record;
  });
}

/**
 * Writes `sources` to a sparse memory file at `path`, atomically (a temporary name,
 * fsync, rename) so a save that fails midway leaves no file that looks complete.
 */
export async function writeMemoryFile(
  path: string,
  sources: readonly RamSource[],
): Promise<MemoryFileResult> {
  const ranges = layoutRanges(sources);
  const fileSize = ranges.reduce((sum, range) => sum + range.size, 0);
  let dataBytes = 0;
  await writeAtomically(path, async (file) => {
    for (const [index, source] of sources.entries()) {
      for (const run of nonZeroRuns(source.bytes, source.knownZero)) {
        await file.seek(ranges[index].fileOffset + run.offset, Deno.SeekMode.Start);
        await writeAll(file, source.bytes.subarray(run.offset, run.offset + run.length));
        dataBytes += run.length;
      }
    }
    // The tail may be zero pages: the file's size must still cover all of RAM.
    await file.truncate(fileSize);
  });
  return { ranges, fileSize, dataBytes };
}

/**
 * Opens a memory file for restore after checking that it is a regular file of exactly
 * the size the document describes (a shorter file would fault the guest with SIGBUS).
 */
export async function openMemoryFile(path: string, fileSize: number): Promise<Deno.FsFile> {
  const info = await Deno.stat(path).catch((error) => {
    throw new StateFileError(`Cannot open memory file ${path}: ${(error as Error).message}`);
  });
  if (!info.isFile) throw new StateFileError(`Memory file ${path} is not a regular file`);
  const file = await Deno.open(path, { read: true });
  try {
    const opened = await file.stat();
    if (!opened.isFile || opened.size !== fileSize) {
      throw new StateFileError(
        `Memory file ${path} is ${opened.size} bytes, the state describes ${fileSize}: ` +
          `it does not belong to this state file or was truncated`,
      );
    }
    return file;
  } catch (error) {
    file.close();
    throw error;
  }
}

/** Writes all of `bytes` (Deno's write may be short). */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    done += await file.write(bytes.subarray(done));
  }
}
