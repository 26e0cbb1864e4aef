/**
 * The firmware-boot test images: the boot sector of guests/firmware/boot_sector.S (built
 * with as/ld), a 1 MiB raw disk with it in LBA 0 and text in LBA 1, and an El Torito
 * no-emulation ISO (xorriso) booting the same sector.
 *
 * @module
 */

import assert from "node:assert/strict";

const SOURCE = new URL("../guests/firmware/boot_sector.S", import.meta.url).pathname;
/** The text the test disk holds in LBA 1: the boot sector prints it after an int 13h read. */
export const SECTOR_ONE = "sector one: read through int 13h";

async function run(command: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  assert.equal(
    out.code,
    0,
    `${command} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
  );
}

/** The boot sector, a 1 MiB disk image with text in LBA 1, and an El Torito ISO. */
async function images(dir: string): Promise<{ disk: string; iso: string }> {
  await run("as", ["--32", "-o", `${dir}/boot.o`, SOURCE]);
  await run("ld", [
    "-m",
    "elf_i386",
    "-Ttext",
    "0x7c00",
    "--oformat",
    "binary",
    "-o",
    `${dir}/boot.bin`,
    `${dir}/boot.o`,
  ]);
  const sector = await Deno.readFile(`${dir}/boot.bin`);
  assert.equal(sector.length, 512);
  const disk = new Uint8Array(1 << 20);
  disk.set(sector);
  disk.set(new TextEncoder().encode(`${SECTOR_ONE}\r\n`), 512);
  await Deno.writeFile(`${dir}/disk.img`, disk);
  await Deno.mkdir(`${dir}/tree`);
  const boot = new Uint8Array(2048);
  boot.set(sector);
  await Deno.writeFile(`${dir}/tree/boot.bin`, boot);
  await run("xorriso", [
    "-as",
    "mkisofs",
    "-quiet",
    "-o",
    `${dir}/cd.iso`,
    "-b",
    "boot.bin",
    "-no-emul-boot",
    "-boot-load-size",
    "4",
    `${dir}/tree`,
  ]); // deno-fmt-ignore
  return { disk: `${dir}/disk.img`, iso: `${dir}/cd.iso` };
}

/** Builds the images in a temporary directory, runs `fn` with them, removes the directory. */
export async function withImages(fn: (paths: { disk: string; iso: string }) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "firmware-boot-" });
  try {
    await fn(await images(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
