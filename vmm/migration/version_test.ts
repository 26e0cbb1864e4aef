import { Buffer } from "node:buffer";
import assert from "node:assert/strict";
import {
  Command,
  decodeJson,
  decodeMemory,
  encodeDirtyRound,
  encodeJson,
  encodeMemory,
  MigrationProtocolError,
  negotiatedVersion,
} from "./protocol.ts";
import { receiveMigration } from "./receiver.ts";
import { sendMigration, type SendOptions } from "./sender.ts";
import { parseStartRequest } from "./start_request.ts";
import {
  FakeSource,
  FakeTarget,
  link,
  PAGE,
  TEST_SEND_OPTIONS,
  testStart,
} from "./testing/fakes.ts";

// Version negotiation with simulated peers of other versions: version 1 (before SYNC) and
// the first version 2 build (START names 2 and nothing newer; its ACK names no version).

const RANGES = [{ start: 0, size: 64 * PAGE }];
const START = testStart(RANGES);
const OPTIONS: SendOptions = { ...TEST_SEND_OPTIONS, syncTimeoutMs: 500 };

type Link = ReturnType<typeof link>;

/**
 * A version 1 destination: START must name version 1 (it refuses any other, as it did),
 * its ACKs name no version, and SYNC is a command it does not know.
 */
async function v1Destination(l: Link, target: FakeTarget): Promise<number[]> {
  const { reader, writer } = l.destination;
  const seen: number[] = [];
  const refuse = (message: string) =>
    writer.send(Command.ERROR, encodeJson({ code: "invalid", message }));
  let start;
  let state: unknown;
  for (let frame = await reader.next(); frame; frame = await reader.next()) {
    seen.push(frame.command);
    const json = () => decodeJson(frame!.payload, "frame");
    switch (frame.command) {
      case Command.START: {
        const body = json();
        const version = (body as { protocolVersion: number }).protocolVersion;
        if (version !== 1) {
          await refuse(`protocol version ${version} is not one this Denovisor speaks (1)`);
          return seen;
        }
        start = parseStartRequest(body);
        await target.accept(start);
        await writer.send(Command.ACK, encodeJson({ accepted: start.domain }));
        break;
      }
      case Command.MEMORY:
        target.writePages(decodeMemory(frame.payload, start!.ram));
        break;
      case Command.DIRTY_ROUND:
        break;
      case Command.STATE:
        state = json();
        break;
      case Command.COMPLETE:
        await target.restore(state);
        await target.resume();
        await writer.send(Command.ACK, encodeJson({ running: start!.domain }));
        return seen;
      default:
        await refuse(`unknown command ${frame.command} (is the peer a newer Denovisor?)`);
        return seen;
    }
  }
  return seen;
}

Deno.test("negotiatedVersion() takes the newest version both sides speak", () => {
  assert.equal(negotiatedVersion({ protocolVersion: 1 }), 1);
  assert.equal(negotiatedVersion({ protocolVersion: 2 }), 2);
  assert.equal(negotiatedVersion({ protocolVersion: 1, maxProtocolVersion: 2 }), 2);
  assert.equal(negotiatedVersion({ protocolVersion: 1, maxProtocolVersion: 7 }), 2);
  const start = { protocolVersion: 1, domain: "d", mode: "live", config: {}, ram: START.ram };
  assert.equal(parseStartRequest({ ...start, disks: [] }).maxProtocolVersion, undefined);
  assert.equal(
    parseStartRequest({ ...start, disks: [], maxProtocolVersion: 9 }).maxProtocolVersion,
    9,
  );
  assert.throws(
    () => parseStartRequest({ ...start, disks: [], protocolVersion: 2, maxProtocolVersion: 1 }),
    MigrationProtocolError,
  );
});

Deno.test("a source of this build migrates to a version 1 destination, without SYNC", async () => {
  const source = new FakeSource(RANGES);
  source.memory.fill(0, 8 * PAGE, 0x5a);
  source.guest = (memory, round) => {
    if (round < 2) memory.fill(20 * PAGE, PAGE, round + 1);
  };
  const target = new FakeTarget();
  const l = link();
  const [sent, seen] = await Promise.allSettled([
    sendMigration(source, l.source, START, OPTIONS),
    v1Destination(l, target),
  ]);
  assert.equal(sent.status, "fulfilled", String((sent as PromiseRejectedResult).reason));
  assert.equal(seen.status, "fulfilled");
  assert.ok(!seen.value.includes(Command.SYNC), `sent: ${seen.value.join()}`);
  assert.equal(seen.value.at(-1), Command.COMPLETE);
  assert.deepEqual(target.calls, ["accept web1", "restore", "resume"]);
  const got = target.memory!.read(0, 64 * PAGE);
  assert.ok(Buffer.from(got).equals(Buffer.from(source.memory.read(0, 64 * PAGE))));
  assert.equal(source.running, false);
});

/** Plays an old source's script against the receiver; returns START's ACK and the rest. */
async function oldSource(
  startFields: Record<string, unknown>,
  sync: boolean,
): Promise<{ accepted: unknown; received: PromiseSettledResult<unknown>; answers: number[] }> {
  const target = new FakeTarget();
  const l = link();
  const receiving = receiveMigration(l.destination, target);
  receiving.catch(() => {});
  const { reader, writer } = l.source;
  await writer.send(Command.START, encodeJson({ mode: "live", ...START, ...startFields }));
  const ack = await reader.next();
  assert.equal(ack?.command, Command.ACK);
  const accepted = decodeJson(ack!.payload, "ACK");
  const data = new Uint8Array(PAGE).fill(3);
  await writer.send(Command.MEMORY, ...encodeMemory([{ guestAddress: PAGE, pageCount: 1, data }]));
  await writer.send(Command.DIRTY_ROUND, encodeDirtyRound({ iteration: 1, dirtyBytes: 0 }));
  const answers: number[] = [];
  if (sync) {
    await writer.send(Command.SYNC);
    const answer = await reader.next();
    answers.push(answer!.command);
  }
  if (answers.at(-1) !== Command.ERROR) {
    await writer.send(Command.STATE, encodeJson({ sections: [] }));
    await writer.send(Command.COMPLETE);
    answers.push((await reader.next())!.command);
  }
  const [received] = await Promise.allSettled([receiving]);
  if (received.status === "fulfilled") assert.equal(target.memory!.readU8(PAGE), 3);
  return { accepted, received, answers };
}

Deno.test("this build's receiver takes version 1 sources and names the version it uses", async () => {
  // Version 1: no SYNC; START's ACK says 1 (a version 1 source ignores the field).
  const v1 = await oldSource({ protocolVersion: 1 }, false);
  assert.deepEqual(v1.accepted, { accepted: "web1", protocolVersion: 1 });
  assert.equal(v1.received.status, "fulfilled");
  assert.deepEqual(v1.answers, [Command.ACK]);
  // A version 1 migration has no SYNC: refused as out of protocol.
  const stray = await oldSource({ protocolVersion: 1 }, true);
  assert.equal(stray.received.status, "rejected");
  assert.deepEqual(stray.answers, [Command.ERROR]);
  // The first version 2 build: START names 2 and it always sends SYNC.
  const v2 = await oldSource({ protocolVersion: 2 }, true);
  assert.deepEqual(v2.accepted, { accepted: "web1", protocolVersion: 2 });
  assert.equal(v2.received.status, "fulfilled");
  assert.deepEqual(v2.answers, [Command.ACK, Command.ACK]);
  // This build: oldest 1, newest 2.
  const now = await oldSource({ protocolVersion: 1, maxProtocolVersion: 2 }, true);
  assert.deepEqual(now.accepted, { accepted: "web1", protocolVersion: 2 });
  assert.equal(now.received.status, "fulfilled");
});

Deno.test("a source refuses a version it does not speak in START's ACK and runs on", async () => {
  for (const version of [3, 0, "2", 1.5]) {
    const source = new FakeSource(RANGES);
    const l = link();
    const answering = (async () => {
      await l.destination.reader.next();
      await l.destination.writer.send(
        Command.ACK,
        encodeJson({ accepted: "web1", protocolVersion: version }),
      );
    })();
    await assert.rejects(
      sendMigration(source, l.source, START, OPTIONS),
      /answered START with protocol version/,
    );
    await answering;
    assert.equal(source.running, true);
    assert.deepEqual(source.calls, [], `nothing started for version ${version}`);
  }
});
