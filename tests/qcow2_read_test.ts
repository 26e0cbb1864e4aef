/**
 * Images made by QEMU's own tools read byte-identical through Denovisor: several cluster
 * sizes, zero clusters, compressed clusters, version 2, sparse multi-GiB sizes and backing
 * chains with relative and absolute names. The reference is `qemu-img convert -O raw`.
 */
import assert from "node:assert/strict";
import { imageInfo, openImage } from "../storage/image.ts";
import { assertReadsLike, qemuImg, qemuIo, tempDir } from "../storage/qcow2/testing/qemu_tools.ts";

/** A workload of writes across cluster boundaries, zero writes and unmapping zero writes. */
function scribble(path: string, clusterSize: number): void {
  qemuIo(
    path,
    "qcow2",
    "write -P 0xab 0 100k",
    `write -P 0x11 ${clusterSize - 512} 1k`,
    "write -P 0x22 1M 4k",
    `write -P 0x33 ${3 * clusterSize} ${2 * clusterSize}`,
    `write -z ${3 * clusterSize} ${clusterSize}`,
    `write -z -u ${4 * clusterSize} ${clusterSize}`,
    "write -P 0x44 7M 1536",
    "write -z 7M 512",
  );
}

for (const clusterSize of [4096, 65536, 2 * 1024 * 1024]) {
  Deno.test(`a qemu-img image with ${clusterSize / 1024} KiB clusters and zero clusters reads byte-identical`, () => {
    using dir = tempDir();
    const path = `${dir.path}/image.qcow2`;
    qemuImg("create", "-q", "-f", "qcow2", "-o", `cluster_size=${clusterSize}`, path, "24M");
    scribble(path, clusterSize);
    const raw = `${dir.path}/reference.raw`;
    qemuImg("convert", "-O", "raw", path, raw);
    assertReadsLike(path, raw);
    assert.equal(imageInfo(path).clusterSize, clusterSize);
  });
}

Deno.test("a version 2 (compat=0.10) image reads byte-identical", () => {
  using dir = tempDir();
  const path = `${dir.path}/v2.qcow2`;
  qemuImg("create", "-q", "-f", "qcow2", "-o", "compat=0.10", path, "8M");
  qemuIo(path, "qcow2", "write -P 0x5a 4k 70k", "write -P 0x6b 6M 1k");
  const raw = `${dir.path}/reference.raw`;
  qemuImg("convert", "-O", "raw", path, raw);
  assertReadsLike(path, raw);
});

for (const clusterSize of [4096, 65536]) {
  Deno.test(`compressed clusters (qemu-img convert -c, ${clusterSize / 1024} KiB clusters) read byte-identical`, () => {
    using dir = tempDir();
    const source = `${dir.path}/source.raw`;
    const data = new Uint8Array(6 * 1024 * 1024);
    // Compressible text-like data, random data and zero runs, so some clusters stay raw.
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 10)) % 61;
    crypto.getRandomValues(data.subarray(2 * 1024 * 1024, 2 * 1024 * 1024 + 65536));
    data.fill(0, 4 * 1024 * 1024, 5 * 1024 * 1024);
    Deno.writeFileSync(source, data);
    const path = `${dir.path}/compressed.qcow2`;
    qemuImg("convert", "-c", "-O", "qcow2", "-o", `cluster_size=${clusterSize}`, source, path);
    assertReadsLike(path, source);
    const image = openImage(path, { readOnly: true });
    try {
      const piece = new Uint8Array(1000);
      image.read(123_456, [piece]);
      assert.deepEqual(piece, data.subarray(123_456, 124_456));
    } finally {
      image.close();
    }
  });
}

Deno.test("a sparse 5 GiB image reads byte-identical and fast", () => {
  using dir = tempDir();
  const path = `${dir.path}/sparse.qcow2`;
  qemuImg("create", "-q", "-f", "qcow2", path, "5G");
  qemuIo(path, "qcow2", "write -P 1 0 64k", "write -P 2 2G 12k", "write -P 3 5119M 1M");
  const raw = `${dir.path}/reference.raw`;
  qemuImg("convert", "-O", "raw", path, raw);
  assertReadsLike(path, raw, 64 * 1024 * 1024);
});

Deno.test("a backing chain of depth 4 with relative and absolute names reads byte-identical", () => {
  using dir = tempDir();
  Deno.mkdirSync(`${dir.path}/sub`);
  const base = `${dir.path}/base.raw`;
  const data = new Uint8Array(16 * 1024 * 1024);
  for (let i = 0; i < data.length; i += 512) data[i] = (i >> 9) & 0xff;
  Deno.writeFileSync(base, data);
  // layer1 names its base relatively, layer2 absolutely, layer3 relatively from sub/.
  qemuImg("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", `${dir.path}/layer1.qcow2`);
  qemuIo(`${dir.path}/layer1.qcow2`, "qcow2", "write -P 0x11 1M 100k", "write -z 5M 64k");
  qemuImg(
    "create",
    "-q",
    "-f",
    "qcow2",
    "-o",
    "cluster_size=4096",
    "-b",
    `${dir.path}/layer1.qcow2`,
    "-F",
    "qcow2",
    `${dir.path}/sub/layer2.qcow2`,
  );
  qemuIo(`${dir.path}/sub/layer2.qcow2`, "qcow2", "write -P 0x22 1050k 8k", "write -P 0x23 9M 3k");
  qemuImg(
    "create",
    "-q",
    "-f",
    "qcow2",
    "-b",
    "layer2.qcow2",
    "-F",
    "qcow2",
    `${dir.path}/sub/layer3.qcow2`,
    "20M",
  );
  qemuIo(`${dir.path}/sub/layer3.qcow2`, "qcow2", "write -P 0x33 1M 4k", "write -z 9M 1k");
  const top = `${dir.path}/sub/layer3.qcow2`;
  const raw = `${dir.path}/reference.raw`;
  qemuImg("convert", "-O", "raw", top, raw);
  assertReadsLike(top, raw);
  const info = imageInfo(top);
  assert.equal(info.backing?.backing?.backing?.format, "raw");
  assert.equal(info.backing?.fullBackingFilename, `${dir.path}/layer1.qcow2`);
  const image = openImage(top);
  try {
    assert.equal(image.backing?.backing?.backing?.path, `${dir.path}/base.raw`);
    assert.equal(image.backing?.readOnly, true);
    // 16 MiB..20 MiB lies beyond every backing file: zeroes, unallocated.
    const status = image.blockStatus(17 * 1024 * 1024, 1024 * 1024);
    assert.deepEqual(
      [status.allocated, status.zero, status.length],
      [false, true, 1024 * 1024],
    );
    const layer1 = image.blockStatus(1024 * 1024 + 80 * 1024, 4096);
    assert.equal(layer1.depth, 2);
    assert.equal(image.blockStatus(1024 * 1024, 4096).depth, 0);
  } finally {
    image.close();
  }
});
