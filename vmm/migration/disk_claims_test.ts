import assert from "node:assert/strict";
import { join } from "node:path";
import { checkDiskClaims, diskClaim, HEAD_BYTES, SharedStorageError } from "./disk_claims.ts";
import { setHandedDescriptors } from "../../common/handed_descriptors.ts";
import { closeFd, openFile } from "../../ffi/libc.ts";
import { O_CLOEXEC, O_CREAT, O_RDWR } from "../../ffi/libc_symbols.ts";

const refused = (text: string) => (error: unknown) =>
  error instanceof SharedStorageError && error.message.includes(text);

Deno.test("checkDiskClaims() accepts the same image and names the disk that differs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mig-disk-" });
  try {
    const path = join(dir, "a.img");
    const image = new Uint8Array(3 * HEAD_BYTES).fill(1);
    await Deno.writeFile(path, image);
    const claim = await diskClaim("vda", path);
    assert.equal(claim.size, 3 * HEAD_BYTES);
    const disks = [{ id: "vda", path }];
    await checkDiskClaims([claim], disks);
    // Past the head: still the same image (the guest writes it during the migration).
    image[2 * HEAD_BYTES] = 9;
    await Deno.writeFile(path, image);
    await checkDiskClaims([claim], disks);
    // Another header, another size, no file, a disk the source did not describe.
    image[0] = 2;
    await Deno.writeFile(path, image);
    await assert.rejects(checkDiskClaims([claim], disks), refused("Disk vda"));
    await Deno.writeFile(path, image.subarray(0, HEAD_BYTES));
    await assert.rejects(checkDiskClaims([claim], disks), refused("not the source's image"));
    await Deno.remove(path);
    await assert.rejects(checkDiskClaims([claim], disks), refused("not reachable"));
    await assert.rejects(
      checkDiskClaims([], disks),
      refused("the source did not describe"),
    );
    await assert.rejects(checkDiskClaims([claim], []), refused("not in the domain's config"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("diskClaim() of a sandboxed VMM reads the image through the descriptor it was handed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mig-disk-" });
  const fd = openFile(join(dir, "a.img"), O_RDWR | O_CREAT | O_CLOEXEC, 0o600);
  try {
    const path = join(dir, "a.img");
    await Deno.writeFile(path, new Uint8Array(2 * HEAD_BYTES).fill(7));
    const direct = await diskClaim("vda", path);
    // In the jail the path does not exist; the handed descriptor stands for it.
    const jailed = "/images/nowhere/a.img";
    setHandedDescriptors({ files: { [jailed]: fd }, taps: {} });
    assert.deepEqual(await diskClaim("vda", jailed), { ...direct, path: jailed });
  } finally {
    setHandedDescriptors({ files: {}, taps: {} });
    closeFd(fd);
    await Deno.remove(dir, { recursive: true });
  }
});
