/**
 * Farm placement and listing at scale: 50 simulated hosts and 1,000 domains in a
 * throw-away local etcd. Prints placement decisions per second (the pure function,
 * manager/farm/placement.ts), the latency of reading the farm's view from etcd (what
 * `start --host auto` and `farm status` do: hosts, owners, definitions, maintenance) and
 * of the local `GET /v1/domains`-sized listing, against the target of the issue
 * (placement fast enough that etcd, not the decision, is the cost).
 *
 * deno run -A bench/farm_placement.ts [--hosts 50] [--domains 1000]
 */

import { parseArgs } from "node:util";
import { EtcdClient } from "../manager/farm/etcd_client.ts";
import { FarmStore } from "../manager/farm/farm_store.ts";
import { place } from "../manager/farm/placement.ts";
import type { DomainDefinition } from "../manager/api_types.ts";
import { TestEtcd } from "../tests/etcd_support.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { hosts: { type: "string" }, domains: { type: "string" } },
});
const hostCount = Number(values.hosts ?? 50);
const domainCount = Number(values.domains ?? 1000);
const etcd = await TestEtcd.start();
const client = new EtcdClient({ endpoints: [etcd.url] });
const store = new FarmStore(client, "bench");

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

try {
  const lease = await client.grant(600);
  const now = new Date().toISOString();
  for (let h = 0; h < hostCount; h++) {
    await store.putHost({
      name: `host${h}`,
      address: `10.0.0.${h}`,
      capacity: { memoryBytes: 64 * 2 ** 30, vcpus: 64 },
      labels: { rack: String(h % 5) },
      version: "bench",
      joinedAt: now,
      updatedAt: now,
    }, lease);
  }
  const definitions: DomainDefinition[] = [];
  for (let d = 0; d < domainCount; d++) {
    const definition: DomainDefinition = {
      name: `dom${d}`,
      boot: { demo: true },
      memory: 512,
      vcpus: 1,
      ...(d % 10 === 0 ? { placement: { antiAffinity: `g${d % 50}` } } : {}),
    };
    definitions.push(definition);
    await store.createDefinition(definition);
  }
  // Place and claim every domain, as start --host auto would.
  let view = await store.view();
  for (const definition of definitions) {
    const { host } = place(definition, view);
    await store.claim(definition.name, host, lease);
    view.owners.set(definition.name, host);
  }
  const reads: number[] = [];
  for (let i = 0; i < 15; i++) {
    const start = performance.now();
    view = await store.view();
    reads.push(performance.now() - start);
  }
  const lists: number[] = [];
  for (let i = 0; i < 15; i++) {
    const start = performance.now();
    await store.owners();
    lists.push(performance.now() - start);
  }
  const probe: DomainDefinition = { name: "probe", boot: { demo: true }, memory: 512, vcpus: 1 };
  const rounds = 2000;
  const start = performance.now();
  for (let i = 0; i < rounds; i++) place(probe, view);
  const perSecond = rounds / ((performance.now() - start) / 1000);
  console.log(`farm: ${hostCount} hosts, ${domainCount} domains placed and owned`);
  console.log(`placement decisions (pure)          ${perSecond.toFixed(0).padStart(8)} /s`);
  console.log(`farm view read from etcd (median)   ${median(reads).toFixed(1).padStart(8)} ms`);
  console.log(`owner list from etcd (median)       ${median(lists).toFixed(1).padStart(8)} ms`);
  console.log(
    `ratio: one view read costs ${(median(reads) / (1000 / perSecond)).toFixed(0)} decisions`,
  );
} finally {
  client.close();
  await etcd.stop();
}
