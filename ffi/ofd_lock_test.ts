import assert from "node:assert/strict";
import { closeFd, openFile } from "./libc.ts";
import { O_CLOEXEC, O_RDWR } from "./libc_symbols.ts";
import { EAGAIN, SyscallError } from "./errno.ts";
import { tryOfdLock } from "./ofd_lock.ts";

Deno.test("tryOfdLock(): shared locks coexist, an exclusive one conflicts until released", () => {
  const path = Deno.makeTempFileSync();
  const open = () => openFile(path, O_RDWR | O_CLOEXEC);
  const a = open();
  const b = open();
  const c = open();
  try {
    assert.equal(tryOfdLock(a, "shared"), 0);
    assert.equal(tryOfdLock(b, "shared"), 0);
    assert.equal(tryOfdLock(c, "exclusive"), EAGAIN);
    closeFd(a);
    closeFd(b);
    assert.equal(tryOfdLock(c, "exclusive"), 0, "closing the descriptions dropped their locks");
    const d = open();
    assert.equal(tryOfdLock(d, "shared"), EAGAIN);
    closeFd(d);
  } finally {
    closeFd(c);
    Deno.removeSync(path);
  }
});

Deno.test("tryOfdLock() throws a SyscallError naming fcntl on a bad descriptor", () => {
  assert.throws(() => tryOfdLock(-1, "exclusive"), (error: unknown) => {
    return error instanceof SyscallError && error.call === "fcntl";
  });
});
