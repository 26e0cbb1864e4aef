import assert from "node:assert/strict";
import {
  HandedDescriptorsError,
  handedFile,
  handedKvm,
  handedTap,
  isHandedFile,
  parseHandedDescriptors,
  setHandedDescriptors,
} from "./handed_descriptors.ts";
import { fstat } from "../ffi/file_stat.ts";
import { closeFd } from "../ffi/libc.ts";

Deno.test("parseHandedDescriptors() takes a well-formed table and refuses the rest", () => {
  assert.deepEqual(
    parseHandedDescriptors({ kvm: 3, files: { "/images/a": 4 }, taps: { dv0: 5 } }),
    { kvm: 3, files: { "/images/a": 4 }, taps: { dv0: 5 } },
  );
  assert.deepEqual(parseHandedDescriptors({}), { files: {}, taps: {} });
  for (
    const bad of [
      [],
      null,
      { kvm: 2 },
      { kvm: 3.5 },
      { files: { "relative/path": 4 } },
      { files: { "/a": "4" } },
      { taps: { "bad name!": 4 } },
      { taps: [] },
      { other: 1 },
    ]
  ) {
    assert.throws(() => parseHandedDescriptors(bad), HandedDescriptorsError, JSON.stringify(bad));
  }
});

Deno.test("a handed file is found by its path as a fresh duplicate; others are not", () => {
  const path = Deno.makeTempFileSync();
  const file = Deno.openSync(path, { read: true });
  try {
    // Deno does not give raw descriptors; /proc/self/fd names the one it opened.
    const fd = Number(
      [...Deno.readDirSync("/proc/self/fd")].map((e) => e.name).find((name) =>
        Deno.readLinkSync(`/proc/self/fd/${name}`) === path
      ),
    );
    setHandedDescriptors({ files: { "/in/the/jail": fd }, taps: { dv0: fd } });
    assert.equal(isHandedFile("/in/the/jail"), true);
    assert.equal(isHandedFile(path), false);
    assert.equal(handedFile(path), undefined);
    assert.equal(handedKvm(), undefined);
    const copy = handedFile("/in/the/jail")!;
    assert.notEqual(copy, fd);
    assert.equal(fstat(copy).ino, BigInt(Deno.statSync(path).ino!));
    closeFd(copy);
    const tun = handedTap("dv0")!;
    closeFd(tun);
    assert.equal(handedTap("dv1"), undefined);
  } finally {
    setHandedDescriptors({ files: {}, taps: {} });
    file.close();
    Deno.removeSync(path);
  }
});
