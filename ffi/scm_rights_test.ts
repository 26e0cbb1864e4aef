import assert from "node:assert/strict";
import { receiveFds, sendFds, socketPair, TooManyFdsError } from "./scm_rights.ts";
import { closeFd, openFile } from "./libc.ts";
import { lseek, pread, pwrite } from "./fs.ts";
import { O_CLOEXEC, O_CREAT, O_RDWR } from "./libc_symbols.ts";
import { tryOfdLock } from "./ofd_lock.ts";

const encoder = new TextEncoder();

Deno.test("sendFds() hands the same open file description over: offset, data and OFD lock travel", () => {
  const dir = Deno.makeTempDirSync();
  const [a, b] = socketPair();
  const path = `${dir}/disk.img`;
  const original = openFile(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600);
  let received = -1;
  try {
    assert.equal(tryOfdLock(original, "exclusive"), 0);
    assert.equal(sendFds(a, encoder.encode("disk0"), [original]), 5);
    const message = receiveFds(b, 64, 4);
    assert.equal(new TextDecoder().decode(message.bytes), "disk0");
    assert.equal(message.fds.length, 1);
    received = message.fds[0];
    assert.notEqual(received, original);
    // One description: a seek through one moves the other.
    assert.equal(lseek(original, 100, 0), 100);
    assert.equal(lseek(received, 0, 1), 100);
    assert.equal(pwrite(received, encoder.encode("x"), 7), 1);
    const byte = new Uint8Array(1);
    assert.equal(pread(original, byte, 7), 1);
    assert.equal(byte[0], "x".charCodeAt(0));
    // The lock belongs to the description: it holds after the sender closes its copy.
    closeFd(original);
    const other = openFile(path, O_RDWR | O_CLOEXEC);
    try {
      assert.notEqual(tryOfdLock(other, "exclusive"), 0, "the received descriptor keeps the lock");
    } finally {
      closeFd(other);
    }
    // Received close-on-exec, as every descriptor the VMM holds.
    const flags = Deno.readTextFileSync(`/proc/self/fdinfo/${received}`).match(/flags:\s+(\d+)/);
    assert.ok(flags && (parseInt(flags[1], 8) & O_CLOEXEC) !== 0);
  } finally {
    closeFd(original);
    closeFd(received);
    closeFd(a);
    closeFd(b);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("receiveFds() refuses a message with more descriptors than asked for and closes them", () => {
  const [a, b] = socketPair();
  const devNull = openFile("/dev/null", O_RDWR | O_CLOEXEC);
  try {
    // Two fit in the padded buffer for one, three do not: both are refused.
    sendFds(a, new Uint8Array([1]), [devNull, devNull]);
    let before = Deno.readDirSync("/proc/self/fd").toArray().length;
    assert.throws(() => receiveFds(b, 8, 1), TooManyFdsError);
    assert.equal(Deno.readDirSync("/proc/self/fd").toArray().length, before);
    sendFds(a, new Uint8Array([1]), [devNull, devNull, devNull]);
    before = Deno.readDirSync("/proc/self/fd").toArray().length;
    assert.throws(() => receiveFds(b, 8, 1), TooManyFdsError);
    assert.equal(Deno.readDirSync("/proc/self/fd").toArray().length, before);
    // A message without descriptors is just bytes.
    sendFds(a, encoder.encode("hi"), []);
    const plain = receiveFds(b, 8, 1);
    assert.deepEqual([new TextDecoder().decode(plain.bytes), plain.fds], ["hi", []]);
  } finally {
    closeFd(devNull);
    closeFd(a);
    closeFd(b);
  }
});
