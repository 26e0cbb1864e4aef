import assert from "node:assert/strict";
import { DenovisorError } from "../../common/errors.ts";
import { checkFreeMemory, VMM_OVERHEAD_BYTES } from "./free_memory.ts";

const MIB = 1024 * 1024;

Deno.test("checkFreeMemory() takes a guest that fits with its VMM and refuses one that does not", () => {
  checkFreeMemory("web", 256 * MIB, 256 * MIB + VMM_OVERHEAD_BYTES);
  assert.throws(
    () => checkFreeMemory("web", 256 * MIB, 300 * MIB),
    (error: unknown) => {
      assert.ok(error instanceof DenovisorError);
      assert.equal(error.code, "conflict");
      assert.match(error.message, /for 'web': it needs 320 MiB .* 300 MiB are available there/);
      return true;
    },
  );
});
