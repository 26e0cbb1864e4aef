/**
 * The pool manager's one seam to the image layer: create, inspect, convert, commit and
 * resize volume images. Raw images are handled here directly (sparse files, fallocate,
 * block devices). qcow2 goes through the image layer of the storage contract
 * (storage/image.ts and storage/image_ops/); until that lands in this tree, qcow2 requests
 * are carried out by `qemu-img`, and only this file changes when it does.
 *
 * @module
 */

import { closeFd, errno, libc, openFile } from "../../ffi/libc.ts";
import { O_CLOEXEC, O_RDWR } from "../../ffi/libc_symbols.ts";
import { SyscallError } from "../../ffi/errno.ts";
import { deviceSize } from "./gpt.ts";
import type { ProgressCallback } from "./file_clone.ts";

export type ImageFormat = "raw" | "qcow2";
export type Preallocation = "off" | "metadata" | "full";

/** What the pool manager needs to know about one image. */
export interface VolumeImageInfo {
  format: ImageFormat;
  virtualSize: number;
  /** Bytes allocated on the host for this file alone. */
  actualSize: number;
  /** Absolute paths of the backing chain, nearest first. */
  backingChain: string[];
}

/** A request the image layer refused (bad size, unsupported format...): a usage error. */
export class VolumeImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VolumeImageError";
  }
}

const QCOW2_MAGIC = [0x51, 0x46, 0x49, 0xfb];

/** The format of the image at `path`, from its first bytes (never trusts the name). */
export function probeFormat(path: string): ImageFormat {
  const file = Deno.openSync(path, { read: true });
  try {
    const head = new Uint8Array(4);
    const n = file.readSync(head);
    return n === 4 && QCOW2_MAGIC.every((b, i) => head[i] === b) ? "qcow2" : "raw";
  } finally {
    file.close();
  }
}

/** Options of `createVolumeImage`. */
export interface CreateOptions {
  format: ImageFormat;
  size: number;
  preallocation?: Preallocation;
  /** qcow2 only: an absolute path. */
  backingFile?: string;
  backingFormat?: ImageFormat;
}

/** Creates a new image at `path`; refuses to overwrite an existing file. */
export function createVolumeImage(path: string, options: CreateOptions): void {
  if (options.format === "raw") {
    if (options.backingFile) throw new VolumeImageError("A raw volume cannot have a backing file");
    if (options.preallocation === "metadata") {
      throw new VolumeImageError("preallocation=metadata applies to qcow2 only; use off or full");
    }
    const file = Deno.openSync(path, { write: true, createNew: true, mode: 0o600 });
    file.close();
    try {
      Deno.truncateSync(path, options.size);
      if (options.preallocation === "full") fallocate(path, options.size);
    } catch (error) {
      Deno.removeSync(path);
      throw error;
    }
    return;
  }
  const args = ["create", "-q", "-f", "qcow2"];
  if (options.backingFile) {
    args.push(
      "-b",
      options.backingFile,
      "-F",
      options.backingFormat ?? probeFormat(options.backingFile),
    );
  }
  if (options.preallocation && options.preallocation !== "off") {
    args.push("-o", `preallocation=${options.preallocation}`);
  }
  if (exists(path)) throw new VolumeImageError(`${path} already exists`);
  qemuImg([...args, path, String(options.size)]);
}

/** Format, sizes and backing chain of the image (or block device) at `path`. */
export function volumeImageInfo(path: string): VolumeImageInfo {
  const stat = Deno.statSync(path);
  const format = probeFormat(path);
  if (format === "raw") {
    const size = stat.isBlockDevice ? deviceSize(path) : stat.size;
    return {
      format,
      virtualSize: size,
      actualSize: stat.isBlockDevice ? size : (stat.blocks ?? 0) * 512,
      backingChain: [],
    };
  }
  const chain = JSON.parse(
    qemuImg(["info", "-U", "--output", "json", "--backing-chain", path]),
  ) as {
    "virtual-size": number;
    "actual-size"?: number;
    "full-backing-filename"?: string;
  }[];
  return {
    format,
    virtualSize: chain[0]["virtual-size"],
    actualSize: (stat.blocks ?? 0) * 512,
    backingChain: chain.slice(0, -1).map((image) => image["full-backing-filename"]!),
  };
}

/** Writes the full contents of `source` (its chain flattened) as a new image `target`. */
export function convertVolumeImage(
  source: string,
  target: string,
  options: { format: ImageFormat; onProgress?: ProgressCallback },
): Promise<void> {
  if (exists(target)) throw new VolumeImageError(`${target} already exists`);
  const size = volumeImageInfo(source).virtualSize;
  qemuImg(["convert", "-U", "-O", options.format, source, target]);
  options.onProgress?.(size, size);
  return Promise.resolve();
}

/** Merges the qcow2 overlay `overlay` into its backing file, then empties the overlay. */
export function commitVolumeImage(overlay: string): void {
  qemuImg(["commit", "-q", overlay]);
}

/** Changes the virtual size; shrinking needs `shrink`. */
export function resizeVolumeImage(path: string, size: number, options: { shrink?: boolean } = {}) {
  const info = volumeImageInfo(path);
  if (size < info.virtualSize && !options.shrink) {
    throw new VolumeImageError(
      `Shrinking ${path} from ${info.virtualSize} to ${size} bytes loses data; pass force to do it`,
    );
  }
  if (info.format === "raw") {
    Deno.truncateSync(path, size);
    return;
  }
  qemuImg([
    "resize",
    "-q",
    ...(options.shrink ? ["--shrink"] : []),
    "-f",
    "qcow2",
    path,
    String(size),
  ]);
}

function fallocate(path: string, size: number): void {
  const fd = openFile(path, O_RDWR | O_CLOEXEC);
  try {
    if (libc().fallocate(fd, 0, 0n, BigInt(size)) < 0) {
      throw new SyscallError(`fallocate(${path})`, errno());
    }
  } finally {
    closeFd(fd);
  }
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function qemuImg(args: string[]): string {
  let output: Deno.CommandOutput;
  try {
    output = new Deno.Command("qemu-img", { args, stdout: "piped", stderr: "piped" }).outputSync();
  } catch (error) {
    throw new Error(`Cannot run qemu-img for qcow2 volumes (${(error as Error).message})`);
  }
  if (!output.success) {
    const text = new TextDecoder().decode(output.stderr).trim().replace(/^qemu-img: /, "");
    throw new VolumeImageError(text || `qemu-img ${args[0]} failed`);
  }
  return new TextDecoder().decode(output.stdout);
}
