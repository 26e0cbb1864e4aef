/**
 * Live evacuation of a host running 10 domains, with real daemons and VMMs (KVM) on one
 * machine against a local etcd: three hosts with migration listeners (loopback, no TLS),
 * ten `domain` guests (32 MiB, ticking twice a second) started on h1, then `host
 * evacuate h1` asked on h2. Prints the total time, the time per domain, how each moved,
 * and checks that every guest ticks on, on its new host, without booting again.
 * (bench/farm_failover.ts measures the stop-and-start evacuation with stand-in VMMs.)
 *
 * deno run -A bench/farm_evacuation_kvm.ts [--domains 10] [--no-sandbox]
 * (--no-sandbox: the guests run with "sandbox": false. Measured: 16.8 s jailed, 19.7 s not.)
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { TestEtcd } from "../tests/etcd_support.ts";
import { MigrationDaemon } from "../tests/migration_support.ts";
import { domainGuest, sleep } from "../tests/daemon_support.ts";
import type { EvacuationStep, FarmStatus } from "../manager/farm/farm_api.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { domains: { type: "string" }, "no-sandbox": { type: "boolean" } },
});
const count = Number(values.domains ?? 10);

function lastTick(log: string): number {
  return Math.max(-1, ...[...log.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
}

const etcd = await TestEtcd.start();
const dir = await Deno.makeTempDir({ prefix: "denovisor-bench-evacuate-" });
const daemons = new Map<string, MigrationDaemon>();
try {
  for (const host of ["h1", "h2", "h3"]) {
    await Deno.mkdir(join(dir, host));
    daemons.set(
      host,
      await MigrationDaemon.start(join(dir, host), [
        ...["--etcd", etcd.url, "--host", host, "--host-memory", "2G", "--host-vcpus", "32"],
        ...["--migration-listen", "127.0.0.1:{port}", "--migration-insecure"],
      ]),
    );
  }
  const [h1, h2] = [daemons.get("h1")!, daemons.get("h2")!];
  for (const daemon of daemons.values()) {
    while (await daemon.client.get("/v1/farm").then(() => false, () => true)) await sleep(200);
  }
  const names = Array.from({ length: count }, (_, i) => `d${i}`);
  for (const name of names) {
    const sandbox = values["no-sandbox"] ? { sandbox: false } : {};
    await h1.client.post("/v1/domains", domainGuest(name, sandbox));
    await h1.client.post(`/v1/domains/${name}/start?host=h1`, {});
  }
  const before = new Map<string, number>();
  for (const name of names) {
    while (true) {
      const tick = lastTick(await h1.log(name).catch(() => ""));
      if (tick >= 1) {
        before.set(name, tick);
        break;
      }
      await sleep(200);
    }
  }
  const started = performance.now();
  const steps = await h2.client.post<EvacuationStep[]>("/v1/farm/hosts/h1/evacuate");
  const seconds = (performance.now() - started) / 1000;
  const status = await h2.client.get<FarmStatus>("/v1/farm");
  let ticking = 0;
  for (const name of names) {
    const owner = status.owners.find((o) => o.domain === name)?.host;
    const daemon = owner === undefined ? undefined : daemons.get(owner);
    if (daemon === undefined || owner === "h1") continue;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const log = await daemon.log(name).catch(() => "");
      if (lastTick(log) >= before.get(name)! + 2 && !log.includes("domain guest up")) {
        ticking++;
        break;
      }
      await sleep(200);
    }
  }
  const live = steps.filter((s) => s.status === "moved" && s.how === "live").length;
  const per = steps.map((s) => s.seconds ?? 0).sort((a, b) => a - b);
  console.log(
    `live evacuation of ${count} domains (32 MiB each, KVM` +
      `${values["no-sandbox"] ? ", no sandbox" : ""}): ${seconds.toFixed(1)} s, ` +
      `${(seconds / count).toFixed(2)} s per domain (median ${
        per[Math.floor(per.length / 2)].toFixed(2)
      } s, max ${per[per.length - 1].toFixed(2)} s); ${live} of ${count} moved live; ` +
      `${ticking} of ${count} tick on without booting again`,
  );
  for (const step of steps) {
    if (step.status !== "moved" || step.how !== "live") console.log(JSON.stringify(step));
  }
} finally {
  for (const daemon of daemons.values()) await daemon.stop();
  await etcd.stop();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
