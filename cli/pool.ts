/**
 * `denovisor pool`: storage pools through the daemon (virsh's pool-* verbs, same names).
 *
 * @module
 */

import type { PoolDefinition, PoolInfo, PoolType, VolumeInfo } from "../manager/api_types.ts";
import { CLIENT_EXIT, InvalidInputError } from "./output.ts";
import {
  emit,
  findSubcommand,
  poolFields,
  poolPath,
  poolTable,
  runGroupCli,
  type Subcommand,
} from "./pool_output.ts";
import { UsageError } from "./usage_error.ts";

const TYPES = ["dir", "btrfs", "block", "shared"];

const INTRO = `Storage pools hold volumes (disk images). Types:
  dir     a directory of images; full clones are reflinks on XFS and btrfs
  btrfs   one subvolume per volume; snapshots are btrfs snapshots
  block   a disk whose GPT partitions are the volumes (raw)
  shared  a directory on storage every host mounts; starts only on a mount point

Example:
  denovisor pool define default --type dir --path /var/lib/denovisor/images
  denovisor pool build default && denovisor pool start default
  denovisor pool autostart default`;

async function action(
  ctx: Parameters<Subcommand["run"]>[0],
  verb: string,
  query = "",
): Promise<number> {
  const name = ctx.positionals[0];
  const info = await ctx.client.post<PoolInfo>(poolPath(name, undefined, `/${verb}${query}`));
  const done: Record<string, string> = {
    build: "built",
    start: "started",
    stop: "stopped",
    refresh: "refreshed",
  };
  return emit(ctx, info, () => `Pool ${name} ${done[verb]}`);
}

/** The `pool` subcommands. */
export const POOL_SUBCOMMANDS: Subcommand[] = [
  {
    name: "list",
    aliases: ["pool-list"],
    usage: "",
    summary: "List the pools",
    min: 0,
    max: 0,
    run: async (ctx) => {
      const pools = await ctx.client.get<PoolInfo[]>("/v1/pools");
      return emit(ctx, pools, () => poolTable(pools));
    },
  },
  {
    name: "info",
    aliases: ["pool-info"],
    usage: "POOL",
    summary: "Show a pool's type, state and capacity",
    min: 1,
    max: 1,
    run: async (ctx) => {
      const info = await ctx.client.get<PoolInfo>(poolPath(ctx.positionals[0]));
      return emit(ctx, info, () => poolFields(info));
    },
  },
  {
    name: "define",
    aliases: ["pool-define", "pool-define-as", "define-as", "pool-create-as"],
    usage: "NAME --type TYPE --path PATH [--autostart] | NAME TYPE PATH | FILE.json",
    summary: "Define a pool (inactive until built and started)",
    details: "TYPE is dir, btrfs, block or shared. PATH is a directory, or the disk of a block\n" +
      "pool. virsh's pool-define-as NAME TYPE --target PATH works as well.\n" +
      "pool-create-as also builds and starts the pool.",
    options: {
      type: { type: "string" },
      path: { type: "string" },
      target: { type: "string" },
      source: { type: "string" },
      autostart: { type: "boolean" },
    },
    min: 1,
    max: 3,
    run: async (ctx) => {
      const definition = definitionFrom(ctx.positionals, ctx.values);
      let info = await ctx.client.post<PoolInfo>("/v1/pools", definition);
      if (ctx.calledAs === "pool-create-as") {
        await ctx.client.post(poolPath(info.name, undefined, "/build"));
        info = await ctx.client.post<PoolInfo>(poolPath(info.name, undefined, "/start"));
      }
      return emit(ctx, info, () => `Pool ${info.name} defined (${info.type} at ${info.path})`);
    },
  },
  {
    name: "build",
    aliases: ["pool-build"],
    usage: "POOL [--overwrite]",
    summary: "Make the pool's storage: its directory, or a GPT label on its disk",
    details: "A block pool's disk is only labelled when blank; --overwrite erases what is on it.",
    options: { overwrite: { type: "boolean" } },
    min: 1,
    max: 1,
    run: (ctx) => action(ctx, "build", ctx.values.overwrite ? "?overwrite=1" : ""),
  },
  {
    name: "start",
    aliases: ["pool-start"],
    usage: "POOL",
    summary: "Start (activate) a pool",
    min: 1,
    max: 1,
    run: (ctx) => action(ctx, "start"),
  },
  {
    name: "stop",
    aliases: ["pool-destroy", "destroy"],
    usage: "POOL",
    summary: "Stop (deactivate) a pool; its storage stays",
    min: 1,
    max: 1,
    run: (ctx) => action(ctx, "stop"),
  },
  {
    name: "refresh",
    aliases: ["pool-refresh"],
    usage: "POOL",
    summary: "Re-read the pool's storage",
    min: 1,
    max: 1,
    run: (ctx) => action(ctx, "refresh"),
  },
  {
    name: "snapshot",
    aliases: ["pool-snapshot"],
    usage: "POOL SNAPSHOT",
    summary: "Snapshot every volume of the pool under one name (btrfs: subvolume snapshots)",
    min: 2,
    max: 2,
    run: async (ctx) => {
      const [name, snapshot] = ctx.positionals;
      const volumes = () => ctx.client.get<VolumeInfo[]>(poolPath(name, undefined, "/volumes"));
      const raw = new Set((await volumes()).filter((v) => v.format === "raw").map((v) => v.name));
      const info = await ctx.client.post<PoolInfo>(poolPath(name, undefined, "/snapshot"), {
        target: snapshot,
      });
      const overlaid = (await volumes())
        .filter((v) => raw.has(v.name) && v.format === "qcow2")
        .map((v) => v.name);
      return emit(
        ctx,
        info,
        () =>
          `Snapshot ${snapshot} of pool ${name} taken (${info.volumes} volumes)` +
          (overlaid.length === 0
            ? ""
            : `; raw volumes now qcow2 overlays on it: ${
              overlaid.join(", ")
            } (vol commit merges one back)`),
      );
    },
  },
  {
    name: "rollback",
    aliases: ["pool-rollback"],
    usage: "POOL SNAPSHOT [--drop-newer]",
    summary: "Roll every volume that has the snapshot back to it (later snapshots: --drop-newer)",
    options: { "drop-newer": { type: "boolean" } },
    min: 2,
    max: 2,
    run: async (ctx) => {
      const [name, snapshot] = ctx.positionals;
      const info = await ctx.client.post<PoolInfo>(poolPath(name, undefined, "/rollback"), {
        snapshot,
        ...(ctx.values["drop-newer"] ? { dropNewer: true } : {}),
      });
      return emit(ctx, info, () => `Pool ${name} rolled back to ${snapshot}`);
    },
  },
  {
    name: "undefine",
    aliases: ["pool-undefine"],
    usage: "POOL [--delete]",
    summary: "Forget an inactive pool (--delete also removes its empty storage)",
    options: { delete: { type: "boolean" } },
    min: 1,
    max: 1,
    run: async (ctx) => {
      const name = ctx.positionals[0];
      await ctx.client.delete(poolPath(name, undefined, ctx.values.delete ? "?delete=1" : ""));
      return emit(ctx, { name, undefined: true }, () => `Pool ${name} undefined`);
    },
  },
  {
    name: "delete",
    aliases: ["pool-delete"],
    usage: "POOL",
    summary: "Remove an inactive pool's empty storage and forget the pool",
    min: 1,
    max: 1,
    run: async (ctx) => {
      const name = ctx.positionals[0];
      await ctx.client.delete(poolPath(name, undefined, "?delete=1"));
      return emit(ctx, { name, deleted: true }, () => `Pool ${name} deleted`);
    },
  },
  {
    name: "autostart",
    aliases: ["pool-autostart"],
    usage: "POOL [--disable]",
    summary: "Start the pool whenever the daemon starts (--disable: do not)",
    options: { disable: { type: "boolean" } },
    min: 1,
    max: 1,
    run: async (ctx) => {
      const name = ctx.positionals[0];
      const enabled = !ctx.values.disable;
      const info = await ctx.client.put<PoolInfo>(poolPath(name, undefined, "/autostart"), {
        enabled,
      });
      return emit(
        ctx,
        info,
        () => `Pool ${name} ${enabled ? "marked as" : "unmarked as"} autostarted`,
      );
    },
  },
];

function definitionFrom(positionals: string[], values: Record<string, unknown>): PoolDefinition {
  if (positionals.length === 1 && positionals[0].endsWith(".json") && !values.type) {
    let text: string;
    try {
      text = Deno.readTextFileSync(positionals[0]);
    } catch (error) {
      throw new InvalidInputError(`Cannot read ${positionals[0]}: ${(error as Error).message}`);
    }
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new InvalidInputError(`${positionals[0]} is not JSON: ${(error as Error).message}`);
    }
  }
  const [name, positionalType, positionalPath] = positionals;
  const type = (values.type ?? positionalType) as string | undefined;
  const path = (values.path ?? values.target ?? values.source ?? positionalPath) as
    | string
    | undefined;
  if (!type || !TYPES.includes(type)) {
    throw new UsageError(`pool define: give --type ${TYPES.join("|")}`);
  }
  if (!path) throw new UsageError("pool define: give --path (a directory, or the block device)");
  return {
    name,
    type: type as PoolType,
    path: path.startsWith("/") ? path : `${Deno.cwd()}/${path}`,
    ...(values.autostart ? { autostart: true } : {}),
  };
}

/** `denovisor pool ...` */
export function poolCommand(args: string[]): Promise<number> {
  return runGroupCli("pool", INTRO, POOL_SUBCOMMANDS, args);
}

/** `denovisor pool-list ...` and the other virsh names: the subcommand named by the verb. */
export function poolAliasCommand(verb: string): (args: string[]) => Promise<number> {
  return (args) => {
    if (!findSubcommand(POOL_SUBCOMMANDS, verb)) return Promise.resolve(CLIENT_EXIT.USAGE);
    return runGroupCli("pool", INTRO, POOL_SUBCOMMANDS, [verb, ...args]);
  };
}

/** The virsh-style top-level names (pool-list, pool-define-as...). */
export const POOL_ALIASES: string[] = POOL_SUBCOMMANDS.flatMap((s) =>
  (s.aliases ?? []).filter((a) => a.startsWith("pool-"))
);
