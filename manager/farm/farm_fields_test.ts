import assert from "node:assert/strict";
import { validateDefinition } from "../domain/definition.ts";

Deno.test("validateDefinition() keeps ha and placement and refuses malformed ones", () => {
  const definition = validateDefinition({
    name: "web",
    boot: { demo: true },
    ha: true,
    placement: { labels: { rack: "a" }, antiAffinity: "web", host: "h1" },
  });
  assert.equal(definition.ha, true);
  assert.deepEqual(definition.placement, {
    host: "h1",
    antiAffinity: "web",
    labels: { rack: "a" },
  });
  assert.equal(validateDefinition({ name: "x", boot: { demo: true } }).ha, undefined);
  assert.throws(() => validateDefinition({ name: "x", boot: { demo: true }, ha: 1 }), /ha/);
  assert.throws(
    () => validateDefinition({ name: "x", boot: { demo: true }, placement: { zone: "a" } }),
    /placement.*zone/,
  );
  assert.throws(
    () => validateDefinition({ name: "x", boot: { demo: true }, placement: { labels: { a: 1 } } }),
    /placement.labels.a: expected a string/,
  );
});
