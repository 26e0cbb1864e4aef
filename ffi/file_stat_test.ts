import assert from "node:assert/strict";
import { closeFd, openFile } from "./libc.ts";
import { O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_RDWR } from "./libc_symbols.ts";
import {
  clearNonBlocking,
  fstat,
  fstatfsType,
  PSEUDO_FILESYSTEMS,
  statusFlags,
} from "./file_stat.ts";
import { renameNoReplace } from "./rename.ts";
import { EEXIST, SyscallError } from "./errno.ts";
import { ofdRangeLocked, tryOfdRangeLock } from "./ofd_lock.ts";

function opened<T>(path: string, fn: (fd: number) => T): T {
  const fd = openFile(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  try {
    return fn(fd);
  } finally {
    closeFd(fd);
  }
}

Deno.test("fstat() tells files, directories, FIFOs and devices apart and matches stat", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeFileSync(`${dir}/f`, new Uint8Array(1234));
    new Deno.Command("mkfifo", { args: [`${dir}/p`] }).outputSync();
    const info = Deno.statSync(`${dir}/f`);
    const stat = opened(`${dir}/f`, fstat);
    assert.equal(stat.kind, "file");
    assert.equal(stat.size, 1234);
    assert.equal(stat.ino, BigInt(info.ino!));
    assert.equal(stat.dev, BigInt(info.dev!));
    assert.equal(stat.mode, info.mode! & 0o7777);
    assert.equal(opened(dir, fstat).kind, "directory");
    assert.equal(opened(`${dir}/p`, fstat).kind, "fifo"); // O_NONBLOCK: no writer needed
    assert.equal(opened("/dev/null", fstat).kind, "character device");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("fstatfsType() names procfs and sysfs, and not an ordinary file system", () => {
  assert.equal(PSEUDO_FILESYSTEMS.get(opened("/proc/self/environ", fstatfsType)), "proc");
  assert.equal(PSEUDO_FILESYSTEMS.get(opened("/sys/kernel", fstatfsType)), "sysfs");
  const file = Deno.makeTempFileSync();
  try {
    assert.equal(PSEUDO_FILESYSTEMS.get(opened(file, fstatfsType)), undefined);
  } finally {
    Deno.removeSync(file);
  }
});

Deno.test("renameNoReplace() moves a file but never over an existing one", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/a`, "a");
    Deno.writeTextFileSync(`${dir}/b`, "b");
    assert.throws(
      () => renameNoReplace(`${dir}/a`, `${dir}/b`),
      (error: unknown) => error instanceof SyscallError && error.errno === EEXIST,
    );
    assert.equal(Deno.readTextFileSync(`${dir}/b`), "b");
    renameNoReplace(`${dir}/a`, `${dir}/c`);
    assert.equal(Deno.readTextFileSync(`${dir}/c`), "a");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("byte-range OFD locks: shared locks coexist, GETLK sees other descriptions only", () => {
  const file = Deno.makeTempFileSync();
  const one = openFile(file, O_RDONLY | O_CLOEXEC);
  const two = openFile(file, O_RDWR | O_CLOEXEC); // an exclusive lock needs write access
  try {
    assert.equal(tryOfdRangeLock(one, "shared", 100, 1), 0);
    assert.equal(ofdRangeLocked(one, 100, 1), false, "its own lock never counts");
    assert.equal(ofdRangeLocked(two, 100, 1), true);
    assert.equal(ofdRangeLocked(two, 101, 1), false);
    assert.equal(tryOfdRangeLock(two, "shared", 100, 1), 0);
    assert.notEqual(tryOfdRangeLock(two, "exclusive", 100, 1), 0);
    assert.equal(tryOfdRangeLock(one, "unlock", 100, 1), 0);
    assert.equal(ofdRangeLocked(two, 100, 1), false);
  } finally {
    closeFd(one);
    closeFd(two);
    Deno.removeSync(file);
  }
});

Deno.test("clearNonBlocking() leaves a FIFO opened non-blocking in blocking mode", () => {
  const dir = Deno.makeTempDirSync();
  try {
    new Deno.Command("mkfifo", { args: [`${dir}/p`] }).outputSync();
    opened(`${dir}/p`, (fd) => {
      assert.equal(statusFlags(fd) & O_NONBLOCK, O_NONBLOCK);
      clearNonBlocking(fd);
      assert.equal(statusFlags(fd) & O_NONBLOCK, 0);
      assert.equal(fstat(fd).kind, "fifo");
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
