/**
 * Daemon start-up with VMMs that do not answer: the socket must come up at once and the
 * re-attach must ask all VMMs in parallel. The "VMMs" here are stopped processes holding
 * a listening control socket, so no KVM is needed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { TestDaemon } from "./daemon_support.ts";
import { processStartTime } from "../manager/daemon/vmm_process.ts";
import type { DomainSummary } from "../manager/api_types.ts";

const HUNG = 6;

/** A process that listens on `socket` and is then stopped (SIGSTOP): a hung VMM. */
async function hungVmm(socket: string): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `Deno.listen({ transport: "unix", path: ${
        JSON.stringify(socket)
      } }); setInterval(() => {}, 1e6);`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 300; i++) {
    if (await Deno.stat(socket).then(() => true, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  Deno.kill(child.pid, "SIGSTOP");
  return child;
}

Deno.test("daemon: hung VMMs do not hold back its socket, and are re-attached in parallel", async () => {
  const daemon = await TestDaemon.start();
  const vmms: Deno.ChildProcess[] = [];
  try {
    await daemon.kill("SIGKILL");
    for (let i = 0; i < HUNG; i++) {
      const name = `hung${i}`;
      const runDir = `${daemon.dir}/domains/${name}`;
      await Deno.mkdir(runDir, { recursive: true, mode: 0o700 });
      const vmm = await hungVmm(`${runDir}/vmm.sock`);
      vmms.push(vmm);
      const record = {
        definition: { name, boot: { demo: true } },
        persistent: false,
        pid: vmm.pid,
        pidStartTime: processStartTime(vmm.pid),
        startedAt: new Date().toISOString(),
      };
      await Deno.writeTextFile(`${runDir}/domain.json`, JSON.stringify(record));
    }
    // One after another, each hung VMM would cost a 5 s control timeout before listening.
    const started = Date.now();
    await daemon.restart();
    const listening = Date.now() - started;
    assert.ok(listening < HUNG * 5000 / 2, `the socket took ${listening} ms`);
    // The listing waits for the re-attach, which asks every VMM at once.
    const list = await daemon.client.get<DomainSummary[]>("/v1/domains");
    const settled = Date.now() - started;
    assert.deepEqual(
      list.map((d) => [d.name, d.state]),
      vmms.map((_, i) => [`hung${i}`, "running"]),
    );
    assert.ok(settled < HUNG * 5000 - 5000, `the re-attach took ${settled} ms`);
  } finally {
    for (const vmm of vmms) {
      try {
        vmm.kill("SIGKILL");
      } catch {
        // Gone already.
      }
      await vmm.status;
    }
    await daemon.cleanup();
  }
});
