/**
 * `denovisor repl`: an interactive shell on the daemon's API. One client stays open for
 * the session; each line runs the same verb code as `denovisor <verb>`. On a terminal it
 * has line editing, Tab completion, history across sessions and live domain events
 * printed above the prompt; with piped input it reads plain lines, so scripts can feed it.
 *
 * @module
 */

import { ApiClient } from "../../manager/api_client.ts";
import type { HostInfo } from "../../manager/api_types.ts";
import { PATH_OPTIONS, resolvePaths } from "../../manager/paths.ts";
import { abortable, SharedStdin, stringOption, type VerbContext } from "../domain_verb.ts";
import { CLIENT_EXIT, consoleIo, printable } from "../output.ts";
import { parseCommandArgs } from "../usage_error.ts";
import { BUILTINS, completionSpecs, REPL_HELP, runReplCommand, showHelp } from "./commands.ts";
import { CachedNames, completeLine } from "./completion.ts";
import { formatEvent, watchEvents } from "./events.ts";
import { appendHistory, defaultHistoryFile, loadHistory } from "./history.ts";
import { LineEditor } from "./line_editor.ts";
import { splitWords } from "./words.ts";

export const REPL_USAGE =
  `Usage: denovisor repl [--history FILE] [--no-events] [--socket PATH] [--state-dir DIR]

An interactive shell on the daemon: every domain verb (start web1, list, console web1...),
'pool ...' and 'vol ...', with Tab completion of commands, options, domain, pool and
volume names, history across sessions (Up/Down, Ctrl-P/N), and live state changes
printed as they happen ("* domain web1 crashed: VMM killed by SIGKILL").
Type 'help' inside for the list; Ctrl-D or 'exit' leaves.

With input from a pipe it runs one command per line without the prompt or events, and
exits with the status of the last command that failed (0 if none did).

Options:
  --history FILE   History file (default: <state-dir>/repl_history when writable, else
                   ~/.denovisor_history)
  --no-events      Do not print live domain events
  --socket PATH    The daemon's socket (default $DENOVISOR_SOCKET, /run/denovisor/api.sock)
  --state-dir DIR  The daemon's state directory (default $DENOVISOR_STATE_DIR, /var/lib/denovisor)`;

const PROMPT = "denovisor> ";
/** Commands that stop on Ctrl-C by themselves. */
const SELF_INTERRUPTING = new Set(["console", "edit", "logs", "events", "event"]);
const encoder = new TextEncoder();

/** Writes to stdout synchronously, so that output and redraws stay in order. */
function writeOut(text: string): void {
  const bytes = encoder.encode(text);
  let offset = 0;
  while (offset < bytes.length) offset += Deno.stdout.writeSync(bytes.subarray(offset));
}

/** `denovisor repl`. */
export async function replCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs("repl", args, {
    history: { type: "string" },
    "no-events": { type: "boolean" },
    help: { type: "boolean", short: "h" },
    ...PATH_OPTIONS,
  });
  if (values.help) {
    console.log(REPL_USAGE);
    return CLIENT_EXIT.OK;
  }
  const paths = resolvePaths({ stateDir: values["state-dir"], socket: values.socket });
  using client = new ApiClient(paths.socket);
  const stdin = new SharedStdin();
  const interactive = Deno.stdin.isTerminal();
  const names = new CachedNames((path) => client.get(path));
  const specs = completionSpecs();
  const historyFile = stringOption(values, "history") ?? defaultHistoryFile(paths.stateDir);
  const editor = new LineEditor({
    write: writeOut,
    complete: (line, cursor) => completeLine(line, cursor, specs, names),
    history: interactive ? loadHistory(historyFile) : [],
    columns: () => Deno.stdout.isTerminal() ? Deno.consoleSize().columns : 80,
    setRaw: (raw) => Deno.stdin.setRaw(raw),
  });

  // Ctrl-C while a command runs (the terminal is cooked then) stops that command only.
  let running: AbortController | undefined;
  const onInterrupt = () => {
    if (running) {
      // The terminal echoed "^C" where the cursor was: what follows starts a line of its own.
      if (interactive && !running.signal.aborted) writeOut("\n");
      return running.abort(new Error("Interrupted"));
    }
    // Between commands (piped input, or a signal from elsewhere): leave as a shell would.
    if (interactive) Deno.stdin.setRaw(false);
    Deno.exit(CLIENT_EXIT.INTERRUPTED);
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  const stopEvents = new AbortController();
  // While $EDITOR owns the screen, event lines wait until it is closed.
  let held: string[] | undefined;
  const show = (text: string) => held ? held.push(text) : editor.printAbove(text);
  try {
    if (interactive) {
      await greet(client, paths.socket);
      if (!values["no-events"]) {
        watchEvents(client, stopEvents.signal, (event) => {
          names.invalidate();
          show(formatEvent(event));
        }, show).catch(() => {});
      }
    }
    const nextLine = interactive
      ? () => editor.readLine(PROMPT, () => stdin.read())
      : plainLines(stdin);
    let status = CLIENT_EXIT.OK as number;
    while (true) {
      const line = await nextLine();
      if (line === null) break;
      if (interactive) appendHistory(historyFile, line);
      running = new AbortController();
      const context: VerbContext = {
        client,
        paths,
        io: consoleIo,
        stdin: stdin.read,
        signal: running.signal,
      };
      if (/^\s*edit\s/.test(line) && !/--file/.test(line)) held = [];
      const result = await runLine(line, context, editor.history);
      running = undefined;
      const waiting = held ?? [];
      held = undefined;
      waiting.forEach(show);
      if (result === "exit") break;
      if (result !== CLIENT_EXIT.OK) status = result;
    }
    return interactive ? CLIENT_EXIT.OK : status;
  } finally {
    stopEvents.abort();
    Deno.removeSignalListener("SIGINT", onInterrupt);
    stdin.release();
  }
}

/** Runs one line; "exit" for exit/quit. */
async function runLine(
  line: string,
  context: VerbContext,
  history: string[],
): Promise<number | "exit"> {
  let words: string[];
  try {
    words = splitWords(line).map((word) => word.text);
  } catch (error) {
    context.io.err(`error: ${(error as Error).message}`);
    return CLIENT_EXIT.USAGE;
  }
  const [name, ...args] = words;
  if (name === undefined || name.startsWith("#")) return CLIENT_EXIT.OK;
  if (name === "exit" || name === "quit") return "exit";
  if (name === "help" || name === "?") {
    if (args[0] === undefined) context.io.out(REPL_HELP);
    else if (!await showHelp(args[0], context)) return unknown(context, args[0]);
    return CLIENT_EXIT.OK;
  }
  if (name === "history") {
    history.forEach((entry, index) => context.io.out(`${String(index + 1).padStart(5)}  ${entry}`));
    return CLIENT_EXIT.OK;
  }
  // Ctrl-C gives the prompt back from a command that waits on the daemon (shutdown waits up
  // to its timeout); console, edit and logs --follow handle the interrupt themselves.
  const command = runReplCommand(words, context);
  if (SELF_INTERRUPTING.has(name)) return await command ?? unknown(context, name);
  try {
    return await abortable(command, context.signal) ?? unknown(context, name);
  } catch (error) {
    if (!context.signal.aborted) throw error;
    context.io.err("Interrupted; the daemon may still complete the request");
    return CLIENT_EXIT.INTERRUPTED;
  }
}

function unknown(context: VerbContext, name: string): number {
  const builtin = BUILTINS.includes(name) ? "" : "; type 'help' for the list";
  context.io.err(`error: unknown command '${printable(name)}'${builtin}`);
  return CLIENT_EXIT.USAGE;
}

/** Says where the REPL is connected, or why it is not. */
async function greet(client: ApiClient, socket: string): Promise<void> {
  try {
    const host = await client.get<HostInfo>("/v1/host");
    console.log(
      `Denovisor ${host.version} on ${host.hostname} (${socket}): ` +
        `${host.domainsDefined} domains, ${host.domainsRunning} running`,
    );
  } catch (error) {
    console.log(`Warning: ${(error as Error).message}`);
  }
  console.log("Type 'help' for commands; Tab completes; Ctrl-D or 'exit' leaves.");
}

/** Plain lines from piped stdin (no editing, no echo). */
function plainLines(stdin: SharedStdin): () => Promise<string | null> {
  const decoder = new TextDecoder();
  let buffer = "";
  let ended = false;
  return async () => {
    while (true) {
      const newline = buffer.indexOf("\n");
      if (newline >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, "");
        buffer = buffer.slice(newline + 1);
        return line;
      }
      if (ended) {
        if (buffer === "") return null;
        const last = buffer;
        buffer = "";
        return last;
      }
      const bytes = await stdin.read();
      if (bytes === null) ended = true;
      else buffer += decoder.decode(bytes, { stream: true });
    }
  };
}
