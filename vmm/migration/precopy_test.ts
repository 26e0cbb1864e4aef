import { Buffer } from "node:buffer";
import assert from "node:assert/strict";
import { decideRound, DEFAULT_CONVERGENCE, throttleFor } from "./convergence.ts";
import { receiveMigration } from "./receiver.ts";
import {
  MigrationFailedError,
  MigrationOutcomeUnknownError,
  type MigrationProgress,
  sendMigration,
  type SendOptions,
} from "./sender.ts";
import {
  FakeSource,
  FakeTarget,
  link,
  PAGE,
  TEST_SEND_OPTIONS,
  testStart,
} from "./testing/fakes.ts";
import { Command, encodeHeader, encodeJson, encodeMemory } from "./protocol.ts";

const RANGES = [{ start: 0, size: 256 * PAGE }, { start: 0x1000000, size: 64 * PAGE }];
const START = testStart(RANGES, { memoryMiB: 1 });
const OPTIONS: SendOptions = TEST_SEND_OPTIONS;

function sameRam(source: FakeSource, target: FakeTarget): void {
  for (const region of source.memory.regions) {
    const got = target.memory!.read(region.start, region.bytes.length);
    assert.ok(
      Buffer.from(got).equals(Buffer.from(region.bytes)),
      `range 0x${region.start.toString(16)}`,
    );
  }
}

Deno.test("live pre-copy: pages the guest writes during rounds arrive, the source ends paused", async () => {
  const source = new FakeSource(RANGES);
  source.memory.fill(0, 10 * PAGE, 0x11);
  source.memory.writeU32(0x1000000 + 63 * PAGE, 0xdeadbeef);
  // The guest dirties fewer pages each round, and clears one it had written.
  source.guest = (memory, round) => {
    for (let i = 0; i < 5 - round; i++) {
      memory.writeU64((20 + i) * PAGE + 8 * round, BigInt(round + 1));
    }
    if (round === 1) memory.fill(0, PAGE, 0);
  };
  const target = new FakeTarget();
  const l = link();
  const phases: string[] = [];
  const [result, start] = await Promise.all([
    sendMigration(source, l.source, START, {
      ...OPTIONS,
      autoConverge: false,
      onProgress: (p: MigrationProgress) => phases.push(p.phase),
    }),
    receiveMigration(l.destination, target),
  ]);
  assert.equal(start.domain, "web1");
  sameRam(source, target);
  assert.equal(target.memory!.readU8(0), 0); // the cleared page went as a zero marker
  assert.deepEqual(target.state, { sections: [{ id: "vm", ram: 320 * PAGE }] });
  assert.deepEqual(target.calls, ["accept web1", "restore", "resume"]);
  assert.deepEqual(source.calls, [
    "startDirtyLog",
    "pause",
    "saveState",
    "releaseDisks",
    "stopDirtyLog",
  ]);
  assert.equal(source.running, false);
  assert.ok(result.iterations >= 5, `${result.iterations} iterations`);
  assert.deepEqual([...new Set(phases)], ["copying", "switch-over", "completing", "done"]);
});

Deno.test("live pre-copy: the guest pauses only once the destination has every page sent (SYNC)", async () => {
  const source = new FakeSource(RANGES);
  source.memory.fill(0, 40 * PAGE, 0x22);
  source.guest = (memory, round) => {
    if (round < 2) memory.fill(50 * PAGE, 4 * PAGE, round + 1);
  };
  const target = new FakeTarget();
  const l = link();
  l.toDestination.latencyMs = 1; // pages queue up on the way, as in the relays' buffers
  let caughtUp: boolean | undefined;
  const pause = source.pause.bind(source);
  source.pause = () => {
    // Nothing was dirtied since the last round was sent: the destination must hold it all.
    const got = target.memory!.read(0, 64 * PAGE);
    caughtUp = Buffer.from(got).equals(Buffer.from(source.memory.read(0, 64 * PAGE)));
    return pause();
  };
  await Promise.all([
    sendMigration(source, l.source, START, { ...OPTIONS, autoConverge: false }),
    receiveMigration(l.destination, target),
  ]);
  assert.equal(caughtUp, true, "the source paused while pages were still on their way");
  sameRam(source, target);
});

Deno.test("offline migration pauses first and sends one pass", async () => {
  const source = new FakeSource(RANGES);
  source.memory.fill(3 * PAGE, 2 * PAGE, 7);
  const target = new FakeTarget();
  const l = link();
  const [result] = await Promise.all([
    sendMigration(source, l.source, START, { ...OPTIONS, offline: true }),
    receiveMigration(l.destination, target),
  ]);
  sameRam(source, target);
  assert.equal(result.iterations, 1);
  assert.deepEqual(source.calls, ["pause", "saveState", "releaseDisks"]);
});

Deno.test("a refusal at START leaves the source running, untouched", async () => {
  const source = new FakeSource(RANGES);
  const target = new FakeTarget();
  target.refuse = "disk disk0: /pool/a.qcow2 is not the same image here";
  const l = link();
  const [sent, received] = await Promise.allSettled([
    sendMigration(source, l.source, START, OPTIONS),
    receiveMigration(l.destination, target),
  ]);
  assert.equal(sent.status, "rejected");
  assert.ok((sent as PromiseRejectedResult).reason instanceof MigrationFailedError);
  assert.match((sent as PromiseRejectedResult).reason.message, /disk0.*not the same image/);
  assert.equal(received.status, "rejected");
  assert.deepEqual(source.calls, []);
  assert.equal(source.running, true);
});

Deno.test("a failed restore on the destination resumes the source with its disks back", async () => {
  const source = new FakeSource(RANGES);
  const target = new FakeTarget();
  target.failRestore = true;
  const l = link();
  const [sent] = await Promise.allSettled([
    sendMigration(source, l.source, START, OPTIONS),
    receiveMigration(l.destination, target),
  ]);
  assert.equal(sent.status, "rejected");
  assert.match((sent as PromiseRejectedResult).reason.message, /restore failed/);
  assert.equal(source.running, true);
  assert.deepEqual(source.calls.slice(-3), ["stopDirtyLog", "reacquireDisks", "resume"]);
  assert.ok(target.calls.some((c) => c.startsWith("abandon")));
});

Deno.test("no answer after COMPLETE leaves the source paused, outcome unknown", async () => {
  const source = new FakeSource(RANGES);
  const target = new FakeTarget();
  const l = link();
  // The destination restores and resumes, but its ACK is lost with the link.
  target.resume = () => {
    l.toSource.cut();
    return Promise.resolve();
  };
  const [sent] = await Promise.allSettled([
    sendMigration(source, l.source, START, OPTIONS),
    receiveMigration(l.destination, target),
  ]);
  assert.equal(sent.status, "rejected");
  assert.ok((sent as PromiseRejectedResult).reason instanceof MigrationOutcomeUnknownError);
  assert.equal(source.running, false);
  assert.ok(!source.calls.includes("resume"));
});

Deno.test("a guest that never converges gives up at the timeout, throttled, and runs on", async () => {
  const source = new FakeSource(RANGES);
  source.guest = (memory, round) => memory.fill(0, 128 * PAGE, round + 1);
  const target = new FakeTarget();
  const l = link();
  const [sent, received] = await Promise.allSettled([
    sendMigration(source, l.source, START, { ...OPTIONS, timeoutMs: 300 }),
    receiveMigration(l.destination, target),
  ]);
  assert.equal(sent.status, "rejected");
  assert.match((sent as PromiseRejectedResult).reason.message, /did not converge/);
  assert.equal(received.status, "rejected");
  assert.equal(source.running, true);
  assert.ok(source.calls.includes("throttle 20"), source.calls.join());
  assert.equal(source.calls.at(-1), "throttle 0");
  assert.ok(!source.calls.includes("pause"));
});

Deno.test("the receiver refuses frames out of order or outside RAM, abandoning and answering ERROR", async () => {
  const cases: Array<
    [string, (send: (c: number, p?: Uint8Array) => Promise<void>) => Promise<void>]
  > = [
    ["expected START first", (send) => send(Command.COMPLETE)],
    ["COMPLETE before STATE", async (send) => {
      await send(Command.START, encodeJson({ protocolVersion: 1, mode: "live", ...START }));
      await send(Command.COMPLETE);
    }],
    ["outside the declared RAM", async (send) => {
      await send(Command.START, encodeJson({ protocolVersion: 1, mode: "live", ...START }));
      const parts = encodeMemory([{ guestAddress: 0x800000, pageCount: 1 }]);
      await send(Command.MEMORY, Buffer.concat(parts));
    }],
    [
      "not one this Denovisor speaks",
      (send) => send(Command.START, encodeJson({ protocolVersion: 9, mode: "live", ...START })),
    ],
  ];
  for (const [expected, script] of cases) {
    const target = new FakeTarget();
    const l = link();
    const receiving = receiveMigration(l.destination, target);
    await script(async (command, payload = new Uint8Array()) => {
      await l.toDestination.write(encodeHeader(command as never, payload.length));
      if (payload.length) await l.toDestination.write(payload);
    });
    await assert.rejects(receiving, (e: Error) => e.message.includes(expected));
    const answers = [];
    for (
      let f = await l.source.reader.next();
      f;
      f = await l.source.reader.next().catch(() => null)
    ) {
      answers.push(f.command);
      if (f.command === Command.ERROR) break;
    }
    assert.equal(answers.at(-1), Command.ERROR, expected);
    assert.ok(target.calls.at(-1)?.startsWith("abandon"), expected);
  }
});

Deno.test("convergence: switch over within the downtime, throttle after 4 rounds, give up at the timeout", () => {
  const options = { ...DEFAULT_CONVERGENCE, maxDowntimeMs: 100, timeoutMs: 10_000 };
  assert.equal(
    decideRound({ iteration: 1, dirtyBytes: 0, bandwidth: 0, elapsedMs: 5 }, options).action,
    "switch-over",
  );
  // 10 MB at 100 MB/s: 100 ms, within.
  assert.equal(
    decideRound({ iteration: 1, dirtyBytes: 10e6, bandwidth: 100e6, elapsedMs: 5 }, options).action,
    "switch-over",
  );
  const busy = decideRound(
    { iteration: 3, dirtyBytes: 50e6, bandwidth: 100e6, elapsedMs: 5 },
    options,
  );
  assert.deepEqual(busy, { action: "iterate", expectedDowntimeMs: 500, throttlePercent: 20 });
  assert.equal(
    decideRound({ iteration: 9, dirtyBytes: 50e6, bandwidth: 100e6, elapsedMs: 10_000 }, options)
      .action,
    "give-up",
  );
  assert.deepEqual([0, 3, 4, 5, 6, 18, 200].map((i) => throttleFor(i, options)), [
    0,
    0,
    20,
    20,
    30,
    90,
    99,
  ]);
  assert.equal(throttleFor(10, { ...options, autoConverge: false }), 0);
});
