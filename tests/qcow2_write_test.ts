/**
 * Images written by Denovisor pass `qemu-img check` with no errors and no leaks, and
 * `qemu-img compare` finds them equal to a raw file that received the same operations:
 * random writes, discards and write-zeroes, overlays with partial-cluster copy-on-write,
 * compressed and snapshotted clusters, growth, preallocation.
 */
import assert from "node:assert/strict";
import { checkImage, createImage, type Image, imageInfo, openImage } from "../storage/image.ts";
import type { Disk } from "../storage/disk.ts";
import { RawDisk } from "../storage/raw_disk.ts";
import {
  assertClean,
  assertReadsLike,
  assertSameContent,
  prng,
  qemuCheck,
  qemuImg,
  qemuIo,
  tempDir,
} from "../storage/qcow2/testing/qemu_tools.ts";

const MIB = 1024 * 1024;

/** Applies one seeded random workload to every disk in `disks` alike. */
function workload(disks: Disk[], seed: number, operations: number, clusterSize: number): void {
  const random = prng(seed);
  const size = disks[0].size;
  const pick = (max: number) => Math.floor(random() * max);
  for (let n = 0; n < operations; n++) {
    const kind = random();
    const length = 1 + pick(3 * clusterSize);
    const offset = pick(size - length);
    if (kind < 0.7) {
      const data = new Uint8Array(length);
      for (let i = 0; i < length; i += 97) data[i] = (n + i) & 0xff;
      data[0] = n & 0xff;
      // Two pieces, as a guest's scatter-gather list would give them.
      const cut = pick(length);
      for (const disk of disks) disk.write(offset, [data.subarray(0, cut), data.subarray(cut)]);
    } else if (kind < 0.8) {
      for (const disk of disks) disk.discard(offset, length);
    } else if (kind < 0.9) {
      for (const disk of disks) disk.writeZeroes(offset, length, { unmap: true });
    } else {
      for (const disk of disks) disk.writeZeroes(offset, length);
    }
    if (n % 50 === 0) {
      // Reads across whatever the workload made must agree too.
      const a = new Uint8Array(length);
      const b = new Uint8Array(length);
      disks[0].read(offset, [a]);
      disks[1].read(offset, [b]);
      assert.deepEqual(a, b, `read after operation ${n} differs`);
    }
  }
}

function rawCopy(path: string, size: number, from?: string): RawDisk {
  if (from !== undefined) Deno.copyFileSync(from, path);
  else Deno.writeFileSync(path, new Uint8Array(0));
  Deno.truncateSync(path, size);
  return RawDisk.open(path);
}

for (const clusterSize of [4096, 65536, 2 * MIB]) {
  Deno.test(`random writes, discards and write-zeroes (${clusterSize / 1024} KiB clusters) pass qemu-img check and compare`, () => {
    using dir = tempDir();
    const path = `${dir.path}/image.qcow2`;
    const size = 48 * MIB;
    createImage(path, { format: "qcow2", size, clusterSize });
    const image = openImage(path);
    const raw = rawCopy(`${dir.path}/reference.raw`, size);
    try {
      workload([image, raw], clusterSize, clusterSize >= MIB ? 150 : 600, clusterSize);
      image.flush();
    } finally {
      image.close();
      raw.close();
    }
    assertClean(path);
    assertSameContent(path, "qcow2", `${dir.path}/reference.raw`, "raw");
    const check = checkImage(path);
    assert.deepEqual([check.errors, check.leaks], [[], 0]);
  });
}

Deno.test("an overlay on a raw base copies partial clusters from the base and leaves the base unchanged", () => {
  using dir = tempDir();
  const base = `${dir.path}/base.raw`;
  const size = 20 * MIB;
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i += 4) data[i] = (i >> 4) & 0xff;
  Deno.writeFileSync(base, data);
  const overlay = `${dir.path}/overlay.qcow2`;
  createImage(overlay, { format: "qcow2", backingFile: "base.raw" });
  assert.equal(imageInfo(overlay).backingFormat, "raw");
  const image = openImage(overlay);
  const raw = rawCopy(`${dir.path}/reference.raw`, size, base);
  try {
    assert.equal(image.size, size);
    workload([image, raw], 7, 500, 65536);
  } finally {
    image.close();
    raw.close();
  }
  assertClean(overlay);
  assertSameContent(overlay, "qcow2", `${dir.path}/reference.raw`, "raw");
  assert.deepEqual(Deno.readFileSync(base), data);
});

Deno.test("an overlay on a compressed qcow2 base (4 KiB clusters over 64 KiB) reads and writes right", () => {
  using dir = tempDir();
  const source = `${dir.path}/source.raw`;
  const size = 8 * MIB;
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i % 251) ^ (i >> 12);
  Deno.writeFileSync(source, data);
  qemuImg("convert", "-c", "-O", "qcow2", source, `${dir.path}/base.qcow2`);
  const overlay = `${dir.path}/overlay.qcow2`;
  createImage(overlay, { format: "qcow2", backingFile: "base.qcow2", clusterSize: 4096 });
  const image = openImage(overlay);
  const raw = rawCopy(`${dir.path}/reference.raw`, size, source);
  try {
    workload([image, raw], 11, 300, 4096);
  } finally {
    image.close();
    raw.close();
  }
  assertClean(overlay);
  assertClean(`${dir.path}/base.qcow2`);
  assertSameContent(overlay, "qcow2", `${dir.path}/reference.raw`, "raw");
});

Deno.test("writing over compressed clusters releases their refcounts cleanly", () => {
  using dir = tempDir();
  const source = `${dir.path}/source.raw`;
  const data = new Uint8Array(4 * MIB);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) % 97;
  Deno.writeFileSync(source, data);
  const path = `${dir.path}/compressed.qcow2`;
  qemuImg("convert", "-c", "-O", "qcow2", source, path);
  const image = openImage(path);
  const raw = rawCopy(`${dir.path}/reference.raw`, data.length, source);
  try {
    workload([image, raw], 3, 200, 65536);
  } finally {
    image.close();
    raw.close();
  }
  assertClean(path);
  assertSameContent(path, "qcow2", `${dir.path}/reference.raw`, "raw");
});

Deno.test("writes after qemu-img snapshot -c copy shared clusters and keep the snapshot intact", () => {
  using dir = tempDir();
  const path = `${dir.path}/snap.qcow2`;
  qemuImg("create", "-q", "-f", "qcow2", path, "16M");
  qemuIo(path, "qcow2", "write -P 0x61 0 1M", "write -P 0x62 8M 100k");
  qemuImg("snapshot", "-c", "before", path);
  qemuImg("convert", "-O", "raw", path, `${dir.path}/before.raw`);
  const image = openImage(path);
  const raw = rawCopy(`${dir.path}/reference.raw`, 16 * MIB, `${dir.path}/before.raw`);
  try {
    workload([image, raw], 5, 200, 65536);
  } finally {
    image.close();
    raw.close();
  }
  assertClean(path);
  assertSameContent(path, "qcow2", `${dir.path}/reference.raw`, "raw");
  qemuImg("convert", "-l", "before", "-O", "raw", path, `${dir.path}/snapshot.raw`);
  assertSameContent(`${dir.path}/snapshot.raw`, "raw", `${dir.path}/before.raw`, "raw");
  assert.equal(imageInfo(path).snapshots?.[0]?.name, "before");
});

Deno.test("resize grows the L1 table and the new space reads as zeroes and takes writes", () => {
  using dir = tempDir();
  const path = `${dir.path}/grow.qcow2`;
  createImage(path, { format: "qcow2", size: 100 * MIB, clusterSize: 4096 });
  const image = openImage(path);
  const size = 3 * 1024 * MIB;
  try {
    image.write(50 * MIB, [new Uint8Array(4096).fill(7)]);
    assert.ok(image.resize);
    image.resize(size);
    assert.equal(image.size, size);
    assert.throws(() => image.resize!(MIB), /shrink/);
    image.write(size - 4096, [new Uint8Array(4096).fill(9)]);
    const back = new Uint8Array(8192);
    image.read(size - 8192, [back]);
    assert.deepEqual(back.subarray(4096), new Uint8Array(4096).fill(9));
    assert.deepEqual(back.subarray(0, 4096), new Uint8Array(4096));
  } finally {
    image.close();
  }
  assertClean(path);
  assert.equal(imageInfo(path).virtualSize, size);
  qemuIo(path, "qcow2", `read -P 7 ${50 * MIB} 4k`, `read -P 9 ${size - 4096} 4k`);
});

for (const preallocation of ["metadata", "full"] as const) {
  Deno.test(`preallocation=${preallocation} maps every cluster and passes qemu-img check`, () => {
    using dir = tempDir();
    const path = `${dir.path}/pre.qcow2`;
    createImage(path, { format: "qcow2", size: 40 * MIB, preallocation });
    assertClean(path);
    const map = JSON.parse(qemuImg("map", "--output=json", path)) as { data: boolean }[];
    assert.ok(map.every((extent) => extent.data), "every extent is allocated");
    if (preallocation === "full") assert.ok(imageInfo(path).actualSize >= 40 * MIB);
    const image = openImage(path);
    try {
      image.write(MIB + 100, [new Uint8Array(10).fill(1)]);
    } finally {
      image.close();
    }
    assertClean(path);
    qemuIo(path, "qcow2", "read -P 0 0 1M", `read -P 1 ${MIB + 100} 10`);
  });
}

Deno.test("metadata preallocation of 6 GiB with 4 KiB clusters grows the refcount table", () => {
  using dir = tempDir();
  const path = `${dir.path}/big.qcow2`;
  createImage(path, {
    format: "qcow2",
    size: 6 * 1024 * MIB,
    clusterSize: 4096,
    preallocation: "metadata",
  });
  const { code, result } = qemuCheck(path);
  assert.equal(code, 0, JSON.stringify(result));
  const header = new Uint8Array(64);
  using file = Deno.openSync(path);
  file.readSync(header);
  assert.ok(new DataView(header.buffer).getUint32(56) > 1, "the refcount table grew");
  const check = checkImage(path);
  assert.deepEqual([check.errors, check.leaks], [[], 0]);
});

Deno.test("a qemu-img image is written by Denovisor and read back by qemu-io", () => {
  using dir = tempDir();
  const path = `${dir.path}/theirs.qcow2`;
  qemuImg("create", "-q", "-f", "qcow2", path, "32M");
  qemuIo(path, "qcow2", "write -P 0x10 0 3M", "write -z 3M 1M");
  const image: Image = openImage(path);
  try {
    image.write(512, [new Uint8Array(1024).fill(0x20)]);
    image.write(3 * MIB + 4096, [new Uint8Array(4096).fill(0x30)]);
    image.discard(2 * MIB, MIB);
  } finally {
    image.close();
  }
  assertClean(path);
  qemuIo(
    path,
    "qcow2",
    "read -P 0x10 0 512",
    "read -P 0x20 512 1k",
    "read -P 0x10 1536 1M",
    "read -P 0 2M 1M",
    "read -P 0 3M 4k",
    `read -P 0x30 ${3 * MIB + 4096} 4k`,
  );
  const raw = `${dir.path}/reference.raw`;
  qemuImg("convert", "-O", "raw", path, raw);
  assertReadsLike(path, raw);
});
