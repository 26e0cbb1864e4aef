import assert from "node:assert/strict";
import type { DomainDefinition } from "../api_types.ts";
import { type FarmView, hostLoads, place, PlacementError } from "./placement.ts";
import type { HostRecord } from "./farm_records.ts";

const MIB = 2 ** 20;

function host(name: string, memoryMiB: number, vcpus: number, labels = {}): HostRecord {
  return {
    name,
    address: name,
    capacity: { memoryBytes: memoryMiB * MIB, vcpus },
    labels,
    version: "test",
    joinedAt: "",
    updatedAt: "",
  };
}

function domain(name: string, memory: number, extra: Partial<DomainDefinition> = {}) {
  return { name, boot: { demo: true }, memory, vcpus: 1, ...extra } as DomainDefinition;
}

function view(hosts: HostRecord[]): FarmView {
  return { hosts, owners: new Map(), definitions: new Map(), maintenance: new Set() };
}

Deno.test("place() picks the host with the most free memory, then the fewest domains", () => {
  const farm = view([host("a", 1024, 4), host("b", 2048, 4)]);
  assert.equal(place(domain("x", 256), farm).host, "b");
  farm.definitions.set("big", domain("big", 1536));
  farm.owners.set("big", "b");
  assert.equal(place(domain("x", 256), farm).host, "a");
  assert.match(place(domain("x", 256), farm).reason, /most free memory/);
});

Deno.test("place() never overcommits: 30 small domains fill three hosts to their limits", () => {
  const farm = view([host("a", 512, 16), host("b", 256, 16), host("c", 384, 3)]);
  const placed = new Map<string, number>();
  let refused = 0;
  for (let i = 0; i < 30; i++) {
    const d = domain(`d${i}`, 64);
    try {
      const { host } = place(d, farm);
      farm.definitions.set(d.name, d);
      farm.owners.set(d.name, host);
      placed.set(host, (placed.get(host) ?? 0) + 1);
    } catch (error) {
      assert.ok(error instanceof PlacementError);
      refused++;
    }
  }
  // a: 512/64 = 8, b: 256/64 = 4, c: 3 vCPUs = 3 domains.
  assert.deepEqual(Object.fromEntries(placed), { a: 8, b: 4, c: 3 });
  assert.equal(refused, 15);
  for (const [name, load] of hostLoads(farm)) {
    assert.ok(load.freeMemoryBytes >= 0 && load.freeVcpus >= 0, `${name} overcommitted`);
  }
});

Deno.test("place() honours maintenance, exclusions, labels, placement.host and anti-affinity", () => {
  const farm = view([host("a", 4096, 8, { rack: "1" }), host("b", 1024, 8, { rack: "2" })]);
  farm.maintenance.add("a");
  assert.equal(place(domain("x", 64), farm).host, "b");
  farm.maintenance.clear();
  assert.equal(place(domain("x", 64), farm, { exclude: ["a"] }).host, "b");
  assert.equal(place(domain("x", 64, { placement: { labels: { rack: "2" } } }), farm).host, "b");
  assert.equal(place(domain("x", 64, { placement: { host: "b" } }), farm).host, "b");
  const db1 = domain("db1", 64, { placement: { antiAffinity: "db" } });
  farm.definitions.set("db1", db1);
  farm.owners.set("db1", "a");
  assert.equal(place(domain("db2", 64, { placement: { antiAffinity: "db" } }), farm).host, "b");
  farm.owners.set("db3", "b");
  farm.definitions.set("db3", domain("db3", 64, { placement: { antiAffinity: "db" } }));
  assert.throws(
    () => place(domain("db2", 64, { placement: { antiAffinity: "db" } }), farm),
    /No host can run 'db2'.*a: runs 'db1' of anti-affinity group db; b: runs 'db3'/,
  );
  assert.throws(
    () => place(domain("x", 64, { placement: { labels: { rack: "9" } } }), farm),
    /no label rack=9/,
  );
  assert.throws(() => place(domain("x", 64), view([])), /the farm has no live host/);
});

Deno.test("place() puts a domain only where the pools of its disks are active", () => {
  const farm = view([
    { ...host("a", 4096, 8), pools: [] },
    { ...host("b", 1024, 8), pools: ["shared"] },
  ]);
  const d = domain("x", 64, { disks: [{ pool: "shared", volume: "x.qcow2" }] });
  assert.equal(place(d, farm).host, "b");
  farm.hosts[1].pools = [];
  assert.throws(() => place(d, farm), /pool shared is not active there/);
});

Deno.test("place() keeps a domain on the preferred host while it qualifies, never beyond", () => {
  const farm = view([host("a", 256, 4), host("b", 2048, 4)]);
  const first = place(domain("x", 128), farm, { prefer: "a" });
  assert.deepEqual([first.host, /the host asked/.test(first.reason)], ["a", true]);
  // a is full: the preference yields to placement, which never overcommits.
  farm.definitions.set("y", domain("y", 200));
  farm.owners.set("y", "a");
  assert.equal(place(domain("x", 128), farm, { prefer: "a" }).host, "b");
  // Maintenance and exclusion beat the preference too.
  farm.owners.delete("y");
  farm.maintenance.add("a");
  assert.equal(place(domain("x", 128), farm, { prefer: "a" }).host, "b");
  farm.maintenance.clear();
  assert.equal(place(domain("x", 128), farm, { prefer: "a", exclude: ["a"] }).host, "b");
});
