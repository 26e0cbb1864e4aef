import assert from "node:assert/strict";
import { KVM_TEST_TIMEOUT_MS, kvmTestDefinition, kvmUnavailable } from "./kvm_support.ts";

Deno.test("a KVM test fails after its timeout instead of hanging", async () => {
  const hung = kvmTestDefinition("hangs", () => new Promise(() => {}), 50);
  await assert.rejects(hung.fn(), /hangs: timed out after 50 ms/);
  const quick = kvmTestDefinition("returns", async () => {}, 50);
  await quick.fn();
  assert.ok(KVM_TEST_TIMEOUT_MS > 0 && KVM_TEST_TIMEOUT_MS <= 600_000);
  assert.throws(() => kvmTestDefinition("zero", () => {}, 0), /positive number of ms/);
});

Deno.test("a KVM test is ignored and named so where KVM is missing", () => {
  const definition = kvmTestDefinition("boots", () => {});
  assert.equal(definition.ignore, kvmUnavailable !== undefined);
  assert.equal(definition.name, kvmUnavailable ? "boots [SKIPPED: no KVM]" : "boots");
});
