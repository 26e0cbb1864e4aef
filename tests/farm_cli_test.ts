/**
 * The farm from the command line (denovisor farm ..., start --host), and a host whose
 * etcd is unreachable: local listings keep working, farm verbs fail saying so, and the
 * host rejoins when etcd is back.
 */

import assert from "node:assert/strict";
import { etcdTest } from "./etcd_support.ts";
import { eventually, farmCli, farmDomain, TestFarm } from "./farm_support.ts";
import type { DomainInfo } from "../manager/api_types.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

etcdTest("farm CLI: hosts, start --host, status, events, evacuate", async () => {
  const farm = await TestFarm.start([{ name: "h1", labels: ["rack=a"] }, { name: "h2" }]);
  try {
    const [h1] = farm.daemons;
    await h1.client.post("/v1/domains", farmDomain("web"));
    const hosts = await farmCli(h1.socket, "farm", "hosts");
    assert.equal(hosts.code, 0, hosts.stderr);
    assert.match(hosts.stdout, /h1 .* up .*rack=a/);
    assert.match(hosts.stdout, /h2 .* up /);
    const start = await farmCli(h1.socket, "start", "web", "--host", "h2");
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stdout, /Domain 'web' started\nNote: started on host 'h2'/);
    assert.deepEqual(await farm.runningOn("web"), ["h2"]);
    // h1's list shows web running on h2 (once h1's reconcile has seen the owner key).
    const list = await eventually("h1 lists web on h2", async () => {
      const out = await farmCli(h1.socket, "list");
      return /web +running .* h2/.test(out.stdout) ? out.stdout : undefined;
    });
    assert.match(list, /Host/);
    const status = await farmCli(h1.socket, "farm", "status");
    assert.match(status.stdout, /Farm: +test/);
    assert.match(status.stdout, /web +h2/);
    const again = await farmCli(h1.socket, "start", "web", "--host", "auto");
    assert.equal(again.code, 5, "a conflict");
    assert.match(again.stderr, /already runs on host 'h2'/);
    const evacuate = await farmCli(h1.socket, "farm", "evacuate", "h2");
    assert.equal(evacuate.code, 0, evacuate.stderr);
    assert.match(evacuate.stdout, /web -> h1: moved by stop and start .*no migration listener/);
    assert.match(evacuate.stdout, /web +h1 +moved +stop and start/);
    const events = await farmCli(h1.socket, "farm", "events", "--json");
    assert.ok(JSON.parse(events.stdout).some((e: { kind: string }) => e.kind === "evacuated"));
    // The REPL has the farm group too.
    const repl = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "repl", "--socket", h1.socket],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = repl.stdin.getWriter();
    await writer.write(new TextEncoder().encode("farm hosts\nexit\n"));
    await writer.close();
    const replOut = new TextDecoder().decode((await repl.output()).stdout);
    assert.match(replOut, /h1 .* up /);
    const unknown = await farmCli(h1.socket, "farm", "evacuate", "nohost");
    assert.equal(unknown.code, 4);
    assert.match(
      unknown.stderr,
      /No live host 'nohost'.*'denovisor host list' \(or 'farm hosts'\) lists them/,
    );
  } finally {
    await farm.stop();
  }
});

etcdTest(
  "farm without etcd: local verbs work, farm verbs say the farm is unavailable",
  async () => {
    const farm = await TestFarm.start([{ name: "h1", relay: true }]);
    try {
      const [h1] = farm.daemons;
      await h1.client.post("/v1/domains", farmDomain("plain"));
      await h1.client.post("/v1/domains/plain/start", {});
      farm.relays.get("h1")!.cut();
      const list = await h1.client.get<DomainInfo[]>("/v1/domains");
      assert.equal(list.find((d) => d.name === "plain")?.state, "running");
      const status = await farmCli(h1.socket, "farm", "status");
      assert.equal(status.code, 3);
      assert.match(status.stderr, /Farm unavailable: cannot reach etcd/);
      // Running domains keep running while etcd is away (plain is not HA: not fenced).
      await new Promise((r) => setTimeout(r, 6000));
      assert.deepEqual(await farm.runningOn("plain"), ["h1"]);
      farm.relays.get("h1")!.heal();
      await eventually("h1 rejoins and owns plain again", async () => {
        const s = await h1.client.get<{ owners: { domain: string; host: string }[] }>("/v1/farm");
        return s.owners.some((o) => o.domain === "plain" && o.host === "h1");
      });
    } finally {
      await farm.stop();
    }
  },
);
