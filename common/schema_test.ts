import assert from "node:assert/strict";
import {
  array,
  boolean,
  choice,
  integer,
  literal,
  named,
  object,
  optional,
  propertyKeys,
  type Static,
  string,
  toJsonSchema,
  union,
  withHints,
} from "./schema.ts";
import { checkSchema } from "./schema_check.ts";

const Disk = named("Disk", object({ path: string(), readOnly: optional(boolean()) }));
const Boot = union([
  object({ firmware: string() }, { hints: { conflict: "the firmware loads the OS" } }),
  object({
    kernel: string({ hints: { missing: "give a kernel path" } }),
    cmdline: optional(string()),
  }),
]);
const Domain = object({
  name: string({ pattern: /^[a-z]+$/, hints: { invalid: "is not a valid name" } }),
  vcpus: optional(integer({ minimum: 1, maximum: 8 })),
  memory: optional(union([integer(), string()])),
  boot: Boot,
  disks: optional(array(Disk)),
  console: optional(choice(["serial", "virtio"])),
  demo: optional(literal(true, { hints: { invalid: "or leave it out" } })),
});

Deno.test("Static<> gives the TypeScript type, with optional properties optional", () => {
  const domain: Static<typeof Domain> = { name: "web", boot: { kernel: "/k" } };
  // @ts-expect-error: name is required.
  const nameless: Static<typeof Domain> = { boot: { firmware: "seabios" } };
  // @ts-expect-error: vcpus is a number.
  const wrong: Static<typeof Domain> = { name: "w", boot: { kernel: "/k" }, vcpus: "2" };
  assert.ok(domain && nameless && wrong);
  assert.deepEqual(propertyKeys(Domain), [
    "name",
    "vcpus",
    "memory",
    "boot",
    "disks",
    "console",
    "demo",
  ]);
});

Deno.test("checkSchema() reports every problem with its path, in the words of fields.ts", () => {
  const problems = checkSchema(Domain, {
    nmae: "x",
    vcpus: 9,
    memory: true,
    boot: { firmware: "seabios", cmdline: "quiet" },
    disks: [{ path: "/a" }, { path: 5, extra: 1 }],
    console: "vga",
    demo: false,
  });
  assert.deepEqual(problems.map(({ path, problem }) => `${path}: ${problem}`), [
    "nmae: unknown field; the known fields here are name, vcpus, memory, boot, disks, console, demo",
    "name: missing",
    "vcpus: 9 is not between 1 and 8",
    "memory: expected a whole number or a string, got true",
    "boot.cmdline: not with boot.firmware; the firmware loads the OS",
    "disks[1].extra: unknown field; the known fields here are path, readOnly",
    "disks[1].path: expected a string, got 5",
    'console: "vga" is not one of serial, virtio',
    "demo: expected true, got false; or leave it out",
  ]);
  assert.deepEqual(checkSchema(Domain, { name: "web", boot: { kernel: "/k" } }), []);
});

Deno.test("checkSchema() checks patterns, kinds of values and missing union members", () => {
  const problems = checkSchema(Domain, { name: "Web!", boot: {}, vcpus: 1.5 });
  assert.deepEqual(problems, [
    { path: "name", problem: '"Web!" is not a valid name' },
    { path: "vcpus", problem: "expected a whole number, got 1.5" },
    { path: "boot.kernel", problem: "missing; give a kernel path" },
  ]);
  assert.deepEqual(checkSchema(Domain, [1]), [
    { path: "", problem: "expected an object, got an array" },
  ]);
  const Named = withHints(string(), { expected: "a domain name" });
  assert.deepEqual(checkSchema(Named, 7), [{ path: "", problem: "expected a domain name, got 7" }]);
});

Deno.test("toJsonSchema() is plain JSON Schema with named schemas hoisted as $ref", () => {
  const components: Record<string, unknown> = {};
  const json = toJsonSchema(Domain, components);
  const properties = json.properties as Record<string, Record<string, unknown>>;
  assert.deepEqual(properties.disks, {
    type: "array",
    items: { $ref: "#/components/schemas/Disk" },
  });
  assert.deepEqual(components.Disk, {
    type: "object",
    properties: { path: { type: "string" }, readOnly: { type: "boolean" } },
    required: ["path"],
    additionalProperties: false,
  });
  assert.deepEqual(json.required, ["name", "boot"]);
  assert.equal(properties.name.pattern, "^[a-z]+$");
  // Hints and the optional mark are symbols: JSON never sees them.
  assert.ok(!JSON.stringify(json).includes("hints"));
  assert.deepEqual(Object.getOwnPropertySymbols(JSON.parse(JSON.stringify(json))), []);
});
