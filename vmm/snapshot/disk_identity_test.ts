import assert from "node:assert/strict";
import { join } from "node:path";
import { setHandedDescriptors } from "../../common/handed_descriptors.ts";
import { closeFd, openFile } from "../../ffi/libc.ts";
import { O_CLOEXEC, O_RDWR } from "../../ffi/libc_symbols.ts";
import { diskIdentity } from "./config_match.ts";

Deno.test("diskIdentity() of a jailed VMM's disk comes from the descriptor handed for it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "disk-identity-" });
  const path = join(dir, "a.img");
  await Deno.writeFile(path, new Uint8Array(4096));
  const fd = openFile(path, O_RDWR | O_CLOEXEC);
  try {
    const direct = diskIdentity("vda", path, 4096);
    const info = await Deno.stat(path);
    assert.deepEqual([direct.device, direct.inode], [String(info.dev), String(info.ino)]);
    // In the jail the path does not exist (a save there failed with ENOENT on KVM).
    const jailed = "/images/nowhere/a.img";
    assert.throws(() => diskIdentity("vda", jailed, 4096), Deno.errors.NotFound);
    setHandedDescriptors({ files: { [jailed]: fd }, taps: {} });
    assert.deepEqual(diskIdentity("vda", jailed, 4096), { ...direct, path: jailed });
  } finally {
    setHandedDescriptors({ files: {}, taps: {} });
    closeFd(fd);
    await Deno.remove(dir, { recursive: true });
  }
});
