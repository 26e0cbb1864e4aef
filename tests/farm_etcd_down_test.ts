/**
 * Every member of a 3-member etcd down at once (stand-in VMMs): the domains keep running
 * (an HA domain is fenced: its host cannot tell "etcd is down" from "I am cut off"), local
 * verbs on local domains work, farm verbs fail saying the farm is unavailable, and when
 * the members come back every host rejoins and the HA domain runs again, exactly once.
 */

import assert from "node:assert/strict";
import { etcdTest } from "./etcd_support.ts";
import { eventually, farmCli, farmDomain, TestFarm } from "./farm_support.ts";
import type { FarmHost, FarmStatus } from "../manager/farm/farm_api.ts";

const TTL = 4;

etcdTest(
  "farm with all etcd members down: domains run on, farm verbs fail, all recovers",
  async () => {
    const farm = await TestFarm.start([{ name: "h1" }, { name: "h2" }], {
      ttl: TTL,
      members: 3,
      issueFlags: true,
    });
    try {
      const [h1, h2] = farm.daemons;
      await h1.client.post("/v1/domains", farmDomain("plain"));
      await h1.client.post("/v1/domains", farmDomain("db", { ha: true }));
      await h1.client.post("/v1/domains/plain/start", {});
      await h1.client.post("/v1/domains/db/start?host=h2", {});
      // farm status shows each etcd endpoint: one killed is DOWN, the others up, one leads.
      await farm.cluster!.kill(0);
      const health = await eventually("farm status answers with a member down", async () => {
        const out = await farmCli(h1.socket, "farm", "status");
        return out.code === 0 ? out.stdout : undefined;
      });
      const endpoints = /Endpoints: +(.*)/.exec(health)?.[1] ?? "";
      assert.match(endpoints, new RegExp(`^${farm.cluster!.urls[0]} DOWN \\(`), health);
      assert.equal(endpoints.match(/ up/g)?.length, 2, health);
      for (let i = 1; i < 3; i++) await farm.cluster!.kill(i);

      // Past the TTL: plain runs on; db was fenced on h2 and runs nowhere.
      await new Promise((r) => setTimeout(r, (TTL + 2) * 1000));
      assert.deepEqual(await farm.runningOn("plain"), ["h1"]);
      assert.deepEqual(await farm.runningOn("db"), []);
      // Local verbs on a local domain work; farm verbs say what is wrong.
      const list = await farmCli(h1.socket, "list");
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /plain +running/);
      assert.equal((await farmCli(h1.socket, "pause", "plain")).code, 0);
      assert.equal((await farmCli(h1.socket, "resume", "plain")).code, 0);
      for (const verb of [["host", "list"], ["farm", "status"]]) {
        const out = await farmCli(h2.socket, ...verb);
        assert.equal(out.code, 3, `${verb.join(" ")}: ${out.stdout}${out.stderr}`);
        assert.match(out.stderr, /Farm unavailable: cannot reach etcd/);
      }
      const start = await farmCli(h2.socket, "start", "plain");
      assert.notEqual(start.code, 0);

      // etcd returns: both hosts are up again, plain still on h1, db runs once.
      for (let i = 0; i < 3; i++) farm.cluster!.restart(i);
      await eventually("both hosts rejoin", async () => {
        const hosts = await h1.client.get<FarmHost[]>("/v1/farm/hosts");
        return hosts.filter((h) => h.state === "up").length === 2;
      }, 60_000);
      await eventually("db runs again, once", async () => {
        const on = await farm.runningOn("db");
        return on.length === 1 ? on : undefined;
      }, 60_000);
      const status = await h2.client.get<FarmStatus>("/v1/farm");
      assert.equal(status.owners.find((o) => o.domain === "plain")?.host, "h1");
      assert.deepEqual(await farm.runningOn("plain"), ["h1"]);
      // And stays so (no second copy appears with the next reconciles).
      await new Promise((r) => setTimeout(r, 4000));
      assert.equal((await farm.runningOn("db")).length, 1);
    } finally {
      await farm.stop();
    }
  },
);
