import assert from "node:assert/strict";
import { closestWord, didYouMean, editDistance } from "./suggest.ts";

Deno.test("editDistance() counts a transposition as one edit", () => {
  assert.equal(editDistance("strat", "start"), 1);
  assert.equal(editDistance("list", "list"), 0);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("shutdwon", "shutdown"), 1);
});

Deno.test("closestWord() offers likely typos and unique prefixes, not far-fetched words", () => {
  const verbs = ["start", "shutdown", "list", "destroy", "define", "undefine", "info"];
  assert.equal(closestWord("strat", verbs), "start");
  assert.equal(closestWord("lsit", verbs), "list");
  assert.equal(closestWord("destory", verbs), "destroy");
  assert.equal(closestWord("shut", verbs), "shutdown");
  assert.equal(closestWord("xyzzy", verbs), undefined);
  assert.equal(closestWord("d", verbs), undefined);
  assert.equal(didYouMean("--jsno", ["--json", "--help"]), " (did you mean '--json'?)");
  assert.equal(didYouMean("--frobnicate", ["--json", "--help"]), "");
});
