import assert from "node:assert/strict";
import {
  Command,
  decodeDirtyRound,
  decodeHeader,
  decodeMemory,
  encodeDirtyRound,
  encodeHeader,
  encodeMemory,
  MAX_MEMORY_ENTRIES,
  MIGRATION_PAGE_SIZE,
  MigrationProtocolError,
} from "./protocol.ts";
import { FrameReader, FrameWriter } from "./frames.ts";
import { parseStartRequest } from "./start_request.ts";

const PAGE = MIGRATION_PAGE_SIZE;
const RAM = [{ guestAddress: 0, size: 16 * PAGE }, { guestAddress: 0x100000, size: 4 * PAGE }];
const refused = (text: string) => (error: unknown) =>
  error instanceof MigrationProtocolError && error.message.includes(text);

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

Deno.test("decodeHeader() refuses unknown commands, reserved bytes and oversized lengths", () => {
  assert.deepEqual(decodeHeader(encodeHeader(Command.COMPLETE, 0)), {
    command: Command.COMPLETE,
    length: 0,
  });
  assert.throws(() => decodeHeader(encodeHeader(99 as never, 0)), refused("unknown command 99"));
  const reserved = encodeHeader(Command.ACK, 0);
  reserved[5] = 1;
  assert.throws(() => decodeHeader(reserved), refused("reserved"));
  assert.throws(() => decodeHeader(encodeHeader(Command.COMPLETE, 1)), refused("at most 0"));
  const huge = encodeHeader(Command.STATE, 0);
  new DataView(huge.buffer).setBigUint64(8, 0xffff_ffff_ffff_ffffn, true);
  assert.throws(() => decodeHeader(huge), refused("at most"));
});

Deno.test("MEMORY frames round-trip with zero runs and stay inside the declared RAM", () => {
  const data = new Uint8Array(2 * PAGE).fill(7);
  const blocks = [
    { guestAddress: PAGE, pageCount: 2, data },
    { guestAddress: 4 * PAGE, pageCount: 12 },
    { guestAddress: 0x100000 + PAGE, pageCount: 3, data: new Uint8Array(3 * PAGE).fill(9) },
  ];
  const decoded = decodeMemory(concat(encodeMemory(blocks)), RAM);
  assert.equal(decoded.length, 3);
  assert.deepEqual(decoded[0].data, data);
  assert.equal(decoded[1].data, undefined);
  assert.equal(decoded[2].data?.[3 * PAGE - 1], 9);
});

Deno.test("decodeMemory() refuses hostile tables", () => {
  const one = (guestAddress: number, pageCount: number, withData = true) =>
    concat(encodeMemory([{
      guestAddress,
      pageCount,
      data: withData ? new Uint8Array(pageCount * PAGE) : undefined,
    }]));
  // Outside RAM, straddling a range's end, in the hole between ranges.
  assert.throws(() => decodeMemory(one(16 * PAGE, 1), RAM), refused("outside the declared RAM"));
  assert.throws(() => decodeMemory(one(15 * PAGE, 2), RAM), refused("outside"));
  assert.throws(() => decodeMemory(one(0x80000, 1, false), RAM), refused("outside"));
  // Unaligned address.
  const unaligned = one(PAGE, 1);
  new DataView(unaligned.buffer).setBigUint64(8, BigInt(PAGE + 8), true);
  assert.throws(() => decodeMemory(unaligned, RAM), refused("not page aligned"));
  // Page count overflowing past 2^32 pages, zero pages, unknown flags.
  const many = one(0, 1, false);
  new DataView(many.buffer).setUint32(16, 0xffff_ffff, true);
  assert.throws(() => decodeMemory(many, RAM), refused("outside"));
  const none = one(0, 1, false);
  new DataView(none.buffer).setUint32(16, 0, true);
  assert.throws(() => decodeMemory(none, RAM), refused("empty"));
  const flags = one(0, 1, false);
  new DataView(flags.buffer).setUint32(20, 6, true);
  assert.throws(() => decodeMemory(flags, RAM), refused("unknown flags"));
  // Data short of the pages, data beyond them, a table longer than the frame.
  assert.throws(() => decodeMemory(one(0, 2).subarray(0, 100), RAM), refused("past the frame"));
  assert.throws(
    () => decodeMemory(concat([one(0, 1), new Uint8Array(1)]), RAM),
    refused("after the last"),
  );
  const table = new Uint8Array(8);
  new DataView(table.buffer).setUint32(0, MAX_MEMORY_ENTRIES, true);
  assert.throws(() => decodeMemory(table, RAM), refused("shorter than its"));
  new DataView(table.buffer).setUint32(0, MAX_MEMORY_ENTRIES + 1, true);
  assert.throws(() => decodeMemory(table, RAM), refused("announces"));
});

Deno.test("DIRTY_ROUND round-trips with its throttle and refuses reserved bytes", () => {
  const bytes = encodeDirtyRound({ iteration: 3, dirtyBytes: 123 * PAGE, throttlePercent: 30 });
  assert.deepEqual(decodeDirtyRound(bytes), {
    iteration: 3,
    dirtyBytes: 123 * PAGE,
    throttlePercent: 30,
  });
  const unthrottled = encodeDirtyRound({ iteration: 1, dirtyBytes: 0 });
  assert.equal(decodeDirtyRound(unthrottled).throttlePercent, 0);
  unthrottled[4] = 100;
  assert.throws(() => decodeDirtyRound(unthrottled), refused("impossible"));
  bytes[5] = 1;
  assert.throws(() => decodeDirtyRound(bytes), refused("reserved"));
  assert.throws(() => decodeDirtyRound(new Uint8Array(8)), refused("16 bytes"));
});

Deno.test("FrameReader reassembles frames split across chunks and reports a clean end", async () => {
  const sent: Uint8Array[] = [];
  const writer = new FrameWriter((bytes) => {
    sent.push(bytes.slice());
    return Promise.resolve();
  });
  await writer.send(Command.ACK, new TextEncoder().encode('{"ok":true}'));
  await writer.send(Command.COMPLETE);
  const stream = concat(sent);
  async function* oneByteAtATime() {
    for (let i = 0; i < stream.length; i++) yield stream.subarray(i, i + 1);
  }
  const reader = new FrameReader(oneByteAtATime());
  const ack = await reader.next();
  assert.equal(ack?.command, Command.ACK);
  assert.equal(new TextDecoder().decode(ack?.payload), '{"ok":true}');
  assert.equal((await reader.next())?.command, Command.COMPLETE);
  assert.equal(await reader.next(), null);
  assert.equal(writer.bytesSent, stream.length);
});

Deno.test("parseStartRequest() checks the version, the RAM and the disks", () => {
  const good = {
    protocolVersion: 1,
    domain: "web1",
    mode: "live",
    config: { memoryMiB: 64 },
    ram: [{ guestAddress: 0, size: 64 * 1024 * 1024 }],
    disks: [{ id: "disk0", path: "/pool/web1.qcow2", size: 1 << 20, headSha256: "a".repeat(64) }],
  };
  assert.equal(parseStartRequest(good).domain, "web1");
  assert.equal(parseStartRequest({ ...good, protocolVersion: 2 }).protocolVersion, 2);
  assert.throws(() => parseStartRequest({ ...good, protocolVersion: 3 }), refused("upgrade"));
  assert.throws(() => parseStartRequest({ ...good, domain: "../x" }), refused("not valid"));
  assert.throws(
    () =>
      parseStartRequest({
        ...good,
        ram: [{ guestAddress: 0, size: 8192 }, { guestAddress: 4096, size: 4096 }],
      }),
    refused("overlapping"),
  );
  assert.throws(
    () => parseStartRequest({ ...good, ram: [{ guestAddress: 1, size: 4096 }] }),
    refused("whole pages"),
  );
  assert.throws(
    () => parseStartRequest({ ...good, disks: [{ ...good.disks[0], path: "rel" }] }),
    refused("absolute"),
  );
  assert.throws(() => parseStartRequest({ ...good, ram: [] }), refused("no RAM"));
  assert.throws(() => parseStartRequest("start"), refused("START"));
});

Deno.test("parseStartRequest() reads the CPUID claim as untrusted input", () => {
  const leaf = { function: 1, index: 0, flags: 0, eax: 0x806f8, ebx: 0, ecx: 0xf7f83203, edx: 0 };
  const base = {
    protocolVersion: 1,
    domain: "web1",
    mode: "live",
    config: {},
    ram: [{ guestAddress: 0, size: 1 << 20 }],
    disks: [],
  };
  assert.equal(parseStartRequest(base).cpuid, undefined, "optional");
  assert.deepEqual(parseStartRequest({ ...base, cpuid: [leaf] }).cpuid, [leaf]);
  for (const bad of [{ ...leaf, ecx: -1 }, { ...leaf, eax: 2 ** 32 }, { ...leaf, edx: "1" }]) {
    assert.throws(() => parseStartRequest({ ...base, cpuid: [bad] }), MigrationProtocolError);
  }
  assert.throws(
    () => parseStartRequest({ ...base, cpuid: new Array(257).fill(leaf) }),
    MigrationProtocolError,
  );
});

Deno.test("random bytes never crash the decoders: they decode or are refused as protocol errors", () => {
  let seed = 0x2545f491;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const bytes = (length: number) => Uint8Array.from({ length }, () => Math.floor(random() * 256));
  const onlyRefusals = (run: () => unknown) => {
    try {
      run();
    } catch (error) {
      assert.ok(error instanceof MigrationProtocolError, String(error));
    }
  };
  for (let i = 0; i < 2000; i++) {
    const header = bytes(16);
    if (i % 2) header.fill(0, 2, 8); // get past the reserved bytes half the time
    onlyRefusals(() => decodeHeader(header));
    const table = bytes(8 + 16 * Math.floor(random() * 4) + Math.floor(random() * 64));
    const view = new DataView(table.buffer);
    view.setUint32(0, Math.floor(random() * 4), true);
    if (i % 2) view.setUint32(4, 0, true);
    onlyRefusals(() => decodeMemory(table, RAM));
    onlyRefusals(() => decodeDirtyRound(bytes(i % 17)));
    onlyRefusals(() =>
      parseStartRequest(
        JSON.parse(
          JSON.stringify({
            protocolVersion: 1,
            mode: "live",
            domain: "d",
            config: {},
            ram: [{
              guestAddress: Math.floor(random() * 2 ** 53),
              size: 4096 * Math.floor(random() * 3),
            }],
            disks: [],
          }),
        ),
      )
    );
  }
});
