import assert from "node:assert/strict";
import { validateDefinition } from "../domain/definition.ts";
import { DefinitionError } from "../domain/definition_error.ts";
import { sandboxSettings } from "./sandbox_definition.ts";

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
