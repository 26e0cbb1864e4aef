import assert from "node:assert/strict";
import { checkImage, createImage, ImageError, imageInfo, openImage, probeFormat } from "./image.ts";
import { assertClean, qemuCheck, qemuImg, qemuIo, tempDir } from "./qcow2/testing/qemu_tools.ts";

const MIB = 1024 * 1024;

Deno.test("openImage() probes raw and qcow2 images by their magic", () => {
  using dir = tempDir();
  createImage(`${dir.path}/a.raw`, { format: "raw", size: MIB });
  createImage(`${dir.path}/b.qcow2`, { format: "qcow2", size: MIB });
  for (const [name, format] of [["a.raw", "raw"], ["b.qcow2", "qcow2"]]) {
    const image = openImage(`${dir.path}/${name}`);
    try {
      assert.equal(image.format, format);
      assert.equal(image.size, MIB);
    } finally {
      image.close();
      image.close(); // idempotent
    }
  }
});

Deno.test("createImage() refuses to overwrite a file and refuses bad options", () => {
  using dir = tempDir();
  const path = `${dir.path}/x.qcow2`;
  createImage(path, { format: "qcow2", size: MIB });
  assert.throws(() => createImage(path, { format: "qcow2", size: MIB }), /the file exists/);
  assert.throws(
    () => createImage(`${dir.path}/y.qcow2`, { format: "qcow2", size: MIB, clusterSize: 3000 }),
    ImageError,
  );
  assert.throws(() => createImage(`${dir.path}/z.qcow2`, { format: "qcow2" }), /give a size/);
  assert.throws(
    () => createImage(`${dir.path}/r.raw`, { format: "raw", size: MIB, backingFile: "x.qcow2" }),
    /raw images have no backing file/,
  );
});

Deno.test("createImage() makes an overlay with the backing size and format that qemu-img reads", () => {
  using dir = tempDir();
  createImage(`${dir.path}/base.raw`, { format: "raw", size: 3 * MIB });
  createImage(`${dir.path}/overlay.qcow2`, { format: "qcow2", backingFile: "base.raw" });
  const theirs = JSON.parse(qemuImg("info", "--output=json", `${dir.path}/overlay.qcow2`));
  assert.equal(theirs["virtual-size"], 3 * MIB);
  assert.equal(theirs["backing-filename"], "base.raw");
  assert.equal(theirs["backing-filename-format"], "raw");
  assert.equal(theirs["full-backing-filename"], `${dir.path}/base.raw`);
  const info = imageInfo(`${dir.path}/overlay.qcow2`);
  assert.equal(info.backingFile, "base.raw");
  assert.equal(info.fullBackingFilename, `${dir.path}/base.raw`);
  assert.equal(info.backing?.format, "raw");
  assert.equal(info.backing?.virtualSize, 3 * MIB);
  assertClean(`${dir.path}/overlay.qcow2`);
});

Deno.test("raw preallocation=full allocates the file; metadata is refused for raw", () => {
  using dir = tempDir();
  createImage(`${dir.path}/full.raw`, { format: "raw", size: 4 * MIB, preallocation: "full" });
  assert.ok(imageInfo(`${dir.path}/full.raw`).actualSize >= 4 * MIB);
  assert.throws(
    () => createImage(`${dir.path}/m.raw`, { format: "raw", size: MIB, preallocation: "metadata" }),
    /off or full/,
  );
});

Deno.test("imageInfo() lists qemu-img internal snapshots and the dirty flag", () => {
  using dir = tempDir();
  const path = `${dir.path}/s.qcow2`;
  qemuImg("create", "-q", "-f", "qcow2", path, "4M");
  qemuImg("snapshot", "-c", "first", path);
  qemuImg("snapshot", "-c", "second", path);
  const info = imageInfo(path);
  assert.deepEqual(info.snapshots?.map((s) => s.name), ["first", "second"]);
  assert.deepEqual(info.snapshots?.map((s) => s.id), ["1", "2"]);
  assert.equal(info.dirty, false);
  assert.equal(info.clusterSize, 65536);
});

Deno.test("an image open for writing is locked; overlays share their read-only base", () => {
  using dir = tempDir();
  createImage(`${dir.path}/base.qcow2`, { format: "qcow2", size: MIB });
  createImage(`${dir.path}/one.qcow2`, { format: "qcow2", backingFile: "base.qcow2" });
  createImage(`${dir.path}/two.qcow2`, { format: "qcow2", backingFile: "base.qcow2" });
  const one = openImage(`${dir.path}/one.qcow2`);
  try {
    assert.throws(() => openImage(`${dir.path}/one.qcow2`), /in use by another process/);
    const two = openImage(`${dir.path}/two.qcow2`); // the base's shared lock allows this
    two.close();
    assert.throws(() => openImage(`${dir.path}/base.qcow2`), /in use by another process/);
    assert.throws(() => one.backing!.write(0, [new Uint8Array(512)]), /read-only/);
  } finally {
    one.close();
  }
  openImage(`${dir.path}/base.qcow2`).close(); // closing the overlay released the base
});

Deno.test("direct I/O is refused for qcow2 images", () => {
  using dir = tempDir();
  createImage(`${dir.path}/d.qcow2`, { format: "qcow2", size: MIB });
  assert.throws(() => openImage(`${dir.path}/d.qcow2`, { direct: true }), /direct I\/O/);
});

Deno.test("blockStatus() tells data, zero clusters and holes apart like qemu-img map", () => {
  using dir = tempDir();
  const path = `${dir.path}/m.qcow2`;
  qemuImg("create", "-q", "-f", "qcow2", path, "4M");
  qemuIo(path, "qcow2", "write -P 1 0 128k", "write -z 1M 64k");
  const image = openImage(path, { readOnly: true });
  try {
    assert.deepEqual(image.blockStatus(0, 4 * MIB), {
      offset: 0,
      length: 128 * 1024,
      allocated: true,
      zero: false,
      depth: 0,
    });
    assert.deepEqual(image.blockStatus(128 * 1024, MIB), {
      offset: 128 * 1024,
      length: MIB - 128 * 1024,
      allocated: false,
      zero: true,
      depth: 0,
    });
    const zero = image.blockStatus(MIB, 3 * MIB);
    assert.deepEqual([zero.allocated, zero.zero, zero.length], [true, true, 65536]);
  } finally {
    image.close();
  }
  const raw = `${dir.path}/r.raw`;
  createImage(raw, { format: "raw", size: 4 * MIB });
  const disk = openImage(raw);
  try {
    disk.write(MIB, [new Uint8Array(4096).fill(1)]);
    assert.deepEqual(
      [disk.blockStatus(0, 4 * MIB).zero, disk.blockStatus(0, 4 * MIB).length],
      [true, MIB],
    );
    assert.equal(disk.blockStatus(MIB, 4096).allocated, true);
  } finally {
    disk.close();
  }
});

/** Sets the 16-bit refcount of host cluster `cluster` in the first refcount block. */
function setRefcount(path: string, cluster: number, value: number): void {
  const bytes = Deno.readFileSync(path);
  const view = new DataView(bytes.buffer);
  const block = view.getUint32(65536 + 4); // refcount table entry 0 (low half)
  view.setUint16(block + cluster * 2, value);
  Deno.writeFileSync(path, bytes);
}

Deno.test("checkImage() finds and repairs leaked clusters, as qemu-img check agrees", () => {
  using dir = tempDir();
  const path = `${dir.path}/leak.qcow2`;
  createImage(path, { format: "qcow2", size: 4 * MIB });
  const end = Deno.statSync(path).size / 65536;
  Deno.truncateSync(path, (end + 2) * 65536);
  setRefcount(path, end, 1);
  setRefcount(path, end + 1, 1);
  assert.equal(qemuCheck(path).code, 3);
  const found = checkImage(path);
  assert.deepEqual([found.leaks, found.errors], [2, []]);
  const fixed = checkImage(path, { repair: "leaks" });
  assert.equal(fixed.leaksFixed, 2);
  assertClean(path);
});

Deno.test("checkImage() reports a refcount that is too low, and repair all fixes it", () => {
  using dir = tempDir();
  const path = `${dir.path}/low.qcow2`;
  createImage(path, { format: "qcow2", size: 4 * MIB });
  setRefcount(path, 3, 0); // the L1 table's cluster
  assert.equal(qemuCheck(path).code, 2);
  assert.match(checkImage(path).errors.join("\n"), /cluster 3 has refcount 0 but 1 references/);
  const fixed = checkImage(path, { repair: "all" });
  assert.equal(fixed.errorsFixed, 1);
  assertClean(path);
});

Deno.test("a dirty image is refused for writing until checkImage repairs it", () => {
  using dir = tempDir();
  const path = `${dir.path}/dirty.qcow2`;
  createImage(path, { format: "qcow2", size: 4 * MIB });
  const bytes = Deno.readFileSync(path);
  new DataView(bytes.buffer).setUint32(76, 1);
  Deno.writeFileSync(path, bytes);
  assert.equal(imageInfo(path).dirty, true);
  assert.throws(() => openImage(path), /is dirty/);
  checkImage(path, { repair: "all" });
  assert.equal(imageInfo(path).dirty, false);
  openImage(path).close();
});

Deno.test("a guest cannot turn a probed raw disk into a qcow2 image by writing a header", () => {
  using dir = tempDir();
  const path = `${dir.path}/guest.raw`;
  createImage(path, { format: "raw", size: MIB });
  const header = new Uint8Array(512);
  header.set([0x51, 0x46, 0x49, 0xfb]);
  const probed = openImage(path);
  try {
    assert.throws(() => probed.write(0, [header]), /format was probed/);
    probed.write(0, [header.subarray(0, 2)]); // "QF" alone is harmless
    assert.throws(
      () => probed.write(2, [header.subarray(2, 4)]),
      /format was probed/,
      "a write completing the magic is refused too",
    );
    probed.write(0, [new Uint8Array(512).fill(7)]);
  } finally {
    probed.close();
  }
  const explicit = openImage(path, { format: "raw" });
  try {
    explicit.write(0, [header]); // allowed when the format is given
  } finally {
    explicit.close();
  }
  assert.equal(probeFormat(path), "qcow2"); // written on purpose
});
