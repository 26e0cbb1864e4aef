/**
 * Malformed qcow2 images are refused with a precise message and never written to: every
 * case patches a valid image, tries to open (and read/write) it, and checks the file's
 * bytes are unchanged afterwards.
 */
import assert from "node:assert/strict";
import { createImage, ImageError, imageInfo, openImage } from "../storage/image.ts";
import { qemuIo, tempDir } from "../storage/qcow2/testing/qemu_tools.ts";

const CLUSTER = 65536;

/** A valid image with data in guest cluster 0 and 5; returns its path. */
function validImage(dir: string, name = "image.qcow2"): string {
  const path = `${dir}/${name}`;
  createImage(path, { format: "qcow2", size: 16 * 1024 * 1024 });
  qemuIo(path, "qcow2", "write -P 0x42 0 4k", `write -P 0x43 ${5 * CLUSTER} 4k`);
  return path;
}

function patch(path: string, edit: (view: DataView, bytes: Uint8Array) => void): void {
  const bytes = Deno.readFileSync(path);
  edit(new DataView(bytes.buffer), bytes);
  Deno.writeFileSync(path, bytes);
}

const u64 = (view: DataView, at: number, value: number) => {
  view.setUint32(at, Math.floor(value / 2 ** 32));
  view.setUint32(at + 4, value >>> 0);
};
/** The host offset in an L1/L2 entry (flags masked off). */
const get64 = (view: DataView, at: number) =>
  (view.getUint32(at) & 0xff_ffff) * 2 ** 32 + ((view.getUint32(at + 4) & 0xffff_fe00) >>> 0);

/** Asserts `action` throws an ImageError matching `message`, and the file is unchanged. */
function assertRefused(path: string, message: RegExp, action: () => void): void {
  const before = Deno.readFileSync(path);
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof ImageError, `not an ImageError: ${error}`);
    assert.match(error.message, message);
    return true;
  });
  assert.deepEqual(Deno.readFileSync(path), before, "the image was modified");
}

const open = (path: string) => () => openImage(path).close();

/** Cases that patch the header and are refused on open. */
const headerCases: [string, RegExp, (view: DataView, bytes: Uint8Array, path: string) => void][] = [
  ["an unsupported version", /qcow2 version 4; only versions 2 and 3/, (v) => v.setUint32(4, 4)],
  ["cluster_bits out of range", /cluster_bits 30 is outside 9\.\.21/, (v) => v.setUint32(20, 30)],
  [
    "an L1 table beyond the end of the file",
    /the L1 table \(0x40000000, 8 bytes\) lies beyond the end of the file/,
    (v) => u64(v, 40, 0x4000_0000),
  ],
  [
    "an unaligned L1 table",
    /the L1 table offset 0x30200 is not cluster aligned/,
    (v) => u64(v, 40, 3 * CLUSTER + 512),
  ],
  ["an L1 table overlapping the header", /the L1 table overlaps the header/, (v) => u64(v, 40, 0)],
  [
    "a refcount table beyond the end of the file",
    /the refcount table \(0x10000000, 65536 bytes\) lies beyond the end of the file/,
    (v) => u64(v, 48, 0x1000_0000),
  ],
  [
    "a refcount table overlapping the L1 table",
    /the refcount table overlaps the L1 table/,
    (v) => u64(v, 48, 3 * CLUSTER),
  ],
  [
    "a refcount table of no clusters",
    /the refcount table has no clusters/,
    (v) => v.setUint32(56, 0),
  ],
  ["an absurd virtual size", /virtual size .* is absurd/, (v) => u64(v, 24, 2 ** 53)],
  [
    "an L1 table too small for the virtual size",
    /the L1 table has 1 entries but the virtual size needs 2/,
    (v) => u64(v, 24, 1024 * 1024 * 1024),
  ],
  ["an absurdly large L1 table", /absurdly many/, (v) => v.setUint32(36, 0x1000_0000)],
  ["encryption", /is encrypted/, (v) => v.setUint32(32, 1)],
  [
    "an unknown incompatible feature named in the feature table",
    /incompatible features Denovisor does not support: extended L2 entries/,
    (v) => v.setUint32(76, 16),
  ],
  ["an unknown incompatible feature bit", /does not support: bit 9/, (v) => v.setUint32(76, 512)],
  ["an external data file", /external data file/, (v) => v.setUint32(76, 4)],
  ["zstd compression", /compression type 1 \(zstd\)/, (v, b) => {
    v.setUint32(76, 8);
    b[104] = 1;
  }],
  [
    "a header_length beyond the cluster",
    /header_length 131072 is outside/,
    (v) => v.setUint32(100, 2 * CLUSTER),
  ],
  ["a backing file name outside the header cluster", /backing file name lies outside/, (v) => {
    u64(v, 8, CLUSTER - 4);
    v.setUint32(16, 100);
  }],
  ["a misaligned refcount block", /refcount table entry 0 points to 0x20200, not cluster aligned/, (
    v,
  ) => u64(v, CLUSTER, 2 * CLUSTER + 512)],
  [
    "a refcount block beyond the end of the file",
    /refcount table entry 0 points to 0x40000000, beyond the end/,
    (v) => u64(v, CLUSTER, 0x4000_0000),
  ],
  [
    "an L1 entry beyond the end of the file",
    /L1 entry 0 points to an L2 table at 0x40000000, beyond the end of the file/,
    (v) => u64(v, 3 * CLUSTER, 0x4000_0000),
  ],
  [
    "an unaligned L1 entry",
    /L1 entry 0 points to an L2 table at 0x.*, not cluster aligned/,
    (v) => u64(v, 3 * CLUSTER, get64(v, 3 * CLUSTER) + 512),
  ],
];

for (const [what, message, edit] of headerCases) {
  Deno.test(`openImage() refuses a qcow2 image with ${what}`, () => {
    using dir = tempDir();
    const path = validImage(dir.path);
    patch(path, (view, bytes) => edit(view, bytes, path));
    assertRefused(path, message, open(path));
  });
}

Deno.test("openImage() refuses a truncated qcow2 header", () => {
  using dir = tempDir();
  const path = validImage(dir.path);
  Deno.writeFileSync(path, Deno.readFileSync(path).subarray(0, 40));
  assertRefused(
    path,
    /the header is truncated \(40 bytes/,
    () => openImage(path, { format: "qcow2" }).close(),
  );
});

Deno.test("openImage() refuses a truncated version 3 header", () => {
  using dir = tempDir();
  const path = validImage(dir.path);
  Deno.writeFileSync(path, Deno.readFileSync(path).subarray(0, 90));
  assertRefused(path, /the version 3 header is truncated \(90 of 104 bytes\)/, open(path));
});

for (
  const [what, delta, message] of [
    ["beyond the end of the file", 0x4000_0000, /beyond the end of the file/],
    ["not cluster aligned", 512, /not cluster aligned/],
  ] as const
) {
  Deno.test(`reads and writes refuse an L2 entry ${what}, leaving the image unchanged`, () => {
    using dir = tempDir();
    const path = validImage(dir.path);
    patch(path, (view) => {
      const l2 = get64(view, 3 * CLUSTER);
      u64(view, l2 + 5 * 8, get64(view, l2 + 5 * 8) + delta);
      view.setUint32(l2 + 5 * 8, view.getUint32(l2 + 5 * 8) | 0x8000_0000); // COPIED
    });
    const image = openImage(path, { readOnly: true });
    try {
      assertRefused(path, message, () => image.read(0, [new Uint8Array(512)]));
    } finally {
      image.close();
    }
    const writable = openImage(path);
    try {
      assertRefused(path, message, () => writable.write(0, [new Uint8Array(512)]));
    } finally {
      writable.close();
    }
  });
}

Deno.test("openImage() refuses a backing chain that loops (a -> b -> a)", () => {
  using dir = tempDir();
  createImage(`${dir.path}/a.qcow2`, { format: "qcow2", size: 1024 * 1024 });
  createImage(`${dir.path}/b.qcow2`, { format: "qcow2", backingFile: "a.qcow2" });
  Deno.removeSync(`${dir.path}/a.qcow2`);
  createImage(`${dir.path}/a.qcow2`, {
    format: "qcow2",
    size: 1024 * 1024,
    backingFile: "b.qcow2",
    backingFormat: "qcow2",
  });
  const a = `${dir.path}/a.qcow2`;
  assertRefused(a, /backing chain that loops: .*a\.qcow2 -> .*b\.qcow2 -> .*a\.qcow2/, open(a));
  assert.throws(() => imageInfo(a), /loops/);
});

Deno.test("openImage() refuses an image that is its own backing file", () => {
  using dir = tempDir();
  const path = `${dir.path}/self.qcow2`;
  createImage(path, {
    format: "qcow2",
    size: 1024 * 1024,
    backingFile: "self.qcow2",
    backingFormat: "qcow2",
  });
  assertRefused(path, /loops: .*self\.qcow2 -> .*self\.qcow2/, open(path));
});

Deno.test("openImage() names a missing backing file", () => {
  using dir = tempDir();
  createImage(`${dir.path}/base.qcow2`, { format: "qcow2", size: 1024 * 1024 });
  const path = `${dir.path}/overlay.qcow2`;
  createImage(path, { format: "qcow2", backingFile: "base.qcow2" });
  Deno.removeSync(`${dir.path}/base.qcow2`);
  assertRefused(path, /Cannot open image .*base\.qcow2: no such file/, open(path));
});

Deno.test("a dirty image opens read-only but is refused read-write", () => {
  using dir = tempDir();
  const path = validImage(dir.path);
  patch(path, (view) => view.setUint32(76, 1));
  assertRefused(path, /is dirty .*qemu-img check -r all/, open(path));
  const image = openImage(path, { readOnly: true });
  try {
    const bytes = new Uint8Array(4096);
    image.read(0, [bytes]);
    assert.ok(bytes.every((b) => b === 0x42));
  } finally {
    image.close();
  }
});

Deno.test("an image marked corrupt is refused read-write", () => {
  using dir = tempDir();
  const path = validImage(dir.path);
  patch(path, (view) => view.setUint32(76, 2));
  assertRefused(path, /is marked corrupt/, open(path));
});
