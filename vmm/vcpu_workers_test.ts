import assert from "node:assert/strict";
import { dropVcpuWorkers, prestartVcpuWorkers, takeVcpuWorker } from "./vcpu_workers.ts";

Deno.test("prestarted vCPU Workers are taken once each, as many as asked", () => {
  prestartVcpuWorkers(3);
  prestartVcpuWorkers(2); // three wait already: none more
  const taken = [takeVcpuWorker(), takeVcpuWorker(), takeVcpuWorker()];
  assert.ok(taken.every((worker) => worker instanceof Worker));
  assert.equal(new Set(taken).size, 3);
  assert.equal(takeVcpuWorker(), undefined);
  taken.forEach((worker) => worker!.terminate());
});

Deno.test("dropVcpuWorkers() ends the Workers nobody took", () => {
  prestartVcpuWorkers(2);
  dropVcpuWorkers(); // the test's op sanitizer fails on a Worker left running
  assert.equal(takeVcpuWorker(), undefined);
});
