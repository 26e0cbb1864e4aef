/**
 * Crash safety: a writer process applying a seeded random workload (writes, discards,
 * write-zeroes; a flush every few operations) is SIGKILLed at random moments. After each
 * kill the image must pass `qemu-img check` (leaked clusters allowed, errors not) and hold
 * every operation completed before the last flush the writer reported.
 */
import assert from "node:assert/strict";
import { checkImage, createImage, openImage } from "../storage/image.ts";
import {
  applyToModel,
  type Operation,
  operations,
} from "../storage/qcow2/testing/crash_workload.ts";
import { assertClean, prng, qemuCheck, tempDir } from "../storage/qcow2/testing/qemu_tools.ts";

const WRITER = new URL("../storage/qcow2/testing/crash_writer.ts", import.meta.url).pathname;
const SIZE = 24 * 1024 * 1024;
const CLUSTER = 65536;
const FLUSH_EVERY = 8;

/** Runs the writer on `path` with `seed`, kills it after `delayMs`; returns the last flush. */
async function killedWriter(path: string, seed: number, delayMs: number): Promise<number> {
  const log = `${path}.${seed}.log`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", WRITER, path, String(seed), String(FLUSH_EVERY), log],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const errors = new Response(child.stderr).text();
  const report = () => {
    try {
      return Deno.readTextFileSync(log);
    } catch {
      return "";
    }
  };
  // Wait for the writer to start writing, then let it run for `delayMs`.
  const started = Date.now();
  let exited = false;
  child.status.then(() => exited = true);
  while (!report().includes("ready") && !exited && Date.now() - started < 60_000) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (!exited) await new Promise((resolve) => setTimeout(resolve, delayMs));
  if (!exited) child.kill("SIGKILL");
  const status = await child.status;
  assert.equal(status.signal, "SIGKILL", `the writer ended on its own: ${await errors}`);
  await errors;
  const flushes = [...report().matchAll(/flushed (\d+)/g)];
  return flushes.length === 0 ? 0 : Number(flushes[flushes.length - 1][1]);
}

function take(seed: number, count: number): Operation[] {
  const list: Operation[] = [];
  for (const op of operations(seed, SIZE, CLUSTER)) {
    if (list.length === count) break;
    list.push(op);
  }
  return list;
}

for (const overlay of [false, true]) {
  Deno.test(
    `a writer killed at random moments leaves a consistent ${
      overlay ? "overlay (copy-on-write from a raw base)" : "image"
    } with every flushed write`,
    async () => {
      using dir = tempDir();
      const path = `${dir.path}/crash.qcow2`;
      let model = new Uint8Array(SIZE);
      if (overlay) {
        for (let i = 0; i < SIZE; i += 16) model[i] = (i >> 4) & 0xff;
        Deno.writeFileSync(`${dir.path}/base.raw`, model);
        createImage(path, { format: "qcow2", backingFile: "base.raw", clusterSize: CLUSTER });
      } else {
        createImage(path, { format: "qcow2", size: SIZE, clusterSize: CLUSTER });
      }
      const random = prng(2026);
      let totalFlushed = 0;
      for (let iteration = 0; iteration < 6; iteration++) {
        const seed = 100 + iteration;
        const flushed = await killedWriter(path, seed, 150 + Math.floor(random() * 600));
        totalFlushed += flushed;
        const { code, result } = qemuCheck(path);
        assert.ok(
          code === 0 || code === 3,
          `qemu-img check after kill ${iteration}: ${JSON.stringify(result)}`,
        );
        assert.deepEqual(checkImage(path).errors, []);
        // Replay the flushed operations; the ones after the last flush may or may not be there.
        const ops = take(seed, flushed + FLUSH_EVERY);
        for (const op of ops.slice(0, flushed)) applyToModel(model, op);
        const uncertain = new Uint8Array(SIZE);
        for (const op of ops.slice(flushed)) uncertain.fill(1, op.offset, op.offset + op.length);
        const actual = new Uint8Array(SIZE);
        const image = openImage(path, { readOnly: true });
        try {
          image.read(0, [actual]);
        } finally {
          image.close();
        }
        for (let i = 0; i < SIZE; i++) {
          if (actual[i] !== model[i] && uncertain[i] === 0) {
            assert.fail(
              `after kill ${iteration} (last flush at operation ${flushed}) byte ${i} is ${
                actual[i]
              }, expected ${model[i]}`,
            );
          }
        }
        model = actual; // the next writer continues from what is there
      }
      assert.ok(totalFlushed > 0, "the writers flushed at least once");
      // Leaks from the kills are repaired, after which QEMU finds the image clean.
      const repaired = checkImage(path, { repair: "leaks" });
      assert.equal(repaired.leaksFixed, repaired.leaks);
      assertClean(path);
    },
  );
}
