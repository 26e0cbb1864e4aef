import assert from "node:assert/strict";
import { join } from "node:path";
import { ApiError } from "../../common/http/mod.ts";
import { checkSnapshotName, type SnapshotMeta, SnapshotStore } from "./snapshot_store.ts";

function meta(name: string, createdAt: string): SnapshotMeta {
  return {
    name,
    domain: "web",
    createdAt,
    domainState: "running",
    memory: true,
    disks: [{ id: "vda", pool: "default", volume: "web" }],
    definition: { name: "web", boot: { demo: true } },
  };
}

async function withStore(fn: (store: SnapshotStore, dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "snapshot-store-" });
  try {
    await fn(new SnapshotStore(dir), dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ApiError, String(error));
    return error.code;
  }
  return "ok";
}

Deno.test("SnapshotStore lists committed snapshots oldest first and tracks the current one", async () => {
  await withStore(async (store) => {
    await store.reserve("web", "b");
    await store.commit(meta("b", "2026-01-02T00:00:00.000Z"));
    await store.reserve("web", "a");
    await store.commit(meta("a", "2026-01-01T00:00:00.000Z"));
    assert.deepEqual((await store.list("web")).map((s) => s.name), ["a", "b"]);
    assert.equal(await store.current("web"), "a");
    await store.setCurrent("web", "b");
    assert.equal((await store.get("web", "b")).createdAt, "2026-01-02T00:00:00.000Z");
    assert.equal(await store.current("web"), "b");
    assert.deepEqual(await store.list("other"), []);
  });
});

Deno.test("SnapshotStore refuses a name clash with 409 and an unknown snapshot with 404", async () => {
  await withStore(async (store) => {
    await store.reserve("web", "s1");
    await store.commit(meta("s1", "2026-01-01T00:00:00.000Z"));
    assert.equal(await code(store.reserve("web", "s1")), "conflict");
    assert.equal(await code(store.get("web", "nope")), "not_found");
    assert.equal(await code(store.get("web", "../etc")), "invalid");
  });
});

Deno.test("SnapshotStore skips a snapshot whose metadata was never written, and a create clears it", async () => {
  await withStore(async (store, dir) => {
    const folder = await store.reserve("web", "half");
    await Deno.writeTextFile(join(folder, "state"), "partial");
    assert.deepEqual(await store.list("web"), []);
    assert.equal(await code(store.get("web", "half")), "not_found");
    const again = await store.reserve("web", "half");
    assert.deepEqual([...Deno.readDirSync(again)], []);
    assert.ok(again.startsWith(join(dir, "snapshots", "web")));
  });
});

Deno.test("SnapshotStore.commit leaves no temporary file and remove() takes the whole folder", async () => {
  await withStore(async (store, dir) => {
    const folder = await store.reserve("web", "s1");
    await store.commit(meta("s1", "2026-01-01T00:00:00.000Z"));
    assert.deepEqual([...Deno.readDirSync(folder)].map((e) => e.name), ["snapshot.json"]);
    await store.remove("web", "s1");
    assert.deepEqual(await store.list("web"), []);
    assert.equal(await store.current("web"), undefined);
    // The domain's folder goes with its last snapshot.
    assert.deepEqual([...Deno.readDirSync(join(dir, "snapshots"))], []);
  });
});

Deno.test("SnapshotStore refuses metadata that names another snapshot", async () => {
  await withStore(async (store) => {
    const folder = await store.reserve("web", "s1");
    await Deno.writeTextFile(
      join(folder, "snapshot.json"),
      JSON.stringify(meta("s2", "2026-01-01T00:00:00.000Z")),
    );
    assert.equal(await code(store.list("web")), "internal");
  });
});

Deno.test("checkSnapshotName() takes volume-style names and refuses paths", () => {
  assert.equal(checkSnapshotName("before-upgrade.1"), "before-upgrade.1");
  for (const bad of ["", ".hidden", "a/b", "..", "x".repeat(65), 7]) {
    assert.throws(() => checkSnapshotName(bad), /not a valid snapshot name/);
  }
});
