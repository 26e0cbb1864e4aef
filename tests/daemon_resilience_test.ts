/**
 * The daemon under stress and failure, with real VMMs: a storm of concurrent start/stop
 * calls on one domain, a daemon killed with SIGKILL and restarted, VMMs killed from
 * outside (on_crash), and autostart when the daemon starts.
 */

import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { domainGuest, EventRecorder, processAlive, sleep, TestDaemon } from "./daemon_support.ts";
import type { DomainInfo } from "../manager/api_types.ts";
import type { ApiClientError } from "../manager/api_client.ts";

/** Pids of the live processes whose command line names `text`. */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const argv = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
      // The sandbox's launcher (a bash reaper, the VMM's parent) names the config too.
      if (argv[0] === "/bin/bash") continue;
      if (argv.join(" ").includes(text) && processAlive(Number(entry.name))) {
        pids.push(Number(entry.name));
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

kvmTest(
  "daemon: 24 concurrent starts and destroys on one domain end in a consistent state",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      const api = daemon.client;
      await api.post("/v1/domains", domainGuest("storm"));
      const calls = Array.from(
        { length: 24 },
        (_, i) =>
          api.post<DomainInfo>(`/v1/domains/storm/${i % 3 === 2 ? "destroy" : "start"}`).then(
            () => "ok",
            (error: ApiClientError) =>
              error.status === 409 ? "409" : `${error.status} ${error.message}`,
          ),
      );
      const outcomes = await Promise.all(calls);
      // Every call was answered; refusals are only "already running"/"not running" (409).
      assert.ok(
        outcomes.every((o) => o === "ok" || o === "409"),
        outcomes.join(" "),
      );
      assert.ok(outcomes.includes("ok"));
      for (let round = 0; round < 2; round++) {
        const info = await daemon.info("storm");
        const vmms = processesMentioning(`${daemon.dir}/domains/storm/config.json`);
        if (info.state === "running") {
          assert.deepEqual(vmms, [info.pid], "one VMM, the one reported");
        } else {
          assert.equal(info.state, "shutoff");
          assert.deepEqual(vmms, [], "no VMM for a domain reported shut off");
        }
        if (info.state === "shutoff") await api.post("/v1/domains/storm/start");
        else await api.post("/v1/domains/storm/destroy");
      }
    } finally {
      await daemon.cleanup();
    }
  },
  180_000,
);

kvmTest(
  "daemon: after kill -9 and a restart the daemon re-attaches to the running VMMs",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      const persistent = await daemon.run(domainGuest("keep"));
      const transient = await daemon.client.post<DomainInfo>(
        "/v1/domains?transient=1",
        domainGuest("temp"),
      );
      await daemon.kill("SIGKILL");
      assert.ok(processAlive(persistent.pid!) && processAlive(transient.pid!), "VMMs outlive it");
      await daemon.restart();
      const keep = await daemon.info("keep");
      const temp = await daemon.info("temp");
      assert.deepEqual([keep.state, keep.pid], ["running", persistent.pid]);
      assert.deepEqual([temp.state, temp.pid, temp.persistent], ["running", transient.pid, false]);
      assert.equal(
        (await daemon.client.post<DomainInfo>("/v1/domains/keep/pause")).state,
        "paused",
      );
      await daemon.client.post("/v1/domains/keep/destroy");
      assert.equal(processAlive(persistent.pid!), false);
      // A VMM killed while no daemon watched is seen as a crash at the next start.
      await daemon.kill("SIGKILL");
      Deno.kill(transient.pid!, "SIGKILL");
      await daemon.restart();
      await assert.rejects(() => daemon.info("temp"), { status: 404 });
      assert.equal((await daemon.info("keep")).state, "shutoff");
    } finally {
      await daemon.cleanup();
    }
  },
  180_000,
);

kvmTest(
  "daemon: a VMM killed from outside triggers on_crash (restart, destroy, preserve)",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      const api = daemon.client;
      const events = await EventRecorder.open(api);
      const restart = await daemon.run(domainGuest("phoenix", { onCrash: "restart" }));
      const destroy = await daemon.run(domainGuest("mortal", { onCrash: "destroy" }));
      const preserve = await daemon.run(domainGuest("relic", { onCrash: "preserve" }));
      for (const info of [restart, destroy, preserve]) Deno.kill(info.pid!, "SIGKILL");

      const reborn = await daemon.waitFor(
        "phoenix",
        (i) => i.state === "running" && i.pid !== restart.pid,
      );
      assert.ok(processAlive(reborn.pid!));
      const crashed = await events.waitFor((e) => e.domain === "phoenix" && e.kind === "crashed");
      assert.equal(crashed.detail, "VMM killed by SIGKILL without an end record; on_crash=restart");

      const dead = await daemon.waitFor("mortal", (i) => i.state === "shutoff");
      assert.equal(dead.lastEnd, "VMM killed by SIGKILL without an end record; on_crash=destroy");
      await events.waitFor((e) => e.domain === "mortal" && e.kind === "crashed");

      const kept = await daemon.waitFor("relic", (i) => i.state === "crashed");
      assert.equal(kept.pid, undefined);
      await assert.rejects(() => api.post("/v1/domains/relic/start"), {
        status: 409,
        message:
          "Domain 'relic' is crashed (kept by on_crash=preserve); run 'denovisor destroy relic' first",
      });
      assert.equal((await api.post<DomainInfo>("/v1/domains/relic/destroy")).state, "shutoff");

      // rename-restart: the crashed run is kept under a new name, the domain starts again.
      const twin = await daemon.run(domainGuest("twin", { onCrash: "rename-restart" }));
      Deno.kill(twin.pid!, "SIGKILL");
      const again = await daemon.waitFor(
        "twin",
        (i) => i.state === "running" && i.pid !== twin.pid,
      );
      assert.ok(processAlive(again.pid!));
      const copy = await daemon.info("twin--1");
      assert.deepEqual([copy.state, copy.persistent, copy.pid], ["crashed", false, undefined]);
      await api.post("/v1/domains/twin--1/destroy");
      await assert.rejects(() => daemon.info("twin--1"), { status: 404 });
      await events.close();
    } finally {
      await daemon.cleanup();
    }
  },
  180_000,
);

kvmTest(
  "daemon: autostart domains start when the daemon starts; running ones survive SIGTERM",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      const api = daemon.client;
      await api.post("/v1/domains", domainGuest("auto", { autostart: true }));
      await api.post("/v1/domains", domainGuest("manual"));
      const survivor = await daemon.run(domainGuest("survivor"));
      const output = await daemon.kill("SIGTERM");
      assert.match(output, /stopping; running domains keep running/);
      await assert.rejects(() => Deno.stat(daemon.socket), Deno.errors.NotFound);
      assert.ok(processAlive(survivor.pid!));
      await daemon.restart();
      const auto = await daemon.waitFor("auto", (i) => i.state === "running");
      assert.ok(processAlive(auto.pid!));
      assert.equal((await daemon.info("manual")).state, "shutoff");
      assert.equal((await daemon.info("survivor")).pid, survivor.pid);
      await sleep(0);
    } finally {
      await daemon.cleanup();
    }
  },
  180_000,
);

kvmTest(
  "daemon: a domain that keeps powering off with on_poweroff=restart is left stopped",
  async () => {
    const daemon = await TestDaemon.start();
    try {
      // The demo guest powers off by itself a moment after it starts.
      await daemon.run({ name: "loop", boot: { demo: true }, memory: 32, onPoweroff: "restart" });
      const stopped = await daemon.waitFor("loop", (i) => i.state === "shutoff", 90_000);
      assert.equal(stopped.lastEnd, "restarted 5 times within 60 s; left stopped");
    } finally {
      await daemon.cleanup();
    }
  },
  120_000,
);
