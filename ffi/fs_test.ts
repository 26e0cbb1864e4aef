import assert from "node:assert/strict";
import { closeFd, errno } from "./libc.ts";
import { O_CLOEXEC, O_CREAT, O_RDWR, SEEK_DATA } from "./libc_symbols.ts";
import { EBADF, ENOENT } from "./errno.ts";
import {
  dup2,
  fdatasync,
  fsync,
  ftruncate,
  getrandom,
  lseek,
  PinnedBuffer,
  pread,
  pwrite,
  read,
  tryOpen,
  write,
} from "./fs.ts";

Deno.test("fs calls move bytes through a descriptor and report failures through errno", () => {
  const path = Deno.makeTempFileSync();
  const fd = tryOpen(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600);
  assert.ok(fd >= 0);
  try {
    assert.equal(pwrite(fd, new TextEncoder().encode("abcdef"), 10), 6);
    assert.equal(fsync(fd), 0);
    assert.equal(fdatasync(fd), 0);
    const out = new Uint8Array(3);
    assert.equal(pread(fd, out, 12), 3);
    assert.equal(new TextDecoder().decode(out), "cde");
    assert.equal(lseek(fd, 0, SEEK_DATA) >= 0, true);
    assert.equal(ftruncate(fd, 4), 0);
    assert.equal(Deno.statSync(path).size, 4);
    assert.equal(lseek(fd, 0, 0), 0);
    assert.equal(write(fd, new Uint8Array([1, 2])), 2);
    assert.equal(lseek(fd, 0, 0), 0);
    const back = new Uint8Array(8);
    assert.equal(read(fd, back), 4);
    assert.deepEqual([...back.subarray(0, 4)], [1, 2, 0, 0]);
    assert.equal(dup2(-1, 100), -1);
    assert.equal(errno(), EBADF);
  } finally {
    closeFd(fd);
    Deno.removeSync(path);
  }
  assert.equal(tryOpen(`${path}.missing`, O_RDWR), -1);
  assert.equal(errno(), ENOENT);
});

Deno.test("getrandom() fills the buffer", () => {
  const bytes = new Uint8Array(64);
  assert.equal(getrandom(bytes), 64);
  assert.ok(bytes.some((byte) => byte !== 0));
});

Deno.test("PinnedBuffer moves its whole view at any offset", () => {
  const path = Deno.makeTempFileSync();
  const fd = tryOpen(path, O_RDWR | O_CLOEXEC);
  try {
    const buffer = new PinnedBuffer(new Uint8Array(4).fill(7));
    assert.equal(buffer.pwrite(fd, 8192), 4);
    buffer.bytes.fill(0);
    assert.equal(buffer.pread(fd, 8190), 4);
    assert.deepEqual([...buffer.bytes], [0, 0, 7, 7]);
    assert.equal(buffer.pread(-1, 0), -1);
  } finally {
    closeFd(fd);
    Deno.removeSync(path);
  }
});
