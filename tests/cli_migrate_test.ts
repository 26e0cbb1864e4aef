/**
 * `denovisor migrate`: usage errors and their exit status (2) before any daemon is
 * asked, the request the flags make, the summary line, Tab completion in the REPL, and
 * the exit statuses of the daemon's refusals (4 unknown domain, 5 nothing to abort, 3
 * no daemon). A migration itself is in tests/daemon_migration_test.ts.
 */

import assert from "node:assert/strict";
import { completeLine } from "../cli/repl/completion.ts";
import { completionSpecs } from "../cli/repl/commands.ts";
import { migrateRequest, migrationSummary } from "../cli/domain_migrate.ts";
import { denovisor } from "./cli_support.ts";
import { TestDaemon } from "./daemon_support.ts";

Deno.test("migrate: usage errors exit 2 and say what is missing", async () => {
  const cases: [string[], RegExp][] = [
    [["migrate"], /missing the domain name/],
    [["migrate", "web"], /missing the destination HOST:PORT/],
    [["migrate", "--abort", "web", "10.0.0.2:4789"], /--abort takes only the domain name/],
    [["migrate", "web", "10.0.0.2:4789", "--max-downtime", "soon"], /--max-downtime soon/],
    [["migrate", "web", "10.0.0.2:4789", "--timeout", "0"], /--timeout 0: .*at least 1/],
    [["migrate", "web", "10.0.0.2:4789", "--bandwidth", "lots"], /bandwidth/],
    [["migrate", "web", "10.0.0.2:4789", "--speed", "1"], /speed/],
  ];
  for (const [args, pattern] of cases) {
    const result = await denovisor([...args, "--socket", "/nonexistent/api.sock"]);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, pattern, args.join(" "));
  }
  const help = await denovisor(["migrate", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: denovisor migrate NAME DEST/);
  assert.match(help.stdout, /--max-downtime MS/);
  const unreachable = await denovisor([
    "migrate",
    "web",
    "10.0.0.2:4789",
    "--socket",
    "/nonexistent/api.sock",
  ]);
  assert.equal(unreachable.code, 3, unreachable.stderr);
});

Deno.test("migrateRequest turns the flags into a MigrateRequest", () => {
  assert.deepEqual(migrateRequest("10.0.0.2:4789", {}), { dest: "10.0.0.2:4789" });
  assert.deepEqual(
    migrateRequest("[fd00::2]:4789", {
      "max-downtime": "300",
      timeout: "60",
      bandwidth: "100M",
      offline: true,
    }),
    {
      dest: "[fd00::2]:4789",
      maxDowntimeMs: 300,
      timeoutS: 60,
      bandwidth: 100 * 1048576,
      offline: true,
    },
  );
  assert.equal(migrateRequest("h:1", { bandwidth: "2" }).bandwidth, 2 * 1048576);
  assert.throws(() => migrateRequest("h:1", { "max-downtime": "-1" }), /--max-downtime -1/);
});

Deno.test("migrationSummary says where, how long, how much and the downtime", () => {
  assert.equal(
    migrationSummary({
      domain: "web",
      dest: "10.0.0.2:4789",
      iterations: 4,
      bytesSent: 300 * 1048576,
      totalMs: 2500,
      downtimeMs: 42.4,
    }),
    "Domain 'web' migrated to 10.0.0.2:4789 in 2.50 s: 4 rounds, 300.0 MiB sent, downtime 42 ms",
  );
});

Deno.test("the REPL completes migrate with running and paused domains and its options", async () => {
  const source = {
    domains: (states?: string[]) => {
      const all = { db: "running", web: "shutoff", old: "paused" };
      return Promise.resolve(
        Object.entries(all).filter(([, state]) => !states || states.includes(state))
          .map(([name]) => name),
      );
    },
    pools: () => Promise.resolve([]),
    volumes: () => Promise.resolve([]),
  };
  const complete = async (line: string) => {
    const { start, candidates } = await completeLine(line, line.length, completionSpecs(), source);
    return candidates.filter((c) => c.startsWith(line.slice(start))).sort();
  };
  assert.deepEqual(await complete("migr"), ["migrate"]);
  assert.deepEqual(await complete("migrate "), ["db", "old"]);
  assert.deepEqual(await complete("migrate db 10.0.0.2:1 --max"), ["--max-downtime"]);
  assert.deepEqual(await complete("migrate --ab"), ["--abort"]);
});

Deno.test("migrate: the daemon's refusals give exit 4 (no such domain) and 5 (nothing to abort)", async () => {
  const daemon = await TestDaemon.start();
  try {
    const socket = ["--socket", daemon.socket];
    const unknown = await denovisor(["migrate", "nope", "127.0.0.1:4789", ...socket]);
    assert.equal(unknown.code, 4, unknown.stderr);
    assert.match(unknown.stderr, /No domain named 'nope'/);
    await daemon.client.post("/v1/domains", { name: "web", boot: { demo: true } });
    const stopped = await denovisor(["migrate", "web", "127.0.0.1:4789", ...socket]);
    assert.equal(stopped.code, 5, stopped.stderr);
    assert.match(stopped.stderr, /only a running or paused domain can migrate/);
    const abort = await denovisor(["migrate", "--abort", "web", ...socket]);
    assert.equal(abort.code, 5, abort.stderr);
    assert.match(abort.stderr, /not migrating from this host/);
  } finally {
    await daemon.cleanup();
  }
});
