import assert from "node:assert/strict";
import { fenceAfterMs, MemberLease } from "./farm_lease.ts";
import type { EtcdKv } from "./etcd_types.ts";

/** An etcd whose keepalive answers as the test says: a TTL, or a failure. */
function fakeEtcd(answer: { ttl: number | "fail" }): EtcdKv {
  return {
    grant: () => Promise.resolve("42"),
    keepAlive: () =>
      answer.ttl === "fail"
        ? Promise.reject(new Error("Farm unavailable: cannot reach etcd"))
        : Promise.resolve(answer.ttl),
  } as unknown as EtcdKv;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("fenceAfterMs() leaves a third of the TTL, at least 1 s, before expiry", () => {
  assert.equal(fenceAfterMs(6), 4000);
  assert.equal(fenceAfterMs(3), 2000);
  assert.equal(fenceAfterMs(60), 40000);
});

Deno.test("MemberLease fences before the TTL, recovers when renewals resume, rejoins when lost", async () => {
  const answer: { ttl: number | "fail" } = { ttl: 3 };
  const calls: string[] = [];
  const lease = new MemberLease(fakeEtcd(answer), {
    ttlSeconds: 3,
    onFence: () => calls.push("fence"),
    onLost: () => calls.push("lost"),
    onRecover: () => calls.push("recover"),
    log: () => {},
  });
  try {
    assert.equal(await lease.grant(), "42");
    await sleep(1200);
    assert.equal(calls.length, 0, "renewals succeed: no fence");
    answer.ttl = "fail";
    const failedAt = Date.now();
    while (!calls.includes("fence") && Date.now() - failedAt < 4000) await sleep(50);
    // Fenced within the deadline (2 s after the last good renewal, which was < 0.5 s ago).
    assert.deepEqual(calls, ["fence"]);
    assert.ok(Date.now() - failedAt <= 3000, `fenced after ${Date.now() - failedAt} ms`);
    assert.equal(lease.fenced, true);
    answer.ttl = 2;
    await sleep(1500);
    assert.deepEqual(calls, ["fence", "recover"]);
    assert.equal(lease.fenced, false);
    answer.ttl = 0; // etcd says the lease is gone.
    await sleep(1500);
    assert.deepEqual(calls, ["fence", "recover", "fence", "lost"]);
  } finally {
    lease.stop();
  }
});
