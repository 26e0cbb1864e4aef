import assert from "node:assert/strict";
import {
  ConsoleEscapeFilter,
  ESCAPE_HELP,
  escapeHelp,
  escapeKeyName,
  parseEscapeKey,
} from "./escape_filter.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("plain input passes through unchanged", () => {
  const result = new ConsoleEscapeFilter().filter(bytes("ls -l\r\x03"));
  assert.deepEqual(result.forward, bytes("ls -l\r\x03"));
  assert.equal(result.quit, false);
  assert.equal(result.help, false);
});

Deno.test("Ctrl-A x quits and drops what follows", () => {
  const result = new ConsoleEscapeFilter().filter(bytes("ab\x01xcd"));
  assert.deepEqual(result.forward, bytes("ab"));
  assert.equal(result.quit, true);
});

Deno.test("Ctrl-A Ctrl-A sends one literal Ctrl-A", () => {
  const result = new ConsoleEscapeFilter().filter(bytes("a\x01\x01b"));
  assert.deepEqual(result.forward, bytes("a\x01b"));
  assert.equal(result.quit, false);
});

Deno.test("the escape state carries across chunks", () => {
  const filter = new ConsoleEscapeFilter();
  const first = filter.filter(bytes("a\x01"));
  assert.deepEqual(first.forward, bytes("a"));
  assert.equal(filter.pending, true);
  const second = filter.filter(bytes("x"));
  assert.equal(second.quit, true);
  assert.equal(second.forward.length, 0);
});

Deno.test("Ctrl-A h asks for help and Ctrl-A with anything else is swallowed", () => {
  const result = new ConsoleEscapeFilter().filter(bytes("\x01h1\x01z2\x01X3"));
  assert.equal(result.help, true);
  assert.equal(result.quit, false, "only lower-case x quits");
  assert.deepEqual(result.forward, bytes("123"));
});

Deno.test("parseEscapeKey() reads ^], ^A, ctrl-x and C-a, and refuses keys terminals need", () => {
  assert.equal(parseEscapeKey("^]"), 0x1d);
  assert.equal(parseEscapeKey("^a"), 0x01);
  assert.equal(parseEscapeKey("ctrl-X"), 0x18);
  assert.equal(parseEscapeKey("C-a"), 0x01);
  for (const bad of ["^C", "^M", "^[", "^@", "^I", "^H", "a", "^", "^AB", "^1"]) {
    assert.equal(parseEscapeKey(bad), undefined, bad);
  }
  assert.equal(escapeKeyName(0x1d), "^]");
  assert.equal(
    ESCAPE_HELP,
    "\r\nC-a x    exit\r\nC-a h    print this help\r\nC-a C-a  send C-a to the guest\r\n",
  );
  assert.match(escapeHelp(0x1d), /C-\] x {4}exit/);
});

Deno.test("ConsoleEscapeFilter with another escape key passes Ctrl-A through", () => {
  const filter = new ConsoleEscapeFilter(0x1d);
  const first = filter.filter(new Uint8Array([0x61, 0x01, 0x1d, 0x1d, 0x62]));
  assert.deepEqual([...first.forward], [0x61, 0x01, 0x1d, 0x62]);
  assert.equal(first.quit, false);
  assert.equal(filter.filter(new Uint8Array([0x1d, 0x78, 0x63])).quit, true);
});
