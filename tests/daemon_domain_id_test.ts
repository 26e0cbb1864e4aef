/**
 * Domain ids (manager/daemon/domain_ids.ts) on a real daemon without KVM (the stand-in VMM
 * of tests/fixtures/lifecycle_vmm.ts): a new id at each start, never reused, kept by a
 * daemon that takes over a running VMM, and shown only while the domain runs.
 */

import assert from "node:assert/strict";
import type { DomainSummary } from "../manager/api_types.ts";
import { TestDaemon } from "./daemon_support.ts";

const LIFECYCLE_VMM = new URL("./fixtures/lifecycle_vmm.ts", import.meta.url).pathname;
const ENV = {
  DENOVISOR_VMM_COMMAND: JSON.stringify([Deno.execPath(), "run", "-A", LIFECYCLE_VMM]),
};

async function ids(daemon: TestDaemon): Promise<Record<string, number | undefined>> {
  const list = await daemon.client.get<DomainSummary[]>("/v1/domains");
  return Object.fromEntries(list.map((domain) => [domain.name, domain.id]));
}

Deno.test("daemon: domain ids count up at each start, survive a daemon restart and are never reused", async () => {
  const daemon = await TestDaemon.start(ENV);
  try {
    await daemon.run({ name: "a", boot: { demo: true } });
    await daemon.run({ name: "b", boot: { demo: true } });
    assert.deepEqual(await ids(daemon), { a: 1, b: 2 });
    await daemon.client.post("/v1/domains/a/destroy");
    assert.deepEqual(await ids(daemon), { a: undefined, b: 2 });
    await daemon.client.post("/v1/domains/a/start");
    assert.deepEqual(await ids(daemon), { a: 3, b: 2 });

    // A new daemon takes the VMMs over with their ids and counts on from there.
    await daemon.kill("SIGKILL");
    await daemon.restart(ENV);
    assert.deepEqual(await ids(daemon), { a: 3, b: 2 });
    await daemon.client.post("/v1/domains/b/destroy");
    await daemon.client.post("/v1/domains/b/start");
    assert.deepEqual(await ids(daemon), { a: 3, b: 4 });
  } finally {
    await daemon.cleanup();
  }
});
