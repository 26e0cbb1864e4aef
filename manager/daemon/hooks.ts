/**
 * Domain hooks, as libvirt's qemu hook: when `<state dir>/hooks/domain` exists, the daemon
 * runs it at each step of a domain's run as
 *
 *     <state dir>/hooks/domain NAME OPERATION SUB-OPERATION -
 *
 * with the domain's definition (JSON) on stdin. OPERATION is `prepare` and `start` (before
 * the VMM is spawned), `started` (it runs), `stopped` (it has ended) and `release` (its
 * resources are freed); SUB-OPERATION is `begin` for the first three and `end` for the
 * last two. A `prepare` or `start` hook that fails (non-zero status, killed, or still
 * running after the timeout) refuses the start with its first line on stderr; the others
 * are only logged, as the domain has started or ended whatever they say.
 *
 * The hook runs as the daemon (root): it must be a regular file owned by root or the
 * daemon's user that no one else may write, or it is not run (and a start is refused).
 * Calls for one domain run one after another in order, so a restart's `prepare` never
 * overtakes the previous run's `release`.
 *
 * @module
 */

import { join } from "node:path";
import { ApiError } from "../../common/http/mod.ts";
import type { DomainDefinition } from "../api_types.ts";

/** When a hook runs. */
export type HookOperation = "prepare" | "start" | "started" | "stopped" | "release";

/** Default bound on one hook run. */
export const DEFAULT_HOOK_TIMEOUT_MS = 30_000;
/** The most of a hook's stderr that is kept (the first line is what is shown). */
const MAX_STDERR = 64 * 1024;
/** How long stderr may stay open once the hook has exited. */
const STDERR_GRACE_MS = 1000;

/** How one hook run went. */
export interface HookResult {
  ok: boolean;
  /** What went wrong, for people: the hook's first stderr line, or how it ended. */
  reason: string;
}

/** The hooks directory of the daemon with state directory `stateDir`. */
export function hooksDirectory(stateDir: string): string {
  return join(stateDir, "hooks");
}

/** Runs the domain hook, if there is one. */
export class DomainHooks {
  /** The hook's path: `<dir>/domain`. */
  readonly path: string;
  readonly #log: (line: string) => void;
  readonly #timeoutMs: number;
  readonly #chains = new Map<string, Promise<unknown>>();

  constructor(dir: string, log: (line: string) => void, timeoutMs = DEFAULT_HOOK_TIMEOUT_MS) {
    this.path = join(dir, "domain");
    this.#log = log;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Runs a `prepare` or `start` hook and waits for it; throws a 409 ApiError that quotes
   * the hook when it fails, so the start is refused.
   */
  async check(operation: "prepare" | "start", definition: DomainDefinition): Promise<void> {
    const result = await this.#queue(definition.name, () => this.run(operation, definition));
    if (result === undefined || result.ok) return;
    throw new ApiError(
      "conflict",
      `The ${operation} hook ${this.path} refused to start domain '${definition.name}': ` +
        result.reason,
    );
  }

  /** Runs a hook whose failure changes nothing, after the domain's earlier ones; logs it. */
  notify(operation: HookOperation, definition: DomainDefinition): Promise<void> {
    return this.#queue(definition.name, async () => {
      const result = await this.run(operation, definition);
      if (result && !result.ok) {
        this.#log(`the ${operation} hook of '${definition.name}' failed: ${result.reason}`);
      }
    }).catch((error) => this.#log(`the ${operation} hook: ${(error as Error).message}`));
  }

  /** Runs the hook once; undefined when there is no hook. Never throws. */
  async run(
    operation: HookOperation,
    definition: DomainDefinition,
  ): Promise<HookResult | undefined> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(this.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      return { ok: false, reason: `cannot read it: ${(error as Error).message}` };
    }
    const unsafe = unsafeHook(info);
    if (unsafe) return { ok: false, reason: unsafe };
    const subOperation = operation === "stopped" || operation === "release" ? "end" : "begin";
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(this.path, {
        args: [definition.name, operation, subOperation, "-"],
        stdin: "piped",
        stdout: "null",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      return { ok: false, reason: `cannot run it: ${(error as Error).message}` };
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, this.#timeoutMs);
    try {
      feed(child.stdin, JSON.stringify(definition, null, 2) + "\n");
      const collected = collect(child.stderr);
      const status = await child.status;
      // A child the hook left behind may hold stderr open: do not wait for it for long.
      const stderr = await collected.text(STDERR_GRACE_MS);
      if (timedOut) {
        return { ok: false, reason: `still running after ${this.#timeoutMs / 1000} s; killed` };
      }
      if (status.success) return { ok: true, reason: "" };
      const line = stderr.split("\n").map((each) => each.trim()).find((each) => each !== "");
      const how = status.signal ? `killed by ${status.signal}` : `exit status ${status.code}`;
      return { ok: false, reason: line ? `${printable(line)} (${how})` : how };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs `task` after the domain's previous hook calls. */
  #queue<T>(name: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#chains.get(name) ?? Promise.resolve();
    const next = previous.then(task, task);
    const settled = next.catch(() => {});
    this.#chains.set(name, settled);
    settled.then(() => {
      if (this.#chains.get(name) === settled) this.#chains.delete(name);
    });
    return next;
  }
}

/** Why the hook may not run as root, or undefined when it may. */
function unsafeHook(info: Deno.FileInfo): string | undefined {
  const uid = Deno.uid() ?? 0;
  if (!info.isFile) return "it is not a regular file";
  if (info.uid !== 0 && info.uid !== uid) {
    return `it is owned by uid ${info.uid}; it must be owned by root (or uid ${uid})`;
  }
  if ((info.mode! & 0o022) !== 0) return "others may write to it; chmod go-w it";
  if ((info.mode! & 0o100) === 0) return "it is not executable; chmod u+x it";
  return undefined;
}

/** Writes the definition to the hook's stdin in the background. */
async function feed(stdin: WritableStream<Uint8Array>, text: string): Promise<void> {
  const writer = stdin.getWriter();
  try {
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
  } catch {
    // The hook did not read its stdin (it may not need the definition).
  }
}

/** Reads `stream` in the background; `text(ms)` waits at most `ms` more for its end. */
function collect(stream: ReadableStream<Uint8Array>): { text(ms: number): Promise<string> } {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const done = (async () => {
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) return;
        if (text.length < MAX_STDERR) text += decoder.decode(value, { stream: true });
      }
    } catch {
      // Cancelled below.
    }
  })();
  return {
    async text(ms) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([done, new Promise((resolve) => timer = setTimeout(resolve, ms))]);
      clearTimeout(timer);
      reader.cancel().catch(() => {});
      return text.slice(0, MAX_STDERR);
    },
  };
}

/** A hook's words, with control characters replaced (they end up in a terminal). */
function printable(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, "?").slice(0, 500);
}
