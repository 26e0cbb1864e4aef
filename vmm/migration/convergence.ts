/**
 * When pre-copy stops iterating, and how hard it throttles a guest that dirties memory
 * faster than the link carries it. Pure functions of measured numbers, so the policy is
 * tested without a guest.
 *
 * Rule (Cloud Hypervisor's estimator, QEMU's and the SAP fork's auto-converge): switch
 * over when the dirty set would take at most `maxDowntimeMs` at the bandwidth measured
 * on the last round; after 4 rounds that did not get there, throttle the vCPUs by 20 %,
 * then 10 % more every 2 rounds, up to 99 %; give up at the timeout.
 *
 * @module
 */

/** What the operator asked for. */
export interface ConvergenceOptions {
  /** The longest pause allowed for the final copy (ms). */
  maxDowntimeMs: number;
  /** Give up (and leave the source running) after this long (ms). */
  timeoutMs: number;
  /** Whether vCPUs may be throttled when the guest dirties memory too fast. */
  autoConverge: boolean;
}

/** Defaults: 100 ms downtime (this project's goal, QEMU says 300), 1 hour, auto-converge on. */
export const DEFAULT_CONVERGENCE: ConvergenceOptions = {
  maxDowntimeMs: 100,
  timeoutMs: 3_600_000,
  autoConverge: true,
};

/** What the sender measured after a round. */
export interface RoundMeasure {
  /** The round just sent (0 is the full copy). */
  iteration: number;
  /** Bytes of the dirty set now waiting. */
  dirtyBytes: number;
  /** Bytes per second measured while sending the last round. */
  bandwidth: number;
  /** Time since the migration started (ms). */
  elapsedMs: number;
}

/** What to do next. */
export type RoundDecision =
  | { action: "switch-over"; expectedDowntimeMs: number }
  | { action: "iterate"; expectedDowntimeMs: number; throttlePercent: number }
  | { action: "give-up"; reason: string };

/** The expected downtime of sending `dirtyBytes` at `bandwidth` bytes/s, in ms. */
export function expectedDowntimeMs(dirtyBytes: number, bandwidth: number): number {
  if (dirtyBytes === 0) return 0;
  if (!(bandwidth > 0)) return Infinity;
  return (dirtyBytes / bandwidth) * 1000;
}

/** The throttle for a round: 0 for 4 rounds, then 20 %, +10 % every 2 rounds, at most 99 %. */
export function throttleFor(iteration: number, options: ConvergenceOptions): number {
  if (!options.autoConverge || iteration < 4) return 0;
  return Math.min(99, 20 + 10 * Math.floor((iteration - 4) / 2));
}

/** Decides after a round. */
export function decideRound(measure: RoundMeasure, options: ConvergenceOptions): RoundDecision {
  const expected = expectedDowntimeMs(measure.dirtyBytes, measure.bandwidth);
  if (expected <= options.maxDowntimeMs) {
    return { action: "switch-over", expectedDowntimeMs: expected };
  }
  if (measure.elapsedMs >= options.timeoutMs) {
    return {
      action: "give-up",
      reason: `did not converge in ${Math.round(options.timeoutMs / 1000)} s: ` +
        `${measure.dirtyBytes} bytes still dirty would take ${Math.round(expected)} ms ` +
        `(limit ${options.maxDowntimeMs} ms); raise --max-downtime or --timeout, or use --offline`,
    };
  }
  return {
    action: "iterate",
    expectedDowntimeMs: expected,
    throttlePercent: throttleFor(measure.iteration + 1, options),
  };
}
