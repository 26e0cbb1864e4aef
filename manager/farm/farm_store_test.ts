import assert from "node:assert/strict";
import { EtcdClient } from "./etcd_client.ts";
import { FarmStore } from "./farm_store.ts";
import { etcdTest, TestEtcd, TestEtcdCluster } from "../../tests/etcd_support.ts";

async function withFarm(fn: (a: FarmStore, b: FarmStore) => Promise<void>) {
  const etcd = await TestEtcd.start();
  const ca = new EtcdClient({ endpoints: [etcd.url] });
  const cb = new EtcdClient({ endpoints: [etcd.url] });
  try {
    await fn(new FarmStore(ca, "f1"), new FarmStore(cb, "f1"));
  } finally {
    ca.close();
    cb.close();
    await etcd.stop();
  }
}

etcdTest(
  "FarmStore: of four concurrent claims of a domain by two hosts exactly one wins",
  async () => {
    await withFarm(async (a, b) => {
      const leaseA = await a.etcd.grant(10);
      const leaseB = await b.etcd.grant(10);
      for (let round = 0; round < 5; round++) {
        const domain = `d${round}`;
        const results = await Promise.all([
          a.claim(domain, "ha", leaseA),
          b.claim(domain, "hb", leaseB),
          a.claim(domain, "ha", leaseA),
          b.claim(domain, "hb", leaseB),
        ]);
        const winners = results.filter((r) => r.ok);
        assert.equal(winners.length, 1, `round ${round}`);
        const owner = (await a.owner(domain))!;
        for (const r of results) {
          if (!r.ok) assert.equal(r.holder?.owner.host, owner.owner.host);
        }
      }
    });
  },
);

etcdTest(
  "FarmStore: release compares the mod revision; the lease takes the owners with it",
  async () => {
    await withFarm(async (a, b) => {
      const lease = await a.etcd.grant(2);
      const claim = await a.claim("web", "ha", lease);
      assert.ok(claim.ok);
      const held = (await a.owner("web"))!;
      assert.equal(held.lease, lease);
      // Another host saw it, then it was rebound: the stale view cannot release it.
      const stale = { ...held };
      assert.ok(await a.rebind(held, { host: "ha", since: "x" }, lease));
      assert.equal(await b.release(stale), false);
      assert.ok(await a.owner("web"));
      await a.etcd.revoke(lease);
      assert.equal(await a.owner("web"), undefined);
      const again = await b.claim("web", "hb", await b.etcd.grant(5));
      assert.ok(again.ok);
    });
  },
);

etcdTest(
  "FarmStore: definitions are created once; intents one pending at a time; events",
  async () => {
    await withFarm(async (a, b) => {
      const definition = { name: "web", boot: { demo: true as const } };
      assert.ok(await a.createDefinition(definition));
      assert.equal(await b.createDefinition(definition), false);
      assert.deepEqual([...(await b.definitions()).keys()], ["web"]);
      const intent = {
        id: "1",
        host: "hb",
        reason: "test",
        requestedBy: "ha",
        at: "",
        status: "pending" as const,
      };
      assert.ok(await a.putIntent("web", intent));
      assert.equal(await b.putIntent("web", { ...intent, id: "2" }), false);
      await b.finishIntent("web", "1");
      assert.equal((await a.intent("web"))?.status, "done");
      assert.ok(await b.putIntent("web", { ...intent, id: "3" }));
      await a.event({ host: "ha", kind: "joined" });
      await b.event({ host: "hb", kind: "started", domain: "web" });
      assert.deepEqual((await a.events()).map((e) => e.kind), ["joined", "started"]);
      await a.setMaintenance("hb", true);
      assert.deepEqual([...await b.maintenance()], ["hb"]);
    });
  },
);

etcdTest("FarmStore on a 3-member etcd keeps working with one member down", async () => {
  const cluster = await TestEtcdCluster.start(3);
  // The first endpoint is the member that dies: the client must move on.
  const client = new EtcdClient({ endpoints: cluster.urls, timeoutMs: 3000 });
  try {
    const store = new FarmStore(client, "f1");
    const lease = await client.grant(10);
    assert.ok((await store.claim("web", "h1", lease)).ok);
    await cluster.kill(0);
    assert.ok(await client.keepAlive(lease) > 0);
    assert.equal((await store.owner("web"))?.owner.host, "h1");
    assert.ok((await store.claim("db", "h1", lease)).ok);
    assert.equal((await store.claim("db", "h2", lease)).ok, false);
    assert.deepEqual((await store.owners()).map((o) => o.domain), ["db", "web"]);
  } finally {
    client.close();
    await cluster.stop();
  }
});
