import assert from "node:assert/strict";
import { join } from "node:path";
import { VirtioBlock } from "./block.ts";
import { RawDisk } from "../../storage/raw_disk.ts";
import { DiskError } from "../../storage/disk.ts";

Deno.test("VirtioBlock.replaceDisk() takes a reopened image of the same size and mode only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "blk-replace-" });
  try {
    const path = join(dir, "a.raw");
    const other = join(dir, "b.raw");
    await Deno.writeFile(path, new Uint8Array(1 << 20));
    await Deno.writeFile(other, new Uint8Array(2 << 20));
    const first = RawDisk.open(path, { readOnly: false });
    const device = new VirtioBlock({ disk: first });
    first.close(); // a migration let go of it
    const again = RawDisk.open(path, { readOnly: false });
    assert.equal(device.replaceDisk(again), first);
    assert.equal(device.disk, again);
    const bigger = RawDisk.open(other, { readOnly: false });
    assert.throws(() => device.replaceDisk(bigger), DiskError);
    bigger.close();
    const sameSize = join(dir, "c.raw");
    await Deno.writeFile(sameSize, new Uint8Array(1 << 20));
    const readOnly = RawDisk.open(sameSize, { readOnly: true });
    assert.throws(() => device.replaceDisk(readOnly), DiskError);
    readOnly.close();
    assert.equal(device.disk, again);
    device.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
