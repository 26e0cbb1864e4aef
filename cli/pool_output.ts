/**
 * The machinery shared by `denovisor pool` and `denovisor vol`: one table of subcommands
 * per group (each with virsh's name as an alias), argument checks, the API client, human
 * tables or `--json`, and exit statuses from cli/output.ts. The REPL can run the same
 * subcommands on its own client with `runSubcommandWith`.
 *
 * @module
 */

import type { ParseArgsConfig } from "node:util";
import { ApiClient } from "../manager/api_client.ts";
import type { PoolInfo, VolumeInfo, VolumeProgress } from "../manager/api_types.ts";
import { PATH_OPTIONS, resolvePaths } from "../manager/paths.ts";
import {
  CLIENT_EXIT,
  type CommandIo,
  consoleIo,
  EXIT_STATUS_HELP,
  formatFields,
  formatJson,
  formatSeconds,
  formatTable,
  reportError,
} from "./output.ts";
import { formatSize } from "../common/units.ts";
import { parseCommandArgs, UsageError } from "./usage_error.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;
/** Parsed option values. */
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** What a subcommand runs with. */
export interface SubcommandContext {
  client: ApiClient;
  io: CommandIo;
  values: Values;
  positionals: string[];
  /** The name it was called by (an alias may change how positionals read). */
  calledAs: string;
}

/** One subcommand of `pool` or `vol`. */
export interface Subcommand {
  name: string;
  aliases?: string[];
  /** "NAME SIZE [--format F]": the usage line after `denovisor <group> <name>`. */
  usage: string;
  summary: string;
  /** More help lines. */
  details?: string;
  options?: Options;
  /** Positional count range. */
  min: number;
  max: number;
  run(context: SubcommandContext): Promise<number>;
}

/** The `--help` text of a group. */
export function groupHelp(group: string, intro: string, subcommands: Subcommand[]): string {
  const width = Math.max(...subcommands.map((s) => s.name.length));
  return [
    `Usage: denovisor ${group} <subcommand> [arguments] [options]`,
    "",
    intro,
    "",
    "Subcommands:",
    ...subcommands.map((s) => `  ${s.name.padEnd(width)}  ${s.summary}`),
    "",
    ...(subcommands.some((s) => s.aliases?.length)
      ? [`virsh names work too: denovisor ${group}-list, ${group}-info...; and as subcommands.`]
      : []),
    "Every subcommand takes --help, --json, --state-dir DIR and --socket PATH.",
    "",
    EXIT_STATUS_HELP,
  ].join("\n");
}

function subcommandHelp(group: string, sub: Subcommand): string {
  const aliases = sub.aliases?.length ? `\nAliases: ${sub.aliases.join(", ")}` : "";
  return `Usage: denovisor ${group} ${sub.name} ${sub.usage}\n\n${sub.summary}` +
    (sub.details ? `\n\n${sub.details}` : "") + aliases +
    `\n\nCommon options: --json, --state-dir DIR, --socket PATH, --help`;
}

/** Finds a subcommand by name or alias. */
export function findSubcommand(subcommands: Subcommand[], name: string): Subcommand | undefined {
  return subcommands.find((s) => s.name === name || s.aliases?.includes(name));
}

function parse(group: string, sub: Subcommand, args: string[]) {
  const options = {
    ...sub.options,
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
    ...PATH_OPTIONS,
  } as Options;
  const { values, positionals } = parseCommandArgs(`${group} ${sub.name}`, args, options, true);
  if (values.help) return { values, positionals };
  if (positionals.length < sub.min || positionals.length > sub.max) {
    throw new UsageError(
      `${group} ${sub.name}: ${
        positionals.length < sub.min
          ? "missing arguments"
          : `unexpected argument '${positionals[sub.max]}'`
      }; usage: denovisor ${group} ${sub.name} ${sub.usage}`,
    );
  }
  return { values, positionals };
}

/** Runs `denovisor <group> ARGS` as a command line: own client, stdout/stderr, exit status. */
export async function runGroupCli(
  group: string,
  intro: string,
  subcommands: Subcommand[],
  args: string[],
): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(groupHelp(group, intro, subcommands));
    return name === undefined ? CLIENT_EXIT.USAGE : CLIENT_EXIT.OK;
  }
  const sub = findSubcommand(subcommands, name);
  if (!sub) {
    console.error(
      `denovisor ${group}: unknown subcommand '${name}'; see 'denovisor ${group} --help'`,
    );
    return CLIENT_EXIT.USAGE;
  }
  let parsed;
  try {
    parsed = parse(group, sub, rest);
  } catch (error) {
    return reportError(consoleIo, "denovisor", error);
  }
  if (parsed.values.help) {
    console.log(subcommandHelp(group, sub));
    return CLIENT_EXIT.OK;
  }
  const paths = resolvePaths({
    stateDir: parsed.values["state-dir"] as string | undefined,
    socket: parsed.values.socket as string | undefined,
  });
  using client = new ApiClient(paths.socket);
  try {
    return await sub.run({ client, io: consoleIo, ...parsed, calledAs: name });
  } catch (error) {
    return reportError(consoleIo, `denovisor ${group} ${sub.name}`, error);
  }
}

/** Runs one subcommand on an open client (the REPL). */
export async function runSubcommandWith(
  group: string,
  subcommands: Subcommand[],
  args: string[],
  context: { client: ApiClient; io: CommandIo },
): Promise<number> {
  const [name, ...rest] = args;
  const sub = name === undefined ? undefined : findSubcommand(subcommands, name);
  try {
    if (!sub) throw new UsageError(`${group}: unknown subcommand '${name ?? ""}'`);
    const parsed = parse(group, sub, rest);
    if (parsed.values.help) {
      context.io.out(subcommandHelp(group, sub));
      return CLIENT_EXIT.OK;
    }
    return await sub.run({ ...context, ...parsed, calledAs: name! });
  } catch (error) {
    return reportError(context.io, "error", error);
  }
}

/** Prints `value` as JSON with --json, else the human text. */
export function emit(context: SubcommandContext, value: unknown, human: () => string): number {
  context.io.out(context.values.json ? formatJson(value) : human());
  return CLIENT_EXIT.OK;
}

/** `virsh pool-list`-like table. */
export function poolTable(pools: PoolInfo[]): string {
  return formatTable(
    ["Name", "State", "Type", "Autostart", "Volumes", "Capacity", "Available", "Path"],
    pools.map((p) => [
      p.name,
      p.state,
      p.type,
      p.autostart ? "yes" : "no",
      p.state === "active" ? p.volumes : "-",
      p.capacityBytes === undefined ? "-" : formatSize(p.capacityBytes),
      p.availableBytes === undefined ? "-" : formatSize(p.availableBytes),
      p.path,
    ]),
    { align: ["left", "left", "left", "left", "right", "right", "right", "left"] },
  );
}

/** `virsh pool-info`-like fields. */
export function poolFields(p: PoolInfo): string {
  return formatFields([
    ["Name", p.name],
    ["Type", p.type + (p.shared ? " (shared storage)" : "")],
    ["Path", p.path],
    ["State", p.state],
    ["Autostart", p.autostart ? "yes" : "no"],
    ["Volumes", p.state === "active" ? p.volumes : undefined],
    ["Capacity", p.capacityBytes === undefined ? undefined : formatSize(p.capacityBytes)],
    ["Allocation", p.allocationBytes === undefined ? undefined : formatSize(p.allocationBytes)],
    ["Available", p.availableBytes === undefined ? undefined : formatSize(p.availableBytes)],
    // Files in the pool that are not volumes (bad names, FIFOs, folders): listed, not used.
    ["Skipped", p.skipped?.length ? p.skipped.join(", ") : undefined],
  ]);
}

/** `virsh vol-list --details`-like table. */
export function volumeTable(volumes: VolumeInfo[]): string {
  return formatTable(
    ["Name", "Format", "Capacity", "Allocation", "Snapshots", "Used by", "Path"],
    volumes.map((v) => [
      v.name,
      v.format + (v.backingChain.length > 0 ? "+" : ""),
      formatSize(v.virtualSize),
      formatSize(v.allocatedSize),
      v.snapshots.length,
      v.usedBy ?? "-",
      v.path,
    ]),
    { align: ["left", "left", "right", "right", "right", "left", "left"] },
  );
}

/** `virsh vol-info`-like fields, with the backing chain and snapshots. */
export function volumeFields(v: VolumeInfo): string {
  return formatFields([
    ["Name", v.name],
    ["Pool", v.pool],
    ["Path", v.path],
    ["Format", v.format],
    ["Capacity", `${formatSize(v.virtualSize)} (${v.virtualSize} bytes)`],
    ["Allocation", formatSize(v.allocatedSize)],
    ["Backing chain", v.backingChain.join(" <- ") || undefined],
    ["Snapshots", v.snapshots.join(", ") || undefined],
    ["Used by", v.usedBy],
  ]);
}

/**
 * Waits for a long volume operation. On a terminal it shows how far the copy has come,
 * asked of the daemon every half second (`progress`, GET .../volumes/{vol}/progress), or
 * the time spent when the operation reports no bytes; a line with the total time follows
 * operations of a second or more.
 */
export async function withProgress<T>(
  io: CommandIo,
  what: string,
  work: Promise<T>,
  progress?: () => Promise<VolumeProgress>,
): Promise<T> {
  const started = performance.now();
  const tty = Deno.stderr.isTerminal();
  const encoder = new TextEncoder();
  let polling = false;
  const show = async () => {
    if (polling) return;
    polling = true;
    try {
      const seconds = formatSeconds((performance.now() - started) / 1000);
      const now = await progress?.().catch(() => undefined);
      const bytes = now?.totalBytes
        ? ` ${Math.floor((100 * (now.doneBytes ?? 0)) / now.totalBytes)}% ` +
          `(${formatSize(now.doneBytes ?? 0)} of ${formatSize(now.totalBytes)}),`
        : "";
      Deno.stderr.writeSync(encoder.encode(`\r\x1b[K${what}...${bytes} ${seconds}`));
    } finally {
      polling = false;
    }
  };
  const timer = tty ? setInterval(show, 500) : undefined;
  try {
    const result = await work;
    const seconds = (performance.now() - started) / 1000;
    if (tty) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
    if (seconds >= 1) io.err(`${what}: done in ${formatSeconds(seconds)}`);
    return result;
  } finally {
    if (timer !== undefined) clearInterval(timer);
  }
}

/** `/v1/pools/{pool}[/volumes[/{vol}]]` with names escaped. */
export function poolPath(pool: string, volume?: string, rest = ""): string {
  const base = `/v1/pools/${encodeURIComponent(pool)}`;
  if (volume === undefined) return base + rest;
  return `${base}/volumes/${encodeURIComponent(volume)}${rest}`;
}
