/**
 * The lifecycle verbs: start, shutdown, destroy, reboot, pause (suspend), resume (unpause).
 * Each is one POST /v1/domains/{name}/{action}; the daemon decides whether the state allows
 * it (409, exit status 5, when not).
 *
 * @module
 */

import type { ActionRequest, DomainInfo } from "../manager/api_types.ts";
import { attachConsole } from "./domain_console.ts";
import {
  domainPath,
  type DomainVerb,
  reportDomain,
  stringOption,
  type VerbContext,
} from "./domain_verb.ts";
import { CLIENT_EXIT, printable } from "./output.ts";
import { UsageError } from "./usage_error.ts";

/** Runs one action and prints "Domain 'x' <done>" (or the DomainInfo with --json). */
async function act(
  context: VerbContext,
  name: string,
  action: string,
  done: string,
  json: boolean,
  body: ActionRequest = {},
): Promise<DomainInfo> {
  const info = await context.client.post<DomainInfo>(domainPath(name, `/${action}`), body);
  reportDomain(context, info, json, `Domain '${printable(info.name)}' ${done}`);
  return info;
}

const start: DomainVerb = {
  name: "start",
  summary: "Start a defined domain",
  help: `Usage: denovisor start NAME [--console] [--host auto|HOST] [--json]

Starts the defined domain NAME: the daemon spawns its VMM process and boots it.

Options:
  --console   Attach to the console once started (detach with Ctrl-])
  --host H    In a farm: start it on host H, or 'auto' to place it on the host
              with the most free memory that fits (default: this host)
  --json      Print the domain's info as JSON`,
  options: { console: { type: "boolean" }, host: { type: "string" } },
  json: true,
  args: ["domain"],
  completes: ["shutoff"],
  async run(context, values, [name]) {
    const host = stringOption(values, "host");
    const action = host === undefined ? "start" : `start?host=${encodeURIComponent(host)}`;
    await act(context, name, action, "started", values.json === true);
    if (values.console) return await attachConsole(context, name, { readOnly: false });
    return CLIENT_EXIT.OK;
  },
};

const shutdown: DomainVerb = {
  name: "shutdown",
  summary: "Ask a domain's guest to power off (destroyed after a timeout)",
  help: `Usage: denovisor shutdown NAME [--timeout S] [--no-wait] [--json]

Asks the guest to shut down (Ctrl-Alt-Del through the i8042 keyboard controller, as
Firecracker does) and waits until it has powered off. A guest that ignores the request
is destroyed after the timeout.

Options:
  --timeout S   Seconds the guest gets before it is destroyed (default 60)
  --no-wait     Return once the request is sent; the domain stops in the background
  --json        Print the domain's info as JSON`,
  options: { timeout: { type: "string" }, "no-wait": { type: "boolean" } },
  json: true,
  args: ["domain"],
  completes: ["running"],
  async run(context, values, [name]) {
    const body: ActionRequest = { wait: values["no-wait"] !== true };
    const timeout = stringOption(values, "timeout");
    if (timeout !== undefined) body.timeoutSeconds = parseSeconds(timeout, "shutdown --timeout");
    const done = body.wait ? "is shut off" : "is being shut down";
    await act(context, name, "shutdown", done, values.json === true, body);
    return CLIENT_EXIT.OK;
  },
};

const destroy: DomainVerb = {
  name: "destroy",
  summary: "Stop a domain at once (pulls the plug)",
  help: `Usage: denovisor destroy NAME [--json]

Stops the domain NAME immediately, like pulling the power cord: the guest gets no chance
to shut down cleanly. A domain made with 'create' (transient) disappears.

Options:
  --json   Print the domain's info as JSON`,
  json: true,
  args: ["domain"],
  completes: ["running", "paused", "starting", "shutting-down", "crashed"],
  async run(context, values, [name]) {
    await act(context, name, "destroy", "destroyed", values.json === true);
    return CLIENT_EXIT.OK;
  },
};

const reboot: DomainVerb = {
  name: "reboot",
  summary: "Reset a running domain",
  help: `Usage: denovisor reboot NAME [--no-wait] [--json]

Reboots the domain NAME: its machine is reset and boots again in the same VMM process.

Options:
  --no-wait   Return once the request is sent
  --json      Print the domain's info as JSON`,
  options: { "no-wait": { type: "boolean" } },
  json: true,
  args: ["domain"],
  completes: ["running"],
  async run(context, values, [name]) {
    await act(context, name, "reboot", "is being rebooted", values.json === true, {
      wait: values["no-wait"] !== true,
    });
    return CLIENT_EXIT.OK;
  },
};

const pause: DomainVerb = {
  name: "pause",
  aliases: ["suspend"],
  summary: "Pause a running domain's vCPUs",
  help: `Usage: denovisor pause NAME [--json]      (alias: suspend)

Pauses the domain NAME: its vCPUs stop; memory and devices stay as they are until
'resume'.

Options:
  --json   Print the domain's info as JSON`,
  json: true,
  args: ["domain"],
  completes: ["running"],
  async run(context, values, [name]) {
    await act(context, name, "pause", "paused", values.json === true);
    return CLIENT_EXIT.OK;
  },
};

const resume: DomainVerb = {
  name: "resume",
  aliases: ["unpause"],
  summary: "Resume a paused domain",
  help: `Usage: denovisor resume NAME [--json]      (alias: unpause)

Resumes the paused domain NAME.

Options:
  --json   Print the domain's info as JSON`,
  json: true,
  args: ["domain"],
  completes: ["paused"],
  async run(context, values, [name]) {
    await act(context, name, "resume", "resumed", values.json === true);
    return CLIENT_EXIT.OK;
  },
};

/** Reads a positive number of seconds. */
export function parseSeconds(text: string, what: string): number {
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !(seconds > 0)) {
    throw new UsageError(`${what}: expected a number of seconds above 0, got '${text}'`);
  }
  return seconds;
}

/** The lifecycle verbs. */
export const LIFECYCLE_VERBS: DomainVerb[] = [start, shutdown, destroy, reboot, pause, resume];
