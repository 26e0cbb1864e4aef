import assert from "node:assert/strict";
import { join } from "node:path";
import {
  MigrationOptionError,
  migrationSecurity,
  parseHostPort,
  parseMigrationListen,
} from "./listen_options.ts";

const refused = (text: string) => (error: unknown) =>
  error instanceof MigrationOptionError && error.message.includes(text);

Deno.test("parseHostPort() takes IPv4, names and bracketed IPv6, and refuses the rest", () => {
  assert.deepEqual(parseHostPort("10.0.0.2:4789", "--x"), { host: "10.0.0.2", port: 4789 });
  assert.deepEqual(parseHostPort("host-b:1", "--x"), { host: "host-b", port: 1 });
  assert.deepEqual(parseHostPort("[fd00::2]:4789", "--x"), { host: "fd00::2", port: 4789 });
  for (const bad of ["10.0.0.2", ":4789", "h:0", "h:65536", "fd00::2:4789", "[zz]:1", "h:p"]) {
    assert.throws(() => parseHostPort(bad, "--migration-listen"), refused("--migration-listen"));
  }
});

Deno.test("migration security: all three files with a private key, or insecure on loopback only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mig-opts-" });
  try {
    const key = join(dir, "host.key");
    await Deno.writeTextFile(key, "k", { mode: 0o600 });
    await Deno.chmod(key, 0o600);
    const files = { cert: join(dir, "c.pem"), key, ca: join(dir, "ca.pem") };
    assert.deepEqual(await migrationSecurity(files, "10.0.0.1"), { tls: files });
    await Deno.chmod(key, 0o644);
    await assert.rejects(migrationSecurity(files, "10.0.0.1"), refused("chmod 600"));
    await assert.rejects(migrationSecurity({ cert: files.cert }, "10.0.0.1"), refused("needs"));
    assert.deepEqual(await migrationSecurity({ insecure: true }, "127.0.0.1"), { insecure: true });
    await assert.rejects(migrationSecurity({ insecure: true }, "10.0.0.1"), refused("loopback"));
    await assert.rejects(
      migrationSecurity({ insecure: true, ...files }, "127.0.0.1"),
      refused("exclude"),
    );
    assert.equal(await parseMigrationListen({}), null);
    assert.deepEqual(await parseMigrationListen({ listen: "127.0.0.1:4789", insecure: true }), {
      host: "127.0.0.1",
      port: 4789,
      security: { insecure: true },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
