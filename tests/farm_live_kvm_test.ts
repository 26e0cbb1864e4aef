/**
 * A farm of three real daemons with real VMMs (KVM) and migration listeners: `host
 * evacuate` moves every domain of a host live (the counting guests tick on, on their new
 * hosts, without booting again), the owner keys move with them, `migrate NAME` without
 * a destination, asked on a host that does not run it, places the domain and moves it
 * live again, and `migrate NAME ADDR:PORT` to a farm host's listener moves its owner key
 * too. Nothing ever runs twice.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { kvmTest } from "./kvm_support.ts";
import { domainGuest, sleep } from "./daemon_support.ts";
import { MigrationDaemon } from "./migration_support.ts";
import { etcdAvailable, TestEtcd } from "./etcd_support.ts";
import type { FarmStatus } from "../manager/farm/farm_api.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const HOSTS = ["h1", "h2", "h3"];

/** The highest "tick N" in `log`, or -1. */
function lastTick(log: string): number {
  return Math.max(-1, ...[...log.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
}

async function waitForLog(
  daemon: MigrationDaemon,
  name: string,
  test: (log: string) => boolean,
  timeoutMs = 60_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let log = "";
  while (Date.now() < deadline) {
    log = await daemon.log(name).catch(() => "");
    if (test(log)) return log;
    await sleep(200);
  }
  throw new Error(`the log of ${name} never showed what was awaited:\n${log}`);
}

/** Which daemons run `name` (each one's own table: elsewhere it is a shut-off mirror). */
async function runningOn(daemons: Map<string, MigrationDaemon>, name: string): Promise<string[]> {
  const hosts: string[] = [];
  for (const [host, daemon] of daemons) {
    const info = await daemon.info(name).catch(() => undefined) as
      | { state: string; host?: string }
      | undefined;
    // A daemon answers for a domain another host runs with that host's name.
    if (info !== undefined && info.state !== "shutoff" && (info.host ?? host) === host) {
      hosts.push(host);
    }
  }
  return hosts;
}

/** The owner of `name` in etcd, as `farm status` shows it. */
async function ownerOf(daemon: MigrationDaemon, name: string): Promise<string | undefined> {
  const status = await daemon.client.get<FarmStatus>("/v1/farm");
  return status.owners.find((o) => o.domain === name)?.host;
}

/** Checks that `name` ticks on at `host` from at least `from`, without a new boot. */
async function ticksOn(daemon: MigrationDaemon, name: string, from: number): Promise<number> {
  const first = lastTick(await waitForLog(daemon, name, (log) => lastTick(log) >= 0));
  const log = await waitForLog(daemon, name, (text) => lastTick(text) >= first + 2);
  assert.ok(first >= from, `${name}: first tick on the new host ${first}, before ${from}`);
  assert.ok(!log.includes("domain guest up"), `${name} booted again:\n${log}`);
  return lastTick(log);
}

kvmTest(
  "farm (KVM): host evacuate migrates counting guests live; migrate without a destination places",
  async () => {
    if (!etcdAvailable) throw new Error("etcd is not installed (scripts/ensure_packages.sh)");
    const etcd = await TestEtcd.start();
    const dir = await Deno.makeTempDir({ prefix: "denovisor-farm-live-" });
    const daemons = new Map<string, MigrationDaemon>();
    try {
      for (const host of HOSTS) {
        await Deno.mkdir(join(dir, host));
        daemons.set(
          host,
          await MigrationDaemon.start(join(dir, host), [
            ...["--etcd", etcd.url, "--host", host, "--farm-lease-ttl", "5"],
            ...["--host-memory", "512M", "--host-vcpus", "8"],
            ...["--migration-listen", "127.0.0.1:{port}", "--migration-insecure"],
          ]),
        );
      }
      const [h1, h2] = [daemons.get("h1")!, daemons.get("h2")!];
      for (const daemon of daemons.values()) {
        const deadline = Date.now() + 60_000;
        while ((await daemon.client.get("/v1/farm").then(() => false, () => true))) {
          if (Date.now() > deadline) throw new Error("a daemon did not join the farm");
          await sleep(200);
        }
      }
      const names = ["web", "db"];
      for (const name of names) {
        await h1.client.post("/v1/domains", domainGuest(name));
        await h1.client.post(`/v1/domains/${name}/start?host=h2`, {});
      }
      const before = new Map<string, number>();
      for (const name of names) {
        before.set(name, lastTick(await waitForLog(h2, name, (log) => lastTick(log) >= 2)));
      }

      // Evacuate h2 from h1, through the CLI: one line per domain, each moved live.
      const started = performance.now();
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "host", "evacuate", "h2", "--socket", join(dir, "h1/api.sock")],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const seconds = (performance.now() - started) / 1000;
      const stdout = new TextDecoder().decode(out.stdout);
      console.log(`evacuation of 2 domains: ${seconds.toFixed(1)} s\n${stdout}`);
      assert.equal(out.code, 0, stdout + new TextDecoder().decode(out.stderr));
      assert.match(stdout, /\[1\/2\] db -> h[13]: moved by live migration in/);
      assert.match(stdout, /\[2\/2\] web -> h[13]: moved by live migration in/);
      assert.match(stdout, /2 of 2 domains moved \(2 live\)/);

      for (const name of names) {
        const owner = await ownerOf(h1, name);
        assert.ok(owner === "h1" || owner === "h3", `${name} is owned by ${owner}`);
        before.set(name, await ticksOn(daemons.get(owner!)!, name, before.get(name)!));
      }
      // Past a few reconciles (2 s each): nobody destroyed a migrated copy, none runs twice.
      await sleep(5000);
      for (const name of names) {
        const owner = await ownerOf(h2, name);
        assert.deepEqual(await runningOn(daemons, name), [owner], name);
      }

      // migrate without a destination, asked on h2 (which runs nothing, in maintenance).
      const from = (await ownerOf(h1, "web"))!;
      const moved = await h2.client.post<{ host: string; downtimeMs: number }>(
        "/v1/domains/web/migrate",
        { maxDowntimeMs: 1000 },
      );
      assert.ok(moved.host !== from && moved.host !== "h2", `moved to ${moved.host}`);
      assert.equal(await ownerOf(h1, "web"), moved.host);
      before.set("web", await ticksOn(daemons.get(moved.host)!, "web", before.get("web")!));
      assert.deepEqual(await runningOn(daemons, "web"), [moved.host]);

      // migrate NAME ADDR:PORT (a farm host's listener), asked on the owner: the owner key
      // follows to that host as well.
      const back = moved.host === "h1" ? "h3" : "h1";
      const dest = `127.0.0.1:${daemons.get(back)!.port}`;
      const again = await daemons.get(moved.host)!.client.post<{ host: string }>(
        "/v1/domains/web/migrate",
        { dest, maxDowntimeMs: 1000 },
      );
      assert.equal(again.host, back);
      assert.equal(await ownerOf(h2, "web"), back);
      await ticksOn(daemons.get(back)!, "web", before.get("web")!);
      assert.deepEqual(await runningOn(daemons, "web"), [back]);
    } finally {
      for (const daemon of daemons.values()) await daemon.stop();
      await etcd.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
  600_000,
);
