import assert from "node:assert/strict";
import { liveTimeoutMs, migrationAddress } from "./farm_live_move.ts";
import type { HostRecord } from "./farm_records.ts";

function host(address: string, migrationListen?: string): HostRecord {
  return {
    name: "h",
    address,
    capacity: { memoryBytes: 1, vcpus: 1 },
    labels: {},
    ...(migrationListen ? { migrationListen } : {}),
    version: "test",
    joinedAt: "",
    updatedAt: "",
  };
}

Deno.test("migrationAddress() dials the listener, the host's address when it listens on all", () => {
  assert.equal(migrationAddress(host("10.0.0.2")), undefined);
  assert.equal(migrationAddress(host("10.0.0.2", "10.0.0.9:4789")), "10.0.0.9:4789");
  assert.equal(migrationAddress(host("10.0.0.2", "0.0.0.0:4789")), "10.0.0.2:4789");
  assert.equal(migrationAddress(host("node2", "[::]:4789")), "node2:4789");
  assert.equal(migrationAddress(host("fd00::2", "[::]:4789")), "[fd00::2]:4789");
  assert.equal(migrationAddress(host("x", "[fd00::9]:4789")), "[fd00::9]:4789");
  assert.equal(migrationAddress(host("x", "no port")), undefined);
});

Deno.test("liveTimeoutMs() is the migration's timeout plus a margin", () => {
  assert.equal(liveTimeoutMs({}), 3600_000 + 120_000);
  assert.equal(liveTimeoutMs({ live: { timeoutS: 60 } }), 60_000 + 120_000);
});
