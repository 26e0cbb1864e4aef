import assert from "node:assert/strict";
import { DefinitionError, DefinitionProblems, validateDefinition } from "./definition.ts";

const OPTIONS = { baseDir: "/srv/vm", hostMemoryBytes: 16 * 1024 ** 3 };

function refusal(input: unknown): DefinitionError {
  try {
    validateDefinition(input, OPTIONS);
  } catch (error) {
    assert.ok(error instanceof DefinitionError, `not a DefinitionError: ${error}`);
    return error;
  }
  assert.fail("the definition was accepted");
}

Deno.test("validateDefinition() reports every mistake, each with its path, in reading order", () => {
  const error = refusal({
    name: "web",
    boot: { demo: true },
    vcpus: "two",
    memroy: 5,
    disks: [{ path: "/a" }, { path: 5 }, { path: "/b", sise: 1 }],
    nics: [{ mac: "zz" }],
  });
  assert.ok(error instanceof DefinitionProblems);
  const lines = error.message.split("\n");
  assert.equal(lines.length, 5);
  assert.match(lines[0], /^memroy: unknown field; the known fields here are name, uuid, /);
  assert.deepEqual(lines.slice(1), [
    'vcpus: expected a whole number, got "two"',
    "disks[1].path: expected a string, got 5",
    "disks[2].sise: unknown field; the known fields here are pool, volume, path, format, " +
    "readOnly, serial, transport, rateLimit, bus",
    'nics[0].mac: "zz" is not a MAC address; write six hex pairs like 52:54:00:12:34:56',
  ]);
  // The first problem is the error's path and problem, as with a single mistake.
  assert.equal(error.path, "memroy");
  assert.deepEqual(error.problems.map((each) => each.path), [
    "memroy",
    "vcpus",
    "disks[1].path",
    "disks[2].sise",
    "nics[0].mac",
  ]);
  assert.equal(error.code, "invalid");
});

Deno.test("validateDefinition() goes on past a missing or bad name and a bad boot", () => {
  assert.deepEqual(refusal({ boot: { kernel: 5 }, onCrash: "explode" }).message.split("\n"), [
    "name: missing; every domain needs a name",
    "boot.kernel: expected a string, got 5",
    'onCrash: "explode" is not one of destroy, restart, preserve, rename-restart',
  ]);
});

Deno.test("validateDefinition() keeps a single mistake's message as it was", () => {
  const error = refusal({ name: "ok", boot: { demo: true }, vcpus: 1000 });
  assert.ok(!(error instanceof DefinitionProblems));
  assert.equal(error.message, "vcpus: 1000 is not between 1 and 254");
  assert.equal(refusal([1]).message, "expected an object, got an array");
});

Deno.test("validateDefinition() stops where a later mistake could be a consequence of the first", () => {
  // cdroms depend on the boot kind: after a bad boot, they are not judged.
  const error = refusal({ name: "c", boot: { firmware: 5 }, cdroms: ["/x.iso"], vcpus: 0 });
  assert.deepEqual(error.message.split("\n"), [
    "vcpus: 0 is not between 1 and 254",
    "boot.firmware: expected a string, got 5",
  ]);
});
