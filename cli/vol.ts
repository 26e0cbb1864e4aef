/**
 * `denovisor vol`: volumes of storage pools through the daemon (virsh's vol-* verbs, same
 * names). A volume is named `VOL --pool POOL`, or `POOL/VOL`; the pool defaults to
 * "default".
 *
 * @module
 */

import { resolve } from "node:path";
import type {
  VolumeActionRequest,
  VolumeCreateRequest,
  VolumeInfo,
  VolumeProgress,
} from "../manager/api_types.ts";
import { CLIENT_EXIT } from "./output.ts";
import {
  emit,
  findSubcommand,
  poolPath,
  runGroupCli,
  type Subcommand,
  type SubcommandContext,
  volumeFields,
  volumeTable,
  withProgress,
} from "./pool_output.ts";
import { parseSizeArgument, UsageError } from "./usage_error.ts";
import { formatSize } from "../common/units.ts";
import { IMAGE_FORMATS, type ImageFormat, isOneOf } from "../common/enums.ts";

const INTRO = `Volumes are the disk images of a pool. Name one as VOL --pool POOL, or POOL/VOL
(the pool defaults to "default").

Example:
  denovisor vol create web 10G --format qcow2
  denovisor vol clone web web2              # full copy: a reflink on XFS/btrfs
  denovisor vol clone web web3 --linked     # qcow2 overlay on web (read-only base)
  denovisor vol snapshot web before-upgrade
  denovisor vol rollback web before-upgrade`;

const POOL_OPTION = { pool: { type: "string" } } as const;

/** The pool and volume named by `spec` ("VOL" with --pool, or "POOL/VOL"). */
function target(ctx: SubcommandContext, spec = ctx.positionals[0]): [string, string] {
  const slash = spec.indexOf("/");
  if (slash > 0) return [spec.slice(0, slash), spec.slice(slash + 1)];
  return [(ctx.values.pool as string | undefined) ?? "default", spec];
}

async function volumeAction(
  ctx: SubcommandContext,
  action: string,
  body: VolumeActionRequest,
  message: (info: VolumeInfo) => string,
  progress?: string,
): Promise<number> {
  const [pool, volume] = target(ctx);
  const request = ctx.client.post<VolumeInfo>(poolPath(pool, volume, `/${action}`), body);
  const poll = () => ctx.client.get<VolumeProgress>(poolPath(pool, volume, "/progress"));
  const info = progress ? await withProgress(ctx.io, progress, request, poll) : await request;
  return emit(ctx, info, () => message(info));
}

/** The volume named by the first positional, as the daemon describes it. */
function getVolume(ctx: SubcommandContext): Promise<VolumeInfo> {
  const [pool, volume] = target(ctx);
  return ctx.client.get<VolumeInfo>(poolPath(pool, volume));
}

/** A new volume's pool, name and third word: "POOL NAME X", or "NAME X" with --pool. */
function newVolumeWords(ctx: SubcommandContext): [string, string, string | undefined] {
  const p = ctx.positionals;
  return p.length === 3 ? [p[0], p[1], p[2]] : [...target(ctx, p[0]), p[1]];
}

/** `{ format }` from a valid --format, or `{}` without one (to spread into a request). */
function formatField(ctx: SubcommandContext): { format?: ImageFormat } {
  const format = ctx.values.format as string | undefined;
  if (format === undefined) return {};
  if (!isOneOf(format, IMAGE_FORMATS)) {
    throw new UsageError(`--format: '${format}' is not raw or qcow2`);
  }
  return { format };
}

/** The `vol` subcommands. */
export const VOL_SUBCOMMANDS: Subcommand[] = [
  {
    name: "list",
    aliases: ["vol-list"],
    usage: "[POOL]",
    summary: "List a pool's volumes (format+ marks an overlay)",
    options: POOL_OPTION,
    min: 0,
    max: 1,
    run: async (ctx) => {
      const pool = ctx.positionals[0] ?? (ctx.values.pool as string | undefined) ?? "default";
      const volumes = await ctx.client.get<VolumeInfo[]>(poolPath(pool, undefined, "/volumes"));
      return emit(ctx, volumes, () => volumeTable(volumes));
    },
  },
  {
    name: "info",
    aliases: ["vol-info"],
    usage: "VOL [--pool POOL]",
    summary: "Show a volume's format, sizes, backing chain and snapshots",
    options: POOL_OPTION,
    min: 1,
    max: 1,
    run: async (ctx) => {
      const info = await getVolume(ctx);
      return emit(ctx, info, () => volumeFields(info));
    },
  },
  {
    name: "path",
    aliases: ["vol-path"],
    usage: "VOL [--pool POOL]",
    summary: "Print a volume's path",
    options: POOL_OPTION,
    min: 1,
    max: 1,
    run: async (ctx) => {
      const info = await getVolume(ctx);
      return emit(ctx, { path: info.path }, () => info.path);
    },
  },
  {
    name: "create",
    aliases: ["vol-create-as", "create-as"],
    usage: "[POOL] NAME SIZE [--format raw|qcow2] [--preallocation off|metadata|full] " +
      "[--backing VOL]",
    summary: "Create a volume (SIZE with units: 512M, 10G)",
    details: "--backing VOL makes a linked clone: a qcow2 overlay on VOL of the same pool\n" +
      "(SIZE may then be omitted). virsh's vol-create-as POOL NAME SIZE works as well.",
    options: {
      ...POOL_OPTION,
      format: { type: "string" },
      preallocation: { type: "string" },
      "prealloc-metadata": { type: "boolean" },
      backing: { type: "string" },
      "backing-vol": { type: "string" },
    },
    min: 1,
    max: 3,
    run: async (ctx) => {
      const backing = (ctx.values.backing ?? ctx.values["backing-vol"]) as string | undefined;
      // POOL NAME SIZE, NAME SIZE, or NAME alone with --backing.
      const [pool, name, size] = newVolumeWords(ctx);
      if (size === undefined && backing === undefined) {
        throw new UsageError("vol create: give the SIZE (or --backing VOL for a linked clone)");
      }
      const body: VolumeCreateRequest = {
        name,
        ...(size === undefined ? {} : { size: parseSizeArgument(size, "SIZE") }),
        ...formatField(ctx),
        ...(backing ? { backingVolume: backing } : {}),
      };
      const preallocation = ctx.values["prealloc-metadata"]
        ? "metadata"
        : ctx.values.preallocation as string | undefined;
      if (preallocation !== undefined) {
        if (!["off", "metadata", "full"].includes(preallocation)) {
          throw new UsageError("--preallocation: use off, metadata or full");
        }
        body.preallocation = preallocation as VolumeCreateRequest["preallocation"];
      }
      const info = await ctx.client.post<VolumeInfo>(poolPath(pool, undefined, "/volumes"), body);
      return emit(
        ctx,
        info,
        () =>
          `Volume ${info.name} created: ${info.format}, ${
            formatSize(info.virtualSize)
          }, ${info.path}`,
      );
    },
  },
  {
    name: "import",
    aliases: ["vol-import", "vol-upload"],
    usage: "[POOL] NAME FILE [--format raw|qcow2]",
    summary: "Copy a host image file into the pool as a new volume (converting with --format)",
    options: { ...POOL_OPTION, format: { type: "string" } },
    min: 2,
    max: 3,
    run: async (ctx) => {
      const [pool, name, file] = newVolumeWords(ctx);
      if (file === undefined) throw new UsageError("vol import: give the FILE to import");
      const body: VolumeCreateRequest = { name, import: resolve(file), ...formatField(ctx) };
      const info = await withProgress(
        ctx.io,
        `Importing ${file}`,
        ctx.client.post<VolumeInfo>(poolPath(pool, undefined, "/volumes"), body),
        () => ctx.client.get<VolumeProgress>(poolPath(pool, name, "/progress")),
      );
      return emit(ctx, info, () => `Volume ${info.name} imported from ${file} (${info.format})`);
    },
  },
  {
    name: "export",
    aliases: ["vol-export", "vol-download"],
    usage: "VOL FILE [--pool POOL] [--format raw|qcow2]",
    summary: "Write a volume's contents to a new host file",
    options: { ...POOL_OPTION, format: { type: "string" } },
    min: 2,
    max: 2,
    run: (ctx) => {
      const file = resolve(ctx.positionals[1]);
      return volumeAction(
        ctx,
        "export",
        { target: file, ...formatField(ctx) },
        (info) => `Volume ${info.name} exported to ${file}`,
        `Exporting to ${file}`,
      );
    },
  },
  {
    name: "delete",
    aliases: ["vol-delete"],
    usage: "VOL [--pool POOL]",
    summary: "Delete a volume and its snapshots",
    options: POOL_OPTION,
    min: 1,
    max: 1,
    run: async (ctx) => {
      const [pool, volume] = target(ctx);
      await ctx.client.delete(poolPath(pool, volume));
      return emit(ctx, { pool, name: volume, deleted: true }, () => `Volume ${volume} deleted`);
    },
  },
  {
    name: "wipe",
    aliases: ["vol-wipe"],
    usage: "VOL [--pool POOL]",
    summary: "Erase a volume's data (it then reads as zeroes, or as its base)",
    options: POOL_OPTION,
    min: 1,
    max: 1,
    run: (ctx) => volumeAction(ctx, "wipe", {}, (info) => `Volume ${info.name} wiped`),
  },
  {
    name: "resize",
    aliases: ["vol-resize"],
    usage: "VOL SIZE [--pool POOL] [--shrink]",
    summary: "Change a volume's size (+SIZE grows by SIZE); shrinking needs --shrink",
    options: { ...POOL_OPTION, shrink: { type: "boolean" }, delta: { type: "boolean" } },
    min: 2,
    max: 2,
    run: async (ctx) => {
      const text = ctx.positionals[1];
      let size = parseSizeArgument(text.replace(/^\+/, ""), "SIZE");
      if (text.startsWith("+") || ctx.values.delta) size += (await getVolume(ctx)).virtualSize;
      return volumeAction(
        ctx,
        "resize",
        { size, ...(ctx.values.shrink ? { force: true } : {}) },
        (info) => `Volume ${info.name} resized to ${formatSize(info.virtualSize)}`,
      );
    },
  },
  {
    name: "clone",
    aliases: ["vol-clone"],
    usage: "VOL NEWNAME [--pool POOL] [--linked] [--format raw|qcow2]",
    summary: "Copy a volume (a reflink where the filesystem can), or --linked: a qcow2 overlay",
    options: { ...POOL_OPTION, linked: { type: "boolean" }, format: { type: "string" } },
    min: 2,
    max: 2,
    run: (ctx) =>
      volumeAction(
        ctx,
        "clone",
        {
          target: ctx.positionals[1],
          mode: ctx.values.linked ? "linked" : "full",
          ...formatField(ctx),
        },
        (info) => `Volume ${info.name} cloned from ${ctx.positionals[0]}`,
        `Cloning ${ctx.positionals[0]}`,
      ),
  },
  {
    name: "snapshot",
    aliases: ["vol-snapshot", "snapshot-create"],
    usage: "VOL SNAPSHOT [--pool POOL]",
    summary: "Snapshot a volume (btrfs: a subvolume snapshot; else an external qcow2 overlay)",
    options: POOL_OPTION,
    min: 2,
    max: 2,
    run: async (ctx) => {
      const before = await getVolume(ctx);
      return volumeAction(
        ctx,
        "snapshot",
        { target: ctx.positionals[1] },
        (info) =>
          `Snapshot ${ctx.positionals[1]} of volume ${info.name} taken` +
          (before.format === "raw" && info.format === "qcow2"
            ? `; the raw volume is now a qcow2 overlay on it (vol commit merges it back)`
            : ""),
      );
    },
  },
  {
    name: "rollback",
    aliases: ["vol-rollback", "snapshot-revert"],
    usage: "VOL SNAPSHOT [--pool POOL] [--drop-newer]",
    summary: "Return a volume to a snapshot; external snapshots newer than it are deleted " +
      "with --drop-newer, else refused with their names",
    options: { ...POOL_OPTION, "drop-newer": { type: "boolean" } },
    min: 2,
    max: 2,
    run: (ctx) =>
      volumeAction(
        ctx,
        "rollback",
        {
          snapshot: ctx.positionals[1],
          ...(ctx.values["drop-newer"] ? { dropNewer: true } : {}),
        },
        (info) => `Volume ${info.name} rolled back to ${ctx.positionals[1]}`,
      ),
  },
  {
    name: "snapshot-delete",
    aliases: ["vol-snapshot-delete"],
    usage: "VOL SNAPSHOT [--pool POOL]",
    summary: "Delete a snapshot, keeping the volume's current data",
    options: POOL_OPTION,
    min: 2,
    max: 2,
    run: (ctx) =>
      volumeAction(
        ctx,
        "delete-snapshot",
        { snapshot: ctx.positionals[1] },
        (info) => `Snapshot ${ctx.positionals[1]} of volume ${info.name} deleted`,
        "Merging",
      ),
  },
  {
    name: "commit",
    aliases: ["vol-commit", "blockcommit"],
    usage: "VOL [--pool POOL]",
    summary: "Merge the volume's overlay into its newest snapshot (which stops being one)",
    options: POOL_OPTION,
    min: 1,
    max: 1,
    run: (ctx) =>
      volumeAction(ctx, "commit", {}, (info) => `Volume ${info.name} committed`, "Committing"),
  },
  {
    name: "convert",
    aliases: ["vol-convert"],
    usage: "VOL FORMAT [--pool POOL] | VOL --format FORMAT [--pool POOL]",
    summary: "Rewrite a volume as raw or qcow2 (flattens a linked clone)",
    options: { ...POOL_OPTION, format: { type: "string" } },
    min: 1,
    max: 2,
    run: (ctx) => {
      // FORMAT as a word, or --format as create, import, export and clone take it.
      const [, word] = ctx.positionals;
      const option = ctx.values.format as string | undefined;
      if (word !== undefined && option !== undefined && word !== option) {
        throw new UsageError(
          `vol convert: FORMAT '${word}' and --format '${option}' differ; give one`,
        );
      }
      const format = word ?? option;
      if (format === undefined) {
        throw new UsageError(
          "vol convert: missing FORMAT; usage: denovisor vol convert VOL FORMAT " +
            "(or VOL --format FORMAT)",
        );
      }
      if (format !== "raw" && format !== "qcow2") {
        throw new UsageError(`vol convert: FORMAT '${format}' is not raw or qcow2`);
      }
      return volumeAction(
        ctx,
        "convert",
        { format },
        (info) => `Volume ${info.name} is now ${info.format}`,
        "Converting",
      );
    },
  },
];

/** `denovisor vol ...` */
export function volCommand(args: string[]): Promise<number> {
  return runGroupCli("vol", INTRO, VOL_SUBCOMMANDS, args);
}

/** `denovisor vol-create-as ...` and the other virsh names. */
export function volAliasCommand(verb: string): (args: string[]) => Promise<number> {
  return (args) => {
    if (!findSubcommand(VOL_SUBCOMMANDS, verb)) return Promise.resolve(CLIENT_EXIT.USAGE);
    return runGroupCli("vol", INTRO, VOL_SUBCOMMANDS, [verb, ...args]);
  };
}

/** The virsh-style top-level names (vol-list, vol-create-as...). */
export const VOL_ALIASES: string[] = VOL_SUBCOMMANDS.flatMap((s) =>
  (s.aliases ?? []).filter((a) => a.startsWith("vol-"))
);
