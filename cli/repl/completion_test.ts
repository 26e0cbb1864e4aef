/** REPL completion: words at the cursor, what each position completes to, the name cache. */

import assert from "node:assert/strict";
import { CachedNames, completeLine } from "./completion.ts";
import { completionSpecs } from "./commands.ts";
import { splitWords } from "./words.ts";

Deno.test("splitWords honours quotes and escapes", () => {
  assert.deepEqual(splitWords(`define "my file.json"  x\\ y 'a"b'`).map((w) => w.text), [
    "define",
    "my file.json",
    "x y",
    'a"b',
  ]);
  assert.throws(() => splitWords(`start "web`), /Unterminated/);
});

Deno.test("completeLine offers verbs, options, domain, pool and volume names", async () => {
  const specs = completionSpecs();
  const source = {
    domains: (states?: string[]) => {
      const all = { db: "running", web1: "shutoff", web2: "shutoff", old: "paused" };
      return Promise.resolve(
        Object.entries(all).filter(([, state]) => !states || states.includes(state))
          .map(([name]) => name),
      );
    },
    pools: () => Promise.resolve(["default", "fast"]),
    volumes: (pool: string) => Promise.resolve(pool === "fast" ? ["f1"] : ["root.raw"]),
  };
  const complete = async (line: string) => {
    const { start, candidates } = await completeLine(line, line.length, specs, source);
    const word = line.slice(start);
    return candidates.filter((c) => c.startsWith(word)).sort();
  };
  assert.deepEqual(await complete("unp"), ["unpause"]);
  assert.deepEqual(await complete("start w"), ["web1", "web2"]);
  assert.deepEqual(await complete("start web1 --c"), ["--console"]);
  assert.deepEqual(await complete("shutdown --timeout 5 "), ["db"]);
  assert.deepEqual(await complete("resume "), ["old"]);
  assert.deepEqual(await complete("info "), ["db", "old", "web1", "web2"]);
  assert.deepEqual(await complete("autostart web1 o"), ["off", "on"]);
  assert.deepEqual(await complete("mem-set web1 "), []);
  assert.deepEqual(await complete("help pa"), ["pause"]);
  assert.deepEqual(await complete("pool st"), ["start", "stop"]);
  assert.deepEqual(await complete("pool info f"), ["fast"]);
  assert.deepEqual(await complete("vol info r"), ["root.raw"]);
  assert.deepEqual(await complete("vol info fast/"), ["fast/f1"]);
  assert.deepEqual(await complete("vol info x --pool f"), ["fast"]);
});

Deno.test("CachedNames asks the daemon once within its lifetime", async () => {
  let calls = 0;
  const names = new CachedNames((_path) => {
    calls++;
    return Promise.resolve([{ name: "b", state: "running" }, { name: "a", state: "shutoff" }]);
  }, 60_000);
  assert.deepEqual(await names.domains(["shutoff"]), ["a"]);
  assert.deepEqual(await names.domains(), ["a", "b"]);
  assert.deepEqual(await names.domains(), ["a", "b"]);
  assert.equal(calls, 1);
  names.invalidate();
  await names.domains();
  assert.equal(calls, 2);
});

Deno.test("completeLine completes file paths for define, directories with a slash", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/web1.json`, "{}");
    await Deno.mkdir(`${dir}/configs`);
    const source = {
      domains: () => Promise.resolve([]),
      pools: () => Promise.resolve([]),
      volumes: () => Promise.resolve([]),
    };
    const line = `define ${dir}/`;
    const { start, candidates } = await completeLine(line, line.length, completionSpecs(), source);
    assert.equal(start, "define ".length);
    assert.deepEqual(candidates.sort(), [`${dir}/configs/`, `${dir}/web1.json`]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
