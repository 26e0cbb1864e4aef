/**
 * Live migration between two real daemons with real VMMs on this machine (KVM): the
 * `domain` guest prints "tick N" about twice a second; it migrates while it ticks, and
 * ticks on in the destination's VMM without booting again ("domain guest up" appears
 * only on the source), then powers off there on request (its devices came along).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { MigrationResult } from "../manager/api_types.ts";
import { kvmTest } from "./kvm_support.ts";
import { domainGuest, sleep } from "./daemon_support.ts";
import { MigrationDaemon } from "./migration_support.ts";

function migrationTest(name: string, fn: () => Promise<void>, timeoutMs: number): void {
  kvmTest(name, fn, timeoutMs);
}

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

/** `pooled`: the destination keeps a pre-started VMM (--vmm-pool 1), which receives the guest. */
async function migratesAndTicksOn(pooled: boolean): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "denovisor-migration-kvm-" });
  const daemons: MigrationDaemon[] = [];
  try {
    const listen = ["--migration-listen", "127.0.0.1:{port}", "--migration-insecure"];
    for (const host of ["a", "b"]) {
      await Deno.mkdir(join(dir, host));
      const pool = pooled && host === "b" ? ["--vmm-pool", "1"] : [];
      daemons.push(await MigrationDaemon.start(join(dir, host), [...listen, ...pool]));
    }
    const [a, b] = daemons;
    await a.client.post("/v1/domains?start=1", domainGuest("web"));
    await waitForLog(a, "web", (log) => lastTick(log) >= 3);
    const result = await a.client.post<MigrationResult>("/v1/domains/web/migrate", {
      dest: `127.0.0.1:${b.port}`,
      maxDowntimeMs: 1000,
      timeoutS: 120,
    });
    console.log(
      `migrated in ${result.totalMs} ms, ${result.iterations} rounds, ` +
        `${result.bytesSent} bytes, downtime ${result.downtimeMs} ms ` +
        `(${JSON.stringify(result.switchOver)})`,
    );
    assert.ok(result.switchOver, "the result says where the downtime went");
    const taken = (await b.log("web")).includes("taken from the pool");
    assert.equal(taken, pooled, `the receiving VMM was ${taken ? "" : "not "}a pooled one`);
    assert.equal((await b.info("web")).state, "running");
    await a.gone("web");
    // It ticks on from where it was, without booting again.
    const before = lastTick(await waitForLog(b, "web", (log) => lastTick(log) >= 0));
    const log = await waitForLog(b, "web", (text) => lastTick(text) >= before + 2);
    assert.ok(before >= 3, `the first tick on the destination is ${before}`);
    assert.ok(!log.includes("domain guest up"), `the guest booted again:\n${log}`);
    // Its devices came along: Ctrl-Alt-Del powers it off there.
    await b.client.post("/v1/domains/web/shutdown", { timeoutSeconds: 30 });
    const after = await b.info("web");
    assert.equal(after.state, "shutoff", JSON.stringify(after));
    assert.doesNotMatch(after.lastEnd ?? "", /forced off/);
  } finally {
    for (const daemon of daemons) await daemon.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

migrationTest(
  "daemon (KVM): a ticking domain migrates live to another daemon and ticks on there",
  () => migratesAndTicksOn(false),
  300_000,
);

migrationTest(
  "daemon (KVM): a pre-started VMM of the destination's pool receives the guest, which ticks on",
  () => migratesAndTicksOn(true),
  300_000,
);
