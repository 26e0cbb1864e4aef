/**
 * Exit traces: (seconds, exits so far) points taken while a vCPU runs, and the cost per
 * exit over windows of them. On a shared host the noise comes in bursts (other
 * processes, a steal from the outer hypervisor), so the fastest window of a few thousand
 * exits shows the undisturbed cost.
 *
 * @module
 */

import { median } from "./_support.ts";

/** A trace point: seconds since the run started, and exits taken so far. */
export type TracePoint = readonly [seconds: number, exits: number];

/**
 * Microseconds per exit over each window that starts at a trace point and ends at the
 * first later point at least `minExits` exits on; one figure per start point.
 */
export function windowCosts(trace: readonly TracePoint[], minExits: number): number[] {
  const costs: number[] = [];
  let end = 0;
  for (let start = 0; start < trace.length; start++) {
    while (end < trace.length && trace[end][1] - trace[start][1] < minExits) end++;
    if (end === trace.length) break;
    const exits = trace[end][1] - trace[start][1];
    costs.push((trace[end][0] - trace[start][0]) / exits * 1e6);
  }
  return costs;
}

/** The fastest and the median window over several traces. */
export interface WindowSummary {
  fastest: number;
  median: number;
  windows: number;
}

/** Summarises the windows of every trace; undefined if no trace spans `minExits`. */
export function summariseWindows(
  traces: readonly (readonly TracePoint[])[],
  minExits: number,
): WindowSummary | undefined {
  const costs = traces.flatMap((trace) => windowCosts(trace, minExits));
  if (costs.length === 0) return undefined;
  return { fastest: Math.min(...costs), median: median(costs), windows: costs.length };
}
