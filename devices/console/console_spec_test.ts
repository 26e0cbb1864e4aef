import assert from "node:assert/strict";
import { ConsoleSpecError, formatConsoleSpec, parseConsoleSpec } from "./console_spec.ts";

Deno.test("parseConsoleSpec() accepts stdio, null and file:PATH", () => {
  assert.deepEqual(parseConsoleSpec("stdio"), { kind: "stdio" });
  assert.deepEqual(parseConsoleSpec("null"), { kind: "null" });
  assert.deepEqual(parseConsoleSpec("file:/tmp/a:b.log"), { kind: "file", path: "/tmp/a:b.log" });
});

Deno.test("parseConsoleSpec() rejects anything else, saying what is accepted", () => {
  for (const text of ["", "STDIO", "pty", "file", "tcp:1234"]) {
    assert.throws(
      () => parseConsoleSpec(text),
      (e: unknown) =>
        e instanceof ConsoleSpecError && e.message.includes("use stdio, file:PATH or null"),
      text,
    );
  }
});

Deno.test("parseConsoleSpec() rejects file: without a path", () => {
  assert.throws(() => parseConsoleSpec("file:"), /has no path/);
});

Deno.test("formatConsoleSpec() round-trips", () => {
  for (const text of ["stdio", "null", "file:/var/log/vm.log"]) {
    assert.equal(formatConsoleSpec(parseConsoleSpec(text)), text);
  }
});
