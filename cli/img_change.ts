/**
 * The `img` subcommands that make or change images: create, convert, resize, commit,
 * rebase, dd.
 *
 * @module
 */

import { createImage, type ImageFormat, imageInfo } from "../storage/image_ops/image_access.ts";
import { commitImage } from "../storage/image_ops/commit.ts";
import { convertImage } from "../storage/image_ops/convert.ts";
import { buildThenReplace } from "../storage/image_ops/files.ts";
import { ddImage } from "../storage/image_ops/dd.ts";
import { rebaseImage } from "../storage/image_ops/rebase.ts";
import { resizeImage } from "../storage/image_ops/resize.ts";
import type { ImgSubcommand } from "./img.ts";
import {
  CACHE_FLAGS,
  checkCacheModes,
  CREATE_OPTION_HELP,
  parseCreateOptions,
  parseFormat,
  parseImageSize,
  parseSizeChange,
  positionals,
} from "./img_args.ts";
import { progressPrinter } from "./img_progress.ts";
import { parseCommandArgs, UsageError } from "./usage_error.ts";

const wantsOptionHelp = (lists: string[] | undefined) =>
  (lists ?? []).some((list) => list === "help" || list === "?");

const create: ImgSubcommand = {
  summary: "Create an image (raw or qcow2, optionally over a backing file)",
  usage:
    `Usage: denovisor img create [-f FMT] [-b BACKING [-F BACKING_FMT]] [-u] [-o OPTIONS] [-q] FILE [SIZE]

Creates FILE (replacing an existing file, as qemu-img does, unless another process
has it open). FMT is raw (default) or qcow2. SIZE takes k, M, G, T suffixes; it may be
left out with -b, and then is the backing file's size. -b makes a qcow2 overlay whose
unwritten ranges read from BACKING (a relative path is relative to FILE's directory);
with -u BACKING is not opened (give SIZE and -F), so it need not exist yet.
-o takes comma-separated key=value options; -o help lists them:
  denovisor img create -f qcow2 -o cluster_size=64k,preallocation=metadata disk.qcow2 10G
  denovisor img create -f qcow2 -b base.qcow2 -F qcow2 overlay.qcow2`,
  run(args) {
    const { values, positionals: rest } = parseCommandArgs("img create", args, {
      f: { type: "string" },
      b: { type: "string" },
      F: { type: "string" },
      o: { type: "string", multiple: true },
      q: { type: "boolean" },
      u: { type: "boolean" },
    }, true);
    if (wantsOptionHelp(values.o)) {
      console.log(CREATE_OPTION_HELP);
      return 0;
    }
    if (rest.length === 0) throw new UsageError("img create: missing FILE; see --help");
    const [path, sizeText] = positionals(
      rest,
      rest.length > 1 ? ["FILE", "SIZE"] : ["FILE"],
      "img create",
    );
    const options = parseCreateOptions(values.o ?? [], "img create");
    const format = parseFormat(values.f, "img create: -f") ?? "raw";
    const backingFile = values.b ?? options.backingFile;
    const backingFormat = parseFormat(values.F, "img create: -F") ?? options.backingFormat;
    const given = sizeText !== undefined ? parseImageSize(sizeText, "img create") : options.size;
    // qemu-img rounds the size up to whole 512-byte sectors.
    const size = given === undefined ? undefined : Math.ceil(given / 512) * 512;
    if (backingFile !== undefined && format !== "qcow2") {
      throw new UsageError(`img create: a backing file needs -f qcow2 (${format} has none)`);
    }
    if (size === undefined && backingFile === undefined) {
      throw new UsageError("img create: missing SIZE (e.g. 10G); see --help");
    }
    // -u: the backing file is not opened (it may not exist yet), so nothing is probed.
    if (
      values.u && backingFile !== undefined && (size === undefined || backingFormat === undefined)
    ) {
      throw new UsageError(
        "img create: -u needs SIZE and -F BACKING_FMT (the backing file is not opened)",
      );
    }
    buildThenReplace(path, "create", true, (temporary) =>
      createImage(temporary, {
        format,
        size,
        clusterSize: options.clusterSize,
        backingFile,
        backingFormat,
        preallocation: options.preallocation,
      }));
    if (!values.q) {
      // With -u the backing file may not exist: describe the image from what was given.
      const made = values.u ? undefined : imageInfo(path, { format });
      const details = formattingLine(format, made?.virtualSize ?? size ?? 0, {
        clusterSize: made?.clusterSize ?? (options.clusterSize ?? 65536),
        backingFile,
        backingFormat: made?.backingFormat ?? backingFormat,
        preallocation: options.preallocation,
      });
      console.log(`Formatting '${path}', ${details}`);
    }
    return 0;
  },
};

/** qemu-img create's "Formatting" line: its options in qemu's order, qcow2 defaults spelled out. */
function formattingLine(
  format: ImageFormat,
  size: number,
  options: {
    clusterSize?: number;
    backingFile?: string;
    backingFormat?: ImageFormat;
    preallocation?: string;
  },
): string {
  const prealloc = options.preallocation !== undefined
    ? [`preallocation=${options.preallocation}`]
    : [];
  if (format === "raw") return [`fmt=raw`, `size=${size}`, ...prealloc].join(" ");
  return [
    "fmt=qcow2",
    `cluster_size=${options.clusterSize}`,
    "extended_l2=off",
    ...prealloc,
    "compression_type=zlib",
    `size=${size}`,
    ...(options.backingFile !== undefined ? [`backing_file=${options.backingFile}`] : []),
    ...(options.backingFormat !== undefined ? [`backing_fmt=${options.backingFormat}`] : []),
    "lazy_refcounts=off",
    "refcount_bits=16",
  ].join(" ");
}

const convert: ImgSubcommand = {
  summary: "Copy an image into a new one, of any format, keeping it sparse",
  usage:
    `Usage: denovisor img convert [-f FMT] [-O OUTPUT_FMT] [-o OPTIONS] [-B BACKING [-F BACKING_FMT]] [-S SIZE] [-n [--target-is-zero]] [-p] [-q] SOURCE OUTPUT

Writes what SOURCE reads as (its whole backing chain) into a new image OUTPUT of
OUTPUT_FMT (raw by default). Only data is written: zero ranges and all-zero 4 KiB
blocks are skipped, so OUTPUT is sparse. OUTPUT is built under a temporary name and
renamed into place when complete; an existing OUTPUT is replaced.
-B makes OUTPUT a qcow2 overlay of BACKING holding only what SOURCE itself stores.
-S sets the zero-detection block size (default 4k); -S 0 writes every byte.
-n writes into the existing image OUTPUT (a block device, say) instead of creating one;
its ranges where SOURCE reads zeroes are zeroed unless --target-is-zero.
-o takes the options of create (cluster_size, preallocation); -p shows progress.
-t/-T (cache modes), -m and -W are accepted for qemu-img scripts: Denovisor writes
through the page cache and flushes before it renames OUTPUT into place.
  denovisor img convert -f raw -O qcow2 -o cluster_size=128k disk.raw disk.qcow2`,
  run(args) {
    const { values, positionals: rest } = parseCommandArgs("img convert", args, {
      ...CACHE_FLAGS,
      m: { type: "string" },
      W: { type: "boolean" },
      f: { type: "string" },
      O: { type: "string" },
      o: { type: "string", multiple: true },
      B: { type: "string" },
      F: { type: "string" },
      p: { type: "boolean" },
      q: { type: "boolean" },
      c: { type: "boolean" },
      n: { type: "boolean" },
      "target-is-zero": { type: "boolean" },
      S: { type: "string" },
      U: { type: "boolean" },
      "force-share": { type: "boolean" },
    }, true);
    checkCacheModes(values, "img convert");
    if (wantsOptionHelp(values.o)) {
      console.log(CREATE_OPTION_HELP);
      return 0;
    }
    if (values.c) throw new UsageError("img convert: -c (compressed output) is not supported");
    const [source, output] = positionals(rest, ["SOURCE", "OUTPUT"], "img convert");
    const options = parseCreateOptions(values.o ?? [], "img convert");
    if (options.size !== undefined) {
      throw new UsageError("img convert: -o size is not allowed; OUTPUT has SOURCE's size");
    }
    if (values["target-is-zero"] && !values.n) {
      throw new UsageError("img convert: --target-is-zero needs -n");
    }
    if (values.n && (values.o ?? []).length > 0) {
      throw new UsageError("img convert: -o creates OUTPUT's options; with -n OUTPUT exists");
    }
    const format = parseFormat(values.O, "img convert: -O") ?? "raw";
    const backingFile = values.B ?? options.backingFile;
    if (backingFile !== undefined && format !== "qcow2") {
      throw new UsageError(`img convert: a backing file needs -O qcow2 (${format} has none)`);
    }
    convertImage(source, output, {
      format,
      sourceFormat: parseFormat(values.f, "img convert: -f"),
      clusterSize: options.clusterSize,
      backingFile,
      backingFormat: parseFormat(values.F, "img convert: -F") ?? options.backingFormat,
      preallocation: options.preallocation,
      sparseSize: values.S === undefined ? undefined : parseSparseSize(values.S),
      existingTarget: values.n,
      targetIsZero: values["target-is-zero"],
      overwrite: true,
      onProgress: values.p && !values.q ? progressPrinter() : undefined,
    });
    return 0;
  },
};

function parseSparseSize(text: string): number {
  const size = parseImageSize(text, "img convert: -S");
  if (size % 512 !== 0) {
    throw new UsageError(`img convert: -S ${text} is not a multiple of 512 bytes`);
  }
  return size;
}

const resize: ImgSubcommand = {
  summary: "Grow (or, with --shrink, shrink) an image's virtual size",
  usage: `Usage: denovisor img resize [-f FMT] [--shrink] [-q] FILE [+|-]SIZE

Sets FILE's virtual size to SIZE, or changes it by +SIZE / -SIZE (k, M, G, T suffixes).
A grown range reads as zeroes. Shrinking discards the data past the new end, so it is
refused without --shrink:
  denovisor img resize disk.qcow2 +10G
  denovisor img resize --shrink disk.raw -1G`,
  run(args) {
    // "-1G" is a size, not a flag: take it out before the flags are parsed.
    const sizes = args.filter((arg) => /^-\d/.test(arg));
    const flags = args.filter((arg) => !/^-\d/.test(arg));
    const { values, positionals: rest } = parseCommandArgs("img resize", flags, {
      f: { type: "string" },
      shrink: { type: "boolean" },
      q: { type: "boolean" },
    }, true);
    const [path, sizeText] = positionals([...rest, ...sizes], ["FILE", "SIZE"], "img resize");
    const change = parseSizeChange(sizeText, "img resize");
    const format = parseFormat(values.f, "img resize: -f");
    let newSize = change.bytes;
    if (change.relative !== 0) {
      const current = imageInfo(path, { format }).virtualSize;
      newSize = current + change.relative * change.bytes;
      if (newSize < 0) {
        throw new UsageError(
          `img resize: ${path} has ${current} bytes; it cannot shrink by ${change.bytes}`,
        );
      }
    }
    resizeImage(path, newSize, { shrink: values.shrink, format });
    if (!values.q) console.log("Image resized.");
    return 0;
  },
};

const commit: ImgSubcommand = {
  summary: "Merge an overlay into its backing image",
  usage: `Usage: denovisor img commit [-f FMT] [-b BASE] [-d] [-p] [-q] FILE

Writes everything the qcow2 overlay FILE stores itself into its backing image, so the
backing image alone reads as FILE did, then empties FILE (it keeps reading the same,
now from the backing image). -d keeps FILE's data instead of emptying it.
-b BASE commits into a deeper image of FILE's chain instead; FILE keeps its data (-b
implies -d) and the images between FILE and BASE no longer match BASE (as qemu-img).
-p shows progress.`,
  run(args) {
    const { values, positionals: rest } = parseCommandArgs("img commit", args, {
      ...CACHE_FLAGS,
      f: { type: "string" },
      b: { type: "string" },
      d: { type: "boolean" },
      p: { type: "boolean" },
      q: { type: "boolean" },
    }, true);
    checkCacheModes(values, "img commit");
    const [path] = positionals(rest, ["FILE"], "img commit");
    commitImage(path, {
      format: parseFormat(values.f, "img commit: -f"),
      base: values.b,
      keepOverlay: values.d,
      onProgress: values.p && !values.q ? progressPrinter() : undefined,
    });
    if (!values.q) console.log("Image committed.");
    return 0;
  },
};

const rebase: ImgSubcommand = {
  summary: "Change an overlay's backing file, keeping what it reads",
  usage: `Usage: denovisor img rebase [-f FMT] -b BACKING [-F BACKING_FMT] [-u] [-p] [-q] FILE

Makes BACKING the backing file of the qcow2 overlay FILE (relative to FILE's directory;
-b "" for none). FILE keeps reading exactly as before: where the old and new backing
files differ, the old contents are written into FILE. -u (unsafe) only changes the
name, for a base that was moved or renamed. FILE is rebuilt beside itself and renamed
into place, so an interruption leaves it unchanged.`,
  run(args) {
    const { values, positionals: rest } = parseCommandArgs("img rebase", args, {
      ...CACHE_FLAGS,
      f: { type: "string" },
      b: { type: "string" },
      F: { type: "string" },
      u: { type: "boolean" },
      p: { type: "boolean" },
      q: { type: "boolean" },
    }, true);
    checkCacheModes(values, "img rebase");
    const [path] = positionals(rest, ["FILE"], "img rebase");
    if (values.b === undefined) {
      throw new UsageError('img rebase: missing -b BACKING (-b "" removes the backing file)');
    }
    if (parseFormat(values.f, "img rebase: -f") === "raw") {
      throw new UsageError("img rebase: raw images have no backing file");
    }
    rebaseImage(path, values.b, {
      backingFormat: parseFormat(values.F, "img rebase: -F"),
      unsafe: values.u,
      onProgress: values.p && !values.q ? progressPrinter() : undefined,
    });
    return 0;
  },
};

const dd: ImgSubcommand = {
  summary: "Copy a range of blocks of an image into a new image",
  usage:
    `Usage: denovisor img dd [-f FMT] [-O OUTPUT_FMT] [bs=BLOCK_SIZE] [count=BLOCKS] [skip=BLOCKS] if=INPUT of=OUTPUT

Creates OUTPUT (OUTPUT_FMT, raw by default; an existing file is replaced) holding
INPUT's bytes from block skip up to block count (from INPUT's start), as qemu-img dd
does. bs defaults to 512 and takes k, M, G suffixes:
  denovisor img dd -O qcow2 bs=1M skip=1 count=64 if=disk.qcow2 of=part.qcow2`,
  run(args) {
    const { values, positionals: rest } = parseCommandArgs("img dd", args, {
      f: { type: "string" },
      O: { type: "string" },
      U: { type: "boolean" },
      "force-share": { type: "boolean" },
    }, true);
    const operands = new Map<string, string>();
    for (const operand of rest) {
      const match = /^(bs|count|skip|if|of)=(.*)$/.exec(operand);
      if (!match) {
        throw new UsageError(
          `img dd: unknown operand '${operand}'; use bs=, count=, skip=, if=, of=`,
        );
      }
      operands.set(match[1], match[2]);
    }
    const input = operands.get("if");
    const output = operands.get("of");
    if (input === undefined || output === undefined) {
      throw new UsageError("img dd: give both if=INPUT and of=OUTPUT");
    }
    const number = (key: string) => {
      const text = operands.get(key);
      return text === undefined ? undefined : parseImageSize(text, `img dd: ${key}`);
    };
    const blockSize = number("bs");
    if (blockSize === 0) throw new UsageError("img dd: bs must be at least 1");
    ddImage(input, output, {
      format: parseFormat(values.O, "img dd: -O"),
      sourceFormat: parseFormat(values.f, "img dd: -f"),
      blockSize,
      count: number("count"),
      skip: number("skip"),
    });
    return 0;
  },
};

/** create, convert, resize, commit, rebase, dd. */
export const IMG_CHANGE_COMMANDS: Record<string, ImgSubcommand> = {
  create,
  convert,
  resize,
  commit,
  rebase,
  dd,
};
