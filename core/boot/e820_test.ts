import assert from "node:assert/strict";
import { E820_RAM, E820_RESERVED, e820Map, guestRamRegions, lowRamEnd } from "./e820.ts";
import { BootImageError } from "./boot_error.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

Deno.test("e820Map() of 512 MiB has low RAM, the reserved legacy area and RAM from 1 MiB", () => {
  assert.deepEqual(e820Map(512 * MiB), [
    { addr: 0, size: 0x9fc00, type: E820_RAM },
    { addr: 0x9fc00, size: 0x100000 - 0x9fc00, type: E820_RESERVED },
    { addr: 0x100000, size: 511 * MiB, type: E820_RAM },
  ]);
});

Deno.test("e820Map() of 4 GiB stops at the MMIO hole and continues above 4 GiB", () => {
  const map = e820Map(4 * GiB);
  assert.deepEqual(map[2], { addr: 0x100000, size: 3 * GiB - MiB, type: E820_RAM });
  assert.deepEqual(map[3], { addr: 4 * GiB, size: GiB, type: E820_RAM });
});

Deno.test("e820Map() of exactly 3 GiB has no entry above 4 GiB", () => {
  assert.equal(e820Map(3 * GiB).length, 3);
});

Deno.test("guestRamRegions() matches the RAM entries of e820Map()", () => {
  for (const size of [64 * MiB, 3 * GiB, 6 * GiB]) {
    const regions = guestRamRegions(size);
    assert.equal(regions.reduce((n, r) => n + r.size, 0), size);
    const ramEnds = e820Map(size).filter((e) => e.type === E820_RAM).map((e) => e.addr + e.size);
    assert.deepEqual(
      regions.map((r) => r.start + r.size),
      [ramEnds[1], ramEnds[2]].filter((e) => e !== undefined),
    );
  }
  assert.deepEqual(guestRamRegions(6 * GiB), [
    { start: 0, size: 3 * GiB },
    { start: 4 * GiB, size: 3 * GiB },
  ]);
  assert.equal(lowRamEnd(6 * GiB), 3 * GiB);
});

Deno.test("guestRamRegions() refuses a guest smaller than 2 MiB", () => {
  assert.throws(() => guestRamRegions(MiB), BootImageError);
  assert.throws(() => guestRamRegions(MiB), /too small; give the guest at least 2 MiB/);
});
