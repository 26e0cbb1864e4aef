import assert from "node:assert/strict";
import { join } from "node:path";
import { DomainStore } from "./domain_store.ts";
import { StateLock } from "./state_lock.ts";
import { writeFileAtomic } from "./atomic_file.ts";
import type { DomainDefinition } from "../api_types.ts";

const demo = (name: string): DomainDefinition => ({ name, boot: { demo: true } });

Deno.test("DomainStore saves, loads and removes definitions, one file each", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = new DomainStore(dir);
    await store.init();
    await store.save(demo("web"));
    await store.save({ ...demo("db"), vcpus: 2 });
    await store.save({ ...demo("db"), vcpus: 4 });
    const { definitions, unreadable } = await store.load();
    assert.deepEqual(definitions.map((d) => [d.name, d.vcpus]), [["db", 4], ["web", undefined]]);
    assert.deepEqual(unreadable, []);
    await store.remove("web");
    await store.remove("web");
    assert.deepEqual((await store.load()).definitions.map((d) => d.name), ["db"]);
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(join(dir, "domains", "db.json"))).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DomainStore reports a corrupt file apart and leaves no temporary files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = new DomainStore(dir);
    await store.init();
    await store.save(demo("good"));
    await Deno.writeTextFile(join(dir, "domains", "bad.json"), "{ not json");
    const { definitions, unreadable } = await store.load();
    assert.deepEqual(definitions.map((d) => d.name), ["good"]);
    assert.equal(unreadable.length, 1);
    assert.match(unreadable[0].file, /bad\.json$/);
    const files = [...Deno.readDirSync(join(dir, "domains"))].map((e) => e.name).sort();
    assert.deepEqual(files, ["bad.json", "good.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DomainStore refuses a name that would leave the state directory", async () => {
  const store = new DomainStore("/nonexistent");
  await assert.rejects(() => store.save(demo("../etc/passwd")), /is not allowed/);
  assert.throws(() => store.logFile("a/b"), /is not allowed/);
});

Deno.test("writeFileAtomic replaces a file whole", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "f.json");
    await writeFileAtomic(path, "old");
    await writeFileAtomic(path, "new".repeat(100_000));
    assert.equal(await Deno.readTextFile(path), "new".repeat(100_000));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["f.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("StateLock refuses a second owner and names the first one's pid", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lock = StateLock.acquire(dir);
    // A second process, as a second daemon would be.
    const script = `import { StateLock } from "${new URL("./state_lock.ts", import.meta.url)}";
      try { StateLock.acquire(${JSON.stringify(dir)}); console.log("acquired"); }
      catch (e) { console.log(e.message); }`;
    const run = async () =>
      new TextDecoder().decode(
        (await new Deno.Command(Deno.execPath(), {
          args: ["eval", script],
          stdout: "piped",
          stderr: "inherit",
        }).output()).stdout,
      ).trim();
    assert.equal(
      await run(),
      `Another daemon (pid ${Deno.pid}) owns ${dir}; stop it first (systemctl stop ` +
        `denovisor) or give this one another --state-dir`,
    );
    lock.release();
    lock.release();
    assert.equal(await run(), "acquired");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
