/**
 * Domain hooks (`<state dir>/hooks/domain`, manager/daemon/hooks.ts) on a real daemon,
 * without KVM: the VMM is a stand-in (tests/fixtures/lifecycle_vmm.ts). The hook sees
 * prepare, start, started, stopped and release in order with the definition on stdin; a
 * failing prepare hook refuses the start with its message and no VMM is spawned.
 */

import assert from "node:assert/strict";
import { ApiClientError } from "../manager/api_client.ts";
import type { DomainInfo } from "../manager/api_types.ts";
import { TestDaemon, vmmPids } from "./daemon_support.ts";

const LIFECYCLE_VMM = new URL("./fixtures/lifecycle_vmm.ts", import.meta.url).pathname;

async function start(): Promise<TestDaemon> {
  return await TestDaemon.start({
    DENOVISOR_VMM_COMMAND: JSON.stringify([Deno.execPath(), "run", "-A", LIFECYCLE_VMM]),
  });
}

async function writeHook(daemon: TestDaemon, script: string): Promise<void> {
  await Deno.mkdir(`${daemon.dir}/hooks`, { recursive: true, mode: 0o700 });
  const path = `${daemon.dir}/hooks/domain`;
  await Deno.writeTextFile(path, `#!/bin/sh\n${script}\n`);
  await Deno.chmod(path, 0o755);
}

async function waitForLines(path: string, count: number): Promise<string[]> {
  const deadline = Date.now() + 30_000;
  while (true) {
    const text = await Deno.readTextFile(path).catch(() => "");
    const lines = text.split("\n").filter((line) => line !== "");
    if (lines.length >= count || Date.now() > deadline) return lines;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

Deno.test("daemon: the domain hook runs at prepare, start, started, stopped and release", async () => {
  const daemon = await start();
  try {
    const calls = `${daemon.dir}/hook-calls`;
    await writeHook(
      daemon,
      `read -r first; echo "$* $(grep -c '"name": "web1"')" >> ${calls}`,
    );
    await daemon.run({ name: "web1", boot: { demo: true } });
    assert.deepEqual(await waitForLines(calls, 3), [
      "web1 prepare begin - 1",
      "web1 start begin - 1",
      "web1 started begin - 1",
    ]);
    await daemon.client.post("/v1/domains/web1/destroy");
    assert.deepEqual((await waitForLines(calls, 5)).slice(3), [
      "web1 stopped end - 1",
      "web1 release end - 1",
    ]);
  } finally {
    await daemon.cleanup();
  }
});

Deno.test("daemon: a failing prepare hook refuses the start with its message (409) and spawns nothing", async () => {
  const daemon = await start();
  try {
    await writeHook(
      daemon,
      `[ "$2" = prepare ] && { echo "web1 needs bridge br9, which is down" >&2; exit 1; }\n` +
        `echo "$2" >> ${daemon.dir}/later-calls`,
    );
    await daemon.client.post("/v1/domains", { name: "web1", boot: { demo: true } });
    const error = await daemon.client.post("/v1/domains/web1/start").then(
      () => undefined,
      (e) => e,
    );
    assert.ok(error instanceof ApiClientError, String(error));
    assert.equal(error.status, 409);
    assert.match(
      error.message,
      /^The prepare hook \S+\/hooks\/domain refused to start domain 'web1': web1 needs bridge br9, which is down \(exit status 1\)$/,
    );
    const info = await daemon.client.get<DomainInfo>("/v1/domains/web1");
    assert.equal(info.state, "shutoff");
    assert.deepEqual(vmmPids(daemon.dir), []);
    assert.equal(await Deno.stat(`${daemon.dir}/later-calls`).then(() => true, () => false), false);
  } finally {
    await daemon.cleanup();
  }
});
