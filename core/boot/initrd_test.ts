import assert from "node:assert/strict";
import { placeInitrd } from "./initrd.ts";
import { BootImageError } from "./boot_error.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

Deno.test("placeInitrd() puts the initrd page aligned at the top of low RAM", () => {
  const address = placeInitrd({
    initrdSize: 3 * MiB + 5,
    kernelEnd: 80 * MiB,
    lowRamEnd: 512 * MiB,
    guestRamSize: 512 * MiB,
  });
  assert.equal(address % 4096, 0);
  assert.equal(address, 512 * MiB - 3 * MiB - 4096);
  assert.ok(address + 3 * MiB + 5 <= 512 * MiB);
});

Deno.test("placeInitrd() keeps the initrd's last byte at or below initrd_addr_max", () => {
  const address = placeInitrd({
    initrdSize: MiB,
    kernelEnd: 80 * MiB,
    lowRamEnd: 3 * GiB,
    guestRamSize: 8 * GiB,
    initrdAddrMax: 0x37ffffff,
  });
  assert.equal(address, 0x38000000 - MiB);
});

Deno.test("placeInitrd() stays below the MMIO hole when low RAM is the limit", () => {
  const address = placeInitrd({
    initrdSize: MiB,
    kernelEnd: 80 * MiB,
    lowRamEnd: 3 * GiB,
    guestRamSize: 8 * GiB,
    initrdAddrMax: 0xffffffff,
  });
  assert.equal(address, 3 * GiB - MiB);
});

Deno.test("placeInitrd() can use every byte between the kernel and the end of RAM", () => {
  const address = placeInitrd({
    initrdSize: 16 * MiB,
    kernelEnd: 48 * MiB,
    lowRamEnd: 64 * MiB,
    guestRamSize: 64 * MiB,
  });
  assert.equal(address, 48 * MiB);
});

Deno.test("placeInitrd() says to raise --memory when kernel and initrd do not fit", () => {
  const place = () =>
    placeInitrd({
      initrdSize: 40 * MiB,
      kernelEnd: 81 * MiB,
      lowRamEnd: 96 * MiB,
      guestRamSize: 96 * MiB,
    });
  assert.throws(place, BootImageError);
  assert.throws(
    place,
    /^BootImageError: kernel \(80 MiB\) and initrd \(40 MiB\) do not fit in 96 MiB of guest memory; raise --memory$/,
  );
});

Deno.test("placeInitrd() blames initrd_addr_max, not memory, when that is the limit", () => {
  assert.throws(
    () =>
      placeInitrd({
        initrdSize: 900 * MiB,
        kernelEnd: 80 * MiB,
        lowRamEnd: 3 * GiB,
        guestRamSize: 4 * GiB,
        initrdAddrMax: 0x37ffffff,
      }),
    /below the kernel's initrd_addr_max 0x37ffffff; use a smaller initrd/,
  );
});

Deno.test("placeInitrd() refuses an empty initrd", () => {
  assert.throws(
    () =>
      placeInitrd({ initrdSize: 0, kernelEnd: MiB, lowRamEnd: 64 * MiB, guestRamSize: 64 * MiB }),
    /initrd is empty/,
  );
});
