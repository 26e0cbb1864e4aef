import assert from "node:assert/strict";
import { VERSION } from "./version.ts";

Deno.test("VERSION is deno.json's semantic version", async () => {
  const text = await Deno.readTextFile(new URL("../deno.json", import.meta.url));
  assert.equal(VERSION, JSON.parse(text).version);
  assert.match(VERSION, /^\d+\.\d+\.\d+/);
});
