import assert from "node:assert/strict";
import {
  dropVcpuWorkers,
  prestartVcpuWorkers,
  takeVcpuWorker,
  VCPU_WORKERS_ENV,
  vcpuWorkerCount,
} from "./vcpu_workers.ts";

function withWorkersEnv(value: string | undefined, body: () => void): void {
  const before = Deno.env.get(VCPU_WORKERS_ENV);
  if (value === undefined) Deno.env.delete(VCPU_WORKERS_ENV);
  else Deno.env.set(VCPU_WORKERS_ENV, value);
  try {
    body();
  } finally {
    if (before === undefined) Deno.env.delete(VCPU_WORKERS_ENV);
    else Deno.env.set(VCPU_WORKERS_ENV, before);
  }
}

Deno.test("vcpuWorkerCount() gives vCPU 0 a Worker, and every vCPU one with DENOVISOR_VCPU_WORKERS=all", () => {
  withWorkersEnv(undefined, () => {
    assert.deepEqual([1, 2, 8].map(vcpuWorkerCount), [1, 1, 1]);
  });
  withWorkersEnv("all", () => {
    assert.deepEqual([1, 2, 8].map(vcpuWorkerCount), [1, 2, 8]);
  });
});

Deno.test("prestarted vCPU Workers: one for a machine of several vCPUs, taken once", () => {
  withWorkersEnv(undefined, () => {
    prestartVcpuWorkers(3);
    prestartVcpuWorkers(2); // one waits already: none more
    const worker = takeVcpuWorker();
    assert.ok(worker instanceof Worker);
    assert.equal(takeVcpuWorker(), undefined);
    worker!.terminate();
  });
});

Deno.test("prestarted vCPU Workers with DENOVISOR_VCPU_WORKERS=all: one per vCPU, each taken once", () => {
  withWorkersEnv("all", () => {
    prestartVcpuWorkers(3);
    prestartVcpuWorkers(2); // three wait already: none more
    const taken = [takeVcpuWorker(), takeVcpuWorker(), takeVcpuWorker()];
    assert.ok(taken.every((worker) => worker instanceof Worker));
    assert.equal(new Set(taken).size, 3);
    assert.equal(takeVcpuWorker(), undefined);
    taken.forEach((worker) => worker!.terminate());
  });
});

Deno.test("dropVcpuWorkers() ends the Workers nobody took", () => {
  prestartVcpuWorkers(2);
  dropVcpuWorkers(); // the test's op sanitizer fails on a Worker left running
  assert.equal(takeVcpuWorker(), undefined);
});
