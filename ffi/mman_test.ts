import assert from "node:assert/strict";
import { MADV_DONTNEED } from "./libc_symbols.ts";
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
