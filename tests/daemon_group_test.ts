/**
 * `--socket-group`: members (here `nobody` in `nogroup`) reach a confined API through
 * api.sock; root reaches everything through admin.sock. No VMM is started.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ApiClient } from "../manager/api_client.ts";
import { evalAsNobody, nobodyDirs, startGroupDaemon } from "./nobody_support.ts";

/** Each request sent by `nobody` on `socket`, and the statuses it got. */
async function asNobody(
  socket: string,
  denoDir: string,
  requests: [string, string, unknown?][],
): Promise<number[]> {
  const script = `
    const client = Deno.createHttpClient({ proxy: { transport: "unix", path: ${
    JSON.stringify(socket)
  } } });
    const statuses = [];
    for (const [method, path, body] of ${JSON.stringify(requests)}) {
      const r = await fetch("http://d" + path, {
        method, client,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      await r.body?.cancel();
      statuses.push(r.status);
    }
    console.log(JSON.stringify(statuses));`;
  const output = await evalAsNobody(script, denoDir);
  const text = new TextDecoder().decode(output.stdout).trim();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  return JSON.parse(text);
}

Deno.test({
  name: "daemon: socket-group members are confined; root keeps every power through admin.sock",
  ignore: Deno.uid() !== 0, // Runs a client as nobody (setpriv).
  fn: async () => {
    const { dir, denoDir } = await nobodyDirs("denovisor-group-test-");
    const socket = `${dir}/run/api.sock`;
    const roots = `${dir}/pools`;
    await Deno.mkdir(roots, { mode: 0o755 });
    const child = await startGroupDaemon(`${dir}/state`, socket, ["--pool-root", roots]);
    try {
      assert.equal((await Deno.stat(`${dir}/run/admin.sock`)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(socket)).mode! & 0o777, 0o660);
      // A pool defined outside the pool roots (root may).
      using client = new ApiClient(socket);
      await client.post("/v1/pools", { name: "rootpool", type: "dir", path: `${dir}/elsewhere` });
      const statuses = await asNobody(socket, denoDir, [
        ["GET", "/v1/host"],
        ["POST", "/v1/pools", { name: "roots", type: "dir", path: "/root/pool" }],
        ["POST", "/v1/pools", { name: "disk", type: "block", path: "/dev/sda" }],
        ["POST", "/v1/pools", { name: "mine", type: "dir", path: `${roots}/mine` }],
        ["POST", "/v1/domains", { name: "a", boot: { demo: true }, disks: [{ path: "/dev/sda" }] }],
        ["POST", "/v1/domains", { name: "b", boot: { kernel: "/etc/shadow" } }],
        ["POST", "/v1/domains", { name: "c", boot: { demo: true } }],
        ["POST", "/v1/pools/mine/volumes", { name: "v", import: "/etc/shadow" }],
        ["POST", "/v1/pools/mine/volumes/v/export", { target: "/root/.ssh/authorized_keys" }],
        ["DELETE", "/v1/pools/mine"],
        ["POST", "/v1/pools/rootpool/build"],
        ["POST", "/v1/pools/rootpool/bui%6Cd"],
        ["DELETE", "/v1/pools/rootpool?delete=1"],
        ["POST", "/v1/restore", { path: "/root/state" }],
        ["POST", "/v1/domains/c/start"],
      ]);
      assert.deepEqual(
        statuses.slice(0, 14),
        [200, 403, 403, 201, 403, 403, 201, 403, 403, 204, 403, 403, 403, 403],
      );
      // start is allowed (it fails here for want of KVM or is refused, but not with 403).
      assert.notEqual(statuses[14], 403);
      // Root (this test) goes through admin.sock: a host path as a disk is root's to give.
      await Deno.writeFile(`${dir}/disk.raw`, new Uint8Array(1 << 20));
      const info = await client.post<{ name: string }>("/v1/domains", {
        name: "rootdisk",
        boot: { demo: true },
        disks: [{ path: `${dir}/disk.raw` }],
      });
      assert.equal(info.name, "rootdisk");
    } finally {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(denoDir, { recursive: true });
    }
  },
});
