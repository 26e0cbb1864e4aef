/**
 * The daemon API against hostile or careless clients (issue 17), with requests that
 * never start a VMM, so no KVM is needed: protocol answers (405, 409, 413, 415), names
 * that could not start, and disks whose backing files reach out of the pools.
 *
 * @module
 */

import assert from "node:assert/strict";
import { TestDaemon } from "./daemon_support.ts";
import { createImage } from "../storage/image.ts";
import { denovisor } from "./cli_support.ts";

/** One raw request on the daemon's socket: status, Allow and the error message. */
async function send(
  daemon: TestDaemon,
  method: string,
  path: string,
  body?: string,
  type = "application/json",
) {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: daemon.socket } });
  try {
    const response = await fetch(`http://denovisor${path}`, {
      method,
      body,
      client,
      headers: body === undefined ? {} : { "content-type": type },
    });
    const text = await response.text();
    let message = text;
    try {
      message = JSON.parse(text).error?.message ?? text;
    } catch {
      // Not JSON.
    }
    return { status: response.status, allow: response.headers.get("allow"), message };
  } finally {
    client.close();
  }
}

Deno.test("daemon: wrong methods get 405, text bodies 415, huge bodies 413, a taken name 409", async () => {
  const daemon = await TestDaemon.start();
  try {
    const method = await send(daemon, "PATCH", "/v1/domains");
    assert.equal(method.status, 405);
    assert.equal(method.allow, "GET, POST");
    const definition = JSON.stringify({ name: "web", boot: { demo: true } });
    const text = await send(daemon, "POST", "/v1/domains", definition, "text/plain");
    assert.equal(text.status, 415, text.message);
    const huge = await send(
      daemon,
      "POST",
      "/v1/domains",
      JSON.stringify({ name: "web", boot: { demo: true }, padding: "x".repeat(2 << 20) }),
    );
    assert.equal(huge.status, 413, huge.message);
    const twice = await send(
      daemon,
      "POST",
      "/v1/domains",
      '{"name":"web","boot":{"demo":true},"name":"other"}',
    );
    assert.equal(twice.status, 400);
    assert.match(twice.message, /^name: the key appears twice/);
    assert.equal((await send(daemon, "POST", "/v1/domains", definition)).status, 201);
    const again = await send(daemon, "POST", "/v1/domains", definition);
    assert.equal(again.status, 409);
    assert.match(again.message, /already exists/);
  } finally {
    await daemon.cleanup();
  }
});

Deno.test("daemon: a name whose sockets would not fit a unix socket path is refused at define", async () => {
  const daemon = await TestDaemon.start();
  try {
    const name = "n".repeat(64);
    const result = await send(
      daemon,
      "POST",
      "/v1/domains",
      JSON.stringify({ name, boot: { demo: true } }),
    );
    assert.equal(result.status, 400, result.message);
    assert.match(result.message, /^name: '.*' is too long for this daemon: its console socket /);
    assert.equal((await send(daemon, "GET", `/v1/domains/${name}`)).status, 404);
  } finally {
    await daemon.cleanup();
  }
});

Deno.test("daemon: a disk whose backing file is outside the pools and its own directory does not start", async () => {
  const daemon = await TestDaemon.start();
  const elsewhere = await Deno.makeTempDir({ prefix: "denovisor-host-file-" });
  try {
    // A "host file" (as /etc/shadow would be) and a crafted overlay pointing at it.
    createImage(`${elsewhere}/secret.raw`, { format: "raw", size: 1 << 20 });
    const images = `${daemon.dir}/images`;
    await Deno.mkdir(images);
    createImage(`${images}/evil.qcow2`, {
      format: "qcow2",
      backingFile: `${elsewhere}/secret.raw`,
      backingFormat: "raw",
    });
    await daemon.client.post("/v1/domains", {
      name: "evil",
      boot: { demo: true },
      disks: [{ path: `${images}/evil.qcow2` }],
    });
    const start = await send(daemon, "POST", "/v1/domains/evil/start", "{}");
    assert.equal(start.status, 403, start.message);
    assert.match(start.message, /^disks\[0\]: .*outside the allowed directories/);
    assert.equal((await daemon.info("evil")).state, "shutoff");
  } finally {
    await daemon.cleanup();
    await Deno.remove(elsewhere, { recursive: true });
  }
});

Deno.test("daemon: undefine removes the domain's log; a new domain of that name starts clean", async () => {
  const daemon = await TestDaemon.start();
  try {
    const log = `${daemon.dir}/logs/web.log`;
    await daemon.client.post("/v1/domains", { name: "web", boot: { demo: true } });
    await Deno.writeTextFile(log, "the old guest's secrets\n", { mode: 0o600 });
    await daemon.client.delete("/v1/domains/web");
    assert.equal(await Deno.stat(log).then(() => true, () => false), false);
    // A log left behind (a transient domain, an older daemon) is not shown either.
    await Deno.writeTextFile(log, "the old guest's secrets\n", { mode: 0o600 });
    await daemon.client.post("/v1/domains", { name: "web", boot: { demo: true } });
    const logs = await daemon.client.request("GET", "/v1/domains/web/logs");
    assert.equal(await logs.text(), "");
  } finally {
    await daemon.cleanup();
  }
});

Deno.test({
  name: "daemon: a socket or state directory owned by another user is refused",
  ignore: Deno.uid() !== 0, // Giving a directory away (chown) needs root.
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "denovisor-owner-test-" });
    try {
      for (const which of ["socket", "state"] as const) {
        const run = `${root}/${which}-case/run`;
        const state = `${root}/${which}-case/state`;
        const theirs = which === "socket" ? run : state;
        await Deno.mkdir(theirs, { recursive: true, mode: 0o700 });
        await Deno.chown(theirs, 65534, 65534);
        const r = await denovisor(
          ["daemon", "--state-dir", state, "--socket", `${run}/api.sock`],
          { timeoutMs: 60_000 },
        );
        assert.notEqual(r.code, 0, `the daemon started:\n${r.stdout}${r.stderr}`);
        assert.ok(r.code !== 137, "the daemon ran until the test killed it");
        assert.match(r.stderr, new RegExp(`${theirs} is owned by uid 65534`), r.stderr);
        await assert.rejects(Deno.lstat(`${run}/api.sock`), Deno.errors.NotFound);
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("daemon: an export into a missing directory is a 400 that says so", async () => {
  const daemon = await TestDaemon.start();
  try {
    const client = daemon.client;
    await client.post("/v1/pools", { name: "p", type: "dir", path: `${daemon.dir}/pool` });
    await client.post("/v1/pools/p/build");
    await client.post("/v1/pools/p/start");
    await client.post("/v1/pools/p/volumes", { name: "v", size: "1M", format: "raw" });
    const result = await send(
      daemon,
      "POST",
      "/v1/pools/p/volumes/v/export",
      JSON.stringify({ target: `${daemon.dir}/missing/v.raw` }),
    );
    assert.equal(result.status, 400, result.message);
    assert.match(result.message, /^target: .*missing is not an existing directory/);
  } finally {
    await daemon.cleanup();
  }
});

Deno.test("daemon: what it creates is private even when started with umask 022", async () => {
  const previous = Deno.umask(0o022);
  let daemon: TestDaemon;
  try {
    daemon = await TestDaemon.start();
  } finally {
    Deno.umask(previous);
  }
  try {
    const client = daemon.client;
    await client.post("/v1/domains", { name: "web", boot: { demo: true } });
    await client.post("/v1/pools", { name: "p", type: "dir", path: `${daemon.dir}/pool` });
    await client.post("/v1/pools/p/build");
    await client.post("/v1/pools/p/start");
    await client.post("/v1/pools/p/volumes", { name: "v", size: "1M", format: "raw" });
    const open: string[] = [];
    const visit = (dir: string) => {
      for (const entry of Deno.readDirSync(dir)) {
        const path = `${dir}/${entry.name}`;
        const info = Deno.lstatSync(path);
        if (info.isSocket || info.isSymlink) continue;
        if ((info.mode! & 0o077) !== 0) open.push(`${path} ${(info.mode! & 0o777).toString(8)}`);
        if (info.isDirectory) visit(path);
      }
    };
    visit(daemon.dir);
    assert.deepEqual(open, []);
  } finally {
    await daemon.cleanup();
  }
});

Deno.test("daemon: an import whose backing file lies outside the pool is refused with 403", async () => {
  const daemon = await TestDaemon.start();
  const elsewhere = await Deno.makeTempDir({ prefix: "denovisor-import-src-" });
  try {
    createImage(`${elsewhere}/secret.raw`, { format: "raw", size: 1 << 20 });
    createImage(`${elsewhere}/evil.qcow2`, {
      format: "qcow2",
      backingFile: `${elsewhere}/secret.raw`,
      backingFormat: "raw",
    });
    const client = daemon.client;
    await client.post("/v1/pools", { name: "p", type: "dir", path: `${daemon.dir}/pool` });
    await client.post("/v1/pools/p/build");
    await client.post("/v1/pools/p/start");
    const result = await send(
      daemon,
      "POST",
      "/v1/pools/p/volumes",
      JSON.stringify({ name: "v", import: `${elsewhere}/evil.qcow2` }),
    );
    assert.equal(result.status, 403, result.message);
    assert.match(result.message, /outside the allowed directories/);
  } finally {
    await daemon.cleanup();
    await Deno.remove(elsewhere, { recursive: true });
  }
});
