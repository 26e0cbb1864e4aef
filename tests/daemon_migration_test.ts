/**
 * Live migration between two real daemons on this machine without KVM: their VMMs are
 * the stand-in of tests/fixtures/migrate_vmm.ts, which runs the real pre-copy sender and
 * receiver on a counter in its RAM, so the daemons' parts are all real: the API, the
 * mutual-TLS channel, the relay, the incoming policy, the definition rule (defined on
 * the destination, undefined on the source, transient stays transient), the CLI verb.
 * Also the API's refusals (404, 409, 400) and a destination without --migration-listen.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ApiClientError } from "../manager/api_client.ts";
import type { MigrationResult } from "../manager/api_types.ts";
import { makeCa, makeHostCert } from "../manager/migration/test_certs.ts";
import { denovisor } from "./cli_support.ts";
import { EventRecorder, sleep } from "./daemon_support.ts";
import { MigrationDaemon as Daemon } from "./migration_support.ts";

const MIGRATE_VMM = new URL("./fixtures/migrate_vmm.ts", import.meta.url).pathname;
const ENV = {
  DENOVISOR_VMM_COMMAND: JSON.stringify([Deno.execPath(), "run", "-A", MIGRATE_VMM]),
};

async function refused(work: Promise<unknown>, status: number, pattern: RegExp): Promise<void> {
  await assert.rejects(work, (error: unknown) => {
    assert.ok(error instanceof ApiClientError, String(error));
    assert.equal(error.status, status, error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

/** The count the stand-in VMM received, from its log line. */
async function receivedCount(daemon: Daemon, name: string): Promise<number> {
  const log = await (await daemon.client.request("GET", `/v1/domains/${name}/logs?lines=100`))
    .text();
  const match = /migrate-vmm: received count=(\d+)/.exec(log);
  assert.ok(match, `no 'received' line in the log of ${name}:\n${log}`);
  return Number(match[1]);
}

Deno.test("daemon: a domain migrates between two daemons over mutual TLS, its definition with it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-migration-test-" });
  const daemons: Daemon[] = [];
  try {
    const ca = await makeCa(dir, "farm");
    const tlsFlags = async (host: string) => {
      const { cert, key } = await makeHostCert(dir, host, ca);
      await Deno.chmod(key, 0o600);
      const state = join(dir, host);
      await Deno.mkdir(state);
      return { state, flags: ["--migration-cert", cert, "--migration-key", key] };
    };
    const hostA = await tlsFlags("host-a");
    const hostB = await tlsFlags("host-b");
    const listen = ["--migration-listen", "127.0.0.1:{port}", "--migration-ca", ca.cert];
    const a = await Daemon.start(hostA.state, [...hostA.flags, ...listen], ENV);
    daemons.push(a);
    const b = await Daemon.start(hostB.state, [...hostB.flags, ...listen], ENV);
    daemons.push(b);

    // A persistent domain moves A -> B through the API.
    await a.client.post("/v1/domains?start=1", { name: "web", boot: { demo: true } });
    await sleep(300); // the stand-in guest counts
    const events = await EventRecorder.open(a.client);
    const result = await a.client.post<MigrationResult>("/v1/domains/web/migrate", {
      dest: `127.0.0.1:${b.port}`,
      maxDowntimeMs: 1000,
    });
    assert.equal(result.domain, "web");
    assert.equal(result.dest, `127.0.0.1:${b.port}`);
    assert.ok(result.iterations >= 1 && result.bytesSent > 0, JSON.stringify(result));
    const there = await b.info("web");
    assert.equal(there.state, "running");
    assert.equal(there.persistent, true);
    assert.equal(there.migration, undefined);
    assert.ok((await receivedCount(b, "web")) > 0, "the count came along");
    await a.gone("web");
    await events.waitFor((e) => e.domain === "web" && e.kind === "undefined");
    const kinds = events.events.filter((e) => e.domain === "web").map((e) => e.kind);
    assert.deepEqual(kinds.filter((k) => k.startsWith("migrat")).at(-1), "migrated");
    assert.ok(kinds.includes("migrating"), kinds.join(" "));
    await events.close();

    // A transient domain moves B -> A with the CLI and stays transient there.
    await b.client.post("/v1/domains?start=1&transient=1", { name: "tmp", boot: { demo: true } });
    const cli = await denovisor([
      "migrate",
      "tmp",
      `127.0.0.1:${a.port}`,
      "--max-downtime",
      "1000",
      "--socket",
      join(hostB.state, "api.sock"),
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`Domain 'tmp' migrated to 127\\.0\\.0\\.1:${a.port} in `));
    const moved = await a.info("tmp");
    assert.equal(moved.state, "running");
    assert.equal(moved.persistent, false);
    await b.gone("tmp");

    // A name already defined on the destination is refused there; the source runs on.
    await a.client.post("/v1/domains?start=1", { name: "dup", boot: { demo: true } });
    await b.client.post("/v1/domains", { name: "dup", boot: { demo: true } });
    await assert.rejects(
      a.client.post("/v1/domains/dup/migrate", { dest: `127.0.0.1:${b.port}` }),
      /already defined on the destination/,
    );
    assert.equal((await a.info("dup")).state, "running");
    assert.equal((await b.info("dup")).state, "shutoff");

    // A destination that fails after the copy (its restore): nothing stays defined there,
    // and the source runs on, still defined, its count going on.
    await a.client.post("/v1/domains?start=1", { name: "fail-restore", boot: { demo: true } });
    await assert.rejects(
      a.client.post("/v1/domains/fail-restore/migrate", { dest: `127.0.0.1:${b.port}` }),
      /restore failed/,
    );
    const source = await a.info("fail-restore");
    assert.equal(source.state, "running");
    assert.equal(source.persistent, true);
    assert.equal(source.migration, undefined);
    await b.gone("fail-restore");
  } finally {
    for (const daemon of daemons) await daemon.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("daemon: migrate refuses unknown and stopped domains, bad destinations, and a daemon that does not listen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-migration-test-" });
  const daemons: Daemon[] = [];
  try {
    await Deno.mkdir(join(dir, "a"));
    await Deno.mkdir(join(dir, "b"));
    await Deno.mkdir(join(dir, "c"));
    const a = await Daemon.start(join(dir, "a"), ["--migration-insecure"], ENV);
    daemons.push(a);
    // b has no --migration-listen: it accepts no migration at all.
    const b = await Daemon.start(join(dir, "b"), [], ENV);
    daemons.push(b);
    const api = a.client;
    await refused(api.post("/v1/domains/nope/migrate", { dest: "127.0.0.1:4789" }), 404, /nope/);
    await api.post("/v1/domains", { name: "off", boot: { demo: true } });
    await refused(
      api.post("/v1/domains/off/migrate", { dest: "127.0.0.1:4789" }),
      409,
      /shutoff; only a running or paused domain can migrate/,
    );
    await api.post("/v1/domains?start=1", { name: "web", boot: { demo: true } });
    for (const dest of ["nohost", "127.0.0.1:0", "127.0.0.1:99999", "[nothex]:1", 7]) {
      await refused(api.post("/v1/domains/web/migrate", { dest }), 400, /dest/);
    }
    await refused(api.post("/v1/domains/web/migrate", {}), 400, /dest: .*required/);
    await refused(
      api.post("/v1/domains/web/migrate", { dest: "127.0.0.1:1", speed: 1 }),
      400,
      /speed: unknown field/,
    );
    await refused(
      api.post("/v1/domains/web/migrate", { dest: "127.0.0.1:1", maxDowntimeMs: -1 }),
      400,
      /maxDowntimeMs/,
    );
    await refused(
      api.post("/v1/domains/web/migrate", { dest: "10.1.2.3:4789" }),
      409,
      /only allowed on loopback/,
    );
    await refused(api.post("/v1/domains/web/migrate-abort"), 409, /not migrating/);
    // b listens nowhere: the connection is refused, the domain runs on here.
    await assert.rejects(
      api.post("/v1/domains/web/migrate", { dest: `127.0.0.1:${b.port}` }),
      /ECONNREFUSED|refused|connect/i,
    );
    const info = await a.info("web");
    assert.equal(info.state, "running");
    assert.equal(info.migration, undefined);
    // A daemon without credentials cannot migrate at all.
    const c = await Daemon.start(join(dir, "c"), [], ENV);
    daemons.push(c);
    await c.client.post("/v1/domains?start=1", { name: "web", boot: { demo: true } });
    await refused(
      c.client.post("/v1/domains/web/migrate", { dest: `127.0.0.1:${a.port}` }),
      409,
      /cannot migrate .*--migration-cert/,
    );
  } finally {
    for (const daemon of daemons) await daemon.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
