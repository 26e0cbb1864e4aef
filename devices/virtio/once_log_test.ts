import assert from "node:assert/strict";
import { OnceLog } from "./once_log.ts";

Deno.test("OnceLog logs each key once", () => {
  const lines: string[] = [];
  const log = new OnceLog((m) => lines.push(m));
  log.log("a", "first");
  log.log("a", "again");
  log.log("b", "second");
  assert.deepEqual(lines, ["first", "second"]);
});

Deno.test("OnceLog stops after its limit of distinct keys and says so", () => {
  const lines: string[] = [];
  const log = new OnceLog((m) => lines.push(m), 2);
  for (let i = 0; i < 10; i++) log.log(`k${i}`, `offence ${i}`);
  assert.deepEqual(lines, [
    "offence 0",
    "offence 1",
    "offence 2 (further offences are not logged)",
  ]);
});
