import assert from "node:assert/strict";
import * as net from "node:net";
import * as tls from "node:tls";
import {
  connectMigration,
  isLoopback,
  listenMigration,
  type MigrationChannel,
  MigrationChannelError,
  type MigrationTlsFiles,
} from "./channel.ts";
import { makeCa, makeHostCert } from "./test_certs.ts";
import { Command, encodeHeader } from "../../vmm/migration/protocol.ts";
import { MigrationProtocolError } from "../../vmm/migration/protocol.ts";

async function farm() {
  const dir = await Deno.makeTempDir({ prefix: "mig-tls-" });
  const ca = await makeCa(dir, "farm");
  const rogueCa = await makeCa(dir, "rogue");
  const a = await makeHostCert(dir, "host-a", ca);
  const b = await makeHostCert(dir, "host-b", ca);
  const rogue = await makeHostCert(dir, "rogue-host", rogueCa);
  const files = (host: { cert: string; key: string }): MigrationTlsFiles => ({
    cert: host.cert,
    key: host.key,
    ca: ca.cert,
  });
  return { dir, ca, rogueCa, a: files(a), b: files(b), rogue };
}

/** A listener that records channels and refusals. */
async function listener(tlsFiles: MigrationTlsFiles) {
  const channels: MigrationChannel[] = [];
  const refusals: string[] = [];
  const server = await listenMigration(
    { host: "127.0.0.1", port: 0, security: { tls: tlsFiles } },
    (channel) => channels.push(channel),
    (reason) => refusals.push(reason),
  );
  return { server, channels, refusals };
}

/** Asserts `run` rejects with an instance of `type` whose message includes `text`. */
async function rejects(
  run: () => Promise<unknown>,
  type: abstract new (...args: never[]) => Error = Error,
  text = "",
): Promise<void> {
  await assert.rejects(run, (error) => error instanceof type && error.message.includes(text));
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("mutual TLS: two hosts of one CA exchange frames both ways", async () => {
  const f = await farm();
  const { server, channels } = await listener(f.b);
  try {
    const client = await connectMigration({
      host: "127.0.0.1",
      port: server.port,
      security: { tls: f.a },
    });
    await client.writer.send(Command.COMPLETE);
    for (let i = 0; i < 50 && channels.length === 0; i++) await wait(20);
    assert.equal(channels.length, 1);
    assert(channels[0].peer.includes("CN=host-a"), channels[0].peer);
    const frame = await channels[0].reader.next();
    assert.equal(frame?.command, Command.COMPLETE);
    await channels[0].writer.send(Command.ACK, new TextEncoder().encode("{}"));
    const answer = await client.reader.next();
    assert.equal(answer?.command, Command.ACK);
    client.close();
    assert.equal(await channels[0].reader.next(), null);
    channels[0].close();
  } finally {
    await server.close();
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("mutual TLS: a client with a certificate from another CA is refused before any frame", async () => {
  const f = await farm();
  const { server, channels, refusals } = await listener(f.b);
  try {
    // The rogue trusts the farm CA (so it accepts the server) but its own cert is not the farm's.
    const attempt = connectMigration({
      host: "127.0.0.1",
      port: server.port,
      security: { tls: { cert: f.rogue.cert, key: f.rogue.key, ca: f.ca.cert } },
    }).then(async (channel) => {
      // TLS 1.3: the client may finish first; the server's alert arrives on the first read.
      await channel.writer.send(Command.COMPLETE).catch(() => {});
      return await channel.reader.next();
    });
    // Refused (an error) or cut (no frame): never a frame from the server.
    assert.equal(await attempt.catch(() => null), null);
    for (let i = 0; i < 50 && refusals.length === 0; i++) await wait(20);
    assert.equal(channels.length, 0);
    assert(refusals.length >= 1);
  } finally {
    await server.close();
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("mutual TLS: a client without any certificate is refused", async () => {
  const f = await farm();
  const { server, channels, refusals } = await listener(f.b);
  try {
    const ca = await Deno.readTextFile(f.ca.cert);
    const result = await new Promise<string>((resolve) => {
      const socket = tls.connect({ host: "127.0.0.1", port: server.port, ca }, () => {
        socket.write(encodeHeader(Command.COMPLETE, 0));
      });
      socket.on("data", () => resolve("data"));
      socket.on("error", () => resolve("error"));
      socket.on("close", () => resolve("closed"));
    });
    assert(result !== "data");
    for (let i = 0; i < 50 && refusals.length === 0; i++) await wait(20);
    assert.equal(channels.length, 0);
  } finally {
    await server.close();
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("mutual TLS: a plaintext client gets nothing from a TLS listener", async () => {
  const f = await farm();
  const { server, channels } = await listener(f.b);
  try {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const socket = net.connect({ host: "127.0.0.1", port: server.port }, () => {
        socket.write(encodeHeader(Command.START, 2));
        socket.write("{}");
      });
      socket.on("error", done);
      socket.on("close", done);
      // What matters is that no channel reaches the daemon; do not hang on the close.
      const timer = setTimeout(() => socket.destroy(), 5_000);
    });
    assert.equal(channels.length, 0);
  } finally {
    await server.close();
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("the client refuses a server whose certificate is from another CA", async () => {
  const f = await farm();
  const { server } = await listener({ cert: f.rogue.cert, key: f.rogue.key, ca: f.ca.cert });
  try {
    await rejects(
      () => connectMigration({ host: "127.0.0.1", port: server.port, security: { tls: f.a } }),
      MigrationChannelError,
    );
  } finally {
    await server.close();
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("insecure mode is refused outside loopback, on both ends", async () => {
  assert(isLoopback("127.0.0.1") && isLoopback("::1") && isLoopback("localhost"));
  assert(!isLoopback("10.0.0.1") && !isLoopback("0.0.0.0"));
  await rejects(
    () => listenMigration({ host: "0.0.0.0", port: 0, security: { insecure: true } }, () => {}),
    MigrationChannelError,
    "loopback",
  );
  await rejects(
    () => connectMigration({ host: "192.0.2.1", port: 1, security: { insecure: true } }),
    MigrationChannelError,
    "loopback",
  );
});

Deno.test("a hostile peer: an oversized length is refused without reading the payload", async () => {
  const channels: MigrationChannel[] = [];
  const server = await listenMigration(
    { host: "127.0.0.1", port: 0, security: { insecure: true } },
    (channel) => channels.push(channel),
  );
  try {
    const socket = net.connect({ host: "127.0.0.1", port: server.port });
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.write(encodeHeader(Command.START, 2 ** 40));
    for (let i = 0; i < 50 && channels.length === 0; i++) await wait(20);
    await rejects(() => channels[0].reader.next(), MigrationProtocolError, "at most");
    channels[0].close();
    socket.destroy();
  } finally {
    await server.close();
  }
});

Deno.test("a hostile peer: garbage and a cut inside a frame are refused", async () => {
  const channels: MigrationChannel[] = [];
  const server = await listenMigration(
    { host: "127.0.0.1", port: 0, security: { insecure: true } },
    (channel) => channels.push(channel),
  );
  try {
    const garbage = net.connect({ host: "127.0.0.1", port: server.port });
    await new Promise((resolve) => garbage.once("connect", resolve));
    garbage.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    const cut = net.connect({ host: "127.0.0.1", port: server.port });
    await new Promise((resolve) => cut.once("connect", resolve));
    for (let i = 0; i < 50 && channels.length < 2; i++) await wait(20);
    await rejects(() => channels[0].reader.next(), MigrationProtocolError, "unknown command");
    cut.end(encodeHeader(Command.ABANDON, 100)); // announces 100 bytes, sends none
    await rejects(() => channels[1].reader.next(), MigrationProtocolError, "ended inside");
    channels.forEach((channel) => channel.close());
    garbage.destroy();
  } finally {
    await server.close();
  }
});
