import assert from "node:assert/strict";
import {
  checkFirmwareImage,
  FIRMWARE_MAX_SIZE,
  FirmwareImageError,
  legacyCopy,
} from "./firmware_rom.ts";

Deno.test("checkFirmwareImage() refuses empty, oversized and unaligned images", () => {
  assert.throws(() => checkFirmwareImage(new Uint8Array(0), "a.bin"), /a\.bin is empty/);
  assert.throws(
    () => checkFirmwareImage(new Uint8Array(FIRMWARE_MAX_SIZE + 0x10000), "big.bin"),
    /at most 262144 fit below 4 GiB/,
  );
  assert.throws(() => checkFirmwareImage(new Uint8Array(0x10001), "odd.bin"), FirmwareImageError);
  checkFirmwareImage(new Uint8Array(0x20000), "bios.bin");
  checkFirmwareImage(new Uint8Array(FIRMWARE_MAX_SIZE), "bios-256k.bin");
});

Deno.test("legacyCopy() puts the image's last 128 KiB (or all of a smaller one) below 1 MiB", () => {
  const big = new Uint8Array(0x40000).map((_, i) => i >> 16);
  const tail = legacyCopy(big);
  assert.equal(tail.address, 0xe0000);
  assert.equal(tail.bytes.length, 0x20000);
  assert.equal(tail.bytes[0], 2, "from offset 0x20000 of the image");
  const small = legacyCopy(new Uint8Array(0x10000));
  assert.equal(small.address, 0xf0000);
});

Deno.test("Debian's SeaBIOS images pass the check", {
  ignore: !exists("/usr/share/seabios/bios.bin"),
}, () => {
  for (const name of ["bios.bin", "bios-256k.bin"]) {
    const path = `/usr/share/seabios/${name}`;
    if (exists(path)) checkFirmwareImage(Deno.readFileSync(path), path);
  }
});

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
