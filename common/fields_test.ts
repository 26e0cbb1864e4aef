import assert from "node:assert/strict";
import { describeValue, FieldError, fieldPath, FieldReader } from "./fields.ts";

const fields = new FieldReader();

function refuses(run: () => unknown, message: string, path: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof FieldError);
    assert.equal(error.code, "invalid");
    assert.equal(error.message, message);
    assert.equal(error.path, path);
    return true;
  });
}

Deno.test("fieldPath() and describeValue() word paths and values for messages", () => {
  assert.equal(fieldPath("", "name"), "name");
  assert.equal(fieldPath("disks", 1), "disks[1]");
  assert.equal(fieldPath("disks[1]", "volume"), "disks[1].volume");
  assert.equal(describeValue(undefined), "nothing");
  assert.equal(describeValue([1]), "an array");
  assert.equal(describeValue({}), "an object");
  assert.equal(describeValue(null), "null");
  assert.equal(describeValue(42), "42");
  assert.equal(describeValue("x".repeat(50)), JSON.stringify(`${"x".repeat(40)}...`));
});

Deno.test("FieldReader reads typed fields and names the bad one by its JSON path", () => {
  const object = fields.object({ name: "web", on: true, n: 3, kind: "raw" }, "disks[0]", [
    "name",
    "on",
    "n",
    "kind",
    "absent",
  ]);
  assert.equal(fields.string(object, "name", "disks[0]"), "web");
  assert.equal(fields.string(object, "absent", "disks[0]"), undefined);
  assert.equal(fields.boolean(object, "on", "disks[0]"), true);
  assert.equal(fields.integer(object, "n", "disks[0]", 1, 3), 3);
  assert.equal(fields.choice(object, "kind", "disks[0]", ["raw", "qcow2"]), "raw");
  refuses(
    () => fields.object({ x: 1 }, "boot", ["kernel"]),
    "boot.x: unknown field; the known fields here are kernel",
    "boot.x",
  );
  refuses(() => fields.object([], "", []), "expected an object, got an array", "");
  refuses(
    () => fields.string(object, "n", "disks[0]"),
    "disks[0].n: expected a string, got 3",
    "disks[0].n",
  );
  refuses(
    () => fields.boolean(object, "name", ""),
    'name: expected true or false, got "web"',
    "name",
  );
  refuses(() => fields.integer(object, "n", "", 4, 8), "n: 3 is not between 4 and 8", "n");
  refuses(
    () => fields.integer({ n: 1.5 }, "n", "", 0, 8),
    "n: expected a whole number, got 1.5",
    "n",
  );
  refuses(
    () => fields.choice(object, "kind", "", ["qcow2"]),
    'kind: "raw" is not one of qcow2',
    "kind",
  );
  refuses(() => fields.array(7, "disks"), "disks: expected an array, got 7", "disks");
  assert.equal(fields.array(undefined, "disks"), undefined);
});

Deno.test("FieldReader throws the error its edge asked for", () => {
  class EdgeError extends Error {}
  const edge = new FieldReader((path, problem) => new EdgeError(`${path} -> ${problem}`));
  assert.throws(
    () => edge.string({ a: 1 }, "a", "x"),
    (e: unknown) => e instanceof EdgeError && e.message === "x.a -> expected a string, got 1",
  );
});
