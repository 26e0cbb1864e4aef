import assert from "node:assert/strict";
import { grantRead } from "./save_staging.ts";

Deno.test({
  name: "grantRead() keeps a file readable by the group until the last start that needs it is up",
  ignore: Deno.uid() !== 0,
  fn() {
    const path = Deno.makeTempFileSync();
    Deno.chmodSync(path, 0o600);
    const mode = () => Deno.statSync(path).mode! & 0o777;
    try {
      const first = grantRead([path], 64770);
      const second = grantRead([path], 64770);
      assert.equal(mode(), 0o640);
      assert.equal(Deno.statSync(path).gid, 64770);
      first();
      first(); // twice is once
      assert.equal(mode(), 0o640, "a clone still starting can read it");
      second();
      assert.equal(mode(), 0o600);
      assert.equal(Deno.statSync(path).gid, 0);
    } finally {
      Deno.removeSync(path);
    }
  },
});
