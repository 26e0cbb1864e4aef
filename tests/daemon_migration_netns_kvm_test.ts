/**
 * Live migration between two daemons in two network namespaces joined by a veth pair,
 * with mutual TLS and a shared pool (tests/migration_netns_support.ts), on KVM. The
 * `migrate` guest keeps a RAM pattern it verifies as it runs, prints the longest gap its
 * TSC saw in each half second, and writes and reads back one disk sector every half
 * second. Faults must leave exactly one copy running and the disk consistent (the guest
 * verifies what it wrote before the fault). Needs root and `ip netns`: skipped loudly
 * without them.
 */

import assert from "node:assert/strict";
import type { DomainDefinition, MigrationResult } from "../manager/api_types.ts";
import { kvmUnavailable } from "./kvm_support.ts";
import { guest } from "./cli_support.ts";
import { sleep } from "./daemon_support.ts";
import { type MigrationHost, MigrationHosts, netnsUsable } from "./migration_netns_support.ts";

const usable = kvmUnavailable === undefined && netnsUsable();
if (kvmUnavailable === undefined && !usable) {
  console.warn(
    "\n!!! network namespaces cannot be made here (needs root and 'ip netns'): the " +
      "namespace migration tests are SKIPPED !!!\n",
  );
}

function netnsTest(name: string, fn: () => Promise<void>, timeoutMs: number): void {
  Deno.test({
    name: usable ? name : `${name} [SKIPPED: no KVM or no network namespaces]`,
    ignore: !usable,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          fn(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`timed out after ${timeoutMs} ms`)),
              timeoutMs,
            );
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
  });
}

/** The counting guest with its disk on the shared pool. */
function countingGuest(name: string, options: { cmdline?: string; memory?: number } = {}) {
  return {
    name,
    boot: { kernel: guest("migrate"), cmdline: options.cmdline ?? "mib=16 disk=1" },
    memory: options.memory ?? 48,
    disks: [{ pool: "shared", volume: `${name}-disk` }],
  } satisfies DomainDefinition;
}

/** The "tick N gap_us=G" lines of a log. */
function ticks(log: string): { tick: number; gapUs: number }[] {
  return [...log.matchAll(/tick (\d+) gap_us=(\d+)/g)].map((m) => ({
    tick: Number(m[1]),
    gapUs: Number(m[2]),
  }));
}

function lastTick(log: string): number {
  return Math.max(-1, ...ticks(log).map((t) => t.tick));
}

async function log(host: MigrationHost, name: string): Promise<string> {
  return await host.daemon.log(name).catch(() => "");
}

async function waitForLog(
  host: MigrationHost,
  name: string,
  test: (log: string) => boolean,
  timeoutMs = 60_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let text = "";
  while (Date.now() < deadline) {
    text = await log(host, name);
    if (test(text)) return text;
    await sleep(200);
  }
  throw new Error(`the log of ${name} on ${host.name} never showed what was awaited:\n${text}`);
}

/** Neither the RAM pattern nor the disk was ever found wrong, and the guest never booted twice. */
function assertIntact(text: string, where: string): void {
  assert.doesNotMatch(text, /BAD/, `${where}: the guest found its RAM or disk wrong:\n${text}`);
}

/** Waits until the guest runs on `host` (ticks going on past `after`) and checks it. */
async function runsOn(host: MigrationHost, name: string, after: number): Promise<string> {
  const text = await waitForLog(host, name, (t) => lastTick(t) >= after + 3);
  assertIntact(text, host.name);
  return text;
}

async function migrate(
  from: MigrationHost,
  to: MigrationHost,
  hosts: MigrationHosts,
  name: string,
  extra: Record<string, unknown> = {},
): Promise<MigrationResult> {
  return await from.daemon.client.post<MigrationResult>(`/v1/domains/${name}/migrate`, {
    dest: hosts.dest(to),
    maxDowntimeMs: 1000, // generous: the CPU is shared with other KVM tests
    timeoutS: 120,
    ...extra,
  });
}

netnsTest(
  "netns (KVM): a counting guest writing its disk migrates over mutual TLS, then 10 times back and forth",
  async () => {
    const hosts = await MigrationHosts.start();
    try {
      await hosts.volume("web-disk");
      const { a, b } = hosts;
      await a.daemon.client.post("/v1/domains?start=1", countingGuest("web"));
      await waitForLog(a, "web", (t) => lastTick(t) >= 4 && t.includes("disk: ok"));
      const hops = [a, b, a, b, a, b, a, b, a, b, a];
      for (let i = 0; i + 1 < hops.length; i++) {
        const [from, to] = [hops[i], hops[i + 1]];
        const before = lastTick(await log(from, "web"));
        const result = await migrate(from, to, hosts, "web");
        assert.deepEqual(await hosts.runningOn("web"), [`${to.name}:running`]);
        await from.daemon.gone("web");
        const text = await runsOn(to, "web", Math.max(before, 0));
        assert.doesNotMatch(text, /migrate guest up/, `the guest booted again:\n${text}`);
        const first = ticks(text).filter((t) => t.tick > before).slice(0, 2);
        console.log(
          `hop ${i + 1} ${from.name} -> ${to.name}: ${result.totalMs} ms, ` +
            `${result.iterations} rounds, ${(result.bytesSent / 1048576).toFixed(1)} MiB, ` +
            `downtime ${result.downtimeMs} ms (VMM), guest gap ${
              first.map((t) => t.gapUs / 1000).join("/")
            } ms`,
        );
        // Loosely: the guest saw no pause of more than a few seconds.
        assert.ok(first.every((t) => t.gapUs < 5_000_000), JSON.stringify(first));
        if (i === 0) {
          // Its disk went on being written and read back there, and its RAM verified.
          await waitForLog(to, "web", (t) => /disk: ok/.test(t) && /ram: pass \d+ ok/.test(t));
        }
      }
    } finally {
      await hosts.stop();
    }
  },
  900_000,
);
