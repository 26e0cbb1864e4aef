/**
 * `denovisor events` against a fake daemon (tests/fake_daemon.ts), run as a child process
 * the way scripts run it: lines arrive while the command runs, --domain filters, --json
 * gives NDJSON, a reader that goes away ends it with status 0, and a daemon that goes
 * away ends it with status 3 and a message.
 */

import assert from "node:assert/strict";
import { ApiClient } from "../manager/api_client.ts";
import { followEvents, formatEventLine } from "../cli/events.ts";
import { CLIENT_EXIT } from "../cli/output.ts";
import { denovisor } from "./cli_support.ts";
import { type FakeDaemon, startFakeDaemon } from "./fake_daemon.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Starts `denovisor events ...args` on `daemon` and waits until it is subscribed. */
async function spawnEvents(daemon: FakeDaemon, args: string[]): Promise<Deno.ChildProcess> {
  const before = daemon.requests.filter((request) => request.line === "GET /v1/events").length;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-prompt", MAIN, "events", "--socket", daemon.socket, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const deadline = Date.now() + 60_000;
  while (daemon.requests.filter((request) => request.line === "GET /v1/events").length === before) {
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error("denovisor events never asked for /v1/events");
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return child;
}

/** Reads lines from a child's stdout. */
function lineReader(stream: ReadableStream<Uint8Array>) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  return {
    async next(): Promise<string | undefined> {
      while (!buffer.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) return undefined;
        buffer += value;
      }
      const newline = buffer.indexOf("\n");
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      return line;
    },
    cancel: () => reader.cancel(),
  };
}

async function define(daemon: FakeDaemon, name: string): Promise<void> {
  using client = new ApiClient(daemon.socket);
  await client.request("POST", "/v1/domains", { name, boot: { demo: true } })
    .then((response) => response.body?.cancel());
}

async function stderrOf(child: Deno.ChildProcess): Promise<string> {
  return await new Response(child.stderr).text();
}

Deno.test("events prints the events of --domain as they happen and exits 3 when the daemon stops", async () => {
  const daemon = await startFakeDaemon();
  let child: Deno.ChildProcess | undefined;
  try {
    child = await spawnEvents(daemon, ["--domain", "web1"]);
    const lines = lineReader(child.stdout);
    await define(daemon, "web2"); // filtered out
    await define(daemon, "web1");
    const line = await lines.next();
    assert.match(line ?? "", /^\d{4}-\d\d-\d\dT\S+ web1 defined$/);
    await daemon.close();
    assert.equal(await lines.next(), undefined, "no line after the daemon went away");
    const [status, stderr] = await Promise.all([child.status, stderrOf(child)]);
    assert.equal(status.code, CLIENT_EXIT.UNREACHABLE);
    assert.match(stderr, /the daemon ended the event stream/);
    child = undefined;
  } finally {
    child?.kill("SIGKILL");
    await child?.status;
    await daemon.close().catch(() => {});
  }
});

Deno.test("events --json prints one JSON object per line", async () => {
  const daemon = await startFakeDaemon();
  const child = await spawnEvents(daemon, ["--json"]);
  try {
    const lines = lineReader(child.stdout);
    await define(daemon, "db1");
    const event = JSON.parse((await lines.next())!);
    assert.equal(event.domain, "db1");
    assert.equal(event.kind, "defined");
    assert.equal(typeof event.time, "string");
    await lines.cancel();
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await child.stderr.cancel();
    await daemon.close();
  }
});

Deno.test("events ends with status 0 when its reader goes away (events | head -1)", async () => {
  const daemon = await startFakeDaemon();
  const child = await spawnEvents(daemon, []);
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    const lines = lineReader(child.stdout);
    await define(daemon, "a1");
    assert.match((await lines.next())!, / a1 defined$/);
    await lines.cancel(); // closes the pipe's read end, as head does when it exits
    // The next write finds the pipe closed.
    await define(daemon, "a2");
    await define(daemon, "a3");
    const [status, stderr] = await Promise.all([child.status, stderrOf(child)]);
    assert.equal(status.code, CLIENT_EXIT.OK, stderr);
    assert.equal(stderr, "");
  } finally {
    clearTimeout(timer);
    await daemon.close();
  }
});

Deno.test("events says the daemon is unreachable with status 3", async () => {
  const result = await denovisor(["events", "--socket", "/nonexistent/denovisor.sock"]);
  assert.equal(result.code, CLIENT_EXIT.UNREACHABLE);
  assert.match(result.stderr, /^denovisor: /);
});

Deno.test("followEvents() filters by domain, skips lines that are not events and joins split chunks", async () => {
  const encoder = new TextEncoder();
  const chunks = [
    '{"time":"t1","domain":"a","kind":"started"}\n{"time":"t2","dom',
    'ain":"b","kind":"started"}\nnot json\n{"time":3,"domain":"a","kind":"x"}\n',
    '{"time":"t4","domain":"a","kind":"crashed","detail":"VMM killed\\u001b[2J"}\n',
  ];
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
  const lines: string[] = [];
  const end = await followEvents(
    body,
    { domain: "a", json: false, signal: new AbortController().signal },
    (line) => (lines.push(line), true),
  );
  assert.equal(end, "stream-ended");
  assert.deepEqual(lines, ["t1 a started", "t4 a crashed: VMM killed?[2J"]);
  assert.equal(
    formatEventLine({ time: "t", domain: "d", kind: "stopped" }),
    "t d stopped",
  );
});

Deno.test("followEvents() stops when the writer reports its reader gone, or on abort", async () => {
  const encoder = new TextEncoder();
  let cancelled = false;
  const endless = () =>
    new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(encoder.encode('{"time":"t","domain":"a","kind":"started"}\n'));
        return new Promise((resolve) => setTimeout(resolve, 5));
      },
      cancel() {
        cancelled = true;
      },
    });
  const gone = await followEvents(endless(), {
    json: true,
    signal: new AbortController().signal,
  }, () => false);
  assert.equal(gone, "output-gone");
  const abort = new AbortController();
  let count = 0;
  const aborted = await followEvents(endless(), { json: true, signal: abort.signal }, () => {
    if (++count === 3) abort.abort();
    return true;
  });
  assert.equal(aborted, "aborted");
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(cancelled, "the stream is cancelled when following stops");
});
