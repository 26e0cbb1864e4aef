/**
 * Operations on whole images, for any format behind storage/image.ts: convert (full
 * copy), commit, compare, resize, rebase, map, measure, dd. `denovisor img` and the pool manager's
 * volume verbs are built on these.
 *
 * ```ts
 * import { compareImages, convertImage } from "./storage/image_ops/mod.ts";
 * convertImage("disk.raw", "disk.qcow2", { format: "qcow2", onProgress: (done, total) => {} });
 * compareImages("disk.raw", "disk.qcow2").equal; // true
 * ```
 *
 * @module
 */

export {
  compareImageContents,
  compareImages,
  type CompareOptions,
  type CompareResult,
} from "./compare.ts";
export { commitImage, commitImageData, type CommitOptions } from "./commit.ts";
export {
  convertImage,
  type ConvertOptions,
  copyImageData,
  type CopyOptions,
  type CopyResult,
} from "./convert.ts";
export { ddImage, type DdOptions } from "./dd.ts";
export { type MapEntry, mapImage, mapOpenImage, type MapOptions } from "./map.ts";
export { measureImage, type MeasureOptions, type MeasureResult } from "./measure.ts";
export { rebaseImage, type RebaseOptions } from "./rebase.ts";
export { resizeImage, type ResizeOptions, type ResizeResult } from "./resize.ts";
export { type ProgressCallback } from "./scan.ts";
