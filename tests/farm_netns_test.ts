/**
 * A farm of three hosts in three network namespaces joined by a bridge, etcd on the
 * bridge in the root namespace (stand-in VMMs). A host whose link goes down is really
 * partitioned: it fences its HA domain, another host restarts it, and when the link comes
 * back the host rejoins and no domain ever ran twice. Needs root and `ip netns`; skipped,
 * loudly, where network namespaces cannot be made.
 */

import assert from "node:assert/strict";
import { etcdAvailable, TestEtcd } from "./etcd_support.ts";
import {
  eventually,
  FarmDaemon,
  farmDomain,
  hostsRunning,
  withDaemonLogs,
} from "./farm_support.ts";
import type { EventRecord } from "../manager/farm/farm_api.ts";

const TTL = 5;
const ID = String(Deno.pid % 10000);
const BRIDGE = `dvbr${ID}`;
// 198.18.0.0/15 is reserved for network tests (RFC 2544): no real route is shadowed.
const SUBNET = `198.18.${Deno.pid % 250}`;

function ip(...args: string[]): { ok: boolean; error: string } {
  try {
    const out = new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).outputSync();
    return { ok: out.success, error: new TextDecoder().decode(out.stderr).trim() };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}

function netnsUsable(): boolean {
  if (Deno.uid() !== 0) return false;
  const probe = `dvprobe${ID}`;
  if (!ip("netns", "add", probe).ok) return false;
  ip("netns", "del", probe);
  return true;
}

const usable = etcdAvailable && netnsUsable();
if (etcdAvailable && !usable) {
  console.warn(
    "\n!!! network namespaces cannot be made here (needs root and 'ip netns'): the " +
      "namespace farm test is SKIPPED !!!\n",
  );
}

/** The bridge, the namespaces and their veths; `down`/`up` cut and restore one host. */
class Network {
  readonly hosts: string[];

  constructor(hosts: string[]) {
    this.hosts = hosts;
  }

  ns(index: number): string {
    return `dvns${ID}h${index}`;
  }

  veth(index: number): string {
    return `dv${ID}h${index}`;
  }

  address(index: number): string {
    return `${SUBNET}.${10 + index}`;
  }

  setUp(): void {
    const must = (...args: string[]) => {
      const result = ip(...args);
      if (!result.ok) throw new Error(`ip ${args.join(" ")}: ${result.error}`);
    };
    must("link", "add", BRIDGE, "type", "bridge");
    must("addr", "add", `${SUBNET}.1/24`, "dev", BRIDGE);
    must("link", "set", BRIDGE, "up");
    this.hosts.forEach((_, i) => {
      must("netns", "add", this.ns(i));
      must("link", "add", this.veth(i), "type", "veth", "peer", "name", `${this.veth(i)}p`);
      must("link", "set", `${this.veth(i)}p`, "netns", this.ns(i));
      must("link", "set", this.veth(i), "master", BRIDGE);
      must("link", "set", this.veth(i), "up");
      must("-n", this.ns(i), "link", "set", "lo", "up");
      must("-n", this.ns(i), "addr", "add", `${this.address(i)}/24`, "dev", `${this.veth(i)}p`);
      must("-n", this.ns(i), "link", "set", `${this.veth(i)}p`, "up");
    });
  }

  down(index: number): void {
    ip("link", "set", this.veth(index), "down");
  }

  up(index: number): void {
    ip("link", "set", this.veth(index), "up");
  }

  tearDown(): void {
    this.hosts.forEach((_, i) => {
      ip("link", "del", this.veth(i));
      ip("netns", "del", this.ns(i));
    });
    ip("link", "del", BRIDGE);
  }
}

Deno.test({
  name: "farm in network namespaces: a partitioned host fences; nothing ever runs twice",
  ignore: !usable,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const network = new Network(["h0", "h1", "h2"]);
    const daemons: FarmDaemon[] = [];
    let etcd: TestEtcd | undefined;
    let watching = true;
    const twice: string[] = [];
    try {
      try {
        network.setUp();
      } catch (error) {
        // Namespaces work but something else does not (a container without veth or
        // bridges): the farm logic is covered by the relay tests; say so and stop here.
        console.warn(`\n!!! namespace farm test SKIPPED: ${(error as Error).message} !!!\n`);
        return;
      }
      etcd = await TestEtcd.start({ hostname: `${SUBNET}.1` });
      for (const [i, name] of network.hosts.entries()) {
        const dir = await Deno.makeTempDir({ prefix: `denovisor-netns-${name}-` });
        daemons.push(
          new FarmDaemon(name, dir, [
            ...["--state-dir", dir, "--socket", `${dir}/api.sock`],
            ...["--farm", "netns", "--etcd", etcd.url, "--host", name],
            ...["--host-address", network.address(i), "--farm-lease-ttl", String(TTL)],
            ...["--host-memory", "1G", "--host-vcpus", "8"],
            // nsenter, not `ip netns exec`: only the network changes, so the cgroup
            // hierarchies under /sys that the VMM sandbox's checks need stay visible.
          ], ["nsenter", `--net=/run/netns/${network.ns(i)}`]),
        );
      }
      await Promise.all(daemons.map((d) => d.start()));
      const [h0, h1] = daemons;
      const runningOn = (domain: string) => hostsRunning(daemons, domain);
      await h0.client.post("/v1/domains", farmDomain("db", { ha: true }));
      await h0.client.post("/v1/domains/db/start", {});
      const watcher = (async () => {
        while (watching) {
          const hosts = await runningOn("db");
          if (hosts.length > 1) twice.push(hosts.join(","));
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const cut = Date.now();
      network.down(0);
      const host = await eventually("db restarted on another host", async () => {
        const hosts = await runningOn("db");
        return hosts.length === 1 && hosts[0] !== "h0" ? hosts[0] : undefined;
      }, (TTL + 15) * 1000);
      console.log(
        `db restarted on ${host} ${((Date.now() - cut) / 1000).toFixed(1)} s after the cut`,
      );
      network.up(0);
      await eventually("h0 rejoins", async () => {
        const events = await h1.client.get<EventRecord[]>("/v1/farm/events");
        return events.some((e) => e.kind === "rejoined" && e.host === "h0");
      }, 60_000);
      watching = false;
      await watcher;
      assert.deepEqual(await runningOn("db"), [host]);
      assert.deepEqual(twice, [], "db ran on two hosts at once");
    } catch (error) {
      throw await withDaemonLogs(error, daemons);
    } finally {
      watching = false;
      for (const daemon of daemons) {
        await daemon.kill();
        await daemon.killVmms();
        await Deno.remove(daemon.dir, { recursive: true }).catch(() => {});
      }
      await etcd?.stop();
      network.tearDown();
    }
  },
});
