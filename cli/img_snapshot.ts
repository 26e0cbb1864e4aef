/**
 * `denovisor img snapshot`: qcow2 internal snapshots, as qemu-img snapshot handles them.
 *
 * @module
 */

import { applySnapshot, createSnapshot, deleteSnapshot } from "../storage/qcow2/snapshots.ts";
import { ImageError, probeFormat } from "../storage/image_ops/image_access.ts";
import { readSnapshots } from "../storage/image_ops/qcow2_details.ts";
import type { ImgSubcommand } from "./img.ts";
import { parseFormat, positionals } from "./img_args.ts";
import { snapshotTable } from "./img_report.ts";
import { parseCommandArgs, UsageError } from "./usage_error.ts";

const snapshot: ImgSubcommand = {
  summary: "Create, list, apply or delete qcow2 internal snapshots",
  usage: `Usage: denovisor img snapshot [-f FMT] [-q] (-l | -c NAME | -a NAME | -d NAME) FILE

Internal snapshots of a qcow2 image (kept inside the file, sharing unchanged clusters):
  -l        list them (qemu-img's table)
  -c NAME   create one of the image's current state
  -a NAME   revert the image to snapshot NAME (by name or ID); the snapshot stays
  -d NAME   delete snapshot NAME, freeing the clusters only it used
The image must not be in use (a running VM holds it locked).`,
  run(args) {
    const { values, positionals: rest } = parseCommandArgs("img snapshot", args, {
      f: { type: "string" },
      q: { type: "boolean" },
      l: { type: "boolean" },
      c: { type: "string" },
      a: { type: "string" },
      d: { type: "string" },
      U: { type: "boolean" },
      "force-share": { type: "boolean" },
    }, true);
    const [path] = positionals(rest, ["FILE"], "img snapshot");
    const actions = [values.l ? "-l" : "", values.c, values.a, values.d]
      .filter((action) => action !== undefined && action !== "");
    if (actions.length !== 1) {
      throw new UsageError(
        actions.length === 0
          ? "img snapshot: give one of -l, -c NAME, -a NAME, -d NAME; see --help"
          : "img snapshot: give only one of -l, -c, -a, -d",
      );
    }
    const format = parseFormat(values.f, "img snapshot: -f") ?? probeFormat(path);
    if (values.l) {
      // A raw image has no snapshots; qemu-img lists none for it either.
      const rows = format === "qcow2" ? readSnapshots(path) : [];
      if (rows.length > 0) console.log(["Snapshot list:", ...snapshotTable(rows)].join("\n"));
      return 0;
    }
    if (format !== "qcow2") {
      throw new ImageError(`Image ${path} is ${format}; internal snapshots need qcow2`);
    }
    if (values.c !== undefined) createSnapshot(path, values.c);
    else if (values.a !== undefined) applySnapshot(path, values.a);
    else deleteSnapshot(path, values.d!);
    return 0;
  },
};

/** snapshot. */
export const IMG_SNAPSHOT_COMMANDS: Record<string, ImgSubcommand> = { snapshot };
