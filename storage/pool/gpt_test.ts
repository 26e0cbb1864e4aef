import assert from "node:assert/strict";
import {
  emptyGpt,
  findFreeRun,
  freeSlot,
  GptError,
  LINUX_DATA_GUID,
  readGpt,
  SECTOR,
  writeGpt,
} from "./gpt.ts";
import { withTempDir } from "../../tests/pool_support.ts";

const MiB = 1024 * 1024;

function labelled(path: string, mib: number) {
  Deno.writeFileSync(path, new Uint8Array());
  Deno.truncateSync(path, mib * MiB);
  const table = emptyGpt((mib * MiB) / SECTOR);
  for (const [name, sizeMiB] of [["web", 10], ["db", 5]] as const) {
    const sectors = (sizeMiB * MiB) / SECTOR;
    const first = findFreeRun(table, sectors)!;
    table.partitions.push({
      number: freeSlot(table),
      firstLba: first,
      lastLba: first + sectors - 1,
      name,
      typeGuid: LINUX_DATA_GUID,
      uniqueGuid: crypto.randomUUID(),
    });
  }
  writeGpt(path, table);
  return table;
}

function hasTool(tool: string): boolean {
  return new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" })
    .outputSync().success;
}

Deno.test("writeGpt() writes a label that readGpt() and libblkid read back", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/disk.img`;
    const table = labelled(path, 64);
    assert.deepEqual(readGpt(path), table);
    assert.equal(table.partitions[0].firstLba, 2048, "partitions start 1 MiB aligned");
    assert.equal(table.partitions[1].firstLba, 2048 + 20480);
    if (hasTool("partx")) {
      const out = new TextDecoder().decode(
        new Deno.Command("partx", {
          args: ["--show", "-o", "NR,START,END,NAME,UUID", path],
          stdout: "piped",
        })
          .outputSync().stdout,
      );
      assert.match(
        out,
        new RegExp(`1\\s+2048\\s+22527\\s+web\\s+${table.partitions[0].uniqueGuid}`),
      );
      assert.match(out, /2\s+22528\s+32767\s+db/);
    }
  });
});

Deno.test("readGpt() falls back to the backup label when the primary is damaged", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/disk.img`;
    const table = labelled(path, 32);
    const file = Deno.openSync(path, { write: true });
    file.seekSync(SECTOR + 60, Deno.SeekMode.Start); // the disk GUID, under the CRC
    file.writeSync(new Uint8Array([1, 2, 3]));
    file.close();
    assert.deepEqual(readGpt(path)?.partitions, table.partitions);
    const both = Deno.openSync(path, { write: true });
    both.seekSync(32 * MiB - SECTOR + 20, Deno.SeekMode.Start);
    both.writeSync(new Uint8Array([9]));
    both.close();
    assert.equal(readGpt(path), undefined, "with both copies damaged there is no label");
  });
});

Deno.test("readGpt() refuses an entry outside the disk and finds no label on zeroes", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/disk.img`;
    const table = labelled(path, 32);
    table.partitions[0].lastLba = table.totalSectors + 100;
    writeGpt(path, table);
    assert.throws(
      () => readGpt(path),
      (e: unknown) => e instanceof GptError && /outside/.test(e.message),
    );
    Deno.truncateSync(path, 0);
    Deno.truncateSync(path, 16 * MiB);
    assert.equal(readGpt(path), undefined);
    assert.throws(() => emptyGpt(100), /too small/);
  });
});

Deno.test("findFreeRun() finds aligned gaps and reports a full disk", () => {
  const table = emptyGpt((8 * MiB) / SECTOR);
  assert.equal(findFreeRun(table, 2048), 2048);
  table.partitions.push({
    number: 1,
    firstLba: 2048,
    lastLba: 4095,
    name: "a",
    typeGuid: LINUX_DATA_GUID,
    uniqueGuid: crypto.randomUUID(),
  });
  table.partitions.push({
    number: 2,
    firstLba: 6144,
    lastLba: 8191,
    name: "b",
    typeGuid: LINUX_DATA_GUID,
    uniqueGuid: crypto.randomUUID(),
  });
  assert.equal(findFreeRun(table, 2048), 4096, "the gap between a and b");
  assert.equal(findFreeRun(table, 100 * 2048), undefined);
  assert.equal(freeSlot(table), 3);
});
