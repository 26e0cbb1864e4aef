import assert from "node:assert/strict";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { VCPU_WORKER_URL } from "./machine.ts";

const ROOT = new URL("..", import.meta.url);

Deno.test("the vCPU Worker's entry module exists and the executable includes it", async () => {
  assert.ok((await Deno.stat(VCPU_WORKER_URL)).isFile);
  // It is loaded by URL at run time: deno compile finds it only when it is named.
  const compile = await Deno.readTextFile(new URL("scripts/compile.sh", ROOT));
  const path = relative(fileURLToPath(ROOT), fileURLToPath(VCPU_WORKER_URL));
  assert.match(compile, new RegExp(`--include ${path.replaceAll(".", "\\.")} `));
});
