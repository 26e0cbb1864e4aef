/**
 * Farm daemons against a real etcd, with a stand-in VMM (no KVM needed): definitions
 * farm-wide, ownership by transaction, placement, maintenance and evacuation.
 */

import assert from "node:assert/strict";
import { etcdTest } from "./etcd_support.ts";
import { eventually, farmDomain, TestFarm, withDaemonLogs } from "./farm_support.ts";
import type { DomainInfo } from "../manager/api_types.ts";
import type { EventRecord, FarmHost, FarmStatus } from "../manager/farm/farm_api.ts";

etcdTest(
  "farm: a domain defined on one host is visible on all; two starts, one winner",
  async () => {
    const farm = await TestFarm.start([{ name: "h1" }, { name: "h2" }]);
    try {
      const [h1, h2] = farm.daemons;
      await h1.client.post("/v1/domains", farmDomain("web"));
      const seen = await eventually(
        "h2 sees web",
        async () =>
          (await h2.client.get<DomainInfo[]>("/v1/domains")).find((d) => d.name === "web"),
      );
      assert.equal(seen.state, "shutoff");
      // Defining the same name through the other host is refused farm-wide.
      await assert.rejects(h2.client.post("/v1/domains", farmDomain("web")), /already/);

      const results = await Promise.allSettled([
        h1.client.post("/v1/domains/web/start", {}),
        h2.client.post("/v1/domains/web/start", {}),
      ]);
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
      assert.equal(won.length, 1, JSON.stringify(results));
      assert.equal(lost[0].reason.status, 409);
      assert.match(lost[0].reason.message, /runs on host 'h[12]'|already runs|already running/);
      assert.equal((await farm.runningOn("web")).length, 1);

      const status = await h2.client.get<FarmStatus>("/v1/farm");
      assert.equal(status.owners.length, 1);
      assert.match(status.etcd.version, /^3\./);
      // Undefine is refused on the host that does not run it.
      const owner = status.owners[0].host;
      const other = owner === "h1" ? h2 : h1;
      await assert.rejects(other.client.delete("/v1/domains/web"), /runs on host/);
      // Stopped, the owner key is released; the domain can start on the other host.
      await farm.daemon(owner).client.post("/v1/domains/web/destroy", {});
      await eventually(
        "owner key released",
        async () => (await h1.client.get<FarmStatus>("/v1/farm")).owners.length === 0,
      );
      await other.client.post("/v1/domains/web/start", {});
      assert.deepEqual(await farm.runningOn("web"), [other.name]);
    } catch (error) {
      throw await withDaemonLogs(error, farm.daemons);
    } finally {
      await farm.stop();
    }
  },
);

etcdTest("farm: start --host auto places by free memory without overcommitting", async () => {
  const farm = await TestFarm.start([
    { name: "h1", memory: "256M" },
    { name: "h2", memory: "128M" },
  ]);
  try {
    const h1 = farm.daemons[0];
    for (let i = 0; i < 7; i++) await h1.client.post("/v1/domains", farmDomain(`d${i}`));
    const placed: string[] = [];
    let refused = 0;
    for (let i = 0; i < 7; i++) {
      try {
        const info = await h1.client.post<DomainInfo & { host?: string }>(
          `/v1/domains/d${i}/start?host=auto`,
          {},
        );
        placed.push(info.host ?? "h1");
      } catch (error) {
        assert.match((error as Error).message, /No host can run/);
        refused++;
      }
    }
    // 256M / 64M = 4 on h1, 128M / 64M = 2 on h2; the seventh fits nowhere.
    assert.equal(placed.filter((h) => h === "h1").length, 4);
    assert.equal(placed.filter((h) => h === "h2").length, 2);
    assert.equal(refused, 1);
    const hosts = await h1.client.get<FarmHost[]>("/v1/farm/hosts");
    for (const host of hosts) assert.ok(host.freeMemoryBytes >= 0, `${host.name} overcommitted`);
  } finally {
    await farm.stop();
  }
});

etcdTest("farm: evacuate moves every domain off a host and keeps new ones away", async () => {
  const farm = await TestFarm.start([{ name: "h1" }, { name: "h2" }]);
  try {
    const [h1, h2] = farm.daemons;
    for (const name of ["a", "b"]) {
      await h1.client.post("/v1/domains", farmDomain(name));
      await h1.client.post(`/v1/domains/${name}/start`, {});
    }
    const steps = await h2.client.post<{ domain: string; to?: string; status: string }[]>(
      "/v1/farm/hosts/h1/evacuate",
    );
    assert.deepEqual(steps.map((s) => [s.domain, s.to, s.status]), [
      ["a", "h2", "moved"],
      ["b", "h2", "moved"],
    ]);
    assert.deepEqual(await farm.runningOn("a"), ["h2"]);
    assert.deepEqual(await farm.runningOn("b"), ["h2"]);
    const hosts = await h2.client.get<FarmHost[]>("/v1/farm/hosts");
    assert.equal(hosts.find((h) => h.name === "h1")?.maintenance, true);
    await h1.client.post("/v1/domains", farmDomain("c"));
    const info = await h1.client.post<{ host?: string }>("/v1/domains/c/start?host=auto", {});
    assert.equal(info.host, "h2");
  } finally {
    await farm.stop();
  }
});

etcdTest("farm: a shared pool defined on one host is defined on the others", async () => {
  const farm = await TestFarm.start([{ name: "h1" }, { name: "h2" }]);
  const path = await Deno.makeTempDir({ prefix: "denovisor-farm-shared-" });
  try {
    const [h1, h2] = farm.daemons;
    await h1.client.post("/v1/pools", { name: "shared", type: "shared", path });
    const pool = await eventually(
      "h2 has the shared pool",
      async () =>
        (await h2.client.get<{ name: string; path: string }[]>("/v1/pools"))
          .find((p) => p.name === "shared"),
    );
    assert.equal(pool.path, path);
  } finally {
    await farm.stop();
    await Deno.remove(path, { recursive: true });
  }
});

etcdTest(
  "farm: an autostart domain starts on exactly one host when the daemons start",
  async () => {
    const farm = await TestFarm.start([{ name: "h1" }, { name: "h2" }]);
    try {
      const [h1, h2] = farm.daemons;
      await h1.client.post("/v1/domains", farmDomain("auto", { autostart: true }));
      await eventually(
        "h2 knows auto",
        async () =>
          (await h2.client.get<DomainInfo[]>("/v1/domains")).some((d) => d.name === "auto"),
      );
      await Promise.all([h1.kill(), h2.kill()]);
      await Promise.all([h1.start(), h2.start()]);
      const hosts = await eventually("auto runs", async () => {
        const running = await farm.runningOn("auto");
        return running.length > 0 ? running : undefined;
      });
      await new Promise((r) => setTimeout(r, 3000)); // Both have joined and reconciled.
      assert.equal(hosts.length, 1);
      assert.deepEqual(await farm.runningOn("auto"), hosts);
    } finally {
      await farm.stop();
    }
  },
);

etcdTest("farm: shutdown and destroy asked on one host stop the domain on its host", async () => {
  const farm = await TestFarm.start([{ name: "h1" }, { name: "h2" }]);
  try {
    const [h1] = farm.daemons;
    for (const name of ["a", "b"]) {
      await h1.client.post("/v1/domains", farmDomain(name));
      await h1.client.post(`/v1/domains/${name}/start?host=h2`, {});
    }
    assert.deepEqual(await farm.runningOn("a"), ["h2"]);
    const shut = await h1.client.post<{ note?: string }>("/v1/domains/a/shutdown", {});
    assert.match(shut.note ?? "", /shut down on host 'h2'/);
    const destroyed = await h1.client.post<{ note?: string }>("/v1/domains/b/destroy", {});
    assert.match(destroyed.note ?? "", /destroyed on host 'h2'/);
    assert.deepEqual(await farm.runningOn("a"), []);
    assert.deepEqual(await farm.runningOn("b"), []);
    // A domain that runs nowhere gets the local answer.
    await assert.rejects(h1.client.post("/v1/domains/a/destroy", {}), /not running/);
  } finally {
    await farm.stop();
  }
});

etcdTest("farm: define ?start=1 that cannot start keeps nothing, on any host", async () => {
  const farm = await TestFarm.start([{ name: "h1" }, { name: "h2" }]);
  try {
    const [h1, h2] = farm.daemons;
    const broken = { ...farmDomain("broken"), boot: { kernel: "/nonexistent/vmlinuz" } };
    await assert.rejects(h1.client.post("/v1/domains?start=1", broken), /vmlinuz/);
    await new Promise((r) => setTimeout(r, 1000)); // Any mirror would have happened.
    for (const daemon of [h1, h2]) {
      const list = await daemon.client.get<DomainInfo[]>("/v1/domains");
      assert.ok(!list.some((d) => d.name === "broken"), `${daemon.name} kept it`);
    }
  } finally {
    await farm.stop();
  }
});

etcdTest(
  "farm: start without a host stays on the host asked while it fits, then is placed",
  async () => {
    const farm = await TestFarm.start([
      { name: "h1", memory: "256M" },
      { name: "h2", memory: "128M" },
      { name: "h3", memory: "128M" },
    ]);
    try {
      const h1 = farm.daemons[0];
      const placed: string[] = [];
      for (let i = 0; i < 9; i++) {
        await h1.client.post("/v1/domains", farmDomain(`d${i}`));
        try {
          const info = await h1.client.post<{ host?: string }>(`/v1/domains/d${i}/start`, {});
          placed.push(info.host ?? "h1");
        } catch (error) {
          assert.match((error as Error).message, /No host can run 'd8'/);
        }
      }
      // 4 on h1 (the host asked, while it fits), then 2 each on h2 and h3; d8 fits nowhere.
      assert.deepEqual(placed.slice(0, 4), ["h1", "h1", "h1", "h1"]);
      assert.deepEqual(placed.slice(4).sort(), ["h2", "h2", "h3", "h3"]);
      const hosts = await h1.client.get<FarmHost[]>("/v1/farm/hosts");
      for (const host of hosts) {
        assert.equal(host.freeMemoryBytes, 0, `${host.name} is full, not overcommitted`);
      }
      for (const name of ["d0", "d4", "d6"]) {
        await h1.client.post(
          `/v1/domains/${name}/destroy`,
          {},
        );
      }
      // Anti-affinity: two domains of one group never share a host.
      for (const name of ["g1", "g2"]) {
        await h1.client.post("/v1/domains", farmDomain(name, { placement: { antiAffinity: "g" } }));
      }
      const g1 = await h1.client.post<{ host?: string }>("/v1/domains/g1/start", {});
      const g2 = await h1.client.post<{ host?: string }>("/v1/domains/g2/start", {});
      assert.notEqual(g1.host ?? "h1", g2.host ?? "h1");
    } finally {
      await farm.stop();
    }
  },
);

etcdTest(
  "farm: every definition made while a host joins reaches it (its watch starts where its join read)",
  async () => {
    const farm = await TestFarm.start([{ name: "h1" }, { name: "h2" }]);
    try {
      const [h1, h2] = farm.daemons;
      await h2.kill();
      // h1 defines domains back to back while h2's daemon starts and joins again, so some
      // land between h2's read of the definitions and the start of its watch.
      const defined: string[] = [];
      let writing = true;
      const writer = (async () => {
        for (let i = 0; writing && i < 400; i++) {
          await h1.client.post("/v1/domains", farmDomain(`joining-${i}`));
          defined.push(`joining-${i}`);
        }
      })();
      const restarted = new Date().toISOString();
      await h2.start();
      // Its join is over once it has recorded it (the events list is the last 100: by
      // time, not by count, as h1's definitions push the first join out of it).
      await eventually("h2 has joined again", async () => {
        const events = await h1.client.get<EventRecord[]>("/v1/farm/events");
        return events.some((e) => e.kind === "joined" && e.host === "h2" && e.time >= restarted) ||
          undefined;
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      writing = false;
      await writer;
      const missing = await eventually("h2 sees every definition", async () => {
        const seen = new Set(
          (await h2.client.get<DomainInfo[]>("/v1/domains")).map((d) => d.name),
        );
        const lost = defined.filter((name) => !seen.has(name));
        return lost.length === 0 ? lost : undefined;
      }, 15_000).catch(async () => {
        const seen = new Set(
          (await h2.client.get<DomainInfo[]>("/v1/domains")).map((d) => d.name),
        );
        return defined.filter((name) => !seen.has(name));
      });
      assert.deepEqual(missing, [], `h2 never saw ${missing.length} of ${defined.length}`);
    } catch (error) {
      throw await withDaemonLogs(error, farm.daemons);
    } finally {
      await farm.stop();
    }
  },
);
