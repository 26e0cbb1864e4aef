/**
 * The image operations on random three-level qcow2 chains written by qemu-io (data,
 * zeroes, discards, unaligned ranges, different cluster and virtual sizes per layer),
 * with qemu-img as the judge of every result.
 */
import assert from "node:assert/strict";
import { commitImage } from "./commit.ts";
import { compareImages } from "./compare.ts";
import { convertImage } from "./convert.ts";
import { rebaseImage } from "./rebase.ts";
import { runTool, toolOk } from "./qemu_tools_test_support.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** A small deterministic generator (mulberry32), so a failure can be replayed by seed. */
function random(seed: number): (below: number) => number {
  let state = seed >>> 0;
  return (below) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * below);
  };
}

/** qemu-io commands writing, zeroing and discarding random (512-aligned) ranges. */
function workload(next: (below: number) => number, size: number, count: number): string[] {
  const commands: string[] = [];
  for (let i = 0; i < count; i++) {
    const offset = next(size / 512) * 512;
    const length = Math.min(size - offset, (1 + next(3 * 256)) * 512);
    if (length <= 0) continue;
    const kind = next(10);
    if (kind < 6) commands.push(`write -P ${1 + next(250)} ${offset} ${length}`);
    else if (kind < 8) commands.push(`write -z ${offset} ${length}`);
    else commands.push(`discard ${offset} ${length}`);
  }
  return commands;
}

function chain(dir: string, seed: number): { layers: string[]; expected: string } {
  const next = random(seed);
  const clusters = [4 * KiB, 64 * KiB, 16 * KiB];
  const sizes = [6 * MiB, 8 * MiB, 7 * MiB];
  const layers: string[] = [];
  for (let level = 0; level < 3; level++) {
    const path = `${dir}/layer${level}.qcow2`;
    const backing = level === 0 ? [] : ["-b", `layer${level - 1}.qcow2`, "-F", "qcow2"];
    toolOk(
      "qemu-img",
      "create",
      "-q",
      "-f",
      "qcow2",
      "-o",
      `cluster_size=${clusters[level]}`,
      ...backing,
      path,
      String(sizes[level]),
    );
    const commands = workload(next, sizes[level], 40);
    toolOk("qemu-io", "-f", "qcow2", ...commands.flatMap((c) => ["-c", c]), path);
    layers.push(path);
  }
  const expected = `${dir}/expected.raw`;
  toolOk("qemu-img", "convert", "-O", "raw", layers[2], expected);
  return { layers, expected };
}

function withChain(seed: number, body: (layers: string[], expected: string, dir: string) => void) {
  const dir = Deno.makeTempDirSync({ prefix: `random_chain_${seed}_` });
  try {
    const { layers, expected } = chain(dir, seed);
    body(layers, expected, dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

for (const seed of [1, 2, 3]) {
  Deno.test(`convert, compare and commit agree with qemu-img on random chain ${seed}`, () =>
    withChain(seed, (layers, expected, dir) => {
      const top = layers[2];
      convertImage(top, `${dir}/flat.qcow2`, { format: "qcow2", clusterSize: 8 * KiB });
      toolOk("qemu-img", "check", `${dir}/flat.qcow2`);
      toolOk("qemu-img", "compare", `${dir}/flat.qcow2`, expected);
      assert.equal(compareImages(top, expected).equal, true);
      // Strict mode judges block status; both tools give the same verdict on each pair.
      for (const [a, b] of [[top, `${dir}/flat.qcow2`], [top, top], [layers[1], layers[0]]]) {
        const verdict = runTool("qemu-img", "compare", "-s", a, b).code;
        assert.equal(compareImages(a, b, { strict: true }).equal ? 0 : 1, verdict, `${a} ${b}`);
      }
      // One changed byte: both tools report the same first differing sector.
      const at = 512 * random(seed * 7)(7 * MiB / 512) + 100;
      toolOk("qemu-io", "-f", "qcow2", "-c", `write -P 0xfe ${at} 1`, `${dir}/flat.qcow2`);
      const theirs = runTool("qemu-img", "compare", `${dir}/flat.qcow2`, expected);
      const ours = compareImages(`${dir}/flat.qcow2`, expected);
      assert.equal(theirs.code, 1, theirs.output);
      assert.match(theirs.output, new RegExp(`offset ${ours.firstDifference}!`));
      commitImage(top);
      toolOk("qemu-img", "check", layers[1]);
      toolOk("qemu-img", "check", top);
      toolOk("qemu-img", "compare", top, expected);
      // The middle layer is what qemu-img commit makes of the same chain (built again
      // from the same seed).
      Deno.mkdirSync(`${dir}/q`);
      const same = chain(`${dir}/q`, seed);
      toolOk("qemu-img", "commit", "-q", same.layers[2]);
      toolOk("qemu-img", "compare", layers[1], same.layers[1]);
    }));

  Deno.test(`commit into the bottom of random chain ${seed} matches qemu-img commit -b`, () =>
    withChain(seed, (layers, expected, dir) => {
      commitImage(layers[2], { base: layers[0] });
      Deno.mkdirSync(`${dir}/q`);
      const same = chain(`${dir}/q`, seed);
      toolOk("qemu-img", "commit", "-q", "-b", same.layers[0], same.layers[2]);
      toolOk("qemu-img", "check", layers[0]);
      toolOk("qemu-img", "compare", layers[0], same.layers[0]);
      // -b implies -d: the top keeps its data and still reads as before.
      toolOk("qemu-img", "compare", layers[2], expected);
    }));

  Deno.test(`rebase onto the bottom layer keeps random chain ${seed} reading the same`, () =>
    withChain(seed, (layers, expected) => {
      rebaseImage(layers[2], "layer0.qcow2", { backingFormat: "qcow2" });
      toolOk("qemu-img", "check", layers[2]);
      toolOk("qemu-img", "compare", layers[2], expected);
    }));
}
