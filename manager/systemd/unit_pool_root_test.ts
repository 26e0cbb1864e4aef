import assert from "node:assert/strict";
import { denovisorUnit } from "./unit.ts";

Deno.test("denovisorUnit() passes each pool root to the daemon beside its socket group", () => {
  const unit = denovisorUnit({
    command: ["/usr/bin/denovisor"],
    socketGroup: "denovisor",
    poolRoots: ["/srv/pools", "/data/vm pools"],
  });
  assert.match(
    unit,
    /^ExecStart=\/usr\/bin\/denovisor daemon .* --socket-group denovisor --pool-root \/srv\/pools --pool-root "\/data\/vm pools"$/m,
  );
});
