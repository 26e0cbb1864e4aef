import assert from "node:assert/strict";
import { EtcdClient, prefixEnd } from "./etcd_client.ts";
import { EtcdError } from "./etcd_types.ts";
import { etcdTest, freePort, TestEtcd } from "../../tests/etcd_support.ts";

Deno.test("prefixEnd() increments the last byte below 0xff", () => {
  assert.equal(atob(prefixEnd("/a/")), "/a0");
  assert.equal(atob(prefixEnd("ab")), "ac");
});

etcdTest("EtcdClient puts, gets, lists and deletes keys (non-ASCII values too)", async () => {
  const etcd = await TestEtcd.start();
  const client = new EtcdClient({ endpoints: [etcd.url] });
  try {
    const revision = await client.put("/t/a", "héllo");
    assert.ok(revision > 0);
    await client.put("/t/b", "2");
    await client.put("/u/c", "3");
    const a = await client.get("/t/a");
    assert.equal(a?.value, "héllo");
    assert.equal(a?.createRevision, revision);
    assert.equal(await client.get("/t/none"), undefined);
    const { kvs } = await client.list("/t/");
    assert.deepEqual(kvs.map((kv) => kv.key), ["/t/a", "/t/b"]);
    assert.equal(await client.delete("/t/", true), 2);
    assert.deepEqual((await client.list("/t/")).kvs, []);
    assert.match((await client.status()).version, /^3\./);
  } finally {
    client.close();
    await etcd.stop();
  }
});

etcdTest("EtcdClient txn: create-if-absent succeeds once, compare on mod revision", async () => {
  const etcd = await TestEtcd.start();
  const client = new EtcdClient({ endpoints: [etcd.url] });
  try {
    const claim = () =>
      client.txn(
        [{ key: "/o", target: "create", result: "equal", createRevision: 0 }],
        [{ put: { key: "/o", value: "h1" } }],
        [{ range: { key: "/o" } }],
      );
    const first = await claim();
    assert.equal(first.succeeded, true);
    const second = await claim();
    assert.equal(second.succeeded, false);
    assert.equal(second.ranges[0][0].value, "h1");
    const seen = second.ranges[0][0].modRevision;
    const stale = await client.txn(
      [{ key: "/o", target: "mod", result: "equal", modRevision: seen - 1 }],
      [{ put: { key: "/o", value: "h2" } }],
    );
    assert.equal(stale.succeeded, false);
    const fresh = await client.txn(
      [{ key: "/o", target: "mod", result: "equal", modRevision: seen }],
      [{ put: { key: "/o", value: "h2" } }],
    );
    assert.equal(fresh.succeeded, true);
    assert.equal((await client.get("/o"))?.value, "h2");
  } finally {
    client.close();
    await etcd.stop();
  }
});

etcdTest(
  "EtcdClient leases: keys go with a revoked or expired lease; keepalive renews",
  async () => {
    const etcd = await TestEtcd.start();
    const client = new EtcdClient({ endpoints: [etcd.url] });
    try {
      const lease = await client.grant(2);
      await client.put("/l/a", "x", lease);
      assert.equal((await client.get("/l/a"))?.lease, lease);
      assert.ok(await client.keepAlive(lease) >= 1);
      await client.revoke(lease);
      assert.equal(await client.get("/l/a"), undefined);
      await client.revoke(lease); // Gone already: not an error.
      const short = await client.grant(2);
      await client.put("/l/b", "y", short);
      await new Promise((r) => setTimeout(r, 3500));
      assert.equal(await client.get("/l/b"), undefined);
      assert.ok(await client.keepAlive(short) <= 0);
    } finally {
      client.close();
      await etcd.stop();
    }
  },
);

etcdTest("EtcdClient watch sees puts and deletes under a prefix, with the old value", async () => {
  const etcd = await TestEtcd.start();
  const client = new EtcdClient({ endpoints: [etcd.url] });
  try {
    const events: string[] = [];
    let seen!: () => void;
    const two = new Promise<void>((resolve) => seen = resolve);
    const watch = client.watch("/w/", (event) => {
      events.push(`${event.type} ${event.kv.key} ${event.kv.value || event.prev?.value}`);
      if (events.length === 2) seen();
    });
    await new Promise((r) => setTimeout(r, 200)); // The watch is created.
    await client.put("/other", "no");
    await client.put("/w/a", "1");
    await client.delete("/w/a");
    await two;
    watch.close();
    await watch.ended;
    assert.deepEqual(events, ["put /w/a 1", "delete /w/a 1"]);
  } finally {
    client.close();
    await etcd.stop();
  }
});

etcdTest("EtcdClient falls over to the next endpoint and says when none answers", async () => {
  const etcd = await TestEtcd.start();
  const dead = `http://127.0.0.1:${freePort()}`;
  const client = new EtcdClient({ endpoints: [dead, etcd.url] });
  try {
    await client.put("/f", "1");
    assert.equal((await client.get("/f"))?.value, "1");
  } finally {
    client.close();
    await etcd.stop();
  }
  const none = new EtcdClient({ endpoints: [dead] });
  await assert.rejects(none.get("/f"), (error: unknown) => {
    assert.ok(error instanceof EtcdError);
    assert.equal(error.code, "unavailable");
    assert.match(error.message, /Farm unavailable: cannot reach etcd .*check --etcd/);
    return true;
  });
});

Deno.test("EtcdClient refuses a bad endpoint and a certificate without its key", () => {
  assert.throws(() => new EtcdClient({ endpoints: ["unix:/x"] }), /expected an http/);
  assert.throws(() => new EtcdClient({ endpoints: [] }), /No etcd endpoint/);
  assert.throws(
    () => new EtcdClient({ endpoints: ["http://127.0.0.1:1"], cert: "x" }),
    /--etcd-cert and --etcd-key go together/,
  );
});

etcdTest("EtcdClient speaks TLS with a private CA and a client certificate", async () => {
  const etcd = await TestEtcd.start({ tls: true });
  const files = etcd.tlsFiles;
  const read = (path: string) => Deno.readTextFileSync(path);
  const client = new EtcdClient({
    endpoints: [etcd.url],
    caCert: read(files.ca),
    cert: read(files.clientCert),
    key: read(files.clientKey),
  });
  const noCert = new EtcdClient({ endpoints: [etcd.url], caCert: read(files.ca) });
  try {
    assert.match(etcd.url, /^https:/);
    await client.put("/tls", "yes");
    assert.equal((await client.get("/tls"))?.value, "yes");
    // etcd requires a client certificate: without one the handshake fails.
    await assert.rejects(noCert.get("/tls"), /Farm unavailable/);
  } finally {
    client.close();
    noCert.close();
    await etcd.stop();
  }
});

etcdTest("EtcdClient authenticates with a user and password", async () => {
  const etcd = await TestEtcd.start();
  const admin = async (path: string, body: unknown) => {
    const response = await fetch(`${etcd.url}/v3/auth/${path}`, {
      method: "POST",
      body: JSON.stringify(body),
    });
    assert.ok(response.ok, `${path}: ${await response.text()}`);
  };
  await admin("user/add", { name: "root", password: "s3cret" });
  await admin("user/grant", { user: "root", role: "root" });
  await admin("enable", {});
  const client = new EtcdClient({ endpoints: [etcd.url], user: "root", password: "s3cret" });
  const anonymous = new EtcdClient({ endpoints: [etcd.url] });
  const wrong = new EtcdClient({ endpoints: [etcd.url], user: "root", password: "nope" });
  try {
    await client.put("/auth", "ok");
    assert.equal((await client.get("/auth"))?.value, "ok");
    await assert.rejects(anonymous.put("/auth", "no"), (error: unknown) => {
      assert.ok(error instanceof EtcdError);
      assert.equal(error.code, "forbidden");
      return true;
    });
    await assert.rejects(wrong.get("/auth"), /etcd refused user 'root'.*check the etcd user/);
  } finally {
    client.close();
    anonymous.close();
    wrong.close();
    await etcd.stop();
  }
});

etcdTest(
  "EtcdClient watch replays from a start revision; a compacted one ends it, saying so",
  async () => {
    const etcd = await TestEtcd.start();
    const client = new EtcdClient({ endpoints: [etcd.url] });
    try {
      const first = await client.put("/r/a", "1");
      await client.delete("/r/a");
      const last = await client.put("/r/b", "2");
      // Started after the changes, from the first one's revision: all three are replayed.
      const seen: string[] = [];
      const replay = client.watch("/r/", (e) => seen.push(`${e.type} ${e.kv.key}`), first);
      const deadline = Date.now() + 5000;
      while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(seen, ["put /r/a", "delete /r/a", "put /r/b"]);
      replay.close();
      await replay.ended;
      await fetch(`${etcd.url}/v3/kv/compaction`, {
        method: "POST",
        body: JSON.stringify({ revision: String(last) }),
      }).then((r) => r.body?.cancel());
      const compacted = client.watch("/r/", () => {}, first);
      await assert.rejects(compacted.ended, /compacted the watch's start revision/);
    } finally {
      client.close();
      await etcd.stop();
    }
  },
);
