/**
 * vCPU Workers started ahead of the machine that will run them. Starting a Worker and
 * loading its modules takes 75-200 ms here, far more than the rest of a restore (reading
 * the state, mapping the memory file, loading KVM and device state: 25-40 ms), so a VMM
 * that knows it will restore (or receive a migration) starts its Workers as soon as it
 * starts, and they load while it reads the state; the machine then takes them instead of
 * starting its own. A Worker waits idle for its first message, and an idle Worker keeps
 * the process alive: whatever is left is terminated with `dropVcpuWorkers()`.
 *
 * @module
 */

/** The entry module of every vCPU Worker. */
export const VCPU_WORKER_URL = new URL("./vcpu_worker_main.ts", import.meta.url);

const warm: Worker[] = [];

/**
 * `DENOVISOR_VCPU_WORKERS=all` gives every vCPU a Worker of its own, as before vCPUs after
 * the first ran off-thread (core/vcpu_off_thread.ts): for comparisons (bench/vmm_overhead.ts)
 * and as a way back should the off-thread path misbehave on some host.
 */
export const VCPU_WORKERS_ENV = "DENOVISOR_VCPU_WORKERS";

/** How many of a machine's `vcpus` vCPUs run on Workers: the first, or all of them. */
export function vcpuWorkerCount(vcpus: number): number {
  let every = false;
  try {
    every = Deno.env.get(VCPU_WORKERS_ENV) === "all";
  } catch {
    // No env permission: the default.
  }
  return every ? vcpus : Math.min(vcpus, 1);
}

/**
 * Starts the Workers a machine of `vcpus` vCPUs will take (`vcpuWorkerCount`), unless
 * that many wait already; they run nothing until taken.
 */
export function prestartVcpuWorkers(vcpus: number): void {
  const count = vcpuWorkerCount(vcpus);
  while (warm.length < count) {
    warm.push(new Worker(VCPU_WORKER_URL, { type: "module", name: `vcpu${warm.length}` }));
  }
}

/** The next started Worker, or undefined when none waits. */
export function takeVcpuWorker(): Worker | undefined {
  return warm.shift();
}

/** Terminates the Workers nobody took. */
export function dropVcpuWorkers(): void {
  for (const worker of warm.splice(0)) worker.terminate();
}
