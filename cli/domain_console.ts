/**
 * `denovisor console NAME`: attaches the terminal to a running domain's serial console
 * through the VMM's console socket (protocol in vmm/vmm_config.ts). The terminal is put in
 * raw mode so that every key reaches the guest; Ctrl-] detaches, as in virsh. Any number
 * of viewers can attach; one of them types, the others watch read-only.
 *
 * @module
 */

import { ApiClientError } from "../manager/api_client.ts";
import type { DomainInfo } from "../manager/api_types.ts";
import { abortable, domainPath, type DomainVerb, type VerbContext } from "./domain_verb.ts";
import { CLIENT_EXIT, printable } from "./output.ts";
import { consoleViaDaemon } from "./console_relay.ts";
import { UsageError } from "./usage_error.ts";
import { escapeOption } from "./escape_key.ts";
import { escapeKeyName } from "../devices/console/escape_filter.ts";

/** Ctrl-], the detach key of virsh console. */
export const DETACH_KEY = 0x1d;
/** The longest answer line the VMM sends ("ok rw\n"), with room to spare. */
const MAX_GREETING = 64;

/**
 * Attaches stdin/stdout to the console of `name` until Ctrl-] or the domain stops.
 * Returns the exit status (0 on detach or when the console closes).
 */
export async function attachConsole(
  context: VerbContext,
  name: string,
  options: { readOnly: boolean; force?: boolean; detachKey?: number },
): Promise<number> {
  const detachKey = options.detachKey ?? DETACH_KEY;
  const info = await context.client.get<DomainInfo>(domainPath(name));
  // In a farm, a domain running on another host: its console is served there.
  const { host, hostState } = info as { host?: string; hostState?: string };
  if (!info.consoleSocket && host !== undefined && hostState !== undefined) {
    throw new ApiClientError(
      "conflict",
      `Domain '${printable(name)}' runs on host '${printable(host)}'; its console is served ` +
        `there: run 'denovisor console ${printable(name)}' on '${printable(host)}'`,
      409,
    );
  }
  if (!info.consoleSocket) {
    throw new ApiClientError(
      "conflict",
      `Domain '${printable(name)}' is ${info.state}, so it has no console; ` +
        `start it with 'denovisor start ${printable(name)}'`,
      409,
    );
  }
  const { connection, early } = await openConsole(context, info.name, info.consoleSocket);
  try {
    const hello = options.readOnly ? "ro\n" : options.force ? "rw!\n" : "rw\n";
    await connection.write(new TextEncoder().encode(hello));
    const { mode, rest } = await readGreeting(connection, early);
    const note = mode === "ro"
      ? options.readOnly ? " (read-only)" : " (read-only: another viewer is typing)"
      : options.force
      ? " (--force: the keyboard is yours)"
      : "";
    context.io.out(
      `Connected to domain '${printable(info.name)}'${note}; escape character is ${
        escapeKeyName(detachKey)
      }`,
    );
    const ended = rest.length > 0 && !await writeOutput(rest)
      ? "output-gone"
      : await pump(connection, context, mode === "rw", detachKey);
    const raw = Deno.stdin.isTerminal();
    // Whoever read our output has gone (console NAME | head): nothing more to say.
    if (ended === "output-gone") return CLIENT_EXIT.OK;
    if (ended === "closed") {
      context.io.out(`${raw ? "\r\n" : "\n"}Console of domain '${printable(info.name)}' closed`);
    } else {
      context.io.out("");
    }
    return CLIENT_EXIT.OK;
  } finally {
    try {
      connection.close();
    } catch {
      // Closed by the other side already.
    }
  }
}

/**
 * The console connection: the VMM's console socket when this user may open it (root),
 * else the daemon's relay (members of the socket group).
 */
async function openConsole(
  context: VerbContext,
  name: string,
  consoleSocket: string,
): Promise<{ connection: Deno.UnixConn; early: Uint8Array }> {
  try {
    return {
      connection: await Deno.connect({ transport: "unix", path: consoleSocket }),
      early: new Uint8Array(0),
    };
  } catch (error) {
    if (!(error instanceof Deno.errors.PermissionDenied)) {
      throw new Error(
        `Cannot open the console socket ${consoleSocket}: ${(error as Error).message}; ` +
          `check that the domain is still running`,
      );
    }
  }
  return await consoleViaDaemon(context.client.socket, name);
}

/** Reads the VMM's "ok rw" / "ok ro" line; returns the mode and any console bytes after it. */
async function readGreeting(
  connection: Deno.UnixConn,
  early: Uint8Array,
): Promise<{ mode: "rw" | "ro"; rest: Uint8Array }> {
  let received: Uint8Array = early;
  const chunk = new Uint8Array(4096);
  while (true) {
    const newline = received.indexOf(0x0a);
    if (newline >= 0) {
      const line = new TextDecoder().decode(received.subarray(0, newline)).trim();
      const match = /^ok (rw|ro)$/.exec(line);
      if (!match) throw new Error(`The console refused the attach: ${printable(line)}`);
      return { mode: match[1] as "rw" | "ro", rest: received.slice(newline + 1) };
    }
    if (received.length > MAX_GREETING) throw new Error("The console sent no greeting line");
    const count = await connection.read(chunk);
    if (count === null) {
      throw new Error("The console closed before answering; is the domain stopping?");
    }
    const joined = new Uint8Array(received.length + count);
    joined.set(received);
    joined.set(chunk.subarray(0, count), received.length);
    received = joined;
  }
}

/** Copies console -> stdout and stdin -> console until Ctrl-], end of console, or abort. */
async function pump(
  connection: Deno.UnixConn,
  context: VerbContext,
  writable: boolean,
  detachKey: number,
): Promise<"detached" | "closed" | "output-gone"> {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  context.signal.addEventListener("abort", onAbort, { once: true });
  const raw = Deno.stdin.isTerminal();
  if (raw) Deno.stdin.setRaw(true);
  const output = (async (): Promise<"closed" | "detached" | "output-gone"> => {
    const buffer = new Uint8Array(16384);
    while (!stop.signal.aborted) {
      const count = await abortable(connection.read(buffer), stop.signal).catch(() => null);
      if (count === null) break;
      if (!await writeOutput(buffer.subarray(0, count))) return "output-gone";
    }
    return stop.signal.aborted ? "detached" : "closed";
  })();
  const input = (async (): Promise<"detached" | undefined> => {
    while (!stop.signal.aborted) {
      const bytes = await context.stdin(stop.signal).catch(() => undefined);
      if (bytes === undefined) return undefined;
      // Piped input ended: keep showing output until the console closes or Ctrl-C.
      if (bytes === null) return await new Promise(() => {});
      const detach = bytes.indexOf(detachKey);
      // A read-only viewer also leaves on Ctrl-C, since its keys go nowhere.
      const quit = !writable && raw ? bytes.indexOf(0x03) : -1;
      const end = [detach, quit].filter((index) => index >= 0).sort((a, b) => a - b)[0];
      const forward = end === undefined ? bytes : bytes.subarray(0, end);
      if (writable && forward.length > 0) {
        await writeAll(connection, forward).catch(() => {});
      }
      if (end !== undefined) return "detached";
    }
    return undefined;
  })();
  try {
    const first = await Promise.race([output, input]);
    stop.abort();
    const last = await output;
    if (last === "output-gone") return last;
    return first === "detached" ? "detached" : "closed";
  } finally {
    context.signal.removeEventListener("abort", onAbort);
    if (raw) Deno.stdin.setRaw(false);
  }
}

/**
 * Writes console output to stdout; false when the reader of a pipe has left (console NAME
 * | head), which is a normal end, not an error.
 */
async function writeOutput(bytes: Uint8Array): Promise<boolean> {
  try {
    await writeAll(Deno.stdout, bytes);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) return false;
    throw error;
  }
}

async function writeAll(
  target: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await target.write(bytes.subarray(offset));
}

const consoleVerb: DomainVerb = {
  name: "console",
  summary: "Attach to a running domain's serial console (detach with Ctrl-])",
  help: `Usage: denovisor console NAME [--read-only | --force] [--escape KEY]

Attaches this terminal to the serial console of the running domain NAME: the last 64 KiB
of output is replayed, then everything the guest prints appears live and what you type
goes to the guest. Press Ctrl-] to detach (the domain keeps running), as in virsh.
(\`denovisor run\` owns its VM, so its key ends it instead: Ctrl-A x, as in QEMU.)

Several viewers can attach at once; the first one types and the others are read-only
(and told so). A read-only viewer also detaches with Ctrl-C.

Options:
  --read-only   Watch without typing
  --force       Take the keyboard from the viewer who has it (that one is told and
                only watches from then on)
  --escape KEY  Detach with KEY instead of ^] (e.g. ^A; not ^C, ^M, ^I, ^H, ^[ or ^@)`,
  options: {
    "read-only": { type: "boolean" },
    force: { type: "boolean" },
    escape: { type: "string" },
  },
  args: ["domain"],
  completes: ["running", "paused", "shutting-down"],
  run(context, values, [name]) {
    if (values["read-only"] && values.force) {
      throw new UsageError("console: --read-only and --force exclude each other; give one");
    }
    return attachConsole(context, name, {
      readOnly: values["read-only"] === true,
      force: values.force === true,
      detachKey: escapeOption(values.escape as string | undefined, DETACH_KEY),
    });
  },
};

/** The console verb. */
export const CONSOLE_VERBS: DomainVerb[] = [consoleVerb];
