import assert from "node:assert/strict";
import { GuestRamError, mapRamFile } from "./memory.ts";

const PAGE = 4096;

Deno.test("mapRamFile() maps each range of a memory file copy-on-write", async () => {
  const path = await Deno.makeTempFile();
  try {
    const contents = new Uint8Array(3 * PAGE);
    contents[5] = 1;
    contents[PAGE + 6] = 2;
    contents[2 * PAGE + 7] = 3;
    await Deno.writeFile(path, contents);
    const [low, high] = mapRamFile(path, [
      { size: PAGE, fileOffset: 0 },
      { size: 2 * PAGE, fileOffset: PAGE },
    ], 3 * PAGE);
    try {
      assert.equal(low.bytes()[5], 1);
      assert.equal(high.bytes()[6], 2);
      assert.equal(high.bytes()[PAGE + 7], 3);
      high.bytes()[6] = 0x77;
      assert.equal((await Deno.readFile(path))[PAGE + 6], 2, "the guest's writes stay private");
    } finally {
      low.unmap();
      high.unmap();
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("mapRamFile() refuses a file of another size and ranges outside it", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeFile(path, new Uint8Array(2 * PAGE));
    assert.throws(
      () => mapRamFile(path, [{ size: 4 * PAGE, fileOffset: 0 }], 4 * PAGE),
      (e) => e instanceof GuestRamError && /8192 bytes.*16384-byte file/.test(e.message),
    );
    assert.throws(
      () => mapRamFile(path, [{ size: 2 * PAGE, fileOffset: PAGE }], 2 * PAGE),
      (e) => e instanceof GuestRamError && /not whole pages inside the file/.test(e.message),
    );
    assert.throws(
      () => mapRamFile(path, [{ size: PAGE, fileOffset: 100 }], 2 * PAGE),
      (e) => e instanceof GuestRamError,
    );
  } finally {
    await Deno.remove(path);
  }
});
