import assert from "node:assert/strict";
import { closeFd, openFile } from "./libc.ts";
import { MADV_DONTNEED, O_CLOEXEC, O_RDONLY } from "./libc_symbols.ts";
import {
  bytesAtAddress,
  HOST_PAGE_SIZE,
  HostMapping,
  isPageAligned,
  madviseBytes,
} from "./mman.ts";

Deno.test("HostMapping maps zeroed memory that another view at its address shares", () => {
  using mapping = HostMapping.anonymous(4 * HOST_PAGE_SIZE, { guestRam: true });
  const bytes = mapping.bytes();
  assert.equal(bytes.length, 4 * HOST_PAGE_SIZE);
  assert.ok(bytes.every((byte) => byte === 0));
  bytes[HOST_PAGE_SIZE + 5] = 0x5a;
  const other = bytesAtAddress(mapping.address, mapping.size);
  assert.equal(other[HOST_PAGE_SIZE + 5], 0x5a);
  assert.equal(isPageAligned(bytes), true);
  assert.equal(isPageAligned(bytes.subarray(1)), false);
  assert.equal(madviseBytes(bytes.subarray(HOST_PAGE_SIZE, 2 * HOST_PAGE_SIZE), MADV_DONTNEED), 0);
  assert.equal(bytes[HOST_PAGE_SIZE + 5], 0, "MADV_DONTNEED gave the page back: it reads as zero");
  mapping.unmap();
  mapping.unmap();
  assert.throws(() => mapping.bytes(), /unmapped/);
});

Deno.test("HostMapping.privateFile maps a file's pages copy-on-write: writes never reach it", async () => {
  const path = await Deno.makeTempFile();
  try {
    const contents = new Uint8Array(3 * HOST_PAGE_SIZE);
    contents[HOST_PAGE_SIZE] = 7;
    contents[2 * HOST_PAGE_SIZE + 9] = 9;
    await Deno.writeFile(path, contents);
    const fd = openFile(path, O_RDONLY | O_CLOEXEC);
    let mapping: HostMapping;
    try {
      mapping = HostMapping.privateFile(fd, 2 * HOST_PAGE_SIZE, HOST_PAGE_SIZE, { guestRam: true });
    } finally {
      closeFd(fd); // the mapping keeps its own reference to the file
    }
    using _ = mapping;
    const bytes = mapping.bytes();
    assert.equal(bytes[0], 7, "offset one page in");
    assert.equal(bytes[HOST_PAGE_SIZE + 9], 9);
    bytes[0] = 0x42;
    assert.equal(bytes[0], 0x42, "the mapping is writable");
    assert.equal((await Deno.readFile(path))[HOST_PAGE_SIZE], 7, "the file is unchanged");
    assert.throws(() => HostMapping.privateFile(fd, HOST_PAGE_SIZE, 1), /page aligned/);
  } finally {
    await Deno.remove(path);
  }
});
