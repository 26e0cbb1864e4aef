import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { loadBzImage, looksLikeBzImage, parseBzImage } from "./bzimage.ts";
import { BootImageError } from "./boot_error.ts";
import { buildBzImage } from "./_test_images.ts";

const MiB = 1024 * 1024;

Deno.test("parseBzImage() reads the setup header fields", () => {
  const { header, kernelOffset, kernelSize, setupHeaderBytes } = parseBzImage(buildBzImage());
  assert.deepEqual(header, {
    setupSects: 4,
    syssize: 0x300,
    version: 0x020f,
    loadflags: 1,
    code32Start: 0x100000,
    initrdAddrMax: 0x7fffffff,
    kernelAlignment: 0x200000,
    relocatableKernel: true,
    xloadflags: 0x7f,
    cmdlineSize: 2047,
    payloadOffset: 0x3a0,
    payloadLength: 0x100,
    prefAddress: 0x1000000,
    initSize: 0x400000,
  });
  assert.equal(kernelOffset, 5 * 512);
  assert.equal(kernelSize, 0x3000);
  assert.equal(setupHeaderBytes.length, 0x26c - 0x1f1, "up to 0x202 + the jump offset");
  assert.equal(setupHeaderBytes[0], 4, "starts at setup_sects");
});

Deno.test("parseBzImage() treats setup_sects 0 as 4", () => {
  const image = buildBzImage();
  image[0x1f1] = 0;
  assert.equal(parseBzImage(image).header.setupSects, 4);
  assert.equal(parseBzImage(image).kernelOffset, 2560);
});

Deno.test("looksLikeBzImage() needs the HdrS magic", () => {
  assert.ok(looksLikeBzImage(buildBzImage()));
  const image = buildBzImage();
  image[0x202] = 0x58;
  assert.ok(!looksLikeBzImage(image));
  assert.ok(!looksLikeBzImage(new Uint8Array(100)));
});

Deno.test("parseBzImage() rejects a bad HdrS magic", () => {
  const image = buildBzImage();
  image[0x203] = 0;
  assert.throws(() => parseBzImage(image), /bzImage header: missing the "HdrS" magic at 0x202/);
});

Deno.test("parseBzImage() rejects a bad boot_flag", () => {
  const image = buildBzImage();
  image[0x1fe] = 0;
  assert.throws(() => parseBzImage(image), /boot_flag is 0xaa00, expected 0xaa55/);
});

Deno.test("parseBzImage() rejects setup_sects pointing past the end of the file", () => {
  const image = buildBzImage({ kernelSize: 5000 - 2560 });
  image[0x1f1] = 200;
  assert.throws(() => parseBzImage(image), BootImageError);
  assert.throws(
    () => parseBzImage(image),
    /^BootImageError: bzImage header: setup_sects 200 points past the end of a 5000-byte file$/,
  );
});

Deno.test("parseBzImage() rejects a boot protocol older than 2.12", () => {
  assert.throws(
    () => parseBzImage(buildBzImage({ version: 0x0206 })),
    /boot protocol 2.06 is too old; the 64-bit entry needs 2.12/,
  );
});

Deno.test("parseBzImage() rejects a kernel without a 64-bit entry", () => {
  assert.throws(
    () => parseBzImage(buildBzImage({ xloadflags: 0x2 })),
    /xloadflags lacks XLF_KERNEL_64/,
  );
});

Deno.test("parseBzImage() rejects a zImage (LOADED_HIGH clear)", () => {
  assert.throws(() => parseBzImage(buildBzImage({ loadflags: 0 })), /lacks LOADED_HIGH/);
});

Deno.test("parseBzImage() rejects a file shorter than syssize says", () => {
  const image = buildBzImage().slice(0, 5 * 512 + 0x1000);
  assert.throws(
    () => parseBzImage(image),
    /syssize says 12288 bytes of kernel but only 4096 follow/,
  );
});

Deno.test("parseBzImage() rejects a file truncated before the header", () => {
  assert.throws(() => parseBzImage(buildBzImage().slice(0, 0x204)), /too short for a setup header/);
});

Deno.test("parseBzImage() rejects a kernel_alignment that is not a power of two", () => {
  assert.throws(
    () => parseBzImage(buildBzImage({ kernelAlignment: 0x300000 })),
    /kernel_alignment 0x300000 is not a power of two/,
  );
});

Deno.test("loadBzImage() copies the protected-mode kernel to 1 MiB with the 64-bit entry at +0x200", () => {
  const image = buildBzImage();
  const mem = GuestMemory.ofSize(64 * MiB);
  const result = loadBzImage(mem, image);
  assert.equal(result.loadAddress, 0x100000);
  assert.equal(result.entry64, 0x100200);
  assert.deepEqual(mem.read(0x100000, 0x3000), image.subarray(5 * 512));
  assert.equal(mem.readU8(0x103000), 0, "nothing past the kernel");
  assert.equal(result.kernelEnd, 0x1000000 + 0x400000, "pref_address + init_size");
});

Deno.test("loadBzImage() counts init_size from pref_address when checking guest memory", () => {
  const image = buildBzImage({ initSize: 0x3f98000 });
  assert.throws(
    () => loadBzImage(GuestMemory.ofSize(64 * MiB), image),
    /^BootImageError: bzImage kernel needs guest RAM up to 79.6 MiB \(init_size 63.6 MiB at 16 MiB\) but the guest has 64 MiB; raise --memory$/,
  );
  assert.equal(loadBzImage(GuestMemory.ofSize(80 * MiB), image).kernelEnd, 0x1000000 + 0x3f98000);
});

Deno.test("loadBzImage() uses pref_address as the runtime address of a non-relocatable kernel", () => {
  const image = buildBzImage({ relocatable: false, prefAddress: 0x2000000 });
  assert.equal(loadBzImage(GuestMemory.ofSize(64 * MiB), image).kernelEnd, 0x2400000);
});
