/**
 * The seeded workload of the crash-safety test, shared by the writer child (which applies
 * it to an image and reports each flush) and the test (which replays it on a model).
 *
 * @module
 */

import type { Disk } from "../../disk.ts";
import { prng } from "./qemu_tools.ts";

/** One operation of the workload. */
export interface Operation {
  kind: "write" | "discard" | "zero";
  offset: number;
  length: number;
  /** Writes put `(fill + i) & 0xff` at byte i. */
  fill: number;
}

/** The endless operation sequence for `seed` on a disk of `size` bytes. */
export function* operations(seed: number, size: number, clusterSize: number): Generator<Operation> {
  const random = prng(seed);
  const pick = (max: number) => Math.floor(random() * max);
  for (let n = 0;; n++) {
    const roll = random();
    const length = 1 + pick(3 * clusterSize);
    const offset = pick(size - length);
    const kind = roll < 0.8 ? "write" : roll < 0.9 ? "discard" : "zero";
    yield { kind, offset, length, fill: (seed * 131 + n * 7) & 0xff };
  }
}

/** The bytes a write operation writes. */
export function operationData(op: Operation): Uint8Array {
  const data = new Uint8Array(op.length);
  for (let i = 0; i < op.length; i++) data[i] = (op.fill + i) & 0xff;
  return data;
}

/** Applies `op` to a disk. */
export function applyToDisk(disk: Disk, op: Operation): void {
  if (op.kind === "write") disk.write(op.offset, [operationData(op)]);
  else if (op.kind === "discard") disk.discard(op.offset, op.length);
  else disk.writeZeroes(op.offset, op.length, { unmap: op.fill % 2 === 0 });
}

/** Applies `op` to an in-memory model of the disk. */
export function applyToModel(model: Uint8Array, op: Operation): void {
  if (op.kind === "write") model.set(operationData(op), op.offset);
  else model.fill(0, op.offset, op.offset + op.length);
}
