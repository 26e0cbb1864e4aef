/**
 * The source side of a migration: START and its answer, pre-copy rounds (or one pass
 * with `offline`), then pause, the last dirty pages, the disks let go, STATE, COMPLETE
 * and the destination's answer.
 *
 * The switch-over rule (never two running copies, never none):
 * - before COMPLETE is sent, any failure (refusal, link cut, timeout, abort) takes the
 *   disks back, resumes the source and throws: the source runs on;
 * - after COMPLETE, an ACK means the destination runs the guest: the source ends;
 *   an ERROR means the destination gave up before resuming: the source resumes;
 *   silence or a cut link means the outcome is unknown: the source stays paused and
 *   `MigrationOutcomeUnknownError` says so; the operator checks the destination and
 *   either destroys the source or resumes it.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";
import type { RangeBitmap } from "../../core/dirty_log.ts";
import { emptyBitmaps } from "../../core/dirty_log.ts";
import { type ConvergenceOptions, decideRound, expectedDowntimeMs } from "./convergence.ts";
import type { FrameReader, FrameWriter } from "./frames.ts";
import { Pacer, type RamView, sendPages } from "./page_sender.ts";
import { Command, decodeJson, encodeDirtyRound, encodeJson, PROTOCOL_VERSION } from "./protocol.ts";
import type { StartRequest } from "./start_request.ts";

/** What the sender needs of the running machine. */
export interface MigrationSource {
  /** Guest RAM in this process, in the order of the dirty bitmaps. */
  readonly ram: readonly RamView[];
  /** Starts dirty logging (KVM's log and the devices' bitmap). */
  startDirtyLog(): void;
  /**
   * The pages round 0 must look at, once logging is on (default: all): a source may
   * leave out pages it knows are zero without reading them (never-touched anonymous RAM).
   */
  firstPass?(): RangeBitmap[];
  /** The pages dirtied since the last call (or since `startDirtyLog`). */
  takeDirty(): RangeBitmap[];
  /** Stops dirty logging. */
  stopDirtyLog(): void;
  /** Throttles the vCPUs to run `percent` % less (0: full speed); optional. */
  throttle?(percent: number): void;
  /** Pauses the vCPUs and lets in-flight device requests finish. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** The machine's state document (paused). */
  saveState(): Promise<unknown>;
  /** Flushes and closes the disk images, releasing their locks (qcow2 handover). */
  releaseDisks(): Promise<void>;
  /** Reopens them after a handover that did not happen. */
  reacquireDisks(): Promise<void>;
}

/** Progress, for the terminal, the API and /v1/events. */
export interface MigrationProgress {
  phase: "starting" | "copying" | "switch-over" | "completing" | "done";
  iteration: number;
  /** Bytes dirtied during the last round, and the rate they were dirtied at. */
  dirtyBytes: number;
  dirtyRate: number;
  /** Bytes per second measured on the link. */
  bandwidth: number;
  expectedDowntimeMs: number;
  throttlePercent: number;
  bytesSent: number;
  elapsedMs: number;
}

/** What a successful migration measured. */
export interface MigrationResult {
  iterations: number;
  bytesSent: number;
  totalMs: number;
  /** From pause to the destination's ACK, as the source sees it. */
  downtimeMs: number;
  /** Where the downtime went, in ms (for the log and the benchmark). */
  switchOver?: SwitchOverTimes;
}

/** The downtime step by step, in ms. */
export interface SwitchOverTimes {
  /** Pausing the vCPUs and holding the devices. */
  pause: number;
  /** The pages dirtied since the last round. */
  lastPages: number;
  /** The machine's state document. */
  state: number;
  /** Disks flushed, closed and their locks released. */
  disks: number;
  /** STATE and COMPLETE sent, to the destination's ACK: its restore and resume. */
  destination: number;
}

/** The migration failed and the source runs on (or was resumed). */
export class MigrationFailedError extends DenovisorError {}

/** After COMPLETE no answer came: the source stays paused; an operator decides. */
export class MigrationOutcomeUnknownError extends DenovisorError {
  constructor(detail: string) {
    super(
      "unavailable",
      `Migration outcome unknown (${detail}): the source is paused; check the destination, ` +
        `then destroy the source if the guest runs there, or resume it if not`,
    );
  }
}

export interface SendOptions extends ConvergenceOptions {
  /** "offline": pause first, one pass. */
  offline: boolean;
  /** Link limit in bytes per second (0: unlimited). */
  bandwidth: number;
  /** How long to wait for the destination to restore and answer COMPLETE (ms). */
  completeTimeoutMs: number;
  onProgress?: (progress: MigrationProgress) => void;
  /** Aborted: stop at the next step, source resumed. */
  signal?: AbortSignal;
}

type Start = Omit<StartRequest, "protocolVersion" | "mode">;

/** Reads the next frame; it must be ACK (or ERROR, which throws with the peer's message). */
async function answer(reader: FrameReader, what: string): Promise<unknown> {
  const frame = await reader.next();
  if (frame === null) throw new Error(`the destination closed the link after ${what}`);
  if (frame.command === Command.ACK) {
    return frame.payload.length ? decodeJson(frame.payload, "ACK") : {};
  }
  if (frame.command === Command.ERROR) {
    const body = decodeJson(frame.payload, "ERROR") as { message?: unknown };
    const message = typeof body?.message === "string" ? body.message.slice(0, 1000) : "no reason";
    throw new MigrationFailedError("conflict", `The destination refused the migration: ${message}`);
  }
  throw new Error(`the destination answered ${what} with command ${frame.command}`);
}

function allPages(ram: readonly RamView[]): RangeBitmap[] {
  const bitmaps = emptyBitmaps(ram.map((r) => ({ start: r.guestAddress, size: r.bytes.length })));
  for (const bitmap of bitmaps) {
    for (let page = 0; page < bitmap.pages; page++) bitmap.bits[page >>> 5] |= 1 << (page & 31);
  }
  return bitmaps;
}

function bytesOf(bitmaps: readonly RangeBitmap[]): number {
  let pages = 0;
  for (const b of bitmaps) for (const w of b.bits) pages += popcount(w);
  return pages * 4096;
}

function popcount(word: number): number {
  let w = word >>> 0;
  let count = 0;
  while (w !== 0) {
    w &= w - 1;
    count++;
  }
  return count;
}

/** Runs the source side over an open channel. */
export async function sendMigration(
  source: MigrationSource,
  channel: { reader: FrameReader; writer: FrameWriter },
  start: Start,
  options: SendOptions,
): Promise<MigrationResult> {
  const { reader, writer } = channel;
  const started = performance.now();
  const pacer = new Pacer(options.bandwidth);
  const progress: MigrationProgress = {
    phase: "starting",
    iteration: 0,
    dirtyBytes: 0,
    dirtyRate: 0,
    bandwidth: 0,
    expectedDowntimeMs: 0,
    throttlePercent: 0,
    bytesSent: 0,
    elapsedMs: 0,
  };
  const report = (changes: Partial<MigrationProgress>) => {
    Object.assign(progress, changes, {
      bytesSent: writer.bytesSent,
      elapsedMs: Math.round(performance.now() - started),
    });
    options.onProgress?.({ ...progress });
  };
  const checkAbort = () => {
    if (options.signal?.aborted) {
      throw new MigrationFailedError("conflict", "Migration aborted by the operator");
    }
  };
  let paused = false;
  let released = false;
  let logging = false;
  let completeSent = false;
  try {
    await writer.send(
      Command.START,
      encodeJson({
        protocolVersion: PROTOCOL_VERSION,
        mode: options.offline ? "offline" : "live",
        ...start,
      }),
    );
    await answer(reader, "START");
    checkAbort();
    if (options.offline) {
      await source.pause();
      paused = true;
    } else {
      source.startDirtyLog();
      logging = true;
    }
    report({ phase: "copying" });
    // Round 0: every page that holds data (the destination's RAM starts zeroed).
    let roundStart = performance.now();
    const first = source.firstPass?.() ?? allPages(source.ram);
    let sent = await sendPages(writer, source.ram, first, { skipZero: true, pacer });
    let iteration = 0;
    while (!options.offline) {
      checkAbort();
      const roundMs = Math.max(performance.now() - roundStart, 1);
      const bandwidth = (sent.bytes / roundMs) * 1000;
      const dirty = source.takeDirty();
      const dirtyBytes = bytesOf(dirty);
      const decision = decideRound({
        iteration,
        dirtyBytes,
        bandwidth,
        elapsedMs: performance.now() - started,
      }, options);
      report({
        iteration,
        dirtyBytes,
        dirtyRate: (dirtyBytes / roundMs) * 1000,
        bandwidth,
        expectedDowntimeMs: Math.round(expectedDowntimeMs(dirtyBytes, bandwidth)),
      });
      if (decision.action === "give-up") {
        throw new MigrationFailedError("timeout", `Migration ${decision.reason}`);
      }
      if (decision.action === "switch-over") {
        // Send this set now; the pause below only has what was dirtied meanwhile.
        await sendPages(writer, source.ram, dirty, { skipZero: false, pacer });
        break;
      }
      if (decision.throttlePercent !== progress.throttlePercent) {
        source.throttle?.(decision.throttlePercent);
        report({ throttlePercent: decision.throttlePercent });
      }
      iteration++;
      await writer.send(
        Command.DIRTY_ROUND,
        encodeDirtyRound({
          iteration,
          dirtyBytes,
          throttlePercent: progress.throttlePercent,
        }),
      );
      roundStart = performance.now();
      sent = await sendPages(writer, source.ram, dirty, { skipZero: false, pacer });
    }
    if (!options.offline) {
      // What the relays still hold reaches the destination while the guest runs on.
      await writer.send(Command.SYNC);
      await answer(reader, "SYNC");
      checkAbort();
    }
    // Switch-over: pause, the last pages, the disks let go, the state.
    const pausedAt = performance.now();
    const steps = [pausedAt];
    const step = () => steps.push(performance.now());
    if (!paused) {
      await source.pause();
      paused = true;
    }
    step();
    report({ phase: "switch-over" });
    if (logging) {
      await sendPages(writer, source.ram, source.takeDirty(), { skipZero: false, pacer });
    }
    step();
    const state = await source.saveState();
    step();
    await source.releaseDisks();
    released = true;
    step();
    await writer.send(Command.STATE, encodeJson(state));
    checkAbort();
    report({ phase: "completing" });
    await writer.send(Command.COMPLETE);
    completeSent = true;
    await withTimeout(answer(reader, "COMPLETE"), options.completeTimeoutMs);
    const done = performance.now();
    step();
    if (logging) source.stopDirtyLog();
    report({ phase: "done" });
    const lap = (index: number) => Math.round(steps[index + 1] - steps[index]);
    return {
      iterations: iteration + 1,
      bytesSent: writer.bytesSent,
      totalMs: Math.round(done - started),
      downtimeMs: Math.round(done - pausedAt),
      switchOver: {
        pause: lap(0),
        lastPages: lap(1),
        state: lap(2),
        disks: lap(3),
        destination: lap(4),
      },
    };
  } catch (error) {
    const refused = error instanceof MigrationFailedError;
    if (completeSent && !refused) {
      throw new MigrationOutcomeUnknownError((error as Error).message);
    }
    // The destination has not resumed the guest: take everything back.
    if (!completeSent) {
      await writer.send(
        Command.ABANDON,
        encodeJson({ reason: (error as Error).message.slice(0, 1000) }),
      )
        .catch(() => {});
    }
    if (logging) source.stopDirtyLog();
    if (progress.throttlePercent !== 0) source.throttle?.(0);
    if (released) {
      try {
        await source.reacquireDisks();
      } catch (reopen) {
        // Resuming with a closed disk would fail the guest's I/O: stay paused, say why.
        throw new MigrationFailedError(
          "internal",
          `Migration failed (${(error as Error).message}) and the disks could not be reopened ` +
            `here (${
              (reopen as Error).message
            }): the source stays paused; fix the storage, then resume it`,
          { cause: error },
        );
      }
    }
    if (paused) await source.resume();
    if (refused) throw error;
    throw new MigrationFailedError(
      "unavailable",
      `Migration failed, the guest runs on here: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
