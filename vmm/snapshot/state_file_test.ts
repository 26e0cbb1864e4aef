import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { StateError } from "../../common/persist.ts";
import { writeAtomically } from "./atomic_write.ts";
import type { RamSource } from "./inline_memory.ts";
import { layoutRanges, openMemoryFile, writeMemoryFile } from "./memory_file.ts";
import type { StateDocument } from "./state_document.ts";
import { encodeState, readStateFile, readStateStream, writeStateFile } from "./state_file.ts";
import { CHECKSUM_SIZE, HEADER_SIZE, PAGE_SIZE, StateFileError } from "./state_format.ts";

/** Asserts that `fn` rejects with an instance of `type` whose message contains `text`. */
async function rejects(
  fn: () => Promise<unknown>,
  type: abstract new (...args: never[]) => Error,
  text: string,
): Promise<void> {
  await assert.rejects(fn, (error: unknown) => {
    assert(error instanceof type, `expected ${type.name}, got ${error}`);
    assert(
      (error as Error).message.includes(text),
      `"${(error as Error).message}" lacks "${text}"`,
    );
    return true;
  });
}

function sources(): RamSource[] {
  const low = new Uint8Array(16 * PAGE_SIZE);
  low.fill(0xaa, 0, PAGE_SIZE); // page 0: data
  low[5 * PAGE_SIZE + 17] = 1; // page 5: one byte of data
  low.fill(0x55, 14 * PAGE_SIZE); // pages 14-15: data, at the very end
  const high = new Uint8Array(8 * PAGE_SIZE);
  high[3 * PAGE_SIZE + PAGE_SIZE - 1] = 0x7f;
  return [{ guestAddress: 0, bytes: low }, { guestAddress: 0x1_0000_0000, bytes: high }];
}

function documentFor(ram: RamSource[], storage: "file" | "inline"): StateDocument {
  const ranges = layoutRanges(ram);
  return {
    denovisorVersion: "0.1.0",
    createdAt: "2026-12-02T18:00:00.000Z",
    purpose: "save",
    config: { name: "web", vcpus: 1 },
    memory: {
      storage,
      ...(storage === "file" ? { file: "web.mem" } : {}),
      pageSize: PAGE_SIZE,
      ranges,
      fileSize: ranges.reduce((sum, r) => sum + r.size, 0),
    },
    sections: [
      { id: "vm", kind: "vm", version: 1, state: { version: 1, clock: "0x10" } },
      { id: "serial0", kind: "uart16550", version: 1, state: { version: 1, lcr: 3 } },
    ],
  };
}

/** Guest RAM rebuilt from an inline state, for comparison with the sources. */
function blankLike(ram: RamSource[]): Map<number, Uint8Array> {
  return new Map(ram.map((s) => [s.guestAddress, new Uint8Array(s.bytes.length)]));
}

function writerInto(ram: Map<number, Uint8Array>) {
  return (guestAddress: number, bytes: Uint8Array) => {
    for (const [start, buffer] of ram) {
      if (guestAddress >= start && guestAddress + bytes.length <= start + buffer.length) {
        buffer.set(bytes, guestAddress - start);
        return;
      }
    }
    throw new Error(`write outside RAM at ${guestAddress}`);
  };
}

async function encodeToBytes(document: StateDocument, inline?: RamSource[]): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  await encodeState(
    (bytes) => {
      parts.push(bytes.slice());
      return Promise.resolve();
    },
    document,
    inline,
  );
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function streamOf(bytes: Uint8Array) {
  let offset = 0;
  return (buffer: Uint8Array) => {
    if (offset + buffer.length > bytes.length) {
      return Promise.reject(new StateFileError("State stream ended early: it is truncated"));
    }
    buffer.set(bytes.subarray(offset, offset + buffer.length));
    offset += buffer.length;
    return Promise.resolve();
  };
}

Deno.test("writeStateFile() and readStateFile() round-trip a document and inline RAM", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ram = sources();
    const document = documentFor(ram, "inline");
    const path = join(dir, "web.state");
    const written = await writeStateFile(path, document, ram);
    assert.deepEqual((await Deno.stat(path)).size, written);
    assert.deepEqual((await Deno.stat(path)).mode! & 0o777, 0o600);
    const state = await readStateFile(path);
    try {
      assert.deepEqual(state.document, document);
      const restored = blankLike(ram);
      await state.readInlineMemory(writerInto(restored));
      for (const source of ram) assert.deepEqual(restored.get(source.guestAddress), source.bytes);
    } finally {
      state.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("inline RAM leaves zero pages out: 5 data pages of 24 take 4 records", async () => {
  const ram = sources();
  const bytes = await encodeToBytes(documentFor(ram, "inline"), ram);
  const documentLength = Number(new DataView(bytes.buffer).getBigUint64(16, true));
  const inlineLength = bytes.length - HEADER_SIZE - CHECKSUM_SIZE - documentLength;
  // Runs: low page 0, low page 5, low pages 14-15, high page 3 -> 4 records, 5 pages.
  assert.deepEqual(inlineLength, 4 * 16 + 5 * PAGE_SIZE);
});

Deno.test("readStateStream() reads a state from a pipe in one pass and checks the checksum", async () => {
  const ram = sources();
  const document = documentFor(ram, "inline");
  const bytes = await encodeToBytes(document, ram);
  const restored = blankLike(ram);
  const result = await readStateStream(streamOf(bytes), writerInto(restored));
  assert.deepEqual(result.document, document);
  for (const source of ram) assert.deepEqual(restored.get(source.guestAddress), source.bytes);
  bytes[bytes.length - 1] ^= 1;
  await rejects(
    () => readStateStream(streamOf(bytes), () => {}),
    StateFileError,
    "checksum mismatch",
  );
});

Deno.test("writeMemoryFile() writes a sparse file: zero pages are holes, data reads back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const big = new Uint8Array(64 * 1024 * 1024);
    big.fill(0x33, 8 * 1024 * 1024, 9 * 1024 * 1024); // 1 MiB of data in 64 MiB
    const ram = [{ guestAddress: 0, bytes: big }];
    const path = join(dir, "web.mem");
    const result = await writeMemoryFile(path, ram);
    assert.deepEqual(result.fileSize, big.length);
    assert.deepEqual(result.dataBytes, 1024 * 1024);
    const info = await Deno.stat(path);
    assert.deepEqual(info.size, big.length);
    assert(info.blocks! * 512 <= 2 * 1024 * 1024, `${info.blocks! * 512} bytes allocated`);
    const file = await openMemoryFile(path, big.length);
    try {
      const back = new Uint8Array(big.length);
      let done = 0;
      while (done < back.length) done += (await file.read(back.subarray(done)))!;
      // deepEqual on 64 MiB takes seconds; Buffer.compare is a memcmp.
      assert.equal(Buffer.compare(back, big), 0, "the memory file reads back as written");
    } finally {
      file.close();
    }
    await rejects(
      () => openMemoryFile(path, big.length + PAGE_SIZE),
      StateFileError,
      "bytes",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a save that fails midway leaves no file behind, under any name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "web.state");
    await rejects(
      () =>
        writeAtomically(path, async (file) => {
          await file.write(new Uint8Array(100));
          throw new Error("ENOSPC (simulated)");
        }),
      Error,
      "ENOSPC",
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readStateFile() refuses non-files, bad magic, versions, lengths and checksums", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ram = sources();
    const good = await encodeToBytes(documentFor(ram, "inline"), ram);
    const cases: [string, (bytes: Uint8Array) => Uint8Array, string][] = [
      ["magic", (b) => (b[0] = 0x41, b), "magic"],
      ["version", (b) => (b[8] = 9, b), "format version 9"],
      ["flags", (b) => (b[13] = 1, b), "unknown flags"],
      ["truncated", (b) => b.subarray(0, b.length - 1), "header describes"],
      ["tiny", (b) => b.subarray(0, 10), "truncated"],
      ["checksum", (b) => (b[HEADER_SIZE + 3] ^= 0x20, b), "checksum mismatch"],
    ];
    for (const [name, mutate, message] of cases) {
      const path = join(dir, name);
      await Deno.writeFile(path, mutate(good.slice()));
      await rejects(() => readStateFile(path), StateFileError, message);
    }
    const fifo = join(dir, "fifo");
    await new Deno.Command("mkfifo", { args: [fifo] }).output();
    await rejects(() => readStateFile(fifo), StateFileError, "not a regular file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Re-encodes a mutated document with a valid checksum, to reach the document checks. */
async function withDocument(mutate: (document: Record<string, unknown>) => void) {
  const ram = sources();
  const document = structuredClone(documentFor(ram, "inline")) as unknown as Record<
    string,
    unknown
  >;
  mutate(document);
  return await encodeToBytes(document as unknown as StateDocument, ram).catch(() => undefined);
}

Deno.test("hostile documents are refused with the field's path", async () => {
  const cases: [(d: Record<string, unknown>) => void, string][] = [
    [(d) => delete d.config, "document.config"],
    [(d) => (d.sections as unknown[]).push((d.sections as unknown[])[0]), "appears twice"],
    [(d) => ((d.sections as Record<string, unknown>[])[1].id = "../x"), "sections[1].id"],
    [(d) => ((d.sections as Record<string, unknown>[])[0].version = 0), "sections[0].version"],
    [(d) => ((d.memory as Record<string, unknown>).pageSize = 512), "memory.pageSize"],
    [(d) => ((d.memory as Record<string, unknown>).file = "../etc/passwd"), "memory.file"],
    [(d) => ((d.memory as { ranges: { size: number }[] }).ranges[0].size = 100), "ranges[0]"],
    [
      (d) => ((d.memory as { ranges: { fileOffset: number }[] }).ranges[1].fileOffset = 0),
      "fileOffset",
    ],
    [
      (d) => ((d.memory as { ranges: { guestAddress: number }[] }).ranges[1].guestAddress = 4096),
      "overlap",
    ],
    [(d) => ((d.memory as { fileSize: number }).fileSize = 1), "memory.fileSize"],
    [(d) => (d.createdAt = "yesterday"), "createdAt"],
  ];
  for (const [mutate, message] of cases) {
    const bytes = await withDocument(mutate);
    assert(bytes);
    const error = await readStateStream(streamOf(bytes!), () => {}).then(
      () => undefined,
      (e) => e,
    );
    assert(error instanceof StateError, `${message}: ${error}`);
    assert(String(error.message).includes(message), `${error.message} lacks ${message}`);
  }
});

Deno.test("inline records outside guest RAM are refused before any page is written", async () => {
  const ram = sources();
  // The document claims less RAM than the records cover: the high range shrinks to 2 pages.
  const bytes = await withDocument((d) => {
    const memory = d.memory as { ranges: { size: number }[]; fileSize: number };
    memory.ranges[1].size = 2 * PAGE_SIZE;
    memory.fileSize = 16 * PAGE_SIZE + 2 * PAGE_SIZE;
  });
  const writes: number[] = [];
  await rejects(
    () => readStateStream(streamOf(bytes!), (address) => writes.push(address)),
    StateFileError,
    "outside guest RAM",
  );
  assert(writes.every((address) => address < 0x1_0000_0000), "no write into the shrunk range");
  assert.deepEqual(ram.length, 2);
});

Deno.test("fuzz: bit flips, truncations and section swaps of a valid file are refused cleanly", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ram = sources();
    const good = await encodeToBytes(documentFor(ram, "inline"), ram);
    let seed = 0x9e3779b9;
    const random = (limit: number) => {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      return seed % limit;
    };
    const path = join(dir, "fuzz.state");
    for (let round = 0; round < 300; round++) {
      let bytes = good.slice();
      const kind = round % 3;
      if (kind === 0) {
        for (let flips = 1 + random(4); flips > 0; flips--) {
          bytes[random(bytes.length)] ^= 1 << random(8);
        }
      } else if (kind === 1) {
        bytes = bytes.subarray(0, random(bytes.length));
      } else {
        const swapped = await withDocument((d) => {
          const sections = d.sections as Record<string, unknown>[];
          [sections[0].state, sections[1].state] = [sections[1].state, sections[0].state];
          [sections[0].id, sections[1].id] = [sections[1].id, sections[0].id];
        });
        bytes = swapped!.slice();
        bytes[random(bytes.length)] ^= 1 << random(8);
      }
      await Deno.writeFile(path, bytes);
      try {
        const state = await readStateFile(path);
        try {
          await state.readInlineMemory(() => {});
        } finally {
          state.close();
        }
      } catch (error) {
        assert(
          error instanceof StateFileError || error instanceof StateError,
          `round ${round}: ${error}`,
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the checked-in format 1 sample still reads: document, sections and RAM", async () => {
  const sample = new URL("../../tests/fixtures/state/v1-inline.dnvstate", import.meta.url);
  const state = await readStateFile(sample.pathname);
  try {
    assert.equal(state.header.formatVersion, 1);
    assert.equal(state.document.purpose, "sample");
    assert.deepEqual(state.document.sections.map((s) => [s.id, s.kind, s.version]), [
      ["vm", "vm", 1],
      ["vcpu0", "vcpu", 1],
    ]);
    assert.deepEqual(state.document.memory.ranges, [
      { guestAddress: 0x100000, size: 4 * PAGE_SIZE, fileOffset: 0 },
    ]);
    const pages: [number, Uint8Array][] = [];
    await state.readInlineMemory((address, bytes) => pages.push([address, bytes.slice()]));
    assert.deepEqual(pages.map(([address, bytes]) => [address, bytes.length]), [
      [0x101000, PAGE_SIZE],
    ]);
    assert(pages[0][1].every((byte, index) => byte === ((index * 7) & 0xff)));
  } finally {
    state.close();
  }
});
