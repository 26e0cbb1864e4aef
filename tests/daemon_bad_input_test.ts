/**
 * What the daemon refuses, and how: malformed and impossible definitions (400 with the
 * precise message, nothing written), unknown domains (404), wrong states (409 that says
 * what to do), clients without the right to the socket, and a VMM that hangs (504, and
 * the daemon keeps answering).
 */

import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { domainGuest, processAlive, TestDaemon, vmmPids } from "./daemon_support.ts";
import { buildBzImage } from "../core/boot/_test_images.ts";
import type { DomainInfo, DomainSummary } from "../manager/api_types.ts";

/** Sends a raw body (not necessarily JSON) and returns status and error message. */
async function send(daemon: TestDaemon, method: string, path: string, body?: string) {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: daemon.socket } });
  try {
    const headers = body === undefined ? undefined : { "content-type": "application/json" };
    const response = await fetch(`http://denovisor${path}`, { method, body, client, headers });
    const text = await response.text();
    let message = text;
    try {
      message = JSON.parse(text).error?.message ?? text;
    } catch {
      // Not JSON.
    }
    return { status: response.status, message };
  } finally {
    client.close();
  }
}

Deno.test("daemon: bad definitions get 400 with the precise message and leave nothing behind", async () => {
  const daemon = await TestDaemon.start();
  try {
    const define = (body: string) => send(daemon, "POST", "/v1/domains", body);
    const demo = (extra: Record<string, unknown>) =>
      JSON.stringify({ name: "bad", boot: { demo: true }, ...extra });
    const cases: Array<[string, RegExp | string]> = [
      ["{ nope", /^The request body is not valid JSON: /],
      [demo({ colour: "red" }), /^colour: unknown field; /],
      [demo({ vcpus: "two" }), /^vcpus: /],
      [demo({ vcpus: 0 }), /^vcpus: /],
      [demo({ memory: 1 }), /^memory: /],
      [
        JSON.stringify({ name: "../etc", boot: { demo: true } }),
        /^name: "..\/etc" is not a valid name/,
      ],
      [demo({ disks: [{ path: "relative.img" }] }), /^disks\[0\]\.path: /],
    ];
    for (const [body, expected] of cases) {
      const { status, message } = await define(body);
      assert.equal(status, 400, `${body} -> ${message}`);
      if (typeof expected === "string") assert.equal(message, expected);
      else assert.match(message, expected);
    }
    // Duplicate names and MACs.
    await daemon.client.post("/v1/domains", {
      name: "first",
      boot: { demo: true },
      nics: [{ mac: "52:54:00:12:34:56" }],
    });
    assert.deepEqual(
      await define(JSON.stringify({ name: "first", boot: { demo: true } })),
      {
        status: 409,
        message:
          "name: a domain named 'first' already exists; choose another name or edit that one",
      },
    );
    const mac = await define(demo({ nics: [{ mac: "52:54:00:12:34:56" }] }));
    assert.equal(mac.status, 400);
    assert.equal(
      mac.message,
      "nics[0].mac: 52:54:00:12:34:56 is already the MAC of domain 'first' (nics[0]); leave mac out to get a generated one",
    );
    // Nothing half-written: only the one good definition exists.
    const files = [...Deno.readDirSync(`${daemon.dir}/domains`)].map((e) => e.name);
    assert.deepEqual(files.filter((f) => f.endsWith(".json") || f.startsWith(".")), ["first.json"]);
    const list = await daemon.client.get<DomainSummary[]>("/v1/domains");
    assert.deepEqual(list.map((d) => d.name), ["first"]);
    // A bad edit leaves the old definition in place.
    const edit = await send(daemon, "PUT", "/v1/domains/first", demo({ name: "first", vcpus: -1 }));
    assert.equal(edit.status, 400);
    assert.equal((await daemon.info("first")).vcpus, 1);
    assert.equal(
      (await send(daemon, "PUT", "/v1/domains/first/vcpus", `{"count": 0}`)).status,
      400,
    );
    assert.deepEqual(await send(daemon, "PUT", "/v1/domains/first/autostart", `{"on": true}`), {
      status: 400,
      // Every problem of the body, from its one schema (manager/api_schema.ts).
      message: "on: unknown field; the known fields here are enabled\nenabled: missing",
    });
  } finally {
    await daemon.cleanup();
  }
});

Deno.test("daemon: unknown domains get 404 and unknown paths say so", async () => {
  const daemon = await TestDaemon.start();
  try {
    assert.deepEqual(await send(daemon, "GET", "/v1/domains/ghost"), {
      status: 404,
      message: "No domain named 'ghost'; 'denovisor list' shows the defined domains",
    });
    assert.equal((await send(daemon, "POST", "/v1/domains/ghost/start")).status, 404);
    assert.equal((await send(daemon, "DELETE", "/v1/domains/ghost")).status, 404);
    assert.equal((await send(daemon, "GET", "/v1/nothing")).status, 404);
    await daemon.client.post("/v1/domains", { name: "d", boot: { demo: true } });
    assert.deepEqual(await send(daemon, "POST", "/v1/domains/d/explode"), {
      status: 404,
      message:
        "No domain action 'explode'; the actions are start, shutdown, destroy, reboot, reset, pause, resume",
    });
  } finally {
    await daemon.cleanup();
  }
});

kvmTest(
  "daemon: wrong states get 409 that says what to do; a disk in use read-write gets 400",
  async () => {
    const daemon = await TestDaemon.start();
    const image = await Deno.makeTempFile({ suffix: ".img" });
    try {
      await Deno.truncate(image, 1024 * 1024);
      await daemon.run(domainGuest("a", { disks: [{ path: image }] }));
      assert.deepEqual(await send(daemon, "POST", "/v1/domains/a/start"), {
        status: 409,
        message: "Domain 'a' is already running; nothing to start",
      });
      assert.deepEqual(await send(daemon, "DELETE", "/v1/domains/a"), {
        status: 409,
        message:
          "Domain 'a' is running; stop it first ('denovisor destroy a' or 'denovisor shutdown a'), then undefine it",
      });
      // Defining a second user of the image is allowed (as in libvirt); starting it is not.
      await daemon.client.post("/v1/domains", domainGuest("b", { disks: [{ path: image }] }));
      assert.deepEqual(await send(daemon, "POST", "/v1/domains/b/start"), {
        status: 400,
        message:
          `disks[0].path: ${image} is in use by running domain 'a' (disks[0], read-write); stop that domain or give a copy`,
      });
      assert.equal((await daemon.info("b")).state, "shutoff");
      // The same file under another name (a symlink, or a pool volume) is the same disk.
      const link = `${image}.link`;
      await Deno.symlink(image, link);
      await daemon.client.post("/v1/domains", domainGuest("c", { disks: [{ path: link }] }));
      const viaLink = await send(daemon, "POST", "/v1/domains/c/start");
      assert.equal(viaLink.status, 400);
      assert.match(viaLink.message, /is in use by running domain 'a'/);
      await Deno.remove(link);
      await daemon.client.post("/v1/domains/a/destroy");
      assert.deepEqual(await send(daemon, "POST", "/v1/domains/a/pause"), {
        status: 409,
        message: "Domain 'a' is shutoff; cannot pause it (start it with 'denovisor start a')",
      });
      assert.equal((await send(daemon, "POST", "/v1/domains/a/destroy")).status, 409);
    } finally {
      await daemon.cleanup();
      await Deno.remove(image);
    }
  },
  120_000,
);

Deno.test("daemon: the socket is 0600 and a non-root client is refused at it", async () => {
  const daemon = await TestDaemon.start();
  const denoDir = await Deno.makeTempDir();
  try {
    // Let everyone reach the socket file, so that its own mode is what refuses.
    await Deno.chmod(daemon.dir, 0o755);
    await Deno.chmod(denoDir, 0o777);
    assert.equal((await Deno.stat(daemon.socket)).mode! & 0o777, 0o600);
    const script = `try { await Deno.connect({ transport: "unix", path: ${
      JSON.stringify(daemon.socket)
    } }); console.log("connected"); } catch (e) { console.log(e.name + ": " + e.message); }`;
    const output = await new Deno.Command("setpriv", {
      args: [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        Deno.execPath(),
        "eval",
        script,
      ],
      env: { DENO_DIR: denoDir, HOME: denoDir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
    assert.match(text, /PermissionDenied: Permission denied/);
    // Root still gets in.
    assert.equal((await daemon.client.get<{ socket: string }>("/v1/host")).socket, daemon.socket);
  } finally {
    await daemon.cleanup();
    await Deno.remove(denoDir, { recursive: true });
  }
});

Deno.test("daemon: a hung VMM gives 504 within seconds, the daemon keeps answering, destroy still works", async () => {
  const hung = new URL("./fixtures/hung_vmm.ts", import.meta.url).pathname;
  const daemon = await TestDaemon.start({
    DENOVISOR_VMM_COMMAND: JSON.stringify([Deno.execPath(), "run", "--allow-all", hung]),
  });
  try {
    const info = await daemon.run({ name: "stuck", boot: { demo: true } });
    const started = Date.now();
    const pause = send(daemon, "POST", "/v1/domains/stuck/pause");
    // Meanwhile the daemon answers other calls at once.
    const list = await daemon.client.get<DomainSummary[]>("/v1/domains");
    assert.equal(list[0].state, "running");
    assert.ok(Date.now() - started < 4000, "list was not held up by the hung VMM");
    assert.deepEqual(await pause, {
      status: 504,
      message:
        "The VMM of domain 'stuck' did not answer POST /vm/pause within 5 s; if it stays stuck, run 'denovisor destroy stuck'",
    });
    const destroyed = await daemon.client.post<DomainInfo>("/v1/domains/stuck/destroy");
    assert.equal(destroyed.state, "shutoff");
    assert.equal(processAlive(info.pid!), false, "the hung VMM was killed");
    // A guest that ignores the shutdown request is destroyed after timeoutSeconds.
    const again = await daemon.client.post<DomainInfo>("/v1/domains/stuck/start");
    const off = await daemon.client.post<DomainInfo>("/v1/domains/stuck/shutdown", {
      timeoutSeconds: 1,
    });
    assert.equal(off.state, "shutoff");
    assert.match(
      off.lastEnd ?? "",
      /^forced off after the shutdown timeout: the guest did not power off within 1 s/,
    );
    assert.equal(processAlive(again.pid!), false);
  } finally {
    await daemon.cleanup();
  }
});

Deno.test("daemon: a kernel that needs more memory than the domain has gets 400 before any VMM", async () => {
  const daemon = await TestDaemon.start();
  const kernel = await Deno.makeTempFile({ suffix: ".bzImage" });
  try {
    await Deno.writeFile(kernel, buildBzImage()); // init_size puts its end at 19 MiB
    const definition = { name: "tiny", memory: 16, boot: { kernel } };
    const created = await send(daemon, "POST", "/v1/domains?start=1", JSON.stringify(definition));
    assert.equal(created.status, 400);
    assert.match(
      created.message,
      /^boot: .*bzImage kernel needs guest RAM up to .* but the guest has 16 MiB; raise memory$/,
    );
    // Nothing was left behind: no definition, no VMM run directory.
    assert.equal((await daemon.client.get<DomainSummary[]>("/v1/domains")).length, 0);
    assert.equal(vmmPids(daemon.dir).length, 0);
  } finally {
    await daemon.cleanup();
    await Deno.remove(kernel);
  }
});
