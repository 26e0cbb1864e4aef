/** The line editor fed bytes directly: editing keys, history, completion, redraws. */

import assert from "node:assert/strict";
import { LineEditor } from "./line_editor.ts";

const encoder = new TextEncoder();

/** An editor whose output is collected and whose input is a queue of chunks. */
function editorWith(
  chunks: string[],
  options: { history?: string[]; candidates?: string[]; columns?: number } = {},
) {
  const output: string[] = [];
  const editor = new LineEditor({
    write: (text) => output.push(text),
    history: options.history,
    columns: () => options.columns ?? 80,
    complete: (line, cursor) => {
      const start = line.lastIndexOf(" ", cursor - 1) + 1;
      return { start, candidates: options.candidates ?? [] };
    },
  });
  const queue = chunks.map((chunk) => encoder.encode(chunk));
  const read = () => Promise.resolve(queue.shift() ?? null);
  return { editor, read, output: () => output.join("") };
}

Deno.test("LineEditor edits with arrows, Home/End and the Ctrl keys", async () => {
  const cases: [string[], string][] = [
    [["abc\x1b[D\x1b[DX\r"], "aXbc"],
    [["abc\x01X\x05Y\r"], "XabcY"],
    [["hello world\x17there\r"], "hello there"],
    [["hello world\x1b[D\x1b[D\x15\r"], "ld"],
    [["abcd\x01\x1b[C\x0b\r"], "a"],
    [["abc\x7f\x7fz\r"], "az"],
    [["abc\x1b[H\x1b[3~\x1b[F!\r"], "bc!"],
    [["abc\x01\x04\r"], "bc"],
    [["ab\x1b", "[Dc\r"], "acb"], // an escape sequence split across reads
    [["drop me\x03"], ""],
    [["h\u00e9llo \u{1f600}\x7fx\r"], "h\u00e9llo x"],
  ];
  for (const [chunks, expected] of cases) {
    const { editor, read } = editorWith(chunks);
    assert.equal(await editor.readLine("> ", read), expected, JSON.stringify(chunks));
  }
});

Deno.test("LineEditor returns null on Ctrl-D at an empty line and at end of input", async () => {
  assert.equal(await editorWith(["\x04"]).editor.readLine("> ", editorWith(["\x04"]).read), null);
  const { editor, read } = editorWith([]);
  assert.equal(await editor.readLine("> ", read), null);
});

Deno.test("LineEditor keeps typed-ahead lines for the next read, \\r\\n counted once", async () => {
  const { editor, read } = editorWith(["first\r\nsecond\rthird\n"]);
  assert.equal(await editor.readLine("> ", read), "first");
  assert.equal(await editor.readLine("> ", read), "second");
  assert.equal(await editor.readLine("> ", read), "third");
  assert.equal(await editor.readLine("> ", read), null);
});

Deno.test("LineEditor walks the history with Up/Down and keeps the unfinished line", async () => {
  const history = ["list", "start web1"];
  const { editor, read } = editorWith(
    ["draft\x1b[A\x1b[A\x1b[B\x1b[B\r", "\x10\x10\x10\x0e\r"],
    { history },
  );
  assert.equal(await editor.readLine("> ", read), "draft");
  assert.deepEqual(editor.history, ["list", "start web1", "draft"]);
  assert.equal(await editor.readLine("> ", read), "start web1");
  assert.deepEqual(editor.history, ["list", "start web1", "draft", "start web1"]);
});

Deno.test("LineEditor completes a unique word, a common prefix, and lists on a second Tab", async () => {
  const unique = editorWith(["sh\t\r"], { candidates: ["shutdown", "start"] });
  assert.equal(await unique.editor.readLine("> ", unique.read), "shutdown ");
  const common = editorWith(["s\t\x03"], { candidates: ["start", "stats", "shutdown"] });
  assert.equal(await common.editor.readLine("> ", common.read), "");
  const prefix = editorWith(["st\t\r"], { candidates: ["start", "stats"] });
  assert.equal(await prefix.editor.readLine("> ", prefix.read), "sta");
  const list = editorWith(["sta\t\t\r"], { candidates: ["start", "stats"] });
  assert.equal(await list.editor.readLine("> ", list.read), "sta");
  assert.match(list.output(), /\r\nstart\s+stats\r\n\r> sta/);
  const none = editorWith(["x\t\r"], { candidates: [] });
  assert.equal(await none.editor.readLine("> ", none.read), "x");
  assert.ok(none.output().includes("\x07"), "no bell");
});

Deno.test("LineEditor.printAbove clears the line, prints, and redraws prompt and text", async () => {
  let release!: () => void;
  const output: string[] = [];
  const editor = new LineEditor({ write: (text) => output.push(text) });
  const chunks = [encoder.encode("sta"), encoder.encode("rt\x1b[D\r")];
  const gate = new Promise<void>((resolve) => release = resolve);
  let calls = 0;
  const done = editor.readLine("denovisor> ", async () => {
    if (calls++ === 1) await gate;
    return chunks.shift() ?? null;
  });
  await new Promise((resolve) => setTimeout(resolve, 10));
  output.length = 0;
  editor.printAbove("* domain web1 crashed: VMM killed by SIGKILL");
  assert.equal(
    output.join(""),
    "\r\x1b[J* domain web1 crashed: VMM killed by SIGKILL\r\n\rdenovisor> sta\x1b[J",
  );
  release();
  assert.equal(await done, "start");
  output.length = 0;
  editor.printAbove("after");
  assert.equal(output.join(""), "after\r\n");
});

Deno.test("LineEditor redraws a line longer than the terminal across rows", async () => {
  // 10 columns, prompt "> ": "abcdefgh" fills the first row exactly.
  const full = editorWith(["abcdefgh", "ij\x01"], { columns: 10 });
  assert.equal(await full.editor.readLine("> ", full.read), null);
  const text = full.output();
  assert.ok(text.includes("\r> abcdefgh\x1b[J\r\n"), JSON.stringify(text)); // cursor to row 2
  // Home from row 2 goes up one row to column 2.
  assert.ok(text.includes("\x1b[1A\r> abcdefghij\x1b[J\x1b[1A\r\x1b[2C"), JSON.stringify(text));
  // End of input first goes back below the whole line.
  assert.ok(text.endsWith("\x1b[2C\r> abcdefghij\x1b[J\r\n"), JSON.stringify(text));
  // printAbove starts clearing from the prompt's row.
  const output: string[] = [];
  const editor = new LineEditor({ write: (text) => output.push(text), columns: () => 10 });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const chunks = [encoder.encode("abcdefghijkl")];
  const reading = editor.readLine("> ", async () => chunks.shift() ?? (await gate, null));
  await new Promise((resolve) => setTimeout(resolve, 5));
  editor.printAbove("event");
  assert.ok(output.join("").endsWith("\x1b[1A\r\x1b[Jevent\r\n\r> abcdefghijkl\x1b[J"));
  release();
  assert.equal(await reading, null);
});

Deno.test("LineEditor moves and deletes by words: Alt-B/F, Ctrl-Left/Right, Alt-D, Alt-Backspace", async () => {
  const cases: [string, string][] = [
    ["hello big world\x1bb\x1bbX\r", "hello Xbig world"],
    ["hello big world\x01\x1bf!\r", "hello! big world"],
    ["hello big world\x01\x1bf\x1bf!\r", "hello big! world"],
    ["hello big world\x1b[1;5D\x1b[1;5DX\r", "hello Xbig world"],
    ["hello big world\x01\x1b[1;5C!\r", "hello! big world"],
    ["hello big world\x01\x1bd\r", " big world"],
    ["start web-1\x1b\x7f\r", "start web-"],
    ["vol/pool  \x1bbX\r", "vol/Xpool  "],
  ];
  for (const [input, expected] of cases) {
    const { editor, read } = editorWith([input]);
    assert.equal(await editor.readLine("> ", read), expected, JSON.stringify(input));
  }
});

Deno.test("LineEditor Ctrl-R searches the history backwards as readline does", async () => {
  const history = ["start web", "list", "stats db", "start db"];
  const cases: [string, string][] = [
    ["\x12st\r", "start db"], // the newest line holding "st"
    ["\x12st\x12\r", "stats db"], // Ctrl-R again: the next older one
    ["\x12st\x12\x12\x12\r", "start web"],
    ["\x12sta\x7f\x7f\x7fli\r", "list"], // Backspace shortens the query
    ["\x12list\x05 --running\r", "list --running"], // another key edits the line found
    ["typed\x12li\x07!\r", "typed!"], // Ctrl-G gives up: the line as it was
    ["\x12start\x03", ""], // Ctrl-C drops the line
  ];
  for (const [input, expected] of cases) {
    const { editor, read } = editorWith([input], { history: [...history] });
    assert.equal(await editor.readLine("> ", read), expected, JSON.stringify(input));
  }
  const { editor, read, output } = editorWith(["\x12web\x12zz"], { history: [...history] });
  assert.equal(await editor.readLine("> ", read), null);
  assert.match(output(), /\(reverse-i-search\)'web': start web/);
  assert.match(output(), /\(failed reverse-i-search\)'webzz': start web/);
});

Deno.test("LineEditor after Ctrl-R: Up goes on from the line found", async () => {
  const history = ["one", "two", "three"];
  const { editor, read } = editorWith(["\x12two\x1b[A\r"], { history });
  // Up from the match ("two") shows the line before it.
  assert.equal(await editor.readLine("> ", read), "one");
});
