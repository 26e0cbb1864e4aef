/**
 * Tab completion for the REPL: command names, options, and the arguments they take
 * (domain, pool, volume and farm host names from the daemon, cached briefly; file
 * paths; on/off).
 *
 * @module
 */

import { dirname, join } from "node:path";
import type { Completion } from "./line_editor.ts";
import { wordsAtCursor } from "./words.ts";

/** What a positional argument completes to. */
export type ArgCompletion =
  | "domain"
  | "pool"
  | "volume"
  | "file"
  | "onoff"
  | "command"
  | "snapshot"
  | "host"
  | "none";

/** A command (or subcommand) as completion sees it. */
export interface CompletionSpec {
  names: string[];
  /** Options with their dashes ("--json"); the value kind of those that take one. */
  options: Record<string, ArgCompletion | "flag">;
  args: ArgCompletion[];
  /** Domain arguments complete to domains in these states only. */
  domainStates?: string[];
  subcommands?: CompletionSpec[];
}

/** Where names come from (the daemon). */
export interface NameSource {
  /** Domain names, only those in `states` when given. */
  domains(states?: string[]): Promise<string[]>;
  pools(): Promise<string[]>;
  volumes(pool: string): Promise<string[]>;
  /** The farm's host names (none outside a farm). */
  hosts?(): Promise<string[]>;
  /** The snapshot names of `domain` (for snapshot revert, info, delete). */
  snapshots?(domain: string): Promise<string[]>;
}

/** Completes `line` at `cursor` against `specs`. */
export async function completeLine(
  line: string,
  cursor: number,
  specs: CompletionSpec[],
  source: NameSource,
): Promise<Completion> {
  const { before, current } = wordsAtCursor(line, cursor);
  const start = current.start;
  const word = current.text;
  if (before.length === 0) return { start, candidates: specs.flatMap((spec) => spec.names) };
  let spec = specs.find((each) => each.names.includes(before[0]));
  if (!spec) return { start, candidates: [] };
  let rest = before.slice(1);
  if (spec.subcommands) {
    if (rest.length === 0) {
      return { start, candidates: spec.subcommands.flatMap((sub) => sub.names) };
    }
    const sub = spec.subcommands.find((each) => each.names.includes(rest[0]));
    if (!sub) return { start, candidates: [] };
    spec = sub;
    rest = rest.slice(1);
  }
  const previous = rest[rest.length - 1];
  const optionKind = previous === undefined ? undefined : spec.options[previous];
  if (optionKind !== undefined && optionKind !== "flag") {
    return { start, candidates: await values(optionKind, word, rest, source, specs, spec) };
  }
  if (word.startsWith("-")) return { start, candidates: Object.keys(spec.options) };
  const positionals = countPositionals(rest, spec);
  const kind = spec.args[positionals] ?? "none";
  return { start, candidates: await values(kind, word, rest, source, specs, spec) };
}

/** How many positional arguments `words` hold (options and their values skipped). */
function countPositionals(words: string[], spec: CompletionSpec): number {
  let count = 0;
  for (let index = 0; index < words.length; index++) {
    const word = words[index];
    if (word.startsWith("-")) {
      const kind = spec.options[word];
      if (kind !== undefined && kind !== "flag" && !word.includes("=")) index++;
    } else {
      count++;
    }
  }
  return count;
}

async function values(
  kind: ArgCompletion | "flag",
  word: string,
  rest: string[],
  source: NameSource,
  specs: CompletionSpec[],
  spec: CompletionSpec,
): Promise<string[]> {
  switch (kind) {
    case "domain":
      return await source.domains(spec.domainStates).catch(() => []);
    case "pool":
      return await source.pools().catch(() => []);
    case "volume":
      return await volumes(word, rest, source);
    case "file":
      return await files(word);
    case "snapshot": {
      // The domain is the first positional argument before it.
      const domain = rest.find((each) => !each.startsWith("-"));
      if (domain === undefined || source.snapshots === undefined) return [];
      return await source.snapshots(domain).catch(() => []);
    }
    case "host":
      return await source.hosts?.().catch(() => []) ?? [];
    case "onoff":
      return ["on", "off"];
    case "command":
      return specs.flatMap((spec) => spec.names);
    default:
      return [];
  }
}

/** Volume names: "POOL/VOL" forms once a slash is typed, else those of --pool (or default). */
async function volumes(word: string, rest: string[], source: NameSource): Promise<string[]> {
  const slash = word.indexOf("/");
  if (slash > 0) {
    const pool = word.slice(0, slash);
    return (await source.volumes(pool).catch(() => [])).map((name) => `${pool}/${name}`);
  }
  const poolFlag = rest.indexOf("--pool");
  const pool = poolFlag >= 0 ? rest[poolFlag + 1] ?? "default" : "default";
  const [names, pools] = await Promise.all([
    source.volumes(pool).catch(() => []),
    source.pools().catch(() => []),
  ]);
  return [...names, ...pools.map((name) => `${name}/`)];
}

/** Paths completing `word` (directories end in "/"). */
async function files(word: string): Promise<string[]> {
  const directory = word.endsWith("/") ? word : dirname(word);
  const prefix = word.endsWith("/")
    ? word
    : directory === "." && !word.startsWith("./")
    ? ""
    : `${directory}/`.replace(/^\/\//, "/");
  const found: string[] = [];
  try {
    for await (const entry of Deno.readDir(directory === "" ? "." : directory)) {
      if (entry.name.startsWith(".") && !word.split("/").pop()!.startsWith(".")) continue;
      let isDirectory = entry.isDirectory;
      if (entry.isSymlink) {
        isDirectory = await Deno.stat(join(directory, entry.name)).then(
          (info) => info.isDirectory,
          () => false,
        );
      }
      found.push(prefix + entry.name + (isDirectory ? "/" : ""));
      if (found.length > 1000) break;
    }
  } catch {
    // Unreadable or missing directory: nothing to offer.
  }
  return found;
}

/** Names from the daemon, each list kept for `ttlMs` so that Tab stays fast. */
export class CachedNames implements NameSource {
  readonly #cache = new Map<string, { at: number; items: Promise<Named[]> }>();
  readonly #fetch: (path: string) => Promise<Named[]>;
  readonly #ttlMs: number;

  constructor(fetch: (path: string) => Promise<Named[]>, ttlMs = 2000) {
    this.#fetch = fetch;
    this.#ttlMs = ttlMs;
  }

  async domains(states?: string[]): Promise<string[]> {
    const domains = await this.#get("/v1/domains");
    return names(states ? domains.filter((d) => states.includes(d.state ?? "")) : domains);
  }

  async pools(): Promise<string[]> {
    return names(await this.#get("/v1/pools"));
  }

  /** The farm's hosts, down ones too; none from a daemon outside a farm (404). */
  async hosts(): Promise<string[]> {
    return names(await this.#get("/v1/farm/hosts?all=1"));
  }

  async snapshots(domain: string): Promise<string[]> {
    return names(await this.#get(`/v1/domains/${encodeURIComponent(domain)}/snapshots`));
  }

  async volumes(pool: string): Promise<string[]> {
    return names(await this.#get(`/v1/pools/${encodeURIComponent(pool)}/volumes`));
  }

  /** Forgets everything (a domain was defined or removed). */
  invalidate(): void {
    this.#cache.clear();
  }

  #get(path: string): Promise<Named[]> {
    const cached = this.#cache.get(path);
    if (cached && Date.now() - cached.at < this.#ttlMs) return cached.items;
    const items = this.#fetch(path);
    this.#cache.set(path, { at: Date.now(), items });
    items.catch(() => this.#cache.delete(path));
    return items;
  }
}

/** What the list endpoints return, as far as completion cares. */
interface Named {
  name: string;
  state?: string;
}

function names(items: Named[]): string[] {
  return items.map((item) => item.name).sort();
}
