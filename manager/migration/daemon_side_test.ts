import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { listenMigration, type MigrationChannel, type MigrationTlsFiles } from "./channel.ts";
import { handleIncoming, type IncomingPolicy, migrateOutgoing } from "./daemon_side.ts";
import { makeCa, makeHostCert } from "./test_certs.ts";
import { DEFAULT_CONVERGENCE } from "../../vmm/migration/convergence.ts";
import { receiveMigration } from "../../vmm/migration/receiver.ts";
import { sendMigration } from "../../vmm/migration/sender.ts";
import { FakeSource, FakeTarget, PAGE } from "../../vmm/migration/testing/fakes.ts";
import { unixChannel } from "../../vmm/migration/vmm_endpoint.ts";
import { DenovisorError } from "../../common/errors.ts";

const RANGES = [{ start: 0, size: 128 * PAGE }];
const START = {
  domain: "web1",
  config: { memoryMiB: 1 },
  definition: { name: "web1", memory: "1M" },
  ram: [{ guestAddress: 0, size: 128 * PAGE }],
  disks: [],
};

async function hosts() {
  const dir = await Deno.makeTempDir({ prefix: "mig-daemons-" });
  const ca = await makeCa(dir, "farm");
  const files = async (cn: string): Promise<MigrationTlsFiles> => ({
    ...(await makeHostCert(dir, cn, ca)),
    ca: ca.cert,
  });
  return { dir, a: await files("host-a"), b: await files("host-b") };
}

/** A destination daemon whose VMMs are stand-ins running the receiver on a FakeTarget. */
async function destination(tls: MigrationTlsFiles, runDir: string, refuse?: string) {
  const target = new FakeTarget();
  const events: string[] = [];
  const results: Array<Promise<string>> = [];
  const policy: IncomingPolicy = () => {
    if (refuse) return Promise.reject(new DenovisorError("conflict", refuse));
    return Promise.resolve({
      runDir,
      spawn: (socket: string) => {
        void (async () => {
          const channel = await unixChannel(socket);
          await receiveMigration(channel, target).catch(() => {});
          channel.close();
        })();
        return Promise.resolve();
      },
      succeeded: (s) => {
        events.push(`defined ${s.domain} ${JSON.stringify(s.definition)}`);
        return Promise.resolve();
      },
      failed: (reason) => {
        events.push(`failed: ${reason}`);
        return Promise.resolve();
      },
    });
  };
  const server = await listenMigration(
    { host: "127.0.0.1", port: 0, security: { tls } },
    (channel: MigrationChannel) => {
      const result = handleIncoming(channel, policy);
      result.catch(() => {}); // the test awaits it
      results.push(result);
    },
  );
  return { server, target, events, results };
}

Deno.test("two daemons over mutual TLS move a guest between stand-in VMMs", async () => {
  const h = await hosts();
  const dest = await destination(h.b, h.dir);
  try {
    const source = new FakeSource(RANGES);
    source.memory.fill(PAGE, 4 * PAGE, 0x5a);
    source.guest = (memory, round) => {
      if (round < 3) memory.writeU32(100 * PAGE, round + 1);
    };
    const rounds: number[] = [];
    const answer = await migrateOutgoing({
      runDir: h.dir,
      host: "127.0.0.1",
      port: dest.server.port,
      security: { tls: h.a },
      startVmm: async (socket) => {
        const channel = await unixChannel(socket);
        try {
          return await sendMigration(source, channel, START, {
            ...DEFAULT_CONVERGENCE,
            maxDowntimeMs: 0,
            autoConverge: false,
            offline: false,
            bandwidth: 0,
            completeTimeoutMs: 5_000,
          });
        } finally {
          channel.close();
        }
      },
      onProgress: (p) => rounds.push(p.iteration),
    });
    assert.ok((answer as { iterations: number }).iterations >= 3);
    assert.equal(await dest.results[0], "web1");
    const got = dest.target.memory!.read(0, 128 * PAGE);
    assert.ok(Buffer.from(got).equals(Buffer.from(source.memory.regions[0].bytes)));
    assert.equal(dest.target.memory!.readU32(100 * PAGE), 3);
    assert.deepEqual(dest.events, ['defined web1 {"name":"web1","memory":"1M"}']);
    assert.ok(Math.max(...rounds) >= 2);
    assert.equal(source.running, false);
  } finally {
    await dest.server.close();
    await Deno.remove(h.dir, { recursive: true });
  }
});

Deno.test("a destination daemon's refusal reaches the source VMM, which runs on", async () => {
  const h = await hosts();
  const dest = await destination(h.b, h.dir, "domain web1 is already running here");
  try {
    const source = new FakeSource(RANGES);
    await assert.rejects(
      migrateOutgoing({
        runDir: h.dir,
        host: "127.0.0.1",
        port: dest.server.port,
        security: { tls: h.a },
        startVmm: async (socket) => {
          const channel = await unixChannel(socket);
          try {
            return await sendMigration(source, channel, START, {
              ...DEFAULT_CONVERGENCE,
              offline: false,
              bandwidth: 0,
              completeTimeoutMs: 5_000,
            });
          } finally {
            channel.close();
          }
        },
      }),
      (e: Error) => e.message.includes("already running here"),
    );
    await assert.rejects(dest.results[0], /already running/);
    assert.equal(source.running, true);
    assert.deepEqual(source.calls, []);
  } finally {
    await dest.server.close();
    await Deno.remove(h.dir, { recursive: true });
  }
});
