/**
 * The daemon's way to a VMM, on any host: the domain's KVM device is pointed at a path
 * that does not exist (DENOVISOR_KVM_DEVICE, inherited by the VMM), so the start runs
 * everything a KVM host runs before the VM is built (preflight, the VMM config, the
 * sandbox launcher, `denovisor vmm --config --seccomp`, its config parser and run
 * directory checks) and then fails on the device. Without KVM this path is otherwise
 * exercised only by the KVM tests, where a break fails them all.
 */
import assert from "node:assert/strict";
import type { ApiClientError } from "../manager/api_client.ts";
import { openImage } from "../storage/image.ts";
import { domainGuest, processAlive, TestDaemon } from "./daemon_support.ts";

const MISSING_KVM = "/nonexistent/kvm";

Deno.test("daemon: a start reaches the VMM's KVM open through the launcher, then fails cleanly", async () => {
  const daemon = await TestDaemon.start({ DENOVISOR_KVM_DEVICE: MISSING_KVM });
  try {
    const image = `${daemon.dir}/disk.raw`;
    await Deno.writeFile(image, new Uint8Array(1024 * 1024));
    await daemon.client.post(
      "/v1/domains",
      domainGuest("spawn", { disks: [{ path: image }], rng: true, balloon: true }),
    );
    const error = await daemon.client.post("/v1/domains/spawn/start").then(
      () => undefined,
      (error: ApiClientError) => error,
    );
    assert.ok(error, "the start succeeded without a KVM device");
    assert.match(error.message, /The VMM of domain 'spawn' ended during start-up/);
    assert.match(error.message, new RegExp(`Cannot open ${MISSING_KVM}`));
    // The VMM itself ran: it parsed the daemon's config and logged its start.
    const log = await Deno.readTextFile(`${daemon.dir}/logs/spawn.log`);
    assert.match(log, /denovisor vmm: starting domain spawn \([0-9a-f-]{36}\), pid (\d+)/);
    // Sandboxed, it is pid 1 of its own PID namespace, which went with it.
    assert.equal(Number(log.match(/starting domain spawn .*, pid (\d+)/)![1]), 1);
    const launcher = /sandbox: .* jail (\S+)\/root,/.exec(log);
    assert.ok(launcher, "the daemon logged the jail");
    assert.deepEqual(processesIn(launcher[1]), [], "the VMM and its launcher have exited");
    const info = await daemon.info("spawn");
    assert.equal(info.state, "shutoff");
    assert.equal(info.pid, undefined);
    // The image is free again: a writer can lock it (storage/image_lock.ts).
    openImage(image, { format: "raw" }).close();
  } finally {
    // Throws if the daemon or the VMM logged an uncaught error.
    await daemon.cleanup();
  }
});

/** Live processes whose command line names `text`. */
function processesIn(text: string): number[] {
  return [...Deno.readDirSync("/proc")].filter((e) => /^\d+$/.test(e.name)).map((e) => {
    try {
      const argv = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      return argv.includes(text) && processAlive(Number(e.name)) ? Number(e.name) : 0;
    } catch {
      return 0;
    }
  }).filter((pid) => pid !== 0);
}
