import assert from "node:assert/strict";
import { ConsoleEscapeFilter } from "./escape_filter.ts";

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
