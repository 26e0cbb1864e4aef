import assert from "node:assert/strict";
import { StdioConsole } from "./stdio_console.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

function fakeInput(chunks: string[], terminal: boolean, keepOpen = false) {
  const rawCalls: boolean[] = [];
  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(bytes(c));
      if (!keepOpen) controller.close();
    },
  });
  return {
    rawCalls,
    input: { readable, isTerminal: () => terminal, setRaw: (mode: boolean) => rawCalls.push(mode) },
  };
}

function sink() {
  const written: number[] = [];
  return {
    written,
    output: {
      write: (b: Uint8Array) => (written.push(...b), Promise.resolve(b.length)),
    },
  };
}

const settle = () => new Promise((r) => setTimeout(r, 10));

Deno.test("on a terminal, input is raw, filtered, and Ctrl-A x calls onEscape", async () => {
  const { input, rawCalls } = fakeInput(["ab\x01\x01c", "\x01x", "ignored"], true, true);
  const { output } = sink();
  let escapes = 0;
  const console = new StdioConsole({ input, output, onEscape: () => escapes++ });
  const received: number[] = [];
  console.startInput((b) => received.push(...b));
  assert.equal(console.rawMode, true);
  await settle();
  assert.deepEqual(received, [...bytes("ab\x01c")]);
  assert.equal(escapes, 1);
  await console.close();
  assert.deepEqual(rawCalls, [true, false], "raw mode set once and restored once");
  await console.close();
  assert.deepEqual(rawCalls, [true, false], "close() is idempotent");
});

Deno.test("Ctrl-A h prints the help on the console output", async () => {
  const { input } = fakeInput(["\x01h"], true);
  const { output, written } = sink();
  const console = new StdioConsole({ input, output });
  console.startInput(() => {});
  await settle();
  await console.close();
  assert.match(new TextDecoder().decode(Uint8Array.from(written)), /C-a x +exit/);
});

Deno.test("piped stdin is passed through verbatim and its end does not call onEscape", async () => {
  const { input, rawCalls } = fakeInput(["echo \x01x\n", "more"], false);
  const { output } = sink();
  let escapes = 0;
  const console = new StdioConsole({ input, output, onEscape: () => escapes++ });
  const received: number[] = [];
  console.startInput((b) => received.push(...b));
  await settle();
  assert.equal(new TextDecoder().decode(Uint8Array.from(received)), "echo \x01x\nmore");
  assert.equal(escapes, 0);
  assert.deepEqual(rawCalls, [], "a pipe is never put in raw mode");
  console.write(bytes("still writing after EOF"));
  await console.close();
  assert.equal(console.stats.bytesRead, 12);
  assert.equal(console.stats.bytesWritten, 23);
});

Deno.test("close() cancels a pending read so the process can exit", async () => {
  const { input } = fakeInput([], false, true);
  const console = new StdioConsole({ input, output: sink().output });
  console.startInput(() => assert.fail("no input expected"));
  await console.close(); // would hang (and leak the read) if the read were not cancelled
});

Deno.test("with escapeByte ^] (run --escape ^]) Ctrl-] x calls onEscape and Ctrl-A reaches the guest", async () => {
  const { input } = fakeInput(["a\x01\x1d\x1db", "\x1dh", "\x1dx"], true, true);
  const { output, written } = sink();
  let escapes = 0;
  const console = new StdioConsole({ input, output, onEscape: () => escapes++, escapeByte: 0x1d });
  const received: number[] = [];
  console.startInput((b) => received.push(...b));
  await settle();
  assert.deepEqual(received, [...bytes("a\x01\x1db")]);
  assert.equal(escapes, 1);
  assert.match(new TextDecoder().decode(Uint8Array.from(written)), /C-\] x +exit/);
  await console.close();
});
