/**
 * The /v1/pools routes through a real unix socket: the Router with addPoolRoutes served by
 * Deno.serve, called by ApiClient and by the `denovisor pool`/`vol` CLI (exit statuses,
 * tables, --json, virsh aliases).
 */

import assert from "node:assert/strict";
import { ApiClient, ApiClientError } from "../manager/api_client.ts";
import type { PoolInfo, VolumeInfo } from "../manager/api_types.ts";
import { denovisor } from "./cli_support.ts";
import { judgeImage, poolTest, withPoolApi, withTempDir } from "./pool_support.ts";

const QEMU = ["qemu-img", "qemu-io"];

async function expectApiError(work: Promise<unknown>, code: string, pattern: RegExp) {
  await assert.rejects(work, (error: unknown) => {
    assert.ok(error instanceof ApiClientError, String(error));
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("pool routes answer precise 400, 404 and 409 errors", async () => {
  await withTempDir(async (dir) => {
    await withPoolApi(dir, {}, async (_socket, router) => {
      const call = async (method: string, path: string, body?: string) => {
        const response = await router.handle(
          new Request(`http://x${path}`, {
            method,
            body,
            headers: { "content-type": "application/json" },
          }),
        );
        return { status: response.status, body: await response.json().catch(() => null) };
      };
      let r = await call("GET", "/v1/pools/nope");
      assert.equal(r.status, 404);
      assert.match(r.body.error.message, /No pool 'nope'/);
      r = await call("POST", "/v1/pools", "{not json");
      assert.equal(r.status, 400);
      r = await call("POST", "/v1/pools", JSON.stringify({ name: "p", type: "zfs", path: "/x" }));
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /type: "zfs" is not a pool type/);
      r = await call(
        "POST",
        "/v1/pools",
        JSON.stringify({ name: "p", type: "dir", path: `${dir}/p` }),
      );
      assert.equal(r.status, 201);
      assert.equal(r.body.state, "inactive");
      r = await call("POST", "/v1/pools/p/explode");
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /Unknown pool action 'explode'/);
      r = await call("GET", "/v1/pools/p/volumes");
      assert.equal(r.status, 409);
      assert.match(r.body.error.message, /not active; start it/);
      assert.equal((await call("POST", "/v1/pools/p/build")).status, 200);
      assert.equal((await call("POST", "/v1/pools/p/start")).status, 200);
      r = await call("POST", "/v1/pools/p/volumes", JSON.stringify({ name: "v", size: -1 }));
      assert.equal(r.status, 400);
      r = await call("POST", "/v1/pools/p/volumes/v/resize", "{}");
      assert.equal(r.status, 404);
      assert.match(r.body.error.message, /No volume 'v' in pool 'p'/);
      r = await call("DELETE", "/v1/pools/p");
      assert.equal(r.status, 409);
    });
  });
});

poolTest("ApiClient drives pools and volumes over the daemon socket", QEMU, async () => {
  await withTempDir(async (dir) => {
    const users: Record<string, string> = {};
    await withPoolApi(dir, users, async (socket) => {
      using client = new ApiClient(socket);
      const created = await client.post<PoolInfo>("/v1/pools", {
        name: "default",
        type: "dir",
        path: `${dir}/images`,
      });
      assert.equal(created.name, "default");
      await client.post("/v1/pools/default/build");
      const started = await client.post<PoolInfo>("/v1/pools/default/start");
      assert.equal(started.state, "active");
      const auto = await client.put<PoolInfo>("/v1/pools/default/autostart", { enabled: true });
      assert.equal(auto.autostart, true);
      const vol = await client.post<VolumeInfo>("/v1/pools/default/volumes", {
        name: "web",
        format: "qcow2",
        size: "64M",
      });
      assert.equal(judgeImage(vol.path)["virtual-size"], 64 * 1024 * 1024);
      const linked = await client.post<VolumeInfo>("/v1/pools/default/volumes/web/clone", {
        target: "web-1",
        mode: "linked",
      });
      assert.deepEqual(linked.backingChain, [vol.path]);
      const snap = await client.post<VolumeInfo>("/v1/pools/default/volumes/web-1/snapshot", {
        target: "s1",
      });
      assert.deepEqual(snap.snapshots, ["s1"]);
      assert.equal(snap.backingChain.length, 2);
      users[linked.path] = "web1";
      await expectApiError(
        client.post("/v1/pools/default/volumes/web-1/rollback", { snapshot: "s1" }),
        "busy",
        /in use by domain 'web1'; shut it down first/,
      );
      delete users[linked.path];
      await client.post("/v1/pools/default/volumes/web-1/rollback", { snapshot: "s1" });
      await expectApiError(
        client.delete("/v1/pools/default/volumes/web"),
        "conflict",
        /base of 'web-1'/,
      );
      const list = await client.get<VolumeInfo[]>("/v1/pools/default/volumes");
      assert.deepEqual(list.map((v) => v.name), ["web", "web-1"]);
      assert.equal(await client.delete("/v1/pools/default/volumes/web-1"), undefined);
      await client.delete("/v1/pools/default/volumes/web");
      await client.post("/v1/pools/default/stop");
      await client.delete("/v1/pools/default?delete=1");
      assert.deepEqual(await client.get("/v1/pools"), []);
    });
  });
});

poolTest(
  "the pool and vol CLI: tables, --json, virsh aliases and exit statuses",
  QEMU,
  async () => {
    await withTempDir(async (dir) => {
      const users: Record<string, string> = {};
      await withPoolApi(dir, users, async (socket) => {
        const run = (...args: string[]) => denovisor([...args, "--socket", socket]);
        let r = await run("pool-define-as", "p", "dir", `${dir}/imgs`);
        assert.equal(r.code, 0, r.stderr);
        assert.equal((await run("pool", "build", "p")).code, 0);
        assert.equal((await run("pool", "start", "p")).code, 0);
        r = await run("pool", "list");
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /Name\s+State\s+Type[\s\S]*\bp\s+active\s+dir/);
        r = await run("vol-create-as", "p", "web", "32M", "--format", "qcow2");
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /Volume web created: qcow2, 32 MiB/);
        r = await run("vol", "clone", "p/web", "web2", "--linked");
        assert.equal(r.code, 0, r.stderr);
        r = await run("vol", "info", "web2", "--pool", "p", "--json");
        assert.equal(r.code, 0, r.stderr);
        const info = JSON.parse(r.stdout) as VolumeInfo;
        assert.equal(info.backingChain.length, 1);
        r = await run("vol", "list", "p");
        assert.match(r.stdout, /web2\s+qcow2\+\s+32 MiB/);
        r = await run("vol", "snapshot", "p/web2", "before");
        assert.equal(r.code, 0, r.stderr);
        r = await run("vol", "resize", "p/web2", "+16M");
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /resized to 48 MiB/);
        r = await run("vol", "resize", "p/web2", "16M");
        assert.equal(r.code, 5, "shrinking without --shrink is refused");
        assert.match(r.stderr, /--shrink/);
        r = await run("vol", "delete", "p/web");
        assert.equal(r.code, 5);
        assert.match(r.stderr, /base of 'web2'/);

        users[info.path] = "db1";
        r = await run("vol", "delete", "p/web2");
        assert.equal(r.code, 5);
        assert.match(r.stderr, /in use by domain 'db1'/);
        delete users[info.path];
        r = await run("vol", "info", "p/nope");
        assert.equal(r.code, 4);
        assert.match(r.stderr, /No volume 'nope' in pool 'p'/);
        r = await run("vol", "create", "p/x");
        assert.equal(r.code, 2, "a missing size is a usage error");
        r = await run("vol", "create", "p/y", "4M");
        assert.equal(r.code, 0, r.stderr);
        r = await run("vol", "export", "p/y", `${dir}/y.qcow2`, "--format", "qcow2");
        assert.equal(r.code, 0, r.stderr);
        assert.equal(judgeImage(`${dir}/y.qcow2`).format, "qcow2");
        r = await run("vol", "import", "p", "y2", `${dir}/y.qcow2`);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /imported .*\(qcow2\)/);
        r = await run("vol", "frobnicate");
        assert.equal(r.code, 2);
        r = await denovisor(["pool", "list", "--socket", `${dir}/none.sock`]);
        assert.equal(r.code, 3);
        assert.match(r.stderr, /Cannot reach the daemon/);
        for (
          const args of [["pool", "--help"], ["vol", "clone", "--help"], ["pool-build", "--help"]]
        ) {
          r = await denovisor(args);
          assert.equal(r.code, 0, args.join(" "));
          assert.match(r.stdout, /Usage: denovisor/);
        }
      });
    });
  },
);

Deno.test("a volume import reports its progress while the API keeps answering", async () => {
  await withTempDir(async (dir) => {
    await withPoolApi(dir, {}, async (socket) => {
      using client = new ApiClient(socket);
      await client.post("/v1/pools", { name: "p", type: "dir", path: `${dir}/p` });
      await client.post("/v1/pools/p/build");
      await client.post("/v1/pools/p/start");
      // Data in every 4 KiB block, so the converter writes (and reports) all of it.
      const source = `${dir}/source.raw`;
      const data = new Uint8Array(256 * 1024 * 1024);
      for (let i = 0; i < data.length; i += 4096) data[i] = 1;
      await Deno.writeFile(source, data);
      const importing = client.post<VolumeInfo>("/v1/pools/p/volumes", {
        name: "big",
        import: source,
        format: "qcow2",
      });
      const seen: { operation?: string; doneBytes?: number; totalBytes?: number }[] = [];
      let finished = false;
      importing.finally(() => finished = true).catch(() => {});
      while (!finished) {
        const now = await client.get<{ busy: boolean; doneBytes?: number }>(
          "/v1/pools/p/volumes/big/progress",
        );
        if (now.busy) seen.push(now);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const info = await importing;
      assert.equal(info.format, "qcow2");
      assert.ok(seen.length > 0, "the import was never seen busy: the API was blocked by it");
      assert.equal(seen[0].operation, "create");
      const withBytes = seen.filter((p) => p.totalBytes !== undefined);
      assert.ok(withBytes.length > 0, `no byte counts reported: ${JSON.stringify(seen)}`);
      assert.equal(withBytes.at(-1)!.totalBytes, data.length);
      assert.deepEqual(
        await client.get("/v1/pools/p/volumes/big/progress"),
        { busy: false },
      );
    });
  });
});
