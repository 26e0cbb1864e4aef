/**
 * The lifecycle verbs: start, shutdown, destroy, reboot, reset, pause (suspend), resume
 * (unpause).
 * Each is one POST /v1/domains/{name}/{action}; the daemon decides whether the state allows
 * it (409, exit status 5, when not).
 *
 * @module
 */

import { type ActionRequest, type DomainInfo, FORCED_SHUTDOWN_END } from "../manager/api_types.ts";
import { attachConsole } from "./domain_console.ts";
import {
  domainPath,
  type DomainVerb,
  reportDomain,
  stringOption,
  type VerbContext,
} from "./domain_verb.ts";
import { CLIENT_EXIT, formatJson, printable } from "./output.ts";
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

/** The run of a verb that does `action` to its one domain and says it is `done`. */
function plainAction(action: string, done: string): DomainVerb["run"] {
  return async (context, values, [name]) => {
    await act(context, name, action, done, values.json === true);
    return CLIENT_EXIT.OK;
  };
}

const start: DomainVerb = {
  name: "start",
  summary: "Start a defined domain",
  help: `Usage: denovisor start NAME [--console] [--host auto|HOST] [--json]

Starts the defined domain NAME: the daemon spawns its VMM process and boots it.

Options:
  --console   Attach to the console once started (detach with Ctrl-])
  --host H    In a farm: start it on host H, or 'auto' to place it on the host
              with the most free memory that fits (default: this host while it
              fits, else placed as with 'auto')
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
  summary: "Ask a domain's guest to power off (forced off after a timeout)",
  help: `Usage: denovisor shutdown NAME [--timeout S | --force-after S] [--no-wait] [--json]

Asks the guest to shut down (the ACPI power button when it listens for it, else
Ctrl-Alt-Del through the i8042 keyboard controller, as Firecracker does) and waits until
it has powered off. A guest that ignores the request is forced off (as destroy does)
after the timeout: the command then says so and exits 1, and the domain's last end
(info) and its "destroyed" event read "${FORCED_SHUTDOWN_END}: ...".
With --force-after, forcing it off is what was asked for: exit status 0.

Options:
  --timeout S       Seconds the guest gets before it is forced off (default 60)
  --force-after S   The same, and forcing it off is not an error
  --no-wait         Return once the request is sent; the domain stops in the background
  --json            Print the domain's info as JSON`,
  options: {
    timeout: { type: "string" },
    "force-after": { type: "string" },
    "no-wait": { type: "boolean" },
  },
  json: true,
  args: ["domain"],
  completes: ["running"],
  async run(context, values, [name]) {
    const body: ActionRequest = { wait: values["no-wait"] !== true };
    const timeout = stringOption(values, "timeout");
    const forceAfter = stringOption(values, "force-after");
    if (timeout !== undefined && forceAfter !== undefined) {
      throw new UsageError("shutdown: give --timeout or --force-after, not both");
    }
    if (timeout !== undefined) body.timeoutSeconds = parseSeconds(timeout, "shutdown --timeout");
    if (forceAfter !== undefined) {
      body.timeoutSeconds = parseSeconds(forceAfter, "shutdown --force-after");
    }
    const json = values.json === true;
    const info = await context.client.post<DomainInfo>(domainPath(name, "/shutdown"), body);
    const shown = printable(info.name);
    const forced = body.wait && info.state === "shutoff" &&
      info.lastEnd?.startsWith(FORCED_SHUTDOWN_END) === true;
    if (!forced) {
      reportDomain(
        context,
        info,
        json,
        `Domain '${shown}' ${body.wait ? "is shut off" : "is being shut down"}`,
      );
      return CLIENT_EXIT.OK;
    }
    // "forced off after the shutdown timeout: the guest did not power off within 60 s (...)"
    const what = `Domain '${shown}' was ${printable(info.lastEnd!)}`;
    if (forceAfter !== undefined) {
      reportDomain(context, info, json, what);
      return CLIENT_EXIT.OK;
    }
    if (json) context.io.out(formatJson(info));
    context.io.err(
      `shutdown: ${what}; give --force-after S when forcing it off is what you want`,
    );
    return CLIENT_EXIT.FAILURE;
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
  run: plainAction("destroy", "destroyed"),
};

const reboot: DomainVerb = {
  name: "reboot",
  summary: "Ask a domain's guest to reboot (Ctrl-Alt-Del)",
  help: `Usage: denovisor reboot NAME [--json]

Asks the guest of domain NAME to reboot, as virsh reboot does: Ctrl-Alt-Del through the
i8042 keyboard controller, which Linux and most guests take as a reboot. The guest
decides: one set up to ignore Ctrl-Alt-Del does not reboot; 'reset' does not ask.
When the guest resets, the domain's on_reboot applies (default: boot again in the same
VMM process).

Options:
  --json      Print the domain's info as JSON`,
  json: true,
  args: ["domain"],
  completes: ["running"],
  run: plainAction("reboot", "is being rebooted"),
};

const reset: DomainVerb = {
  name: "reset",
  summary: "Reset a domain's machine at once (pulls the reset line)",
  help: `Usage: denovisor reset NAME [--json]

Resets the machine of domain NAME without asking its guest, as virsh reset does: it is
rebuilt and boots again in the same VMM process; the guest loses what it had not
written to disk.

Options:
  --json      Print the domain's info as JSON`,
  json: true,
  args: ["domain"],
  completes: ["running", "paused"],
  run: plainAction("reset", "was reset"),
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
  run: plainAction("pause", "paused"),
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
  run: plainAction("resume", "resumed"),
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
export const LIFECYCLE_VERBS: DomainVerb[] = [
  start,
  shutdown,
  destroy,
  reboot,
  reset,
  pause,
  resume,
];
