import assert from "node:assert/strict";
import { type Frame, FrameWriter } from "./frames.ts";
import { Command, encodeHeader, encodeJson } from "./protocol.ts";
import {
  MigrationFailedError,
  MigrationOutcomeUnknownError,
  sendMigration,
  type SendOptions,
} from "./sender.ts";
import { FakeSource, link, PAGE, TEST_SEND_OPTIONS, testStart } from "./testing/fakes.ts";

// The source's waits on a destination that stalls, trickles or answers the wrong thing.

const RANGES = [{ start: 0, size: 64 * PAGE }];
const START = testStart(RANGES);
const OPTIONS: SendOptions = TEST_SEND_OPTIONS;
/** Longer than any bound below: a source still waiting then is waiting for good. */
const HUNG_MS = 5_000;

type Link = ReturnType<typeof link>;
type Answer = (frame: Frame, writer: FrameWriter, l: Link) => Promise<void> | void;

/** A destination that answers each frame with `onFrame`; resolves with the commands seen. */
async function destination(l: Link, onFrame: Answer): Promise<number[]> {
  const seen: number[] = [];
  const next = () => l.destination.reader.next().catch(() => null);
  for (let frame = await next(); frame; frame = await next()) {
    seen.push(frame.command);
    await onFrame(frame, l.destination.writer, l);
  }
  return seen;
}

const ack = (writer: FrameWriter, body: unknown) => writer.send(Command.ACK, encodeJson(body));
const acceptStart = (frame: Frame, writer: FrameWriter) =>
  frame.command === Command.START
    ? ack(writer, { accepted: "web1", protocolVersion: 2 })
    : undefined;

/**
 * Runs the source against `onFrame`; the link is closed once the source is done (as the
 * VMM's endpoint does). `sent` is "hung" if it did not end in HUNG_MS.
 */
async function migrate(source: FakeSource, options: SendOptions, onFrame: Answer) {
  const l = link();
  const seen = destination(l, onFrame);
  const began = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const sent = await Promise.race([
    sendMigration(source, l.source, START, options).then(
      (value) => ({ status: "fulfilled" as const, value }),
      (reason) => ({ status: "rejected" as const, reason }),
    ),
    new Promise<{ status: "hung" }>((resolve) => {
      timer = setTimeout(() => resolve({ status: "hung" }), HUNG_MS);
    }),
  ]);
  clearTimeout(timer);
  const ms = performance.now() - began;
  l.toDestination.cut();
  l.toSource.cut();
  return { sent, ms, seen: await seen, l };
}

/** A guest that dirties half its RAM for 7 rounds (auto-converge throttles it), then idles. */
function busySource(): FakeSource {
  const source = new FakeSource(RANGES);
  source.guest = (memory, round) => {
    if (round < 7) memory.fill(0, 32 * PAGE, round + 1);
  };
  return source;
}

function assertRunsOn(source: FakeSource): void {
  assert.equal(source.running, true);
  assert.ok(!source.calls.includes("pause"), source.calls.join());
  assert.ok(source.calls.includes("throttle 20"), `throttled first: ${source.calls.join()}`);
  assert.deepEqual(source.calls.slice(-2), ["stopDirtyLog", "throttle 0"]);
}

Deno.test("sendMigration() gives up on a destination that never answers SYNC, throttle dropped", async () => {
  const source = busySource();
  const { sent, ms, seen } = await migrate(source, { ...OPTIONS, syncTimeoutMs: 200 }, acceptStart);
  assert.equal(
    sent.status,
    "rejected",
    `the source still waits for SYNC's answer (${sent.status})`,
  );
  assert.ok(sent.reason instanceof MigrationFailedError);
  assert.match(sent.reason.message, /runs on here.*did not answer SYNC in 200 ms/);
  assert.ok(ms < 2_000, `${ms} ms`);
  assertRunsOn(source);
  assert.deepEqual(seen.slice(-2), [Command.SYNC, Command.ABANDON], "the destination is told");
});

Deno.test("sendMigration() bounds SYNC's answer as a whole, however it trickles in", async () => {
  const source = busySource();
  const body = new TextEncoder().encode(JSON.stringify({ synced: true }));
  const frame = [...encodeHeader(Command.ACK, body.length), ...body];
  let trickling = true;
  const { sent, seen } = await migrate(
    source,
    { ...OPTIONS, syncTimeoutMs: 300 },
    async (f, writer, l) => {
      await acceptStart(f, writer);
      if (f.command !== Command.SYNC) return;
      // A valid ACK, one byte every 40 ms (1.2 s in all): every byte resets an idle timer.
      void (async () => {
        for (const byte of frame) {
          if (!trickling) return;
          await new Promise((resolve) => setTimeout(resolve, 40));
          await l.toSource.write(Uint8Array.of(byte)).catch(() => {});
        }
      })();
    },
  );
  trickling = false;
  assert.equal(sent.status, "rejected", sent.status);
  assert.match(sent.reason.message, /did not answer SYNC in 300 ms/);
  assertRunsOn(source);
  assert.ok(!seen.includes(Command.COMPLETE));
  await new Promise((resolve) => setTimeout(resolve, 80)); // the trickler sees the flag
});

Deno.test("migrate --abort is obeyed while the source waits for SYNC's answer", async () => {
  const source = busySource();
  const abort = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const { sent, ms } = await migrate(source, { ...OPTIONS, signal: abort.signal }, (f, w) => {
    if (f.command === Command.SYNC) timer = setTimeout(() => abort.abort(), 50);
    return acceptStart(f, w);
  });
  clearTimeout(timer);
  assert.equal(sent.status, "rejected", `abort ignored during SYNC (${sent.status})`);
  assert.match(sent.reason.message, /aborted by the operator/);
  assert.ok(ms < 2_000, `${ms} ms`);
  assertRunsOn(source);
});

Deno.test("migrate --abort is obeyed while the destination takes no pages", async () => {
  const source = busySource();
  const abort = new AbortController();
  const l = link();
  let stall = false;
  const writes = l.toDestination.write;
  // Pages stop leaving once START was answered: the socket's buffers are full.
  const stalling = {
    reader: l.source.reader,
    writer: new FrameWriter((bytes) => stall ? new Promise(() => {}) : writes(bytes)),
  };
  const seen = destination(l, (f, w) => {
    if (f.command !== Command.START) return;
    stall = true;
    setTimeout(() => abort.abort(), 100);
    return acceptStart(f, w);
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const sent = await Promise.race([
    sendMigration(source, stalling, START, { ...OPTIONS, signal: abort.signal }).then(
      () => "migrated",
      (error: Error) => error.message,
    ),
    new Promise<string>((resolve) => timer = setTimeout(() => resolve("hung"), HUNG_MS)),
  ]);
  clearTimeout(timer);
  l.toDestination.cut();
  l.toSource.cut();
  assert.match(sent, /aborted by the operator/);
  assert.equal(source.running, true);
  assert.equal(source.calls.at(-1), "stopDirtyLog");
  // No ABANDON behind the stalled frame (its bytes would interleave): the link ends it.
  assert.ok(!(await seen).includes(Command.ABANDON));
});

Deno.test("sendMigration() takes only COMPLETE's own ACK as the guest running there", async () => {
  // A SYNC-style ACK after COMPLETE: not proof the destination runs the guest.
  const source = busySource();
  const { sent } = await migrate(source, OPTIONS, async (f, w) => {
    await acceptStart(f, w);
    if (f.command === Command.SYNC || f.command === Command.COMPLETE) {
      await ack(w, { synced: true });
    }
  });
  assert.equal(sent.status, "rejected", "the source ended on SYNC's ACK to COMPLETE");
  assert.ok(sent.reason instanceof MigrationOutcomeUnknownError, String(sent.reason));
  assert.equal(source.running, false, "outcome unknown: stays paused");
  assert.ok(!source.calls.includes("resume"));

  // COMPLETE's ACK in answer to SYNC: the source does not go on to pause.
  const early = busySource();
  const { sent: refused, seen } = await migrate(early, OPTIONS, async (f, w) => {
    await acceptStart(f, w);
    if (f.command === Command.SYNC) await ack(w, { running: "web1" });
  });
  assert.equal(refused.status, "rejected");
  assert.match(refused.reason.message, /ACK that is not SYNC's/);
  assert.equal(early.running, true);
  assert.ok(!early.calls.includes("pause"));
  assert.ok(!seen.includes(Command.COMPLETE));
});
