/**
 * Test helpers around QEMU's own tools (qemu-img, qemu-io), the independent judge of the
 * qcow2 tests, plus a seeded PRNG and whole-image comparison.
 *
 * @module
 */

import assert from "node:assert/strict";
import { openImage } from "../../image.ts";
import { RawDisk } from "../../raw_disk.ts";

/** A finished command. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command args` to completion. */
export function run(command: string, args: string[]): Run {
  const out = new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).outputSync();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** Runs qemu-img and asserts it succeeded; returns stdout. */
export function qemuImg(...args: string[]): string {
  const r = run("qemu-img", args);
  assert.equal(r.code, 0, `qemu-img ${args.join(" ")}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Runs qemu-io commands on an image (format given) and asserts success. */
export function qemuIo(path: string, format: string, ...commands: string[]): string {
  const args = ["-f", format];
  for (const command of commands) args.push("-c", command);
  const r = run("qemu-io", [...args, path]);
  assert.equal(r.code, 0, `qemu-io ${commands.join("; ")}: ${r.stdout}${r.stderr}`);
  assert.doesNotMatch(r.stdout + r.stderr, /error|failed|Pattern verification/i, r.stdout);
  return r.stdout;
}

/** `qemu-img check` as JSON, plus its exit code (0 clean, 2 corrupt, 3 leaks only). */
export function qemuCheck(path: string): { code: number; result: Record<string, unknown> } {
  const r = run("qemu-img", ["check", "--output=json", path]);
  let result: Record<string, unknown> = {};
  try {
    result = JSON.parse(r.stdout);
  } catch {
    result = { output: r.stdout + r.stderr };
  }
  return { code: r.code, result };
}

/** Asserts `qemu-img check` finds neither errors nor leaks. */
export function assertClean(path: string): void {
  const { code, result } = qemuCheck(path);
  assert.equal(code, 0, `qemu-img check ${path}: ${JSON.stringify(result)}`);
}

/** Asserts `qemu-img compare` finds the two images equal (formats probed as given). */
export function assertSameContent(a: string, aFormat: string, b: string, bFormat: string): void {
  const r = run("qemu-img", ["compare", "-f", aFormat, "-F", bFormat, a, b]);
  assert.equal(r.code, 0, `qemu-img compare ${a} ${b}: ${r.stdout}${r.stderr}`);
}

/** A temporary folder under /var/tmp, removed by `using`. */
export function tempDir(prefix = "denovisor-qcow2-"): { path: string } & Disposable {
  const path = Deno.makeTempDirSync({ dir: "/var/tmp", prefix });
  return { path, [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }) };
}

/** xorshift32: the same sequence for the same seed. */
export function prng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}

/**
 * Asserts Denovisor reads the image at `path` exactly as the raw file `reference` (made by
 * `qemu-img convert -O raw`), chunk by chunk; chunks that are holes in the reference are
 * compared as zeroes without reading it.
 */
export function assertReadsLike(path: string, reference: string, chunk = 4 * 1024 * 1024): void {
  const image = openImage(path, { readOnly: true });
  const raw = RawDisk.open(reference, { readOnly: true });
  try {
    assert.equal(image.size, raw.size, "virtual sizes differ");
    const mine = new Uint8Array(chunk);
    const theirs = new Uint8Array(chunk);
    for (let at = 0; at < raw.size; at += chunk) {
      const length = Math.min(chunk, raw.size - at);
      const a = mine.subarray(0, length);
      image.read(at, [a]);
      const status = raw.blockStatus(at, length);
      if (status.zero && status.length === length) {
        assert.ok(isZero(a), `bytes at ${at} should be zeroes`);
        continue;
      }
      const b = theirs.subarray(0, length);
      raw.read(at, [b]);
      if (!equalBytes(a, b)) {
        let first = 0;
        while (a[first] === b[first]) first++;
        assert.fail(`${path} differs from ${reference} at byte ${at + first}`);
      }
    }
  } finally {
    image.close();
    raw.close();
  }
}

/** Whether every byte is zero, fast for large arrays. */
export function isZero(bytes: Uint8Array): boolean {
  const words = Math.floor(bytes.length / 4);
  if (bytes.byteOffset % 4 === 0) {
    const view = new Uint32Array(bytes.buffer, bytes.byteOffset, words);
    for (let i = 0; i < words; i++) if (view[i] !== 0) return false;
    for (let i = words * 4; i < bytes.length; i++) if (bytes[i] !== 0) return false;
    return true;
  }
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Byte equality, fast for large arrays. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  const words = Math.floor(a.length / 4);
  if (a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0) {
    const x = new Uint32Array(a.buffer, a.byteOffset, words);
    const y = new Uint32Array(b.buffer, b.byteOffset, words);
    for (let i = 0; i < words; i++) if (x[i] !== y[i]) return false;
    for (let i = words * 4; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
