import assert from "node:assert/strict";
import { join } from "node:path";
import { closeFd, openFile } from "../ffi/libc.ts";
import { O_CLOEXEC, O_CREAT, O_RDWR } from "../ffi/libc_symbols.ts";
import { lockImage, releaseImageLocks } from "./image_lock.ts";

Deno.test("releaseImageLocks() lets another user take an image whose descriptor stays open", async () => {
  const dir = await Deno.makeTempDir({ prefix: "image-lock-" });
  const path = join(dir, "a.img");
  const held = openFile(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600);
  const other = openFile(path, O_RDWR | O_CLOEXEC);
  try {
    lockImage(path, held, false);
    assert.throws(() => lockImage(path, other, false), /in use|permission/i);
    releaseImageLocks(held); // the descriptor stays open, as a sandboxed VMM's handed one
    lockImage(path, other, false);
    assert.throws(() => lockImage(path, held, false), /in use|permission/i);
  } finally {
    closeFd(held);
    closeFd(other);
    await Deno.remove(dir, { recursive: true });
  }
});
