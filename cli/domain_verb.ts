/**
 * The shape of a domain verb and the one runner behind `denovisor <verb>` and the REPL: a
 * verb is a spec (names, help, options, what its arguments are) plus a function that runs
 * it with an open API client. The CLI opens a client per command; the REPL passes its own.
 *
 * @module
 */

import type { ParseArgsConfig } from "node:util";
import type { DomainInfo, DomainState } from "../manager/api_types.ts";
import { ApiClient } from "../manager/api_client.ts";
import { type DenovisorPaths, PATH_OPTIONS, resolvePaths } from "../manager/paths.ts";
import {
  CLIENT_EXIT,
  type CommandIo,
  consoleIo,
  formatJson,
  printable,
  reportError,
} from "./output.ts";
import { parseCommandArgs, UsageError } from "./usage_error.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** What a positional argument is, for checking its count and for Tab completion. */
export type ArgKind =
  | "domain"
  | "file"
  | "size"
  | "count"
  | "onoff"
  | "seconds"
  | "verb"
  | "name"
  | "snapshot"
  | "state"
  | "host";

/** A source of stdin bytes that the CLI and the REPL share (null at end of input). */
export type ByteReader = (signal?: AbortSignal) => Promise<Uint8Array | null>;

/** Everything a verb needs to run. */
export interface VerbContext {
  client: ApiClient;
  paths: DenovisorPaths;
  io: CommandIo;
  /** Reads the terminal (console, edit's questions). */
  stdin: ByteReader;
  /** Aborted by Ctrl-C in the REPL (follow modes and waits stop). */
  signal: AbortSignal;
}

/** Parsed options of one call: booleans and strings by option name. */
export type OptionValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** One verb. */
export interface DomainVerb {
  name: string;
  /** Other names xl or virsh users type (suspend for pause, dominfo for info). */
  aliases?: string[];
  /** One line for `denovisor help`. */
  summary: string;
  /** The full `--help` text. */
  help: string;
  /** Options beyond --help, --json, --state-dir and --socket. */
  options?: Options;
  /** Whether the verb prints something --json can replace. */
  json?: boolean;
  /** Positional arguments: required ones first, then `optional` more. */
  args: ArgKind[];
  optional?: number;
  /** Tab in the REPL offers only domains in these states (all when absent). */
  completes?: DomainState[];
  run(context: VerbContext, values: OptionValues, positionals: string[]): Promise<number>;
}

/** The options every domain verb takes. */
export function verbOptions(verb: DomainVerb): Options {
  return {
    ...verb.options,
    ...(verb.json ? { json: { type: "boolean" } } : {}),
    help: { type: "boolean", short: "h" },
    ...PATH_OPTIONS,
  } as Options;
}

/** Parses a verb's arguments; throws UsageError on unknown flags or a wrong count. */
export function parseVerbArgs(
  verb: DomainVerb,
  args: string[],
): { values: OptionValues; positionals: string[] } {
  const { values, positionals } = parseCommandArgs(verb.name, args, verbOptions(verb), true);
  if (values.help) return { values, positionals };
  const min = verb.args.length - (verb.optional ?? 0);
  if (positionals.length < min) {
    throw new UsageError(
      `${verb.name}: missing ${describeArg(verb.args[positionals.length])}; ` +
        `usage: ${usageLine(verb)}`,
    );
  }
  if (positionals.length > verb.args.length) {
    throw new UsageError(
      `${verb.name}: unexpected argument '${positionals[verb.args.length]}'; ` +
        `usage: ${usageLine(verb)}`,
    );
  }
  return { values, positionals };
}

function describeArg(kind: ArgKind): string {
  return {
    domain: "the domain name",
    file: "the definition file",
    size: "the size",
    count: "the count",
    onoff: "on or off",
    seconds: "the seconds",
    verb: "the command",
    name: "the new name",
    snapshot: "the snapshot name",
    state: "the state file",
    host: "the destination",
  }[kind];
}

function usageLine(verb: DomainVerb): string {
  return verb.help.split("\n")[0].replace(/^Usage:\s*/, "");
}

/**
 * Runs `verb` with its own client, as `denovisor <verb>` does; errors become messages and
 * exit statuses (see CLIENT_EXIT).
 */
export async function runVerbCli(verb: DomainVerb, args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseVerbArgs(verb, args);
  } catch (error) {
    return reportError(consoleIo, "denovisor", error);
  }
  if (parsed.values.help) {
    console.log(verb.help);
    return CLIENT_EXIT.OK;
  }
  const paths = resolvePaths({
    stateDir: parsed.values["state-dir"] as string | undefined,
    socket: parsed.values.socket as string | undefined,
  });
  using client = new ApiClient(paths.socket);
  const stdin = new SharedStdin();
  try {
    return await verb.run(
      { client, paths, io: consoleIo, stdin: stdin.read, signal: new AbortController().signal },
      parsed.values,
      parsed.positionals,
    );
  } catch (error) {
    return reportError(consoleIo, "denovisor", error);
  } finally {
    stdin.release();
  }
}

/**
 * Runs `verb` with an already open client (the REPL); `args` as typed after the verb.
 * --state-dir and --socket are accepted but the REPL's connection is used.
 */
export async function runVerbWith(
  verb: DomainVerb,
  args: string[],
  context: VerbContext,
): Promise<number> {
  try {
    const { values, positionals } = parseVerbArgs(verb, args);
    if (values.help) {
      context.io.out(verb.help);
      return CLIENT_EXIT.OK;
    }
    return await verb.run(context, values, positionals);
  } catch (error) {
    return reportError(context.io, "error", error);
  }
}

/**
 * Deno.stdin shared by whoever reads the terminal in turn (the REPL's line editor, then a
 * console attach, then the editor again). A read can be abandoned through its signal: the
 * bytes it was waiting for go to the next reader instead of being lost.
 */
export class SharedStdin {
  #reader?: ReadableStreamDefaultReader<Uint8Array>;
  #pending?: Promise<void>;
  readonly #ready: (Uint8Array | null)[] = [];
  readonly #source: () => ReadableStream<Uint8Array>;

  constructor(source: () => ReadableStream<Uint8Array> = () => Deno.stdin.readable) {
    this.#source = source;
  }

  /** The next chunk of input, or null at its end; rejects with the signal's reason on abort. */
  readonly read: ByteReader = async (signal) => {
    while (true) {
      if (this.#ready.length > 0) return this.#ready.shift()!;
      signal?.throwIfAborted();
      this.#reader ??= this.#source().getReader();
      this.#pending ??= this.#reader.read().then(
        ({ value, done }) => {
          this.#pending = undefined;
          this.#ready.push(done ? null : value);
        },
        () => {
          this.#pending = undefined;
          this.#ready.push(null);
        },
      );
      await abortable(this.#pending, signal);
    }
  };

  /** Releases stdin (the command is over). */
  release(): void {
    try {
      this.#reader?.releaseLock();
    } catch {
      // A read is still pending; the process is ending anyway.
    }
  }
}

/** Waits for `promise` unless `signal` aborts first. */
export function abortable<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** `/v1/domains/{name}` with the name escaped. */
/**
 * Prints what a verb did to a domain: the domain's info as JSON with `json`, else
 * `message` and the daemon's note (e.g. "applies at the next start"), if any.
 */
export function reportDomain(
  context: VerbContext,
  info: DomainInfo,
  json: boolean,
  message: string,
): void {
  if (json) {
    context.io.out(formatJson(info));
    return;
  }
  context.io.out(message);
  if (info.note) context.io.out(`Note: ${printable(info.note)}`);
}

export function domainPath(name: string, rest = ""): string {
  return `/v1/domains/${encodeURIComponent(name)}${rest}`;
}

/** A string option's value, if given. */
export function stringOption(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
}
