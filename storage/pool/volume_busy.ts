/**
 * Which volumes have an operation running, and how far their copies have come. One
 * operation per volume at a time: a second one gets a conflict instead of racing the
 * first over the same image.
 *
 * @module
 */

import type { VolumeProgress } from "./pool_types.ts";
import { PoolError } from "./pool_error.ts";
import type { ProgressOptions } from "./volume_context.ts";

/** The running operations, by "pool/volume". */
export class VolumeBusy {
  readonly #operations = new Map<string, string>();
  readonly #progress = new Map<string, { done: number; total: number }>();

  /**
   * Runs `operation` holding `pool/volume` busy as `what`; refuses with a conflict when
   * something else runs on it. The operation reports its copies' progress through the
   * options it is given, which also reach `caller`.
   */
  async run<T>(
    pool: string,
    volume: string,
    what: string,
    operation: (progress: ProgressOptions) => T | Promise<T>,
    caller: ProgressOptions = {},
  ): Promise<T> {
    const key = `${pool}/${volume}`;
    const current = this.#operations.get(key);
    if (current !== undefined) {
      throw new PoolError(
        "busy",
        `Volume '${volume}' is busy (${current}); try again when it is done`,
      );
    }
    this.#operations.set(key, what);
    const progress: ProgressOptions = {
      onProgress: (done, total) => {
        this.#progress.set(key, { done, total });
        caller.onProgress?.(done, total);
      },
    };
    try {
      return await operation(progress);
    } finally {
      this.#operations.delete(key);
      this.#progress.delete(key);
    }
  }

  /** What runs on a volume now, and how far a copy has come (bytes). */
  progress(pool: string, volume: string): VolumeProgress {
    const key = `${pool}/${volume}`;
    const operation = this.#operations.get(key);
    if (operation === undefined) return { busy: false };
    const progress = this.#progress.get(key);
    return {
      busy: true,
      operation,
      ...(progress ? { doneBytes: progress.done, totalBytes: progress.total } : {}),
    };
  }
}
