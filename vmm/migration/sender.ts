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
 * Every wait on the destination before COMPLETE races the operator's abort and a bound
 * (START's answer `START_TIMEOUT_MS`, SYNC's `SYNC_TIMEOUT_MS`, pre-copy writes the
 * migration's timeout, switch-over writes `completeTimeoutMs`): a stalled destination, or
 * one trickling its answer a byte at a time (which keeps the relays' idle timers quiet),
 * cannot hold a logged, throttled source. The wait for COMPLETE's answer is bounded but
 * ignores the abort: from COMPLETE on only the destination's answer may resume the source.
 * Each ACK is checked for what it answers, so no other ACK passes for COMPLETE's.
 *
 * @module
 */

import { DenovisorError } from "../../common/errors.ts";
import type { RangeBitmap } from "../../core/dirty_log.ts";
import { emptyBitmaps } from "../../core/dirty_log.ts";
import { type ConvergenceOptions, decideRound, expectedDowntimeMs } from "./convergence.ts";
import type { FrameReader, FrameWriter } from "./frames.ts";
import { Pacer, type RamView, sendPages } from "./page_sender.ts";
import {
  Command,
  decodeJson,
  encodeDirtyRound,
  encodeJson,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  SYNC_VERSION,
} from "./protocol.ts";
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
  /** How long to wait for START's answer (ms; default `START_TIMEOUT_MS`). */
  startTimeoutMs?: number;
  /** How long to wait for SYNC's answer (ms; default `SYNC_TIMEOUT_MS`). */
  syncTimeoutMs?: number;
  onProgress?: (progress: MigrationProgress) => void;
  /** Aborted: stop at the next step, source resumed. */
  signal?: AbortSignal;
}

/**
 * The bound on START's answer: the destination starts a VMM (up to 30 s for its relay
 * socket), reads the disks' heads and takes the guest's RAM first. Nothing is logged or
 * throttled yet, so it is generous.
 */
export const START_TIMEOUT_MS = 120_000;
/**
 * The bound on SYNC's answer. Dirty logging is on and auto-converge may hold the vCPUs at
 * 99 %, so a destination that does not answer must not hold the source for long; what SYNC
 * waits for is the relays' socket buffers draining (a few MiB: 1 s at 10 MB/s), so 30 s
 * is ample on any link a migration could converge on.
 */
export const SYNC_TIMEOUT_MS = 30_000;
/** How long an ABANDON may take to leave after a failure (the destination may not read). */
const ABANDON_WAIT_MS = 5_000;

type Start = Omit<StartRequest, "protocolVersion" | "maxProtocolVersion" | "mode">;

/** A wait on the destination outlasted its bound. */
class WaitTimeoutError extends Error {}

/**
 * Reads the next frame; it must be ACK (or ERROR, which throws with the peer's message)
 * and its payload must name what it answers (`expected` is a field of it).
 */
async function answer(
  reader: FrameReader,
  what: string,
  expected: (ack: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  const frame = await reader.next();
  if (frame === null) throw new Error(`the destination closed the link after ${what}`);
  if (frame.command === Command.ACK) {
    const ack = frame.payload.length ? decodeJson(frame.payload, "ACK") : {};
    if (typeof ack !== "object" || ack === null || Array.isArray(ack) || !expected(ack as never)) {
      throw new Error(
        `the destination answered ${what} with an ACK that is not ${what}'s: ${
          new TextDecoder().decode(frame.payload).slice(0, 200)
        }`,
      );
    }
    return ack as Record<string, unknown>;
  }
  if (frame.command === Command.ERROR) {
    const body = decodeJson(frame.payload, "ERROR") as { message?: unknown };
    const message = typeof body?.message === "string" ? body.message.slice(0, 1000) : "no reason";
    throw new MigrationFailedError("conflict", `The destination refused the migration: ${message}`);
  }
  throw new Error(`the destination answered ${what} with command ${frame.command}`);
}

/** The version START's ACK names: absent (a version 1 destination) is 1. */
function answeredVersion(ack: Record<string, unknown>): number {
  const version = ack.protocolVersion ?? 1;
  if (
    typeof version !== "number" || !Number.isInteger(version) ||
    version < MIN_PROTOCOL_VERSION || version > PROTOCOL_VERSION
  ) {
    throw new Error(
      `the destination answered START with protocol version ${String(version).slice(0, 20)}, ` +
        `this source speaks ${MIN_PROTOCOL_VERSION} to ${PROTOCOL_VERSION}`,
    );
  }
  return version;
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
  const abortError = () =>
    new MigrationFailedError("conflict", "Migration aborted by the operator");
  const checkAbort = () => {
    if (options.signal?.aborted) throw abortError();
  };
  // Rejects when the operator aborts, for the waits below to race.
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortError());
  });
  aborted.catch(() => {});
  options.signal?.addEventListener("abort", onAbort, { once: true });
  // A write given up on while the transport still held it: another frame sent after it
  // would interleave with its bytes, so the destination learns of the end by the link.
  let writeStalled = false;
  const bounded = async <T>(
    work: Promise<T>,
    ms: number,
    stalled: string,
    write = false,
  ): Promise<T> => {
    let settled = false;
    work.then(() => settled = true, () => settled = true);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const racers: Promise<T>[] = [work, aborted];
    if (Number.isFinite(ms)) {
      racers.push(
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new WaitTimeoutError(stalled)), Math.max(ms, 0));
        }),
      );
    }
    try {
      checkAbort();
      return await Promise.race(racers);
    } catch (error) {
      if (write && !settled) writeStalled = true;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  };
  // Pre-copy writes: at most until the migration's own timeout.
  const copying = <T>(work: Promise<T>) =>
    bounded(
      work,
      started + options.timeoutMs - performance.now(),
      `the destination took no data until the migration's timeout (${options.timeoutMs} ms)`,
      true,
    );
  // Switch-over writes, the guest paused: as long as COMPLETE's answer may take.
  const switching = <T>(work: Promise<T>) =>
    bounded(
      work,
      options.completeTimeoutMs,
      `the destination took no data for ${options.completeTimeoutMs} ms during the switch-over`,
      true,
    );
  let paused = false;
  let released = false;
  let logging = false;
  let completeSent = false;
  try {
    const startTimeoutMs = options.startTimeoutMs ?? START_TIMEOUT_MS;
    await bounded(
      writer.send(
        Command.START,
        encodeJson({
          protocolVersion: MIN_PROTOCOL_VERSION,
          maxProtocolVersion: PROTOCOL_VERSION,
          mode: options.offline ? "offline" : "live",
          ...start,
        }),
      ),
      startTimeoutMs,
      `the destination took no START in ${startTimeoutMs} ms`,
      true,
    );
    const accepted = await bounded(
      answer(reader, "START", (ack) => ack.accepted === start.domain),
      startTimeoutMs,
      `the destination did not answer START in ${startTimeoutMs} ms`,
    );
    const version = answeredVersion(accepted);
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
    let sent = await copying(sendPages(writer, source.ram, first, { skipZero: true, pacer }));
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
        await copying(sendPages(writer, source.ram, dirty, { skipZero: false, pacer }));
        break;
      }
      if (decision.throttlePercent !== progress.throttlePercent) {
        source.throttle?.(decision.throttlePercent);
        report({ throttlePercent: decision.throttlePercent });
      }
      iteration++;
      await copying(writer.send(
        Command.DIRTY_ROUND,
        encodeDirtyRound({
          iteration,
          dirtyBytes,
          throttlePercent: progress.throttlePercent,
        }),
      ));
      roundStart = performance.now();
      sent = await copying(sendPages(writer, source.ram, dirty, { skipZero: false, pacer }));
    }
    if (!options.offline && version >= SYNC_VERSION) {
      // What the relays still hold reaches the destination while the guest runs on.
      const syncTimeoutMs = options.syncTimeoutMs ?? SYNC_TIMEOUT_MS;
      await copying(writer.send(Command.SYNC));
      await bounded(
        answer(reader, "SYNC", (ack) => ack.synced === true),
        syncTimeoutMs,
        `the destination did not answer SYNC in ${syncTimeoutMs} ms`,
      );
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
      await switching(
        sendPages(writer, source.ram, source.takeDirty(), { skipZero: false, pacer }),
      );
    }
    step();
    const state = await source.saveState();
    step();
    await source.releaseDisks();
    released = true;
    step();
    await switching(writer.send(Command.STATE, encodeJson(state)));
    checkAbort();
    report({ phase: "completing" });
    // Not raced with the abort: once COMPLETE may have left, only an answer resumes here.
    try {
      await withTimeout(
        writer.send(Command.COMPLETE),
        options.completeTimeoutMs,
        "COMPLETE not taken",
      );
    } catch (error) {
      // Still being written: it may yet arrive, so the outcome is unknown.
      if (error instanceof WaitTimeoutError) completeSent = true;
      throw error;
    }
    completeSent = true;
    await withTimeout(
      answer(reader, "COMPLETE", (ack) => ack.running === start.domain),
      options.completeTimeoutMs,
    );
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
    if (!completeSent && !writeStalled) {
      await withTimeout(
        writer.send(
          Command.ABANDON,
          encodeJson({ reason: (error as Error).message.slice(0, 1000) }),
        ),
        ABANDON_WAIT_MS,
      ).catch(() => {});
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
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what = "no answer"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new WaitTimeoutError(`${what} in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
