/**
 * Migration progress as the relaying daemon sees it: the frames going to the destination
 * (their bytes, and each DIRTY_ROUND's iteration and dirty bytes) timed as they pass. A
 * DIRTY_ROUND opens a round whose pages follow it, so the time between two of them is
 * one round: the bytes relayed in it give the link's rate, the dirty bytes announced at
 * its end the rate the guest dirties memory and what is left to send.
 *
 * @module
 */

import type { MigrationProgress } from "../api_types.ts";
import { Command } from "../../vmm/migration/protocol.ts";
import type { RelayProgress } from "./relay.ts";

/** Turns relay progress into the API's `MigrationProgress`. */
export class ProgressTracker {
  readonly #progress: MigrationProgress;
  readonly #now: () => number;
  #roundStart: number;
  #roundBytes = 0;

  constructor(
    direction: MigrationProgress["direction"],
    peer: string,
    now: () => number = () => performance.now(),
  ) {
    this.#now = now;
    this.#roundStart = now();
    this.#progress = {
      direction,
      peer,
      startedAt: new Date().toISOString(),
      iteration: 0,
      bytesSent: 0,
      remainingBytes: 0,
      dirtyRate: 0,
      bandwidth: 0,
      expectedDowntimeMs: 0,
      throttlePercent: 0,
      phase: "connecting",
    };
  }

  /** A copy of the progress so far. */
  get current(): MigrationProgress {
    return { ...this.#progress };
  }

  /**
   * Takes one relay report (one frame towards the destination); returns true when a
   * round ended, which is when the figures change enough to be worth an event.
   */
  update(relay: RelayProgress): boolean {
    const progress = this.#progress;
    this.#roundBytes += relay.bytes - progress.bytesSent;
    progress.bytesSent = relay.bytes;
    if (relay.command === Command.STATE || relay.command === Command.COMPLETE) {
      progress.phase = "switch-over";
      return false;
    }
    if (progress.phase === "connecting") progress.phase = "copying";
    if (relay.command !== Command.DIRTY_ROUND || relay.iteration === progress.iteration) {
      return false;
    }
    const now = this.#now();
    const seconds = Math.max(now - this.#roundStart, 1) / 1000;
    progress.iteration = relay.iteration;
    progress.remainingBytes = relay.dirtyBytes;
    progress.throttlePercent = relay.throttlePercent;
    progress.dirtyRate = Math.round(relay.dirtyBytes / seconds);
    progress.bandwidth = Math.round(this.#roundBytes / seconds);
    progress.expectedDowntimeMs = progress.bandwidth > 0
      ? Math.round((relay.dirtyBytes / progress.bandwidth) * 1000)
      : 0;
    this.#roundStart = now;
    this.#roundBytes = 0;
    return true;
  }
}

/** "iteration 3, 12.0 MiB left, dirtied at 4.0 MiB/s, link 110.0 MiB/s, downtime ~35 ms". */
export function describeProgress(progress: MigrationProgress): string {
  const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
  if (progress.phase === "connecting") return `connecting to ${progress.peer}`;
  if (progress.phase === "switch-over") {
    return `switch-over after ${progress.iteration} rounds, ${mib(progress.bytesSent)} sent`;
  }
  if (progress.iteration === 0) return `first pass, ${mib(progress.bytesSent)} sent`;
  return `iteration ${progress.iteration}, ${mib(progress.remainingBytes)} left, ` +
    `dirtied at ${mib(progress.dirtyRate)}/s, link ${mib(progress.bandwidth)}/s, ` +
    `downtime ~${progress.expectedDowntimeMs} ms` +
    (progress.throttlePercent > 0 ? `, guest throttled ${progress.throttlePercent} %` : "");
}
