/**
 * What the daemon does when a VMM ends: the event it reports and the xl-style action
 * (on_poweroff / on_reboot / on_crash) it applies. A pure function, so every case is
 * tested without a VM.
 *
 * @module
 */

import type { DomainDefinition, DomainEventKind, LifecycleAction } from "../api_types.ts";
import type { VmmEndRecord } from "../../vmm/vmm_config.ts";

/** The daemon's decision for one ended run. */
export interface EndDecision {
  /** The event that reports the end. */
  event: DomainEventKind;
  /** What happens next; "stop" leaves the domain shut off. */
  action: LifecycleAction | "stop";
  /** Words for people, e.g. "VMM killed by SIGKILL; on_crash=restart". */
  detail: string;
}

/** Restarts allowed within `RESTART_WINDOW_MS` before a crash-looping domain is left stopped. */
export const MAX_RESTARTS = 5;
export const RESTART_WINDOW_MS = 60_000;

/**
 * Decides what an ended run means. `record` is end.json (absent: the VMM crashed);
 * `exit` says how the process ended; `intent` is what the daemon had asked for. A
 * shutdown asked through the API ends the domain whatever on_poweroff says (on_poweroff
 * is for power-offs the guest decides on its own, as in libvirt).
 */
export function decideEnd(
  definition: DomainDefinition,
  record: VmmEndRecord | undefined,
  exit: string,
  intent: "shutdown" | "destroy" | undefined,
): EndDecision {
  const kind = record?.kind ?? "crash";
  const what = record?.detail || (record ? kind : `${exit} without an end record`);
  if (kind === "destroyed" || (intent === "destroy" && kind !== "crash")) {
    return { event: "destroyed", action: "stop", detail: what };
  }
  if (intent === "shutdown" && kind === "poweroff") {
    return { event: "shutdown", action: "stop", detail: what };
  }
  const [event, key, action]: [DomainEventKind, string, LifecycleAction] = kind === "poweroff"
    ? ["shutdown", "on_poweroff", definition.onPoweroff ?? "destroy"]
    : kind === "reboot"
    ? ["rebooted", "on_reboot", definition.onReboot ?? "restart"]
    : ["crashed", "on_crash", definition.onCrash ?? "destroy"];
  return { event, action, detail: `${what}; ${key}=${action}` };
}

/**
 * Whether one more restart is allowed, given the times of the recent ones; prunes old
 * times from `recent` and records this one when allowed.
 */
export function allowRestart(recent: number[], now = Date.now()): boolean {
  while (recent.length > 0 && now - recent[0] > RESTART_WINDOW_MS) recent.shift();
  if (recent.length >= MAX_RESTARTS) return false;
  recent.push(now);
  return true;
}
