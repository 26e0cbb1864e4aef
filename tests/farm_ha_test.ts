/**
 * HA in a farm (stand-in VMMs, real etcd): a host that dies has its HA domains restarted
 * elsewhere within the lease TTL plus a stated margin; a host cut off from etcd fences
 * itself, and when it comes back nothing runs twice.
 */

import assert from "node:assert/strict";
import { etcdTest } from "./etcd_support.ts";
import { eventually, farmDomain, TestFarm } from "./farm_support.ts";
import type { EventRecord } from "../manager/farm/farm_api.ts";

const TTL = 5;
/** Renewal period, fence delay, HA delay and a loaded 2-CPU test host's slowness. */
const MARGIN_S = 10;

etcdTest("farm HA: kill -9 a host's daemon and VMMs; its HA domain runs elsewhere", async () => {
  const farm = await TestFarm.start([{ name: "h1" }, { name: "h2" }, { name: "h3" }], {
    ttl: TTL,
  });
  try {
    const [h1, h2] = farm.daemons;
    await h1.client.post("/v1/domains", farmDomain("db", { ha: true }));
    await h1.client.post("/v1/domains", farmDomain("tmp"));
    await h1.client.post("/v1/domains/db/start", {});
    await h1.client.post("/v1/domains/tmp/start", {});
    const killedAt = Date.now();
    await h1.kill("SIGKILL");
    await h1.killVmms();
    h1.child = undefined; // Gone: runningOn skips it.
    const host = await eventually("db runs on another host", async () => {
      const hosts = await farm.runningOn("db");
      return hosts.length === 1 ? hosts[0] : undefined;
    }, (TTL + MARGIN_S) * 1000);
    const seconds = (Date.now() - killedAt) / 1000;
    assert.notEqual(host, "h1");
    console.log(
      `HA restart of 'db' on ${host} ${seconds.toFixed(1)} s after the kill (TTL ${TTL} s)`,
    );
    const events = await h2.client.get<EventRecord[]>("/v1/farm/events");
    assert.ok(events.some((e) => e.kind === "ha-restart" && e.domain === "db"));
    const lost = await eventually(
      "tmp reported lost",
      async () =>
        (await h2.client.get<EventRecord[]>("/v1/farm/events"))
          .find((e) => e.kind === "lost" && e.domain === "tmp"),
    );
    assert.match(lost.detail ?? "", /not an HA domain/);
    assert.deepEqual(await farm.runningOn("tmp"), []);
  } finally {
    await farm.stop();
  }
});

etcdTest("farm HA: a host cut off from etcd fences itself; nothing ever runs twice", async () => {
  const farm = await TestFarm.start([{ name: "h1", relay: true }, { name: "h2" }], { ttl: TTL });
  let watching = true;
  const twice: string[] = [];
  try {
    const [h1, h2] = farm.daemons;
    await h1.client.post("/v1/domains", farmDomain("db", { ha: true }));
    await h1.client.post("/v1/domains", farmDomain("plain"));
    await h1.client.post("/v1/domains/db/start", {});
    await h1.client.post("/v1/domains/plain/start", {});
    // The split-brain watch: no moment where two daemons run db.
    const watcher = (async () => {
      while (watching) {
        const hosts = await farm.runningOn("db");
        if (hosts.length > 1) twice.push(hosts.join(","));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    farm.relays.get("h1")!.cut();
    await eventually(
      "db restarted on h2",
      async () => (await farm.runningOn("db")).join() === "h2",
      (TTL + MARGIN_S) * 1000,
    );
    // The plain domain keeps running on the cut-off host.
    assert.deepEqual(await farm.runningOn("plain"), ["h1"]);
    farm.relays.get("h1")!.heal();
    await eventually("h1 rejoins", async () => {
      const events = await h2.client.get<EventRecord[]>("/v1/farm/events");
      return events.some((e) => e.kind === "rejoined" && e.host === "h1");
    }, 30_000);
    // After the rejoin, h1 owns plain again and db still runs once, on h2.
    await eventually("h1 owns plain again", async () => {
      const status = await h2.client.get<{ owners: { domain: string; host: string }[] }>(
        "/v1/farm",
      );
      return status.owners.some((o) => o.domain === "plain" && o.host === "h1");
    });
    assert.deepEqual(await farm.runningOn("db"), ["h2"]);
    watching = false;
    await watcher;
    assert.deepEqual(twice, [], "db ran on two hosts at once");
    const events = await h2.client.get<EventRecord[]>("/v1/farm/events");
    const rejoined = events.find((e) => e.kind === "rejoined" && e.host === "h1");
    assert.match(rejoined?.detail ?? "", /fenced: db$/);
  } finally {
    watching = false;
    await farm.stop();
  }
});

etcdTest("farm HA: a daemon killed and restarted within the TTL takes its lease back", async () => {
  const farm = await TestFarm.start([{ name: "h1" }, { name: "h2" }], { ttl: TTL });
  try {
    const [h1, h2] = farm.daemons;
    await h1.client.post("/v1/domains", farmDomain("db", { ha: true }));
    await h1.client.post("/v1/domains/db/start", {});
    await h1.kill("SIGKILL"); // The VMM keeps running, as under systemd's restart.
    await h1.start();
    await eventually("the new daemon joined", async () => {
      const events = await h2.client.get<EventRecord[]>("/v1/farm/events");
      return events.filter((e) => e.kind === "joined" && e.host === "h1").length === 2;
    });
    // Well past the TTL: nothing was restarted elsewhere, db still runs once, on h1.
    await new Promise((r) => setTimeout(r, (TTL + 2) * 1000));
    assert.deepEqual(await farm.runningOn("db"), ["h1"]);
    const events = await h2.client.get<EventRecord[]>("/v1/farm/events");
    assert.ok(!events.some((e) => e.kind === "ha-restart"), JSON.stringify(events));
  } finally {
    await farm.stop();
  }
});

etcdTest(
  "farm on a 3-member etcd: one member down, nothing is fenced and the farm works",
  async () => {
    const farm = await TestFarm.start([{ name: "h1" }, { name: "h2" }], { ttl: TTL, members: 3 });
    try {
      const [h1, h2] = farm.daemons;
      await h1.client.post("/v1/domains", farmDomain("db", { ha: true }));
      await h1.client.post("/v1/domains/db/start", {});
      await farm.cluster!.kill(0); // The first endpoint of every daemon.
      await new Promise((r) => setTimeout(r, (TTL + 2) * 1000));
      assert.deepEqual(await farm.runningOn("db"), ["h1"]);
      await h2.client.post("/v1/domains", farmDomain("web"));
      const info = await h2.client.post<{ host?: string }>("/v1/domains/web/start?host=h1", {});
      assert.equal(info.host, "h1");
      const events = await h2.client.get<EventRecord[]>("/v1/farm/events");
      assert.ok(!events.some((e) => e.kind === "ha-restart" || e.kind === "rejoined"));
    } finally {
      await farm.stop();
    }
  },
);
