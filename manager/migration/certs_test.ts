import assert from "node:assert/strict";
import { ensureCa, makeHostCert, parseCertHost } from "./certs.ts";
import { connectMigration, listenMigration, type MigrationChannel } from "./channel.ts";
import { migrationSecurity } from "./listen_options.ts";
import { Command } from "../../vmm/migration/protocol.ts";

Deno.test("parseCertHost reads NAME[=ADDR,...] and refuses what is neither a name nor an IP", () => {
  assert.deepEqual(parseCertHost("host-a"), { name: "host-a", addresses: [] });
  assert.deepEqual(parseCertHost("host-a=10.0.0.1,fd00::1,a.example"), {
    name: "host-a",
    addresses: ["10.0.0.1", "fd00::1", "a.example"],
  });
  assert.throws(() => parseCertHost("bad name"), /neither an IP address nor a host name/);
  assert.throws(() => parseCertHost("h=10.0.0.1,/etc"), /"\/etc"/);
});

Deno.test("certificates made by ensureCa and makeHostCert carry a mutual-TLS migration channel", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mig-certs-" });
  const channels: MigrationChannel[] = [];
  const accepted: MigrationChannel[] = [];
  try {
    const ca = await ensureCa(dir);
    assert.equal(ca.made, true);
    assert.equal((await ensureCa(dir)).made, false, "an existing CA is kept");
    const a = await makeHostCert(dir, parseCertHost("host-a=127.0.0.1"), ca);
    const b = await makeHostCert(dir, parseCertHost("host-b=127.0.0.1"), ca);
    assert.equal((await Deno.stat(a.key)).mode! & 0o777, 0o600);
    // The daemon's own checks accept them (the key's mode among them).
    const securityA = await migrationSecurity({ ...a, ca: ca.cert }, "127.0.0.1");
    const securityB = await migrationSecurity({ ...b, ca: ca.cert }, "127.0.0.1");
    const server = await listenMigration(
      { host: "127.0.0.1", port: 0, security: securityB },
      (channel) => accepted.push(channel),
    );
    try {
      const client = await connectMigration({
        host: "127.0.0.1",
        port: server.port,
        security: securityA,
      });
      channels.push(client);
      await client.writer.send(Command.COMPLETE, new Uint8Array());
      while (accepted.length < 1) await new Promise((r) => setTimeout(r, 10));
      const frame = await accepted[0].reader.next();
      assert.equal(frame?.command, Command.COMPLETE);
    } finally {
      for (const channel of [...channels, ...accepted]) channel.close();
      await server.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
