/**
 * An image held in memory, with clusters that are unallocated, zero or data and an
 * optional backing image: enough of a qcow2 overlay's behaviour to test the image
 * operations on any block status without files.
 *
 * @module
 */

import { checkDiskRange, DiskError } from "../disk.ts";
import type { BlockExtent, Image } from "./image_access.ts";

type ClusterState = "unallocated" | "zero" | "data";

/** An in-memory image; `clusterSize` is the granularity of block status. */
export class MemoryImage implements Image {
  readonly format = "qcow2" as const;
  readonly path: string;
  readonly id: string;
  readonly readOnly: boolean;
  readonly backing?: Image;
  readonly clusterSize: number;
  #bytes: Uint8Array;
  #states: ClusterState[];
  flushes = 0;

  constructor(
    path: string,
    size: number,
    options: { backing?: Image; clusterSize?: number; readOnly?: boolean } = {},
  ) {
    this.path = path;
    this.id = path.slice(0, 20);
    this.backing = options.backing;
    this.readOnly = options.readOnly ?? false;
    this.clusterSize = options.clusterSize ?? 65536;
    this.#bytes = new Uint8Array(size);
    this.#states = new Array(Math.ceil(size / this.clusterSize)).fill("unallocated");
  }

  get size(): number {
    return this.#bytes.length;
  }

  /** The state of every cluster, for assertions. */
  get states(): readonly ClusterState[] {
    return this.#states;
  }

  read(offset: number, buffers: readonly Uint8Array[]): void {
    let at = offset;
    for (const buffer of buffers) {
      checkDiskRange(this.path, this.size, at, buffer.length, "read");
      for (let done = 0; done < buffer.length;) {
        const cluster = Math.floor((at + done) / this.clusterSize);
        const end = Math.min(buffer.length, (cluster + 1) * this.clusterSize - at);
        const piece = buffer.subarray(done, end);
        const state = this.#states[cluster];
        if (state === "data") piece.set(this.#bytes.subarray(at + done, at + end));
        else if (state === "zero" || this.backing === undefined) piece.fill(0);
        else this.#readBacking(at + done, piece);
        done = end;
      }
      at += buffer.length;
    }
  }

  write(offset: number, buffers: readonly Uint8Array[]): void {
    this.#writable("write");
    let at = offset;
    for (const buffer of buffers) {
      checkDiskRange(this.path, this.size, at, buffer.length, "write");
      this.#materialize(at, buffer.length);
      this.#bytes.set(buffer, at);
      at += buffer.length;
    }
  }

  writeZeroes(offset: number, length: number): void {
    this.#writable("write zeroes to");
    checkDiskRange(this.path, this.size, offset, length, "write zeroes to");
    this.#materialize(offset, length);
    this.#bytes.fill(0, offset, offset + length);
    for (
      let c = Math.ceil(offset / this.clusterSize);
      c * this.clusterSize < offset + length;
      c++
    ) {
      if ((c + 1) * this.clusterSize <= offset + length || (c + 1) * this.clusterSize > this.size) {
        this.#states[c] = "zero";
      }
    }
  }

  discard(offset: number, length: number): void {
    this.writeZeroes(offset, length);
  }

  flush(): void {
    this.flushes++;
  }

  resize(newSize: number): void {
    this.#writable("resize");
    const bytes = new Uint8Array(newSize);
    bytes.set(this.#bytes.subarray(0, Math.min(newSize, this.size)));
    this.#bytes = bytes;
    const clusters = Math.ceil(newSize / this.clusterSize);
    const states = this.#states.slice(0, clusters);
    while (states.length < clusters) states.push("zero");
    this.#states = states;
  }

  close(): void {}

  blockStatus(offset: number, length: number): BlockExtent {
    const end = Math.min(this.size, offset + length);
    const first = Math.floor(offset / this.clusterSize);
    const state = this.#states[first];
    let next = (first + 1) * this.clusterSize;
    while (next < end && this.#states[next / this.clusterSize] === state) {
      next += this.clusterSize;
    }
    const extent = { offset, length: Math.min(next, end) - offset };
    if (state !== "unallocated") {
      return { ...extent, allocated: true, zero: state === "zero", depth: 0 };
    }
    if (this.backing === undefined || offset >= this.backing.size) {
      return { ...extent, allocated: false, zero: true, depth: 0 };
    }
    const below = this.backing.blockStatus(
      offset,
      Math.min(extent.length, this.backing.size - offset),
    );
    return { ...below, offset, allocated: false, depth: below.depth + 1 };
  }

  #readBacking(offset: number, piece: Uint8Array): void {
    const backing = this.backing!;
    const inside = Math.max(0, Math.min(piece.length, backing.size - offset));
    if (inside > 0) backing.read(offset, [piece.subarray(0, inside)]);
    piece.fill(0, inside);
  }

  /** Turns the clusters under a write into data clusters, copying what they read now. */
  #materialize(offset: number, length: number): void {
    for (
      let c = Math.floor(offset / this.clusterSize);
      c * this.clusterSize < offset + length;
      c++
    ) {
      if (this.#states[c] === "data") continue;
      const start = c * this.clusterSize;
      const piece = this.#bytes.subarray(start, Math.min(this.size, start + this.clusterSize));
      this.read(start, [piece]);
      this.#states[c] = "data";
    }
  }

  #writable(what: string): void {
    if (this.readOnly) throw new DiskError(`Cannot ${what} disk ${this.path}: it is read-only`);
  }
}
