import assert from "node:assert/strict";
import { join } from "node:path";
import { ApiError } from "../../common/http/mod.ts";
import {
  describeDisks,
  diskChanges,
  readSavedDomain,
  savedDomainPath,
  writeSavedDomain,
} from "./saved_domain.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "saved-domain-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ApiError && error.code === "invalid", String(error));
    return error.message;
  }
  throw new Error("not refused");
}

const definition = { name: "web", boot: { demo: true as const } };

Deno.test("writeSavedDomain() and readSavedDomain() round-trip the definition and disks", async () => {
  await withDir(async (dir) => {
    const disk = join(dir, "disk.raw");
    await Deno.writeFile(disk, new Uint8Array(65536));
    const state = join(dir, "web.state");
    const path = await writeSavedDomain(state, {
      savedAt: "2026-01-01T00:00:00.000Z",
      stateCreatedAt: "2026-01-01T00:00:00.000Z",
      persistent: true,
      definition,
      disks: describeDisks([{ id: "vda", path: disk }]),
    });
    assert.equal(path, savedDomainPath(state));
    const saved = await readSavedDomain(state);
    assert.equal(saved.definition.name, "web");
    assert.ok(saved.definition.uuid, "the definition comes back validated, defaults filled");
    assert.equal(saved.disks[0].virtualSize, 65536);
    assert.deepEqual(diskChanges(saved.disks), []);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "disk.raw",
      "web.state.domain.json",
    ]);
  });
});

Deno.test("diskChanges() names a disk that was resized or replaced", async () => {
  await withDir(async (dir) => {
    const disk = join(dir, "disk.raw");
    await Deno.writeFile(disk, new Uint8Array(65536));
    const [before] = describeDisks([{ id: "vda", path: disk }]);
    await Deno.truncate(disk, 131072);
    assert.match(diskChanges([before])[0], /vda .* was 65536 bytes at the save, now 131072/);
    await Deno.remove(disk);
    await Deno.writeFile(disk, new Uint8Array(65536));
    const [now] = describeDisks([{ id: "vda", path: disk }]);
    if (now.identity !== before.identity) {
      assert.match(diskChanges([before])[0], /another file than at the save/);
    }
    await Deno.remove(disk);
    assert.match(diskChanges([before])[0], /cannot be read/);
  });
});

Deno.test("readSavedDomain() refuses a missing, foreign or malformed definition file", async () => {
  await withDir(async (dir) => {
    const state = join(dir, "web.state");
    assert.match(await refusal(readSavedDomain(state)), /missing; restore needs the definition/);
    const write = (value: unknown) =>
      Deno.writeTextFile(savedDomainPath(state), JSON.stringify(value));
    const good = {
      format: "denovisor-saved-domain",
      version: 1,
      stateFile: "web.state",
      savedAt: "x",
      stateCreatedAt: "x",
      persistent: true,
      definition,
      disks: [],
    };
    await Deno.writeTextFile(savedDomainPath(state), "{");
    assert.match(await refusal(readSavedDomain(state)), /not JSON/);
    await write({ ...good, stateFile: "other.state" });
    assert.match(await refusal(readSavedDomain(state)), /belongs to "other.state"/);
    await write({ ...good, version: 2 });
    assert.match(await refusal(readSavedDomain(state)), /version: 2/);
    await write({ ...good, definition: { name: "../x", boot: { demo: true } } });
    assert.match(await refusal(readSavedDomain(state)), /definition: /);
    await write({ ...good, disks: [{ id: "vda" }] });
    assert.match(await refusal(readSavedDomain(state)), /disks\[0\]/);
    await write(good);
    assert.equal((await readSavedDomain(state)).persistent, true);
  });
});
