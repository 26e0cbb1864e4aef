import assert from "node:assert/strict";
import { cloneFile, isZero } from "./file_clone.ts";
import { readJsonFile, writeJsonAtomic } from "./state_file.ts";
import { withTempDir } from "../../tests/pool_support.ts";

const MiB = 1024 * 1024;

Deno.test("cloneFile() copies sparsely when reflinks are refused, reporting progress", async () => {
  await withTempDir(async (dir) => {
    const source = `${dir}/src`;
    const file = Deno.openSync(source, { write: true, create: true });
    file.truncateSync(32 * MiB);
    file.seekSync(20 * MiB, Deno.SeekMode.Start);
    file.writeSync(new Uint8Array(4096).fill(7));
    file.close();
    const seen: number[] = [];
    const method = await cloneFile(source, `${dir}/dst`, {
      reflink: false,
      onProgress: (done, total) => {
        assert.equal(total, 32 * MiB);
        seen.push(done);
      },
    });
    assert.equal(method, "copy");
    assert.equal(seen.at(-1), 32 * MiB);
    const copy = Deno.readFileSync(`${dir}/dst`);
    assert.equal(copy.length, 32 * MiB);
    assert.deepEqual(copy.subarray(20 * MiB, 20 * MiB + 4096), new Uint8Array(4096).fill(7));
    assert.ok(isZero(copy.subarray(0, 20 * MiB)));
    assert.ok((Deno.statSync(`${dir}/dst`).blocks ?? 0) * 512 < 2 * MiB, "zero runs stay holes");
    await assert.rejects(() => cloneFile(source, `${dir}/dst`), /exists|EEXIST/i);
  });
});

Deno.test("writeJsonAtomic() replaces the file whole and leaves no temporary behind", async () => {
  await withTempDir((dir) => {
    writeJsonAtomic(`${dir}/a/x.json`, { n: 1 });
    writeJsonAtomic(`${dir}/a/x.json`, { n: 2 });
    assert.deepEqual(readJsonFile(`${dir}/a/x.json`), { n: 2 });
    assert.deepEqual([...Deno.readDirSync(`${dir}/a`)].map((e) => e.name), ["x.json"]);
    assert.equal(readJsonFile(`${dir}/a/none.json`), undefined);
    Deno.writeTextFileSync(`${dir}/a/bad.json`, "{");
    assert.throws(() => readJsonFile(`${dir}/a/bad.json`), /not valid JSON.*restore or remove it/);
  });
});
