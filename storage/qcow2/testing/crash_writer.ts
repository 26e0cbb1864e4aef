/**
 * The writer child of the crash-safety test: applies the seeded workload to an image
 * forever, flushing every `flushEvery` operations and reporting "flushed N" after each
 * flush, until the test kills it. Reports go to stdout, or with a log file argument to that
 * file (written synchronously before the next operation), so the test need not drain a
 * pipe while the writer runs flat out.
 *
 * Usage: deno run -A crash_writer.ts <image> <seed> <flushEvery> [log file]
 *
 * @module
 */

import { openImage } from "../../image.ts";
import { applyToDisk, operations } from "./crash_workload.ts";

const [path, seedText, flushText, logPath] = Deno.args;
const log = logPath === undefined ? (line: string) => console.log(line) : (() => {
  const file = Deno.openSync(logPath, { write: true, create: true, append: true });
  const encoder = new TextEncoder();
  return (line: string) => file.writeSync(encoder.encode(line + "\n"));
})();
const image = openImage(path);
const flushEvery = Number(flushText);
const clusterSize = 65536;
log("ready");
let done = 0;
for (const op of operations(Number(seedText), image.size, clusterSize)) {
  applyToDisk(image, op);
  done++;
  if (done % flushEvery === 0) {
    image.flush();
    log(`flushed ${done}`);
  }
}
