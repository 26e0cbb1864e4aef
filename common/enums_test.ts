import assert from "node:assert/strict";
import {
  DOMAIN_ACTIONS,
  DOMAIN_STATES,
  IMAGE_FORMATS,
  isOneOf,
  LIFECYCLE_ACTIONS,
  TRANSPORTS,
} from "./enums.ts";

Deno.test("the shared enumerations hold the wire spellings, each once", () => {
  assert.deepEqual([...TRANSPORTS], ["pci", "mmio"]);
  assert.deepEqual([...IMAGE_FORMATS], ["raw", "qcow2"]);
  assert.ok(LIFECYCLE_ACTIONS.includes("rename-restart"));
  assert.ok(DOMAIN_ACTIONS.includes("resume"));
  for (
    const list of [TRANSPORTS, IMAGE_FORMATS, LIFECYCLE_ACTIONS, DOMAIN_ACTIONS, DOMAIN_STATES]
  ) {
    assert.equal(new Set(list).size, list.length);
  }
});

Deno.test("isOneOf() narrows only exact members", () => {
  assert.equal(isOneOf("qcow2", IMAGE_FORMATS), true);
  assert.equal(isOneOf("QCOW2", IMAGE_FORMATS), false);
  assert.equal(isOneOf(undefined, IMAGE_FORMATS), false);
  assert.equal(isOneOf(2, TRANSPORTS), false);
});
