/**
 * The farm's interface as the issue names it: `daemon --etcd URL --host NAME
 * [--migration-listen ADDR:PORT]` (no --farm: the default farm), `farm status`, `host
 * list|info|maintenance|evacuate|remove`, `migrate NAME [HOST]` from any host, and the
 * REPL's and the shell's completion of host names. Stand-in VMMs: a live move is tried
 * (both hosts listen) and fails in the stand-in, so evacuation falls back to a stop and a
 * start and says so; the live path itself runs on KVM in farm_live_kvm_test.ts.
 */

import assert from "node:assert/strict";
import { etcdTest, freePort } from "./etcd_support.ts";
import { eventually, farmCli, farmDomain, TestFarm } from "./farm_support.ts";
import type { FarmHost } from "../manager/farm/farm_api.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** The shell completion's candidates for `line` (its words), from the daemon at `socket`. */
async function complete(socket: string, ...line: string[]): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "__complete", "--", "denovisor", ...line],
    env: { DENOVISOR_SOCKET: socket },
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).trim().split("\n");
}

function listening(): string[] {
  return ["--migration-listen", `127.0.0.1:${freePort()}`, "--migration-insecure"];
}

etcdTest(
  "host CLI: daemon --etcd --host joins the default farm; list, info, maintenance, evacuate, remove",
  async () => {
    const farm = await TestFarm.start([
      { name: "h1", args: listening() },
      { name: "h2", args: listening(), labels: ["rack=b"] },
      { name: "h3" },
    ], { issueFlags: true });
    try {
      const [h1, h2, h3] = farm.daemons;
      const status = await farmCli(h1.socket, "farm", "status");
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /Farm: +default/);
      assert.match(status.stdout, /h3 .* up /);

      const list = await farmCli(h2.socket, "host", "list");
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /Host +Address +State .* Migration/);
      assert.match(list.stdout, /h1 .* up .*127\.0\.0\.1:\d+/);
      assert.match(list.stdout, /h3 .* up .* - +-/, "h3 has no migration listener");

      await h1.client.post("/v1/domains", farmDomain("web"));
      await h1.client.post("/v1/domains", farmDomain("db"));
      await h1.client.post("/v1/domains/web/start?host=h2", {});
      await h1.client.post("/v1/domains/db/start?host=h2", {});
      const info = await farmCli(h3.socket, "host", "info", "h2");
      assert.equal(info.code, 0, info.stderr);
      assert.match(info.stdout, /Host: +h2/);
      assert.match(info.stdout, /Labels: +rack=b/);
      assert.match(info.stdout, /Domains: +db, web/);
      assert.match(info.stdout, /joined/);
      const missing = await farmCli(h3.socket, "host", "info", "nohost");
      assert.equal(missing.code, 4);
      assert.match(missing.stderr, /No host 'nohost' in the farm/);

      // maintenance keeps new domains off h2 (auto places on h1 or h3 only).
      const on = await farmCli(h1.socket, "host", "maintenance", "h2", "on");
      assert.equal(on.code, 0, on.stderr);
      assert.match((await farmCli(h1.socket, "host", "list")).stdout, /h2 .* maintenance /);
      const bad = await farmCli(h1.socket, "host", "maintenance", "h2", "maybe");
      assert.equal(bad.code, 2);
      await h1.client.post("/v1/domains", farmDomain("new"));
      const placed = await h1.client.post<{ host?: string }>("/v1/domains/new/start?host=auto", {});
      assert.notEqual(placed.host ?? "h1", "h2");
      assert.equal((await farmCli(h1.socket, "host", "maintenance", "h2", "off")).code, 0);

      // evacuate: a line per domain as it moves; the stand-in VMM cannot migrate, so each
      // is stopped and started instead, and the line says why.
      const evacuate = await farmCli(h3.socket, "host", "evacuate", "h2");
      assert.equal(evacuate.code, 0, evacuate.stderr);
      // Both go to h1, the other host with a migration listener (placement prefers it).
      assert.match(evacuate.stdout, /\[1\/2\] db -> h1: live migration\.\.\./);
      assert.match(
        evacuate.stdout,
        /\[1\/2\] db -> h1: moved by stop and start in [\d.]+ s \(live migration failed \('db' could not migrate from 'h2' to 'h1': .*migrate-send/,
      );
      assert.match(evacuate.stdout, /\[2\/2\] web -> h1: moved by stop and start/);
      assert.match(evacuate.stdout, /Host h2: 2 of 2 domains moved \(0 live\)/);
      for (const domain of ["web", "db"]) {
        const on = await farm.runningOn(domain);
        assert.equal(on.length, 1, `${domain} runs once: ${on}`);
        assert.notEqual(on[0], "h2");
      }
      const json = await farmCli(h3.socket, "farm", "evacuate", "h2", "--json");
      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout), [], "nothing left on h2");

      // migrate from a host that does not run it, by host name: the owner moves it.
      const where = (await farm.runningOn("web"))[0];
      const other = where === "h1" ? "h3" : "h1";
      const asker = farm.daemons.find((d) => d.name !== where)!;
      const migrate = await farmCli(asker.socket, "migrate", "web", other);
      if (where === "h3" || other === "h3") {
        assert.equal(migrate.code, 5, migrate.stdout + migrate.stderr);
        assert.match(migrate.stderr, /Host 'h3' has no migration listener/);
      } else {
        // Both listen; the stand-in VMM refuses, and the error says so.
        assert.notEqual(migrate.code, 0);
        assert.match(migrate.stderr, /could not migrate from/);
      }
      assert.deepEqual(await farm.runningOn("web"), [where], "a failed move leaves it in place");

      // Completion: the REPL's and the shell's name the hosts.
      assert.deepEqual(await complete(h1.socket, "host", "info", ""), ["h1", "h2", "h3"]);
      assert.deepEqual(await complete(h1.socket, "migrate", "web", "h"), ["h1", "h2", "h3"]);
      assert.deepEqual(await complete(h1.socket, "start", "new", "--host", ""), [
        "h1",
        "h2",
        "h3",
      ]);

      // remove: refused while the host is up; a host stopped cleanly is down, then gone.
      const upRemove = await farmCli(h1.socket, "host", "remove", "h2");
      assert.equal(upRemove.code, 5);
      assert.match(upRemove.stderr, /Host 'h2' is up; evacuate it/);
      await h2.kill("SIGTERM");
      const down = await eventually("h2 shows as down", async () => {
        const hosts = await h1.client.get<FarmHost[]>("/v1/farm/hosts?all=1");
        return hosts.find((h) => h.name === "h2")?.state === "down" ? hosts : undefined;
      });
      assert.equal(down.length, 3);
      assert.match((await farmCli(h1.socket, "host", "list")).stdout, /h2 .* down /);
      assert.match((await farmCli(h1.socket, "farm", "status")).stdout, /h2 .* down /);
      const removed = await farmCli(h1.socket, "host", "remove", "h2");
      assert.equal(removed.code, 0, removed.stderr);
      assert.match(removed.stdout, /Host h2 removed from the farm/);
      assert.doesNotMatch((await farmCli(h1.socket, "host", "list")).stdout, /h2/);
      assert.equal((await farmCli(h1.socket, "host", "remove", "h2")).code, 4);
    } finally {
      await farm.stop();
    }
  },
);

etcdTest("host CLI: usage, help and the REPL's host group", async () => {
  const help = await farmCli("/nonexistent.sock", "host", "--help");
  assert.equal(help.code, 0);
  for (const sub of ["list", "info", "maintenance", "evacuate", "remove"]) {
    assert.match(help.stdout, new RegExp(`\\n  ${sub} +\\S`));
  }
  const daemonHelp = await farmCli("/nonexistent.sock", "daemon", "--help");
  assert.match(daemonHelp.stdout, /--etcd URL\[,URL\.\.\.\] +Join the farm/);
  assert.match(daemonHelp.stdout, /--host NAME +This host's name/);
  assert.match(daemonHelp.stdout, /--farm NAME +Which farm of that etcd \(default: default\)/);
  const needsEtcd = await farmCli("/nonexistent.sock", "daemon", "--host", "h1");
  assert.equal(needsEtcd.code, 2);
  assert.match(needsEtcd.stderr, /--host needs --etcd URL/);
  const twoNames = await farmCli(
    "/nonexistent.sock",
    "daemon",
    "--etcd",
    "http://127.0.0.1:1",
    "--host",
    "a",
    "--host-name",
    "b",
  );
  assert.equal(twoNames.code, 2);
  assert.match(twoNames.stderr, /--host a and --host-name b differ/);
  const main = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "help"],
    stdout: "piped",
  }).output().then((out) => ({ stdout: new TextDecoder().decode(out.stdout) }));
  assert.match(
    main.stdout,
    /\n {2}host +The farm's hosts: list, info, maintenance, evacuate, remove/,
  );
  const arity = await farmCli("/nonexistent.sock", "host", "evacuate");
  assert.equal(arity.code, 2);

  const farm = await TestFarm.start([{ name: "h1" }], { issueFlags: true });
  try {
    const repl = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "repl", "--socket", farm.daemons[0].socket],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = repl.stdin.getWriter();
    await writer.write(new TextEncoder().encode("host list\nhelp host\nexit\n"));
    await writer.close();
    const out = new TextDecoder().decode((await repl.output()).stdout);
    assert.match(out, /h1 .* up /);
    assert.match(out, /Usage: denovisor host <subcommand>/);
  } finally {
    await farm.stop();
  }
});

etcdTest("farm: domain verbs asked on any host reach the host that runs the domain", async () => {
  const farm = await TestFarm.start([{ name: "h1" }, { name: "h2" }], { issueFlags: true });
  try {
    const [h1, h2] = farm.daemons;
    await h1.client.post("/v1/domains", farmDomain("web"));
    await h1.client.post("/v1/domains/web/start?host=h2", {});
    const info = await eventually("h1's info names h2", async () => {
      const out = await farmCli(h1.socket, "info", "web");
      return /Host: +h2/.test(out.stdout) ? out.stdout : undefined;
    });
    assert.match(info, /State: +running \(on host h2\)/);

    const pause = await farmCli(h1.socket, "pause", "web");
    assert.equal(pause.code, 0, pause.stderr);
    assert.equal((await h2.client.get<{ state: string }>("/v1/domains/web")).state, "paused");
    await eventually("h1 sees it paused (h2 publishes its states)", async () => {
      const out = await farmCli(h1.socket, "info", "web");
      return /State: +paused \(on host h2\)/.test(out.stdout);
    });
    assert.match((await farmCli(h1.socket, "list")).stdout, /web +paused .*h2/);
    const resume = await farmCli(h1.socket, "resume", "web");
    assert.equal(resume.code, 0, resume.stderr);
    assert.equal((await h2.client.get<{ state: string }>("/v1/domains/web")).state, "running");

    const logs = await farmCli(h1.socket, "logs", "web");
    assert.equal(logs.code, 0, logs.stderr);
    const console = await farmCli(h1.socket, "console", "web");
    assert.equal(console.code, 5);
    assert.match(console.stderr, /runs on host 'h2'.*run 'denovisor console web' on 'h2'/);

    const shutdown = await farmCli(h1.socket, "destroy", "web");
    assert.equal(shutdown.code, 0, shutdown.stderr);
    assert.deepEqual(await farm.runningOn("web"), []);
    // Not running anywhere: h1 answers for itself, and says so.
    const stopped = await farmCli(h1.socket, "pause", "web");
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /not running|shutoff|shut off/i);
  } finally {
    await farm.stop();
  }
});
