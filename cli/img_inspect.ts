/**
 * The `img` subcommands that look at images without changing them (check's repair
 * aside): info, check, compare, map, measure.
 *
 * @module
 */

import { checkImage, type ImageInfo, imageInfo } from "../storage/image_ops/image_access.ts";
import {
  countCompressedClusters,
  qcow2Details,
  readSnapshots,
} from "../storage/image_ops/qcow2_details.ts";
import { compareImages } from "../storage/image_ops/compare.ts";
import { mapImage } from "../storage/image_ops/map.ts";
import type { ImgSubcommand } from "./img.ts";
import {
  CACHE_FLAGS,
  checkCacheModes,
  parseCreateOptions,
  parseFormat,
  parseImageSize,
  parseOutput,
  positionals,
} from "./img_args.ts";
import { measureImage } from "../storage/image_ops/measure.ts";
import { progressPrinter } from "./img_progress.ts";
import {
  chainOf,
  checkHuman,
  checkJson,
  checkStatus,
  infoHuman,
  infoJson,
  mapHuman,
  mapJson,
} from "./img_report.ts";
import { parseCommandArgs, UsageError } from "./usage_error.ts";

const json = (value: unknown) => JSON.stringify(value, null, 4);

const detailsOf = (info: ImageInfo) =>
  info.format === "qcow2" ? qcow2Details(info.path) : undefined;
const snapshotsOf = (info: ImageInfo) =>
  (info.snapshots?.length ?? 0) > 0 ? readSnapshots(info.path) : undefined;

const info: ImgSubcommand = {
  summary: "Show an image's format, sizes and backing chain",
  usage: `Usage: denovisor img info [-f FMT] [--output human|json] [--backing-chain] [-U] FILE

Prints the image's format, virtual size, disk size, cluster size and backing file, as
qemu-img info does. --backing-chain describes every image of the chain (a JSON array).
-U (--force-share) is accepted for compatibility: info takes no lock, so it works on
images a running VM holds.`,
  run(args) {
    const { values, positionals: rest } = parseCommandArgs("img info", args, {
      f: { type: "string" },
      output: { type: "string" },
      "backing-chain": { type: "boolean" },
      U: { type: "boolean" },
      "force-share": { type: "boolean" },
    }, true);
    const [path] = positionals(rest, ["FILE"], "img info");
    const output = parseOutput(values.output, "img info");
    const result = imageInfo(path, { format: parseFormat(values.f, "img info: -f") });
    const chain = chainOf(result);
    const images = values["backing-chain"] ? chain : [chain[0]];
    if (output === "json") {
      const one = (i: ImageInfo) => infoJson(i, detailsOf(i), snapshotsOf(i));
      console.log(json(values["backing-chain"] ? images.map(one) : one(images[0])));
    } else {
      console.log(images.map((i) => infoHuman(i, detailsOf(i), snapshotsOf(i))).join("\n\n"));
    }
    return 0;
  },
};

const check: ImgSubcommand = {
  summary: "Check a qcow2 image's metadata; -r repairs",
  usage: `Usage: denovisor img check [-f FMT] [--output human|json] [-r leaks|all] [-q] FILE

Checks a qcow2 image's metadata (refcounts, L1/L2 tables) as qemu-img check does.
-r leaks frees leaked clusters; -r all also repairs what can be repaired.
Exit status: 0 no problems, 1 the check could not be completed, 2 corruptions found,
3 only leaked clusters found, 63 the format has no checks (raw).`,
  run(args) {
    const { values, positionals: rest } = parseCommandArgs("img check", args, {
      ...CACHE_FLAGS,
      f: { type: "string" },
      output: { type: "string" },
      r: { type: "string" },
      q: { type: "boolean" },
      U: { type: "boolean" },
      "force-share": { type: "boolean" },
    }, true);
    checkCacheModes(values, "img check");
    const [path] = positionals(rest, ["FILE"], "img check");
    const output = parseOutput(values.output, "img check");
    if (values.r !== undefined && values.r !== "leaks" && values.r !== "all") {
      throw new UsageError(`img check: unknown repair mode '${values.r}'; use -r leaks or -r all`);
    }
    const format = parseFormat(values.f, "img check: -f") ??
      imageInfo(path).format;
    if (format !== "qcow2") {
      console.error(`denovisor: ${path}: the ${format} format has no metadata to check`);
      return 63;
    }
    const result = checkImage(path, { repair: values.r as "leaks" | "all" | undefined });
    if (output === "human") { for (const error of result.errors) console.error(`ERROR ${error}`); }
    // Corrupt metadata may not even map; the count is a detail, the verdict is not.
    let compressed = 0;
    try {
      compressed = countCompressedClusters(path);
    } catch { /* reported as errors above */ }
    if (output === "json") console.log(json(checkJson(path, result, compressed)));
    else if (!values.q) console.log(checkHuman(result, compressed));
    return checkStatus(result);
  },
};

const compare: ImgSubcommand = {
  summary: "Compare the contents of two images",
  usage: `Usage: denovisor img compare [-f FMT] [-F FMT] [-s] [-p] [-q] FILE1 FILE2

Compares what the two images read as (backing chains included), as qemu-img compare
does. Images of different sizes are equal when the larger holds only zeroes past the
smaller's end; -s (strict) makes a size or allocation difference count.
-f and -F give the formats of FILE1 and FILE2.
Exit status: 0 identical, 1 different, 2 an error (missing file, bad image...).`,
  run(args) {
    try {
      const { values, positionals: rest } = parseCommandArgs("img compare", args, {
        T: { type: "string" },
        f: { type: "string" },
        F: { type: "string" },
        s: { type: "boolean" },
        p: { type: "boolean" },
        q: { type: "boolean" },
        U: { type: "boolean" },
        "force-share": { type: "boolean" },
      }, true);
      checkCacheModes(values, "img compare");
      const [a, b] = positionals(rest, ["FILE1", "FILE2"], "img compare");
      const result = compareImages(a, b, {
        strict: values.s,
        formats: [
          parseFormat(values.f, "img compare: -f"),
          parseFormat(values.F, "img compare: -F"),
        ],
        onProgress: values.p && !values.q ? progressPrinter() : undefined,
      });
      const say = (line: string) => values.q || console.log(line);
      if (result.difference === "size") say("Strict mode: Image size mismatch!");
      else if (result.sizeMismatch) say("Warning: Image size mismatch!");
      if (result.equal) say("Images are identical.");
      else if (result.difference === "allocation") {
        say(`Strict mode: Offset ${result.firstDifference} block status mismatch!`);
      } else if (result.difference === "content") {
        say(`Content mismatch at offset ${result.firstDifference}!`);
      }
      return result.equal ? 0 : 1;
    } catch (error) {
      // compare reserves 1 for "different": every failure, usage included, is 2.
      console.error(`denovisor: ${error instanceof Error ? error.message : String(error)}`);
      return 2;
    }
  },
};

const map: ImgSubcommand = {
  summary: "Show which layer of the chain holds each range",
  usage:
    `Usage: denovisor img map [-f FMT] [--output human|json] [--start-offset OFFSET] [--max-length LEN] FILE

Lists the runs of the virtual disk with the image of the chain that provides them, as
qemu-img map does: JSON with qemu's keys (start, length, depth, present, zero, data,
offset in the file), or a table of the runs holding data, where they are stored and in
which file.`,
  run(args) {
    const { values, positionals: rest } = parseCommandArgs("img map", args, {
      f: { type: "string" },
      output: { type: "string" },
      "start-offset": { type: "string" },
      "max-length": { type: "string" },
      U: { type: "boolean" },
      "force-share": { type: "boolean" },
    }, true);
    const [path] = positionals(rest, ["FILE"], "img map");
    const start = values["start-offset"];
    const max = values["max-length"];
    const output = parseOutput(values.output, "img map");
    const format = parseFormat(values.f, "img map: -f");
    const entries = mapImage(path, {
      format,
      start: start === undefined ? undefined : parseImageSize(start, "img map: --start-offset"),
      length: max === undefined ? undefined : parseImageSize(max, "img map: --max-length"),
    });
    // Files named as qemu-img names them: relative backing names joined to the overlay's.
    const names = chainOf(imageInfo(path, { format })).map((image) => image.path);
    for (const entry of entries) entry.file = names[entry.depth] ?? entry.file;
    console.log(output === "json" ? mapJson(entries) : mapHuman(entries));
    return 0;
  },
};

const measure: ImgSubcommand = {
  summary: "Tell how much host space a new or converted image needs",
  usage:
    `Usage: denovisor img measure [--output human|json] [-O FMT] [-o OPTIONS] (--size SIZE | [-f FMT] FILE)

Prints the bytes an image of format FMT (raw by default) needs on the host: for a new
image of SIZE bytes, or for converting FILE (only its data clusters count), with
qemu-img measure's formulas. -o takes cluster_size, preallocation and backing_file.
  denovisor img measure -O qcow2 --size 10G
  denovisor img measure -O qcow2 -o cluster_size=2M disk.raw`,
  run(args) {
    const { values, positionals: rest } = parseCommandArgs("img measure", args, {
      output: { type: "string" },
      O: { type: "string" },
      o: { type: "string", multiple: true },
      size: { type: "string" },
      f: { type: "string" },
      U: { type: "boolean" },
      "force-share": { type: "boolean" },
    }, true);
    const output = parseOutput(values.output, "img measure");
    const options = parseCreateOptions(values.o ?? [], "img measure");
    if (values.size !== undefined && rest.length > 0) {
      throw new UsageError("img measure: give --size or FILE, not both");
    }
    const [source] = values.size === undefined ? positionals(rest, ["FILE"], "img measure") : [];
    const result = measureImage({
      format: parseFormat(values.O, "img measure: -O") ?? "raw",
      size: values.size === undefined ? undefined : parseImageSize(values.size, "img measure"),
      source,
      sourceFormat: parseFormat(values.f, "img measure: -f"),
      clusterSize: options.clusterSize,
      backingFile: options.backingFile,
      preallocation: options.preallocation,
    });
    if (output === "json") {
      console.log(json({
        ...(result.bitmaps !== undefined ? { bitmaps: result.bitmaps } : {}),
        required: result.required,
        "fully-allocated": result.fullyAllocated,
      }));
    } else {
      console.log(`required size: ${result.required}`);
      console.log(`fully allocated size: ${result.fullyAllocated}`);
      if (result.bitmaps !== undefined) console.log(`bitmaps size: ${result.bitmaps}`);
    }
    return 0;
  },
};

/** info, check, compare, map, measure. */
export const IMG_INSPECT_COMMANDS: Record<string, ImgSubcommand> = {
  info,
  check,
  compare,
  map,
  measure,
};
