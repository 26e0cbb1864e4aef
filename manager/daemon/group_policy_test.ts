import assert from "node:assert/strict";
import type { PoolManager } from "../../storage/pool/pool_manager.ts";
import { confineGroupRequest } from "./group_policy.ts";

const CONTEXT = { poolRoots: [], pools: {} as PoolManager };

Deno.test("confineGroupRequest() lets members run every lifecycle action, reset included", async () => {
  for (const action of ["start", "shutdown", "destroy", "reboot", "reset", "pause", "resume"]) {
    const request = new Request(`http://denovisor/v1/domains/web/${action}`, { method: "POST" });
    assert.equal(await confineGroupRequest(request, CONTEXT), request, action);
  }
  const save = new Request("http://denovisor/v1/domains/web/explode", { method: "POST" });
  await assert.rejects(() => confineGroupRequest(save, CONTEXT));
  // GET /metrics is no API path: the router answers it.
  const metrics = new Request("http://denovisor/metrics");
  assert.equal(await confineGroupRequest(metrics, CONTEXT), metrics);
});
