import assert from "node:assert/strict";
import { beginIntent, recoverIntents } from "./journal.ts";
import { VolumeMetaStore } from "./volume_meta.ts";
import { withTempDir } from "../../tests/pool_support.ts";

function setUp(dir: string) {
  Deno.mkdirSync(`${dir}/pool/.snapshots/v`, { recursive: true });
  const meta = new VolumeMetaStore(`${dir}/state`);
  const intent = {
    op: "snapshot" as const,
    volume: "v",
    snapshot: "s",
    path: `${dir}/pool/v`,
    snapshotPath: `${dir}/pool/.snapshots/v/s`,
    overlay: `${dir}/pool/.v.snapshot`,
    createdAt: "2026-01-01T00:00:00.000Z",
  };
  beginIntent(meta, intent);
  return { meta, intent };
}

Deno.test("recoverIntents() undoes a snapshot whose volume never moved", async () => {
  await withTempDir((dir) => {
    const { meta, intent } = setUp(dir);
    Deno.writeTextFileSync(intent.path, "volume");
    Deno.writeTextFileSync(intent.overlay, "half an overlay");
    assert.match(recoverIntents(meta).join(), /not taken \(rolled back\)/);
    assert.equal(Deno.readTextFileSync(intent.path), "volume");
    assert.throws(() => Deno.statSync(intent.overlay), Deno.errors.NotFound);
    assert.deepEqual(meta.get("v").snapshots, []);
    assert.deepEqual(recoverIntents(meta), [], "the intent is gone");
  });
});

Deno.test("recoverIntents() moves the volume back when it moved but no overlay exists", async () => {
  await withTempDir((dir) => {
    const { meta, intent } = setUp(dir);
    Deno.writeTextFileSync(intent.snapshotPath, "volume");
    assert.match(recoverIntents(meta).join(), /rolled back/);
    assert.equal(Deno.readTextFileSync(intent.path), "volume");
    assert.throws(() => Deno.statSync(intent.snapshotPath), Deno.errors.NotFound);
  });
});

Deno.test("recoverIntents() records a snapshot whose overlay was already in place", async () => {
  await withTempDir((dir) => {
    const { meta, intent } = setUp(dir);
    Deno.writeTextFileSync(intent.snapshotPath, "volume");
    Deno.writeTextFileSync(intent.path, "overlay");
    assert.match(recoverIntents(meta).join(), /completed/);
    assert.deepEqual(meta.get("v").snapshots.map((s) => s.name), ["s"]);
    assert.equal(Deno.statSync(intent.snapshotPath).mode! & 0o777, 0o400);
  });
});
