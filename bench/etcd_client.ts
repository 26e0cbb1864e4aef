/**
 * The farm's etcd client (manager/farm/etcd_client.ts, fetch on etcd's JSON gateway)
 * against etcdctl, on a throw-away local etcd: sequential puts and gets per second, the
 * same with 16 requests in flight, and etcdctl run once per operation (what shelling out
 * to it would cost) and with its own in-process benchmark of puts (`etcdctl check perf`
 * is too coarse; `etcdctl put` in a loop is what a toolstack would do).
 *
 * deno run -A bench/etcd_client.ts [--ops 2000]
 */

import { parseArgs } from "node:util";
import { EtcdClient } from "../manager/farm/etcd_client.ts";
import { TestEtcd } from "../tests/etcd_support.ts";

const { values } = parseArgs({ args: Deno.args, options: { ops: { type: "string" } } });
const ops = Number(values.ops ?? 2000);
const etcd = await TestEtcd.start();
const client = new EtcdClient({ endpoints: [etcd.url] });

async function rate(label: string, count: number, body: (i: number) => Promise<unknown>) {
  const start = performance.now();
  for (let i = 0; i < count; i++) await body(i);
  const perSecond = count / ((performance.now() - start) / 1000);
  console.log(`${label.padEnd(44)} ${perSecond.toFixed(0).padStart(7)} ops/s`);
  return perSecond;
}

async function parallel(label: string, count: number, body: (i: number) => Promise<unknown>) {
  const start = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < count) await body(next++);
  }));
  const perSecond = count / ((performance.now() - start) / 1000);
  console.log(`${label.padEnd(44)} ${perSecond.toFixed(0).padStart(7)} ops/s`);
  return perSecond;
}

async function etcdctl(...args: string[]) {
  const out = await new Deno.Command("etcdctl", {
    args: [`--endpoints=${etcd.url}`, ...args],
    env: { ETCDCTL_API: "3" },
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

try {
  const value = "x".repeat(256);
  const put = await rate(
    "fetch client: put (sequential)",
    ops,
    (i) => client.put(`/b/${i}`, value),
  );
  const get = await rate("fetch client: get (sequential)", ops, (i) => client.get(`/b/${i}`));
  await parallel("fetch client: put (16 in flight)", ops, (i) => client.put(`/p/${i}`, value));
  await parallel("fetch client: get (16 in flight)", ops, (i) => client.get(`/p/${i}`));
  let hasEtcdctl = true;
  try {
    await etcdctl("version");
  } catch {
    hasEtcdctl = false;
    console.log("etcdctl not installed (apt-get install etcd-client): no baseline");
  }
  if (hasEtcdctl) {
    const n = Math.min(ops, 200);
    const cput = await rate(
      "etcdctl put, one process per op",
      n,
      (i) => etcdctl("put", `/c/${i}`, value),
    );
    const cget = await rate("etcdctl get, one process per op", n, (i) => etcdctl("get", `/c/${i}`));
    console.log(`ratio put: fetch client ${(put / cput).toFixed(1)}x etcdctl`);
    console.log(`ratio get: fetch client ${(get / cget).toFixed(1)}x etcdctl`);
  }
} finally {
  client.close();
  await etcd.stop();
}
