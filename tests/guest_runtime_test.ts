/** The guest runtime's table parsers, tested on the host by guests/test_runtime.sh. */
import assert from "node:assert/strict";

Deno.test("the guest runtime parses MP tables and ACPI MADTs (host-side C tests)", async () => {
  const script = new URL("../guests/test_runtime.sh", import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command("bash", { args: [script] }).output();
  const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, out);
  assert.match(out, /^[1-9]\d* passed, 0 failed$/m, out);
});
