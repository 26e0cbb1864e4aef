import assert from "node:assert/strict";
import { validateDefinition } from "../domain/definition.ts";
import { DefinitionError } from "../domain/definition_error.ts";
import { cpuPercent, sandboxSettings } from "./sandbox_definition.ts";
import { VMM_OVERHEAD_BYTES, VMM_OVERHEAD_PER_VCPU_BYTES, vmmCgroupLimits } from "./vmm_sandbox.ts";

const base = { name: "web", boot: { demo: true } };

Deno.test("a definition's sandbox is on by default, off with false, and takes a seccomp mode", () => {
  const plain = validateDefinition(base);
  assert.equal("sandbox" in plain, false, "definitions without it stay as they were");
  assert.deepEqual(sandboxSettings(plain, "log"), { enabled: true, seccomp: "log" });
  const off = validateDefinition({ ...base, sandbox: false });
  assert.deepEqual(sandboxSettings(off, "log"), { enabled: false, seccomp: "off" });
  const strict = validateDefinition({ ...base, sandbox: { seccomp: "strict" } });
  assert.deepEqual(sandboxSettings(strict, "log"), { enabled: true, seccomp: "strict" });
});

Deno.test("a definition's sandbox refuses other values with the field's path", () => {
  assert.throws(() => validateDefinition({ ...base, sandbox: "yes" }), DefinitionError);
  assert.throws(
    () => validateDefinition({ ...base, sandbox: { seccomp: "loud" } }),
    /sandbox\.seccomp/,
  );
  assert.throws(() => validateDefinition({ ...base, sandbox: { jail: true } }), /sandbox\.jail/);
});

Deno.test("a definition's cpu takes a weight and a percentage quota into the VMM's cgroup limits", () => {
  const definition = validateDefinition({ ...base, cpu: { weight: 200, max: "50%" } });
  assert.deepEqual(definition.cpu, { weight: 200, max: "50%" });
  const limits = vmmCgroupLimits({ memoryBytes: 256 << 20, vcpus: 2 }, definition.cpu);
  assert.deepEqual(limits, {
    memoryBytes: (256 << 20) + VMM_OVERHEAD_BYTES + 2 * VMM_OVERHEAD_PER_VCPU_BYTES,
    pids: 1026,
    cpuWeight: 200,
    cpuMaxPercent: 50,
  });
  assert.equal(cpuPercent("150.5%"), 150.5);
  assert.equal("cpu" in validateDefinition(base), false);
  assert.throws(() => validateDefinition({ ...base, cpu: { weight: 0 } }), /cpu\.weight/);
  assert.throws(() => validateDefinition({ ...base, cpu: { max: "0.5%" } }), /cpu\.max/);
  assert.throws(() => validateDefinition({ ...base, cpu: { max: "2" } }), /cpu\.max/);
  assert.throws(() => validateDefinition({ ...base, cpu: { shares: 2 } }), /cpu\.shares/);
});
